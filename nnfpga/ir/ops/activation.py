"""Activations: linear (a plain type conversion), relu, leaky_relu, hard_tanh,
hard_sigmoid, tanh, sigmoid, softmax.

relu / leaky_relu / linear / hard_tanh / hard_sigmoid are exact operations followed by the
conversion to the output type (QKeras ``quantized_relu`` is relu into an unsigned
RND_CONV/SAT type).  hard_sigmoid is QKeras's ``clip(0.5 x + 0.5, 0, 1)``: with ``x`` raw
at ``f`` fractional bits, ``clip(x + 2**f, 0, 2**(f + 1))`` raw at ``f + 1`` (the halving
is one more fractional bit, the 0.5 an added constant).
leaky_relu's slope is an exact dyadic constant ``alpha_q = alpha_raw * 2**-alpha_frac``
in (0, 1] (`quantize_alpha`: the nearest value with `ALPHA_FRAC` fractional bits, at
least `ALPHA_MIN_BITS` significant ones, trailing zero bits stripped): ``y = x`` for
``x >= 0`` and ``y = x * alpha_q`` (exact product, ``frac = x_frac + alpha_frac``) for
``x < 0``; both branches are taken at that frac (``x`` shifted left by ``alpha_frac``),
then converted.  As ``alpha_q <= 1`` it is ``max(x, alpha_q * x)``.  ``alpha`` keeps the
source model's float slope for the float reference (`nnfpga.compiler.float_reference`).
saturating_leaky_relu (QKeras ``quantized_relu(negative_slope=s)``) is leaky_relu whose
negative side saturates at ``alpha_q * T.min`` (``T`` the output type, which must be set,
and that value on T's grid): ``max(leaky(x), alpha_q * T.min)`` at
``max(x_frac + alpha_frac, T.frac)`` fractional bits, then converted (the positive side
saturates at T's maximum as usual).  sign (QONNX ``BipolarQuant``) is ``+1`` for ``x >= 0``
and ``-1`` below, then converted (exactly: the output type must hold +-1).
tanh and sigmoid are `LookupTable`s.  softmax is ``e_i = exp_table(x_i - max x)``,
``s = sum e_i`` (exact), ``r = inv_table(s)``, ``y_i = e_i * r`` converted to the output
type; subtracting the maximum keeps the arg-max entry at ``exp(0) = 1``.

What each function is beyond this arithmetic (float meaning, error-bound rule,
signedness, what passes may do with it) is its entry in
`nnfpga.ir.ops.activation_functions`; a function without an entry is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nnfpga.ir.fixed import FixedType, type_for_range
from nnfpga.ir.ops.activation_functions import ActivationFunction, activation_function
from nnfpga.ir.ops.base import Op, TensorInfo, convert, output_info, register
from nnfpga.ir.tables import LookupTable

#: leaky_relu slopes are rounded to this many fractional bits (more for slopes below
#: 2**-9, so that ``alpha_raw`` keeps `ALPHA_MIN_BITS` significant bits).
ALPHA_FRAC = 16
ALPHA_MIN_BITS = 8


def strip_zeros(raw: int, frac: int) -> tuple[int, int]:
    """The same dyadic value with the trailing zero bits of ``raw`` removed."""
    raw, frac = int(raw), int(frac)
    if raw == 0:
        return 0, 0
    while raw % 2 == 0:
        raw //= 2
        frac -= 1
    return raw, frac


def quantize_alpha(alpha: float, name: str = "") -> tuple[int, int]:
    """A leaky ReLU slope ``0 < alpha < 1`` as ``(alpha_raw, alpha_frac)``: the nearest
    multiple of ``2**-frac`` with ``frac = max(ALPHA_FRAC, enough for ALPHA_MIN_BITS
    significant bits)``, trailing zero bits stripped."""
    a = float(alpha)
    if not (math.isfinite(a) and 0.0 < a < 1.0):
        raise ValueError(f"leaky_relu {name!r}: slope alpha={alpha!r} is not supported; it must satisfy "
                         "0 < alpha < 1 (alpha = 0 is a plain relu)")
    frac = max(ALPHA_FRAC, ALPHA_MIN_BITS - 1 - math.floor(math.log2(a)))
    return strip_zeros(round(a * 2.0 ** frac), frac)


@register
@dataclass
class Activation(Op):
    op_type = "Activation"
    function: str = "linear"
    table: LookupTable | None = None          # tanh, sigmoid; exp for softmax
    inv_table: LookupTable | None = None      # softmax's reciprocal
    #: a function with a slope (`ActivationFunction.slope`: leaky_relu): the source model's
    #: float slope (None: ``alpha_q`` is the slope)
    alpha: float | None = None
    #: a function with a slope: the exact slope ``alpha_raw * 2**-alpha_frac`` (from
    #: ``alpha`` when 0)
    alpha_raw: int = 0
    alpha_frac: int = 0

    def __post_init__(self) -> None:
        if activation_function(self.function, self.name).slope:   # an unknown function is refused here
            if self.alpha is not None:
                raw, frac = quantize_alpha(self.alpha, self.name)  # checks 0 < alpha < 1
                self.alpha = float(self.alpha)
                if not self.alpha_raw:
                    self.alpha_raw, self.alpha_frac = raw, frac
            if not isinstance(self.alpha_raw, (int, np.integer)) or isinstance(self.alpha_raw, bool) \
                    or not 0 < self.alpha_raw or self.alpha_frac < 0 or self.alpha_raw > 1 << self.alpha_frac:
                raise ValueError(f"{self.function} {self.name!r}: slope {self.alpha_raw!r} * 2**-{self.alpha_frac} "
                                 "must be an integer multiple of a power of two in (0, 1]; give alpha "
                                 "(0 < alpha < 1) or alpha_raw / alpha_frac")
            self.alpha_raw, self.alpha_frac = strip_zeros(self.alpha_raw, self.alpha_frac)

    @property
    def properties(self) -> ActivationFunction:
        """What the function is (`nnfpga.ir.ops.activation_functions`)."""
        return activation_function(self.function, self.name)

    @property
    def auto_typed(self) -> bool:
        return self.properties.auto_typed

    @property
    def trimmable(self) -> bool:
        return self.properties.trimmable

    def float_forward(self, x: np.ndarray) -> np.ndarray:
        """The float network's function on float values (the source model's slope)."""
        return self.properties.float_function(x, self.float_alpha)

    @property
    def alpha_q(self) -> float:
        """leaky_relu: the exact slope the fixed-point model uses."""
        return math.ldexp(self.alpha_raw, -self.alpha_frac)

    @property
    def float_alpha(self) -> float | None:
        """leaky_relu: the slope of the float network (the source model's, else ``alpha_q``)."""
        if not self.properties.slope:
            return None
        return self.alpha if self.alpha is not None else self.alpha_q

    def pre_frac(self, in_frac: int) -> int:
        """Fractional bits of the exact value before the output conversion."""
        if self.function == "hard_sigmoid":
            return in_frac + 1
        if self.function == "sign":
            return 0
        if self.function == "saturating_leaky_relu":
            return max(in_frac + self.alpha_frac, self._out("saturating_leaky_relu").frac)
        return in_frac + self.alpha_frac if self.properties.slope else in_frac

    def _pre(self, x: TensorInfo) -> tuple[int, int, FixedType]:
        """Exact range and type before the output conversion."""
        f = self.function
        if f == "relu":
            lo, hi = max(x.lo, 0), max(x.hi, 0)
        elif f == "leaky_relu":
            lo, hi = (self.leaky_raw(v) for v in (x.lo, x.hi))   # monotone
        elif f == "hard_tanh":
            one = 1 << max(x.type.frac, 0)
            lo, hi = min(max(x.lo, -one), one), max(min(x.hi, one), -one)
        elif f == "hard_sigmoid":
            lo, hi = (self.hard_sigmoid_raw(v, x.type.frac) for v in (x.lo, x.hi))   # monotone
        elif f == "saturating_leaky_relu":
            floor, shift = self.saturation_raw(x.type.frac), self.pre_frac(x.type.frac) - x.type.frac - self.alpha_frac
            lo, hi = (max(self.leaky_raw(v) << shift, floor) for v in (x.lo, x.hi))   # monotone
        elif f == "sign":
            lo, hi = (1 if v >= 0 else -1 for v in (x.lo, x.hi))
        elif f == "linear":
            lo, hi = x.lo, x.hi
        else:   # an entry of activation_functions without its arithmetic here
            raise ValueError(f"activation {f!r} of {self.name!r} has no fixed-point arithmetic in the IR")
        return lo, hi, type_for_range(lo, hi, self.pre_frac(x.type.frac))

    @staticmethod
    def hard_sigmoid_raw(v: int, frac: int) -> int:
        """hard_sigmoid of one raw input integer at ``frac`` (>= 0), exactly (raw at ``frac + 1``)."""
        return min(max(v + (1 << frac), 0), 1 << (frac + 1))

    def _out(self, what: str):
        if self.out_type is None:
            raise ValueError(f"{what} {self.name!r} needs an output type")
        return self.out_type

    def saturation_raw(self, in_frac: int) -> int:
        """saturating_leaky_relu: ``alpha_q * T.min`` as a raw integer at `pre_frac`; it
        must lie on the output type's grid (QKeras: a power-of-two slope of at least
        ``2**-(bits - 1)``)."""
        t = self._out("saturating_leaky_relu")
        product = self.alpha_raw * t.min_raw   # at t.frac + alpha_frac
        if product % (1 << self.alpha_frac):
            raise ValueError(f"saturating_leaky_relu {self.name!r}: the negative saturation {self.alpha_q} * "
                             f"{t.min_value} is not a value of the output type {t}")
        return (product >> self.alpha_frac) << (self.pre_frac(in_frac) - t.frac)

    def leaky_raw(self, v: int) -> int:
        """leaky_relu of one raw input integer, exactly (raw at ``x_frac + alpha_frac``)."""
        return v << self.alpha_frac if v >= 0 else v * self.alpha_raw

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        (x,) = ins
        if self.properties.table_lookup:
            t = self.table
            return TensorInfo(x.shape, t.out_type, int(t.entries.min()), int(t.entries.max()))
        if self.function == "softmax":
            if self.out_type is None:
                raise ValueError(f"softmax {self.name!r} needs an output type")
            return TensorInfo(x.shape, self.out_type, 0, self.out_type.max_raw)
        if self.function in ("hard_tanh", "hard_sigmoid") and x.type.frac < 0:
            raise ValueError(f"{self.function} {self.name!r} needs an input with fractional bits")
        lo, hi, exact = self._pre(x)
        return output_info(self.out_type, exact, lo, hi, x.shape, exact.frac)

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo]) -> np.ndarray:
        x, info = xs[0], ins[0]
        f = self.function
        if self.properties.table_lookup:
            return self.table.lookup(x, info.type.frac)
        if f == "softmax":
            return self._softmax(x, info)
        if f == "relu":
            x = np.maximum(x, 0)
        elif f == "leaky_relu":
            x = self._leaky(x, info)
        elif f == "hard_tanh":
            one = 1 << info.type.frac
            x = np.clip(x, -one, one)
        elif f == "hard_sigmoid":   # clipped first: every value stays within [-2**f, 2**(f+1)]
            one = 1 << info.type.frac
            x = np.clip(x, -one, one) + one
        elif f == "saturating_leaky_relu":
            shift = self.pre_frac(info.type.frac) - info.type.frac - self.alpha_frac
            x = self._leaky(x, info)
            if shift:   # to the output's grid when the input is coarser: in int64, exactly
                if max(abs(info.lo), abs(info.hi)) << (self.alpha_frac + shift) >= 1 << 62:
                    raise ValueError(f"{f} {self.name!r}: the exact value needs more than 62 bits")
                x = np.left_shift(np.asarray(x).astype(np.int64), shift)
            x = np.maximum(x, self.saturation_raw(info.type.frac))
        elif f == "sign":
            x = np.where(np.asarray(x) >= 0, 1, -1)
        lo, hi, exact = self._pre(info)
        return convert(x, exact.frac, lo, hi, self.info.type)

    def _leaky(self, x: np.ndarray, info: TensorInfo) -> np.ndarray:
        """Exact ``x << alpha_frac`` / ``x * alpha_raw``: float64 while every value and
        product stays below 2**53, int64 beyond."""
        mag = max(abs(info.lo), abs(info.hi)) << self.alpha_frac
        if mag < 1 << 53:
            x = np.asarray(x, dtype=np.float64)
            return np.where(x >= 0, x * float(1 << self.alpha_frac), x * float(self.alpha_raw))
        if mag >= 1 << 62:
            raise ValueError(f"leaky_relu {self.name!r}: the exact product needs more than 62 bits")
        x = np.asarray(x).astype(np.int64)
        return np.where(x >= 0, np.left_shift(x, self.alpha_frac), x * self.alpha_raw)

    def _softmax(self, x: np.ndarray, info: TensorInfo) -> np.ndarray:
        shifted = x - x.max(axis=-1, keepdims=True)      # exact, <= 0
        e = self.table.lookup(shifted, info.type.frac)   # raw at exp out frac
        s = e.sum(axis=-1, keepdims=True)
        r = self.inv_table.lookup(s, self.table.out_type.frac)
        prod = e * r
        return self.info.type.requantize(prod, self.table.out_type.frac + self.inv_table.out_type.frac)

    def params_json(self) -> dict:
        d = {"function": self.function,
             "table": self.table.to_json() if self.table else None,
             "inv_table": self.inv_table.to_json() if self.inv_table else None}
        if self.properties.slope:
            d.update(alpha=self.alpha, alpha_raw=int(self.alpha_raw), alpha_frac=int(self.alpha_frac))
        return d

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        out = {"function": d["function"],
               "table": LookupTable.from_json(d["table"]) if d.get("table") else None,
               "inv_table": LookupTable.from_json(d["inv_table"]) if d.get("inv_table") else None}
        if activation_function(d["function"], d.get("name")).slope:
            out.update(alpha=d.get("alpha"), alpha_raw=int(d["alpha_raw"]), alpha_frac=int(d["alpha_frac"]))
        return out
