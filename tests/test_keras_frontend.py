"""Keras/QKeras frontend: bit-exact against QKeras predict, bounded against float Keras."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nnfpga.ir.validate import load_ir
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
    diff = np.abs(emulate(emulated or graph, x).reshape(len(x), -1) - reference(x).reshape(len(x), -1))
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
    again = load_ir(tmp_path / "ir.json", complete=False)
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


# ------------------------------------------------------------------ old Keras configs
# Keras 1.x/2.0.x files cannot be written here (those versions do not install), so they
# are written with h5py exactly as Keras 2.0.x stored them: keras/models.py save_model
# (Keras 2.0.8) puts the JSON of {"class_name": "Sequential", "config": [layer, ...]} in
# the file's ``model_config`` attribute, and keras/engine/topology.py
# save_weights_to_hdf5_group puts the weights in the ``model_weights`` group: attributes
# ``layer_names``, ``backend``, ``keras_version``, one group per layer (also the layers
# without weights) with a ``weight_names`` attribute and one dataset per weight, named
# after the weight tensor ("dense_1/kernel:0", a nested group in HDF5; Keras 1.x named
# them "dense_1_W:0", "dense_1_b:0").

def _write_old_h5(path, model_config, layer_weights: dict, keras_version: str = "2.0.8") -> None:
    import json

    import h5py
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = keras_version.encode()
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(model_config).encode()
        g = f.create_group("model_weights")
        names = [lc["config"]["name"] for lc in (model_config["config"] if isinstance(model_config["config"], list)
                                                 else model_config["config"]["layers"])]
        g.attrs["layer_names"] = [n.encode() for n in names]
        g.attrs["backend"] = b"tensorflow"
        g.attrs["keras_version"] = keras_version.encode()
        for n in names:
            lg = g.create_group(n)
            ws = layer_weights.get(n, [])
            lg.attrs["weight_names"] = [w.encode() for w, _ in ws]
            for w, val in ws:
                lg.create_dataset(w, val.shape, dtype=val.dtype)[:] = val


def _mlp_weights(seed: int = 11) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.normal(0, 0.4, (i, o)).astype(np.float32), rng.normal(0, 0.2, o).astype(np.float32))
            for i, o in ((16, 12), (12, 8), (8, 4))]


def _keras20_mlp_config() -> dict:
    """A Keras 2.0.8 Sequential config (list form): Dense(relu), Dropout, Dense, Activation(tanh), Dense."""
    init = {"class_name": "VarianceScaling", "config": {"scale": 1.0, "mode": "fan_avg",
                                                        "distribution": "uniform", "seed": None}}
    zeros = {"class_name": "Zeros", "config": {}}

    def dense(name, units, act, first=False):
        cfg = {"name": name, "trainable": True, "units": units, "activation": act, "use_bias": True,
               "kernel_initializer": init, "bias_initializer": zeros, "kernel_regularizer": None,
               "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
               "bias_constraint": None}
        if first:
            cfg = {"name": name, "trainable": True, "batch_input_shape": [None, 16], "dtype": "float32", **cfg}
        return {"class_name": "Dense", "config": cfg}
    return {"class_name": "Sequential", "config": [
        dense("dense_1", 12, "relu", first=True),
        {"class_name": "Dropout", "config": {"name": "dropout_1", "trainable": True, "rate": 0.25}},
        dense("dense_2", 8, "linear"),
        {"class_name": "Activation", "config": {"name": "activation_1", "trainable": True, "activation": "tanh"}},
        dense("dense_3", 4, "linear")]}


def _keras1_mlp_config() -> dict:
    """The same MLP as Keras 1.2 wrote it: output_dim, init, W_regularizer, bias, input_dtype."""
    def dense(name, out, act, first=False):
        cfg = {"name": name, "trainable": True, "output_dim": out, "init": "glorot_uniform", "activation": act,
               "W_regularizer": None, "b_regularizer": None, "activity_regularizer": None,
               "W_constraint": None, "b_constraint": None, "bias": True, "input_dim": None}
        if first:
            cfg.update(batch_input_shape=[None, 16], input_dtype="float32", input_dim=16)
        return {"class_name": "Dense", "config": cfg}
    return {"class_name": "Sequential", "config": [
        dense("dense_1", 12, "relu", first=True),
        {"class_name": "Dropout", "config": {"name": "dropout_1", "trainable": True, "p": 0.25}},
        dense("dense_2", 8, "linear"),
        {"class_name": "Activation", "config": {"name": "activation_1", "trainable": True, "activation": "tanh"}},
        dense("dense_3", 4, "linear")]}


def _numpy_mlp(weights, x: np.ndarray) -> np.ndarray:
    (w1, b1), (w2, b2), (w3, b3) = [(w.astype(np.float64), b.astype(np.float64)) for w, b in weights]
    return np.tanh(np.maximum(x @ w1 + b1, 0) @ w2 + b2) @ w3 + b3


def _tf_keras_mlp(weights, functional: bool):
    import tf_keras as keras
    layers = [keras.layers.Dense(12, activation="relu", name="dense_1"), keras.layers.Dropout(0.25, name="dropout_1"),
              keras.layers.Dense(8, name="dense_2"), keras.layers.Activation("tanh", name="activation_1"),
              keras.layers.Dense(4, name="dense_3")]
    if functional:
        h = inp = keras.Input((16,), name="in")
        for layer in layers:
            h = layer(h)
        m = keras.Model(inp, h, name="sequential")
    else:
        m = keras.Sequential([keras.Input((16,)), *layers], name="sequential")
    for layer, (w, b) in zip([m.get_layer(n) for n in ("dense_1", "dense_2", "dense_3")], weights):
        layer.set_weights([w, b])
    return m


def _ir(graph: Graph) -> dict:
    """The IR without what names the source file (the model's and the input layer's names)."""
    d = graph.to_json()
    d.pop("name")
    for n in d["nodes"]:
        if n["op"] == "Input":
            n.pop("source_layer")
    return d


@pytest.mark.parametrize("form", ["keras2.0", "keras1"])
def test_old_keras_sequential_list_config_compiles(form, tmp_path):
    """A Sequential whose config is the layer list (Keras 2.0.x names, or Keras 1.x names
    and weight names) equals a numpy float forward pass within the bound, and compiles to
    the same IR as tf_keras-saved Sequential and Functional models with the same weights."""
    weights = _mlp_weights()
    if form == "keras2.0":
        config, version = _keras20_mlp_config(), "2.0.8"
        wnames = [(f"dense_{i}/kernel:0", f"dense_{i}/bias:0") for i in (1, 2, 3)]
    else:
        config, version = _keras1_mlp_config(), "1.2.2"
        wnames = [(f"dense_{i}_W:0", f"dense_{i}_b:0") for i in (1, 2, 3)]
    per_layer = {f"dense_{i + 1}": [(kn, w), (bn, b)] for i, ((kn, bn), (w, b)) in enumerate(zip(wnames, weights))}
    _write_old_h5(tmp_path / "old.h5", config, per_layer, version)
    graph = build_graph(tmp_path / "old.h5")
    x = _samples(5000, seed=12) / 2
    worst, bound = _float_check(graph, lambda v: _numpy_mlp(weights, v.astype(np.float64)), x)
    assert 0 < worst < bound
    for functional in (False, True):
        _tf_keras_mlp(weights, functional).save(tmp_path / f"modern{functional}.h5")
        assert _ir(build_graph(tmp_path / f"modern{functional}.h5")) == _ir(graph)


def test_keras1_convolution2d_config_compiles(tmp_path):
    """Keras 1 Convolution2D (nb_filter, nb_row/nb_col, border_mode, subsample,
    dim_ordering 'tf') and Flatten: the same IR as the tf_keras Conv2D model, within the
    bound of its predict."""
    import tf_keras as keras
    rng = np.random.default_rng(13)
    k, kb = rng.normal(0, 0.3, (3, 3, 1, 4)).astype(np.float32), rng.normal(0, 0.1, 4).astype(np.float32)
    w, wb = rng.normal(0, 0.2, (3 * 8 * 4, 3)).astype(np.float32), rng.normal(0, 0.1, 3).astype(np.float32)
    config = {"class_name": "Sequential", "config": [
        {"class_name": "Convolution2D", "config": {
            "name": "convolution2d_1", "trainable": True, "batch_input_shape": [None, 6, 16, 1],
            "input_dtype": "float32", "nb_filter": 4, "nb_row": 3, "nb_col": 3, "init": "glorot_uniform",
            "activation": "relu", "border_mode": "same", "subsample": [2, 2], "dim_ordering": "tf",
            "W_regularizer": None, "b_regularizer": None, "activity_regularizer": None,
            "W_constraint": None, "b_constraint": None, "bias": True}},
        {"class_name": "Flatten", "config": {"name": "flatten_1", "trainable": True}},
        {"class_name": "Dense", "config": {"name": "dense_1", "trainable": True, "output_dim": 3, "init": "glorot_uniform",
                                           "activation": "linear", "W_regularizer": None, "bias": True,
                                           "input_dim": None}}]}
    _write_old_h5(tmp_path / "k1.h5", config, {"convolution2d_1": [("convolution2d_1_W:0", k), ("convolution2d_1_b:0", kb)],
                                               "dense_1": [("dense_1_W:0", w), ("dense_1_b:0", wb)]}, "1.2.2")
    graph = build_graph(tmp_path / "k1.h5")
    m = keras.Sequential([keras.Input((6, 16, 1)),
                          keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="convolution2d_1"),
                          keras.layers.Flatten(name="flatten_1"), keras.layers.Dense(3, name="dense_1")])
    m.get_layer("convolution2d_1").set_weights([k, kb])
    m.get_layer("dense_1").set_weights([w, wb])
    m.save(tmp_path / "modern.h5")
    assert _ir(build_graph(tmp_path / "modern.h5")) == _ir(graph)
    x = np.random.default_rng(14).normal(0, 1, (2000, 6, 16, 1)).astype(np.float32)
    _float_check(graph, lambda v: m.predict(v, batch_size=2000, verbose=0), x)


def _old_layers(**dense_extra) -> dict:
    return {"class_name": "Sequential", "config": [
        {"class_name": "Dense", "config": {"name": "dense_1", "batch_input_shape": [None, 4], "units": 2,
                                           "activation": "linear", **dense_extra}}]}


@pytest.mark.parametrize("config, message", [
    ({"class_name": "Sequential", "config": [
        {"class_name": "Convolution2D", "config": {"name": "conv_th", "batch_input_shape": [None, 1, 4, 4],
                                                   "nb_filter": 2, "nb_row": 3, "nb_col": 3, "dim_ordering": "th"}}]},
     r"layer 'conv_th' \(Convolution2D\): Keras 1 dim_ordering 'th' is not supported"),
    ({"class_name": "Sequential", "config": [
        {"class_name": "Dense", "config": {"name": "dense_1", "batch_input_shape": [None, 4], "output_dim": 2}},
        {"class_name": "Merge", "config": {"name": "merge_1", "mode": "sum"}}]},
     r"unsupported layer\(s\) 'merge_1' \(Merge\)"),
    ({"class_name": "Sequential", "config": [
        {"class_name": "Dense", "config": {"name": "dense_1", "batch_input_shape": [None, 4], "output_dim": 2}},
        {"class_name": "BatchNormalization", "config": {"name": "bn_1", "mode": 0, "axis": -1, "epsilon": 1e-3}}]},
     r"layer 'bn_1' \(BatchNormalization\): a Keras 1 batch normalization \(with 'mode'\) is not supported"),
    ({"class_name": "Sequential", "config": "dense"}, r"the model config of the Sequential holds no layer list"),
    ({"class_name": "Sequential", "config": [["Dense"]]}, r"the model config of the Sequential holds no layer list"),
    ({"class_name": "Graph", "config": []}, r"top-level 'Graph' is not a Sequential or Functional model"),
])
def test_bad_old_configs_are_refused_by_name(config, message, tmp_path):
    _write_raw_config(tmp_path / "bad.h5", config)
    with pytest.raises(UserError, match=message):
        build_graph(tmp_path / "bad.h5")


def _write_raw_config(path, config) -> None:
    import json

    import h5py
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.create_group("model_weights").attrs["layer_names"] = []


def assert_layer_refused(tmp_path, input_shape: list[int], layer: dict, message: str) -> None:
    """A Sequential of an input of ``input_shape`` and ``layer`` (a raw config, no
    weights) is refused with ``message``, naming the layer."""
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [None, *input_shape]}}, layer]}}
    _write_raw_config(tmp_path / "bad.h5", config)
    with pytest.raises(UserError, match=message) as e:
        build_graph(tmp_path / "bad.h5")
    assert f"layer {layer['config']['name']!r}" in str(e.value)


def test_keras3_sequential_and_functional_compile_to_the_same_ir(tmp_path):
    """Keras 3 ``.keras`` Sequential and Functional models (written by Keras 3 itself, in
    a subprocess: Keras 3 must not see the legacy switch) with the same weights as the
    Keras 2.0 list-form file compile to its IR (also as to_json + save_weights); a
    Keras 3 non-chain model is refused."""
    import os

    from nnfpga.compiler.frontends.keras import KerasJson
    weights = _mlp_weights()
    np.savez(tmp_path / "w.npz", *[a for wb in weights for a in wb])
    code = """if 1:
        import sys, numpy as np, keras
        L = keras.layers
        w = np.load(sys.argv[1] + "/w.npz"); w = [w[f"arr_{i}"] for i in range(6)]
        def layers():
            return [L.Dense(12, activation="relu", name="dense_1"), L.Dropout(0.25, name="dropout_1"),
                    L.Dense(8, name="dense_2"), L.Activation("tanh", name="activation_1"), L.Dense(4, name="dense_3")]
        seq = keras.Sequential([keras.Input((16,)), *layers()], name="sequential")
        h = inp = keras.Input((16,), name="in")
        for layer in layers():
            h = layer(h)
        fun = keras.Model(inp, h, name="sequential")
        for m in (seq, fun):
            for i, n in enumerate(("dense_1", "dense_2", "dense_3")):
                m.get_layer(n).set_weights([w[2 * i], w[2 * i + 1]])
        seq.save(sys.argv[1] + "/seq.keras"); fun.save(sys.argv[1] + "/fun.keras")
        open(sys.argv[1] + "/fun.json", "w").write(fun.to_json()); fun.save_weights(sys.argv[1] + "/fun.weights.h5")
        a = L.Dense(3, name="a")(inp); b = L.Dense(2, name="b")(inp)
        two = keras.Model(inp, [a, b]); two.save(sys.argv[1] + "/two.keras")
        x = np.linspace(-1, 1, 160).reshape(10, 16)
        np.savez(sys.argv[1] + "/two.npz", x=x, y=np.concatenate(two.predict(x, verbose=0), axis=1))
    """
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=env, capture_output=True)
    per_layer = {f"dense_{i + 1}": [(f"dense_{i + 1}/kernel:0", w), (f"dense_{i + 1}/bias:0", b)]
                 for i, (w, b) in enumerate(weights)}
    _write_old_h5(tmp_path / "old.h5", _keras20_mlp_config(), per_layer)
    expected = _ir(build_graph(tmp_path / "old.h5"))
    assert _ir(build_graph(tmp_path / "seq.keras")) == expected
    assert _ir(build_graph(tmp_path / "fun.keras")) == expected
    assert _ir(build_graph(KerasJson(tmp_path / "fun.json", tmp_path / "fun.weights.h5"))) == expected
    two, ref = build_graph(tmp_path / "two.keras"), np.load(tmp_path / "two.npz")   # a graph, not a chain
    assert np.all(np.abs(emulate(two, ref["x"]) - ref["y"]) <= error_bound(two, (-1.0, 1.0)) + 1e-5)


def test_functional_model_that_is_not_a_chain_is_read_as_its_graph(tmp_path):
    """Two layers reading the input, or an output read by a later layer, are the model's
    graph (Keras 2 inbound_nodes), never a chain of its layers in order: the outputs, side
    by side, are Keras's within the error bound."""
    import tf_keras as keras
    keras.utils.set_random_seed(1)
    inp = keras.Input((4,), name="in")
    a = keras.layers.Dense(3, name="a")(inp)
    b = keras.layers.Dense(2, name="b")(inp)
    c = keras.layers.Dense(2, name="c")(a)
    x = np.random.default_rng(0).uniform(-1, 1, (2000, 4))
    for name, outputs in (("two", [a, b]), ("two_out", [a, c])):
        model = keras.Model(inp, outputs)
        model.save(tmp_path / f"{name}.h5")
        graph = build_graph(tmp_path / f"{name}.h5")
        assert graph.output.op_type == "Concatenate" and graph.output.info.shape == (5,)
        theirs = np.concatenate(model.predict(x, verbose=0), axis=1)
        assert np.all(np.abs(emulate(graph, x) - theirs) <= error_bound(graph, (-1.0, 1.0)) + 1e-6)


