"""The command line: compile/emulate/verify/report, clean errors, atomic output."""

from __future__ import annotations

import json
import subprocess
import tempfile
import sys

import numpy as np
import pytest

from nnfpga.compiler.cli import main
from tests.conftest import MODELS, ROOT


def _events(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 2.0, (n, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def fw(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "fw"
    assert main(["compile", str(MODELS / "qmlp.h5"), "--target", "xcvu9p-flga2104-2L-e",
                 "--clock", "240MHz", "-o", str(out)]) == 0
    return out


def test_compile_writes_the_whole_tree(fw):
    for path in ("ir.json", "report.json", "verilog", "vhdl", "hls"):
        assert (fw / path).exists(), path
    assert list((fw / "verilog").glob("*.v")) and list((fw / "vhdl").glob("*.vhd"))
    report = json.loads((fw / "report.json").read_text())
    assert report["part"] == "xcvu9p-flga2104-2L-e" and report["clock_mhz"] == 240.0
    assert report["latency"]["cycles"] > 0
    assert report["latency"]["ns"] == pytest.approx(report["latency"]["cycles"] * 1000 / 240, abs=1e-3)
    assert report["ii_cycles"] == 1
    assert set(report["resources"]["estimate"]) == {"dsp", "lut", "ff", "bram"}
    assert [layer["name"] for layer in report["layers"]][0] == "input"
    assert not list(fw.parent.glob(".fw.*")), "temporary directories left behind"


def test_emulate_matches_api(fw, tmp_path):
    import nnfpga
    x = _events(500)
    np.save(tmp_path / "x.npy", x)
    assert main(["emulate", str(fw), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), nnfpga.emulate(fw, x))


def test_verify_csim_is_bit_exact_and_writes_json(fw, tmp_path, capsys):
    np.savez(tmp_path / "events.npz", x=_events(300, seed=1))
    assert main(["verify", str(fw), "--data", str(tmp_path / "events.npz"), "--sim", "csim"]) == 0
    summary = json.loads((fw / "verify.json").read_text())
    assert summary["samples"] == 300
    assert summary["results"]["csim"]["mismatches"] == 0
    assert "bit-exact" in capsys.readouterr().out


def test_report_prints_layers(fw, capsys):
    assert main(["report", str(fw)]) == 0
    out = capsys.readouterr().out
    assert "fc1" in out and "latency" in out and "DSP" in out


@pytest.mark.parametrize("args, message", [
    (["compile", "missing.h5", "-o", "OUT"], "no such file"),
    (["compile", str(MODELS / "qmlp.h5"), "--target", "xc9999", "-o", "OUT"], "unknown part 'xc9999'; known parts: xc7vx690t, xc7z020"),
    (["compile", str(MODELS / "qmlp.h5"), "--clock", "fast", "-o", "OUT"], "cannot read clock 'fast'"),
    (["emulate", "nowhere", "--input", "x.npy", "--output", "y.npy"], "not an nnfpga output directory"),
])
def test_user_errors_exit_2_without_traceback(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "OUT").exists()


def test_sample_file_that_is_not_numpy_is_named(fw, tmp_path, capsys):
    (tmp_path / "events.npy").write_text("px,py\n1,2\n")
    assert main(["emulate", str(fw), "--input", str(tmp_path / "events.npy"), "--output", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert "events.npy: not a .npy/.npz file" in err and "pickle" not in err and "Traceback" not in err
    assert not (tmp_path / "y.npy").exists()


def test_unsupported_layer_leaves_no_output(tmp_path, capsys):
    import tf_keras as keras
    m = keras.Sequential([keras.Input((4, 8)), keras.layers.LSTM(3, name="my_lstm"), keras.layers.Dense(2)])
    m.save(tmp_path / "lstm.h5")
    assert main(["compile", str(tmp_path / "lstm.h5"), "-o", str(tmp_path / "out")]) == 2
    assert "'my_lstm' (LSTM)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_failed_compile_keeps_previous_output(fw, tmp_path, monkeypatch, capsys):
    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / "ternary_mlp.h5"), "-o", str(out)]) == 0
    before = (out / "ir.json").read_text()

    def broken(*a, **k):
        raise RuntimeError("backend crashed")
    import nnfpga.backends.hls as hls
    monkeypatch.setattr(hls, "write_hls", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "crash"))
    (tmp_path / "crash").mkdir()
    assert main(["compile", str(MODELS / "qmlp.h5"), "-o", str(out)]) == 3
    assert (out / "ir.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crash", "fw"]
    # a bug of ours is reported as one: a short message, the traceback in a file it names
    err = capsys.readouterr().err
    assert "internal error (a bug in nnfpga" in err and "RuntimeError: backend crashed" in err
    assert "Traceback" not in err
    (crash,) = (tmp_path / "crash").iterdir()
    assert str(crash) in err and "backend crashed" in crash.read_text() and "Traceback" in crash.read_text()


def test_refuses_to_overwrite_foreign_directory(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    assert main(["compile", str(MODELS / "qmlp.h5"), "-o", str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


def test_console_script_runs():
    exe = ROOT / ".venv" / "bin" / "nnfpga"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "nnfpga"]
    r = subprocess.run([*cmd, "compile", "nope.h5", "-o", "x"], capture_output=True, text=True)
    assert r.returncode == 2 and "no such file" in r.stderr


def test_verify_reports_a_corrupted_firmware(tmp_path, capsys):
    """verify can fail: one weight changed in the generated C++ gives mismatches, exit 1."""
    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / "qmlp.h5"), "-o", str(out)]) == 0
    header = out / "hls" / "weights" / "w_fc1.h"
    text = header.read_text()
    header.write_text(text.replace("-0.71875,", "-0.6875,", 1))
    assert header.read_text() != text
    np.save(tmp_path / "x.npy", _events(2000, seed=5))
    assert main(["verify", str(out), "--input", str(tmp_path / "x.npy"), "--sim", "csim"]) == 1
    summary = json.loads((out / "verify.json").read_text())
    assert summary["results"]["csim"]["mismatches"] > 0 and not summary["bit_exact"]
    assert "MISMATCH" in capsys.readouterr().out


