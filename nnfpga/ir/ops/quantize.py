"""Quantize: a per-element fixed-point quantiser (HGQ2's heterogeneous quantisers).

Element ``e`` of the tensor has its own type ``ap_fixed<k+i+f, k+i>`` (``ap_ufixed`` when
``k`` is 0): ``k`` (0/1) keeps the sign, ``i`` integer bits (without the sign), ``f``
fractional bits; an element of width ``k + i + f <= 0`` is the constant 0.  Every element
shares the rounding (TRN, RND, RND_CONV) and overflow (WRAP, SAT, SAT_SYM): the input
value is rounded to ``2**-f`` and then wrapped into or clamped to the element's range
(SAT_SYM clamps a signed element to ``[-max, max]``).  This is ap_fixed's conversion per
element, and what HGQ2's fixed-point quantisers compute (`FixedPointQuantizer.forward`:
saturating before rounding gives the same value, as both bounds are on the grid).

The output type is the union of the element types: ``max f`` fractional bits and the
exact range of the results, so every element's value is held as it is (its raw integer
shifted left by ``max f - f``); no conversion follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nnfpga.ir.fixed import FixedType, Overflow, Rounding, type_for_range
from nnfpga.ir.ops.base import Op, TensorInfo, register

#: Overflow modes of a Quantize (SAT_SYM: symmetric saturation, which ap_fixed calls AP_SAT_SYM).
OVERFLOWS = ("WRAP", "SAT", "SAT_SYM")


@dataclass
class ElementGroup:
    """The elements (flat indices) sharing one type; ``type`` None: the constant 0."""

    index: np.ndarray
    type: FixedType | None
    symmetric: bool


@register
@dataclass
class Quantize(Op):
    op_type = "Quantize"
    #: per element (the tensor's shape, or broadcast to it): sign kept (0/1), integer and
    #: fractional bits, as in HGQ2 (``k``, ``i``, ``f``)
    keep_negative: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    integer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    frac: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    rounding: str = "TRN"
    overflow: str = "WRAP"

    def __post_init__(self) -> None:
        Rounding(self.rounding)
        if self.overflow not in OVERFLOWS:
            raise ValueError(f"Quantize {self.name!r}: overflow {self.overflow!r}; supported: {', '.join(OVERFLOWS)}")
        for what in ("keep_negative", "integer", "frac"):
            setattr(self, what, np.asarray(getattr(self, what), dtype=np.int64))
        if np.any((self.keep_negative != 0) & (self.keep_negative != 1)):
            raise ValueError(f"Quantize {self.name!r}: keep_negative must be 0 or 1")

    # -- the element types -------------------------------------------------------
    def _flat(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        try:
            return tuple(np.broadcast_to(a, shape).reshape(-1) for a in (self.keep_negative, self.integer,
                                                                         self.frac))  # type: ignore[return-value]
        except ValueError:
            raise ValueError(f"Quantize {self.name!r}: bit widths of shape {list(self.frac.shape)} do not "
                             f"broadcast to the input shape {list(shape)}") from None

    def groups(self, shape: tuple[int, ...]) -> list[ElementGroup]:
        """The elements of a tensor of ``shape`` grouped by their type."""
        k, i, f = self._flat(shape)
        width = k + i + f
        if np.any(width > 62):
            raise ValueError(f"Quantize {self.name!r}: an element of {int(width.max())} bits (at most 62)")
        keys = np.stack([np.where(width > 0, k, -1), np.where(width > 0, i, 0), np.where(width > 0, f, 0)], axis=1)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        out = []
        for g, (kk, ii, ff) in enumerate(uniq):
            index = np.nonzero(inverse == g)[0]
            if kk < 0:
                out.append(ElementGroup(index, None, False))
                continue
            over = Overflow.WRAP if self.overflow == "WRAP" else Overflow.SAT
            t = FixedType(int(kk + ii + ff), int(kk + ii), bool(kk), Rounding(self.rounding), over)
            out.append(ElementGroup(index, t, self.overflow == "SAT_SYM" and bool(kk)))
        return out

    def out_frac(self, shape: tuple[int, ...]) -> int:
        fracs = [g.type.frac for g in self.groups(shape) if g.type is not None]
        return max(fracs) if fracs else 0

    @staticmethod
    def element_range(g: ElementGroup, x: TensorInfo) -> tuple[int, int]:
        """The raw range (at the element's own frac) of the group's results."""
        if g.type is None:
            return 0, 0
        t = g.type
        lo_t = t.min_raw + 1 if g.symmetric else t.min_raw
        conv = t.with_modes(overflow=Overflow.SAT).requantize(np.array([x.lo, x.hi], dtype=np.int64), x.type.frac)
        lo, hi = int(conv[0]), int(conv[1])
        if t.overflow is Overflow.WRAP:
            # in range before the overflow step: the values themselves, else anything
            wide = FixedType(62, 62 - t.frac, True, t.rounding, Overflow.SAT)
            pre = wide.requantize(np.array([x.lo, x.hi], dtype=np.int64), x.type.frac)
            if not t.contains(int(pre[0]), int(pre[1])):
                return t.min_raw, t.max_raw
        return max(lo, lo_t), max(min(hi, t.max_raw), max(lo, lo_t))

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        (x,) = ins
        shape = tuple(x.shape)
        frac = self.out_frac(shape)
        lo = hi = None
        for g in self.groups(shape):
            a, b = self.element_range(g, x)
            shift = frac - (g.type.frac if g.type is not None else frac)
            a, b = a << shift, b << shift
            lo, hi = (a, b) if lo is None else (min(lo, a), max(hi, b))
        lo, hi = (0, 0) if lo is None else (lo, hi)
        t = type_for_range(min(lo, 0), max(hi, 0), frac)
        if t.width > 62:
            raise ValueError(f"Quantize {self.name!r}: the union of the element types needs {t.width} bits")
        return TensorInfo(shape, t, lo, hi)

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo]) -> np.ndarray:
        x, info = xs[0], ins[0]
        n = len(x)
        flat = np.asarray(x).reshape(n, -1)
        frac = self.info.type.frac
        as_int = flat.dtype.kind != "f" or self.info.type.width > 50 or info.type.width > 50
        flat = flat.astype(np.int64) if as_int else flat.astype(np.float64)
        out = np.zeros_like(flat)
        for g in self.groups(tuple(info.shape)):
            if g.type is None:
                continue
            v = g.type.requantize(flat[:, g.index], info.type.frac)
            if g.symmetric:
                v = np.maximum(v, g.type.min_raw + 1)
            shift = frac - g.type.frac
            out[:, g.index] = np.left_shift(v, shift) if as_int else v * float(1 << shift)
        return out.reshape((n, *self.info.shape))

    # -- serialisation ------------------------------------------------------------
    def params_json(self) -> dict:
        return {"keep_negative": self.keep_negative.tolist(), "integer": self.integer.tolist(),
                "frac": self.frac.tolist(), "rounding": self.rounding, "overflow": self.overflow}

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return {"keep_negative": np.asarray(d["keep_negative"], dtype=np.int64),
                "integer": np.asarray(d["integer"], dtype=np.int64),
                "frac": np.asarray(d["frac"], dtype=np.int64),
                "rounding": d["rounding"], "overflow": d["overflow"]}
