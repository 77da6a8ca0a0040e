"""Accuracy on the user's data (``compile --data``, ``report --data``) and verification
results in the report: the figures in report.json/.md/.html equal an independent
computation (the framework's own prediction against ``nnfpga.emulate``, here)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import nnfpga
from nnfpga.backends.report.markdown import _fmt
from nnfpga.backends.report.schema import validate
from nnfpga.compiler.cli import main
from nnfpga.compiler.output_dir import manifest_problems
from nnfpga.core.errors import UserError
from tests.conftest import MODELS, ROOT


def _events(n: int, seed: int = 0, scale: float = 1.5) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, scale, (n, 16)).astype(np.float32)


# ----------------------------------------------------------------------------- the references
def _keras(path):
    import tf_keras as keras
    return keras.models.load_model(str(path), compile=False)


def _qkeras(path):
    from qkeras.utils import load_qmodel
    return load_qmodel(str(path), compile=False)


def _keras3(path):
    import keras
    return keras.saving.load_model(str(path), compile=False)


def _onnx_model(path):
    """Gemm -> Relu -> Gemm (3 outputs), built with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.normal(0, 0.4, (16, 10)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, 10).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(0, 0.4, (10, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(0, 0.1, 3).astype(np.float32), "b2")]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu1"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2")]
    graph = helper.make_graph(nodes, "onnx_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _onnx_run(path, x):
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x.astype(np.float32)})[0]


def _torch_model(path):
    import torch
    torch.manual_seed(2)
    module = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(module, torch.zeros(2, 16)), str(path))


def _torch_run(path, x):
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path))
    with torch.no_grad():
        return module(torch.from_numpy(x.astype(np.float32))).numpy()


