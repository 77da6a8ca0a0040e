"""General graphs: Keras Functional models with skip connections (Add), branches joined by
Concatenate / Subtract / Average, several inputs and several outputs.

Fixed-point (QKeras) graphs are bit-exact with QKeras's own ``predict``; float graphs are
within the guaranteed error bound of Keras; the firmware is bit-exact in Verilator, GHDL
and C-sim with one fixed latency (slow suite)."""

from __future__ import annotations

import numpy as np
import pytest

from nnfpga.backends.rtl.lowering import lower
from nnfpga.compiler.frontends.keras import INPUTS, OUTPUTS, with_weights
from nnfpga.compiler.passes.error_bound import error_bound, framework_bound
from nnfpga.compiler.pipeline import build_graph
from nnfpga.core.errors import UserError
from nnfpga.ir.emulator import emulate
from nnfpga.ir.ops import Add, Concatenate
from tests.firmware_check import assert_firmware_bit_exact

#: the input quantiser of the QKeras graphs: quantized_bits(8, 3) has 4 fractional bits
GRID = 16


def _q(bits: int, integer: int):
    from qkeras import quantized_bits
    return quantized_bits(bits, integer, alpha=1)


def _qdense(units: int, name: str):
    from qkeras import QDense
    return QDense(units, kernel_quantizer=_q(6, 0), bias_quantizer=_q(6, 2), bias_initializer="random_normal",
                  name=name)


def _on_grid(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(-128, 128, size=(n, *shape)) / GRID).astype(np.float32)


def _skip_mlp(path):
    """in -> q -> d1 -> relu -> d2 -> relu -> (+ d1's relu) -> out: a residual block."""
    import tf_keras as keras
    from qkeras import QActivation, quantized_relu
    keras.utils.set_random_seed(3)
    inp = keras.Input((10,), name="x")
    h = QActivation(_q(8, 3), name="xq")(inp)
    a1 = QActivation(quantized_relu(6, 2), name="a1")(_qdense(16, "d1")(h))
    a2 = QActivation(quantized_relu(6, 2), name="a2")(_qdense(16, "d2")(a1))
    s = keras.layers.Add(name="skip")([a1, a2])
    model = keras.Model(inp, _qdense(4, "out")(s), name="skip_mlp")
    model.save(path)
    return model


def _two_heads(path):
    """One hidden layer read by two heads: a regression and a quantised score."""
    import tf_keras as keras
    from qkeras import QActivation, quantized_relu
    keras.utils.set_random_seed(4)
    inp = keras.Input((8,), name="x")
    h = QActivation(quantized_relu(6, 2), name="h")(_qdense(12, "hidden")(QActivation(_q(8, 3), name="xq")(inp)))
    reg = _qdense(3, "regression")(h)
    score = QActivation(_q(8, 2), name="score")(_qdense(1, "score_dense")(h))
    model = keras.Model(inp, [reg, score], name="two_heads")
    model.save(path)
    return model


def _conv_residual(path):
    """A convolution block added to its own input (same padding), then a dense head."""
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, quantized_relu
    keras.utils.set_random_seed(5)
    inp = keras.Input((6, 6, 2), name="image")
    x = QActivation(_q(8, 3), name="xq")(inp)
    c = QConv2D(2, (3, 3), padding="same", kernel_quantizer=_q(5, 0), bias_quantizer=_q(6, 2),
                bias_initializer="random_normal", name="conv")(x)
    c = QActivation(quantized_relu(6, 2), name="crelu")(c)
    s = keras.layers.Add(name="residual")([x, c])
    out = _qdense(3, "head")(keras.layers.Flatten(name="flat")(s))
    model = keras.Model(inp, out, name="conv_residual")
    model.save(path)
    return model


def _float_branches(path):
    """Two inputs; a Dense branch concatenated with the second input; Subtract and Average."""
    import tf_keras as keras
    L = keras.layers
    keras.utils.set_random_seed(6)
    a, b = keras.Input((4,), name="a"), keras.Input((6,), name="b")
    c = L.Concatenate(name="cat")([L.Dense(5, activation="relu", name="da")(a), b])
    d = L.Subtract(name="sub")([L.Dense(4, name="p")(c), L.Dense(4, name="q")(c)])
    m = L.Average(name="avg")([d, L.Dense(4, activation="tanh", name="r")(c)])
    model = keras.Model([a, b], L.Dense(2, name="out")(m), name="branches")
    model.save(path)
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("graphs")
    built = {}
    for name, make in (("skip", _skip_mlp), ("heads", _two_heads), ("conv", _conv_residual),
                       ("branches", _float_branches)):
        path = folder / f"{name}.h5"
        built[name] = (path, make(path))
    return built


