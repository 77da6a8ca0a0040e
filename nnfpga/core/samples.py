"""The sample files that ``emulate``, ``verify`` and calibration read: ``.npy`` (an array)
or ``.npz`` (array ``x``, or its only array; optionally ``bank`` for a banked ensemble).

Here at the bottom because the configuration (calibration data) and the verbs both read
them; every problem with a file is a `UserError` naming it.  Files are never unpickled
(no object arrays), and an array's header is checked against the bytes that hold it and
against `MAX_SAMPLE_BYTES` before anything is allocated, so a forged header cannot make
nnfpga ask for terabytes.
"""

from __future__ import annotations

import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from nnfpga.core.errors import UserError

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP = b"PK\x05\x06"

#: The largest array a sample file may hold: 4 GiB, as stored and as float64 samples.
MAX_SAMPLE_BYTES = 4 << 30

_SAVE_HINT = "save the samples with numpy.save (an array) or numpy.savez (an array 'x')"


def _array_header(f: IO[bytes], where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, Fortran order and dtype an .npy stream declares, the stream left at the data."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        return np.lib.format.read_array_header_2_0(f)
    except (ValueError, EOFError, SyntaxError, TypeError, tokenize.TokenError) as e:
        raise UserError(f"{where}: not a readable .npy array (its header: {e}); {_SAVE_HINT}") from None


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return int(np.prod(shape, dtype=object)) * dtype.itemsize


def _check_declared(shape: tuple[int, ...], dtype: np.dtype, available: int, where: str) -> None:
    """Refuse object/string/complex arrays and sizes the file cannot hold, before reading."""
    if dtype.hasobject:
        raise UserError(f"{where}: holds Python objects (dtype {dtype}); nnfpga never unpickles "
                        f"sample files; {_SAVE_HINT} of a numeric dtype (float or integer)")
    if dtype.kind not in "fiub":
        raise UserError(f"{where}: holds {dtype} data; the samples must be real numbers "
                        "(a float or integer dtype), not strings, complex numbers or records")
    if any(d < 0 for d in shape):
        raise UserError(f"{where}: its header declares the impossible shape {shape}; {_SAVE_HINT}")
    declared = _nbytes(shape, dtype)
    as_float = _nbytes(shape, np.dtype(np.float64))   # what the samples become in memory
    if max(declared, as_float) > MAX_SAMPLE_BYTES:
        raise UserError(f"{where}: declares an array of shape {shape} ({as_float:,} bytes as float64 samples), "
                        f"above nnfpga's limit of {MAX_SAMPLE_BYTES:,} bytes per sample file")
    if declared > available:
        raise UserError(f"{where}: is truncated: its header declares shape {shape} of {dtype} "
                        f"({declared:,} bytes) but only {available:,} bytes follow")


def _read_npy(path: Path) -> np.ndarray:
    where = str(path)
    with open(path, "rb") as f:
        shape, _, dtype = _array_header(f, where)
        _check_declared(shape, dtype, path.stat().st_size - f.tell(), where)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{where}: not a readable .npy file ({e})") from None


def _npz_members(path: Path) -> dict[str, zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise UserError(f"{path}: a corrupt or truncated .npz (zip) file ({e}); {_SAVE_HINT}") from None
    return {i.filename.removesuffix(".npy"): i for i in infos if i.filename.endswith(".npy")}


def _read_npz_member(path: Path, info: zipfile.ZipInfo) -> np.ndarray:
    where = f"{path} (array {info.filename.removesuffix('.npy')!r})"
    try:
        with zipfile.ZipFile(path) as z, z.open(info) as f:
            shape, fortran, dtype = _array_header(f, where)
            _check_declared(shape, dtype, info.file_size - f.tell(), where)
            data = f.read(_nbytes(shape, dtype))
    # RuntimeError: an encrypted member; NotImplementedError: a compression zipfile lacks
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
        raise UserError(f"{where}: a corrupt or truncated .npz member ({e}); {_SAVE_HINT}") from None
    if len(data) != _nbytes(shape, dtype):
        raise UserError(f"{where}: is truncated: shape {shape} of {dtype} needs {_nbytes(shape, dtype):,} bytes, "
                        f"the file holds {len(data):,}")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _signature(path: Path) -> bytes:
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a .npy/.npz file")
    try:
        with open(path, "rb") as f:
            return f.read(6)
    except OSError as e:  # no permission
        raise UserError(f"{path}: cannot be read ({e.strerror})") from None


def _read_array(path: Path, key: str | None) -> np.ndarray | None:
    """The array of an .npy file, or the array ``key`` of an .npz (None: ``x`` or the only
    array).  None when ``key`` is given and the .npz has no such array."""
    head = _signature(path)
    if head == _NPY_MAGIC:
        return _read_npy(path) if key is None else None
    if head[:4] not in (_ZIP_MAGIC, _EMPTY_ZIP):
        # numpy would guess "pickled data" for any other file, which misleads
        raise UserError(f"{path}: not a .npy/.npz file (it has neither signature); {_SAVE_HINT}")
    members = _npz_members(path)
    if key is not None:
        return _read_npz_member(path, members[key]) if key in members else None
    if "x" in members:
        return _read_npz_member(path, members["x"])
    if len(members) == 1:
        return _read_npz_member(path, next(iter(members.values())))
    raise UserError(f"{path}: has arrays {sorted(members)} and none is named 'x'; name the input array 'x' "
                    "(numpy.savez(file, x=samples))")


def _check_values(a: np.ndarray, where: str) -> None:
    if a.ndim == 0:
        raise UserError(f"{where}: holds a single number (a 0-d array); the samples must be an array "
                        "with the batch first")
    if len(a) == 0:
        raise UserError(f"{where}: holds no samples (shape {a.shape}); give at least one")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            first = np.argwhere(bad)[0]
            feature = tuple(int(i) for i in first[1:])
            raise UserError(f"{where}: sample {int(first[0])}, feature {feature} is {a[tuple(first)]}; "
                            f"{int(bad.sum())} values are NaN or infinite, all must be finite numbers")


def load_samples(path: str | Path) -> np.ndarray:
    """Float samples from ``.npy`` or ``.npz`` (key ``x``, or its only array)."""
    path = Path(path)
    data = _read_array(path, None)
    _check_values(data, str(path))
    return np.asarray(data, dtype=np.float64)


def load_bank(path: str | Path) -> np.ndarray | None:
    """The samples' bank indices (array ``bank`` of an ``.npz``), for a banked ensemble;
    None when the file has none."""
    path = Path(path)
    if path.suffix != ".npz" or not path.exists():
        return None
    bank = _read_array(path, "bank")
    if bank is None:
        return None
    where = f"{path} (array 'bank')"
    if bank.dtype.kind not in "iu" and not (bank.dtype.kind == "f" and np.all(bank == np.round(bank))):
        raise UserError(f"{where}: holds {bank.dtype} values; bank indices must be integers 0, 1, ...")
    if bank.ndim != 1:
        raise UserError(f"{where}: has shape {bank.shape}; bank indices are one integer per sample "
                        "(a 1-d array as long as x)")
    return bank.astype(np.int64)
