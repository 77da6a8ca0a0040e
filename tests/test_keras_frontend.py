"""Keras/QKeras frontend: bit-exact against QKeras predict, bounded against float Keras."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nnfpga.compiler.passes.error_bound import error_bound
from nnfpga.compiler.pipeline import build_graph
from nnfpga.core.errors import UserError
from nnfpga.ir.emulator import emulate
from nnfpga.ir.graph import Graph
from tests.conftest import MODELS, ROOT


def _samples(n: int, seed: int, scale: float = 1.5) -> np.ndarray:
    # float32: the frameworks compute in float32, so the reference sees the same inputs
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(1234).normal(0, 1.0, (5, 16))
    return (means[rng.integers(0, 5, n)] + rng.normal(0, scale, (n, 16))).astype(np.float32)


@pytest.fixture(scope="module")
def qkeras_load():
    from qkeras.utils import load_qmodel
    return lambda name: load_qmodel(str(MODELS / name), compile=False)


@pytest.mark.parametrize("name", ["qmlp.h5", "ternary_mlp.h5"])
def test_quantized_qkeras_model_is_bit_exact(name, qkeras_load):
    graph = build_graph(MODELS / name)
    x = _samples(20000, seed=3)
    ours = emulate(graph, x)
    theirs = qkeras_load(name).predict(x, batch_size=4096, verbose=0)
    assert ours.shape == theirs.shape
    mismatches = np.argwhere(ours != theirs)
    assert len(mismatches) == 0, f"{len(mismatches)} values differ, first: {mismatches[:3]}"


def test_ternary_weights_are_marked_and_in_range():
    graph = build_graph(MODELS / "ternary_mlp.h5")
    dense = [n for n in graph.nodes if n.op_type == "Dense"]
    assert dense and all(d.kernel_q.kind.value == "ternary" for d in dense)
    for d in dense:
        assert set(np.unique(d.kernel_q.raw)) <= {-1, 0, 1}


def test_live_qkeras_model_equals_file(qkeras_load):
    model = qkeras_load("qmlp.h5")
    g_live, g_file = build_graph(model), build_graph(MODELS / "qmlp.h5")
    x = _samples(2000, seed=4)
    assert np.array_equal(emulate(g_live, x), emulate(g_file, x))


def _float_check(graph: Graph, reference, x: np.ndarray, emulated: Graph | None = None) -> tuple[float, float]:
    bound = error_bound(graph, (float(x.min()), float(x.max())))
    assert bound is not None
    diff = np.abs(emulate(emulated or graph, x) - reference(x).reshape(len(x), -1))
    # the framework computes in float32: allow its own rounding on top of our bound
    slack = 1e-5
    worst = float((diff - bound).max())
    assert worst <= slack, f"error {diff.max():.3g} exceeds the bound {bound.max():.3g}"
    return float(diff.max()), float(bound.max())


def test_float_keras2_model_within_precision_bound():
    import tf_keras as keras
    model = keras.models.load_model(MODELS / "float_mlp.h5", compile=False)
    graph = build_graph(MODELS / "float_mlp.h5")
    x = _samples(20000, seed=5) / 4
    worst, bound = _float_check(graph, lambda v: model.predict(v, batch_size=4096, verbose=0), x)
    assert 0 < worst < bound  # the bound is not vacuous and the model really is approximated


def test_float_keras3_file_within_precision_bound():
    # Keras 3 must not see the legacy switch: run the reference in a subprocess.
    x = _samples(5000, seed=6) / 4
    code = ("import sys, numpy as np, keras; m = keras.saving.load_model(sys.argv[1]);"
            "x = np.load(sys.argv[2]); np.save(sys.argv[3], m.predict(x, verbose=0))")
    import os
    import tempfile
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", x)
        subprocess.run([sys.executable, "-c", code, str(MODELS / "float_mlp.keras"), f"{tmp}/x.npy",
                        f"{tmp}/y.npy"], check=True, env=env, capture_output=True)
        ref = np.load(f"{tmp}/y.npy")
    graph = build_graph(MODELS / "float_mlp.keras")
    _float_check(graph, lambda v: ref, x)


def test_error_bound_is_tight_enough_to_fail():
    """A deliberately wrong weight must break the bound check (the check can fail)."""
    import tf_keras as keras
    model = keras.models.load_model(MODELS / "float_mlp.h5", compile=False)
    graph = build_graph(MODELS / "float_mlp.h5")
    broken = build_graph(MODELS / "float_mlp.h5")
    broken.nodes[1].kernel_q.raw[:, :4] *= -1  # four neurons with flipped weights (a sign bug)
    x = _samples(5000, seed=7) / 4
    _float_check(graph, lambda v: model.predict(v, batch_size=4096, verbose=0), x)
    with pytest.raises(AssertionError, match="exceeds the bound"):
        _float_check(graph, lambda v: model.predict(v, batch_size=4096, verbose=0), x, emulated=broken)


def test_compiling_never_imports_tensorflow():
    code = ("import sys; from nnfpga.compiler.pipeline import build_graph;"
            f"build_graph({str(MODELS / 'qmlp.h5')!r}); build_graph({str(MODELS / 'float_mlp.keras')!r});"
            "bad = [m for m in ('tensorflow', 'keras', 'tf_keras', 'qkeras', 'torch') if m in sys.modules];"
            "sys.exit(f'imported {bad}' if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_ir_json_round_trip_is_exact(tmp_path):
    graph = build_graph(MODELS / "qmlp.h5")
    graph.save(tmp_path / "ir.json")
    again = Graph.load(tmp_path / "ir.json")
    x = _samples(1000, seed=8)
    assert np.array_equal(emulate(graph, x), emulate(again, x))
    assert [n.info.type for n in graph.nodes] == [n.info.type for n in again.nodes]


def test_unsupported_layer_is_named(tmp_path):
    import tf_keras as keras
    m = keras.Sequential([keras.Input((4, 8)), keras.layers.LSTM(3, name="my_lstm"),
                          keras.layers.Dense(2, name="d")])
    m.save(tmp_path / "lstm.h5")
    with pytest.raises(UserError, match=r"'my_lstm' \(LSTM\).*supported layers: InputLayer, Dense"):
        build_graph(tmp_path / "lstm.h5")


def test_missing_and_corrupt_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        build_graph(tmp_path / "nope.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(UserError, match="not a readable HDF5"):
        build_graph(bad)
    bad3 = tmp_path / "bad.keras"
    bad3.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="not a readable .keras"):
        build_graph(bad3)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_qkeras_cnn_is_bit_exact(padding, tmp_path):
    """QConv2D (valid/same, stride), MaxPool2D, Flatten, QDense on a 9x16x1 hit map."""
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    from qkeras.utils import load_qmodel
    keras.utils.set_random_seed(3)
    inp = keras.Input((9, 16, 1))
    h = QActivation(quantized_bits(6, 2, alpha=1), name="q_in")(inp)
    h = QConv2D(4, (3, 3), padding=padding, kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(6, 2, alpha=1), bias_initializer="random_normal", name="conv1")(h)
    h = QActivation(quantized_relu(4, 2), name="relu1")(h)
    h = keras.layers.MaxPooling2D((2, 2), name="pool1")(h)
    h = QConv2D(3, (3, 3), strides=(1, 2), padding=padding, kernel_quantizer=quantized_bits(4, 0, alpha=1),
                bias_quantizer=quantized_bits(6, 2, alpha=1), name="conv2")(h)
    h = QActivation(quantized_relu(4, 2), name="relu2")(h)
    h = keras.layers.Flatten(name="flat")(h)
    out = QDense(2, kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(6, 2, alpha=1),
                 name="out")(h)
    keras.Model(inp, out).save(tmp_path / "cnn.h5")
    graph = build_graph(tmp_path / "cnn.h5")
    rng = np.random.default_rng(0)
    x = (rng.random((3000, 9, 16, 1)) < 0.15).astype(np.float32) * rng.uniform(0.5, 3.5, (3000, 9, 16, 1)).astype(np.float32)
    ours = emulate(graph, x)
    theirs = load_qmodel(str(tmp_path / "cnn.h5"), compile=False).predict(x, batch_size=1024, verbose=0)
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} values differ"


def test_keras2_leaky_relu_within_precision_bound(tmp_path):
    """LeakyReLU(alpha=0.1) and ReLU(negative_slope=0.05) layers of a float Keras 2 model,
    against predict within the error bound."""
    import tf_keras as keras
    keras.utils.set_random_seed(3)
    m = keras.Sequential([keras.Input((16,)), keras.layers.Dense(12, name="fc1"),
                          keras.layers.LeakyReLU(alpha=0.1, name="leaky"), keras.layers.Dense(8, name="fc2"),
                          keras.layers.ReLU(negative_slope=0.05, name="relu_slope"),
                          keras.layers.Dense(4, name="out")])
    m.save(tmp_path / "leaky.h5")
    graph = build_graph(tmp_path / "leaky.h5")
    acts = [(n.name, n.function, n.float_alpha) for n in graph.nodes if n.op_type == "Activation"]
    assert [a[:2] for a in acts] == [("leaky", "leaky_relu"), ("relu_slope", "leaky_relu")]
    assert np.allclose([a[2] for a in acts], [0.1, 0.05])
    x = _samples(5000, seed=9) / 2
    worst, bound = _float_check(graph, lambda v: m.predict(v, batch_size=4096, verbose=0), x)
    assert 0 < worst < bound


def test_keras3_leaky_relu_configs():
    """Keras 3 spells the slope negative_slope; activation="leaky_relu" has slope 0.2; a
    slope of 0 is a relu; slopes outside [0, 1) are refused naming the layer."""
    from nnfpga.compiler.frontends.keras import KerasModel, _Builder
    from nnfpga.compiler.frontends.precision import Precision
    rng = np.random.default_rng(0)

    def build(*layers):
        cfgs = [{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 4]}}]
        weights = {}
        for cls, cfg in layers:
            cfgs.append({"class_name": cls, "config": cfg})
            if cls == "Dense":
                weights[cfg["name"]] = [rng.normal(0, 1, (4, 4)).astype(np.float32), np.zeros(4, np.float32)]
        b = _Builder(KerasModel("m", cfgs, weights, "m.keras"), Precision())
        for lc in cfgs:
            b.add(lc)
        return [n for n in b.nodes if n.op_type == "Activation"]

    acts = build(("Dense", {"name": "d1", "units": 4, "activation": "leaky_relu"}),
                 ("LeakyReLU", {"name": "lk", "negative_slope": 0.3}),
                 ("LeakyReLU", {"name": "lk0", "negative_slope": 0.0}),
                 ("ReLU", {"name": "r", "negative_slope": 0.125}))
    assert [(n.name, n.function, n.alpha, n.alpha_raw, n.alpha_frac) for n in acts] == [
        ("d1_leaky_relu", "leaky_relu", 0.2, 13107, 16), ("lk", "leaky_relu", 0.3, 19661, 16),
        ("lk0", "relu", None, 0, 0), ("r", "leaky_relu", 0.125, 1, 3)]
    assert all(n.auto_frac == 10 for n in acts)
    with pytest.raises(UserError, match=r"layer 'steep' \(LeakyReLU\): leaky ReLU slope 1.5"):
        build(("LeakyReLU", {"name": "steep", "negative_slope": 1.5}))


def test_qkeras_hard_sigmoid_within_precision_bound(tmp_path):
    """QKeras's hard_sigmoid, clip(0.5*x + 0.5, 0, 1), as a QDense activation (folded after
    the layer) and as QActivation('hard_sigmoid'), against QKeras predict within the error
    bound; both clip sides reached."""
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits
    from qkeras.utils import load_qmodel
    keras.utils.set_random_seed(5)
    q = dict(kernel_quantizer=quantized_bits(6, 1, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1),
             bias_initializer="random_normal")
    m = keras.Sequential([keras.Input((16,)), QActivation(quantized_bits(8, 3, alpha=1), name="q_in"),
                          QDense(12, activation="hard_sigmoid", name="fc1", **q),
                          QDense(6, name="fc2", **q), QActivation("hard_sigmoid", name="hs")])
    m.save(tmp_path / "hs.h5")
    graph = build_graph(tmp_path / "hs.h5")
    acts = [(n.name, n.function) for n in graph.nodes if n.op_type == "Activation"]
    assert acts == [("fc1_hard_sigmoid", "hard_sigmoid"), ("hs", "hard_sigmoid")]
    ref = load_qmodel(str(tmp_path / "hs.h5"), compile=False)
    x = _samples(5000, seed=10)
    y = ref.predict(x, batch_size=4096, verbose=0)
    assert (y == 0).any() and (y == 1).any()
    worst, bound = _float_check(graph, lambda v: ref.predict(v, batch_size=4096, verbose=0), x)
    assert 0 < worst < bound


@pytest.mark.parametrize("layer", ["activation", "dense"])
def test_keras_hard_sigmoid_is_refused_by_name(layer, tmp_path):
    """Keras's own hard_sigmoid (0.2x + 0.5 in Keras 2) is not QKeras's: refused, naming
    the layer and what is supported, never mapped to the IR's hard_sigmoid."""
    import tf_keras as keras
    if layer == "activation":
        layers = [keras.layers.Dense(4, name="d"), keras.layers.Activation("hard_sigmoid", name="gate")]
        where = r"'gate' \(Activation\)"
    else:
        layers = [keras.layers.Dense(4, activation="hard_sigmoid", name="gate")]
        where = r"'gate' \(Dense\)"
    keras.Sequential([keras.Input((3,)), *layers]).save(tmp_path / "k.h5")
    with pytest.raises(UserError, match=where + r": activation 'hard_sigmoid' is not supported in a Keras "
                                              r"layer: Keras's hard_sigmoid is another function \(0.2\*x \+ 0.5"):
        build_graph(tmp_path / "k.h5")
    with pytest.raises(UserError, match=r"QActivation\('hard_sigmoid'\).*HardSigmoid\(alpha=0.5, beta=0.5\)"):
        build_graph(tmp_path / "k.h5")
