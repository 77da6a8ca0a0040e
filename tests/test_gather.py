"""Gather, a fixed re-arrangement of a sample's values (Keras Permute, nearest
UpSampling1D/2D, an ONNX transpose between two convolutions): bit-exact against QKeras,
within the bound against PyTorch, wiring in the firmware (Verilator, GHDL, C-sim), and
checked when ir.json is read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnfpga.compiler.pipeline import build_graph
from nnfpga.ir.emulator import emulate
from nnfpga.ir.ops.gather import permutation, repetition
from tests.firmware_check import assert_firmware_bit_exact
from tests.test_keras_frontend import _float_check, assert_layer_refused


def _qkeras_rearranging(path, seed: int = 3):
    """UpSampling2D -> QConv2D -> quantized_relu -> Permute -> Reshape -> UpSampling1D ->
    Flatten -> QDense on a 4x6x2 input."""
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    keras.utils.set_random_seed(seed)
    inp = keras.Input((4, 6, 2))
    h = QActivation(quantized_bits(6, 2, alpha=1), name="q_in")(inp)
    h = keras.layers.UpSampling2D((2, 1), name="up")(h)
    h = QConv2D(3, 3, kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(6, 2, alpha=1),
                bias_initializer="random_normal", name="conv")(h)
    h = QActivation(quantized_relu(4, 2), name="relu")(h)
    h = keras.layers.Permute((2, 1, 3), name="perm")(h)
    h = keras.layers.Reshape((4, 18), name="rs")(h)
    h = keras.layers.UpSampling1D(2, name="up1")(h)
    h = keras.layers.Flatten(name="flat")(h)
    out = QDense(2, kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(6, 2, alpha=1),
                 name="out")(h)
    model = keras.Model(inp, out)
    model.save(path)
    return model


def _on_grid(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).integers(-16, 16, (n, 4, 6, 2)) / 4).astype(np.float32)


def test_index_maps_equal_numpy():
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    shape, index = permutation((3, 4, 5), (2, 0, 1))
    assert np.array_equal(x.reshape(2, -1)[:, index].reshape(2, *shape), x.transpose(0, 3, 1, 2))
    shape, index = repetition((3, 4, 5), (2, 3, 1))
    assert np.array_equal(x.reshape(2, -1)[:, index].reshape(2, *shape), x.repeat(2, axis=1).repeat(3, axis=2))


def test_qkeras_permute_and_upsampling_are_bit_exact(tmp_path):
    model = _qkeras_rearranging(tmp_path / "g.h5")
    graph = build_graph(tmp_path / "g.h5")
    assert [n.name for n in graph.nodes if n.op_type == "Gather"] == ["up", "perm", "up1"]
    x = _on_grid(4000, seed=1)
    ours, theirs = emulate(graph, x), model.predict(x, batch_size=2000, verbose=0)
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} values differ"


def test_onnx_transpose_between_convolutions_within_bound(tmp_path):
    """A transpose of a computed tensor that a convolution reads: once refused ("only with
    a data transpose"), now a Gather."""
    import torch

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = torch.nn.Conv2d(2, 3, 3), torch.nn.Conv2d(3, 2, (2, 3))
            self.fc = torch.nn.Linear(30, 3)

        def forward(self, x):
            h = torch.relu(self.c1(x)).transpose(2, 3)
            h = torch.relu(self.c2(h)).permute(0, 1, 3, 2)
            return self.fc(torch.flatten(h, 1))

    torch.manual_seed(0)
    model = Model().eval()
    x = torch.rand(3000, 2, 7, 8) * 2 - 1
    torch.onnx.export(model, x[:1], tmp_path / "t.onnx", input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}}, dynamo=False)
    graph = build_graph(tmp_path / "t.onnx")
    assert [n.op_type for n in graph.nodes].count("Gather") == 1
    with torch.no_grad():
        reference = model(x).numpy()
    worst, bound = _float_check(graph, lambda v: reference, x.numpy())
    assert 0 < worst < bound


def test_ir_json_gather_round_trip_and_tampered_index(tmp_path):
    from nnfpga.compiler.cli import main
    from nnfpga.ir.validate import IRFileError, load_ir
    _qkeras_rearranging(tmp_path / "g.h5")
    out = tmp_path / "fw"
    assert main(["compile", str(tmp_path / "g.h5"), "--target", "xcvu9p", "--clock", "200MHz", "-o", str(out)]) == 0
    graph = load_ir(out / "ir.json")
    x = _on_grid(500, seed=2)
    assert np.array_equal(emulate(graph, x), emulate(build_graph(tmp_path / "g.h5"), x))
    d = json.loads((out / "ir.json").read_text())
    node = next(n for n in d["nodes"] if n["name"] == "perm")
    node["index"][0] = 10 ** 6
    (out / "ir.json").write_text(json.dumps(d))
    with pytest.raises(IRFileError, match="perm.*indices span"):
        load_ir(out / "ir.json")


@pytest.mark.parametrize("layer, message", [
    ({"class_name": "UpSampling2D", "config": {"name": "u", "size": [2, 2], "interpolation": "bilinear"}},
     "interpolation 'bilinear' is not supported; only 'nearest'"),
    ({"class_name": "Permute", "config": {"name": "p", "dims": [1, 1, 3]}}, "field 'dims' is \\[1, 1, 3\\]"),
    ({"class_name": "UpSampling1D", "config": {"name": "u", "size": 2}}, "needs a \\(steps, channels\\) input"),
])
def test_bad_rearrangements_are_refused_by_name(layer, message, tmp_path):
    assert_layer_refused(tmp_path, [4, 4, 2], layer, message)


@pytest.mark.slow
def test_rearranging_firmware_is_bit_exact(tmp_path):
    """Verilator, GHDL and C-sim equal the golden model, which equals QKeras predict."""
    model = _qkeras_rearranging(tmp_path / "g.h5", seed=5)
    x = _on_grid(300, seed=6)
    assert_firmware_bit_exact(tmp_path / "g.h5", x, tmp_path, framework=model.predict(x, batch_size=300, verbose=0))
