"""ONNX / QONNX frontend: bit-exact against qonnx (and onnxruntime for QDQ), bounded against
float onnxruntime, NCHW layouts, clean refusals."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnfpga.ir.validate import load_ir
from nnfpga.compiler.cli import main
from nnfpga.compiler.frontends.onnx import onnx_to_ir
from nnfpga.compiler.passes.error_bound import error_bound
from nnfpga.compiler.pipeline import build_graph
from nnfpga.core.errors import UserError
from nnfpga.ir.emulator import emulate
from nnfpga.ir.graph import Graph
from tests.conftest import ROOT

QONNX = "qonnx.custom_op.general"


class G:
    """A tiny graph builder on top of onnx.helper."""

    def __init__(self, opset: int = 13, qonnx_opset: int | None = None):
        self.nodes, self.inits = [], []
        self.opsets = [helper.make_opsetid("", opset)]
        if qonnx_opset:
            self.opsets.append(helper.make_opsetid(QONNX, qonnx_opset))

    def const(self, name: str, value, dtype=np.float32) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], name: str | None = None, domain: str = "", **attrs) -> str:
        k = len(self.nodes)
        out = f"t{k}_{op.lower()}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name or f"{op.lower()}_{k}", domain=domain,
                                           **attrs))
        return out

    def quant(self, x: str, scale, bits: int, signed: int = 1, narrow: int = 0, mode: str = "ROUND",
              zp: float = 0.0, name: str | None = None) -> str:
        k = len(self.nodes)
        ins = [x, self.const(f"q{k}_scale", scale), self.const(f"q{k}_zp", zp), self.const(f"q{k}_bits", bits)]
        return self.node("Quant", ins, name=name, domain=QONNX, signed=signed, narrow=narrow, rounding_mode=mode)

    def qdq(self, x: str, scale, dtype=np.int8, axis: int = 1) -> str:
        k = len(self.nodes)
        s, z = self.const(f"qdq{k}_scale", scale), self.const(f"qdq{k}_zp", np.zeros(np.shape(scale)), dtype)
        return self.node("DequantizeLinear", [self.node("QuantizeLinear", [x, s, z], axis=axis), s, z], axis=axis)

    def model(self, in_shape: tuple[int, ...], out: str, out_shape: tuple[int, ...],
              name: str = "m") -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                   ["N", *in_shape])],
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", *out_shape])],
                                  self.inits)
        model = helper.make_model(graph, opset_imports=self.opsets)
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def _ort(model: onnx.ModelProto, x: np.ndarray, optimize: bool = True) -> np.ndarray:
    import onnxruntime as ort
    opts = ort.SessionOptions()
    if not optimize:  # run the graph as written (QDQ nodes not fused into integer kernels)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _qonnx(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """qonnx's own execution (it wants the batch size in the model)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = len(x)
    wrapper = ModelWrapper(m).transform(InferShapes())
    return execute_onnx(wrapper, {"x": x})[m.graph.output[0].name]


