"""Exact C++ literals for fixed-point constants.

A constant ``raw * 2**-frac`` is written as its exact decimal expansion (a dyadic
rational has a finite one).  The C++ compiler parses a decimal literal to the nearest
double, which *is* the value when ``|raw| < 2**53``; ``ap_fixed``'s constructor from a
double is exact for a value the type represents.  So every constant in the generated
tree holds exactly the IR's integer, independent of any float formatting.
"""

from __future__ import annotations

import numpy as np

from nnfpga.backends.escape import cpp_comment
from nnfpga.ir.fixed import FLOAT64_EXACT_BITS, FixedType


def exact_decimal(raw: int, frac: int) -> str:
    """``raw * 2**-frac`` as an exact decimal double literal (``-0.3125``, ``48.0``)."""
    raw = int(raw)
    if abs(raw) >= 1 << FLOAT64_EXACT_BITS:
        raise ValueError(f"constant with raw integer {raw} needs more than {FLOAT64_EXACT_BITS} bits; "
                         "it cannot be written as an exact double literal")
    sign = "-" if raw < 0 else ""
    mag = abs(raw)
    if frac <= 0:
        return f"{sign}{mag << -frac}.0"
    digits = str(mag * 5 ** frac).rjust(frac + 1, "0")   # mag * 2^-frac = mag * 5^frac / 10^frac
    whole, part = digits[:-frac], digits[-frac:].rstrip("0")
    return f"{sign}{whole}.{part or '0'}"


def check_storable(raw: np.ndarray, t: FixedType, what: str) -> None:
    """Every raw integer fits ``t`` and can be written exactly."""
    raw = np.asarray(raw)
    if raw.size and (int(raw.min()) < t.min_raw or int(raw.max()) > t.max_raw):
        raise ValueError(f"{what}: raw values [{int(raw.min())}, {int(raw.max())}] do not fit {t.cpp()}")
    if t.width > FLOAT64_EXACT_BITS:
        raise ValueError(f"{what}: storage type {t.cpp()} is wider than {FLOAT64_EXACT_BITS} bits; "
                         "its constants cannot be written as exact literals")


def array_initializer(raw: np.ndarray, frac: int, indent: str = "    ", per_line: int = 8) -> str:
    """Brace initializer (nested for each dimension) of exact literals, row-major."""
    raw = np.asarray(raw)
    if raw.ndim == 0:
        return exact_decimal(int(raw), frac)
    if raw.ndim == 1:
        items = [exact_decimal(int(v), frac) for v in raw]
        lines = [", ".join(items[k:k + per_line]) for k in range(0, len(items), per_line)]
        if len(lines) <= 1:
            return "{" + (lines[0] if lines else "") + "}"
        body = (",\n" + indent).join(lines)
        return "{\n" + indent + body + "\n" + indent[:-4] + "}"
    inner = [array_initializer(sub, frac, indent + "    ", per_line) for sub in raw]
    return "{\n" + indent + (",\n" + indent).join(inner) + "\n" + indent[:-4] + "}"


def const_array(ctype: str, name: str, raw: np.ndarray, frac: int, comment: str = "") -> str:
    """``static const T name[a][b] = {...};`` holding exactly ``raw * 2**-frac``."""
    raw = np.asarray(raw)
    dims = "".join(f"[{d}]" for d in raw.shape)
    head = f"// {cpp_comment(comment)}\n" if comment else ""
    return f"{head}static const {ctype} {name}{dims} = {array_initializer(raw, frac)};\n"