def test_global_reuse_flag_sets_every_layer_and_config_entries_override_it(tmp_path, capsys):
    cfg = tmp_path / "nnfpga.yml"
    cfg.write_text("version: 1\nlayers:\n  fc2:\n    reuse_factor: 2\n")
    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / "qmlp.h5"), "--reuse", "4", "--config", str(cfg), "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    reuse = {layer["name"]: layer["reuse_factor"] for layer in report["layers"] if layer["op"] == "Dense"}
    assert reuse == {"fc1": 4, "fc2": 2, "fc3": 4, "output": 4}
    assert report["ii_cycles"] == 4
    rtl = json.loads((out / "rtl.json").read_text())
    assert {layer["name"]: layer["ii_cycles"] for layer in rtl["layers"] if layer["name"] in reuse} == reuse


@pytest.mark.parametrize("reuse,defaults,message", [
    ("0", None, "argument --reuse: must be a whole number from 1 to 1,000,000, got '0'"),
    ("4", "reuse_factor: 2", "--reuse 4 conflicts with defaults.reuse_factor: 2"),
])
def test_global_reuse_flag_errors(tmp_path, capsys, reuse, defaults, message):
    args = ["compile", str(MODELS / "qmlp.h5"), "--reuse", reuse, "-o", str(tmp_path / "fw")]
    if defaults:
        (tmp_path / "c.yml").write_text(f"version: 1\ndefaults:\n  {defaults}\n")
        args += ["--config", str(tmp_path / "c.yml")]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "fw").exists()


def test_compile_writes_the_wrappers_asked_for_into_the_core_file_and_scripts(tmp_path, capsys):
    out = tmp_path / "fw"
    assert main(["compile", str(MODELS / "ternary_mlp.h5"), "--axi-stream", "--bunch-crossing",
                 "--clock", "320MHz", "-o", str(out)]) == 0
    wrappers = json.loads((out / "wrappers.json").read_text())
    assert wrappers["bunch_crossing"]["words_per_bx"] == 8
    files = [f for key in ("axi_stream", "bunch_crossing") for f in wrappers[key]["files"].values()]
    assert len(files) == 4 and all((out / f).is_file() for f in files)
    core = next(out.glob("*.core")).read_text()
    synth = (out / "vivado" / "synth.tcl").read_text()
    for f in files:
        assert f in core and f in synth, f
    capsys.readouterr()
    assert main(["compile", str(MODELS / "qmlp.h5"), "--reuse", "8", "--bunch-crossing", "--clock", "240MHz",
                 "-o", str(tmp_path / "fw2")]) == 2
    assert "II" in capsys.readouterr().err and not (tmp_path / "fw2").exists()


def test_compile_names_the_model_in_its_last_line(tmp_path, capsys):
    # the last lines: the model, what was written, the next commands (tests/test_small_things.py)
    model = MODELS / "ternary_mlp.h5"
    assert main(["compile", str(model), "-o", str(tmp_path / "one")]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-3]
    assert last.startswith(f"compiled {model} -> {tmp_path / 'one'} in "), last
    assert main(["compile", str(model), str(model), "-o", str(tmp_path / "two")]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-3]
    assert last.startswith(f"compiled 2 models as banks ({model}, {model}) -> "), last