def _write_weights_h5(path, layer_names, layer_weights: dict) -> None:
    """A weights file as Keras 2.0.8 ``save_weights`` wrote it (topology.py
    save_weights_to_hdf5_group on the file's root group)."""
    import h5py
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in layer_names]
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.0.8"
        for n in layer_names:
            g = f.create_group(n)
            ws = layer_weights.get(n, [])
            g.attrs["weight_names"] = [w.encode() for w, _ in ws]
            for w, val in ws:
                g.create_dataset(w, val.shape, dtype=val.dtype)[:] = val


def test_json_architecture_with_weights_file(tmp_path, capsys):
    """``model.json`` + a weights ``.h5`` (Keras 2.0 list form, and tf_keras to_json +
    save_weights): the same IR as the whole-model file, through the CLI (--weights) and
    the Python API (weights=)."""
    import json

    import nnfpga
    from nnfpga.compiler.cli import main
    from nnfpga.compiler.frontends.keras import KerasJson
    weights = _mlp_weights()
    config = _keras20_mlp_config()
    per_layer = {f"dense_{i + 1}": [(f"dense_{i + 1}/kernel:0", w), (f"dense_{i + 1}/bias:0", b)]
                 for i, (w, b) in enumerate(weights)}
    _write_old_h5(tmp_path / "whole.h5", config, per_layer)
    expected = _ir(build_graph(tmp_path / "whole.h5"))
    (tmp_path / "model.json").write_text(json.dumps(config))
    _write_weights_h5(tmp_path / "model_weights.h5", [lc["config"]["name"] for lc in config["config"]], per_layer)
    assert _ir(build_graph(KerasJson(tmp_path / "model.json", tmp_path / "model_weights.h5"))) == expected
    m = _tf_keras_mlp(weights, functional=False)
    (tmp_path / "tf.json").write_text(m.to_json())
    m.save_weights(tmp_path / "tf_weights.h5")
    assert _ir(build_graph(KerasJson(tmp_path / "tf.json", tmp_path / "tf_weights.h5"))) == expected
    assert main(["compile", str(tmp_path / "model.json"), "--weights", str(tmp_path / "model_weights.h5"),
                 "-o", str(tmp_path / "fw")]) == 0
    api = nnfpga.compile(tmp_path / "tf.json", weights=tmp_path / "tf_weights.h5", outdir=tmp_path / "fw2")
    assert _ir(load_ir(tmp_path / "fw" / "ir.json", complete=False)) == _ir(api.graph)
    assert main(["config", str(tmp_path / "model.json"), "--weights", str(tmp_path / "model_weights.h5")]) == 0
    assert "dense_3" in capsys.readouterr().out
    assert main(["compile", str(tmp_path / "whole.h5"), "--weights", str(tmp_path / "model_weights.h5"),
                 "-o", str(tmp_path / "fw3")]) == 2
    assert "a weights file goes with a Keras .json architecture file only" in capsys.readouterr().err


