"""HLS backend: the generated C++ compiled with g++ and the real ap_fixed headers (C-sim)
must reproduce the golden emulator bit for bit; the build script must name every
generated source, the part and the clock.

Compiling ap_fixed code dominates the run time, so every firmware tree is compiled once
per module (module-scoped fixtures) into a content-addressed cache kept in pytest's
cache directory: a changed source always gives a new binary.  No tolerances anywhere.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nnfpga.backends.hls import write_hls
from nnfpga.compiler.frontends.precision import Precision
from nnfpga.compiler.passes.assign_types import assign_types
from nnfpga.ir.emulator import quantize_input, run_raw
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D, Dense, Input, MaxPool2D, Reshape, linear
from nnfpga.ir.ops.base import Op, TensorInfo
from nnfpga.ir.quant import Quantizer, WeightKind
from nnfpga.sim.csim import CSimError, build_csim, run_csim
from tests.irmodels import hard_sigmoid_corner_graph, hard_sigmoid_mlp, leaky_mlp, random_inputs, random_mlp

PART = "xcvu13p-flga2577-2-e"
CLOCK_MHZ = 240.0
N_SAMPLES = 10_000


# Every weight kind and every final activation, each at least once (with the seed of
# `random_mlp` whose outputs vary well).
DEFAULT_MLPS = [("fixed", "linear", 11), ("ternary", "relu", 11), ("binary", "tanh", 13), ("po2", "sigmoid", 11)]
ALL_MLPS = [(k, a) for k in ("fixed", "ternary", "binary", "po2") for a in ("linear", "relu", "tanh", "sigmoid")]
SLOW_MLPS = ALL_MLPS  # with a deeper model (`mlp_net`) than the default ones


# --------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def csim_cache(request, tmp_path_factory) -> Path:
    cache = getattr(request.config, "cache", None)
    return Path(cache.mkdir("nnfpga_hls_csim")) if cache is not None else tmp_path_factory.mktemp("csim")


@dataclass
class Firmware:
    graph: Graph
    dir: Path          # <outdir>/hls
    summary: dict
    exe: Path
    cache: Path

    def csim(self, x_raw: np.ndarray) -> np.ndarray:
        return run_csim(self.dir, x_raw, cache_dir=self.cache)


def firmware(graph: Graph, outdir: Path, cache: Path, clock_mhz: float = CLOCK_MHZ) -> Firmware:
    summary = write_hls(graph, outdir, PART, clock_mhz)
    hls = Path(summary["dir"])
    return Firmware(graph, hls, summary, build_csim(hls, cache), cache)


def assert_bit_exact(fw: Firmware, x_raw: np.ndarray, min_distinct: int = 20) -> None:
    expected = run_raw(fw.graph, x_raw)
    got = fw.csim(x_raw)
    assert got.dtype == np.int64 and got.shape == expected.shape
    bad = np.argwhere(got != expected)
    assert len(bad) == 0, (f"{len(bad)} of {expected.size} outputs differ; first at {tuple(bad[0])}: "
                           f"C-sim {got[tuple(bad[0])]}, golden {expected[tuple(bad[0])]}")
    # The comparison must be able to fail: most outputs have to vary (a dead relu may not).
    flat = expected.reshape(len(expected), -1)
    varying = sum(len(np.unique(flat[:, j])) >= 2 for j in range(flat.shape[1]))
    assert 2 * varying >= flat.shape[1] and len(np.unique(flat)) >= min_distinct, \
        "the test model's outputs hardly vary"


def raw_samples(graph: Graph, n: int, seed: int) -> np.ndarray:
    """Float samples over (and beyond) the input range, quantised like the emulator's entry
    point, plus the all-minimum and all-maximum raw samples."""
    x = quantize_input(graph, random_inputs(graph, n - 2, seed=seed))
    t = graph.input.info.type
    edges = np.stack([np.full(x.shape[1:], t.min_raw, np.float64), np.full(x.shape[1:], t.max_raw, np.float64)])
    return np.concatenate([edges, x])


RC_SAT = dict(rounding=Rounding.RND_CONV, overflow=Overflow.SAT)


def quantised(cls, name: str, src: str, kernel_shape: tuple, rng, kind: str = "fixed", scale: float = 1.0,
              weight_type: FixedType = FixedType(6, 1, True, Rounding.RND_CONV, Overflow.SAT),
              std: float = 0.6, **kw) -> Op:
    """A Dense or Conv2D with quantised weights (``kind``) and 8-bit fixed biases."""
    k = rng.normal(0, std, kernel_shape)
    kq = {"fixed": Quantizer(WeightKind.FIXED, weight_type),
          "ternary": Quantizer(WeightKind.TERNARY, scale=scale),
          "binary": Quantizer(WeightKind.BINARY, scale=scale),
          "po2": Quantizer(WeightKind.PO2, min_exp=-3, max_exp=1)}[kind]
    bq = Quantizer(WeightKind.FIXED, FixedType(8, 3, True, **RC_SAT))
    b = rng.normal(0, 0.5, kernel_shape[-1])
    node = cls(name, [src], kernel=k, bias=b, kernel_quantizer=kq, bias_quantizer=bq, source_layer=name, **kw)
    node.kernel_q, node.bias_q = kq.apply(k), bq.apply(b)
    return node


def conv_net(kind: str, scale: float = 2.0, seed: int = 5) -> Graph:
    """9x8x2 -> conv 3x3 same -> relu -> maxpool 2x2 same -> conv 2x3 valid stride (2,1)
    -> relu -> flatten -> dense 5."""
    rng = np.random.default_rng(seed)
    nodes = [Input("in", [], out_type=FixedType(6, 2, True, **RC_SAT), shape=(9, 8, 2)),
             quantised(Conv2D, "conv1", "in", (3, 3, 2, 4), rng, kind, scale, padding="same", strides=(1, 1)),
             Activation("act1", ["conv1"], function="relu", out_type=FixedType(6, 3, False, **RC_SAT)),
             MaxPool2D("pool1", ["act1"], pool_size=(2, 2), strides=(2, 2), padding="same"),
             quantised(Conv2D, "conv2", "pool1", (2, 3, 4, 3), rng, kind, scale, padding="valid", strides=(2, 1)),
             Activation("act2", ["conv2"], function="relu", out_type=FixedType(6, 3, False, **RC_SAT)),
             Reshape("flat", ["act2"], target_shape=(-1,))]
    n_flat = int(np.prod(assign_types(Graph("probe", list(nodes), ["flat"])).node("flat").info.shape))
    nodes.append(quantised(Dense, "fc", "flat", (n_flat, 5), rng, kind, scale))
    return assign_types(Graph(f"conv_{kind}", nodes, ["fc"]))


def mlp_net(kind: str, act: str, sizes: list[int], seed: int = 0) -> Graph:
    """An MLP whose weights keep the activations in range for every weight kind: ternary
    and binary weights are scaled by ~1/sqrt(fan-in) (a power of two), fixed and po2
    weights drawn with that spread."""
    rng = np.random.default_rng(seed)
    nodes = [Input("in", [], out_type=FixedType(8, 3, True, **RC_SAT), shape=(sizes[0],))]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        spread = 2.0 ** -round(np.log2(np.sqrt(a)))
        if kind in ("ternary", "binary"):
            dense = quantised(Dense, f"fc{i + 1}", nodes[-1].name, (a, b), rng, kind, scale=spread)
        else:
            dense = quantised(Dense, f"fc{i + 1}", nodes[-1].name, (a, b), rng, kind, std=2 * spread)
        nodes.append(dense)
        last = i == len(sizes) - 2
        if not last or act == "relu":
            nodes.append(Activation(f"act{i + 1}", [dense.name], function="relu",
                                    out_type=FixedType(8, 3, False, **RC_SAT)))
        elif act in ("tanh", "sigmoid"):
            nodes.append(Activation(f"act{i + 1}", [dense.name], function=act, table=Precision().table(act)))
    return assign_types(Graph(f"mlp_{kind}_{act}", nodes, [nodes[-1].name]))


def softmax_net(seed: int = 7) -> Graph:
    """12 -> dense 16 -> hard_tanh -> dense 6 -> linear (RND, WRAP) -> softmax."""
    rng = np.random.default_rng(seed)
    exp, inv, out = Precision().softmax_tables(6)
    nodes = [Input("in", [], out_type=FixedType(10, 4, True, **RC_SAT), shape=(12,)),
             quantised(Dense, "fc1", "in", (12, 16), rng),
             Activation("ht", ["fc1"], function="hard_tanh", out_type=FixedType(8, 2, True, **RC_SAT)),
             quantised(Dense, "fc2", "ht", (16, 6), rng),
             Activation("lin", ["fc2"], function="linear",
                        out_type=FixedType(9, 4, True, Rounding.RND, Overflow.WRAP)),
             Activation("sm", ["lin"], function="softmax", table=exp, inv_table=inv, out_type=out)]
    return assign_types(Graph("smnet", nodes, ["sm"]))


# --------------------------------------------------------------------------- bit-exact MLPs
@pytest.fixture(scope="module", params=DEFAULT_MLPS, ids=[f"{k}-{a}" for k, a, _ in DEFAULT_MLPS])
def mlp_fw(request, tmp_path_factory, csim_cache) -> Firmware:
    kind, act, seed = request.param
    g = random_mlp([16, 32, 24, 5], seed=seed, weight_kind=kind, final_activation=act, name=f"mlp_{kind}_{act}")
    return firmware(g, tmp_path_factory.mktemp(f"mlp_{kind}_{act}"), csim_cache)


def test_mlp_bit_exact(mlp_fw):
    assert_bit_exact(mlp_fw, raw_samples(mlp_fw.graph, N_SAMPLES, seed=1))


@pytest.mark.slow
@pytest.mark.parametrize("kind,act", SLOW_MLPS, ids=[f"{k}-{a}" for k, a in SLOW_MLPS])
def test_mlp_bit_exact_all_combinations(kind, act, tmp_path, csim_cache):
    g = mlp_net(kind, act, [20, 40, 40, 24, 6], seed=23)
    fw = firmware(g, tmp_path, csim_cache)
    assert_bit_exact(fw, raw_samples(g, 50_000, seed=2))


def test_wide_types_bit_exact(tmp_path, csim_cache):
    """24-bit inputs and 14-bit weights: accumulators beyond 32 bits, unsigned WRAP hidden
    activations that do overflow."""
    g = random_mlp([10, 12, 4], seed=3, weight_bits=14, act_bits=18, act_int=6,
                   input_type=FixedType(24, 9, True, Rounding.RND, Overflow.SAT), name="wide")
    g.node("relu1").out_type = FixedType(18, 4, False, Rounding.RND, Overflow.WRAP)
    assign_types(g)
    fw = firmware(g, tmp_path, csim_cache)
    assert max(FixedType.parse(t).width for t in re.findall(r"typedef (ap_u?fixed<[^>]*>) fc\d_acc_t",
                                                             (fw.dir / "defines.h").read_text())) > 32
    assert_bit_exact(fw, raw_samples(g, N_SAMPLES, seed=4), min_distinct=1000)


def test_softmax_hard_tanh_bit_exact(tmp_path, csim_cache):
    g = softmax_net()
    fw = firmware(g, tmp_path, csim_cache)
    x = raw_samples(g, N_SAMPLES, seed=5)
    assert_bit_exact(fw, x)
    # the hard_tanh clip is exercised on both sides
    from nnfpga.ir.emulator import trace_raw
    fc1 = trace_raw(g, x)["fc1"]
    one = 1 << g.node("fc1").info.type.frac
    assert (fc1 > one).any() and (fc1 < -one).any()


def test_leaky_relu_bit_exact(tmp_path, csim_cache):
    """Leaky ReLUs with slopes 0.1 and 0.01 (exact products by the quantised slopes) into
    signed SAT types, a stand-alone one on the input and a final one of slope 0.25, both
    with exact output types; both branches exercised."""
    g = leaky_mlp([10, 12, 8, 4], seed=4)
    fw = firmware(g, tmp_path, csim_cache)
    x = raw_samples(g, 5000, seed=8)
    assert_bit_exact(fw, x)
    from nnfpga.ir.emulator import trace_raw
    values = trace_raw(g, x)
    for name in ("fc1", "fc2", "fc3"):
        assert (values[name] < 0).any() and (values[name] > 0).any()


def test_hard_sigmoid_bit_exact(tmp_path, csim_cache):
    """Hard sigmoids stand-alone on the input, after Dense layers into ufixed<7,0,RND,SAT>
    (1 saturates) and ufixed<5,0,TRN,WRAP> (1 wraps to 0), and final with an exact type:
    the C-sim, the golden emulator and the RTL description agree bit for bit; so they do
    on every input of the corner graph (rounding RND_CONV, a deferred-shift column)."""
    from nnfpga.backends.rtl import evaluate, lower
    g = hard_sigmoid_mlp([10, 12, 8, 4], seed=5)
    fw = firmware(g, tmp_path / "mlp", csim_cache)
    x = raw_samples(g, N_SAMPLES, seed=9)
    assert_bit_exact(fw, x)
    assert np.array_equal(evaluate(lower(g), x.astype(np.int64)), run_raw(g, x))
    from nnfpga.ir.emulator import trace_raw
    values = trace_raw(g, x)
    for name in ("fc1", "fc2", "fc3"):   # both clip sides exercised
        one = 1 << g.node(name).info.type.frac
        assert (values[name] < -one).any() and (values[name] > one).any(), name
    g = hard_sigmoid_corner_graph()
    fw = firmware(g, tmp_path / "corner", csim_cache)
    t = g.input.info.type
    grid = np.meshgrid(*[np.arange(t.min_raw, t.max_raw + 1)] * 2, indexing="ij")
    x = np.stack([v.reshape(-1) for v in grid], axis=1).astype(np.float64)
    assert_bit_exact(fw, x, min_distinct=4)
    assert np.array_equal(evaluate(lower(g), x.astype(np.int64)), run_raw(g, x))


def test_conv_bit_exact(tmp_path, csim_cache):
    """Conv2D same/valid with strides, MaxPool2D with same padding, Reshape; ternary
    weights of scale 2 (negative fractional bits)."""
    g = conv_net("ternary", scale=2.0)
    assert g.node("conv1").kernel_q.frac == -1
    fw = firmware(g, tmp_path, csim_cache)
    assert_bit_exact(fw, raw_samples(g, N_SAMPLES, seed=6))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fixed", "binary", "po2"])
def test_conv_bit_exact_other_kinds(kind, tmp_path, csim_cache):
    g = conv_net(kind, scale=0.5, seed=9)
    fw = firmware(g, tmp_path, csim_cache)
    assert_bit_exact(fw, raw_samples(g, 30_000, seed=7))


# --------------------------------------------------------------------------- Keras / QKeras models
def qkeras_pool_cnn(path: Path, seed: int = 4) -> Path:
    """A QKeras CNN on a 9x16x1 hit map: QConv2D 3x3 same (4 filters) -> quantized_relu
    -> MaxPooling2D 2x2 -> QConv2D 3x3 valid stride (1, 2) (6 filters) -> quantized_relu
    -> Flatten -> QDense 10 -> quantized_relu -> QDense 3; every quantiser fixed."""
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    keras.utils.set_random_seed(seed)
    wq, bq = quantized_bits(5, 0, alpha=1), quantized_bits(6, 2, alpha=1)
    inp = keras.Input((9, 16, 1))
    h = QActivation(quantized_bits(6, 2, alpha=1), name="q_in")(inp)
    h = QConv2D(4, (3, 3), padding="same", kernel_quantizer=wq, bias_quantizer=bq,
                bias_initializer="random_normal", name="conv1")(h)
    h = QActivation(quantized_relu(4, 2), name="relu1")(h)
    h = keras.layers.MaxPooling2D((2, 2), name="pool1")(h)
    h = QConv2D(6, (3, 3), strides=(1, 2), padding="valid", kernel_quantizer=wq, bias_quantizer=bq,
                bias_initializer="random_normal", name="conv2")(h)
    h = QActivation(quantized_relu(4, 2), name="relu2")(h)
    h = keras.layers.Flatten(name="flat")(h)
    h = QDense(10, kernel_quantizer=wq, bias_quantizer=bq, bias_initializer="random_normal", name="fc1")(h)
    h = QActivation(quantized_relu(6, 3), name="relu3")(h)
    out = QDense(3, kernel_quantizer=wq, bias_quantizer=bq, name="out")(h)
    keras.Model(inp, out).save(path)
    return path


def keras_tanh_sigmoid_mlp(path: Path, sizes: tuple = (16, 24, 12, 3), seed: int = 6) -> Path:
    """A float Keras MLP, tanh hidden layers and a sigmoid output, trained for a few epochs."""
    import tf_keras as keras
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    n_in, *hidden, n_out = sizes
    x = rng.normal(0, 1.5, (3000, n_in)).astype(np.float32)
    y = (x[:, :n_out] * x[:, n_out:2 * n_out] + 0.5 * x[:, -n_out:] > 0).astype(np.float32)
    layers = [keras.Input((n_in,))] + [keras.layers.Dense(u, activation="tanh", name=f"hidden{k + 1}")
                                        for k, u in enumerate(hidden)]
    m = keras.Sequential([*layers, keras.layers.Dense(n_out, activation="sigmoid", name="out")])
    m.compile("adam", "binary_crossentropy")
    m.fit(x, y, epochs=4, batch_size=64, verbose=0)
    m.save(path)
    return path


def hit_maps(n: int, seed: int) -> np.ndarray:
    """Float 9x16x1 samples: half sparse hit maps, half uniform over (and beyond) the range."""
    rng = np.random.default_rng(seed)
    sparse = (rng.random((n // 2, 9, 16, 1)) < 0.2) * rng.uniform(0.25, 4.5, (n // 2, 9, 16, 1))
    dense = rng.uniform(-4.5, 4.5, (n - n // 2, 9, 16, 1))
    return np.concatenate([sparse, dense]).astype(np.float32)


@pytest.mark.slow
def test_qkeras_cnn_from_file_bit_exact(tmp_path, csim_cache):
    """A QKeras CNN (QConv2D same/valid with a stride, MaxPooling2D, QDense,
    quantized_relu) loaded from .h5 by the frontend: C-sim equals the golden emulator on
    10,000 samples, and the golden emulator equals QKeras' own predict."""
    from qkeras.utils import load_qmodel

    from nnfpga.compiler.pipeline import build_graph
    from nnfpga.ir.emulator import emulate
    path = qkeras_pool_cnn(tmp_path / "cnn.h5")
    g = build_graph(path)
    ops = [n.op_type for n in g.nodes]
    assert ops.count("Conv2D") == 2 and ops.count("MaxPool2D") == 1 and ops.count("Dense") == 2
    assert all(n.kernel_q.kind is WeightKind.FIXED for n in g.nodes if n.op_type in ("Conv2D", "Dense"))
    x = hit_maps(N_SAMPLES, seed=11)
    theirs = load_qmodel(str(path), compile=False).predict(x, batch_size=2048, verbose=0)
    ours = emulate(g, x)
    assert np.array_equal(ours, theirs), f"golden vs QKeras: {int(np.sum(ours != theirs))} values differ"
    fw = firmware(g, tmp_path / "fw", csim_cache)
    raw = quantize_input(g, x)
    assert len(raw) == N_SAMPLES
    assert_bit_exact(fw, raw)


