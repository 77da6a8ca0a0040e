"""Average and global pooling (Keras AveragePooling1D/2D, GlobalAveragePooling1D/2D; ONNX
AveragePool, GlobalAveragePool, GlobalMaxPool) built as convolutions with weights
1/(cells) and max-pools over the whole image: bit-exact against QKeras where the window
has a power-of-two number of cells, within the bound against float Keras and PyTorch,
and bit-exact in Verilator, GHDL and C-sim."""

from __future__ import annotations

import numpy as np
import pytest

from nnfpga.compiler.pipeline import build_graph
from nnfpga.ir.emulator import emulate
from tests.firmware_check import assert_firmware_bit_exact
from tests.test_keras_frontend import _float_check, assert_layer_refused


def _qkeras_averaging(path, seed: int = 3):
    """QConv2D -> AveragePooling2D(2) -> quantized_relu -> GlobalAveragePooling2D (4x2
    cells) -> quantized_bits -> QDense on a 10x6x2 input: every window has a power-of-two
    number of cells, so the averages are exact and so is the model."""
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    keras.utils.set_random_seed(seed)
    inp = keras.Input((10, 6, 2))
    h = QActivation(quantized_bits(6, 2, alpha=1), name="q_in")(inp)
    h = QConv2D(3, 3, kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(6, 2, alpha=1),
                bias_initializer="random_normal", name="conv")(h)
    h = keras.layers.AveragePooling2D(2, name="avg")(h)
    h = QActivation(quantized_relu(6, 2), name="relu")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gavg")(h)
    h = QActivation(quantized_bits(8, 3, alpha=1), name="q2")(h)
    out = QDense(2, kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(6, 2, alpha=1),
                 name="out")(h)
    model = keras.Model(inp, out)
    model.save(path)
    return model


def _on_grid(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).integers(-16, 16, (n, 10, 6, 2)) / 4).astype(np.float32)


def test_qkeras_power_of_two_averages_are_bit_exact(tmp_path):
    model = _qkeras_averaging(tmp_path / "a.h5")
    graph = build_graph(tmp_path / "a.h5")
    x = _on_grid(4000, seed=1)
    ours, theirs = emulate(graph, x), model.predict(x, batch_size=2000, verbose=0)
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} values differ"


@pytest.mark.parametrize("keepdims", [False, True])
def test_float_average_pooling_within_bound(keepdims, tmp_path):
    """Windows of 3 cells (a rounded weight 1/3) and a global average over 3 steps."""
    import tf_keras as keras
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((12, 3)), keras.layers.Conv1D(4, 3, activation="tanh"),
                              keras.layers.AveragePooling1D(3), keras.layers.Conv1D(2, 1),
                              keras.layers.GlobalAveragePooling1D(keepdims=keepdims), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    model.save(tmp_path / "f.h5")
    graph = build_graph(tmp_path / "f.h5")
    x = np.random.default_rng(2).uniform(-2, 2, (3000, 12, 3)).astype(np.float32)
    worst, bound = _float_check(graph, lambda v: model.predict(v, batch_size=3000, verbose=0), x)
    assert 0 < worst < bound


def test_onnx_pooling_from_pytorch_within_bound(tmp_path):
    import torch
    torch.manual_seed(0)
    models = [(torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
                                   torch.nn.Conv2d(3, 4, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                   torch.nn.Linear(4, 2)), (2, 10, 8), ["AveragePool", "GlobalAveragePool"]),
              (torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3), torch.nn.ReLU(), torch.nn.AvgPool1d(3),
                                   torch.nn.Flatten(), torch.nn.Linear(18, 2)), (2, 20), ["AveragePool"])]
    for k, (model, shape, ops) in enumerate(models):
        model = model.eval()
        x = torch.rand(3000, *shape) * 2 - 1
        path = tmp_path / f"p{k}.onnx"
        torch.onnx.export(model, x[:1], path, input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}},
                          dynamo=False)
        graph = build_graph(path)
        averaging = [n.source_layer for n in graph.nodes if n.op_type == "Conv2D" and "Pool" in n.source_layer]
        assert [s.split("/")[-1] for s in averaging] == ops, averaging
        with torch.no_grad():
            reference = model(x).numpy()
        worst, bound = _float_check(graph, lambda v: reference, x.numpy())
        assert 0 < worst < bound


@pytest.mark.parametrize("op", ["GlobalMaxPool", "GlobalAveragePool"])
@pytest.mark.parametrize("rank", [1, 2])
def test_onnx_global_pooling_equals_numpy(op, rank, tmp_path):
    """Conv -> Global*Pool -> Flatten -> Gemm on (N, 2, 8) and (N, 2, 6, 4) inputs,
    against numpy in float64 within the bound."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(rank)
    spatial = (8,) if rank == 1 else (6, 4)
    w = rng.normal(0, 0.5, (3, 2) + (1,) * rank)
    fc = rng.normal(0, 0.5, (2, 3))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node(op, ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]), helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, *spatial])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
                              [numpy_helper.from_array(w.astype(np.float32), "w"),
                               numpy_helper.from_array(fc.astype(np.float32), "fc")])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    ir = build_graph(path)
    x = rng.uniform(-1, 1, (2000, 2, *spatial))
    conv = np.einsum("nc...,oc->no...", x, w.reshape(3, 2).astype(np.float32).astype(np.float64))
    pooled = conv.reshape(2000, 3, -1).max(axis=2) if op == "GlobalMaxPool" else conv.reshape(2000, 3, -1).mean(axis=2)
    reference = pooled @ fc.astype(np.float32).astype(np.float64).T
    worst, bound = _float_check(ir, lambda v: reference, x)
    assert 0 < worst < bound


@pytest.mark.parametrize("layer, message", [
    ({"class_name": "AveragePooling2D", "config": {"name": "a", "pool_size": [2, 2], "padding": "same"}},
     "padding 'same' is not supported for average pooling"),
    ({"class_name": "GlobalAveragePooling1D", "config": {"name": "g"}}, "needs a \\(steps, channels\\) input"),
])
def test_bad_pooling_is_refused_by_name(layer, message, tmp_path):
    assert_layer_refused(tmp_path, [4, 4, 2], layer, message)


@pytest.mark.slow
def test_averaging_firmware_is_bit_exact(tmp_path):
    """Verilator, GHDL and C-sim equal the golden model, which equals QKeras predict."""
    model = _qkeras_averaging(tmp_path / "a.h5", seed=5)
    x = _on_grid(300, seed=6)
    assert_firmware_bit_exact(tmp_path / "a.h5", x, tmp_path, framework=model.predict(x, batch_size=300, verbose=0))
