"""Fixed-point types with exactly the meaning of Xilinx ``ap_fixed`` / ``ap_ufixed``.

A value of type ``FixedType(width, integer, signed)`` is an integer ``raw`` times
``2**-frac`` with ``frac = width - integer``.  ``raw`` lies in
``[-2**(width-1), 2**(width-1) - 1]`` when signed and ``[0, 2**width - 1]`` otherwise.

Rounding (applied when bits below ``2**-frac`` are dropped):

* ``TRN``      toward minus infinity (ap_fixed's default, a plain arithmetic shift),
* ``RND``      to nearest, ties toward plus infinity,
* ``RND_CONV`` to nearest, ties to even.

Overflow (applied after rounding, when the value does not fit):

* ``WRAP`` keep the low ``width`` bits (two's complement wrap-around),
* ``SAT``  clamp to the smallest / largest representable value.

Raw integers travel in numpy arrays of dtype float64 (exact below 2**53, fast BLAS
matrix products) or int64 (exact up to 2**63).  Every function here keeps the dtype it
is given and never rounds implicitly; range analysis decides which dtype a tensor needs.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import numpy as np

#: Largest integer magnitude (exclusive, as a power of two) that float64 holds exactly.
FLOAT64_EXACT_BITS = 53


class Rounding(str, enum.Enum):
    TRN = "TRN"
    RND = "RND"
    RND_CONV = "RND_CONV"


class Overflow(str, enum.Enum):
    WRAP = "WRAP"
    SAT = "SAT"


@dataclass(frozen=True)
class FixedType:
    """An ``ap_fixed<width, integer, rounding, overflow>`` (or ``ap_ufixed`` when unsigned)."""

    width: int
    integer: int
    signed: bool = True
    rounding: Rounding = Rounding.TRN
    overflow: Overflow = Overflow.WRAP

    def __post_init__(self) -> None:
        if not isinstance(self.width, (int, np.integer)) or self.width < 1:
            raise ValueError(f"fixed-point width must be a positive integer, got {self.width!r}")
        if self.width > 62:
            raise ValueError(f"fixed-point width {self.width} exceeds the supported 62 bits")
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "integer", int(self.integer))
        object.__setattr__(self, "rounding", Rounding(self.rounding))
        object.__setattr__(self, "overflow", Overflow(self.overflow))

    # ----------------------------------------------------------------- properties
    @property
    def frac(self) -> int:
        """Number of fractional bits; the value of one LSB is ``2**-frac``."""
        return self.width - self.integer

    @property
    def min_raw(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_raw(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.frac

    @property
    def min_value(self) -> float:
        return self.min_raw * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_raw * self.lsb

    def with_modes(self, rounding: Rounding | str | None = None,
                   overflow: Overflow | str | None = None) -> "FixedType":
        return FixedType(self.width, self.integer, self.signed,
                         Rounding(rounding) if rounding is not None else self.rounding,
                         Overflow(overflow) if overflow is not None else self.overflow)

    # ----------------------------------------------------------------- arithmetic
    def quantize(self, x: np.ndarray | float) -> np.ndarray:
        """Convert real numbers to raw integers exactly as ``ap_fixed(double)`` does.

        Returns float64 raw integers (every representable raw fits below 2**62, and
        float64 is exact for them up to 2**53; wider types get int64).
        """
        v = np.asarray(x, dtype=np.float64)
        if not np.isfinite(v).all():
            raise ValueError("cannot quantize NaN or infinite values")
        # Multiplying by a power of two is exact in binary floating point, except when
        # the result leaves the float64 exponent range; both ends are repaired below.
        with np.errstate(over="ignore", under="ignore"):
            scaled = v * 2.0 ** self.frac if -1000 < self.frac < 1000 else np.ldexp(v, self.frac)
        if self.frac > 0 and not np.isfinite(scaled).all():
            # Overflow to +-inf: the exact product is a multiple of 2**971, so WRAP keeps
            # no set bit and SAT clamps by sign -- exactly what +-2**100 does too.
            scaled = np.where(np.isinf(scaled), np.copysign(2.0 ** 100, scaled), scaled)
        if self.frac < 0:
            # Underflow to +-0 of a nonzero input: ap_fixed still sees a tiny nonzero value
            # (TRN of a tiny negative is -1); any value strictly inside (0, 0.5) behaves alike.
            scaled = np.where((scaled == 0) & (v != 0), np.copysign(0.25, v), scaled)
        rounded = _round_float(scaled, self.rounding)
        if self.width > FLOAT64_EXACT_BITS:
            # Bring the integer into int64 range without changing the result: fmod by
            # 2**width is exact and keeps the low bits (WRAP); clipping at +-2**62 keeps
            # the side of the range (SAT, every raw bound is below 2**62).
            if self.overflow is Overflow.WRAP:
                rounded = np.fmod(rounded, 2.0 ** self.width)
            else:
                rounded = np.clip(rounded, -(2.0 ** 62), 2.0 ** 62)
            return self._overflow_int(rounded.astype(np.int64))
        return self._overflow_float(rounded)

    def requantize(self, raw: np.ndarray, frac: int) -> np.ndarray:
        """Convert raw integers with ``frac`` fractional bits into this type.

        The semantics of assigning one ap_fixed to another: align the binary point,
        round away the dropped bits by this type's rounding mode, then apply overflow.
        ``raw`` may be float64 (integers below 2**53) or int64; the dtype is kept.
        """
        raw = np.asarray(raw)
        shift = frac - self.frac  # bits dropped when positive
        if raw.dtype == np.float32 and (shift < 0 or self.width > 24):
            raw = raw.astype(np.float64)  # float32 holds exact integers below 2**24 only
        if raw.dtype.kind == "f":
            # Scaling by a power of two is exact (the raw integers stay far from the
            # float64 exponent limits).
            if shift > 0:
                raw = _round_float(raw * 2.0 ** -shift, self.rounding)
            elif shift < 0:
                raw = raw * 2.0 ** -shift
            return self._overflow_float(raw)
        raw = raw.astype(np.int64, copy=False)
        if shift > 0:
            raw = _round_int_shift(raw, shift, self.rounding)
        elif shift < 0:
            if self.overflow is Overflow.SAT:
                # Decide saturation before shifting: int64 would wrap silently.
                hi = self.max_raw >> -shift             # largest raw that still fits
                lo = -((-self.min_raw) >> -shift)       # smallest raw that still fits
                shifted = np.left_shift(raw, -shift)
                return np.where(raw > hi, self.max_raw, np.where(raw < lo, self.min_raw, shifted))
            raw = np.left_shift(raw, -shift)            # wraps modulo 2**64: low bits exact
        return self._overflow_int(raw)

    def to_float(self, raw: np.ndarray) -> np.ndarray:
        return np.ldexp(np.asarray(raw, dtype=np.float64), -self.frac)

    def contains(self, lo: int, hi: int) -> bool:
        """True when every raw integer in ``[lo, hi]`` is representable."""
        return self.min_raw <= lo and hi <= self.max_raw

    def _overflow_float(self, raw: np.ndarray) -> np.ndarray:
        if self.overflow is Overflow.SAT:
            return np.clip(raw, self.min_raw, self.max_raw, dtype=raw.dtype)
        span = float(1 << self.width)
        wrapped = np.mod(raw, span)  # exact for integer-valued float64
        if self.signed:
            wrapped = np.where(wrapped > self.max_raw, wrapped - span, wrapped)
        return wrapped

    def _overflow_int(self, raw: np.ndarray) -> np.ndarray:
        if self.overflow is Overflow.SAT:
            return np.clip(raw, self.min_raw, self.max_raw)
        mask = (1 << self.width) - 1
        wrapped = np.bitwise_and(raw, mask)
        if self.signed:
            wrapped = np.where(wrapped > self.max_raw, wrapped - (1 << self.width), wrapped)
        return wrapped

    # ----------------------------------------------------------------- text forms
    def cpp(self) -> str:
        """The HLS C++ spelling, e.g. ``ap_fixed<8,3,AP_RND_CONV,AP_SAT>``."""
        base = "ap_fixed" if self.signed else "ap_ufixed"
        if self.rounding is Rounding.TRN and self.overflow is Overflow.WRAP:
            return f"{base}<{self.width},{self.integer}>"
        return f"{base}<{self.width},{self.integer},AP_{self.rounding.value},AP_{self.overflow.value}>"

    def __str__(self) -> str:
        return self.spec()

    def spec(self) -> str:
        """Compact text form ``fixed<8,3,RND_CONV,SAT>`` / ``ufixed<...>``, parsed by `parse`."""
        base = "fixed" if self.signed else "ufixed"
        return f"{base}<{self.width},{self.integer},{self.rounding.value},{self.overflow.value}>"

    def to_json(self) -> dict:
        return {"width": self.width, "integer": self.integer, "signed": self.signed,
                "rounding": self.rounding.value, "overflow": self.overflow.value}

    @classmethod
    def from_json(cls, d: dict) -> "FixedType":
        return cls(int(d["width"]), int(d["integer"]), bool(d["signed"]),
                   Rounding(d["rounding"]), Overflow(d["overflow"]))

    @classmethod
    def parse(cls, text: str) -> "FixedType":
        """Parse ``fixed<W,I[,ROUND[,OVERFLOW]]>``, ``ufixed<...>`` or the ap_ spellings."""
        m = _SPEC_RE.fullmatch(text.replace(" ", ""))
        if not m:
            raise ValueError(f"not a fixed-point type: {text!r} (expected e.g. fixed<16,6,RND,SAT>)")
        signed = m.group("u") is None
        rnd = (m.group("rnd") or "TRN").removeprefix("AP_")
        ovf = (m.group("ovf") or "WRAP").removeprefix("AP_")
        return cls(int(m.group("w")), int(m.group("i")), signed, Rounding(rnd), Overflow(ovf))


_SPEC_RE = re.compile(r"(?:ap_)?(?P<u>u)?fixed<(?P<w>\d+),(?P<i>-?\d+)"
                      r"(?:,(?P<rnd>(?:AP_)?(?:TRN|RND_CONV|RND)))?(?:,(?P<ovf>(?:AP_)?(?:WRAP|SAT)))?>")


def _round_float(scaled: np.ndarray, rounding: Rounding) -> np.ndarray:
    """Round float64 values to integers, exactly.

    ``rint`` rounds half to even exactly for every double; ``scaled - rint(scaled)`` is
    exact as well (the two are within one of each other, Sterbenz), which gives RND's
    ties-up correction.
    """
    if rounding is Rounding.TRN:
        return np.floor(scaled)
    nearest = np.rint(scaled)
    if rounding is Rounding.RND_CONV:
        return nearest
    nearest += (scaled - nearest) == 0.5
    return nearest


def _round_int_shift(raw: np.ndarray, shift: int, rounding: Rounding) -> np.ndarray:
    if shift >= 64:
        # |raw| <= 2**63 <= 2**(shift-1): the quotient lies in [-1/2, 1/2), which TRN
        # floors to 0 or -1 and both round-to-nearest modes send to 0 (a -1/2 tie goes
        # up in RND and to the even 0 in RND_CONV).
        if rounding is Rounding.TRN:
            return np.right_shift(raw, 63)
        return np.zeros_like(raw)
    low = np.right_shift(raw, shift)  # arithmetic shift: floor division by 2**shift
    if rounding is Rounding.TRN:
        return low
    rest = raw - np.left_shift(low, shift)
    half = 1 << (shift - 1)
    if rounding is Rounding.RND:
        return low + (rest >= half)
    return low + ((rest > half) | ((rest == half) & (np.bitwise_and(low, 1) == 1)))


def bits_for_range(lo: int, hi: int) -> tuple[int, bool]:
    """Smallest (width, signed) whose raw range holds every integer in ``[lo, hi]``."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    # (called for every signal of an RTL description: no builtin max calls)
    if lo >= 0:
        return hi.bit_length() or 1, False
    neg = (-lo - 1).bit_length()
    pos = hi.bit_length() if hi > 0 else 0
    return (neg if neg >= pos else pos) + 1, True


def type_for_range(lo: int, hi: int, frac: int,
                   rounding: Rounding = Rounding.TRN, overflow: Overflow = Overflow.WRAP,
                   force_signed: bool = False) -> FixedType:
    """The narrowest FixedType with ``frac`` fractional bits holding raw range ``[lo, hi]``."""
    width, signed = bits_for_range(lo, hi)
    if force_signed and not signed:
        width, signed = width + 1, True
    return FixedType(width, width - frac, signed, rounding, overflow)