@pytest.mark.slow
def test_float_keras_tanh_sigmoid_mlp_bit_exact(tmp_path, csim_cache):
    """A float Keras MLP (tanh hidden layers, sigmoid output) loaded from .h5: C-sim
    equals the golden emulator on 10,000 samples (both tables exercised)."""
    from nnfpga.compiler.pipeline import build_graph
    from nnfpga.ir.emulator import trace_raw
    g = build_graph(keras_tanh_sigmoid_mlp(tmp_path / "mlp.h5"))
    acts = [n for n in g.nodes if n.op_type == "Activation" and n.table is not None]
    assert [a.table.function for a in acts] == ["tanh", "tanh", "sigmoid"]
    rng = np.random.default_rng(12)
    x = np.concatenate([rng.normal(0, 1.5, (N_SAMPLES // 2, 16)),
                        rng.uniform(-40, 40, (N_SAMPLES - N_SAMPLES // 2, 16))])
    raw = quantize_input(g, x)
    fw = firmware(g, tmp_path / "fw", csim_cache)
    assert_bit_exact(fw, raw, min_distinct=200)
    # every table gives many distinct outputs; the first one saturates at both ends
    trace = trace_raw(g, raw)
    for a in acts:
        values = np.unique(trace[a.name])
        assert len(values) > a.table.size // 8, (a.name, len(values))
    first = np.unique(trace[acts[0].name])
    assert acts[0].table.entries.min() in first and acts[0].table.entries.max() in first


@pytest.mark.slow
def test_reuse_factor_bit_exact(tmp_path, csim_cache):
    g = random_mlp([16, 32, 5], seed=13, reuse_factor=4)
    fw = firmware(g, tmp_path, csim_cache)
    top = (fw.dir / f"{fw.summary['top']}.cpp").read_text()
    assert fw.summary["ii"] == 4 and "#pragma HLS PIPELINE II=4" in top
    assert "#pragma HLS ALLOCATION operation instances=mul limit=" in top
    assert_bit_exact(fw, raw_samples(g, N_SAMPLES, seed=8))


def _expected_multiplications(node, x_shape) -> int:
    """Multiplications of a Dense/Conv2D that need a multiplier, counted directly from the
    IR integers: fixed-point weights that are non-zero and not +-2^k, once per use (a
    Conv2D: once per output position whose window holds that weight inside the image)."""
    raw = node.kernel_q.raw
    if node.kernel_q.kind is not WeightKind.FIXED:
        return 0
    hard = np.vectorize(lambda v: v != 0 and (abs(int(v)) & (abs(int(v)) - 1)) != 0)(raw)
    if node.op_type == "Dense":
        return int(hard.sum())
    h, w = x_shape[:2]
    kh, kw = raw.shape[:2]
    (sh, sw) = node.strides
    oh, ow = node.info.shape[:2]
    if node.padding == "valid":
        pt = pl = 0
    else:  # TensorFlow's same padding: the smaller half before
        pt = max((oh - 1) * sh + kh - h, 0) // 2
        pl = max((ow - 1) * sw + kw - w, 0) // 2
    n = 0
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                for kx in range(kw):
                    if 0 <= oy * sh + ky - pt < h and 0 <= ox * sw + kx - pl < w:
                        n += int(hard[ky, kx].sum())
    return n


def _layer_function(cpp: str, fn: str) -> str:
    start = cpp.index(f"static void {fn}(")
    return cpp[start:cpp.index("\n}\n", start)]


REUSE_CASES = {
    # conv1 has same padding (padded positions do not multiply), conv2 a stride
    "conv-fixed": (lambda: conv_net("fixed", seed=9), {"conv1": 4, "conv2": 3, "fc": 7}),
    "mlp-fixed": (lambda: random_mlp([16, 32, 5], seed=13), {"fc1": 4, "fc2": 3}),
    "mlp-r1": (lambda: random_mlp([8, 6, 3], seed=2), {"fc1": 1, "fc2": 5}),
    "conv-ternary": (lambda: conv_net("ternary"), {"conv1": 4, "conv2": 4, "fc": 4}),
    "mlp-po2": (lambda: random_mlp([16, 8, 4], weight_kind="po2"), {"fc1": 4, "fc2": 2}),
}


@pytest.mark.parametrize("case", list(REUSE_CASES))
def test_multiplier_limit_is_multiplications_over_reuse(case, tmp_path):
    """A Dense/Conv2D at reuse factor R > 1 limits its multipliers to ceil(N / R), N its
    multiplications that need one (counted here from the IR integers); R = 1 and layers
    without such multiplications (ternary, po2, zero and +-2^k weights) state no limit."""
    make, reuse = REUSE_CASES[case]
    g = make()
    for name, r in reuse.items():
        g.node(name).reuse_factor = r
    summary = write_hls(g, tmp_path, PART, CLOCK_MHZ)
    cpp = (Path(summary["dir"]) / f"{summary['top']}.cpp").read_text()
    assert summary["ii"] == max(reuse.values())
    chain = g.chain()
    limited = 0
    for prev, node in zip(chain, chain[1:]):
        if node.name not in reuse:
            continue
        r = reuse[node.name]
        body = _layer_function(cpp, f"layer_{node.name}")
        limits = [int(v) for v in re.findall(r"^#pragma HLS ALLOCATION operation instances=mul limit=(\d+)$",
                                              body, re.M)]
        n = _expected_multiplications(node, prev.info.shape)
        assert f"#pragma HLS PIPELINE II={r}\n" in body
        if r > 1 and n > 0:
            assert limits == [-(-n // r)], f"{node.name}: N={n}, R={r}, pragma limits {limits}"
            limited += 1
        else:
            assert limits == [], f"{node.name}: N={n}, R={r}: no limit expected, found {limits}"
    if case in ("conv-fixed", "mlp-fixed"):
        assert limited == len(reuse)
    # the conv case really has +-2^k weights and padded positions to leave out
    if case == "conv-fixed":
        kq = g.node("conv1").kernel_q.raw
        assert ((kq != 0) & ((np.abs(kq) & (np.abs(kq) - 1)) == 0)).any()
        assert g.node("conv1").padding == "same"


def test_mutated_weight_is_detected(tmp_path, csim_cache):
    """The comparison can fail: one weight changed by one LSB in the generated header."""
    g = random_mlp([8, 6, 3], seed=17, sparsity=0.0, name="tiny")
    fw = firmware(g, tmp_path, csim_cache)
    x = raw_samples(g, 2000, seed=9)
    np.testing.assert_array_equal(fw.csim(x), run_raw(g, x))
    header = fw.dir / "weights" / "w_fc1.h"
    kq = g.node("fc1").kernel_q
    old = _literal(kq.raw[0, 0], kq.frac)
    new = _literal(kq.raw[0, 0] + (1 if kq.raw[0, 0] < kq.storage_type.max_raw else -1), kq.frac)
    text = header.read_text()
    start = text.index("{")
    header.write_text(text[:start] + text[start:].replace(old, new, 1))
    mutated = run_csim(fw.dir, x, cache_dir=csim_cache)
    assert (mutated != run_raw(g, x)).any()


def _literal(raw: int, frac: int) -> str:
    from nnfpga.backends.hls.literals import exact_decimal
    return exact_decimal(int(raw), frac)


# --------------------------------------------------------------------------- generated code
def test_constants_are_the_ir_integers(mlp_fw):
    """Every literal in weights/*.h, read as an exact rational, is raw * 2^-frac."""
    for node in mlp_fw.graph.nodes:
        if node.op_type == "Dense":
            for arr, q in ((f"w_{node.name}", node.kernel_q), (f"b_{node.name}", node.bias_q)):
                text = (mlp_fw.dir / "weights" / f"{arr}.h").read_text()
                body = text[text.index("=", text.index(arr)):]
                values = [Fraction(v) for v in re.findall(r"-?\d+\.\d+", body)]
                raws = [v * 2 ** q.frac for v in values]
                assert raws == [Fraction(int(r)) for r in q.raw.reshape(-1)]
                assert f"typedef {q.storage_type.cpp()} {node.name}_{'weight' if arr[0] == 'w' else 'bias'}_t;" \
                    in (mlp_fw.dir / "defines.h").read_text()
        if node.op_type == "Activation" and node.table is not None:
            text = (mlp_fw.dir / "weights" / f"table_{node.name}.h").read_text()
            body = text[text.index("=", text.index(f"table_{node.name}[")):]
            raws = [Fraction(v) * 2 ** node.table.out_type.frac for v in re.findall(r"-?\d+\.\d+", body)]
            assert raws == [Fraction(int(r)) for r in node.table.entries]


def test_types_are_the_ir_types(mlp_fw):
    defines = (mlp_fw.dir / "defines.h").read_text()
    g = mlp_fw.graph
    assert f"typedef {g.input.info.type.cpp()} input_t;" in defines
    assert f"typedef {g.output.info.type.cpp()} result_t;" in defines
    prev = g.input
    for node in g.nodes[1:]:
        if node.op_type == "Dense":
            lo, hi, _ = node.acc_range(prev.info)
            acc = linear.acc_type_for(lo, hi, node.acc_frac(prev.info.type.frac))
            assert f"typedef {acc.cpp()} {node.name}_acc_t;" in defines
        if node is not g.output:
            assert f"typedef {node.info.type.cpp()} {node.name}_t;" in defines
        prev = node


def test_layer_functions_and_top(mlp_fw):
    top = mlp_fw.summary["top"]
    cpp = (mlp_fw.dir / f"{top}.cpp").read_text()
    header = (mlp_fw.dir / f"{top}.h").read_text()
    assert f"void {top}(const input_t x[N_IN], result_t y[N_OUT]);" in header
    assert re.search(rf"void {top}\(const input_t x\[N_IN\], result_t y\[N_OUT\]\) {{\n(#pragma HLS [^\n]*\n)*"
                     r"#pragma HLS PIPELINE II=1\n", cpp)
    for node in mlp_fw.graph.nodes[1:]:
        assert f"static void layer_{node.name}(" in cpp
        assert f"    layer_{node.name}(" in cpp.split(f"void {top}(")[1]


def test_multiplier_free_kinds_do_not_multiply(mlp_fw):
    kind = mlp_fw.graph.node("fc1").kernel_q.kind
    cpp = (mlp_fw.dir / f"{mlp_fw.summary['top']}.cpp").read_text()
    products = re.findall(r"x\[i\] \* w_", cpp)
    if kind is WeightKind.FIXED:
        assert len(products) == 3
    else:
        assert products == [] and re.search(r"\w\s*\*\s*\w", _code_only(cpp)) is None
        assert "nnfpga::scale_pow2<" in cpp or kind is not WeightKind.PO2


def _code_only(cpp: str) -> str:
    """C++ without comments, pragmas, and pointer/reference declarations."""
    cpp = re.sub(r"//[^\n]*", "", cpp)
    return "\n".join(line for line in cpp.splitlines() if not line.lstrip().startswith("#"))


def test_testbench_compares_expected(mlp_fw, tmp_path):
    """The tree's own vectors pass; a changed expected value makes the bench exit 1."""
    tb_in, tb_exp = (mlp_fw.dir / p for p in mlp_fw.summary["tb_data"])
    ok = subprocess.run([str(mlp_fw.exe), str(tb_in), str(tmp_path / "out.txt"), str(tb_exp)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "0 with differences" in ok.stdout
    lines = tb_exp.read_text().splitlines()
    first = lines[5].split()
    first[0] = str(int(first[0]) + 1)
    lines[5] = " ".join(first)
    (tmp_path / "bad.txt").write_text("\n".join(lines) + "\n")
    bad = subprocess.run([str(mlp_fw.exe), str(tb_in), str(tmp_path / "out.txt"), str(tmp_path / "bad.txt")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "sample 5 output 0" in bad.stderr
    # malformed input: wrong count and out-of-range values exit 2
    (tmp_path / "short.txt").write_text("1 2 3\n")
    (tmp_path / "range.txt").write_text(" ".join(["100000"] * mlp_fw.summary["n_in"]) + "\n")
    for f in ("short.txt", "range.txt"):
        r = subprocess.run([str(mlp_fw.exe), str(tmp_path / f), str(tmp_path / "out.txt")],
                           capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr


def test_csim_input_validation(mlp_fw):
    n_in = mlp_fw.summary["n_in"]
    t = mlp_fw.graph.input.info.type
    with pytest.raises(ValueError, match="raw range"):
        mlp_fw.csim(np.full((2, n_in), t.max_raw + 1))
    with pytest.raises(ValueError, match="raw integers"):
        mlp_fw.csim(np.full((2, n_in), 0.5))
    with pytest.raises(ValueError, match=f"{n_in} values"):
        mlp_fw.csim(np.zeros((2, n_in + 1)))
    assert mlp_fw.csim(np.zeros((0, n_in))).shape == (0, mlp_fw.summary["n_out"])
    # the outdir works as well as outdir/hls, and one flat sample is one sample
    one = run_csim(mlp_fw.dir.parent, np.zeros(n_in, dtype=np.int64), cache_dir=mlp_fw.cache)
    np.testing.assert_array_equal(one, run_raw(mlp_fw.graph, np.zeros((1, n_in))))


# --------------------------------------------------------------------------- build script
def _tcl_adds(tcl: str) -> tuple[set[str], set[str]]:
    src = set(re.findall(r"^\s*add_files \{([^}]*)\}\s*$", tcl, re.M))
    tb = set(re.findall(r"^\s*add_files -tb \{([^}]*)\}\s*$", tcl, re.M))
    return src, tb


#: The build script of each tool, and what only that tool's script says.
TCL_SCRIPTS = {"vitis_hls": "build_prj.tcl", "vivado_hls": "build_prj_vivado_hls.tcl"}


@pytest.mark.parametrize("make_graph", [lambda: random_mlp([6, 7, 3], weight_kind="po2", final_activation="tanh"),
                                        softmax_net, lambda: conv_net("binary")],
                         ids=["mlp", "softmax", "conv"])
@pytest.mark.parametrize("clock_mhz", [240.0, 160.0, 320.5])
def test_build_tcl_references_everything(make_graph, clock_mhz, tmp_path):
    summary = write_hls(make_graph(), tmp_path, PART, clock_mhz)
    hls = Path(summary["dir"])
    assert summary["tcl_scripts"] == TCL_SCRIPTS and summary["tcl"] == "build_prj.tcl"
    on_disk = {str(p.relative_to(hls)) for p in hls.rglob("*") if p.suffix in (".cpp", ".h")}
    top = summary["top"]
    # every header the sources include is generated, and nothing else is included
    included = set()
    for f in on_disk:
        included |= set(re.findall(r'#include "([^"]+)"', (hls / f).read_text()))
    assert {Path(i).name for i in included} <= {Path(f).name for f in on_disk}
    assert {p.name for p in hls.glob("*.tcl")} == set(TCL_SCRIPTS.values())
    for tool, script in TCL_SCRIPTS.items():
        tcl = (hls / script).read_text()
        src, tb = _tcl_adds(tcl)
        assert src == on_disk - {f"tb_{top}.cpp"} == set(summary["sources"]) | set(summary["headers"]), tool
        assert tb == {f"tb_{top}.cpp", "tb_data"}, tool
        assert all((hls / f).is_file() for f in src | {f"tb_{top}.cpp"}) and (hls / "tb_data").is_dir()
        assert re.findall(r"^\s*set_part \{([^}]*)\}$", tcl, re.M) == [PART], tool
        periods = re.findall(r"^\s*create_clock -period ([0-9.]+) -name default$", tcl, re.M)
        assert len(periods) == 1 and abs(float(periods[0]) - 1000.0 / clock_mhz) < 1e-6, tool
        assert re.search(rf"^\s*set_top {top}$", tcl, re.M) and f"open_project -reset {top}_prj" in tcl
        for step in ("csim_design -argv", "csynth_design", "cosim_design -argv", "export_design -format ip_catalog"):
            assert step in tcl, (tool, step)
        assert f"#   {tool} -f {script}" in tcl
        # -flow_target exists only in Vitis HLS (Vivado HLS rejects it); Vitis gets the IP flow
        solution = re.findall(r"^\s*open_solution (.*)$", tcl, re.M)
        assert solution == (["-reset solution1 -flow_target vivado"] if tool == "vitis_hls"
                            else ["-reset solution1"]), tool
        assert "flow_target" not in tcl or tool == "vitis_hls"


TCL_STUBS = r"""
set ::log [open [lindex $argv 0] w]
set ::fail [lindex $argv 1]
set argv [lrange $argv 2 end]
foreach cmd {open_project set_top add_files open_solution set_part create_clock
             csim_design csynth_design cosim_design export_design} {
    proc $cmd {args} [string map [list CMD $cmd] {
        puts $::log "CMD $args"
        flush $::log
        if {"CMD" eq $::fail} { error "CMD failed" }
    }]
}
source [lindex $::script 0]
"""


@pytest.mark.parametrize("tool", list(TCL_SCRIPTS))
def test_build_tcl_runs_and_stops_on_error(tool, tmp_path):
    """Run each build script in plain Tcl with stub HLS commands: the flow runs in order,
    arguments select steps (one per word, or several in one quoted word as vivado_hls
    passes them), and a failing step stops it with exit status 1."""
    assert shutil.which("tclsh"), "tclsh is not installed: run `make setup` (scripts/setup.sh)"
    summary = write_hls(random_mlp([4, 3]), tmp_path, PART, CLOCK_MHZ)
    script = Path(summary["dir"]) / TCL_SCRIPTS[tool]
    wrapper = tmp_path / "wrapper.tcl"
    wrapper.write_text(f"set ::script [list {{{script}}}]\n" + TCL_STUBS)

    def run(fail: str, *args: str) -> tuple[int, list[str]]:
        log = tmp_path / "log.txt"
        r = subprocess.run(["tclsh", str(wrapper), str(log), fail, *args], capture_output=True, text=True,
                           cwd=tmp_path)
        return r.returncode, log.read_text().splitlines()

    rc, lines = run("none")
    calls = [line.split()[0] for line in lines]
    assert rc == 0
    steps = [c for c in calls if c.endswith("_design")]
    assert steps == ["csim_design", "csynth_design", "cosim_design", "export_design"]
    assert calls[:2] == ["open_project", "set_top"] and calls.count("add_files") == \
        len(summary["sources"]) + len(summary["headers"]) + 2
    assert [line for line in lines if line.startswith("open_solution")] == \
        ["open_solution -reset solution1" + (" -flow_target vivado" if tool == "vitis_hls" else "")]
    rc, lines = run("csynth_design")
    calls = [line.split()[0] for line in lines]
    assert rc == 1 and calls[-1] == "csynth_design" and "cosim_design" not in calls
    for args in (("cosim=0", "export=0"), ("cosim=0 export=0",)):
        rc, lines = run("none", *args)
        calls = [line.split()[0] for line in lines]
        assert rc == 0 and "cosim_design" not in calls and "export_design" not in calls and "csynth_design" in calls
    rc, _ = run("none", "bogus=1")
    assert rc == 2
    rc, _ = run("none", "csim=1 bogus=1")
    assert rc == 2


# --------------------------------------------------------------------------- errors and API
@dataclass
class Mystery(Op):
    op_type = "Mystery"

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        return ins[0]


def test_unsupported_op_is_named(tmp_path):
    g = Graph("m", [Input("in", [], out_type=FixedType(8, 3), shape=(4,)), Mystery("odd_layer", ["in"])],
              ["odd_layer"])
    assign_types(g)
    with pytest.raises(ValueError, match=r"layer 'odd_layer'.*'Mystery'.*supported: Input; Dense"):
        write_hls(g, tmp_path, PART, CLOCK_MHZ)


@pytest.mark.parametrize("part,clock", [("", 200.0), ("xc vu9p", 200.0), ("xcvu9p{", 200.0),
                                        (PART, 0.0), (PART, -5.0), (PART, float("nan")), (PART, "fast")])
def test_bad_part_or_clock_rejected(part, clock, tmp_path):
    with pytest.raises(ValueError):
        write_hls(random_mlp([4, 3]), tmp_path, part, clock)


def test_rewrite_removes_stale_files_and_names_are_sanitised(tmp_path):
    first = write_hls(random_mlp([4, 5, 3], final_activation="tanh"), tmp_path, PART, CLOCK_MHZ)
    assert (tmp_path / "hls" / "weights" / "table_out_tanh.h").is_file()
    g = random_mlp([4, 3], name="my-model v2")
    g.node("fc1").name = "dense/1"
    g.outputs = ["dense/1"]
    second = write_hls(g, tmp_path, PART, CLOCK_MHZ)
    assert second["top"] == "my_model_v2" and any("my_model_v2" in n for n in second["notes"])
    assert not (tmp_path / "hls" / "weights" / "table_out_tanh.h").exists()
    assert not (tmp_path / "hls" / f"{first['top']}.cpp").exists() or first["top"] == second["top"]
    assert "static void layer_dense_1(" in (tmp_path / "hls" / "my_model_v2.cpp").read_text()
    manifest = json.loads((tmp_path / "hls" / "nnfpga_hls.json").read_text())
    assert all((tmp_path / "hls" / f).is_file() for f in manifest["files"])


def test_missing_types_rejected(tmp_path):
    g = random_mlp([4, 3])
    g.node("fc1").info = None
    with pytest.raises(ValueError, match="type"):
        write_hls(g, tmp_path, PART, CLOCK_MHZ)


def test_csim_reports_compiler_errors(tmp_path, csim_cache):
    write_hls(random_mlp([4, 3], name="broken"), tmp_path, PART, CLOCK_MHZ)
    cpp = tmp_path / "hls" / "broken.cpp"
    cpp.write_text(cpp.read_text() + "\nthis is not C++;\n")
    from nnfpga.sim.apfixed import CompileError
    with pytest.raises(CompileError, match="this is not C"):
        run_csim(tmp_path, np.zeros((1, 4)), cache_dir=csim_cache)


def test_csim_error_is_reported(mlp_fw, tmp_path, monkeypatch):
    """A failing test-bench run raises CSimError carrying the bench's stderr."""
    import nnfpga.sim.csim as csim
    fake = tmp_path / "fake_tb"
    fake.write_text("#!/bin/sh\necho 'bench exploded' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(csim, "build_csim", lambda tree, cache_dir=None: fake)
    with pytest.raises(CSimError, match="bench exploded"):
        csim.run_csim(mlp_fw.dir, np.zeros((1, mlp_fw.summary["n_in"])))
