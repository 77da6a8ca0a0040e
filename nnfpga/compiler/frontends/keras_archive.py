"""Reading a Keras 3 ``.keras`` archive (a zip of ``config.json`` and
``model.weights.h5``) without trusting it.

Each member is checked from the zip's directory before a byte of it is decompressed:
not encrypted, stored or compressed with a method the standard library reads (stored,
deflate, bzip2, LZMA: all four are read), and no larger than its limit
(`MAX_CONFIG_BYTES` for ``config.json``, `MAX_WEIGHTS_BYTES` for the weights).  The zip
reader never returns more bytes than a member declares, so a zip bomb is refused
before it is inflated.
"""

from __future__ import annotations

import lzma
import zipfile
import zlib
from pathlib import Path

from nnfpga.compiler.frontends.keras_checks import MAX_CONFIG_BYTES
from nnfpga.core.errors import UserError

#: Largest ``model.weights.h5`` read from a ``.keras`` archive (bytes, uncompressed).
MAX_WEIGHTS_BYTES = 256 * 2 ** 20
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
            zipfile.ZIP_LZMA: "LZMA"}
CONFIG, WEIGHTS = "config.json", "model.weights.h5"


def read_archive(path: Path) -> tuple[bytes, bytes]:
    """The config and weights members of a ``.keras`` file."""
    try:
        with zipfile.ZipFile(path) as z:
            return (_member(z, CONFIG, MAX_CONFIG_BYTES, path),
                    _member(z, WEIGHTS, MAX_WEIGHTS_BYTES, path))
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"{path}: not a readable .keras archive ({e}); a .keras file is the zip Keras 3 "
                        "writes with model.save('model.keras')") from None


def _member(z: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    try:
        info = z.getinfo(name)
    except KeyError:
        raise UserError(f"{path}: the .keras archive has no {name!r} member (it holds "
                        f"{_names(z)}); a Keras 3 .keras file holds {CONFIG!r} and {WEIGHTS!r}") from None
    problem = member_problem(info, limit)
    if problem:
        raise UserError(f"{path}: member {name!r} of the .keras archive {problem}")
    try:
        return z.read(info)
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError) as e:
        raise UserError(f"{path}: member {name!r} of the .keras archive cannot be read ({e}); the file is "
                        "damaged or truncated") from None


def member_problem(info: zipfile.ZipInfo, limit: int) -> str | None:
    """Why a zip member is not read, from its directory entry alone; None if it can be."""
    if info.flag_bits & 0x1:
        return "is encrypted; encrypted archives are not supported (save the model again without a password)"
    if info.compress_type not in _METHODS:
        return (f"uses compression method {info.compress_type}, which is not supported; supported: "
                f"{', '.join(_METHODS.values())}")
    if info.file_size > limit:
        return f"declares {info.file_size} bytes uncompressed, over the limit of {limit} bytes"
    return None


def _names(z: zipfile.ZipFile) -> str:
    names = z.namelist()
    shown = ", ".join(repr(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return shown or "nothing"
