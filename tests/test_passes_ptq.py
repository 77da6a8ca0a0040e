"""Post-training quantisation and data-dependent trimming, through the CLI and the API."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import nnfpga
import nnfpga.compiler.driver
from nnfpga.compiler.cli import main
from nnfpga.compiler.config import make_options
from nnfpga.compiler.float_reference import float_forward
from nnfpga.compiler.passes.ptq import auc
from nnfpga.compiler.pipeline import build_graph
from nnfpga.core.errors import UserError
from nnfpga.ir.emulator import emulate, quantize_input, trace_raw
from nnfpga.ir.fixed import FixedType
from tests.conftest import MODELS

FLOAT = MODELS / "float_mlp.h5"
QMLP = MODELS / "qmlp.h5"


def _toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The toy jet-tagging data the shipped models were trained on (examples/train_models.py)."""
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(1234).normal(0, 1.0, (5, 16))
    y = rng.integers(0, 5, n)
    return means[y] + rng.normal(0, 1.0, (n, 16)), y


@pytest.fixture(scope="module")
def calibration():
    x, y = _toy(2000, 21)
    return x / 4, (y == 0).astype(np.int64)     # float_mlp sees x / 4 and scores class 0


def test_float_reference_is_the_trained_keras_model(calibration):
    import tf_keras as keras
    x = calibration[0][:500].astype(np.float32)
    ref = keras.models.load_model(FLOAT, compile=False).predict(x, verbose=0)
    assert np.abs(float_forward(build_graph(FLOAT), x) - ref).max() < 1e-5


def test_ptq_cli_meets_tolerance_with_narrower_types(calibration, tmp_path, capsys):
    x, _ = calibration
    np.save(tmp_path / "cal.npy", x)
    (tmp_path / "ptq.yml").write_text("ptq:\n  tolerance: 0.02\n")
    out = tmp_path / "fw"
    assert main(["compile", str(FLOAT), "--calibration", str(tmp_path / "cal.npy"), "--config",
                 str(tmp_path / "ptq.yml"), "-o", str(out)]) == 0
    assert "ptq: max_deviation = " in capsys.readouterr().out
    ptq = json.loads((out / "report.json").read_text())["optimisation"]["ptq"]
    assert ptq["data_dependent"] and ptq["metric"] == "max_deviation" and ptq["tolerance"] == 0.02
    assert ptq["value"] <= 0.02 and ptq["samples"] == 2000
    # the golden model of the firmware written meets the tolerance on the calibration data
    deviation = np.abs(nnfpga.emulate(out, x) - float_forward(build_graph(FLOAT), x)).max()
    assert deviation == pytest.approx(ptq["value"], abs=1e-12) and deviation <= 0.02
    # every chosen type is at most as wide as the default, and most are narrower
    narrower = 0
    for c in ptq["chosen"]:
        if c["what"] == "table_size":
            assert c["value"] <= c["default"]
            continue
        chosen, default = FixedType.parse(c["value"]), FixedType.parse(c["default"])
        assert chosen.width <= default.width, c
        narrower += chosen.width < default.width
        assert chosen.overflow.value == "SAT"    # data-dependent integer bits saturate
    assert narrower >= 8, ptq["chosen"]
    ir = json.loads((out / "ir.json").read_text())
    assert ir["annotations"]["passes"]["ptq"]["chosen"] == ptq["chosen"]
    # the chosen input type really is the firmware's
    assert json.loads((out / "report.json").read_text())["io"]["input_type"] == ptq["chosen"][0]["value"]


def test_ptq_api_agreement_metric(calibration, tmp_path):
    x, _ = calibration
    result = nnfpga.compile(FLOAT, outdir=tmp_path / "fw", calibration=x,
                            config={"ptq": {"metric": "agreement", "tolerance": 0.01}})
    ptq = result.report["optimisation"]["ptq"]
    assert ptq["metric"] == "agreement" and ptq["value"] >= 0.99
    ours = nnfpga.emulate(tmp_path / "fw", x)[:, 0] > 0.5
    assert np.mean(ours == (float_forward(result.graph, x)[:, 0] > 0.5)) == pytest.approx(ptq["value"])


