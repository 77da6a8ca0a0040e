"""Issue 19's small things, each checked where the old behaviour failed: names (--name
for the HLS top, ONNX exporters' generic graph names), --version, the model-format list,
the pruning lines, the Input layer's Fmax, the one-line headline, and each verb naming
what it wrote and the next command."""

from __future__ import annotations

import importlib.util
import io
import json
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnfpga.backends.report.markdown import report_markdown
from nnfpga.backends.report.text import print_summary
from nnfpga.compiler.adjustments import optimisation_lines
from nnfpga.compiler.cli import main
from nnfpga.compiler.frontends.onnx import onnx_to_ir
from nnfpga.core.version import __version__
from tests.conftest import MODELS, ROOT


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    """ternary_mlp compiled as the core trig_tern; the console output of compile."""
    out = tmp_path_factory.mktemp("named") / "fw"
    import contextlib
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["compile", str(MODELS / "ternary_mlp.h5"), "--name", "trig_tern", "-o", str(out)]) == 0
    return out, buf.getvalue()


# ----------------------------------------------------------------------------- names
def test_name_names_the_hls_top_function_its_files_and_the_headline(named):
    out, console = named
    hls = out / "hls"
    assert {"trig_tern.cpp", "trig_tern.h", "tb_trig_tern.cpp"} <= {p.name for p in hls.iterdir()}
    assert not list(hls.glob("ternary_mlp*")) and not list(hls.glob("tb_ternary_mlp*"))
    tcl = (hls / "build_prj.tcl").read_text()
    assert re.search(r"^\s*set_top trig_tern$", tcl, re.M) and "open_project -reset trig_tern_prj" in tcl
    assert "void trig_tern(" in (hls / "trig_tern.h").read_text()
    assert json.loads((out / "report.json").read_text())["hls"]["top"] == "trig_tern"
    assert console.splitlines()[0].startswith("trig_tern (model ternary_mlp) on xcvu9p at 240 MHz")


def _onnx_model(graph_name: str) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.eye(4, 3, dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], graph_name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("graph_name, expected", [
    ("main_graph", "muon_net"), ("torch_jit", "muon_net"), ("torch-jit-export", "muon_net"), ("Main_Graph", "muon_net"),
    ("calo_tagger", "calo_tagger"),       # a real name stays
])
def test_onnx_exporters_generic_graph_names_give_way_to_the_file_stem(graph_name, expected, tmp_path):
    path = tmp_path / "muon_net.onnx"
    onnx.save(_onnx_model(graph_name), path)
    assert onnx_to_ir(path).name == expected


# ----------------------------------------------------------------------------- --version, formats
def test_version_prints_the_package_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"nnfpga {__version__}"


def test_unknown_model_format_lists_every_supported_one(tmp_path, capsys):
    model = tmp_path / "net.tflite"
    model.write_bytes(b"\0" * 16)
    assert main(["compile", str(model), "-o", str(tmp_path / "fw")]) == 2
    err = capsys.readouterr().err
    assert "unknown model format '.tflite'" in err
    for fmt in (".h5", ".keras", ".onnx", ".pt", ".pth", ".json with --weights"):
        assert fmt in err, fmt


# ----------------------------------------------------------------------------- pruning lines
def _pruning(scope: str, target: float, layers: list[tuple]) -> dict:
    return {"pruning": {"scope": scope, "target": target, "skipped_layers": [],
                        "weights_pruned": sum(x[2] for x in layers),
                        "layers": [{"layer": n, "node": n, "weights": w, "zero_before": 0, "zero_after": p,
                                    "pruned": p, "sparsity": p / w, "target": t} for n, w, p, t in layers]}}


def test_pruning_with_only_a_layer_target_says_so():
    lines = optimisation_lines(_pruning("layer", 0.0, [("fc1", 1024, 512, 0.5), ("fc2", 64, 0, None)]))
    assert lines[0] == "pruning: 512 of 1,088 weights set to zero (no global target; per-layer targets only)"
    assert "target 0" not in "\n".join(lines)
    assert re.search(r"fc1 512 of 1,024 zeroed, sparsity 0\.0% -> 50\.0% \(its own target 50%\)", lines[1])
    assert len(lines) == 2   # fc2: nothing asked, nothing done


