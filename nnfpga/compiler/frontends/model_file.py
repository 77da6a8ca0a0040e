"""The first check of every model file: it exists, is a regular file and is not larger
than its format's limit, before a byte of it is read."""

from __future__ import annotations

from pathlib import Path

from nnfpga.core.errors import UserError


def check_model_file(path: Path, kind: str, max_bytes: int) -> int:
    """The size of ``path`` (a ``kind`` file, e.g. "an ONNX model file (.onnx)"), refused
    when it is missing, not a file, or over ``max_bytes``."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not path.is_file():
        raise UserError(f"{path}: not a file; {kind} is needed")
    size = path.stat().st_size
    if size > max_bytes:
        raise UserError(f"{path}: the file has {size} bytes, more than the {max_bytes} bytes "
                        f"({max_bytes >> 20} MiB) nnfpga reads from {kind}; trigger networks fit in a few "
                        "megabytes: check that this is the right file")
    return size
