"""The IR's own semantics: exact range analysis, op arithmetic against plain-Python
integer references, dtype choices that never change a result."""

from __future__ import annotations

import numpy as np
import pytest

from nnfpga.ir.validate import load_ir
from nnfpga.compiler.passes.assign_types import assign_types
from nnfpga.ir.emulator import run_raw, trace_raw
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D, Input, MaxPool2D, Reshape
from nnfpga.ir.quant import QuantArray, Quantizer, WeightKind
from nnfpga.ir.tables import LookupTable
from tests.irmodels import random_inputs, random_mlp

I8 = FixedType(8, 3, True, Rounding.RND_CONV, Overflow.SAT)


def _conv_graph(padding: str, strides: tuple[int, int], seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    kernel = rng.integers(-20, 21, (3, 3, 2, 4))
    conv = Conv2D("conv", ["input"], kernel_q=QuantArray(kernel.astype(np.int64), 4),
                  bias_q=QuantArray(rng.integers(-50, 50, 4).astype(np.int64), 6),
                  strides=strides, padding=padding)
    pool = MaxPool2D("pool", ["conv"], pool_size=(2, 2), strides=(2, 2), padding=padding)
    flat = Reshape("flat", ["pool"], target_shape=(-1,))
    return assign_types(Graph("cnn", [Input("input", [], out_type=I8, shape=(9, 7, 2)), conv, pool, flat], ["flat"]))


def _conv_reference(x: np.ndarray, g: Graph) -> np.ndarray:
    """Direct loops over python ints: TensorFlow's padding rule, exact sums."""
    conv = g.node("conv")
    k, b = conv.kernel_q.raw, conv.bias_q.raw
    kh, kw, cin, cout = k.shape
    sh, sw = conv.strides
    h, w = x.shape[1:3]
    if conv.padding == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        ph = max((oh - 1) * sh + kh - h, 0)
        pw = max((ow - 1) * sw + kw - w, 0)
        top, left = ph // 2, pw // 2
    else:
        oh, ow, top, left = (h - kh) // sh + 1, (w - kw) // sw + 1, 0, 0
    acc_frac = I8.frac + 4  # bias has 6 fractional bits: products are shifted up
    shift = 6 - acc_frac if 6 > acc_frac else 0
    out = np.zeros((len(x), oh, ow, cout), dtype=object)
    for n in range(len(x)):
        for i in range(oh):
            for j in range(ow):
                for c in range(cout):
                    s = 0
                    for di in range(kh):
                        for dj in range(kw):
                            r, q = i * sh + di - top, j * sw + dj - left
                            if 0 <= r < h and 0 <= q < w:
                                for ci in range(cin):
                                    s += int(x[n, r, q, ci]) * int(k[di, dj, ci, c])
                    out[n, i, j, c] = (s << shift) + int(b[c]) * (1 << (acc_frac + shift - 6))
    return out


@pytest.mark.parametrize("padding, strides", [("valid", (1, 1)), ("same", (1, 1)), ("same", (2, 2)), ("valid", (2, 1))])
def test_conv_and_pool_match_direct_loops(padding, strides):
    g = _conv_graph(padding, strides)
    x = I8.quantize(random_inputs(g, 6, seed=3))
    trace = trace_raw(g, x)
    acc = _conv_reference(x, g)
    assert np.array_equal(trace["conv"].astype(np.int64), acc.astype(np.int64))  # exact type: no rounding
    # max pool over the reference, with TF's padding rule for 'same'
    pooled = trace["pool"]
    oh, ow = pooled.shape[1:3]
    for i in range(oh):
        for j in range(ow):
            window = acc[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2, :].astype(np.int64)
            assert np.array_equal(pooled[:, i, j, :], window.max(axis=(1, 2)))


@pytest.mark.parametrize("kind", ["fixed", "ternary", "binary", "po2"])
def test_accumulator_types_hold_extreme_inputs(kind):
    """Range analysis: the exact accumulator type contains the sums at the worst inputs."""
    g = random_mlp([12, 16, 8], weight_kind=kind, seed=5)
    dense = g.node("fc1")
    w = dense.kernel_q.raw
    t = g.input.info.type
    # the inputs that maximise / minimise each output
    x_max = np.where(w.T > 0, t.max_raw, t.min_raw)
    x_min = np.where(w.T > 0, t.min_raw, t.max_raw)
    for x in (x_max, x_min):
        acc = dense.accumulate(x.astype(np.float64), g.input.info)
        lo, hi, _ = dense.acc_range(g.input.info)
        assert acc.min() >= lo.min() and acc.max() <= hi.max()
        # and the bounds are attained: the analysis is exact, not just safe
    acc_hi = dense.accumulate(x_max.astype(np.float64), g.input.info)
    assert np.array_equal(np.diag(acc_hi), dense.acc_range(g.input.info)[1].astype(np.float64))


def test_float32_float64_int64_paths_agree():
    from nnfpga.ir.ops import linear
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (500, 20))
    w = rng.integers(-31, 32, (20, 7))
    bias = np.array([int(v) for v in rng.integers(-1000, 1000, 7)], dtype=object)
    results = [linear.linear_apply(x.astype(np.float32 if d.kind == "f" else np.int64), w, bias, 2, d)
               for d in (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64))]
    assert all(np.array_equal(results[0].astype(np.int64), r.astype(np.int64)) for r in results[1:])
    expected = (x @ w) * 4 + bias.astype(np.int64)
    assert np.array_equal(results[2], expected)


