"""Packing raw element values into the ``in_data``/``out_data`` buses and back.

Element ``k`` of a sample occupies bits ``[k*w + w-1 : k*w]`` (two's complement for
signed types).  A bus travels as little-endian 32-bit words (``ceil(bits / 32)`` per
sample, unused top bits zero), which is also Verilator's ``VlWide`` layout.
"""

from __future__ import annotations

import numpy as np

from nnfpga.ir.fixed import FixedType


def words_for(bits: int) -> int:
    return (bits + 31) // 32


def check_raw(x_raw, t: FixedType, n_elems: int, what: str = "input") -> np.ndarray:
    """``x_raw`` as an int64 ``(n, n_elems)`` array of integers inside ``t``'s range."""
    x = np.asarray(x_raw)
    if x.ndim == 1 and n_elems == x.shape[0]:
        x = x[None]
    elif x.ndim > 2 and int(np.prod(x.shape[1:])) == n_elems:
        x = x.reshape(x.shape[0], n_elems)  # (n, *IR shape): the bus order is row-major
    if x.ndim != 2 or x.shape[1] != n_elems:
        raise ValueError(f"{what} raw values must have shape (n, {n_elems}), got {x.shape}")
    if x.dtype.kind == "f":
        if not np.all(np.isfinite(x)) or not np.all(x == np.round(x)):
            raise ValueError(f"{what} raw values must be integers")
    elif x.dtype.kind not in "iu":
        raise ValueError(f"{what} raw values must be integers, got dtype {x.dtype}")
    xi = x.astype(np.int64)
    if xi.size and (xi.min() < t.min_raw or xi.max() > t.max_raw):
        raise ValueError(f"{what} raw values span [{xi.min()}, {xi.max()}], outside {t} "
                         f"[{t.min_raw}, {t.max_raw}]")
    return xi


def pack(x: np.ndarray, width: int) -> np.ndarray:
    """``(n, k)`` raw ints -> ``(n, words)`` uint32 bus words."""
    n, k = x.shape
    u = (x.astype(np.int64) & ((1 << width) - 1)).astype(np.uint64)
    bits = ((u[:, :, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    bits = bits.reshape(n, k * width)
    nw = words_for(k * width)
    bits = np.pad(bits, ((0, 0), (0, nw * 32 - k * width)))
    return np.packbits(bits, axis=1, bitorder="little").view("<u4").reshape(n, nw)


def unpack(words: np.ndarray, k: int, t: FixedType) -> np.ndarray:
    """``(n, words)`` uint32 -> ``(n, k)`` raw int64 of type ``t`` (sign-extended)."""
    n = words.shape[0]
    w = t.width
    b = np.unpackbits(np.ascontiguousarray(words, dtype="<u4").view(np.uint8).reshape(n, -1),
                      axis=1, bitorder="little")[:, :k * w].reshape(n, k, w).astype(np.int64)
    v = (b << np.arange(w, dtype=np.int64)).sum(axis=2)
    if t.signed:
        v = np.where(v >= 1 << (w - 1), v - (1 << w), v)
    return v


def to_hex(x: np.ndarray, width: int, digits: int) -> list[str]:
    """One upper-case hex string of ``digits`` digits per sample (the packed bus)."""
    words = pack(x, width)
    out = []
    for row in words:
        v = 0
        for i, word in enumerate(row.tolist()):
            v |= int(word) << (32 * i)
        out.append(format(v, f"0{digits}X"))
    return out


def from_hex(lines: list[str], k: int, t: FixedType) -> np.ndarray:
    """Parse packed-bus hex strings (as `to_hex`) into ``(n, k)`` raw int64."""
    bits = k * t.width
    nw = words_for(bits)
    words = np.zeros((len(lines), nw), dtype=np.uint32)
    for r, h in enumerate(lines):
        try:
            v = int(h, 16)
        except ValueError:
            raise ValueError(f"output {r}: {h!r} is not a hex number (undefined bits?)") from None
        for i in range(nw):
            words[r, i] = (v >> (32 * i)) & 0xFFFFFFFF
    return unpack(words, k, t)