CASES = {
    "keras": (lambda d: MODELS / "float_mlp.h5", lambda p, x: _keras(p).predict(x, verbose=0), []),
    "keras3": (lambda d: MODELS / "float_mlp.keras", lambda p, x: _keras3(p).predict(x, verbose=0), []),
    "qkeras": (lambda d: MODELS / "qmlp.h5", lambda p, x: _qkeras(p).predict(x, verbose=0), []),
    "onnx": (lambda d: (_onnx_model(d / "m.onnx"), d / "m.onnx")[1], _onnx_run, []),
    "torch": (lambda d: (_torch_model(d / "m.pt"), d / "m.pt")[1], _torch_run, ["--trust-model-code"]),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def compiled(request, tmp_path_factory):
    """A model compiled with --data (.npz with labels for the multi-output models)."""
    make, run, flags = CASES[request.param]
    d = tmp_path_factory.mktemp(request.param)
    model = make(d)
    x = _events(300, seed=5)
    ref = np.asarray(run(model, x), dtype=np.float64).reshape(len(x), -1)
    if ref.shape[1] > 1:
        y = np.random.default_rng(1).integers(0, ref.shape[1], len(x))
        data = d / "x.npz"
        np.savez(data, x=x, y=y)
    else:
        y = None
        data = d / "x.npy"
        np.save(data, x)
    out = d / "fw"
    assert main(["compile", str(model), "-o", str(out), "--html", "--data", str(data), *flags]) == 0
    return {"name": request.param, "out": out, "x": x, "y": y, "ref": ref, "data": data}


def test_data_section_equals_an_independent_computation(compiled):
    out, x, ref = compiled["out"], compiled["x"], compiled["ref"]
    report = json.loads((out / "report.json").read_text())
    assert validate(report) == []
    d = report["data_accuracy"]
    fixed = nnfpga.emulate(out, x).reshape(len(x), -1)
    dev = np.abs(fixed - ref)
    assert d["samples"] == len(x) and d["data"] == str(compiled["data"])
    # the same framework on the same values: equal, not close
    assert d["max_abs_error"] == float(dev.max())
    assert d["mean_abs_error"] == float(dev.mean())
    assert [o["max_abs_error"] for o in d["per_output"]] == [float(v) for v in dev.max(axis=0)]
    assert [o["mean_abs_error"] for o in d["per_output"]] == [float(v) for v in dev.mean(axis=0)]
    if ref.shape[1] == 1:
        agree = np.mean((fixed[:, 0] > 0.5) == (ref[:, 0] > 0.5))
        assert d["decision"] == {"rule": "output > 0.5", "threshold": 0.5, "agreement": agree}
        assert d["labels"] is None
    else:
        agree = np.mean(fixed.argmax(1) == ref.argmax(1))
        assert d["decision"] == {"rule": "argmax", "threshold": None, "agreement": agree}
        y = compiled["y"]
        assert d["labels"] == {"metric": "accuracy", "fixed": np.mean(fixed.argmax(1) == y),
                               "framework": np.mean(ref.argmax(1) == y)}
    # the guaranteed bound beside the observed maximum
    bound = report["accuracy"]
    assert d["error_bound_max"] == bound["error_bound_max"]
    assert [o["error_bound"] for o in d["per_output"]] == (bound["error_bound_per_output"] or [None] * ref.shape[1])
    counts, edges = np.histogram(dev, bins=20, range=(0.0, dev.max() if dev.max() > 0 else 1.0))
    assert d["histogram"]["counts"] == list(counts) and sum(d["histogram"]["counts"]) == dev.size
    assert d["histogram"]["edges"] == pytest.approx(list(edges))
    t = report["io"]["input_type"]
    assert d["saturation"]["input_type"] == t
    lo, hi = d["saturation"]["input_range"]
    assert d["saturation"]["values"] == int(np.sum((x < lo) | (x > hi)))
    if compiled["name"] == "qkeras":  # the firmware is bit-exact with QKeras itself
        assert d["max_abs_error"] == 0.0
    else:
        assert d["max_abs_error"] > 0.0
    if compiled["name"] == "keras":
        assert d["against"].startswith("Keras (tf_keras")
        assert d["within_bound"] is True and d["max_abs_error"] <= d["error_bound_max"]


def test_data_section_in_markdown_and_html(compiled):
    out = compiled["out"]
    report = json.loads((out / "report.json").read_text())
    d = report["data_accuracy"]
    md = (out / "report.md").read_text()
    section = md[md.index("## Accuracy on data"):md.index("## Layers")]
    assert f"| max \\|fixed - framework\\| | {_fmt(d['max_abs_error'])} |" in section
    assert f"| mean \\|fixed - framework\\| | {_fmt(d['mean_abs_error'])} |" in section
    assert f"{100 * d['decision']['agreement']:.2f}%" in section
    for o in d["per_output"]:
        assert f"| {o['index']} | {_fmt(o['max_abs_error'])} | {_fmt(o['mean_abs_error'])} |" in section
    assert "| " + " | ".join(["0", _fmt(d["histogram"]["edges"][1]), _fmt(d["histogram"]["counts"][0])]) in section
    html = (out / "report.html").read_text()
    part = html[html.index("<h2>Accuracy on data</h2>"):html.index("<h2>Layers</h2>")]
    assert f"<td>{_fmt(d['max_abs_error'])}</td>" in part
    assert f"{100 * d['decision']['agreement']:.2f}%" in part
    assert "id='plot-deviation'" in part and "data:image/png;base64," in part
    if d["labels"]:
        assert f"<td>{_fmt(d['labels']['fixed'])}</td>" in part


def test_saturated_inputs_are_counted_and_warned(tmp_path, capsys):
    x = _events(50, seed=9)
    x[0, 2], x[1, 2], x[4, 7] = 100.0, -50.0, 40.0   # float_mlp's input is fixed<16,6>: [-32, 32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / "float_mlp.h5"), "-o", str(out), "--data", str(tmp_path / "x.npy")]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "3 input values in 3 of 50 samples" in err
    assert "element (2): 2, element (7): 1" in err
    d = json.loads((out / "report.json").read_text())["data_accuracy"]
    assert d["saturation"]["values"] == 3 and d["saturation"]["samples"] == 3
    assert d["saturation"]["elements"] == [{"element": [2], "count": 2}, {"element": [7], "count": 1}]
    assert d["within_bound"] is None   # the bound does not cover saturated inputs
    md = (out / "report.md").read_text()
    assert "| (2) | 2 |" in md and "| (7) | 1 |" in md


def test_report_data_uses_the_model_of_run_json(tmp_path, capsys):
    out = tmp_path / "fw"
    model = tmp_path / "m.h5"
    model.write_bytes((MODELS / "float_mlp.h5").read_bytes())
    assert main(["compile", str(model), "-o", str(out)]) == 0
    assert "data_accuracy" not in json.loads((out / "report.json").read_text())
    x = _events(40, seed=4)
    np.save(tmp_path / "x.npy", x)
    assert main(["report", str(out), "--data", str(tmp_path / "x.npy")]) == 0
    report = json.loads((out / "report.json").read_text())
    assert validate(report) == []
    ref = _keras(model).predict(x, verbose=0).reshape(len(x), -1)
    fixed = nnfpga.emulate(out, x).reshape(len(x), -1)
    assert report["data_accuracy"]["max_abs_error"] == float(np.abs(fixed - ref).max())
    assert "## Accuracy on data" in (out / "report.md").read_text()
    assert "plot-deviation" in (out / "report.html").read_text()
    assert manifest_problems(out) == []   # report.* are files the later verbs rewrite
    capsys.readouterr()
    model.unlink()
    assert main(["report", str(out), "--data", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert f"{model}: the model" in err and "is gone" in err and "nnfpga compile MODEL ... --data" in err


def test_bad_data_is_a_user_error_naming_the_file(tmp_path, capsys):
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((5, 7)))
    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / "float_mlp.h5"), "-o", str(out), "--data", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert str(wrong) in err and "(7,)" in err and "(16,)" in err and "Traceback" not in err
    assert not out.exists()   # nothing half-written
    nan = tmp_path / "nan.npy"
    x = _events(5)
    x[3, 1] = np.nan
    np.save(nan, x)
    assert main(["compile", str(MODELS / "float_mlp.h5"), "-o", str(out), "--data", str(nan)]) == 2
    err = capsys.readouterr().err
    assert str(nan) in err and "sample 3, feature (1,)" in err and not out.exists()
    with pytest.raises(UserError, match="data=: samples must be"):
        nnfpga.compile(MODELS / "float_mlp.h5", outdir=tmp_path / "fw2", data=np.array([[np.inf] * 16]))


def test_banked_ensemble_runs_each_sample_on_its_bank(tmp_path, capsys):
    ringer = ROOT / "benchmarks" / "electron_ringer" / "models" / "qkeras"
    models = [ringer / f"et0_eta{b}.h5" for b in range(3)]
    rng = np.random.default_rng(0)
    x = rng.gamma(1.0, 0.15, (90, 100)).clip(0, 0.99).astype(np.float32)
    bank = rng.integers(0, 3, len(x))
    np.savez(tmp_path / "x.npz", x=x, bank=bank)
    out = tmp_path / "fw"
    assert main(["compile", *map(str, models), "-o", str(out), "--data", str(tmp_path / "x.npz")]) == 0
    d = json.loads((out / "report.json").read_text())["data_accuracy"]
    ref = np.zeros((len(x), 1))
    for b, m in enumerate(models):
        ref[bank == b] = _qkeras(m).predict(x[bank == b], verbose=0).reshape(-1, 1)
    fixed = nnfpga.emulate(out, x, bank).reshape(len(x), -1)
    assert d["max_abs_error"] == np.abs(fixed - ref).max() == 0.0   # QKeras banks: bit-exact, each its own
    assert d["saturation"]["values"] == 0
    # a bank would not match: the same samples all on bank 0 differ from the ensemble's answer
    assert np.abs(_qkeras(models[0]).predict(x, verbose=0).reshape(-1, 1) - ref).max() > 0
    np.save(tmp_path / "nobank.npy", x)
    capsys.readouterr()
    assert main(["report", str(out), "--data", str(tmp_path / "nobank.npy")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "nobank.npy") in err and "banked ensemble of 3" in err and "'bank'" in err


def test_python_api_data(tmp_path):
    x = _events(30, seed=6)
    result = nnfpga.compile(MODELS / "float_mlp.h5", outdir=tmp_path / "fw", data=x)
    ref = _keras(MODELS / "float_mlp.h5").predict(x, verbose=0).reshape(len(x), -1)
    assert result.report["data_accuracy"]["max_abs_error"] == float(
        np.abs(nnfpga.emulate(tmp_path / "fw", x).reshape(len(x), -1) - ref).max())


def test_verify_results_go_into_the_report(tmp_path):
    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / "float_mlp.h5"), "-o", str(out), "--html"]) == 0
    x = _events(20, seed=7)
    np.save(tmp_path / "x.npy", x)
    assert main(["verify", str(out), "--input", str(tmp_path / "x.npy"), "--sim", "csim"]) == 0
    summary = json.loads((out / "verify.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert validate(report) == []
    v = report["verification"]
    assert v["samples"] == 20 and v["bit_exact"] is True and v["data"] == str(tmp_path / "x.npy")
    r = summary["results"]["csim"]
    assert v["simulators"]["csim"] == {**r, "samples_per_second": round(20 / r["seconds"], 1)}
    md = (out / "report.md").read_text()
    assert "## Verification" in md and f"| csim | 20 | 0 | 0 | {_fmt(r['seconds'])} |" in md
    html = (out / "report.html").read_text()
    assert "<h2>Verification</h2>" in html and "<b>bit-exact</b>" in html
    assert manifest_problems(out) == []


def test_compiling_without_data_imports_no_framework(tmp_path):
    code = ("import sys; from nnfpga.compiler.cli import main;"
            f"assert main(['compile', {str(MODELS / 'qmlp.h5')!r}, '-o', {str(tmp_path / 'fw')!r}]) == 0;"
            "bad = [m for m in ('tensorflow', 'keras', 'tf_keras', 'qkeras', 'torch', 'onnxruntime') "
            "if m in sys.modules]; sys.exit(f'imported {bad}' if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)


def test_verify_refuses_a_corrupt_report_before_simulating(tmp_path, capsys):
    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / "float_mlp.h5"), "-o", str(out)]) == 0
    np.save(tmp_path / "x.npy", _events(5))
    (out / "report.json").write_text('{"clock_mhz": NaN}')
    capsys.readouterr()
    assert main(["verify", str(out), "--input", str(tmp_path / "x.npy"), "--sim", "csim"]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'report.json'}: corrupt report" in err and "NaN is not a JSON number" in err
    assert not (out / "verify.json").exists()