def test_ptq_auc_against_labels_from_npz(calibration, tmp_path, capsys):
    x, y = calibration
    np.savez(tmp_path / "cal.npz", x=x, y=y)
    (tmp_path / "auc.yml").write_text("ptq:\n  metric: auc\n  tolerance: 0.002\n")
    assert main(["config", str(FLOAT), "--calibration", str(tmp_path / "cal.npz"),
                 "--config", str(tmp_path / "auc.yml"), "-o", str(tmp_path / "chosen.yml")]) == 0
    text = (tmp_path / "chosen.yml").read_text()
    assert "# chosen by ptq" in text and "\n  metric: auc\n" in text
    # the written config reproduces the PTQ choice without calibration data
    g_cfg = build_graph(FLOAT, options=make_options(tmp_path / "chosen.yml"))
    g_ptq = build_graph(FLOAT, options=make_options(tmp_path / "auc.yml", calibration=x, labels=y))
    assert [n.info.type for n in g_cfg.nodes] == [n.info.type for n in g_ptq.nodes]
    assert np.array_equal(emulate(g_cfg, x), emulate(g_ptq, x))
    ptq = g_ptq.annotations["passes"]["ptq"]
    assert ptq["value"] >= ptq["float_reference_value"] - 0.002
    assert auc(emulate(g_ptq, x)[:, 0], y == 1) == pytest.approx(ptq["value"])


def test_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    s, pos = rng.integers(0, 5, 300).astype(float), rng.random(300) < 0.3
    pairs = (s[pos][:, None] > s[~pos][None, :]) + 0.5 * (s[pos][:, None] == s[~pos][None, :])
    assert auc(s, pos) == pytest.approx(pairs.mean())


def test_ptq_unreachable_tolerance_is_an_error(calibration):
    with pytest.raises(UserError, match=r"cannot meet the tolerance: with 16 fractional bits everywhere and "
                                        r"4096-entry tables the metric max_deviation is"):
        build_graph(FLOAT, options=make_options({"ptq": {"tolerance": 1e-7}}, calibration=calibration[0][:300]))
    with pytest.raises(UserError, match=r"calibration data: input has shape \(3,\) per sample"):
        build_graph(FLOAT, options=make_options(calibration=np.zeros((10, 3))))
    with pytest.raises(UserError, match="auc needs labels"):
        build_graph(FLOAT, options=make_options({"ptq": {"metric": "auc"}}, calibration=calibration[0][:300]))


def test_ptq_leaves_quantised_models_alone(calibration):
    x, _ = _toy(500, 3)
    plain = build_graph(QMLP)
    g = build_graph(QMLP, options=make_options(calibration=x))
    assert [n.info.type for n in g.nodes] == [n.info.type for n in plain.nodes]
    assert g.annotations["passes"]["ptq"]["chosen"] == []