def test_skip_connection_is_bit_exact_with_qkeras(models):
    path, model = models["skip"]
    graph = build_graph(path)
    assert any(isinstance(n, Add) and len(n.inputs) == 2 for n in graph.nodes)
    x = _on_grid(5000, (10,), seed=1)
    assert np.array_equal(emulate(graph, x), model.predict(x, batch_size=5000, verbose=0))
    assert np.array_equal(framework_bound(graph), np.zeros(4))


def test_two_outputs_side_by_side_bit_exact_with_qkeras(models):
    path, model = models["heads"]
    graph = build_graph(path)
    assert graph.annotations[OUTPUTS] == [{"layer": "regression", "shape": [3], "offset": 0, "size": 3},
                                          {"layer": "score", "shape": [1], "offset": 3, "size": 1}]
    x = _on_grid(5000, (8,), seed=2)
    reg, score = model.predict(x, batch_size=5000, verbose=0)
    assert np.array_equal(emulate(graph, x), np.concatenate([reg, score], axis=1))
    assert len(np.unique(score)) > 8


def test_convolution_added_to_its_input_is_bit_exact(models):
    path, model = models["conv"]
    graph = build_graph(path)
    x = _on_grid(3000, (6, 6, 2), seed=3)
    assert np.array_equal(emulate(graph, x), model.predict(x, batch_size=3000, verbose=0))


def test_float_branches_within_the_error_bound(models):
    path, model = models["branches"]
    graph = build_graph(path)
    assert graph.annotations[INPUTS] == [{"layer": "a", "shape": [4], "offset": 0, "size": 4},
                                         {"layer": "b", "shape": [6], "offset": 4, "size": 6}]
    assert {type(n) for n in graph.nodes} >= {Add, Concatenate}
    rng = np.random.default_rng(4)
    a, b = rng.uniform(-4, 4, (20_000, 4)), rng.uniform(-4, 4, (20_000, 6))
    theirs = model.predict([a, b], batch_size=20_000, verbose=0)
    ours = emulate(graph, np.concatenate([a, b], axis=1))
    bound = error_bound(graph, (-4.0, 4.0))
    diff = np.abs(ours - theirs).max(axis=0)
    assert np.all(diff <= bound + 1e-5), (diff, bound)
    assert np.all(diff > 0)   # float weights: not exact, and the bound is not vacuous
    assert np.all(bound < 1.0), bound


def test_branches_meet_at_one_stage(models):
    """The RTL delays the short branch of a skip connection: the join's operands share a
    stage (`Netlist.check` re-derives every stage), and the latency is the long branch's."""
    path, _ = models["skip"]
    nl = lower(build_graph(path))
    layers = {info.name: info for info in nl.layers}
    skip = layers["skip"]
    d2 = next(info for info in nl.layers if "d2" in info.nodes)
    d1 = next(info for info in nl.layers if "d1" in info.nodes)
    assert skip.first_stage == d2.first_stage + d2.latency > d1.first_stage + d1.latency
    assert skip.register_bits > 0   # the delay line of the short branch
    assert nl.latency == skip.first_stage + skip.latency + next(i for i in nl.layers if "out" in i.nodes).latency


def _functional_config(layers: list[dict], outputs: list, inputs: list) -> dict:
    return {"class_name": "Functional", "config": {"name": "m", "layers": layers, "input_layers": inputs,
                                                    "output_layers": outputs}}


def _dense_cfg(name: str, reads: list[str], calls: int = 1) -> dict:
    return {"class_name": "Dense", "config": {"name": name, "units": 2},
            "inbound_nodes": [[[r, 0, 0, {}] for r in reads]] * calls}


def _input_cfg(name: str) -> dict:
    return {"class_name": "InputLayer", "config": {"name": name, "batch_input_shape": [None, 2]},
            "inbound_nodes": []}


@pytest.mark.parametrize("layers, outputs, message", [
    ([_input_cfg("x"), _dense_cfg("d", ["x"], calls=2)], [["d", 0, 0]], "called 2 times"),
    ([_input_cfg("x"), _dense_cfg("d", ["x", "x"])], [["d", 0, 0]], "only Add, Subtract, Average, Concatenate"),
    ([_input_cfg("x"), _dense_cfg("d", ["e"]), _dense_cfg("e", ["x"])], [["d", 0, 0]], "reads \\['e'\\], listed after it"),
    ([_input_cfg("x"), _dense_cfg("d", ["x"])], [["d", 0, 0], ["d", 0, 0]], "more than once"),
    ([_input_cfg("x"), _dense_cfg("d", ["x"])], [["zz", 0, 0]], "outputs name \\['zz'\\], not a layer"),
])
def test_graphs_refused_by_name(tmp_path, layers, outputs, message):
    import json
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_functional_config(layers, outputs, [["x", 0, 0]])))
    (tmp_path / "m.h5").write_bytes(b"")   # the weights are never reached
    with pytest.raises(UserError, match=message):
        build_graph(with_weights(path, tmp_path / "m.h5"))


