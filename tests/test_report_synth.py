"""Yosys synthesis against the analytic estimate, ``nnfpga report --synth``, and report.html
in a headless browser (slow: ``pytest -m slow tests/test_report_synth.py``).

The calibration test synthesises the RTL issue's target models -- the QKeras trigger CNN
(9x16x1, four 3x3 convolutions, 4-bit quantisers), the ternary MLP and the float-trained
tanh MLP, each at reuse 1 and 4 -- plus the shipped QKeras MLP and random MLPs of every
weight kind, two Yosys runs at a time, and prints per design the estimate, the Yosys
figures and their ratio: DSPs and BRAMs must be equal, LUTs and FFs within +-25%.
Measured once on the 2-core machine (Yosys CPU time): CNN R=4 ~5 min, CNN R=1 ~3.5 min,
qmlp ~3 min, tanh MLP R=1 ~2 min, R=4 ~1.5 min, the rest under a minute each: about 9
minutes for the file.  The shipped float_mlp is left out: its two tanh tables are read by
64 and 32 ports and the LUT-ROMs add ~4.5 CPU-minutes (measured once: DSP 924 = 924, LUT
30,274 vs 27,697 estimated, FF 43,542 vs 43,733).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from nnfpga.backends.report.estimator import estimate_netlist
from nnfpga.backends.report.schema import validate
from nnfpga.backends.rtl import lower, write_rtl
from nnfpga.compiler.cli import main
from nnfpga.compiler.driver import load_firmware
from nnfpga.synth.firmware import synthesise
from tests.conftest import MODELS
from tests.irmodels import random_mlp

# one worker runs the whole file: the calibration fixture is ~9 minutes of Yosys
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("synth")]

TOLERANCE = 0.25
RANDOM = [("fixed", [16, 12, 6], "linear"), ("po2", [12, 10, 6], "relu"), ("binary", [10, 8, 4], "linear"),
          ("ternary", [16, 16, 8], "linear"), ("fixed", [8, 6, 3], "tanh"), ("fixed", [8, 6, 1], "sigmoid")]


def _design(tmp: Path, name: str, graph=None, model: Path | None = None):
    out = tmp / name
    if model is not None:
        assert main(["compile", str(model), "--target", "xcvu9p", "-o", str(out)]) == 0
        graph = load_firmware(out)
        top = json.loads((out / "rtl.json").read_text())["top"]
    else:
        top = write_rtl(graph, out)["top"]
    return name, out, top, estimate_netlist(lower(graph)).total


@pytest.fixture(scope="module")
def rtl_targets(tmp_path_factory):
    """The RTL issue's target models (tests.test_rtl_models): QKeras trigger CNN and
    float tanh MLP, through the Keras frontend."""
    from nnfpga.compiler.pipeline import build_graph
    from tests.rtl_models import keras_tanh_mlp, qkeras_trigger_cnn
    d = tmp_path_factory.mktemp("keras")
    return {"cnn": build_graph(qkeras_trigger_cnn(d / "cnn.h5")), "tanh": build_graph(keras_tanh_mlp(d / "tanh.h5"))}


@pytest.fixture(scope="module")
def calibration(tmp_path_factory, rtl_targets):
    import copy

    from tests.rtl_models import set_reuse
    tmp = tmp_path_factory.mktemp("calib")
    designs = []  # the longest synthesis runs first: two workers end about together
    for name, reuse in (("cnn", 4), ("cnn", 1)):
        designs.append(_design(tmp, f"{name}_r{reuse}", graph=set_reuse(copy.deepcopy(rtl_targets[name]), reuse)))
    designs.append(_design(tmp, "qmlp", model=MODELS / "qmlp.h5"))
    for name, reuse in (("tanh", 1), ("tanh", 4)):
        designs.append(_design(tmp, f"{name}_r{reuse}", graph=set_reuse(copy.deepcopy(rtl_targets[name]), reuse)))
    # the ternary MLP at reuse 1; at reuse 4 it is the same design (no multiplication to
    # share), which test_ternary_reuse_4_is_the_same_design checks
    designs.append(_design(tmp, "ternary_mlp", model=MODELS / "ternary_mlp.h5"))
    for i, (kind, sizes, act) in enumerate(RANDOM):
        g = random_mlp(sizes, seed=10 + i, weight_kind=kind, final_activation=act, name=f"r{i}_{kind}")
        designs.append(_design(tmp, f"r{i}_{kind}_{act}", graph=g))
    # multiplier units (reuse 4) with signed x signed operands
    from nnfpga.ir.fixed import FixedType, Overflow, Rounding
    g = random_mlp([16, 12, 6], seed=30, weight_bits=10, act_bits=12, act_int=4, reuse_factor=4, name="r_reuse4",
                   input_type=FixedType(16, 6, True, Rounding.RND, Overflow.SAT))
    designs.append(_design(tmp, "r_fixed_reuse4", graph=g))
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [(d, pool.submit(synthesise, d[1], d[2], "xcup", 240.0, "verilog", 1800)) for d in designs]
        results = [(d, f.result()) for d, f in futures]
    wall = time.monotonic() - start
    lines = [f"{'design':<22} {'':>9} {'DSP':>6} {'LUT':>7} {'FF':>7} {'CARRY4':>7} {'levels':>6} {'Fmax':>7} "
             f"{'Yosys s':>8}"]
    for (name, _, _, est), syn in results:
        e = est.resources()
        lines.append(f"{name:<22} {'estimate':>9} {e['dsp']:>6} {e['lut']:>7} {e['ff']:>7} {est.carry4:>7} "
                     f"{est.levels:>6}")
        lines.append(f"{'':<22} {'Yosys':>9} {syn['dsp']:>6} {syn['lut']:>7} {syn['ff']:>7} {syn['carry4']:>7} "
                     f"{syn['timing']['logic_levels']:>6} {syn['timing']['fmax_mhz']:>7} {syn['yosys_seconds']:>8}")
        lines.append(f"{'':<22} {'ratio':>9} {'':>6} {e['lut'] / syn['lut']:>7.2f} {e['ff'] / syn['ff']:>7.2f} "
                     f"{est.carry4 / max(syn['carry4'], 1):>7.2f}")
    lines.append(f"wall time of all synthesis runs (2 at a time): {wall:.0f} s")
    print("\n" + "\n".join(lines))
    return results


def test_estimate_matches_yosys(calibration):
    bad = []
    for (name, _, _, est), syn in calibration:
        e = est.resources()
        if e["dsp"] != syn["dsp"]:
            bad.append(f"{name}: DSP {e['dsp']} vs Yosys {syn['dsp']}")
        for k in ("lut", "ff"):
            if abs(e[k] / syn[k] - 1) > TOLERANCE:
                bad.append(f"{name}: {k.upper()} {e[k]} vs Yosys {syn[k]} (ratio {e[k] / syn[k]:.2f})")
        if e["bram"] != syn["bram"]:
            bad.append(f"{name}: BRAM {e['bram']} vs Yosys {syn['bram']}")
    assert not bad, "\n".join(bad)


def test_calibration_covers_the_rtl_target_models(calibration):
    names = {d[0] for d, _ in calibration}
    assert {"cnn_r1", "cnn_r4", "tanh_r1", "tanh_r4", "ternary_mlp", "qmlp"} <= names


def test_ternary_reuse_4_is_the_same_design():
    """No multiplication to share: the ternary MLP at reuse 4 is the reuse-1 design."""
    from nnfpga.backends.rtl import print_verilog
    from tests.rtl_models import set_reuse
    from tests.test_rtl import example_graph
    def logic(reuse: int) -> list[str]:  # the Verilog without its comments (they name the reuse asked)
        text = print_verilog(lower(set_reuse(example_graph("ternary_mlp"), reuse)))
        return [line for line in text.splitlines() if not line.lstrip().startswith("//")]
    one, four = logic(1), logic(4)
    assert len(one) > 1000 and one == four


def test_qmlp_synthesis_time_is_recorded(calibration):
    ((name, _, _, _), syn), = [c for c in calibration if c[0][0] == "qmlp"]
    assert syn["dsp"] > 100
    print(f"\nYosys synth_xilinx on qmlp: {syn['yosys_seconds']:.0f} s")
    assert syn["yosys_seconds"] < 900


@pytest.fixture(scope="module")
def synth_fw(tmp_path_factory):
    """A small design through ``nnfpga report --synth`` (Verilog and VHDL)."""
    out = tmp_path_factory.mktemp("cli") / "fw"
    assert main(["compile", str(MODELS / "ternary_mlp.h5"), "--target", "xcku115", "-o", str(out)]) == 0
    return out


def test_report_synth_cli_stores_both_runs(synth_fw, capsys):
    capsys.readouterr()
    assert main(["report", str(synth_fw), "--synth"]) == 0
    cap = capsys.readouterr()
    out = cap.out
    assert "Yosys (verilog)" in out and "Yosys (vhdl)" in out and "estimate/Yosys" in out
    assert "synthesis finished" in cap.err
    report = json.loads((synth_fw / "report.json").read_text())
    assert validate(report) == []
    syn = report["resources"]["synthesis"]
    assert report["synth_family"] == "xcu" and "synth_xilinx -family xcu" in syn["verilog"]["command"]
    v, h = syn["verilog"], syn["vhdl"]
    assert v["dsp"] == h["dsp"] == report["resources"]["estimate"]["dsp"]
    for k in ("lut", "ff"):  # GHDL's netlist of the VHDL synthesises to about the same
        assert abs(v[k] / h[k] - 1) < 0.1, (k, v[k], h[k])
    assert report["timing"]["synthesis"]["fmax_mhz"] > 0
    assert (synth_fw / "synth" / "verilog" / "yosys.log").exists()
    assert "Yosys (verilog)" in (synth_fw / "report.md").read_text()


def test_report_synth_errors_are_clear(synth_fw, capsys):
    assert main(["report", str(synth_fw), "--synth", "--no-vhdl", "--timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert "did not finish within 1 s" in err and "Traceback" not in err


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_report_html_renders_its_plots_in_chromium(synth_fw, tmp_path):
    assert _chromium() is not None, "chromium is not installed: run `make setup` as root (scripts/setup.sh)"
    from PIL import Image
    synthesised = json.loads((synth_fw / "report.json").read_text())["resources"]["synthesis"] is not None
    html = synth_fw / "report.html"
    shot = tmp_path / "report.png"
    base = [_chromium(), *CHROME_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run(base + [f"--screenshot={shot}", "--window-size=1200,2000", html.as_uri()],
                   check=True, capture_output=True, timeout=120)
    dom = subprocess.run(base + ["--virtual-time-budget=5000", "--dump-dom", html.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    # every plot decoded to its real size (report.html records naturalWidth x naturalHeight on load)
    sizes = {}
    for tag in re.findall(r"<img[^>]*>", dom):
        i, d = re.search(r'id="([^"]+)"', tag), re.search(r'data-decoded="(\d+)x(\d+)"', tag)
        if i and d:
            sizes[i.group(1)] = f"{d.group(1)}x{d.group(2)}"
    assert set(sizes) == {"plot-latency", "plot-utilisation", "plot-resources"}, dom[:2000]
    for name, size in sizes.items():
        w, h = map(int, size.split("x"))
        assert w > 300 and h > 150, (name, size)
    # the screenshot is not blank and shows the plots' bar colours
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (2000, 1200)
    assert img.std() > 20
    def near(colour):
        return np.all(np.abs(img - np.array(colour)) < 30, axis=2)
    blue, orange = near((0x1F, 0x77, 0xB4)), near((0xFF, 0x7F, 0x0E))
    assert blue.sum() > 2000, "no estimate bars (blue) on the page"
    if synthesised:  # the utilisation plot has Yosys bars next to the estimate
        assert orange.sum() > 500, "no Yosys bars (orange) on the page"
    rows = np.nonzero(blue.any(axis=1))[0]
    assert rows.min() < 1000, "the first plot should be in the upper half of the page"