def test_trim_is_data_dependent_saturating_and_exact_on_the_data(tmp_path):
    x, _ = _toy(3000, 4)
    np.save(tmp_path / "cal.npy", x)
    out = tmp_path / "fw"
    assert main(["compile", str(QMLP), "--calibration", str(tmp_path / "cal.npy"), "--trim", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    trim = report["optimisation"]["trim"]
    assert trim["data_dependent"] and trim["trimmed"]
    plain = build_graph(QMLP)
    trimmed = nnfpga.emulate(out, x)
    assert np.array_equal(trimmed, emulate(plain, x))          # identical on the calibration data
    for t in trim["trimmed"]:
        new, old = FixedType.parse(t["to"]), FixedType.parse(t["from"])
        assert new.overflow.value == "SAT" and new.width < old.width and new.frac == old.frac
    layer = {n["name"]: n for n in report["layers"]}
    assert all(layer[t["node"]]["type"] == t["to"] for t in trim["trimmed"])
    # outside the observed range the first trimmed tensor saturates (it does not wrap)
    first = trim["trimmed"][0]
    t = FixedType.parse(first["to"])
    fw_graph = nnfpga.compiler.driver.load_firmware(out)
    wide = x * 3
    got = trace_raw(fw_graph, quantize_input(fw_graph, wide))[first["node"]]
    exact = trace_raw(plain, quantize_input(plain, wide))[first["node"]]
    assert (exact > t.max_raw).any()
    assert np.array_equal(got, np.clip(exact, t.min_raw, t.max_raw))


# ----------------------------------------------------------------------------- held-out agreement
BASELINE_BITS = 16


def _hit_maps(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """10x10 maps with noise and one of four patterns: a horizontal track, a vertical
    track, a wrapped diagonal, a 3x3 cluster (the toy task of the float CNN below)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.normal(0, 0.3, (n, 10, 10))
    r, c, a = rng.integers(1, 9, n), rng.integers(1, 9, n), rng.uniform(1.0, 2.0, n)
    idx = np.arange(10)
    for k in range(n):
        if y[k] == 0:
            x[k, r[k], :] += a[k]
        elif y[k] == 1:
            x[k, :, c[k]] += a[k]
        elif y[k] == 2:
            x[k, idx, (idx + c[k]) % 10] += a[k]
        else:
            x[k, r[k] - 1:r[k] + 2, c[k] - 1:c[k] + 2] += a[k]
    return x[..., None].astype(np.float32), y


@pytest.fixture(scope="module")
def float_cnn(tmp_path_factory):
    """A float Keras CNN (Conv2D relu, MaxPooling2D, Conv2D relu, Flatten, Dense softmax),
    trained here in a few seconds."""
    import tf_keras as keras
    keras.utils.set_random_seed(5)
    x, y = _hit_maps(6000, 1)
    model = keras.Sequential([keras.Input((10, 10, 1)),
                              keras.layers.Conv2D(4, 3, activation="relu", name="conv1"),
                              keras.layers.MaxPooling2D(2, name="pool1"),
                              keras.layers.Conv2D(6, 3, activation="relu", name="conv2"),
                              keras.layers.Flatten(name="flat"),
                              keras.layers.Dense(4, activation="softmax", name="out")], name="float_cnn")
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=4, batch_size=128, verbose=0)
    path = tmp_path_factory.mktemp("cnn") / "float_cnn.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # "HDF5 is legacy": it is the format we read
        model.save(path)
    return path


def _chosen_bits(graph, ptq: dict) -> tuple[int, int]:
    """(bits of the chosen types, bits with every one of them 16 wide), each type counted
    once per value it holds (weights, tensor elements, table entries); checks that the
    summary's types are the graph's."""
    ours = base = 0
    for c in ptq["chosen"]:
        node = graph.node(c["node"])
        if c["what"] == "table_size":
            assert node.table.size == c["value"]
            continue
        t = FixedType.parse(c["value"])
        assert t.width <= BASELINE_BITS, c
        if c["what"] == "input":
            actual, count = graph.input.info.type, int(np.prod(graph.input.info.shape))
        elif c["what"] == "weight":
            actual, count = node.kernel_quantizer.type, int(node.kernel_q.raw.size)
        elif c["what"] == "output":
            actual, count = node.info.type, int(np.prod(node.info.shape))
        else:
            actual, count = node.table.out_type, int(node.table.size)
        assert actual == t, (c, actual)
        ours, base = ours + t.width * count, base + BASELINE_BITS * count
    return ours, base


def _classes(y: np.ndarray) -> np.ndarray:
    y = y.reshape(len(y), -1)
    return y[:, 0] > 0.5 if y.shape[1] == 1 else y.argmax(axis=1)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("ptq_config", [None, {"ptq": {"metric": "agreement", "tolerance": 0.005}}],
                         ids=["max_deviation", "agreement"])
def test_ptq_keeps_heldout_agreement_with_narrower_types(model, ptq_config, request):
    """Issue 7: a float MLP and a float CNN quantised by PTQ on calibration data agree with
    the float model on >= 99% of held-out samples, with types narrower than 16 bits."""
    if model == "mlp":
        path = FLOAT
        x_cal, x_held = _toy(2000, 21)[0] / 4, _toy(5000, 99)[0] / 4
        held_labels = _toy(5000, 99)[1] == 0
    else:
        path = request.getfixturevalue("float_cnn")
        x_cal, x_held, held_labels = _hit_maps(1000, 2)[0], *_hit_maps(4000, 3)
    g = build_graph(path, options=make_options(ptq_config, calibration=x_cal))
    ptq = g.annotations["passes"]["ptq"]
    assert ptq["samples"] == len(x_cal) and ptq["chosen"]
    float_classes = _classes(float_forward(build_graph(path), x_held))
    # the float model is a real classifier (agreement with a constant one would be trivial)
    assert np.mean(float_classes == held_labels) >= 0.95
    agreement = float(np.mean(_classes(emulate(g, x_held)) == float_classes))
    ours, base = _chosen_bits(g, ptq)
    print(f"{model}/{ptq['metric']}: held-out agreement {agreement:.4%} on {len(x_held)} samples "
          f"(calibration {ptq['value']:.4g}), {ours} bits vs {base} at 16 bits ({ours / base:.1%}); "
          + ", ".join(f"{c['node']}:{c['what']}={c['value']}" for c in ptq["chosen"]))
    assert agreement >= 0.99
    assert ours < base
