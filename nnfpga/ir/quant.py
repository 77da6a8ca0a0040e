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
      QKeras ``quantized_bits(bits, integer, alpha=1)`` = ap_fixed<bits, integer+1, RND_CONV, SAT>;
      then multiplied by ``scale`` (or, per output channel, by ``2**channel_exp[c]``), as
      QKeras multiplies by a power-of-two ``alpha``.  ``auto_po2``: QKeras
      ``quantized_bits(bits, integer, alpha="auto_po2")``, whose per-channel power-of-two
      scales come from the weights themselves (`auto_po2`); ``type`` then holds bits and
      integer only.
    * ``ternary``: ``scale * {-1, 0, +1}``; |w| >= threshold gives the sign.
    * ``binary``:  ``scale * {-1, +1}`` (``w >= 0`` is +1), QKeras ``binary(alpha=1)``.
    * ``po2``:     signed powers of two ``±2**e`` with ``e`` in ``[min_exp, max_exp]``,
      QKeras ``quantized_po2`` (exponent rounded in log2, half to even; with
      ``max_value``, magnitudes are first clipped to it, in float32, as QKeras does).
    ``scale`` must be a power of two, so the result stays exactly representable.
    """

    kind: WeightKind
    type: FixedType | None = None
    scale: float = 1.0
    threshold: float = 0.33
    min_exp: int = 0
    max_exp: int = 0
    #: per output channel (last axis) power-of-two exponents of a fixed quantiser's alpha
    channel_exp: tuple[int, ...] = ()
    auto_po2: bool = False
    #: po2: magnitudes at or above it are taken as it before the log2 (QKeras max_value)
    max_value: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", WeightKind(self.kind))
        mant, _ = np.frexp(self.scale)
        if self.scale <= 0 or mant != 0.5:
            raise ValueError(f"quantiser scale must be a positive power of two, got {self.scale}")
        if self.kind is WeightKind.FIXED and self.type is None:
            raise ValueError("a fixed quantiser needs a type")
        object.__setattr__(self, "channel_exp", tuple(int(e) for e in self.channel_exp))
        if (self.channel_exp or self.auto_po2) and (self.kind is not WeightKind.FIXED or self.scale != 1.0):
            raise ValueError("per-channel scales are for fixed quantisers without a scale")

    @property
    def per_channel(self) -> bool:
        """The scale differs per output channel (so no single type describes the weights)."""
        return bool(self.channel_exp) or self.auto_po2

    @property
    def scale_exp(self) -> int:
        return int(np.frexp(self.scale)[1]) - 1

    def apply(self, w: np.ndarray) -> QuantArray:
        w = np.asarray(w)
        if self.kind is WeightKind.FIXED:
            return self._apply_fixed(w)
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

    def _apply_fixed(self, w: np.ndarray) -> QuantArray:
        if self.auto_po2:
            integer = self.type.integer - 1   # QKeras's integer (the type adds the sign bit)
            z, exp = auto_po2(w, self.type.width, integer)
            return _shifted(z, exp + integer, 0)
        raw = self.type.quantize(w).astype(np.int64)
        if not self.per_channel:
            return _shifted(raw, np.array([self.scale_exp]), self.type.frac)
        exp = np.asarray(self.channel_exp, dtype=np.int64)
        n = raw.shape[-1] if raw.ndim else 1
        if len(exp) not in (1, n):
            raise ValueError(f"{len(exp)} channel scales for {n} output channels")
        return _shifted(raw, exp, self.type.frac)

    def _apply_po2(self, w32: np.ndarray) -> QuantArray:
        # QKeras quantized_po2 (log2_rounding="rnd") in float32: |w| < 1e-7 gives min_exp;
        # else |w| clipped to max_value (if any), e = clip(round_half_even(log(|w|) / log 2),
        # min_exp, max_exp); the sign of zero is +.  Every weight is +-2**e, never 0.
        eps = np.float32(1e-7)
        mag = np.abs(w32)
        filtered = np.where(mag < eps, eps, mag)
        if self.max_value is not None:
            top = np.float32(self.max_value)
            filtered = np.where(filtered >= top, top, filtered)
        with np.errstate(divide="ignore"):
            log2 = np.log(filtered) / np.float32(np.log(2.0))
        exp = np.clip(np.round(log2), self.min_exp, self.max_exp)
        exp = np.where(mag < eps, self.min_exp, exp).astype(np.int64)
        sign = np.where(w32 >= 0, 1, -1)
        # the grid is 2**min_exp unless the exponent range is too wide for int64: then
        # the smallest exponent present
        low = self.min_exp if self.max_exp - self.min_exp <= 61 or not exp.size else int(exp.min())
        if exp.size and int(exp.max()) - low > 61:
            raise ValueError(f"power-of-two weights 2**{low}..2**{int(exp.max())} need over 62-bit integers")
        raw = sign * np.left_shift(np.int64(1), exp - low)
        return QuantArray(raw.astype(np.int64), -low, self.kind)

    def to_json(self) -> dict:
        return {"kind": self.kind.value, "type": self.type.to_json() if self.type else None,
                "scale": self.scale, "threshold": self.threshold,
                "min_exp": self.min_exp, "max_exp": self.max_exp,
                "channel_exp": list(self.channel_exp), "auto_po2": self.auto_po2, "max_value": self.max_value}

    @classmethod
    def from_json(cls, d: dict | None) -> "Quantizer | None":
        if d is None:
            return None
        t = FixedType.from_json(d["type"]) if d.get("type") else None
        return cls(WeightKind(d["kind"]), t, float(d["scale"]), float(d["threshold"]),
                   int(d["min_exp"]), int(d["max_exp"]), tuple(d.get("channel_exp", ())),
                   bool(d.get("auto_po2", False)),
                   None if d.get("max_value") is None else float(d["max_value"]))


def _shifted(raw: np.ndarray, exp: np.ndarray, frac: int) -> QuantArray:
    """``raw * 2**(exp[c] - frac)`` (exp per last-axis channel, or one for all) as one
    `QuantArray`: each channel shifted left onto the finest channel's grid.  A channel
    that is all zero takes the coarsest exponent, so it does not widen the others."""
    raw = np.asarray(raw, dtype=np.int64)
    exp = np.broadcast_to(np.asarray(exp, dtype=np.int64).reshape(-1), raw.shape[-1:] if raw.ndim else (1,))
    nonzero = np.any(raw != 0, axis=tuple(range(raw.ndim - 1))) if raw.ndim else np.array([raw != 0])
    if not nonzero.any():
        return QuantArray(raw, frac - int(exp.max()), WeightKind.FIXED)
    exp = np.where(nonzero, exp, exp[nonzero].max())
    low = int(exp.min())
    shift = exp - low
    if int(shift.max()) + int(np.abs(raw).max()).bit_length() > 62:
        raise ValueError(f"per-channel scales 2**{low}..2**{int(exp.max())} need over 62-bit weights")
    return QuantArray(np.left_shift(raw, shift if raw.ndim else shift[0]), frac - low, WeightKind.FIXED)


_EPS = np.float32(1e-7)        # Keras's epsilon(), as QKeras adds it (float32)
_LOG2 = np.float32(np.log(2.0))


def _po2_exponent(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """QKeras's ``round(log(s + eps) / log(2))`` in float32 (round half to even), and
    the unrounded value (to find near-ties)."""
    with np.errstate(divide="ignore"):
        a = np.log(s + _EPS) / _LOG2
    return np.round(a).astype(np.int64), a


def auto_po2(w: np.ndarray, bits: int, integer: int,
             log2_values: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """QKeras 0.9.0 ``quantized_bits(bits, integer, alpha="auto_po2")`` of ``w``, in
    float32 as QKeras computes it: integers ``z`` (|z| <= 2**(bits-1) - 1) and per
    last-axis channel exponents ``e`` with ``value = z * 2**(e + integer)``.

    The scale starts at ``max|x| * 2 / levels`` rounded to a power of two (in log2) and
    is refined five times by least squares; ``z`` is from the scale before the last
    refinement, the value uses the last one, exactly as QKeras does.  A 1-D array (a
    bias) gets one scale per element, as in QKeras.  ``log2_values`` (if given) collects
    every unrounded log2 whose rounding chose an exponent."""
    x = np.asarray(w, dtype=np.float32) / np.float32(2.0 ** integer)
    levels = np.float32((2 ** (bits - 1) - 1) * 2)   # symmetric: auto scales force it
    top = np.float32(levels / 2)
    axis = tuple(range(x.ndim - 1)) if x.ndim > 1 else (0,)
    e, a = _po2_exponent(np.max(np.abs(x), axis=axis, keepdims=True) * np.float32(2) / levels)
    logs = [a]
    z = np.zeros_like(x)
    for _ in range(5):
        scale = np.ldexp(np.float32(1), e).astype(np.float32)
        v = np.floor(np.abs(x) / scale + np.float32(0.5))
        z = np.sign(x) * np.where(v < top, v, top)
        if x.ndim > 1:
            # TF sums in float32 in its own order; the sum here is near-exact, and the
            # caller refuses a log2 near a rounding tie, where the order could matter
            qx = np.mean((x * z).astype(np.float64), axis=axis, keepdims=True).astype(np.float32)
            qq = np.mean((z * z).astype(np.float64), axis=axis, keepdims=True).astype(np.float32)
        else:
            qx, qq = x * z, z * z
        e, a = _po2_exponent(qx / (qq + _EPS))
        logs.append(a)
    if log2_values is not None:
        log2_values.extend(logs)
    return z.astype(np.int64), e.reshape(-1)


def float_weight_quantizer(w: np.ndarray, frac: int) -> Quantizer:
    """Quantiser for an unquantised (float) weight array: ``frac`` fractional bits,
    integer bits just enough for the largest magnitude, round to nearest."""
    biggest = float(np.max(np.abs(w))) if np.size(w) else 0.0
    hi = int(np.floor(biggest * 2.0 ** frac + 0.5)) + 1
    t = type_for_range(-hi, hi, frac, Rounding.RND, Overflow.SAT)
    return Quantizer(WeightKind.FIXED, t)
