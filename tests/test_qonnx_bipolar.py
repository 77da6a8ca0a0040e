"""QONNX ``BipolarQuant`` on activations: ``where(x >= 0, 1, -1) * scale`` with a
power-of-two scale is the IR's sign function (then a shift by the scale), bit-exact
against qonnx's own execution and in the simulators.  A step has no Lipschitz constant:
the error bound is exact where the step's input is exact (or stays on one side of the
step within its error) and otherwise not claimed (None, with the reason in the report),
never a wrong number."""

from __future__ import annotations

import numpy as np
import pytest

from nnfpga.compiler.passes.error_bound import accuracy_summary, error_bound
from nnfpga.compiler.pipeline import build_graph
from nnfpga.ir.emulator import emulate
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Input
from tests.firmware_check import assert_firmware_bit_exact
from tests.test_onnx_frontend import QONNX, G, _assert_bit_exact, _qonnx, _save


def _binary_mlp(scale: float, seed: int = 0, conv: bool = False):
    """Quant input -> MatMul (or Conv) with Quant weights -> BipolarQuant(scale) ->
    MatMul with BipolarQuant (binary) weights."""
    rng = np.random.default_rng(seed)
    g = G(qonnx_opset=1)
    x = g.quant("x", 2 ** -4, 8)
    if conv:
        w = g.quant(g.const("w1", rng.normal(0, 0.5, (3, 2, 3, 3))), 2 ** -3, 5)
        h = g.node("Conv", [x, w], name="conv1")
        h = g.node("BipolarQuant", [h, g.const("s1", scale)], name="sign1", domain=QONNX)
        h = g.node("Flatten", [h])
        n_in, in_shape = 3 * 4 * 4, (2, 6, 6)
    else:
        w = g.quant(g.const("w1", rng.normal(0, 0.5, (10, 6))), 2 ** -3, 5)
        h = g.node("MatMul", [x, w], name="fc1")
        h = g.node("BipolarQuant", [h, g.const("s1", scale)], name="sign1", domain=QONNX)
        n_in, in_shape = 6, (10,)
    w2 = g.node("BipolarQuant", [g.const("w2", rng.normal(0, 1, (n_in, 4))), g.const("w2s", 2 ** -2)], domain=QONNX)
    y = g.node("MatMul", [h, w2], name="fc2")
    return g.model(in_shape, y, (4,), "binary_mlp"), in_shape


@pytest.mark.parametrize("conv", [False, True])
@pytest.mark.parametrize("scale", [1.0, 0.5, 4.0])
def test_bipolar_activation_is_bit_exact_against_qonnx(scale, conv, tmp_path):
    model, in_shape = _binary_mlp(scale, conv=conv)
    graph = build_graph(_save(model, tmp_path))
    sign = graph.node("sign1")
    assert sign.function == "sign"
    assert any(n.op_type == "ScaleShift" for n in graph.nodes) == (scale != 1.0)
    x = np.random.default_rng(1).normal(0, 3, (3000, *in_shape)).astype(np.float32)
    ours = emulate(graph, x)
    _assert_bit_exact(ours, _qonnx(model, x))
    assert len(np.unique(ours)) > 4   # the signs really vary
    # the step's input carries the input quantiser's rounding: no bound, and the report says why
    summary = accuracy_summary(graph)
    assert summary["error_bound_max"] is None
    assert summary["no_bound"].startswith("no guaranteed bound: a step (sign1)")


def _sign_graph(lo_raw: int | None = None) -> Graph:
    t = FixedType(8, 3, True, Rounding.RND_CONV, Overflow.SAT)
    g = Graph("g", [Input("in", [], out_type=t, shape=(3,)),
                    Activation("s", ["in"], function="sign", out_type=FixedType(2, 2, True))], ["s"])
    g.infer()
    return g


def test_sign_bound_is_exact_for_an_exact_input_or_one_side_of_the_step():
    g = _sign_graph()
    assert error_bound(g) is None                                   # the input's rounding can flip it
    assert np.array_equal(error_bound(g, exact_input=True), np.zeros(3))   # exact input: exact output
    assert np.array_equal(error_bound(g, (0.5, 3.0)), np.zeros(3))        # rounding cannot cross 0
    assert np.array_equal(error_bound(g, (-3.0, -0.5)), np.zeros(3))
    assert error_bound(g, (-0.01, 3.0)) is None
    x = np.array([[-4.0, -0.03125, 0.0], [0.03125, 3.9, -1e-9]])
    assert np.array_equal(emulate(g, x), np.array([[-1.0, -1.0, 1.0], [1.0, 1.0, 1.0]]))   # -1e-9 rounds to 0


def test_bipolar_activation_per_channel_scale_is_refused_by_name(tmp_path):
    from nnfpga.core.errors import UserError
    g = G(qonnx_opset=1)
    y = g.node("BipolarQuant", ["x", g.const("s", [1.0, 0.5, 1.0, 1.0])], domain=QONNX)
    with pytest.raises(UserError, match="BipolarQuant scale has per-channel values"):
        build_graph(_save(g.model((4,), y, (4,)), tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("conv,scale", [(False, 1.0), (True, 0.5)])
def test_bipolar_activation_firmware_is_bit_exact(conv, scale, tmp_path):
    """Verilator, GHDL and C-sim equal the golden model, which equals qonnx."""
    model, in_shape = _binary_mlp(scale, seed=4, conv=conv)
    path = _save(model, tmp_path)
    x = np.random.default_rng(5).normal(0, 3, (300, *in_shape)).astype(np.float32)
    report = assert_firmware_bit_exact(path, x, tmp_path, framework=_qonnx(model, x).reshape(len(x), -1))
    assert report["accuracy"]["error_bound_max"] is None and "sign1" in report["accuracy"]["no_bound"]