def test_pruning_with_a_global_target_names_it_and_each_layers_share():
    lines = optimisation_lines(_pruning("global", 0.5, [("fc1", 100, 70, 0.5), ("fc2", 100, 30, 0.5)]))
    assert lines[0].startswith("pruning: 100 of 200 weights set to zero (global target 50% sparsity")
    assert "sparsity 0.0% -> 70.0% (target 50%)" in lines[1] and "-> 30.0% (target 50%)" in lines[2]


# ----------------------------------------------------------------------------- report
def test_the_input_layer_has_no_fmax_in_report_md(named):
    out, _ = named
    md = report_markdown(json.loads((out / "report.json").read_text()))
    row = next(line for line in md.splitlines() if line.startswith("| input | Input |"))
    assert row.split("|")[-3].strip() == "-"
    assert "6,667" not in md


def test_headline_is_one_line_when_piped(named, capsys):
    out, _ = named
    report = json.loads((out / "report.json").read_text())
    report["top"] = "a_rather_long_core_name_for_the_level1_calorimeter_tau_trigger_" + "x" * 40
    capsys.readouterr()
    print_summary(report, out, compact=True)
    first = capsys.readouterr().out.splitlines()[0]
    assert len(first) > 120     # longer than the console width, yet not wrapped
    assert first.startswith(report["top"]) and re.search(r"latency \d+ cycles = [0-9.]+ ns", first)
    assert first.rstrip().endswith("MHz")


# ----------------------------------------------------------------------------- next steps
def test_compile_names_what_it_wrote_and_the_next_commands(named):
    out, console = named
    assert f"wrote {out}/: " in console and "hls/, ir.json, report.json" in console
    assert f"next: nnfpga report {out} --synth" in console and f"nnfpga verify {out} --input x.npy" in console


def test_report_names_report_html_and_the_next_commands(named, capsys):
    out, _ = named
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out / 'report.html'}" in text and (out / "report.html").is_file()
    assert f"nnfpga report {out} --synth" in text and f"nnfpga verify {out} --input" in text


def test_emulate_names_the_next_command(named, tmp_path, capsys):
    out, _ = named
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((3, 16), np.float32))
    capsys.readouterr()
    assert main(["emulate", str(out), "--input", str(x), "--output", str(tmp_path / "y.npy")]) == 0
    assert f"next: nnfpga verify {out} --input {x}" in capsys.readouterr().out


def test_verify_names_what_it_wrote_and_the_next_command(named, tmp_path, capsys):
    out, _ = named
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((3, 16), np.float32))
    capsys.readouterr()
    assert main(["verify", str(out), "--input", str(x), "--sim", "csim"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out / 'verify.json'}" in text and (out / "verify.json").is_file()
    assert f"next: nnfpga report {out} --synth" in text


def test_config_names_the_next_command_without_spoiling_the_yaml(tmp_path, capsys):
    model = str(MODELS / "qmlp.h5")
    assert main(["config", model]) == 0
    cap = capsys.readouterr()
    assert "next:" not in cap.out and "--config nnfpga.yml -o fw" in cap.err
    target = tmp_path / "c.yml"
    assert main(["config", model, "-o", str(target)]) == 0
    assert f"next: nnfpga compile {model} --config {target} -o fw" in capsys.readouterr().out


def test_demo_ends_by_naming_its_folder_and_the_next_commands(monkeypatch, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("nnfpga_demo", ROOT / "examples" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    ran = []
    monkeypatch.setattr(demo, "ROOT", tmp_path)
    monkeypatch.setattr(demo, "OUT", tmp_path / "fw-demo")
    monkeypatch.setattr(demo, "run", lambda *args: ran.append(args[0]))
    assert demo.main() == 0
    assert ran == ["compile", "verify", "report"]
    text = capsys.readouterr().out
    assert "the firmware is in fw-demo/" in text and "fw-demo/report.html" in text
    assert "nnfpga report fw-demo --synth" in text and "nnfpga verify fw-demo --input" in text
