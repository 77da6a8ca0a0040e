"""Weight quantisers and quantised weight arrays.

A quantiser annotation says how a float weight array becomes integers; a
`QuantArray` is the result: integers ``raw`` with value ``raw * 2**-frac``.  The
``kind`` survives into the backends so ternary, binary and power-of-two weights are
built from adders and shifts instead of multipliers.

The arithmetic follows QKeras 0.9.0 exactly (float32 where QKeras computes in float32),
so a model quantised here holds the very weights QKeras uses in ``predict``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from nnfpga.ir.fixed import FixedType, Overflow, Rounding, type_for_range


class WeightKind(str, enum.Enum):
    FIXED = "fixed"
    TERNARY = "ternary"
    BINARY = "binary"
    PO2 = "po2"


@dataclass(frozen=True)
class QuantArray:
    """Integer weights: ``value = raw * 2**-frac``; raw is an int64 array."""

    raw: np.ndarray
    frac: int
    kind: WeightKind = WeightKind.FIXED

    @property
    def value(self) -> np.ndarray:
        return np.ldexp(self.raw.astype(np.float64), -self.frac)

    @property
    def storage_type(self) -> FixedType:
        """The narrowest type that stores every raw value (used by the HLS constants)."""
        lo, hi = (int(self.raw.min()), int(self.raw.max())) if self.raw.size else (0, 0)
        return type_for_range(min(lo, 0), max(hi, 0), self.frac)

    def to_json(self) -> dict:
        return {"raw": self.raw.tolist(), "shape": list(self.raw.shape), "frac": self.frac,
                "kind": self.kind.value}

    @classmethod
    def from_json(cls, d: dict) -> "QuantArray":
        raw = np.asarray(d["raw"], dtype=np.int64).reshape(d["shape"])
        return cls(raw, int(d["frac"]), WeightKind(d["kind"]))


@dataclass(frozen=True)
class Quantizer:
    """How a float array becomes a `QuantArray`.

    * ``fixed``:   round to ``type`` (its rounding and overflow modes), like
      QKeras ``quantized_bits(bits, integer, alpha=1)`` = ap_fixed<bits, integer+1, RND_CONV, SAT>.
    * ``ternary``: ``scale * {-1, 0, +1}``; |w| >= threshold gives the sign.
    * ``binary``:  ``scale * {-1, +1}`` (``w >= 0`` is +1), QKeras ``binary(alpha=1)``.
    * ``po2``:     signed powers of two ``±2**e`` with ``e`` in ``[min_exp, max_exp]``,
      QKeras ``quantized_po2`` (exponent rounded in log2, half to even).
    ``scale`` must be a power of two, so the result stays exactly representable.
    """

    kind: WeightKind
    type: FixedType | None = None
    scale: float = 1.0
    threshold: float = 0.33
    min_exp: int = 0
    max_exp: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", WeightKind(self.kind))
        mant, _ = np.frexp(self.scale)
        if self.scale <= 0 or mant != 0.5:
            raise ValueError(f"quantiser scale must be a positive power of two, got {self.scale}")
        if self.kind is WeightKind.FIXED and self.type is None:
            raise ValueError("a fixed quantiser needs a type")

    @property
    def scale_exp(self) -> int:
        return int(np.frexp(self.scale)[1]) - 1

    def apply(self, w: np.ndarray) -> QuantArray:
        w = np.asarray(w)
        if self.kind is WeightKind.FIXED:
            return QuantArray(self.type.quantize(w).astype(np.int64), self.type.frac, self.kind)
        w32 = w.astype(np.float32)
        if self.kind is WeightKind.TERNARY:
            # QKeras: q = (|w| >= threshold) * sign(w)
            raw = np.where(np.abs(w32) >= np.float32(self.threshold), np.sign(w32), 0)
        elif self.kind is WeightKind.BINARY:
            raw = np.where(w32 >= 0, 1, -1)  # QKeras: sign(0) becomes +1
        else:
            return self._apply_po2(w32)
        # value = raw * scale = raw * 2**scale_exp
        return QuantArray(raw.astype(np.int64), -self.scale_exp, self.kind)

    def _apply_po2(self, w32: np.ndarray) -> QuantArray:
        # QKeras quantized_po2 (log2_rounding="rnd", no max_value) in float32:
        # e = clip(round_half_even(log(|w|) / log 2), min_exp, max_exp); |w| < 1e-7 gives
        # min_exp; the sign of zero is +.  Every weight is therefore +-2**e, never 0.
        eps = np.float32(1e-7)
        mag = np.abs(w32)
        filtered = np.where(mag < eps, eps, mag)
        log2 = np.log(filtered) / np.float32(np.log(2.0))
        exp = np.clip(np.round(log2), self.min_exp, self.max_exp)
        exp = np.where(mag < eps, self.min_exp, exp).astype(np.int64)
        sign = np.where(w32 >= 0, 1, -1)
        raw = sign * np.left_shift(np.int64(1), exp - self.min_exp)
        return QuantArray(raw.astype(np.int64), -self.min_exp, self.kind)

    def to_json(self) -> dict:
        return {"kind": self.kind.value, "type": self.type.to_json() if self.type else None,
                "scale": self.scale, "threshold": self.threshold,
                "min_exp": self.min_exp, "max_exp": self.max_exp}

    @classmethod
    def from_json(cls, d: dict | None) -> "Quantizer | None":
        if d is None:
            return None
        t = FixedType.from_json(d["type"]) if d.get("type") else None
        return cls(WeightKind(d["kind"]), t, float(d["scale"]), float(d["threshold"]),
                   int(d["min_exp"]), int(d["max_exp"]))


def float_weight_quantizer(w: np.ndarray, frac: int) -> Quantizer:
    """Quantiser for an unquantised (float) weight array: ``frac`` fractional bits,
    integer bits just enough for the largest magnitude, round to nearest."""
    biggest = float(np.max(np.abs(w))) if np.size(w) else 0.0
    hi = int(np.floor(biggest * 2.0 ** frac + 0.5)) + 1
    t = type_for_range(-hi, hi, frac, Rounding.RND, Overflow.SAT)
    return Quantizer(WeightKind.FIXED, t)
