"""Exact integer arithmetic shared by Dense and Conv2D: ``acc = x @ W + b``.

The accumulator keeps every bit: its fractional bits are ``max(fx + fw, fb)`` and its
integer range is the exact range over all inputs in ``[xlo, xhi]`` (range analysis of
the actual integer weights), so it cannot overflow.
"""

from __future__ import annotations

import numpy as np

from nnfpga.ir.fixed import FLOAT64_EXACT_BITS, FixedType, type_for_range
from nnfpga.ir.quant import QuantArray


def acc_frac(in_frac: int, kernel: QuantArray, bias: QuantArray | None) -> int:
    frac = in_frac + kernel.frac
    return max(frac, bias.frac) if bias is not None else frac


def aligned_bias(bias: QuantArray | None, frac: int, n_out: int) -> np.ndarray:
    """Bias raw integers at the accumulator's fractional bits (python ints, exact)."""
    if bias is None:
        return np.zeros(n_out, dtype=object)
    return np.array([int(b) << (frac - bias.frac) for b in bias.raw.reshape(-1)], dtype=object)


_RANGE_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray, int]] = {}


def linear_range(w2d: np.ndarray, bias_acc: np.ndarray, xlo: int, xhi: int,
                 product_shift: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Cached `_linear_range` (the emulator asks once per batch chunk); keyed by content."""
    key = (w2d.shape, w2d.tobytes(), tuple(int(b) for b in bias_acc), xlo, xhi, product_shift)
    hit = _RANGE_CACHE.get(key)
    if hit is None:
        if len(_RANGE_CACHE) > 256:
            _RANGE_CACHE.clear()
        hit = _RANGE_CACHE[key] = _linear_range(w2d, bias_acc, xlo, xhi, product_shift)
    return hit


def _linear_range(w2d: np.ndarray, bias_acc: np.ndarray, xlo: int, xhi: int,
                  product_shift: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-output exact accumulator range and a bound on any partial sum's magnitude.

    ``w2d`` is (n_in, n_out) raw ints; products are shifted left by ``product_shift``
    to the accumulator's fractional bits.  Python integers: no overflow in the analysis.
    """
    w = w2d.astype(object) * (1 << product_shift)
    a, b = w * xlo, w * xhi
    lo = np.minimum(a, b).sum(axis=0) + bias_acc
    hi = np.maximum(a, b).sum(axis=0) + bias_acc
    magnitude = int(np.maximum(abs(a), abs(b)).sum(axis=0).max(initial=0)
                    + max((abs(int(v)) for v in bias_acc), default=0))
    return lo, hi, magnitude


def acc_type_for(lo: np.ndarray, hi: np.ndarray, frac: int) -> FixedType:
    return type_for_range(int(min(lo.min(initial=0), 0)), int(max(hi.max(initial=0), 0)), frac)


FLOAT32_EXACT_BITS = 24


def compute_dtype(magnitude: int, x_bound: int) -> np.dtype:
    """The cheapest dtype in which every product and partial sum is an exact integer:
    float32 below 2**24, float64 below 2**53, int64 beyond (range analysis decides)."""
    if magnitude >= 1 << 62:
        raise ValueError("accumulator exceeds 62 bits; narrow the weights or inputs")
    biggest = max(magnitude, x_bound)
    if biggest < 1 << FLOAT32_EXACT_BITS:
        return np.dtype(np.float32)
    if biggest < 1 << FLOAT64_EXACT_BITS:
        return np.dtype(np.float64)
    return np.dtype(np.int64)


def linear_apply(x2d: np.ndarray, w2d: np.ndarray, bias_acc: np.ndarray,
                 product_shift: int, dtype: np.dtype) -> np.ndarray:
    """``x2d @ w2d * 2**product_shift + bias`` on raw integers, exactly, in ``dtype``."""
    if dtype.kind == "f":
        w = np.ldexp(w2d.astype(np.float64), product_shift).astype(dtype)
        out = x2d.astype(dtype, copy=False) @ w
        out += bias_acc.astype(dtype)
        return out
    w = w2d.astype(np.int64) << product_shift
    return x2d.astype(np.int64) @ w + bias_acc.astype(np.int64)
