"""1-D layers (Keras Conv1D/QConv1D, MaxPooling1D, GlobalMaxPooling1D/2D; ONNX 1-D Conv and
MaxPool, as PyTorch exports Conv1d/MaxPool1d): built as the IR's 2-D ops on an image of
height 1, bit-exact against QKeras, within the error bound against float Keras and
PyTorch, and bit-exact in Verilator, GHDL and C-sim."""

from __future__ import annotations

import numpy as np
import pytest

from nnfpga.compiler.pipeline import build_graph
from nnfpga.ir.emulator import emulate
from tests.firmware_check import assert_firmware_bit_exact
from tests.test_keras_frontend import _float_check, assert_layer_refused


def _qkeras_conv1d(path, padding: str, seed: int = 3):
    """QConv1D (auto_po2 kernel) -> quantized_relu -> MaxPooling1D -> strided QConv1D ->
    GlobalMaxPooling1D -> QDense, on 20 steps of 3 channels."""
    import tf_keras as keras
    from qkeras import QActivation, QConv1D, QDense, quantized_bits, quantized_relu
    keras.utils.set_random_seed(seed)
    inp = keras.Input((20, 3))
    h = QActivation(quantized_bits(6, 2, alpha=1), name="q_in")(inp)
    h = QConv1D(4, 3, padding=padding, kernel_quantizer=quantized_bits(4, 0, alpha="auto_po2"),
                bias_quantizer=quantized_bits(6, 2, alpha=1), bias_initializer="random_normal", name="conv1")(h)
    h = QActivation(quantized_relu(4, 2), name="relu1")(h)
    h = keras.layers.MaxPooling1D(2, padding=padding, name="pool1")(h)
    h = QConv1D(3, 3, strides=2, padding=padding, kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(6, 2, alpha=1), name="conv2")(h)
    h = QActivation(quantized_relu(4, 2), name="relu2")(h)
    h = keras.layers.GlobalMaxPooling1D(name="gmax")(h)
    out = QDense(2, kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(6, 2, alpha=1),
                 name="out")(h)
    model = keras.Model(inp, out)
    model.save(path)
    return model


def _on_grid(n: int, seed: int) -> np.ndarray:
    """(n, 20, 3) values on the input quantiser's grid (quarters in [-4, 4))."""
    return (np.random.default_rng(seed).integers(-16, 16, (n, 20, 3)) / 4).astype(np.float32)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_qkeras_conv1d_is_bit_exact(padding, tmp_path):
    model = _qkeras_conv1d(tmp_path / "c1.h5", padding)
    graph = build_graph(tmp_path / "c1.h5")
    kinds = [n.op_type for n in graph.nodes]
    assert kinds.count("Conv2D") == 2 and kinds.count("MaxPool2D") == 2, kinds
    x = _on_grid(4000, seed=1)
    ours, theirs = emulate(graph, x), model.predict(x, batch_size=2048, verbose=0)
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} values differ"


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_float_conv1d_sequence_output_within_bound(padding, tmp_path):
    """A model that ends on a Conv1D: the output has the Keras (steps, channels) shape."""
    import tf_keras as keras
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((16, 2)), keras.layers.Conv1D(3, 5, activation="relu"),
                              keras.layers.Dropout(0.2), keras.layers.MaxPooling1D(3, strides=2, padding=padding),
                              keras.layers.Conv1D(2, 3, padding=padding)])
    model.save(tmp_path / "seq.h5")
    graph = build_graph(tmp_path / "seq.h5")
    assert tuple(graph.output.info.shape) == model.output_shape[1:]
    x = np.random.default_rng(2).uniform(-2, 2, (3000, 16, 2)).astype(np.float32)
    worst, bound = _float_check(graph, lambda v: model.predict(v, batch_size=3000, verbose=0), x)
    assert 0 < worst < bound
    assert emulate(graph, x).shape == (3000, *model.output_shape[1:])


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_max_pooling_2d_within_bound(keepdims, tmp_path):
    import tf_keras as keras
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((6, 5, 2)), keras.layers.Conv2D(3, 3, activation="relu"),
                              keras.layers.GlobalMaxPooling2D(keepdims=keepdims), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    model.save(tmp_path / "g.h5")
    graph = build_graph(tmp_path / "g.h5")
    x = np.random.default_rng(3).uniform(-2, 2, (3000, 6, 5, 2)).astype(np.float32)
    worst, bound = _float_check(graph, lambda v: model.predict(v, batch_size=3000, verbose=0), x)
    assert 0 < worst < bound


@pytest.mark.parametrize("pad", [0, 1])
def test_onnx_conv1d_from_pytorch_within_bound(pad, tmp_path):
    import torch
    torch.manual_seed(pad)
    model = torch.nn.Sequential(torch.nn.Conv1d(3, 4, 3, padding=pad), torch.nn.ReLU(), torch.nn.MaxPool1d(2),
                                torch.nn.Conv1d(4, 2, 3, stride=2), torch.nn.Flatten(), torch.nn.Linear(8, 2)).eval()
    x = torch.rand(3000, 3, 20) * 4 - 2
    torch.onnx.export(model, x[:1], tmp_path / "c.onnx", input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}}, dynamo=False)
    graph = build_graph(tmp_path / "c.onnx")
    with torch.no_grad():
        reference = model(x).numpy()
    worst, bound = _float_check(graph, lambda v: reference, x.numpy())
    assert 0 < worst < bound


@pytest.mark.parametrize("layer, message", [
    ({"class_name": "Conv1D", "config": {"name": "c", "filters": 2, "kernel_size": [3], "padding": "causal"}},
     "causal padding is not supported"),
    ({"class_name": "Conv1D", "config": {"name": "c", "filters": 2, "kernel_size": [3], "dilation_rate": [2]}},
     "dilated or grouped convolutions are not supported"),
    ({"class_name": "MaxPooling1D", "config": {"name": "p", "pool_size": [0]}}, "'pool_size' is \\[0\\]"),
])
def test_bad_1d_layers_are_refused_by_name(layer, message, tmp_path):
    assert_layer_refused(tmp_path, [12, 2], layer, message)


def test_conv1d_on_an_image_is_refused(tmp_path):
    assert_layer_refused(tmp_path, [4, 4, 2], {"class_name": "Conv1D", "config": {"name": "c", "filters": 2,
                                                                                 "kernel_size": 3}},
                         "layer 'c' \\(Conv1D\\).*needs a \\(steps, channels\\) input")


@pytest.mark.slow
def test_qkeras_conv1d_firmware_is_bit_exact(tmp_path):
    """Compiled firmware of the QKeras Conv1D model: Verilator, GHDL and C-sim equal the
    golden model, which equals QKeras predict."""
    model = _qkeras_conv1d(tmp_path / "c1.h5", "same", seed=7)
    x = _on_grid(300, seed=8)
    assert_firmware_bit_exact(tmp_path / "c1.h5", x, tmp_path, framework=model.predict(x, batch_size=300, verbose=0))
