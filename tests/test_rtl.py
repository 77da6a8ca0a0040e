"""RTL backend: the description, the VHDL/Verilog printers and the simulators, all compared
bit for bit with the golden emulator (`nnfpga.ir.emulator.run_raw`).

* description tests (pure Python, fast): `evaluate` (the netlist interpreter, which also
  checks that every value lies in its signal's range) against the emulator; the rule for
  multipliers; the latency formula; unsupported layers.
* Verilator (>= 10,000 samples per model by default, 100,000 in the slow suite) and GHDL
  (>= 10,000 samples; 100,000 in the slow suite) runs: outputs equal to the emulator, and ``out_valid`` exactly
  ``latency_cycles`` after every ``in_valid`` (checked cycle by cycle by the harnesses,
  also with idle cycles between samples).

Equality is exact everywhere; there are no tolerances.
"""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest

from tests.conftest import have, needs_ghdl, needs_verilator, require_tool

from nnfpga.backends.rtl import (RtlConfig, RtlUnsupportedError, evaluate, lower, print_verilog,
                                 print_vhdl, read_summary, write_rtl)
from nnfpga.backends.rtl.netlist import MulConst, Reg, Sum
from nnfpga.compiler.frontends.precision import Precision
from nnfpga.compiler.passes.assign_types import assign_types
from nnfpga.ir.emulator import quantize_input, run_raw
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D, Dense, Input, Reshape
from nnfpga.ir.quant import QuantArray, Quantizer, WeightKind
from tests.irmodels import hard_sigmoid_corner_graph, hard_sigmoid_mlp, leaky_mlp, random_inputs, random_mlp

KINDS = ["fixed", "ternary", "binary", "po2"]


# --------------------------------------------------------------------------- helpers
def denser(graph: Graph, kind: str, seed: int = 0, zero_fraction: float = 0.3) -> Graph:
    """Replace every Dense kernel by random integers of ``kind`` (random_mlp's ternary
    kernels are very sparse past the first layer), then redo range analysis."""
    rng = np.random.default_rng(seed)
    for n in graph.nodes:
        if not isinstance(n, Dense):
            continue
        shape = n.kernel_q.raw.shape
        if kind == "ternary":
            raw = rng.choice([-1, 0, 1], size=shape, p=[(1 - zero_fraction) / 2, zero_fraction,
                                                       (1 - zero_fraction) / 2])
        elif kind == "binary":
            raw = rng.choice([-1, 1], size=shape)
        elif kind == "po2":
            raw = rng.choice([-1, 1], size=shape) * (1 << rng.integers(0, 5, size=shape))
        else:
            raw = rng.integers(-31, 32, size=shape)
            raw[rng.random(shape) < zero_fraction] = 0
        n.kernel_q = QuantArray(raw.astype(np.int64), n.kernel_q.frac, WeightKind(kind))
    return assign_types(graph)


def model(sizes, kind, final="linear", seed=0, dense=False, name="mlp") -> Graph:
    g = random_mlp(sizes, seed=seed, weight_kind=kind, final_activation=final, name=name)
    return denser(g, kind, seed) if dense else g


def inputs(graph: Graph, n: int, seed: int = 1) -> np.ndarray:
    return quantize_input(graph, random_inputs(graph, n, seed)).astype(np.int64)


