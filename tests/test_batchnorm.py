"""BatchNormalization anywhere: folded into the Dense/Conv2D before it, an exact ScaleShift
(per-channel ``x * s + t``, then the output conversion) everywhere else.

Each frontend's model (Keras, ONNX, PyTorch) with BatchNorms in places that cannot be
folded stays within the error bound of its framework's forward pass; the IR's ScaleShift
is bit-exact in the RTL description (netlist interpreter) for power-of-two, negative,
zero and general scales; a power-of-two scale takes no multiplier; and (slow) golden ==
HLS C-sim == Verilator == GHDL on a Keras model.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from nnfpga.backends.report.estimator import estimate_netlist
from nnfpga.backends.rtl import evaluate, lower, print_verilog
from nnfpga.backends.rtl.netlist import MulConst
from nnfpga.compiler.passes.assign_types import assign_types
from nnfpga.compiler.passes.error_bound import error_bound
from nnfpga.compiler.pipeline import build_graph
from nnfpga.core.errors import UserError
from nnfpga.ir.emulator import emulate, quantize_input, run_raw
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.validate import load_ir
from nnfpga.ir.ops import Dense, Input, ScaleShift
from nnfpga.ir.quant import QuantArray, Quantizer, WeightKind


def _within_bound(graph: Graph, ours: np.ndarray, reference: np.ndarray, x: np.ndarray) -> None:
    bound = error_bound(graph, (float(x.min()), float(x.max())))
    assert bound is not None
    assert ours.shape == reference.shape
    diff = np.abs(ours - reference).reshape(len(x), -1)
    assert float((diff - bound).max()) <= 1e-5, f"error {diff.max():.3g} exceeds the bound {bound.max():.3g}"
    assert 0 < diff.max() < bound.max()


def _ops(graph: Graph) -> list[str]:
    return [n.op_type for n in graph.nodes]


# ----------------------------------------------------------------------------- Keras
def _set_bn(layers, rng) -> None:
    """Non-trivial statistics (a fresh BatchNormalization is the identity)."""
    for bn in layers:
        n = bn.get_weights()[0].shape[0]
        bn.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, .2, n), rng.normal(0, .3, n), rng.uniform(0.5, 2, n)])


def keras_mlp(seed: int = 0, softmax: bool = False):
    """BatchNormalization on the input, after a ReLU, after a Dropout, and (folded) after
    the last Dense, before an optional softmax."""
    import tf_keras as keras
    L = keras.layers
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((8,)), L.BatchNormalization(name="bn_in"), L.Dense(12, activation="relu", name="fc1"),
              L.BatchNormalization(name="bn_relu"), L.Dense(10, name="fc2"), L.Activation("tanh", name="act"),
              L.Dropout(0.2, name="drop"), L.BatchNormalization(name="bn_drop"), L.Dense(4, name="out"),
              L.BatchNormalization(name="bn_out")]
    if softmax:
        layers.append(L.Activation("softmax", name="sm"))
    m = keras.Sequential(layers)
    _set_bn([lay for lay in m.layers if isinstance(lay, L.BatchNormalization)], np.random.default_rng(seed))
    return m


def _events(n: int, seed: int, d: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1.5, (n, d)).astype(np.float32)


def test_keras_batchnorm_anywhere_within_bound():
    m = keras_mlp()
    graph = build_graph(m)
    assert _ops(graph) == ["Input", "ScaleShift", "Dense", "Activation", "ScaleShift", "Dense", "Activation",
                           "ScaleShift", "Dense"]        # bn_out folded into out
    x = _events(3000, 1)
    _within_bound(graph, emulate(graph, x), m.predict(x, verbose=0), x)


def test_bound_holds_over_the_whole_input_box():
    """Against the float64 reference (no framework rounding, no slack): random points and
    every corner of the input type's box stay within the bound, which is not vacuous."""
    from nnfpga.compiler.float_reference import float_forward
    graph = build_graph(keras_mlp(seed=4))
    bound = error_bound(graph)
    t = graph.input.info.type
    rand = np.random.default_rng(6).uniform(t.min_value, t.max_value, (50_000, 8))
    corners = np.array(np.meshgrid(*[[t.min_value, t.max_value]] * 8, indexing="ij")).reshape(8, -1).T
    worst = 0.0
    for x in (rand, corners):
        observed = np.abs(emulate(graph, x) - float_forward(graph, x)).max(axis=0)
        assert np.all(observed <= bound), (observed, bound)
        worst = max(worst, float(observed.max()))
    assert bound.max() < 50 * worst


