"""The supported-layers tables (README, docs/models.md) are generated from the code
(`nnfpga.compiler.coverage`), and the Keras frontend's `LAYER_OPS` says truly which IR
ops each layer becomes."""

from __future__ import annotations

import pytest

from nnfpga.compiler import coverage
from nnfpga.compiler.frontends.keras import LAYER_OPS
from nnfpga.compiler.pipeline import build_graph
from tests.conftest import ROOT

TABLE_FILES = [ROOT / "README.md", ROOT / "docs" / "models.md"]


def test_tables_are_current():
    assert coverage.main(["--check", *map(str, TABLE_FILES)]) == 0


def test_a_stale_table_is_found_and_rewritten(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text(f"intro\n{coverage.BEGIN}\n| old | table |\n{coverage.END}\nrest\n")
    assert coverage.main(["--check", str(page)]) == 1
    assert "out of date in" in capsys.readouterr().err
    assert coverage.main(["--write", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("\nrest\n") and "| `Conv2D` |" in text
    assert coverage.main(["--check", str(page)]) == 0


def test_statuses_follow_the_backends_registries(monkeypatch):
    """Taking a function out of the RTL's element rules turns its RTL cell to "no"."""
    from nnfpga.backends.rtl.lowering import conversions
    assert coverage.function_status("leaky_relu") == ("yes", "yes", "yes")
    monkeypatch.delitem(conversions.ELEMENT_RULES, "leaky_relu")
    assert coverage.function_status("leaky_relu") == ("yes", "yes", "no")
    assert coverage.op_status("BatchNorm") == ("folded",) * 3


def _every_layer_models(folder):
    """tf_keras/QKeras models that use every layer class tf_keras can save (aliases such as
    MaxPool2D are saved under their main name)."""
    import tf_keras as keras
    from qkeras import QActivation, QBatchNormalization, QConv1D, QConv2D, QDense, quantized_bits, quantized_relu
    L = keras.layers
    keras.utils.set_random_seed(0)
    q = dict(kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(4, 1, alpha=1))
    one_d = keras.Sequential([
        keras.Input((24, 3)), L.Conv1D(4, 3, activation="relu"), L.MaxPooling1D(2), L.AveragePooling1D(2),
        L.Dropout(0.1), L.Conv1D(4, 1), L.UpSampling1D(2), L.GlobalMaxPooling1D(), L.Dense(4), L.ReLU(),
        L.Reshape((2, 2)), L.GlobalAveragePooling1D(), L.Dense(2, activation="softmax")])
    two_d = keras.Sequential([
        keras.Input((8, 8, 2)), L.Conv2D(3, 3), L.BatchNormalization(), L.Activation("tanh"), L.MaxPooling2D(2),
        L.UpSampling2D(2), L.AveragePooling2D(2), L.Permute((2, 1, 3)), L.LeakyReLU(0.1), L.Conv2D(4, 1),
        L.GlobalMaxPooling2D(keepdims=True), L.GlobalAveragePooling2D(), L.Activation("sigmoid"), L.Flatten(),
        L.Dense(2)])
    inp = keras.Input((12, 2))
    h = QActivation(quantized_bits(6, 2, alpha=1))(inp)
    h = QConv1D(3, 3, activation=quantized_relu(4, 2), **q)(h)
    h = L.Reshape((10, 3, 1))(h)
    h = QConv2D(2, (3, 1), **q)(h)
    h = QActivation(quantized_relu(4, 2))(h)
    h = QBatchNormalization(gamma_quantizer=quantized_bits(6, 2, alpha=1), beta_quantizer=quantized_bits(6, 2, alpha=1),
                            mean_quantizer=None, variance_quantizer=None)(h)
    h = L.Flatten()(h)
    quantised = keras.Model(inp, QDense(2, **q)(h))
    a, b = keras.Input((6,)), keras.Input((4,))
    d = L.Dense(6)(L.Rescaling(0.5, offset=0.25)(a))
    s = L.Add()([a, d])
    m = L.Average()([s, L.Subtract()([s, d])])
    graph = keras.Model([a, b], L.Dense(2)(L.Concatenate()([m, b])))
    paths = []
    for name, model in (("one_d", one_d), ("two_d", two_d), ("quantised", quantised), ("graph", graph)):
        paths.append(folder / f"{name}.h5")
        model.save(paths[-1])
    return paths


def test_layer_ops_are_what_each_layer_becomes(tmp_path):
    import h5py
    import json
    seen = set()
    for path in _every_layer_models(tmp_path):
        with h5py.File(path) as f:
            layers = json.loads(f.attrs["model_config"])["config"]["layers"]
        classes = {lc["config"]["name"]: lc["class_name"] for lc in layers}
        seen |= set(classes.values())
        graph = build_graph(path)
        for node in graph.nodes[1:]:
            cls = classes[node.source_layer]
            assert node.op_type in LAYER_OPS[cls], (path.name, node.name, node.op_type, cls)
    aliases = {"MaxPool2D", "MaxPool1D", "GlobalMaxPool1D", "GlobalMaxPool2D", "AvgPool2D", "AvgPool1D",
               "GlobalAvgPool1D", "GlobalAvgPool2D"}
    # HGQ2's layers need Keras 3 + HGQ2 (.venv-peers): tests/test_hgq2.py checks their ops
    from nnfpga.compiler.frontends.keras_hgq import LAYER_OPS as HGQ2_LAYER_OPS
    assert set(LAYER_OPS) - aliases - set(HGQ2_LAYER_OPS) - seen == set()


@pytest.mark.parametrize("name", ["quantized_relu", "quantized_tanh"])
def test_activation_only_quantisers_are_refused_as_weights(name):
    assert coverage.quantiser_roles(name) == (False, True)
