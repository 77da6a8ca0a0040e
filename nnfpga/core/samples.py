"""The sample files that ``emulate``, ``verify`` and calibration read: ``.npy`` (an array)
or ``.npz`` (array ``x``, optionally ``bank`` for a banked ensemble).

Here at the bottom because the configuration (calibration data) and the verbs both read
them; every problem with a file is a `UserError` naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnfpga.core.errors import UserError

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def load_samples(path: str | Path) -> np.ndarray:
    """Float samples from ``.npy`` or ``.npz`` (key ``x``, or its only array)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:  # a directory, no permission
        raise UserError(f"{path}: cannot be read ({e.strerror})") from None
    if head != _NPY_MAGIC and head[:4] != _ZIP_MAGIC:
        # numpy would guess "pickled data" for any other file, which misleads
        raise UserError(f"{path}: not a .npy/.npz file (it has neither signature); save the samples "
                        "with numpy.save (an array) or numpy.savez (an array 'x')")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: not a readable .npy/.npz file ({e})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        keys = list(data.keys())
        key = "x" if "x" in keys else (keys[0] if len(keys) == 1 else None)
        if key is None:
            raise UserError(f"{path}: has arrays {keys}; name the input array 'x'")
        data = data[key]
    if data.dtype.kind not in "fiu":
        raise UserError(f"{path}: holds {data.dtype} data; numeric samples are needed")
    return np.asarray(data, dtype=np.float64)


def load_bank(path: str | Path) -> np.ndarray | None:
    """The samples' bank indices (array ``bank`` of an ``.npz``), for a banked ensemble;
    None when the file has none."""
    path = Path(path)
    if path.suffix != ".npz" or not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return np.asarray(data["bank"]) if "bank" in data else None