def test_keras_softmax_after_dense_and_batchnorm():
    m = keras_mlp(softmax=True)
    graph = build_graph(m)
    assert _ops(graph)[-2:] == ["Dense", "Activation"] and graph.nodes[-1].function == "softmax"
    x = _events(2000, 2)
    ours, ref = emulate(graph, x), m.predict(x, verbose=0)
    assert np.abs(ours - ref).max() < 0.02           # softmax has no derived bound: the table precision
    assert (ours.argmax(axis=1) == ref.argmax(axis=1)).mean() > 0.98


def test_keras_cnn_batchnorm_after_pool_and_relu(tmp_path):
    import tf_keras as keras
    L = keras.layers
    keras.utils.set_random_seed(3)
    m = keras.Sequential([keras.Input((8, 10, 2)), L.Conv2D(3, 3, activation="relu", name="conv"),
                          L.BatchNormalization(name="bn_relu"), L.MaxPooling2D(2, name="pool"),
                          L.BatchNormalization(name="bn_pool"), L.Flatten(name="flat"), L.Dense(3, name="fc")])
    _set_bn([m.get_layer("bn_relu"), m.get_layer("bn_pool")], np.random.default_rng(3))
    m.save(tmp_path / "cnn.h5")
    graph = build_graph(tmp_path / "cnn.h5")
    assert _ops(graph) == ["Input", "Conv2D", "Activation", "ScaleShift", "MaxPool2D", "ScaleShift", "Reshape",
                           "Dense"]
    x = np.random.default_rng(4).normal(0, 1, (2000, 8, 10, 2)).astype(np.float32)
    _within_bound(graph, emulate(graph, x), m.predict(x, verbose=0), x)


def test_keras_batchnorm_on_1d_data():
    """Conv1D data is the image (1, steps, channels) in the IR: per channel, as in Keras."""
    import tf_keras as keras
    L = keras.layers
    keras.utils.set_random_seed(5)
    m = keras.Sequential([keras.Input((12, 2)), L.BatchNormalization(name="bn_in"),
                          L.Conv1D(3, 3, activation="relu", name="conv"), L.BatchNormalization(name="bn_relu"),
                          L.MaxPooling1D(2, name="pool"), L.Flatten(name="flat"), L.Dense(2, name="fc")])
    _set_bn([m.get_layer("bn_in"), m.get_layer("bn_relu")], np.random.default_rng(5))
    graph = build_graph(m)
    assert _ops(graph).count("ScaleShift") == 2
    x = np.random.default_rng(6).normal(0, 1, (2000, 12, 2)).astype(np.float32)
    _within_bound(graph, emulate(graph, x), m.predict(x, verbose=0), x)


def test_config_keys_set_the_scale_shift_and_output(tmp_path):
    """weight / bias / output of an unfolded BatchNormalization are its scale, shift and
    output types; keys that need a Dense are refused naming the layer."""
    m = keras_mlp()
    m.save(tmp_path / "m.h5")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 1\nlayers:\n  bn_relu:\n    weight: fixed<8,2,RND,SAT>\n"
                   "    bias: fixed<6,1,RND,SAT>\n    output: fixed<14,5,RND,SAT>\n")
    import nnfpga
    graph = nnfpga.compile(tmp_path / "m.h5", outdir=tmp_path / "fw", config=cfg).graph
    bn = graph.node("bn_relu")
    assert bn.kernel_q.frac == 6 and bn.bias_q.frac == 5
    assert bn.info.type.spec() == "fixed<14,5,RND,SAT>"
    cfg.write_text("version: 1\nlayers:\n  bn_relu:\n    reuse_factor: 2\n")
    with pytest.raises(UserError, match=r"'bn_relu' \(BatchNormalization \(scale and shift\), 12 channels\) has no "
                                        r"weights; reuse_factor applies to Dense and Conv2D"):
        nnfpga.compile(tmp_path / "m.h5", outdir=tmp_path / "fw2", config=cfg)