def _assert_bit_exact(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape
    bad = np.argwhere(ours != theirs)
    assert len(bad) == 0, f"{len(bad)} values differ, first at {bad[:3].tolist()}"


def _float_check(graph: Graph, reference: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    bound = error_bound(graph, (float(x.min()), float(x.max())))
    assert bound is not None
    ours = emulate(graph, x)
    assert ours.shape == reference.shape
    diff = np.abs(ours - reference).reshape(len(x), -1)
    worst = float((diff - bound).max())
    assert worst <= 1e-5, f"error {diff.max():.3g} exceeds the bound {bound.max():.3g}"
    return float(diff.max()), float(bound.max())


def _save(model: onnx.ModelProto, tmp_path, name: str = "m.onnx"):
    path = tmp_path / name
    onnx.save(model, path)
    return path


# ----------------------------------------------------------------------------- QONNX, bit-exact
def _brevitas_mlp(rng) -> onnx.ModelProto:
    """Quant on the input, on weights (initialiser -> Quant -> Gemm/MatMul) and after Relu:
    8-bit input, 4-bit / ternary (2-bit narrow) / per-channel 8-bit weights, 16-bit biases."""
    g = G(qonnx_opset=1)
    x = g.quant("x", 2 ** -4, 8, name="inp_quant")
    w1 = g.quant(g.const("w1", rng.normal(0, 0.5, (16, 12))), 2 ** -3, 4, narrow=1)
    b1 = g.quant(g.const("b1", rng.normal(0, 0.5, 12)), 2 ** -7, 16)
    h = g.node("Relu", [g.node("Gemm", [x, w1, b1], name="fc1")])
    h = g.quant(h, 2 ** -2, 4, signed=0, name="act1")
    w2 = g.quant(g.const("w2", rng.normal(0, 0.6, (12, 8))), 2 ** -1, 2, narrow=1)   # ternary
    b2 = g.quant(g.const("b2", rng.normal(0, 0.5, 8)), 2 ** -5, 8)
    h = g.node("Add", [g.node("MatMul", [h, w2], name="fc2"), b2])
    h = g.quant(g.node("Relu", [h]), 2 ** -3, 8, signed=0, name="act2")
    w3 = g.quant(g.const("w3", rng.normal(0, 0.5, (3, 8))), np.array([[2 ** -3], [2 ** -4], [2 ** -2]]), 8, narrow=1)
    y = g.node("Gemm", [h, w3], name="fc3", transB=1)
    return g.model((16,), y, (3,), "brevitas_mlp")


def test_brevitas_style_qonnx_mlp_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    model = _brevitas_mlp(rng)
    graph = build_graph(_save(model, tmp_path))
    kinds = {n.name: n.kernel_q.kind.value for n in graph.nodes if n.op_type == "Dense"}
    assert kinds == {"fc1": "fixed", "fc2": "ternary", "fc3": "fixed"}
    assert graph.input.info.type.spec() == "fixed<8,4,RND_CONV,SAT>"
    relus = [n for n in graph.nodes if n.op_type == "Activation"]
    assert [(n.function, n.info.type.spec()) for n in relus] == \
        [("relu", "ufixed<4,2,RND_CONV,SAT>"), ("relu", "ufixed<8,5,RND_CONV,SAT>")]
    x = rng.normal(0, 3, (4000, 16)).astype(np.float32)
    _assert_bit_exact(emulate(graph, x), _qonnx(model, x))


def _qonnx_cnn(rng) -> onnx.ModelProto:
    """NCHW: Quant -> Conv (pads 1) -> Relu/Quant -> MaxPool -> Conv (stride 2, TF-same pads)
    -> Relu/Quant -> Flatten -> Gemm: the Gemm rows must follow PyTorch's C,H,W order."""
    g = G(qonnx_opset=1)
    x = g.quant("x", 2 ** -3, 6)
    w = g.quant(g.const("cw1", rng.normal(0, 0.5, (4, 2, 3, 3))), 2 ** -3, 4, narrow=1)
    b = g.quant(g.const("cb1", rng.normal(0, 0.5, 4)), 2 ** -6, 12)
    h = g.node("Conv", [x, w, b], name="conv1", pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    h = g.quant(g.node("Relu", [h]), 2 ** -2, 4, signed=0)
    h = g.node("MaxPool", [h], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    w = g.quant(g.const("cw2", rng.normal(0, 0.5, (3, 4, 3, 3))), np.full((3, 1, 1, 1), 2 ** -2), 2, narrow=1)
    h = g.node("Conv", [h, w], name="conv2", pads=[0, 0, 1, 1], strides=[2, 2])
    h = g.quant(g.node("Relu", [h]), 2 ** -2, 4, signed=0)
    h = g.node("Flatten", [h], name="flat")
    w = g.quant(g.const("fw", rng.normal(0, 0.4, (5, 3 * 3 * 2))), 2 ** -4, 8, narrow=1)
    y = g.node("Gemm", [h, w], name="fc", transB=1)
    return g.model((2, 12, 8), y, (5,), "qonnx_cnn")


def test_qonnx_cnn_with_nchw_layout_is_bit_exact(tmp_path):
    rng = np.random.default_rng(1)
    model = _qonnx_cnn(rng)
    graph = build_graph(_save(model, tmp_path))
    assert graph.input.info.shape == (12, 8, 2) and graph.input_layout.shape == (2, 12, 8)
    assert graph.output_layout is None
    conv2 = graph.node("conv2")
    assert conv2.padding == "same" and conv2.kernel_q.kind.value == "ternary"
    x = rng.uniform(-4, 4, (2000, 2, 12, 8)).astype(np.float32)
    _assert_bit_exact(emulate(graph, x), _qonnx(model, x))


def test_bipolar_weights_trunc_and_floor_are_bit_exact(tmp_path):
    rng = np.random.default_rng(2)
    g = G(qonnx_opset=2)
    x = g.quant("x", 2 ** -4, 8)
    w = g.quant(g.const("w1", rng.normal(0, 0.5, (10, 6))), 2 ** -3, 5, narrow=1)
    h = g.node("MatMul", [x, w], name="fc1")
    k = len(g.nodes)
    h = g.node("Trunc", [h, g.const(f"t{k}_s", 2 ** -7), g.const(f"t{k}_z", 0.0), g.const(f"t{k}_ib", 16),
                         g.const(f"t{k}_os", 2 ** -3), g.const(f"t{k}_ob", 6)], name="trunc", domain=QONNX,
               rounding_mode="FLOOR", signed=1, narrow=0)
    h = g.quant(g.node("Relu", [h]), 2 ** -2, 3, signed=0, mode="FLOOR")
    w = g.node("BipolarQuant", [g.const("w2", rng.normal(0, 1, (6, 4))), g.const("w2s", 2 ** -2)], domain=QONNX)
    y = g.node("MatMul", [h, w], name="fc2")
    model = g.model((10,), y, (4,), "trunc_bipolar")
    graph = build_graph(_save(model, tmp_path))
    assert graph.node("fc2").kernel_q.kind.value == "binary"
    x = rng.normal(0, 3, (3000, 10)).astype(np.float32)
    _assert_bit_exact(emulate(graph, x), _qonnx(model, x))


def test_qdq_model_is_bit_exact_against_onnxruntime(tmp_path):
    """QuantizeLinear/DequantizeLinear pairs: on the input, int8 weights stored as integers
    (per-axis power-of-two scales), float weights through Q/DQ, uint8 activations."""
    rng = np.random.default_rng(3)
    g = G(opset=20)
    x = g.qdq("x", np.float32(2 ** -4))
    w_int = g.const("cw_int", rng.integers(-7, 8, (3, 2, 3, 3)), np.int8)
    cw = g.node("DequantizeLinear", [w_int, g.const("cw_s", [2 ** -3, 2 ** -4, 2 ** -2]),
                                     g.const("cw_z", [0, 0, 0], np.int8)], axis=0)
    cb = g.node("DequantizeLinear", [g.const("cb_int", rng.integers(-200, 200, 3), np.int32),
                                     g.const("cb_s", 2 ** -7)])
    h = g.node("Conv", [x, cw, cb], name="conv", pads=[1, 1, 1, 1])
    h = g.qdq(g.node("Relu", [h]), np.float32(2 ** -3), np.uint8)
    h = g.node("Flatten", [g.node("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2])])
    fw = g.qdq(g.const("fw", rng.normal(0, 0.3, (3 * 3 * 3, 4))), np.float32(2 ** -5), axis=1)
    y = g.node("MatMul", [h, fw], name="fc")
    model = g.model((2, 6, 6), y, (4,), "qdq_cnn")
    graph = build_graph(_save(model, tmp_path))
    assert graph.input.info.type.spec() == "fixed<8,4,RND_CONV,SAT>"
    x = rng.normal(0, 2, (2000, 2, 6, 6)).astype(np.float32)
    _assert_bit_exact(emulate(graph, x), _ort(model, x, optimize=False))


# ----------------------------------------------------------------------------- float models
def _float_cnn(rng, opset: int) -> onnx.ModelProto:
    g = G(opset=opset)
    h = g.node("Conv", ["x", g.const("w1", rng.normal(0, 0.4, (4, 1, 3, 3))), g.const("b1", rng.normal(0, .1, 4))],
               name="conv1", pads=[1, 1, 1, 1])
    bn = [g.const("bn_g", rng.uniform(0.5, 1.5, 4)), g.const("bn_b", rng.normal(0, .1, 4)),
          g.const("bn_m", rng.normal(0, .1, 4)), g.const("bn_v", rng.uniform(0.5, 2, 4))]
    h = g.node("BatchNormalization", [h, *bn], name="bn", epsilon=1e-3)
    h = g.node("MaxPool", [g.node("Relu", [h])], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    h = g.node("Conv", [h, g.const("w2", rng.normal(0, 0.4, (3, 4, 3, 3)))], name="conv2", auto_pad="SAME_UPPER")
    h = g.node("Flatten", [g.node("Tanh", [h])], name="flat")
    h = g.node("Gemm", [h, g.const("fw", rng.normal(0, 0.3, (6, 3 * 4 * 5))), g.const("fb", rng.normal(0, .1, 6))],
               name="fc1", transB=1)
    y = g.node("Sigmoid", [g.node("Relu", [h])])
    return g.model((1, 8, 10), y, (6,), f"float_cnn_{opset}")


@pytest.mark.parametrize("opset", [13, 20])
def test_float_cnn_within_precision_bound(opset, tmp_path):
    rng = np.random.default_rng(opset)
    model = _float_cnn(rng, opset)
    graph = build_graph(_save(model, tmp_path))
    assert [n.op_type for n in graph.nodes] == ["Input", "Conv2D", "Activation", "MaxPool2D", "Conv2D",
                                                 "Activation", "Reshape", "Dense", "Activation", "Activation"]
    x = rng.normal(0, 1, (3000, 1, 8, 10)).astype(np.float32)
    worst, bound = _float_check(graph, _ort(model, x), x)
    assert 0 < worst < bound


@pytest.mark.parametrize("opset", [13, 20])
def test_float_mlp_within_precision_bound(opset, tmp_path):
    rng = np.random.default_rng(10 + opset)
    g = G(opset=opset)
    h = g.node("Add", [g.node("MatMul", ["x", g.const("w1", rng.normal(0, .4, (12, 10)))]),
                       g.const("b1", rng.normal(0, .1, (1, 10)))])
    h = g.node("Clip", [h, g.const("lo", -1.0), g.const("hi", 1.0)])          # hard tanh
    h = g.node("Gemm", [h, g.const("w2", rng.normal(0, .4, (10, 5)))], alpha=0.5, beta=1.0)
    h = g.node("Unsqueeze", [g.node("Identity", [h]), g.const("ax", [2], np.int64)])     # (N, 5, 1)
    y = g.node("Relu", [g.node("Squeeze", [h, g.const("ax2", [-1], np.int64)])])
    model = g.model((12,), y, (5,), "float_mlp")
    graph = build_graph(_save(model, tmp_path))
    x = rng.normal(0, 2, (5000, 12)).astype(np.float32)
    _float_check(graph, _ort(model, x), x)


def test_float_leaky_relu_mlp_within_precision_bound(tmp_path):
    """LeakyRelu with alpha 0.1, the default 0.01 and 0.01 given, against onnxruntime within
    the error bound (which includes the slopes' rounding to 3277 * 2**-15 and 655 * 2**-16);
    alpha 0 stays a plain relu."""
    rng = np.random.default_rng(21)
    g = G()
    h = g.node("Gemm", ["x", g.const("w1", rng.normal(0, .4, (12, 16))), g.const("b1", rng.normal(0, .2, 16))],
               name="fc1")
    h = g.node("LeakyRelu", [h], name="leaky1", alpha=0.1)
    h = g.node("Add", [g.node("MatMul", [h, g.const("w2", rng.normal(0, .4, (16, 10)))], name="fc2"),
                       g.const("b2", rng.normal(0, .2, 10))])
    h = g.node("LeakyRelu", [h], name="leaky2")                       # default alpha 0.01
    h = g.node("LeakyRelu", [g.node("Gemm", [h, g.const("w3", rng.normal(0, .5, (10, 6)))], name="fc3")],
               name="leaky3", alpha=0.01)
    y = g.node("LeakyRelu", [h], name="plain", alpha=0.0)
    model = g.model((12,), y, (6,), "leaky_mlp")
    graph = build_graph(_save(model, tmp_path))
    acts = [n for n in graph.nodes if n.op_type == "Activation"]
    assert [(n.function, n.alpha_raw, n.alpha_frac) for n in acts] == \
        [("leaky_relu", 3277, 15), ("leaky_relu", 655, 16), ("leaky_relu", 655, 16), ("relu", 0, 0)]
    assert all(n.info.type.frac == 10 for n in acts[:3])
    x = rng.normal(0, 2, (5000, 12)).astype(np.float32)
    worst, bound = _float_check(graph, _ort(model, x), x)
    assert 0 < worst < bound
    from nnfpga.ir.emulator import quantize_input, trace_raw
    values = trace_raw(graph, quantize_input(graph, x))
    assert all((values[n.name] < 0).mean() > 0.1 for n in acts[:2])   # the slopes matter


def test_float_hard_sigmoid_mlp_within_precision_bound(tmp_path):
    """HardSigmoid(alpha=0.5, beta=0.5) -- QKeras's hard_sigmoid -- on the input (stand-alone)
    and after Gemm and MatMul+Add (folded), against onnxruntime within the error bound;
    every clip side is reached."""
    rng = np.random.default_rng(23)
    g = G()
    h = g.node("HardSigmoid", ["x"], name="hs_in", alpha=0.5, beta=0.5)
    h = g.node("Gemm", [h, g.const("w1", rng.normal(0, 1.5, (12, 16))), g.const("b1", rng.normal(0, .5, 16))],
               name="fc1")
    h = g.node("HardSigmoid", [h], name="hs1", alpha=0.5, beta=0.5)
    h = g.node("Add", [g.node("MatMul", [h, g.const("w2", rng.normal(0, 1.0, (16, 6)))], name="fc2"),
                       g.const("b2", rng.normal(0, .5, 6))])
    y = g.node("HardSigmoid", [h], name="hs2", alpha=0.5, beta=0.5)
    model = g.model((12,), y, (6,), "hard_sigmoid_mlp")
    graph = build_graph(_save(model, tmp_path))
    acts = [n for n in graph.nodes if n.op_type == "Activation"]
    assert [n.function for n in acts] == ["hard_sigmoid"] * 3
    assert all(not n.info.type.signed and n.info.type.frac == 10 for n in acts)
    x = rng.normal(0, 2, (5000, 12)).astype(np.float32)
    reference = _ort(model, x)
    worst, bound = _float_check(graph, reference, x)
    assert 0 < worst < bound
    assert (reference == 0).any() and (reference == 1).any() and ((reference > 0) & (reference < 1)).any()
    from nnfpga.ir.emulator import quantize_input, trace_raw
    values = trace_raw(graph, quantize_input(graph, x))
    for n in acts:   # every hard sigmoid clips on both sides
        v = graph.node(n.name).info.type.to_float(values[n.name])
        assert (v == 0).any() and (v == 1).any(), n.name


@pytest.mark.parametrize("attrs, shown", [({}, "alpha=0.2, beta=0.5"),
                                          ({"alpha": 1 / 6, "beta": 0.5}, "alpha=0.166667, beta=0.5"),
                                          ({"alpha": 0.5, "beta": 0.25}, "alpha=0.5, beta=0.25")])
def test_hard_sigmoid_with_other_slopes_is_refused(attrs, shown, tmp_path, capsys):
    """Only QKeras's hard sigmoid (alpha = beta = 0.5) is supported: the ONNX default
    (Keras 2's 0.2x + 0.5) and PyTorch's x/6 + 0.5 are refused by name, never mapped."""
    rng = np.random.default_rng(24)
    g = G()
    h = g.node("Gemm", ["x", g.const("w", rng.normal(0, 1, (4, 3)))], name="fc")
    y = g.node("HardSigmoid", [h], name="gate", **attrs)
    path = _save(g.model((4,), y, (3,)), tmp_path)
    with pytest.raises(UserError) as err:
        build_graph(path)
    msg = str(err.value)
    assert "'gate'" in msg and "HardSigmoid" in msg, msg
    assert f"HardSigmoid with {shown} is not supported; only alpha=0.5, beta=0.5" in msg, msg
    assert main(["compile", str(path), "-o", str(tmp_path / "fw")]) == 2
    assert "'gate' (HardSigmoid)" in capsys.readouterr().err
    assert not (tmp_path / "fw").exists()


def test_qonnx_leaky_relu_merges_with_its_quant_and_is_bit_exact(tmp_path):
    """A Quant after a LeakyRelu sets the leaky ReLU's output type (one rounding of the
    exact value); with a power-of-two slope qonnx computes the same bits."""
    rng = np.random.default_rng(22)
    g = G(qonnx_opset=1)
    x = g.quant("x", 2 ** -4, 8)
    w1 = g.quant(g.const("w1", rng.normal(0, 0.5, (12, 8))), 2 ** -3, 5, narrow=1)
    h = g.node("LeakyRelu", [g.node("MatMul", [x, w1], name="fc1")], name="leaky1", alpha=0.25)
    h = g.quant(h, 2 ** -3, 6, name="act1")
    w2 = g.quant(g.const("w2", rng.normal(0, 0.5, (8, 4))), 2 ** -3, 5, narrow=1)
    y = g.node("MatMul", [h, w2], name="fc2")
    model = g.model((12,), y, (4,), "qleaky")
    graph = build_graph(_save(model, tmp_path))
    leaky = graph.node("leaky1")
    assert [n.op_type for n in graph.nodes] == ["Input", "Dense", "Activation", "Dense"]
    assert (leaky.function, leaky.auto_frac, leaky.info.type.spec()) == \
        ("leaky_relu", None, "fixed<6,3,RND_CONV,SAT>")
    x = rng.normal(0, 3, (3000, 12)).astype(np.float32)
    _assert_bit_exact(emulate(graph, x), _qonnx(model, x))


def test_softmax_classifier_agrees(tmp_path):
    rng = np.random.default_rng(5)
    g = G()
    h = g.node("Relu", [g.node("Gemm", ["x", g.const("w1", rng.normal(0, .5, (8, 16))), g.const("b1", np.zeros(8))],
                               transB=1)])
    y = g.node("Softmax", [g.node("Gemm", [h, g.const("w2", rng.normal(0, .5, (8, 4)))])], axis=-1)
    model = g.model((16,), y, (4,))
    graph = build_graph(_save(model, tmp_path))
    x = rng.normal(0, 1, (3000, 16)).astype(np.float32)
    ours, ref = emulate(graph, x), _ort(model, x)
    assert np.abs(ours - ref).max() < 0.02
    assert np.mean(ours.argmax(1) == ref.argmax(1)) > 0.99


def test_layouts_nhwc_input_and_nchw_output(tmp_path):
    """A tf2onnx-style graph (NHWC input, Transpose to NCHW) needs no input permutation; a
    conv output (NCHW) is returned in NCHW."""
    rng = np.random.default_rng(6)
    g = G()
    h = g.node("Transpose", ["x"], perm=[0, 3, 1, 2])
    h = g.node("Relu", [g.node("Conv", [h, g.const("w", rng.normal(0, .5, (3, 2, 3, 3)))], name="conv")])
    y = g.node("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1], ceil_mode=0)
    model = g.model((7, 9, 2), y, (3, 3, 4))
    graph = build_graph(_save(model, tmp_path))
    assert graph.input_layout is None and graph.input.info.shape == (7, 9, 2)
    assert graph.output_layout.shape == (3, 3, 4) and graph.output.info.shape == (3, 4, 3)
    x = rng.normal(0, 1, (2000, 7, 9, 2)).astype(np.float32)
    _float_check(graph, _ort(model, x), x)


def test_conv_bias_add_and_nhwc_output_transpose(tmp_path):
    """Conv, then a per-channel Add (1, C, 1, 1) folded into its bias, then a Transpose to
    NHWC at the end: the IR's own layout, so no output permutation."""
    rng = np.random.default_rng(16)
    g = G(opset=15)
    h = g.node("Conv", ["x", g.const("w", rng.normal(0, .5, (3, 2, 3, 3)))], pads=[1, 1, 1, 1])
    h = g.node("Sub", [g.node("Add", [g.const("b", rng.normal(0, .5, (1, 3, 1, 1))), h]), g.const("c", 0.25)])
    y = g.node("Transpose", [g.node("Sigmoid", [h])], perm=[0, 2, 3, 1])
    model = g.model((2, 5, 4), y, (5, 4, 3))
    graph = build_graph(_save(model, tmp_path))
    assert [n.op_type for n in graph.nodes] == ["Input", "Conv2D", "Activation"]
    assert graph.output_layout is None and graph.input_layout.shape == (2, 5, 4)
    x = rng.normal(0, 1, (1000, 2, 5, 4)).astype(np.float32)
    _float_check(graph, _ort(model, x), x)


def test_nchw_input_flattened_into_a_dense_layer(tmp_path):
    rng = np.random.default_rng(17)
    g = G()
    y = g.node("Gemm", [g.node("Flatten", ["x"]), g.const("w", rng.normal(0, .3, (24, 5)))])
    model = g.model((2, 3, 4), y, (5,))
    graph = build_graph(_save(model, tmp_path))
    assert graph.input.info.shape == (24,) and graph.input_layout.shape == (2, 3, 4)
    x = rng.normal(0, 1, (1000, 2, 3, 4)).astype(np.float32)
    _float_check(graph, _ort(model, x), x)


def test_flat_input_reshaped_to_an_image(tmp_path):
    """(N, 48) -> Reshape (N, 3, 4, 4) -> Conv: the input permutation absorbs the reshape;
    ceil_mode pooling that TF 'same' reproduces is accepted; a flattened NCHW output keeps
    its order."""
    rng = np.random.default_rng(7)
    g = G(opset=17)
    h = g.node("Reshape", ["x", g.const("shape", [-1, 3, 4, 4], np.int64)])
    h = g.node("Conv", [h, g.const("w", rng.normal(0, .5, (2, 3, 2, 2)))], name="conv")
    h = g.node("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    y = g.node("Flatten", [h])
    model = g.model((48,), y, (8,))
    graph = build_graph(_save(model, tmp_path))
    assert graph.input.info.shape == (4, 4, 3) and graph.input_layout.shape == (48,)
    assert graph.output_layout.shape == (8,)
    x = rng.normal(0, 1, (2000, 48)).astype(np.float32)
    _float_check(graph, _ort(model, x), x)


def test_dynamic_batch_reshape_through_shape_ops(tmp_path):
    """x.view(x.size(0), -1) as exported: Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    rng = np.random.default_rng(8)
    g = G()
    h = g.node("Conv", ["x", g.const("w", rng.normal(0, .5, (2, 1, 3, 3)))])
    n = g.node("Unsqueeze", [g.node("Gather", [g.node("Shape", [h]), g.const("zero", 0, np.int64)]),
                             g.const("ax", [0], np.int64)])
    h = g.node("Reshape", [h, g.node("Concat", [n, g.const("m1", [-1], np.int64)], axis=0)])
    y = g.node("MatMul", [h, g.const("fw", rng.normal(0, .3, (2 * 4 * 4, 3)))])
    model = g.model((1, 6, 6), y, (3,))
    graph = build_graph(_save(model, tmp_path))
    x = rng.normal(0, 1, (1000, 1, 6, 6)).astype(np.float32)
    _float_check(graph, _ort(model, x), x)


def test_old_opset_is_converted(tmp_path):
    rng = np.random.default_rng(9)
    g = G(opset=11)
    y = g.node("Relu", [g.node("Gemm", ["x", g.const("w", rng.normal(0, .5, (6, 3)))])])
    model = g.model((6,), y, (3,))
    graph = build_graph(_save(model, tmp_path))
    x = rng.normal(0, 1, (500, 6)).astype(np.float32)
    _float_check(graph, _ort(model, x), x)


# ----------------------------------------------------------------------------- refusals
def test_unsupported_graph_lists_every_bad_node(tmp_path, capsys):
    rng = np.random.default_rng(11)
    g = G(qonnx_opset=1)
    h = g.node("Conv", ["x", g.const("w", rng.normal(0, .5, (4, 1, 3, 3)))], name="grouped", group=2)
    h = g.node("LeakyRelu", [h], name="leaky", alpha=1.5)   # slopes >= 1 are refused
    h = g.node("AveragePool", [h], name="avg", kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])
    h = g.quant(h, 2 ** -3, 8, zp=3.0, name="offset_quant")
    h = g.node("Flatten", [h], name="flat")
    w = g.quant(g.const("fw", rng.normal(0, .3, (4 * 2 * 2, 3))), 0.1, 8, name="decimal_quant")
    h = g.node("Gemm", [h, w], name="fc")
    y = g.node("Conv", [g.node("Reshape", [h, g.const("s", [0, 1, 3, 1], np.int64)]),
                        g.const("w2", np.ones((1, 1, 2, 1)))], name="asym", pads=[1, 0, 0, 0])
    path = _save(g.model((2, 6, 6), y, (1, 4, 1)), tmp_path)
    with pytest.raises(UserError) as err:
        build_graph(path)
    msg = str(err.value)
    for name, why in [("grouped", "group=2"), ("leaky", "alpha=1.5: only slopes 0 <= alpha < 1"),
                      ("avg", "average pooling with padding is not supported"),
                      ("offset_quant", "zero point"), ("decimal_quant", "not a power of two"),
                      ("asym", "neither 'valid'")]:
        assert f"'{name}'" in msg and why in msg, (name, msg)
    assert "supported ONNX ops" in msg
    assert main(["compile", str(path), "-o", str(tmp_path / "fw")]) == 2
    assert "'leaky' (LeakyRelu)" in capsys.readouterr().err
    assert not (tmp_path / "fw").exists()


def test_the_supported_list_is_made_from_the_handlers():
    """The list every refusal ends with names each op that has a handler, once, and a note
    belongs to an op with a handler (adding an op is adding its handler)."""
    from nnfpga.compiler.frontends.onnx_ops import NOTES, SUPPORTED, OpHandlers
    handled = [a.split("_", 2)[2] for a in vars(OpHandlers) if a.startswith(("_op_", "_q_"))]
    assert set(NOTES) <= set(handled)
    listed = [s.split(" (")[0].removeprefix("QONNX ") for s in SUPPORTED]
    assert listed == [*handled, "constant sub-graphs"]
    assert "LeakyRelu (0 <= alpha < 1)" in SUPPORTED and "QONNX Quant" in SUPPORTED


@pytest.mark.parametrize("case, why", [
    ("asymmetric_pads", "neither 'valid'"),
    ("narrow_activation", "narrow=1"),
    ("per_channel_activation", "per-channel"),
    ("half_up_activation", "rounding_mode 'HALF_UP'"),
    ("trunc_v1", "Trunc of qonnx opset 1"),
    ("bipolar_activation_scale", "BipolarQuant scale 0.30.* is not a power of two"),
    ("residual_broadcast", "adds tensors of shapes"),
    ("batch_transpose", "moves the batch axis"),
    ("qdq_zero_point", "zero point"),
    ("batchnorm_channels", "do not match the input's 4 channels"),
])
def test_inexact_or_unsupported_constructs_are_refused(case, why, tmp_path):
    rng = np.random.default_rng(12)
    g = G(qonnx_opset=1)
    shape = out_shape = (4,)
    if case == "asymmetric_pads":
        shape, out_shape = (1, 8, 8), (1, 4, 4)
        y = g.node("Conv", ["x", g.const("w", np.ones((1, 1, 3, 3)))], strides=[2, 2], pads=[1, 1, 1, 1])
    elif case == "narrow_activation":
        y = g.quant("x", 2 ** -2, 4, narrow=1)
    elif case == "per_channel_activation":
        y = g.quant("x", np.array([2 ** -2, 2 ** -3, 2 ** -2, 2 ** -2]), 4)
    elif case == "half_up_activation":
        y = g.quant("x", 2 ** -2, 4, mode="HALF_UP")
    elif case == "trunc_v1":
        ins = ["x"] + [g.const(f"c{i}", v) for i, v in enumerate([2 ** -2, 0.0, 8, 4])]
        y = g.node("Trunc", ins, domain=QONNX, rounding_mode="FLOOR")
    elif case == "bipolar_activation_scale":
        y = g.node("BipolarQuant", ["x", g.const("s", 0.3)], domain=QONNX)
    elif case == "residual_broadcast":   # a join of computed tensors needs equal shapes
        h = g.node("Gemm", ["x", g.const("w", rng.normal(0, 1, (4, 1)))])
        y = g.node("Add", [h, "x"])
    elif case == "batch_transpose":
        shape, out_shape = (4, 3), (4, 3)
        y = g.node("Transpose", ["x"], perm=[1, 0, 2])
    elif case == "batchnorm_channels":   # a free-standing BatchNormalization is supported, with 4 channels
        y = g.node("BatchNormalization", [g.node("Relu", ["x"])] + [g.const(f"bn{i}", np.ones(3)) for i in range(4)])
    else:
        s = g.const("s", 2 ** -3)
        z = g.const("z", 5, np.int8)
        y = g.node("DequantizeLinear", [g.node("QuantizeLinear", ["x", s, z]), s, z])
    with pytest.raises(UserError, match=why):
        onnx_to_ir(g.model(shape, y, out_shape))


def test_accepted_padding_forms(tmp_path):
    """pads that TF 'same' expresses (extra pad at the end) and auto_pad SAME_UPPER are
    accepted; SAME_LOWER with an odd total puts the extra pad first, which it cannot."""
    rng = np.random.default_rng(13)
    for attrs, ok in [(dict(pads=[0, 0, 1, 1], strides=[2, 2]), True),
                      (dict(auto_pad="SAME_UPPER", strides=[2, 2]), True), (dict(auto_pad="VALID"), True),
                      (dict(auto_pad="SAME_LOWER", strides=[2, 2]), False)]:
        g = G()
        y = g.node("Conv", ["x", g.const("w", rng.normal(0, .5, (2, 1, 3, 3)))], **attrs)
        model = g.model((1, 8, 8), y, (2, 4 if "strides" in attrs else 6, 4 if "strides" in attrs else 6))
        if not ok:
            with pytest.raises(UserError, match="neither 'valid'"):
                onnx_to_ir(model)
            continue
        graph = build_graph(_save(model, tmp_path))
        x = rng.normal(0, 1, (500, 1, 8, 8)).astype(np.float32)
        _float_check(graph, _ort(model, x), x)


def test_malformed_and_truncated_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        build_graph(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07this is certainly not an ONNX protobuf \xff\xfe\x00")
    with pytest.raises(UserError, match=r"bad.onnx: (not a readable ONNX file|holds no graph|not a valid ONNX)"):
        build_graph(bad)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="holds no graph"):
        build_graph(empty)
    whole = _brevitas_mlp(np.random.default_rng(0)).SerializeToString()
    for cut in (len(whole) // 3, len(whole) // 2, len(whole) - 7):
        part = tmp_path / f"cut{cut}.onnx"
        part.write_bytes(whole[:cut])
        with pytest.raises(UserError, match=r"(not a readable ONNX file|holds no graph|not a valid ONNX)"):
            build_graph(part)


def test_compiling_onnx_never_imports_torch_or_runtimes(tmp_path):
    path = _save(_qonnx_cnn(np.random.default_rng(1)), tmp_path)
    code = ("import sys; from nnfpga.compiler.pipeline import build_graph;"
            f"build_graph({str(path)!r});"
            "bad = [m for m in ('torch', 'onnxruntime', 'qonnx', 'tensorflow') if m in sys.modules];"
            "sys.exit(f'imported {bad}' if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_ir_json_round_trip_keeps_layouts(tmp_path):
    model = _qonnx_cnn(np.random.default_rng(1))
    graph = build_graph(_save(model, tmp_path))
    graph.save(tmp_path / "ir.json")
    again = load_ir(tmp_path / "ir.json", complete=False)
    assert again.input_layout == graph.input_layout and again.output_layout == graph.output_layout
    x = np.random.default_rng(2).uniform(-4, 4, (300, 2, 12, 8))
    assert np.array_equal(emulate(graph, x), emulate(again, x))


def test_cli_compiles_an_onnx_mlp(tmp_path):
    import nnfpga
    path = _save(_brevitas_mlp(np.random.default_rng(0)), tmp_path)
    assert main(["compile", str(path), "-o", str(tmp_path / "fw")]) == 0
    x = np.random.default_rng(1).normal(0, 3, (500, 16)).astype(np.float32)
    _assert_bit_exact(nnfpga.emulate(tmp_path / "fw", x), _qonnx(_brevitas_mlp(np.random.default_rng(0)), x))


def test_flatten_axis_zero_with_a_batch_of_one(tmp_path):
    """keras2onnx's Flatten(axis=0): read as the features of one sample when the model's
    batch is fixed at 1; refused when the batch is free (it would mix samples)."""
    import onnxruntime as ort
    rng = np.random.default_rng(19)
    g = G()
    y = g.node("Gemm", [g.node("Flatten", ["x"], axis=0), g.const("w", rng.normal(0, .3, (12, 3)))])
    model = g.model((3, 4), y, (3,))
    with pytest.raises(UserError, match="Flatten with axis=0 .* mixes the batch axis"):
        build_graph(_save(model, tmp_path))
    for vi in (model.graph.input[0], model.graph.output[0]):
        vi.type.tensor_type.shape.dim[0].dim_value = 1
    path = tmp_path / "batch1.onnx"
    onnx.save(model, path)
    graph = build_graph(path)
    x = rng.normal(0, 1, (200, 3, 4)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = np.concatenate([session.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
    _float_check(graph, reference, x)