def test_multiply_of_two_tensors_is_refused_by_name(tmp_path):
    import tf_keras as keras
    a = keras.Input((3,), name="a")
    h = keras.layers.Dense(3, name="d")(a)
    keras.Model(a, keras.layers.Multiply(name="gate")([a, h])).save(tmp_path / "m.h5")
    with pytest.raises(UserError, match=r"'gate' \(Multiply\)"):
        build_graph(tmp_path / "m.h5")


@pytest.mark.slow
@pytest.mark.parametrize("name, shape", [("skip", (10,)), ("heads", (8,)), ("conv", (6, 6, 2))])
def test_graph_firmware_bit_exact(models, tmp_path, name, shape):
    path, model = models[name]
    x = _on_grid(10_000, shape, seed=7)
    theirs = model.predict(x, batch_size=10_000, verbose=0)
    theirs = np.concatenate(theirs, axis=1) if isinstance(theirs, list) else theirs
    assert_firmware_bit_exact(path, x, tmp_path, framework=theirs.reshape(len(x), -1))


# ----------------------------------------------------------------------------- ONNX (PyTorch)
def _torch_residual():
    import torch

    class Residual(torch.nn.Module):
        """conv -> relu -> conv, plus the input (a residual block); the block's output and the
        hidden feature map flattened side by side; a linear head."""

        def __init__(self):
            super().__init__()
            self.c1, self.c2 = torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.Conv2d(4, 2, 3, padding=1)
            self.fc = torch.nn.Linear(2 * 36 + 4 * 36, 3)

        def forward(self, x):
            h = torch.relu(self.c1(x))
            y = self.c2(h) + x
            return self.fc(torch.cat([torch.relu(y).flatten(1), h.flatten(1)], 1))
    return Residual(), (2, 6, 6)


def _torch_difference():
    import torch

    class Difference(torch.nn.Module):
        """Two dense layers, their difference beside the input, a linear head."""

        def __init__(self):
            super().__init__()
            self.a, self.b, self.o = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8), torch.nn.Linear(16, 2)

        def forward(self, x):
            h = torch.relu(self.a(x))
            return self.o(torch.cat([h - torch.relu(self.b(h)), x], 1))
    return Difference(), (8,)


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory):
    import torch
    folder = tmp_path_factory.mktemp("onnx_graphs")
    out = {}
    for name, make in (("residual", _torch_residual), ("difference", _torch_difference)):
        torch.manual_seed(0)
        model, shape = make()
        model.eval()
        path = folder / f"{name}.onnx"
        torch.onnx.export(model, torch.zeros(1, *shape), str(path), input_names=["x"], output_names=["y"],
                          dynamo=False)
        out[name] = (path, model, shape)
    return out


@pytest.mark.parametrize("name, joins", [("residual", {Add, Concatenate}), ("difference", {Add, Concatenate})])
def test_onnx_joins_within_the_error_bound(onnx_models, name, joins):
    import torch
    path, model, shape = onnx_models[name]
    graph = build_graph(path)
    assert {type(n) for n in graph.nodes} >= joins
    x = np.random.default_rng(5).uniform(-2, 2, (5000, *shape)).astype(np.float32)
    with torch.no_grad():
        theirs = model(torch.tensor(x)).numpy()
    diff = np.abs(emulate(graph, x) - theirs).max(axis=0)
    bound = error_bound(graph, (-2.0, 2.0))
    assert np.all(diff <= bound + 1e-5) and np.all(diff > 0), (diff, bound)


def test_onnx_join_with_a_constant_refused_by_name(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    c = helper.make_tensor("c", TensorProto.FLOAT, [1, 4], [1.0] * 4)
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [0.5] * 16)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
             helper.make_node("Concat", ["h", "c"], ["y"], name="glue", axis=1)]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [c, w]))
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(UserError, match="'glue'.*Concat.*joins a computed tensor with a constant"):
        build_graph(tmp_path / "m.onnx")


@pytest.mark.slow
def test_onnx_residual_firmware_bit_exact(onnx_models, tmp_path):
    path, _, shape = onnx_models["residual"]
    x = np.random.default_rng(8).uniform(-2, 2, (10_000, *shape)).astype(np.float32)
    assert_firmware_bit_exact(path, x, tmp_path)