def test_json_architecture_file_without_weights_is_refused_in_one_line(tmp_path, capsys):
    from nnfpga.compiler.cli import main
    (tmp_path / "model.json").write_text('{"class_name": "Sequential", "config": []}')
    assert main(["compile", str(tmp_path / "model.json"), "-o", str(tmp_path / "fw")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "model.json: a Keras .json file holds the architecture only, not the weights; give the weights " \
           "file too (nnfpga compile model.json --weights model_weights.h5" in err


def test_json_architecture_finds_its_weights_beside_it(tmp_path, capsys):
    """``model.json`` with ``model.h5`` (or model_weights.h5, ...) beside it compiles
    without --weights, with a note; two candidates are refused naming both."""
    import json

    from nnfpga.compiler.cli import main
    weights = _mlp_weights()
    config = _keras20_mlp_config()
    names = [lc["config"]["name"] for lc in config["config"]]
    per_layer = {f"dense_{i + 1}": [(f"dense_{i + 1}/kernel:0", w), (f"dense_{i + 1}/bias:0", b)]
                 for i, (w, b) in enumerate(weights)}
    (tmp_path / "model.json").write_text(json.dumps(config))
    _write_weights_h5(tmp_path / "model.weights.h5", names, per_layer)
    assert main(["compile", str(tmp_path / "model.json"), "-o", str(tmp_path / "fw")]) == 0
    err = capsys.readouterr().err
    assert f"note: the weights of {tmp_path / 'model.json'} are read from {tmp_path / 'model.weights.h5'}" in err
    given = tmp_path / "fw_given"
    assert main(["compile", str(tmp_path / "model.json"), "--weights", str(tmp_path / "model.weights.h5"),
                 "-o", str(given)]) == 0
    assert (tmp_path / "fw" / "ir.json").read_text() == (given / "ir.json").read_text()
    _write_weights_h5(tmp_path / "model_weights.h5", names, per_layer)
    capsys.readouterr()
    assert main(["compile", str(tmp_path / "model.json"), "-o", str(tmp_path / "fw2")]) == 2
    err = capsys.readouterr().err
    assert "several weights files beside it (model_weights.h5, model.weights.h5)" in err