def assert_bit_exact(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    bad = np.argwhere(got != want)
    assert bad.size == 0, (f"{what}: {len(bad)} of {want.size} outputs differ; first (sample, output): "
                           + ", ".join(f"{tuple(i)}: got {got[tuple(i)]} want {want[tuple(i)]}"
                                       for i in bad[:5]))


def element_ranges(graph: Graph) -> dict[str, list[tuple[int, int]]]:
    """Per-element raw ranges of every node, by plain interval arithmetic (written
    independently of the backend's lowering, to cross-check its constant folding)."""
    out: dict[str, list[tuple[int, int]]] = {}
    prev: list[tuple[int, int]] = []
    prev_frac = 0
    for n in graph.nodes:
        t = n.info.type
        if isinstance(n, Input):
            cur = [(t.min_raw, t.max_raw)] * int(np.prod(n.info.shape))
        elif isinstance(n, Reshape):
            cur = prev
        elif isinstance(n, Dense):
            af = n.acc_frac(prev_frac)
            sh = af - prev_frac - n.kernel_q.frac
            w = n.kernel_q.raw
            bias = [0] * n.n_out if n.bias_q is None else \
                [int(b) << (af - n.bias_q.frac) for b in n.bias_q.raw]
            cur = []
            for j in range(n.n_out):
                lo = hi = bias[j]
                for i, (a, b) in enumerate(prev):
                    p, q = int(w[i, j]) * a << sh, int(w[i, j]) * b << sh
                    lo, hi = lo + min(p, q), hi + max(p, q)
                cur.append(_convert(t, lo, hi, af))
        elif n.function == "hard_sigmoid":  # clip(x + 2**f, 0, 2**(f + 1)) at f + 1
            one = 1 << prev_frac
            cur = [_convert(t, min(max(lo + one, 0), 2 * one), min(max(hi + one, 0), 2 * one), prev_frac + 1)
                   for lo, hi in prev]
        else:  # relu / linear activation
            cur = [_convert(t, max(lo, 0), max(hi, 0), prev_frac) if n.function == "relu"
                   else _convert(t, lo, hi, prev_frac) for lo, hi in prev]
        out[n.name] = cur
        prev, prev_frac = cur, t.frac
    return out


def _convert(t: FixedType, lo: int, hi: int, frac: int) -> tuple[int, int]:
    """Range after ``t.requantize`` (rounding is monotone; SAT clips; WRAP of a range
    that does not fit can give any value of the type)."""
    rounding_only = FixedType(62, 62 - t.frac, True, t.rounding, Overflow.SAT)
    a, b = (int(v) for v in rounding_only.requantize(np.array([lo, hi], dtype=np.int64), frac))
    if t.contains(a, b):
        return a, b
    if t.overflow is Overflow.SAT:
        return min(max(a, t.min_raw), t.max_raw), min(max(b, t.min_raw), t.max_raw)
    return t.min_raw, t.max_raw


def expected_multipliers(graph: Graph) -> int:
    """THE MULTIPLIER RULE (reuse factor 1).  One constant multiplier (`MulConst`) per
    Dense weight ``w[i, j]`` (raw integer) with

    * ``w != 0``  (zero weights are skipped),
    * ``|w|`` not a power of two  (``|w| = 2**k``, which covers every ternary, binary and
      power-of-two weight and also fixed weights such as 1, 2, 4, 16, is a shift: wiring
      plus an add or subtract in the tree), and
    * input element ``i`` not constant  (a constant input, e.g. a ReLU output whose range
      is [0, 0], folds into the bias).

    The multiplier multiplies by the odd part ``|w| / 2**k`` (``k`` trailing zeros); the
    sign and the shift go to the adder tree.  Ternary, binary and po2 layers therefore
    have no multiplier at all."""
    ranges = element_ranges(graph)
    total, prev = 0, None
    for n in graph.nodes:
        if isinstance(n, Dense):
            for i, (lo, hi) in enumerate(ranges[prev]):
                if lo == hi:
                    continue
                mags = np.abs(n.kernel_q.raw[i]).astype(np.int64)
                total += int(np.sum((mags != 0) & ((mags & (mags - 1)) != 0)))
        prev = n.name
    return total




def corner_graph(seed: int = 0, n_in: int = 2) -> Graph:
    """Small, exhaustively testable chain exercising every conversion path: a Dense with
    a requantising out type (RND, SAT), a ReLU into a narrow WRAP type, Dense -> Dense
    without activation (RND_CONV, WRAP), a hard_tanh, a linear activation into TRN/SAT,
    a weight column of zeros, an all-negative column, weights that are +-powers of two,
    zero bias entries, an unsigned input."""
    rng = np.random.default_rng(seed)
    nodes = [Input("in.put", [], out_type=FixedType(6, 2, False, Rounding.TRN, Overflow.WRAP), shape=(n_in,))]

    def dense(name, a, b, out_type, kernel=None):
        k = kernel if kernel is not None else rng.integers(-20, 21, size=(a, b))
        if kernel is None:
            k[:, 0] = 0                      # constant output
            k[:, 1] = -np.abs(k[:, 1]) - 1   # all negative
            if b > 2:
                k[0, 2] = 8                  # power of two
        bias = rng.integers(-40, 41, size=b)
        bias[0 if kernel is None else -1] = 0
        d = Dense(name, [nodes[-1].name], out_type=out_type, kernel=k.astype(float), bias=bias.astype(float),
                  kernel_quantizer=Quantizer(WeightKind.FIXED, FixedType(8, 4)),
                  bias_quantizer=Quantizer(WeightKind.FIXED, FixedType(10, 4)))
        d.kernel_q = QuantArray(k.astype(np.int64), 3)
        d.bias_q = QuantArray(bias.astype(np.int64), 2)
        nodes.append(d)

    dense("Dense 1", n_in, 4, FixedType(9, 4, True, Rounding.RND, Overflow.SAT))
    nodes.append(Activation("relu-1", [nodes[-1].name], function="relu",
                            out_type=FixedType(4, 2, False, Rounding.TRN, Overflow.WRAP)))
    dense("dense_2", 4, 3, FixedType(6, 2, True, Rounding.RND_CONV, Overflow.WRAP))
    dense("signal", 3, 3, None)  # exact accumulator, a VHDL keyword as a name
    nodes.append(Activation("ht", [nodes[-1].name], function="hard_tanh",
                            out_type=FixedType(8, 3, True, Rounding.RND, Overflow.SAT)))
    nodes.append(Activation("lin", [nodes[-1].name], function="linear",
                            out_type=FixedType(5, 1, True, Rounding.TRN, Overflow.SAT)))
    return assign_types(Graph("corner-case model.v2", nodes, [nodes[-1].name]))


def all_inputs(graph: Graph) -> np.ndarray:
    t = graph.input.info.type
    n = graph.input.info.shape[0]
    grid = np.meshgrid(*[np.arange(t.min_raw, t.max_raw + 1)] * n, indexing="ij")
    return np.stack([g.reshape(-1) for g in grid], axis=1).astype(np.int64)


# --------------------------------------------------------------------------- description
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("final", ["linear", "relu"])
def test_description_is_bit_exact(kind, final):
    for sizes, seed in (([16, 64, 32, 32, 5], 0), ([5, 7, 3], 1), ([3, 2, 2], 2), ([1, 1], 3)):
        for dense in (False, True):
            g = model(sizes, kind, final, seed, dense=dense)
            nl = lower(g)
            x = inputs(g, 2000, seed)
            assert_bit_exact(evaluate(nl, x), run_raw(g, x), f"{kind}/{final}/{sizes}/dense={dense}")


def hidden_table_graph(function: str, seed: int = 0) -> Graph:
    """An MLP whose first hidden activation is a lookup table, and whose input goes
    through a table first (an activation that follows no Dense)."""
    g = random_mlp([6, 10, 7, 3], seed=seed, final_activation="relu")
    table = Precision().table(function)
    g.nodes[2] = Activation("hidden " + function, ["fc1"], function=function, table=table)
    g.nodes[3].inputs = ["hidden " + function]
    g.nodes.insert(1, Activation("in_" + function, ["input"], function=function, table=table))
    g.nodes[2].inputs = ["in_" + function]
    return assign_types(g)


@pytest.mark.parametrize("function", ["tanh", "sigmoid"])
def test_description_tables(function):
    for sizes, seed in (([8, 12, 6, 4], 0), ([3, 2], 1)):
        g = model(sizes, "fixed", function, seed)
        x = inputs(g, 5000, seed)
        assert_bit_exact(evaluate(lower(g), x), run_raw(g, x), f"{function} {sizes}")
    g = hidden_table_graph(function)
    nl = lower(g)
    x = inputs(g, 5000)
    assert_bit_exact(evaluate(nl, x), run_raw(g, x), f"hidden {function}")
    assert len(nl.tables()) == 2 and [i.latency for i in nl.layers if i.kind == "table"] == [2, 2]


def test_corner_graph_exhaustive():
    g = corner_graph()
    nl = lower(g)
    x = all_inputs(g)
    assert_bit_exact(evaluate(nl, x), run_raw(g, x), "corner graph")
    assert nl.name == "corner_case_model_v2"
    assert nl.count(MulConst) == expected_multipliers(g)


def leaky_corner_graph() -> Graph:
    """Two unsigned 6-bit inputs (exhaustively testable) -> Dense 2->4 whose outputs are
    never negative, never positive, of both signs and constant -> leaky ReLU 0.1 with an
    exact output type (22 fractional bits) -> Dense 4->3 (products and sums wider than a
    VHDL integer) -> leaky ReLU 0.3 into fixed<8,3,RND,SAT> -> Reshape -> a stand-alone
    leaky ReLU 0.5 (wiring) into fixed<6,1,TRN,WRAP>, which overflows."""
    nodes = [Input("in", [], out_type=FixedType(6, 2, False, Rounding.TRN, Overflow.WRAP), shape=(2,))]

    def dense(name, kernel, bias):
        d = Dense(name, [nodes[-1].name], kernel=np.asarray(kernel, float), bias=np.asarray(bias, float))
        d.kernel_q = QuantArray(np.asarray(kernel, np.int64), 3)
        d.bias_q = QuantArray(np.asarray(bias, np.int64), 2)
        nodes.append(d)

    dense("fc1", [[5, -7, 9, 0], [3, -2, -13, 0]], [4, -1, 3, -5])
    nodes.append(Activation("lk1", ["fc1"], function="leaky_relu", alpha=0.1))
    dense("fc2", [[11, -6, 3], [-9, 7, 5], [13, 2, -7], [1, 1, 1]], [0, 2, -3])
    nodes.append(Activation("lk2", ["fc2"], function="leaky_relu", alpha=0.3,
                            out_type=FixedType(8, 3, True, Rounding.RND, Overflow.SAT)))
    nodes.append(Reshape("flat", ["lk2"], target_shape=(-1,)))   # lk3 follows no Dense
    nodes.append(Activation("lk3", ["flat"], function="leaky_relu", alpha=0.5,
                            out_type=FixedType(6, 1, True, Rounding.TRN, Overflow.WRAP)))
    return assign_types(Graph("leaky_corner", nodes, ["lk3"]))


def test_description_leaky_relu():
    """Leaky ReLUs folded into Dense layers (reuse 1 and 3) and stand-alone, bit-exact; a
    sign-selected multiplier by the odd slope (3277 = 0.1 * 2**15, 655 = 0.01 * 2**16)
    per non-constant output of both signs, wiring for a power-of-two slope."""
    from nnfpga.backends.rtl.netlist import Mux
    for reuse in (1, 3):
        g = leaky_mlp([10, 12, 8, 4], seed=4, reuse_factor=reuse)
        nl = lower(g)
        x = inputs(g, 3000, seed=5)
        assert_bit_exact(evaluate(nl, x), run_raw(g, x), f"leaky mlp, reuse {reuse}")
        consts = [op.c for op in nl.primitive_ops() if isinstance(op, MulConst)]
        assert consts.count(3277) >= 1 and consts.count(655) >= 10
        assert not any(isinstance(op, (MulConst, Mux)) for op in nl.primitive_ops() if op.out.layer == "leaky_out")
    # pipelined like products: M registers after the stand-alone one's multipliers, and a
    # register before and M after those folded into a Dense; none for a power-of-two slope
    g = leaky_mlp([10, 12, 8, 4], seed=4)
    for mr in (1, 2, 3):
        lat = {i.name: i.latency for i in lower(g, RtlConfig(levels_per_register=1, multiplier_registers=mr)).layers}
        assert lat["leaky_in"] == 1 + mr
        assert lat["fc1"] == mr + 4 + 1 + (1 + mr) and lat["fc3"] == mr + 3 + 1, (mr, lat)
    g = leaky_corner_graph()
    nl = lower(g)
    x = all_inputs(g)
    assert_bit_exact(evaluate(nl, x), run_raw(g, x), "leaky corner graph")
    ops = nl.primitive_ops()
    # fc1: outputs 0 (>= 0: wiring) and 3 (constant) need nothing, 1 (<= 0) a multiplier only,
    # 2 (both signs) a multiplier and a multiplexer
    assert sum(isinstance(op, MulConst) and op.out.layer == "fc1" and op.c == 3277 for op in ops) == 2
    assert sum(isinstance(op, Mux) and op.out.layer == "fc1" for op in ops) == 1
    lk = run_raw(g, x)
    assert (lk < 0).any() and (lk > 0).any()


def test_description_hard_sigmoid():
    """Hard sigmoids folded into Dense layers (every weight kind, reuse 1 and 3) and
    stand-alone, bit-exact; no multiplier (an adder of a constant and a clip), folded
    without a layer of their own; both clip sides, saturation and wrap-around reached."""
    for kind in KINDS:
        for reuse in (1, 3):
            g = hard_sigmoid_mlp([10, 12, 8, 4], seed=5, weight_kind=kind, reuse_factor=reuse)
            nl = lower(g)
            x = inputs(g, 3000, seed=5)
            assert_bit_exact(evaluate(nl, x), run_raw(g, x), f"hard_sigmoid mlp, {kind}, reuse {reuse}")
            assert [i.name for i in nl.layers] == ["hs_in", "fc1", "fc2", "fc3"]   # folded
            assert nl.layers[0].latency == 1 and nl.layers[0].multipliers == 0
            if reuse == 1:
                assert nl.count(MulConst) == expected_multipliers(g)
    from nnfpga.ir.emulator import trace_raw
    g = hard_sigmoid_mlp([10, 12, 8, 4], seed=5)
    x = inputs(g, 3000, seed=5)
    values = trace_raw(g, x)
    for name in ("fc1", "fc2", "fc3"):   # clipped below and above
        one = 1 << g.node(name).info.type.frac
        assert (values[name] < -one).any() and (values[name] > one).any(), name
    assert (values["hs1"] == 127).any()                                       # 1 saturated
    above = values["fc2"] > 1 << g.node("fc2").info.type.frac
    assert above.any() and (values["hs2"][above] == 0).all()                   # 1 wrapped to 0
    g = hard_sigmoid_corner_graph()
    nl = lower(g)
    x = all_inputs(g)
    want = run_raw(g, x)
    assert_bit_exact(evaluate(nl, x), want, "hard_sigmoid corner graph")
    assert nl.count(MulConst) == expected_multipliers(g)
    assert g.node("hs1").info.type == FixedType(5, 1, False, Rounding.TRN, Overflow.WRAP)   # frac 3 + 1
    assert g.node("hs1").info.lo == 0 and g.node("hs1").info.hi == 16
    values = trace_raw(g, x)
    assert (values["hs1"] == 0).any() and (values["hs1"] == 16).any() and (values["hs2"] == 15).any()
    assert set(np.unique(values["hs1"][:, 4])) == {0, 8, 16}   # the deferred-shift column: 0, 0.5, 1


@pytest.mark.parametrize("kind", KINDS)
def test_multiplier_rule(kind):
    """MulConst count == `expected_multipliers` (see its docstring for the rule)."""
    for sizes, seed, dense in (([16, 64, 32, 32, 5], 0, False), ([16, 64, 32, 32, 5], 0, True),
                               ([6, 5, 4], 3, True), ([3, 2, 2], 2, False)):
        g = model(sizes, kind, "relu", seed, dense=dense)
        nl = lower(g)
        n_mul = nl.count(MulConst)
        assert n_mul == expected_multipliers(g), f"{kind} {sizes} dense={dense}"
        assert n_mul == sum(info.multipliers for info in nl.layers)
        if kind != "fixed":
            assert n_mul == 0
    g = model([16, 64, 32, 32, 5], "fixed", "relu", 0, dense=True)
    assert lower(g).count(MulConst) > 1000  # the fixed rule is not vacuous


def test_multiplier_rule_fixed_weights_detail():
    """Hand-made weights: zero, +-1, +-2**k, odd and even non-powers of two."""
    raw = np.array([[0, 1, -1, 2, -8, 3, -6, 12, 7, -5]], dtype=np.int64)
    nodes = [Input("x", [], out_type=FixedType(8, 3), shape=(1,))]
    d = Dense("d", ["x"], kernel=raw.astype(float), bias=None)
    d.kernel_q = QuantArray(raw, 2)
    nodes.append(d)
    g = assign_types(Graph("w", nodes, ["d"]))
    nl = lower(g)
    mults = sorted(op.c for op in nl.primitive_ops() if isinstance(op, MulConst))
    assert mults == [3, 3, 3, 5, 7]  # odd parts of 3, -6, 12, -5, 7
    x = all_inputs(g)
    assert_bit_exact(evaluate(nl, x), run_raw(g, x), "detail")


@pytest.mark.parametrize("lpr,mr", [(1, 2), (2, 2), (3, 2), (1, 1), (2, 3)])
def test_latency_formula(lpr, mr):
    for kind in ("fixed", "binary"):
        g = model([16, 64, 32, 32, 5], kind, "relu", 0, dense=True)
        nl = lower(g, RtlConfig(levels_per_register=lpr, multiplier_registers=mr))
        total = 0
        for info, node in zip(nl.layers, [n for n in g.nodes if isinstance(n, Dense)]):
            leaves = max(int(np.count_nonzero(node.kernel_q.raw[:, j])) for j in range(node.n_out))
            depth = math.ceil(math.log2(leaves)) if leaves > 1 else 0
            want = mr * int(kind == "fixed") + math.ceil(depth / lpr) + 1
            assert info.latency == want, (kind, info.name, info.latency, want)
            total += want
        assert nl.latency == total
        regs = [op for op in nl.primitive_ops() if isinstance(op, Reg)]
        assert max(r.out.stage for r in regs) == nl.latency
    assert lower(model([4, 3], "fixed"), RtlConfig(register_input=True)).latency == \
        lower(model([4, 3], "fixed")).latency + 1


def test_adder_tree_is_minimal():
    """Per output: (leaves - 1) tree adders, plus one add for a non-zero bias or a
    negation (an all-negative sum), plus the rounding adders of the conversion."""
    g = model([12, 9, 4], "ternary", "linear", 5, dense=True)  # linear: exact accumulator
    nl = lower(g)
    d = g.nodes[1]
    want = 0
    for j in range(d.n_out):
        col = d.kernel_q.raw[:, j]
        leaves = int(np.count_nonzero(col))
        want += max(leaves - 1, 0) + int(int(d.bias_q.raw[j]) != 0 or (leaves > 0 and np.all(col[col != 0] < 0)))
    first = [op for op in nl.primitive_ops() if isinstance(op, Sum) and op.is_adder and op.out.layer == "fc1"]
    assert len(first) == want


def test_config_and_unsupported_layers():
    with pytest.raises(ValueError, match="levels_per_register"):
        RtlConfig(levels_per_register=0)
    for bad in (0, 4, True):
        with pytest.raises(ValueError, match="multiplier_registers"):
            RtlConfig(multiplier_registers=bad)
    g = random_mlp([4, 3, 2])
    g.nodes.append(Activation("soft max", ["fc2"], function="softmax", out_type=FixedType(8, 1, False)))
    g.outputs = ["soft max"]
    g = assign_types(g)
    with pytest.raises(RtlUnsupportedError, match="'soft max'.*softmax"):
        lower(g)
    g = random_mlp([4, 3, 2])
    g.nodes[1].reuse_factor = 0
    with pytest.raises(RtlUnsupportedError, match="'fc1'.*reuse factor 0"):
        lower(g)
    k = np.ones((3, 3, 1, 2))
    conv = Conv2D("conv_a", ["img"], kernel=k, kernel_q=QuantArray(np.ones((3, 3, 1, 2), np.int64), 0))
    g = Graph("c", [Input("img", [], out_type=FixedType(8, 3), shape=(5, 5, 1)), conv], ["conv_a"]).infer()
    conv.kernel_q = None
    with pytest.raises(RtlUnsupportedError, match="conv_a.*not quantised"):
        lower(g)


def test_reshape_is_wiring():
    g = random_mlp([6, 4, 2], seed=4)
    inp = g.nodes[0]
    inp.shape = (2, 3)
    g.nodes.insert(1, Reshape("flat", ["input"], target_shape=(-1,)))
    g.nodes[2].inputs = ["flat"]
    g = assign_types(g)
    x = quantize_input(g, np.random.default_rng(0).uniform(-5, 5, (500, 2, 3))).astype(np.int64)
    nl = lower(g)
    assert_bit_exact(evaluate(nl, x.reshape(500, 6)), run_raw(g, x), "reshape")


def test_printed_text(tmp_path):
    g = corner_graph()
    info = write_rtl(g, tmp_path)
    assert info == read_summary(tmp_path)
    vhd = (tmp_path / info["files"]["vhdl"]).read_text()
    v = (tmp_path / info["files"]["verilog"]).read_text()
    assert info["top"] == "corner_case_model_v2"
    assert f"entity {info['top']} is" in vhd and f"module {info['top']} (" in v
    for text in (vhd, v):
        assert f"Latency {info['latency_cycles']} clock cycles" in text
        assert "Dense 1" in text and "relu-1" in text  # layer names in the header
    assert info["ii_cycles"] == 1
    assert info["in_width"] == 6 and info["out_width"] == 5
    assert [layer["latency_cycles"] for layer in info["layers"]] and \
        sum(layer["latency_cycles"] for layer in info["layers"]) == info["latency_cycles"]
    assert print_vhdl(lower(g)) == vhd and print_verilog(lower(g)) == v  # deterministic


def test_verilog_is_strict_verilog_2005(tmp_path):
    require_tool("iverilog")
    for g in (corner_graph(), model([8, 6, 3], "po2", "relu", 1)):
        info = write_rtl(g, tmp_path / g.name)
        subprocess.run(["iverilog", "-g2005", "-Wall", "-o", str(tmp_path / "a.out"),
                        str(tmp_path / g.name / info["files"]["verilog"])], check=True,
                       capture_output=True, text=True)


# --------------------------------------------------------------------------- simulators
FAST_SIM = [("fixed", "linear", [16, 24, 12, 5]), ("ternary", "relu", [16, 32, 16, 5]),
            ("binary", "linear", [16, 24, 12, 5]), ("po2", "relu", [16, 24, 12, 5]),
            ("fixed", "relu", [8, 12, 6, 4]), ("po2", "linear", [8, 12, 6, 4]),
            ("ternary", "linear", [8, 12, 6, 4]), ("binary", "relu", [8, 12, 6, 4])]


@needs_verilator
@pytest.mark.parametrize("kind,final,sizes", FAST_SIM)
def test_verilator_bit_exact(tmp_path, kind, final, sizes):
    from nnfpga.sim.verilator import run_verilator
    g = model(sizes, kind, final, seed=7, dense=True)
    write_rtl(g, tmp_path)
    x = inputs(g, 10_000)
    assert_bit_exact(run_verilator(tmp_path, x), run_raw(g, x), f"Verilator {kind}/{final}/{sizes}")


@needs_verilator
def test_verilator_corner_cases_idle_cycles_and_config(tmp_path):
    """Exhaustive inputs of the corner graph; random idle cycles; 2 levels per register
    and a registered input: the harness checks out_valid cycle by cycle."""
    from nnfpga.sim.verilator import run_verilator
    g = corner_graph()
    x = all_inputs(g)
    want = run_raw(g, x)
    for cfg in (RtlConfig(), RtlConfig(levels_per_register=2, register_input=True)):
        d = tmp_path / str(cfg.levels_per_register)
        info = write_rtl(g, d, cfg)
        assert_bit_exact(run_verilator(d, x), want, f"corner {cfg}")
        st = {}
        assert_bit_exact(run_verilator(d, x, idle_permille=300, seed=3, stats=st), want, "idle")
        assert st["cycles"] > len(x) * 1.2  # idle cycles happened
        assert info["latency_cycles"] == lower(g, cfg).latency
        # several model instances, each streaming a chunk in its own thread: the same bits
        for streams in (2, 3):
            assert_bit_exact(run_verilator(d, x, streams=streams), want, f"{streams} streams")
            assert_bit_exact(run_verilator(d, x, streams=streams, idle_permille=200, seed=5), want,
                             f"{streams} streams, idle")


@needs_verilator
def test_verilator_detects_wrong_latency(tmp_path):
    """The harness must fail when rtl.json claims a latency the RTL does not have."""
    import json

    from nnfpga.sim.verilator import SimulationError, run_verilator
    g = model([4, 3, 2], "fixed", "relu", 2)
    info = write_rtl(g, tmp_path)
    info["latency_cycles"] += 1
    (tmp_path / "rtl.json").write_text(json.dumps(info))
    with pytest.raises(SimulationError, match="out_valid"):
        run_verilator(tmp_path, inputs(g, 100))
    with pytest.raises(SimulationError, match="out_valid"):
        run_verilator(tmp_path, inputs(g, 100), streams=2)


@needs_verilator
def test_verilator_rejects_bad_inputs(tmp_path):
    from nnfpga.sim.verilator import run_verilator
    g = model([4, 3], "fixed")
    write_rtl(g, tmp_path)
    with pytest.raises(ValueError, match="outside"):
        run_verilator(tmp_path, np.full((3, 4), 1000))
    with pytest.raises(ValueError, match="shape"):
        run_verilator(tmp_path, np.zeros((3, 5)))


@needs_ghdl
@pytest.mark.parametrize("kind,final,sizes", [("fixed", "relu", [8, 12, 6, 4]),
                                              ("ternary", "linear", [8, 12, 6, 4]),
                                              ("binary", "relu", [6, 8, 4]),
                                              ("po2", "linear", [8, 12, 6, 4])])
def test_ghdl_bit_exact(tmp_path, kind, final, sizes):
    from nnfpga.sim.ghdl import run_ghdl
    g = model(sizes, kind, final, seed=8, dense=True)
    write_rtl(g, tmp_path)
    x = inputs(g, 10_000)
    assert_bit_exact(run_ghdl(tmp_path, x, idle_permille=100 if kind == "po2" else 0), run_raw(g, x),
                     f"GHDL {kind}/{final}/{sizes}")


@needs_verilator
@needs_ghdl
@pytest.mark.parametrize("function", ["tanh", "sigmoid"])
def test_tables_in_simulation(tmp_path, function):
    from nnfpga.sim.ghdl import run_ghdl
    from nnfpga.sim.verilator import run_verilator
    g = hidden_table_graph(function, seed=3)
    write_rtl(g, tmp_path)
    x = inputs(g, 10_000)
    want = run_raw(g, x)
    assert_bit_exact(run_verilator(tmp_path, x), want, f"Verilator {function}")
    assert_bit_exact(run_ghdl(tmp_path, x), want, f"GHDL {function}")


@needs_verilator
@needs_ghdl
@pytest.mark.parametrize("label, build", [("leaky", leaky_corner_graph),
                                          ("hard_sigmoid", hard_sigmoid_corner_graph)])
def test_corner_graph_in_simulation(tmp_path, label, build):
    """A corner graph, all 4,096 inputs, in Verilator and GHDL (with idle cycles)."""
    from nnfpga.sim.ghdl import run_ghdl
    from nnfpga.sim.verilator import run_verilator
    g = build()
    x = all_inputs(g)
    write_rtl(g, tmp_path)
    want = run_raw(g, x)
    assert_bit_exact(run_verilator(tmp_path, x), want, f"Verilator {label} corner graph")
    assert_bit_exact(run_ghdl(tmp_path, x, idle_permille=100), want, f"GHDL {label} corner graph")


@needs_verilator
@needs_ghdl
def test_vhdl_through_ghdl_synthesis(tmp_path):
    """GHDL synthesises the VHDL to a Verilog netlist, Verilator runs it: the VHDL is
    synthesisable and, at Verilator speed, bit-exact."""
    from nnfpga.sim.ghdl import run_ghdl_synth
    g = model([16, 24, 12, 5], "fixed", "relu", seed=9, dense=True)
    write_rtl(g, tmp_path)
    x = inputs(g, 10_000)
    assert_bit_exact(run_ghdl_synth(tmp_path, x, idle_permille=50), run_raw(g, x), "GHDL synth + Verilator")


def wide_graph(final: str = "relu", seed: int = 3) -> Graph:
    """24-bit inputs times 22-bit weights: products and sums wider than a VHDL integer
    (printed with numeric_std) next to narrow signals (integers)."""
    return random_mlp([12, 8, 4], seed=seed, weight_bits=22, act_bits=20, act_int=8,
                      input_type=FixedType(24, 10, True, Rounding.RND_CONV, Overflow.SAT),
                      final_activation=final)


def test_vhdl_integer_signals():
    """Every signal of range within +-(2**31 - 1) is an integer of exactly its range; the
    wider ones are numeric_std vectors of exactly their width."""
    import re

    from nnfpga.backends.rtl.vhdl_expr import is_int
    for g in (model([16, 24, 12, 5], "fixed", "relu", 3, dense=True), wide_graph()):
        nl = lower(g)
        text = print_vhdl(nl)
        decls = dict(re.findall(r"(?:signal|variable) (\w+) : ([^;]+);", text))
        sigs = nl.signals()
        assert set(decls) >= {s.name for s in sigs}
        for s in sigs:
            want = (f"integer range {s.lo} to {s.hi}" if is_int(s) else
                    f"{'signed' if s.signed else 'unsigned'}({s.width - 1} downto 0)")
            assert decls[s.name] == want, s
    narrow = print_vhdl(lower(model([16, 24, 12, 5], "fixed", "relu", 3, dense=True)))
    body = narrow[narrow.index("\nbegin\n"):]
    assert "shift_" not in body and "resize(" not in body and "lowbits(" not in body
    wide = lower(wide_graph())
    assert any(not is_int(s) for s in wide.signals()) and any(is_int(s) for s in wide.signals())


@needs_ghdl
@pytest.mark.parametrize("final", ["linear", "relu"])
def test_ghdl_wide_signals(tmp_path, final):
    """Integers and numeric_std vectors side by side (conversions at their borders), in
    GHDL and through GHDL's synthesis (whose Verilog writer needs `repair_ghdl_verilog`)."""
    from nnfpga.sim.ghdl import run_ghdl, run_ghdl_synth
    g = wide_graph(final)
    write_rtl(g, tmp_path)
    x = inputs(g, 5000)
    want = run_raw(g, x)
    assert_bit_exact(evaluate(lower(g), x), want, "description")
    # wide numeric_std arithmetic is slow in GHDL (~40 samples/s here): a few hundred
    assert_bit_exact(run_ghdl(tmp_path, x[:300]), want[:300], f"GHDL wide {final}")
    if have("verilator"):
        assert_bit_exact(run_ghdl_synth(tmp_path, x), want, f"GHDL synth wide {final}")


def test_repair_ghdl_verilog():
    from nnfpga.sim.ghdl import repair_ghdl_verilog
    from nnfpga.sim.verilator import SimulationError
    text = ('  assign a = b + "000000000000111000000000000000001";\n'
            "  assign c = {{3{4'b1010[3]}}, 4'b1010}; // sext\n"
            "  assign d = {{2{3'b011[2]}}, 3'b011};\n")
    assert repair_ghdl_verilog(text) == ("  assign a = b + 33'b000000000000111000000000000000001;\n"
                                         "  assign c = 7'b1111010; // sext\n"
                                         "  assign d = 5'b00011;\n")
    with pytest.raises(SimulationError, match="cannot repair"):
        repair_ghdl_verilog('  $display("x");\n')


EXAMPLES = ["qmlp", "ternary_mlp"]


def example_graph(name: str) -> Graph:
    from nnfpga.compiler.pipeline import build_graph
    from tests.conftest import MODELS
    return build_graph(MODELS / f"{name}.h5")


@needs_ghdl
@pytest.mark.parametrize("name", EXAMPLES)
def test_ghdl_example_models(tmp_path, name):
    """The shipped example models, 10,000 samples each in native GHDL (the 16-64-32-32-5
    qmlp runs at ~2,400 samples/s)."""
    from nnfpga.sim.ghdl import run_ghdl
    g = example_graph(name)
    write_rtl(g, tmp_path)
    x = inputs(g, 10_000, seed=2)
    assert_bit_exact(run_ghdl(tmp_path, x), run_raw(g, x), f"GHDL {name}")


@needs_ghdl
def test_ghdl_corner_cases(tmp_path):
    from nnfpga.sim.ghdl import run_ghdl
    g = corner_graph()
    x = all_inputs(g)
    write_rtl(g, tmp_path, RtlConfig(levels_per_register=2))
    assert_bit_exact(run_ghdl(tmp_path, x, idle_permille=200), run_raw(g, x), "GHDL corner graph")


@needs_ghdl
def test_ghdl_detects_wrong_latency(tmp_path):
    import json

    from nnfpga.sim.ghdl import run_ghdl
    from nnfpga.sim.verilator import SimulationError
    g = model([4, 3, 2], "fixed", "relu", 2)
    info = write_rtl(g, tmp_path)
    info["latency_cycles"] -= 1
    (tmp_path / "rtl.json").write_text(json.dumps(info))
    with pytest.raises(SimulationError, match="latency"):
        run_ghdl(tmp_path, inputs(g, 50))


# --------------------------------------------------------------------------- slow sweeps
BIG = [16, 64, 32, 32, 5]


@pytest.mark.slow
@needs_verilator
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("final", ["linear", "relu"])
def test_verilator_big_sweep(tmp_path, kind, final):
    from nnfpga.sim.verilator import run_verilator
    g = model(BIG, kind, final, seed=11, dense=(kind != "fixed"))
    write_rtl(g, tmp_path)
    x = inputs(g, 100_000, seed=5)
    assert_bit_exact(run_verilator(tmp_path, x), run_raw(g, x), f"Verilator {kind}/{final}/{BIG}")


@pytest.mark.slow
@needs_verilator
@needs_ghdl
@pytest.mark.parametrize("reuse", [1, 3])
def test_leaky_mlp_in_simulation(tmp_path, reuse):
    """The leaky MLP (leaky ReLUs folded into Dense layers, stand-alone and final), 20,000
    samples in Verilator, 2,000 in GHDL (its wide numeric_std products are slow)."""
    from nnfpga.sim.ghdl import run_ghdl
    from nnfpga.sim.verilator import run_verilator
    g = leaky_mlp([10, 12, 8, 4], seed=4, reuse_factor=reuse)
    write_rtl(g, tmp_path)
    x = inputs(g, 20_000, seed=6)
    want = run_raw(g, x)
    assert_bit_exact(run_verilator(tmp_path, x), want, f"Verilator leaky mlp, reuse {reuse}")
    assert_bit_exact(run_ghdl(tmp_path, x[:2000], idle_permille=50), want[:2000], f"GHDL leaky mlp, reuse {reuse}")


@pytest.mark.slow
@needs_verilator
@needs_ghdl
@pytest.mark.parametrize("kind,reuse", [("fixed", 1), ("po2", 3)])
def test_hard_sigmoid_mlp_in_simulation(tmp_path, kind, reuse):
    """The hard_sigmoid MLP (folded into Dense layers, stand-alone and final), 20,000
    samples in Verilator, 2,000 in GHDL."""
    from nnfpga.sim.ghdl import run_ghdl
    from nnfpga.sim.verilator import run_verilator
    g = hard_sigmoid_mlp([10, 12, 8, 4], seed=5, weight_kind=kind, reuse_factor=reuse)
    write_rtl(g, tmp_path)
    x = inputs(g, 20_000, seed=6)
    want = run_raw(g, x)
    assert_bit_exact(run_verilator(tmp_path, x), want, f"Verilator hard_sigmoid mlp, {kind}, reuse {reuse}")
    assert_bit_exact(run_ghdl(tmp_path, x[:2000], idle_permille=50), want[:2000],
                     f"GHDL hard_sigmoid mlp, {kind}, reuse {reuse}")


@pytest.mark.slow
@needs_verilator
def test_verilator_random_models_sweep(tmp_path):
    """Many small random models with random configurations, 100,000 samples in total."""
    from nnfpga.sim.verilator import run_verilator
    rng = np.random.default_rng(2024)
    for k in range(10):
        sizes = [int(v) for v in rng.integers(1, 10, size=rng.integers(2, 5))]
        kind = KINDS[k % 4]
        g = model(sizes, kind, ["linear", "relu"][k % 2], seed=k, dense=bool(k % 3))
        cfg = RtlConfig(levels_per_register=int(rng.integers(1, 4)), register_input=bool(k % 2))
        d = tmp_path / str(k)
        write_rtl(g, d, cfg)
        x = inputs(g, 10_000, seed=k)
        assert_bit_exact(run_verilator(d, x, idle_permille=int(rng.integers(0, 400))), run_raw(g, x),
                         f"model {k}: {kind} {sizes} {cfg}")


@pytest.mark.slow
@needs_verilator
@needs_ghdl
@pytest.mark.parametrize("kind", ["fixed", "ternary"])   # binary/po2 VHDL: test_ghdl_big
def test_vhdl_big_through_ghdl_synthesis(tmp_path, kind):
    from nnfpga.sim.ghdl import run_ghdl_synth
    g = model(BIG, kind, "linear", seed=12, dense=(kind != "fixed"))
    write_rtl(g, tmp_path)
    x = inputs(g, 100_000, seed=7)
    assert_bit_exact(run_ghdl_synth(tmp_path, x), run_raw(g, x), f"GHDL synth {kind}/{BIG}")


@pytest.mark.slow
@needs_ghdl
@pytest.mark.parametrize("name", EXAMPLES)
def test_ghdl_example_models_big(tmp_path, name):
    from nnfpga.sim.ghdl import run_ghdl
    g = example_graph(name)
    write_rtl(g, tmp_path)
    x = inputs(g, 100_000, seed=3)
    assert_bit_exact(run_ghdl(tmp_path, x, idle_permille=50), run_raw(g, x), f"GHDL {name}")


@pytest.mark.slow
@needs_ghdl
@pytest.mark.parametrize("kind", KINDS)
def test_ghdl_big(tmp_path, kind):
    from nnfpga.sim.ghdl import run_ghdl
    g = model(BIG, kind, "relu", seed=11, dense=(kind != "fixed"))
    write_rtl(g, tmp_path)
    x = inputs(g, 100_000, seed=6)
    assert_bit_exact(run_ghdl(tmp_path, x), run_raw(g, x), f"GHDL {kind}/{BIG}")
