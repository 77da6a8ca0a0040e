"""Packing raw element values into the ``in_data``/``out_data`` buses and back.

Element ``k`` of a sample occupies bits ``[k*w + w-1 : k*w]`` (two's complement for
signed types).  A bus travels as little-endian 32-bit words (``ceil(bits / 32)`` per
sample, unused top bits zero), which is also Verilator's ``VlWide`` layout.

A banked core (weight banks selected per sample) has its unsigned bank index field
right above the data elements of ``in_data``; its raw input rows carry the index as one
more, last column (`check_input`, `pack_input`).
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


def _bits(x: np.ndarray, width: int) -> np.ndarray:
    n, k = x.shape
    u = (x.astype(np.int64) & ((1 << width) - 1)).astype(np.uint64)
    bits = ((u[:, :, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    return bits.reshape(n, k * width)


def pack(x: np.ndarray, width: int, bank: np.ndarray | None = None, bank_bits: int = 0) -> np.ndarray:
    """``(n, k)`` raw ints (and a bank index field of ``bank_bits`` above them) ->
    ``(n, words)`` uint32 bus words."""
    bits = _bits(x, width)
    if bank is not None:
        bits = np.concatenate([bits, _bits(bank.reshape(-1, 1), bank_bits)], axis=1)
    total = bits.shape[1]
    nw = words_for(total)
    bits = np.pad(bits, ((0, 0), (0, nw * 32 - total)))
    return np.packbits(bits, axis=1, bitorder="little").view("<u4").reshape(len(x), nw)


def check_input(x_raw, info: dict) -> np.ndarray:
    """Raw input rows for the core described by ``info`` (``rtl.json``): ``(n,
    n_inputs)`` checked against the input type, plus for a banked core a last column of
    bank indices in ``[0, banks)``."""
    in_t = FixedType.from_json(info["in_type"])
    n_in, banks = int(info["n_inputs"]), int(info.get("banks", 0))
    if not banks:
        return check_raw(x_raw, in_t, n_in)
    x = np.asarray(x_raw)
    if x.ndim != 2 or x.shape[1] != n_in + 1:
        raise ValueError(f"raw input rows of the banked core must have shape (n, {n_in + 1}): "
                         f"{n_in} values and the bank index; got {x.shape}")
    data = check_raw(x[:, :n_in], in_t, n_in)
    bank = check_raw(x[:, n_in:], FixedType(int(info["bank_bits"]), int(info["bank_bits"]), False), 1,
                     "bank index")
    if bank.size and bank.max() >= banks:
        raise ValueError(f"bank indices reach {bank.max()}; the core has banks 0..{banks - 1}")
    return np.concatenate([data, bank], axis=1)


def pack_input(x: np.ndarray, info: dict) -> np.ndarray:
    """Rows from `check_input` as ``in_data`` bus words."""
    width, n_in = int(info["in_width"]), int(info["n_inputs"])
    if not info.get("banks"):
        return pack(x, width)
    return pack(x[:, :n_in], width, x[:, n_in], int(info["bank_bits"]))


def input_hex(x: np.ndarray, info: dict) -> list[str]:
    """Rows from `check_input` as hex strings of the packed ``in_data`` bus."""
    return _hex(pack_input(x, info), -(-int(info["in_bus_width"]) // 4))


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
    return _hex(pack(x, width), digits)


def _hex(words: np.ndarray, digits: int) -> list[str]:
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