def test_compute_dtype_follows_range():
    from nnfpga.ir.ops.linear import compute_dtype
    assert compute_dtype((1 << 24) - 1, 100) == np.float32
    assert compute_dtype(1 << 24, 100) == np.float64
    assert compute_dtype(1 << 53, 100) == np.int64
    with pytest.raises(ValueError, match="62 bits"):
        compute_dtype(1 << 62, 1)


def test_large_accumulators_take_the_int64_path_exactly():
    big = FixedType(36, 10, True, Rounding.TRN, Overflow.SAT)
    g = random_mlp([8, 4], input_type=big, weight_bits=20, seed=9)
    x = big.quantize(random_inputs(g, 300, seed=4))
    dense = g.node("fc1")
    _, _, magnitude = dense.acc_range(g.input.info)
    assert magnitude >= 1 << 53  # this model really needs int64
    got = run_raw(g, x)
    w, b = dense.kernel_q.raw, dense.bias_q.raw
    frac = dense.acc_frac(big.frac)
    exact = [[sum(int(x[n, i]) * int(w[i, j]) for i in range(8)) * (1 << (frac - big.frac - dense.kernel_q.frac))
              + int(b[j]) * (1 << (frac - dense.bias_q.frac)) for j in range(4)] for n in range(len(x))]
    assert np.array_equal(got, np.array(exact, dtype=np.int64))


def test_tables_follow_their_definition():
    idx = FixedType(8, 3, True, Rounding.RND, Overflow.SAT)
    out = FixedType(10, 2, True, Rounding.RND, Overflow.SAT)
    t = LookupTable.build("tanh", idx, out)
    assert t.size == 256
    x_raw = np.arange(-2000, 2000, dtype=np.float64)  # at 9 fractional bits
    got = t.lookup(x_raw, 9)
    index_value = idx.to_float(idx.requantize(x_raw, 9))
    assert np.array_equal(got, out.quantize(np.tanh(index_value)))


def test_softmax_keeps_the_argmax_and_sums_near_one():
    from nnfpga.compiler.frontends.precision import Precision
    exp, inv, out = Precision().softmax_tables(5)
    node = Activation("sm", ["input"], out_type=out, function="softmax", table=exp, inv_table=inv)
    g = assign_types(Graph("sm", [Input("input", [], out_type=I8, shape=(5,)), node], ["sm"]))
    x = random_inputs(g, 2000, seed=2)
    y = out.to_float(run_raw(g, I8.quantize(x)))
    xq = I8.to_float(I8.quantize(x))
    unique_max = np.sort(xq, axis=1)[:, -1] - np.sort(xq, axis=1)[:, -2] > 0.25
    assert np.array_equal(y.argmax(1)[unique_max], xq.argmax(1)[unique_max])
    assert np.abs(y.sum(1) - 1).max() < 0.02


def test_hard_tanh_and_linear_conversions():
    out = FixedType(6, 2, True, Rounding.RND, Overflow.SAT)
    for function in ("hard_tanh", "linear"):
        node = Activation("a", ["input"], out_type=out, function=function)
        g = assign_types(Graph("a", [Input("input", [], out_type=I8, shape=(3,)), node], ["a"]))
        x_raw = np.arange(-128, 128, dtype=np.float64).repeat(3).reshape(-1, 3)
        v = I8.to_float(x_raw)
        ref = np.clip(v, -1, 1) if function == "hard_tanh" else v
        assert np.array_equal(run_raw(g, x_raw), out.quantize(ref).astype(np.int64))


def test_quantizers_match_qkeras_definitions():
    w = np.array([-0.5, -0.33, -0.2, 0.0, 0.2, 0.33, 0.5, 1.7], dtype=np.float32)
    assert Quantizer(WeightKind.TERNARY).apply(w).raw.tolist() == [-1, -1, 0, 0, 0, 1, 1, 1]
    assert Quantizer(WeightKind.BINARY).apply(w).raw.tolist() == [-1, -1, -1, 1, 1, 1, 1, 1]
    po2 = Quantizer(WeightKind.PO2, min_exp=-4, max_exp=1).apply(w)
    assert po2.value.tolist() == [-0.5, -0.25, -0.25, 0.0625, 0.25, 0.25, 0.5, 2.0]
    bits = Quantizer(WeightKind.FIXED, FixedType(4, 1, True, Rounding.RND_CONV, Overflow.SAT)).apply(w)
    assert bits.value.tolist() == [-0.5, -0.375, -0.25, 0.0, 0.25, 0.375, 0.5, 0.875]