def test_multiply_and_divide_by_constants(tmp_path):
    """ONNX Mul/Div by a constant (one number, one per channel) and Keras Rescaling become
    ScaleShifts: within the bound of the framework's output."""
    import tf_keras as keras
    import torch
    from nnfpga.ir.ops import ScaleShift

    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = torch.nn.Conv2d(2, 3, 3), torch.nn.Linear(48, 2)
            self.register_buffer("gain", torch.tensor([0.5, -1.5, 3.0]).reshape(3, 1, 1))

        def forward(self, x):
            return self.fc((torch.relu(self.conv(x * 0.25)) * self.gain).flatten(1) / 3.0)
    torch.manual_seed(0)
    model = Scaled().eval()
    torch.onnx.export(model, torch.zeros(1, 2, 6, 6), str(tmp_path / "m.onnx"), dynamo=False)
    keras.utils.set_random_seed(0)
    rescaled = keras.Sequential([keras.Input((4,)), keras.layers.Rescaling(0.5, offset=-1.0), keras.layers.Dense(2)])
    rescaled.save(tmp_path / "r.h5")
    rng = np.random.default_rng(9)
    x = rng.uniform(-2, 2, (3000, 2, 6, 6)).astype(np.float32)
    with torch.no_grad():
        theirs = model(torch.tensor(x)).numpy()
    xr = rng.uniform(-2, 2, (3000, 4))
    for graph, x_, y in ((build_graph(tmp_path / "m.onnx"), x, theirs),
                         (build_graph(tmp_path / "r.h5"), xr, rescaled.predict(xr, verbose=0))):
        assert any(isinstance(n, ScaleShift) for n in graph.nodes)
        diff = np.abs(emulate(graph, x_) - y).max(axis=0)
        assert np.all(diff <= error_bound(graph, (-2.0, 2.0)) + 1e-5), diff


def _torch_two_in_two_out():
    import torch

    class TwoInTwoOut(torch.nn.Module):
        """An image and a feature vector in; a hidden vector and a corrected score out (the
        score reads a slice of the hidden vector)."""

        def __init__(self):
            super().__init__()
            self.conv, self.a, self.b = torch.nn.Conv2d(2, 3, 3), torch.nn.Linear(48 + 5, 4), torch.nn.Linear(5, 2)

        def forward(self, image, features):
            h = torch.relu(self.conv(image)).flatten(1)
            z = torch.relu(self.a(torch.cat([h, features], 1)))
            return z, self.b(features) + z[:, :2]
    return TwoInTwoOut()


@pytest.fixture(scope="module")
def onnx_two_in_two_out(tmp_path_factory):
    import torch
    torch.manual_seed(0)
    model = _torch_two_in_two_out().eval()
    path = tmp_path_factory.mktemp("onnx_io") / "two_in_two_out.onnx"
    torch.onnx.export(model, (torch.zeros(1, 2, 6, 6), torch.zeros(1, 5)), str(path), input_names=["image", "features"],
                      output_names=["hidden", "score"], dynamo=False)
    return path, model


def _two_in_two_out_samples(model, n: int, seed: int):
    import torch
    rng = np.random.default_rng(seed)
    image, features = rng.uniform(-2, 2, (n, 2, 6, 6)).astype(np.float32), rng.uniform(-2, 2, (n, 5)).astype(np.float32)
    with torch.no_grad():
        hidden, score = model(torch.tensor(image), torch.tensor(features))
    return np.concatenate([image.reshape(n, -1), features], axis=1), np.concatenate([hidden, score], axis=1)


def test_onnx_two_inputs_two_outputs_and_a_slice(onnx_two_in_two_out):
    from nnfpga.ir.ops import Gather
    path, model = onnx_two_in_two_out
    graph = build_graph(path)
    assert graph.annotations[INPUTS] == [{"layer": "image", "shape": [2, 6, 6], "offset": 0, "size": 72},
                                         {"layer": "features", "shape": [5], "offset": 72, "size": 5}]
    assert graph.annotations[OUTPUTS] == [{"layer": "hidden", "shape": [4], "offset": 0, "size": 4},
                                          {"layer": "score", "shape": [2], "offset": 4, "size": 2}]
    assert any(isinstance(n, Gather) and n.source_layer.endswith("Slice") for n in graph.nodes)
    x, theirs = _two_in_two_out_samples(model, 5000, seed=10)
    diff = np.abs(emulate(graph, x) - theirs).max(axis=0)
    assert np.all(diff <= error_bound(graph, (-2.0, 2.0)) + 1e-5) and np.all(diff > 0), diff


@pytest.mark.slow
def test_onnx_two_inputs_two_outputs_firmware_bit_exact(onnx_two_in_two_out, tmp_path):
    path, model = onnx_two_in_two_out
    x, _ = _two_in_two_out_samples(model, 10_000, seed=11)
    assert_firmware_bit_exact(path, x, tmp_path)