def test_ptq_chooses_scale_and_shift_and_the_config_reproduces_it(tmp_path):
    """Post-training quantisation sizes an unfolded BatchNormalization's scale, shift and
    output like a Dense's; `nnfpga config` writes them, and compiling with that file alone
    gives the same firmware numerics."""
    import nnfpga
    keras_mlp().save(tmp_path / "m.h5")
    x = _events(1000, 9)
    text = nnfpga.make_config(tmp_path / "m.h5", tmp_path / "c.yaml", calibration=x)
    block = text.split("  bn_relu:")[1].split("\n  fc2:")[0]
    assert "BatchNormalization (scale and shift), 12 channels" in block
    for key in ("weight", "bias", "output"):
        assert f"\n    {key}: fixed<" in block and block.count("chosen by ptq") == 3
    with_ptq = nnfpga.compile(tmp_path / "m.h5", outdir=tmp_path / "a", calibration=x)
    chosen = {(c["layer"], c["what"]) for c in with_ptq.report["optimisation"]["ptq"]["chosen"]}
    assert {("bn_relu", "weight"), ("bn_relu", "output"), ("bn_in", "weight")} <= chosen
    nnfpga.compile(tmp_path / "m.h5", outdir=tmp_path / "b", config=tmp_path / "c.yaml")
    x2 = _events(2000, 10) * 2
    assert np.array_equal(nnfpga.emulate(tmp_path / "a", x2), nnfpga.emulate(tmp_path / "b", x2))


def test_unfolded_batchnorm_of_a_quantised_model_is_warned_about():
    """A quantised model's framework applies BatchNorm in float: not bit-exact, so a warning."""
    from nnfpga.compiler.passes.fold_batchnorm import fold_batchnorm
    from nnfpga.ir.ops import Activation, BatchNorm

    def graph(quantised: bool) -> Graph:
        q = Quantizer(WeightKind.FIXED, FixedType(4, 1, True, Rounding.RND_CONV, Overflow.SAT)) if quantised else None
        ones = np.ones(3)
        return Graph("g", [Input("input", [], out_type=IN_T, shape=(4,)),
                           Dense("fc", ["input"], kernel=np.full((4, 3), 0.25), kernel_quantizer=q),
                           Activation("relu", ["fc"], function="relu"),
                           BatchNorm("bn", ["relu"], gamma=ones, beta=ones, mean=ones, variance=ones)], ["bn"])
    with pytest.warns(UserWarning, match="'bn' of a quantised model does not follow a Dense/Conv2D"):
        g = fold_batchnorm(graph(True))
    assert isinstance(g.node("bn"), ScaleShift)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(fold_batchnorm(graph(False)).node("bn"), ScaleShift)


def test_folding_into_a_quantised_layer_drops_the_framework_record():
    """QKeras computes BN(x @ Q(W) + b); the folded layer holds Q(W * s): the record of what
    the framework computes exactly no longer holds, so no bound against it is claimed."""
    from nnfpga.compiler.passes.error_bound import FRAMEWORK_EXACT, framework_bound
    from nnfpga.compiler.passes.fold_batchnorm import fold_batchnorm
    from nnfpga.ir.ops import BatchNorm
    q = Quantizer(WeightKind.FIXED, FixedType(6, 1, True, Rounding.RND_CONV, Overflow.SAT))
    g = Graph("g", [Input("input", [], out_type=IN_T, shape=(4,)),
                    Dense("fc", ["input"], kernel=np.full((4, 3), 0.3), bias=np.zeros(3), kernel_quantizer=q,
                          bias_quantizer=q),
                    BatchNorm("bn", ["fc"], gamma=np.full(3, 1.7), beta=np.ones(3), mean=np.zeros(3),
                              variance=np.ones(3))], ["bn"])
    g.annotations[FRAMEWORK_EXACT] = {"input": {"out_type": IN_T.to_json()},
                                      "fc": {"kernel_quantizer": q.to_json(), "bias_quantizer": q.to_json(),
                                             "float_bias": False}}
    with pytest.warns(UserWarning, match="folded into quantised layer 'fc'"):
        g = fold_batchnorm(g)
    assert FRAMEWORK_EXACT not in g.annotations
    from nnfpga.compiler.passes.quantize_weights import quantize_weights
    assert framework_bound(assign_types(quantize_weights(g))) is None