def test_graph_json_round_trip_keeps_every_op(tmp_path):
    g = _conv_graph("same", (2, 2))
    g.save(tmp_path / "g.json")
    again = load_ir(tmp_path / "g.json", complete=False)
    x = I8.quantize(random_inputs(g, 50))
    assert np.array_equal(run_raw(g, x), run_raw(again, x))


@pytest.mark.parametrize("alpha, raw, frac", [(0.1, 3277, 15), (0.01, 655, 16), (0.25, 1, 2), (0.3, 19661, 16)])
def test_leaky_relu_matches_integer_reference(alpha, raw, frac):
    """Exhaustive over an 8-bit input: y = x (x >= 0) or x * alpha_q (exact) at
    x_frac + alpha_frac fractional bits, then the output conversion; exact and converted
    output types (RND SAT, TRN WRAP that overflows, the auto_frac rule)."""
    from nnfpga.ir.ops.activation import quantize_alpha
    assert quantize_alpha(alpha) == (raw, frac)
    x_raw = np.arange(-128, 128, dtype=np.float64).repeat(3).reshape(-1, 3)
    xi = x_raw.astype(np.int64)
    exact = np.where(xi >= 0, xi << frac, xi * raw)          # raw at 5 + frac fractional bits
    for out in (None, FixedType(6, 2, True, Rounding.RND, Overflow.SAT),
                FixedType(5, 1, True, Rounding.TRN, Overflow.WRAP), "auto"):
        node = Activation("lk", ["input"], function="leaky_relu", alpha=alpha,
                          out_type=None if out == "auto" else out, auto_frac=4 if out == "auto" else None)
        g = assign_types(Graph("a", [Input("input", [], out_type=I8, shape=(3,)), node], ["lk"]))
        t = node.info.type
        got = run_raw(g, x_raw)
        if out is None:
            assert (t.frac, node.info.lo, node.info.hi) == (5 + frac, int(exact.min()), int(exact.max()))
            assert np.array_equal(got, exact)
        else:
            # the exact value is a dyadic rational that float64 holds exactly: quantize it
            want = t.quantize(np.ldexp(exact.astype(np.float64), -(5 + frac))).astype(np.int64)
            assert np.array_equal(got, want), out
            if out == "auto":
                assert t.frac == 4 and t.rounding is Rounding.RND and t.overflow is Overflow.SAT
        assert int(got.min()) >= node.info.lo and int(got.max()) <= node.info.hi
        again = Graph.from_json(g.to_json())
        lk = again.node("lk")
        assert (lk.alpha, lk.alpha_raw, lk.alpha_frac) == (alpha, raw, frac)
        assert np.array_equal(run_raw(again, x_raw), got)


def test_leaky_relu_int64_path_and_slope_checks():
    """Products beyond 2**53 take the int64 path exactly; slopes outside (0, 1) are refused
    naming the node; an exact slope can be given as alpha_raw / alpha_frac (stripped)."""
    wide = FixedType(47, 20, True, Rounding.TRN, Overflow.WRAP)   # products of up to 59 bits
    node = Activation("lk", ["input"], function="leaky_relu", alpha=0.1)
    g = assign_types(Graph("w", [Input("input", [], out_type=wide, shape=(2,)), node], ["lk"]))
    rng = np.random.default_rng(0)
    xi = np.concatenate([rng.integers(wide.min_raw, wide.max_raw, (500, 2)), [[wide.min_raw, wide.max_raw]]])
    got = run_raw(g, xi.astype(np.int64))
    want = [[v << 15 if v >= 0 else v * 3277 for v in map(int, row)] for row in xi]
    assert got.dtype == np.int64 and got.tolist() == want
    for bad in (0.0, -0.2, 1.0, 2.5, float("inf")):
        with pytest.raises(ValueError, match=r"leaky_relu 'bad one'.*0 < alpha < 1"):
            Activation("bad one", ["x"], function="leaky_relu", alpha=bad)
    with pytest.raises(ValueError, match="'no slope'"):
        Activation("no slope", ["x"], function="leaky_relu")
    with pytest.raises(ValueError, match="'too steep'"):
        Activation("too steep", ["x"], function="leaky_relu", alpha_raw=5, alpha_frac=2)
    exact = Activation("e", ["x"], function="leaky_relu", alpha_raw=12, alpha_frac=5)
    assert (exact.alpha_raw, exact.alpha_frac, exact.alpha_q, exact.float_alpha) == (3, 3, 0.375, 0.375)