# ----------------------------------------------------------------------------- ONNX
def test_onnx_batchnorm_anywhere_within_bound(tmp_path):
    """After a Relu (features), as Unsqueeze -> BatchNormalization -> Squeeze (PyTorch's
    BatchNorm1d on a flat input), and on (C, H, W) data after a MaxPool."""
    from tests.test_onnx_frontend import G, _ort, _save
    rng = np.random.default_rng(5)
    g = G(opset=17)

    def bn(name: str, n: int) -> list[str]:
        return [g.const(f"{name}_g", rng.uniform(0.5, 1.5, n)), g.const(f"{name}_b", rng.normal(0, .2, n)),
                g.const(f"{name}_m", rng.normal(0, .3, n)), g.const(f"{name}_v", rng.uniform(0.5, 2, n))]
    h = g.node("Conv", ["x", g.const("w1", rng.normal(0, .4, (3, 2, 3, 3)))], name="conv")
    h = g.node("MaxPool", [g.node("Relu", [h])], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    h = g.node("BatchNormalization", [h, *bn("bn_pool", 3)], name="bn_pool")
    h = g.node("Gemm", [g.node("Flatten", [h]), g.const("w2", rng.normal(0, .3, (3 * 3 * 4, 6)))], name="fc1")
    h = g.node("BatchNormalization", [g.node("Relu", [h]), *bn("bn_relu", 6)], name="bn_relu")
    h = g.node("Unsqueeze", [h, g.const("ax", [2], np.int64)])
    h = g.node("BatchNormalization", [h, *bn("bn_1d", 6)], name="bn_1d")
    h = g.node("Squeeze", [h, g.const("ax2", [2], np.int64)])
    y = g.node("Gemm", [h, g.const("w3", rng.normal(0, .3, (6, 3)))], name="fc2")
    model = g.model((2, 8, 10), y, (3,), "bn_anywhere")
    graph = build_graph(_save(model, tmp_path))
    assert _ops(graph) == ["Input", "Conv2D", "Activation", "MaxPool2D", "ScaleShift", "Reshape", "Dense",
                           "Activation", "ScaleShift", "ScaleShift", "Dense"]
    x = rng.normal(0, 1, (2000, 2, 8, 10)).astype(np.float32)
    _within_bound(graph, emulate(graph, x), _ort(model, x), x)


def test_onnx_batchnorm_after_1d_conv_and_folded_after_gemm(tmp_path):
    """On a 1-D convolution's (C, L) output (held as the image (1, L, C)) one parameter per
    channel, no reshape; right after a Gemm it is folded."""
    from tests.test_onnx_frontend import G, _ort, _save
    rng = np.random.default_rng(7)
    g = G(opset=17)

    def bn(name: str, n: int) -> list[str]:
        return [g.const(f"{name}_g", rng.uniform(0.5, 1.5, n)), g.const(f"{name}_b", rng.normal(0, .2, n)),
                g.const(f"{name}_m", rng.normal(0, .3, n)), g.const(f"{name}_v", rng.uniform(0.5, 2, n))]
    h = g.node("Relu", [g.node("Conv", ["x", g.const("w1", rng.normal(0, .4, (3, 2, 3)))], name="conv")])
    h = g.node("BatchNormalization", [h, *bn("bn_conv", 3)], name="bn_conv")
    h = g.node("MaxPool", [h], name="pool", kernel_shape=[2], strides=[2])
    h = g.node("Gemm", [g.node("Flatten", [h]), g.const("w2", rng.normal(0, .3, (3 * 5, 4)))], name="fc")
    y = g.node("BatchNormalization", [h, *bn("bn_fc", 4)], name="bn_fc")
    model = g.model((2, 12), y, (4,), "bn_1d")
    graph = build_graph(_save(model, tmp_path))
    assert _ops(graph) == ["Input", "Conv2D", "Activation", "ScaleShift", "MaxPool2D", "Reshape", "Dense"]
    x = rng.normal(0, 1, (2000, 2, 12)).astype(np.float32)
    _within_bound(graph, emulate(graph, x), _ort(model, x), x)


# ----------------------------------------------------------------------------- PyTorch
def test_torch_batchnorm_anywhere_within_bound():
    import torch
    from nnfpga.compiler.frontends.pytorch import TorchModel

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bn_in = torch.nn.BatchNorm2d(2)
            self.conv = torch.nn.Conv2d(2, 3, 3)
            self.bn_relu = torch.nn.BatchNorm2d(3)
            self.pool = torch.nn.MaxPool2d(2)
            self.bn_pool = torch.nn.BatchNorm2d(3)
            self.fc = torch.nn.Linear(3 * 3 * 4, 5)
            self.bn_1d = torch.nn.BatchNorm1d(5)
            self.out = torch.nn.Linear(5, 2)

        def forward(self, x):
            x = self.bn_pool(self.pool(self.bn_relu(torch.relu(self.conv(self.bn_in(x))))))
            return self.out(self.bn_1d(torch.relu(self.fc(x.flatten(1)))))

    torch.manual_seed(0)
    m = Net()
    with torch.no_grad():
        for bn in (m.bn_in, m.bn_relu, m.bn_pool, m.bn_1d):
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    m.eval()
    x = np.random.default_rng(0).normal(0, 1, (2000, 2, 8, 10)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = build_graph(TorchModel(m, torch.from_numpy(x[:2])))
    assert _ops(graph) == ["Input", "ScaleShift", "Conv2D", "Activation", "ScaleShift", "MaxPool2D", "ScaleShift",
                           "Reshape", "Dense", "Activation", "ScaleShift", "Dense"]
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    _within_bound(graph, emulate(graph, x), ref, x)


# ----------------------------------------------------------------------------- IR and RTL
IN_T = FixedType(6, 3, True, Rounding.RND, Overflow.SAT)


def scale_shift_graph(scales: list[float], shifts: list[float], frac: int = 4,
                      out: FixedType | None = FixedType(8, 4, True, Rounding.RND_CONV, Overflow.SAT)) -> Graph:
    """Input (2, 3, C) -> ScaleShift -> a Dense (the RTL needs a linear layer): exact
    constants ``scales``/``shifts`` at ``frac`` fractional bits."""
    c = len(scales)
    q = Quantizer(WeightKind.FIXED, FixedType(12, 12 - frac, True, Rounding.RND, Overflow.SAT))
    ss = ScaleShift("bn", ["input"], out_type=out, kernel=np.array(scales, float), bias=np.array(shifts, float),
                    kernel_quantizer=q, bias_quantizer=q)
    ss.kernel_q, ss.bias_q = q.apply(ss.kernel), q.apply(ss.bias)
    assert np.array_equal(ss.kernel_q.value, scales) and np.array_equal(ss.bias_q.value, shifts)
    from nnfpga.ir.ops import Reshape
    w = np.random.default_rng(0).integers(-3, 4, (6 * c, 2))
    d = Dense("fc", ["flat"], kernel=w.astype(float))
    d.kernel_q = QuantArray(w.astype(np.int64), 0)
    nodes = [Input("input", [], out_type=IN_T, shape=(2, 3, c)), ss, Reshape("flat", ["bn"], target_shape=(-1,)), d]
    return assign_types(Graph("ss", nodes, ["fc"]))


def _all_values(graph: Graph, n: int = 3000) -> np.ndarray:
    t = graph.input.info.type
    shape = graph.input.info.shape
    return np.random.default_rng(1).integers(t.min_raw, t.max_raw + 1, (n, *shape))


@pytest.mark.parametrize("scales, shifts", [
    ([2.0, -0.5, 1.0, -1.0], [0.25, 0.0, -1.5, 3.0]),        # powers of two with signs: no multiplier
    ([0.8125, -1.375, 0.0, 0.25], [0.0625, -0.5, 1.0, 0.0]),   # general, negative, zero
])
def test_scale_shift_rtl_is_bit_exact(scales, shifts):
    for out in (FixedType(8, 4, True, Rounding.RND_CONV, Overflow.SAT), FixedType(6, 2, True, Rounding.TRN,
                                                                                     Overflow.WRAP), None):
        g = scale_shift_graph(scales, shifts, out=out)
        x = _all_values(g)
        golden = run_raw(g, x)
        assert np.array_equal(evaluate(lower(g), x.reshape(len(x), -1)), golden)
        # the op's own meaning, independently: round(x * s + t) in the output type
        bn = g.node("bn")
        xv = x * IN_T.lsb
        exact = xv * np.array(scales) + np.array(shifts)
        want = bn.info.type.quantize(exact) if out is not None else exact / bn.info.type.lsb
        got = run_raw(Graph("ss", g.nodes[:2], ["bn"]), x).reshape(want.shape)
        assert np.array_equal(got, want)


def test_power_of_two_scale_uses_no_multiplier():
    po2 = scale_shift_graph([2.0, -0.5, 1.0, -4.0], [0.25, 0.0, -1.5, 3.0])
    general = scale_shift_graph([0.8125, -1.375, 0.75, 0.25], [0.0625, -0.5, 1.0, 0.0])
    for g, multiplies in ((po2, False), (general, True)):
        nl = lower(g)
        layer = next(info for info in nl.layers if info.name == "bn")
        ops = [op for op in nl.ops if op.out.layer == "bn" and isinstance(op, MulConst)]
        est = estimate_netlist(nl).layers["bn"]
        assert bool(ops) is multiplies and (layer.multipliers > 0) is multiplies
        assert layer.dsp == est.dsp
        if not multiplies:
            assert layer.dsp == 0 and est.lut_products == 0 and est.dsp_products == 0
            assert layer.latency == 1   # no multiplier registers either
            verilog = print_verilog(nl)
            own = [ln for ln in verilog.splitlines() if ln.strip().startswith("assign bn_")]
            assert own and not any("*" in ln for ln in own)


def test_reuse_search_prices_the_scale_shift_products():
    """The DSP budget of the reuse search counts a ScaleShift's constant products as the
    lowering builds them (no reuse factor changes them)."""
    from nnfpga.backends.rtl.lowering.schedule import CostModel
    for wide in (False, True):   # 6-bit and 18-bit inputs
        g = scale_shift_graph([0.8125, -1.375, 0.75, 0.25], [0.0625, -0.5, 1.0, 0.0])
        if wide:
            g.input.out_type = FixedType(18, 4, True, Rounding.RND, Overflow.SAT)
            g.node("bn").kernel_q = QuantArray(np.array([1001, -1375, 750, 256]), 10)
            g = assign_types(g)
        built = next(info for info in lower(g).layers if info.name == "bn").dsp
        assert CostModel("DSP48E2").fixed_dsp(g).get("bn", 0) == built
        assert built > 0


def test_dead_units_are_removed_through_a_scale_shift():
    """A unit of fc1 that fc2 never reads, and a constant one, go with their ScaleShift
    channel; bit-exact."""
    from nnfpga.compiler.config import make_options
    from nnfpga.compiler.passes.precision import infer_precision
    from nnfpga.compiler.passes.remove_dead import remove_dead_units
    from tests.irmodels import random_inputs, random_mlp
    g = random_mlp([6, 5, 3], seed=2)
    q = Quantizer(WeightKind.FIXED, FixedType(10, 2, True, Rounding.RND, Overflow.SAT))
    rng = np.random.default_rng(3)
    ss = ScaleShift("bn", ["relu1"], kernel=rng.uniform(-2, 2, 5), bias=rng.normal(0, 1, 5), kernel_quantizer=q,
                    bias_quantizer=q, out_type=FixedType(12, 5, True, Rounding.RND, Overflow.SAT))
    ss.kernel_q, ss.bias_q = q.apply(ss.kernel), q.apply(ss.bias)
    g.nodes.insert(g.nodes.index(g.node("relu1")) + 1, ss)
    fc1, fc2 = g.node("fc1"), g.node("fc2")
    fc2.inputs = ["bn"]
    for node, index in ((fc2, (1, slice(None))), (fc1, (slice(None), 3))):   # unit 1 unused, unit 3 constant
        node.kernel = node.kernel.copy()
        node.kernel[index] = 0.0
        raw = node.kernel_q.raw.copy()
        raw[index] = 0
        node.kernel_q = QuantArray(raw, node.kernel_q.frac, node.kernel_q.kind)
    g = assign_types(g)
    x = random_inputs(g, 3000)
    before = emulate(g, x)
    columns, scales, shifts = fc1.kernel.T.copy(), ss.kernel.copy(), ss.bias.copy()
    g = infer_precision(remove_dead_units(g, make_options({"pruning": {}})))
    assert np.array_equal(emulate(g, x), before)
    kept = [next(j for j, c in enumerate(columns) if np.array_equal(c, col)) for col in g.node("fc1").kernel.T]
    assert 1 not in kept and 3 not in kept and g.node("fc2").n_in == len(kept)
    assert np.array_equal(g.node("bn").kernel_q.raw, q.apply(scales[kept]).raw)
    assert np.array_equal(g.node("bn").bias_q.raw, q.apply(shifts[kept]).raw)


def test_scale_shift_round_trips_through_json(tmp_path):
    g = scale_shift_graph([0.8125, -1.375, 0.0, 0.25], [0.0625, -0.5, 1.0, 0.0])
    g.save(tmp_path / "ir.json")
    back = load_ir(tmp_path / "ir.json")   # validated: types and ranges re-derived
    x = _all_values(g, 500)
    assert np.array_equal(run_raw(back, x), run_raw(g, x))
    assert json.loads((tmp_path / "ir.json").read_text())["nodes"][1]["op"] == "ScaleShift"


def test_scale_shift_after_quantized_input_with_float_samples():
    """The emulator takes float samples through the input conversion into ScaleShift."""
    g = scale_shift_graph([2.0, -0.5, 1.0, -1.0], [0.25, 0.0, -1.5, 3.0])
    x = np.random.default_rng(2).normal(0, 2, (100, 2, 3, 4))
    assert np.array_equal(emulate(g, x), run_raw(g, quantize_input(g, x)) * g.output.info.type.lsb)


# ----------------------------------------------------------------------------- simulators
@pytest.mark.slow
def test_keras_batchnorm_golden_csim_verilator_ghdl_bit_exact(tmp_path):
    from nnfpga.compiler.cli import main
    keras_mlp(seed=7, softmax=True).save(tmp_path / "bn.h5")
    out = tmp_path / "fw"
    assert main(["compile", str(tmp_path / "bn.h5"), "-o", str(out)]) == 0
    np.savez(tmp_path / "events.npz", x=_events(5000, seed=8) * 2)
    assert main(["verify", str(out), "--data", str(tmp_path / "events.npz"), "--sim", "verilator,ghdl,csim"]) == 0
    summary = json.loads((out / "verify.json").read_text())
    assert summary["samples"] == 5000 and summary["bit_exact"]
    for sim in ("verilator", "ghdl", "csim"):
        assert summary["results"][sim]["mismatches"] == 0 and summary["results"][sim]["samples"] == 5000


@pytest.mark.slow
def test_power_of_two_and_general_scales_in_simulators(tmp_path):
    """Shifts, negations, a zero scale and constant products, with rounding and wrapping
    outputs, on the same inputs in the C-sim, Verilator and GHDL as in the golden model."""
    import nnfpga
    from nnfpga.compiler.cli import main
    for k, (scales, shifts, out) in enumerate([
            ([2.0, -0.5, 1.0, -1.0], [0.25, 0.0, -1.5, 3.0], FixedType(8, 4, True, Rounding.RND_CONV, Overflow.SAT)),
            ([0.8125, -1.375, 0.0, 0.25], [0.0625, -0.5, 1.0, 0.0], FixedType(6, 2, True, Rounding.TRN, Overflow.WRAP))]):
        g = scale_shift_graph(scales, shifts, out=out)
        fw = tmp_path / f"fw{k}"
        nnfpga.compile(g, outdir=fw)
        np.savez(tmp_path / "x.npz", x=_all_values(g, 2000) * IN_T.lsb)
        assert main(["verify", str(fw), "--data", str(tmp_path / "x.npz"), "--sim", "verilator,ghdl,csim"]) == 0
        summary = json.loads((fw / "verify.json").read_text())
        assert summary["samples"] == 2000 and summary["bit_exact"]
        for sim in ("verilator", "ghdl", "csim"):
            assert summary["results"][sim]["mismatches"] == 0


def _qbn_model(path, gamma_q, beta_q="quantized_po2(5)", mean_q=None, variance_q=None):
    """QDense -> quantized_relu -> QBatchNormalization (the given parameter quantisers,
    parameters set to do something) -> QDense."""
    import tf_keras as keras
    from qkeras import QActivation, QBatchNormalization, QDense, quantized_bits, quantized_relu
    keras.utils.set_random_seed(3)
    weights = dict(kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 2, alpha=1))
    inp = keras.Input((10,))
    h = QActivation(quantized_bits(8, 3, alpha=1))(inp)
    h = QDense(8, activation=quantized_relu(6, 2), **weights)(h)
    h = QBatchNormalization(gamma_quantizer=gamma_q, beta_quantizer=beta_q, mean_quantizer=mean_q,
                            variance_quantizer=variance_q, name="qbn")(h)
    model = keras.Model(inp, QDense(3, **weights)(h))
    rng = np.random.default_rng(0)
    model.get_layer("qbn").set_weights([rng.uniform(lo, hi, 8).astype(np.float32)
                                        for lo, hi in ((0.5, 2), (-1, 1), (0, 2), (0.3, 3))])
    model.save(path)
    return model


def test_qkeras_batchnorm_within_the_bound_against_qkeras(tmp_path):
    """QBatchNormalization: QKeras quantises gamma, beta, mean and variance, then
    normalises in float; the golden model is within the bound against QKeras itself."""
    from qkeras import quantized_bits

    from nnfpga.compiler.passes.error_bound import framework_bound
    model = _qbn_model(tmp_path / "qbn.h5", quantized_bits(6, 2, alpha=1), mean_q=quantized_bits(8, 2, alpha=1))
    graph = build_graph(tmp_path / "qbn.h5")
    assert "ScaleShift" in _ops(graph)
    x = (np.random.default_rng(1).integers(-128, 128, (5000, 10)) / 32).astype(np.float32)
    reference = model.predict(x, batch_size=5000, verbose=0)
    bound = framework_bound(graph)
    diff = np.abs(emulate(graph, x) - reference)
    assert np.all(diff <= bound + 1e-5), (diff.max(axis=0), bound)
    assert 0 < diff.max()
    # the parameters went through their quantisers: unquantised ones give another model
    float_params = _qbn_model(tmp_path / "qbn_float.h5", None, None)
    assert np.abs(float_params.predict(x, batch_size=5000, verbose=0) - reference).max() > bound.max()


def test_qkeras_batchnorm_default_quantisers_are_refused_by_name(tmp_path):
    _qbn_model(tmp_path / "qbn.h5", "quantized_relu_po2(6, 2048)")
    with pytest.raises(UserError, match="layer 'qbn' \\(QBatchNormalization\\).*quantized_relu_po2.*not supported"):
        build_graph(tmp_path / "qbn.h5")
