"""Quantisers in ONNX graphs: QONNX ``Quant``, ``BipolarQuant``, ``Trunc`` and the standard
``QuantizeLinear`` / ``DequantizeLinear`` pairs (QDQ), as exact fixed-point forms.

Constant tensors (weights, biases) are quantised here exactly as qonnx executes them
(``qonnx.custom_op.general.intquant.int_quant``, ``bipolar_quant``, ``trunc``) and as
onnxruntime runs QDQ; the results are exact multiples of powers of two, and a
`QuantMark` remembers that they are quantised (and whether they are ternary or binary,
which the backends build without multipliers).

On activations a quantiser becomes a fixed-point type.  qonnx's
``Quant(x, scale=2**-f, zero_point=0, bitwidth=b, signed, narrow=0, rounding_mode)`` is
``clamp(round(x / scale), min_int, max_int) * scale`` -- it clamps before rounding, which
with integer bounds is the same as rounding first -- so with ``ROUND`` (numpy's half to
even) it is ``ap_fixed<b, b-f, RND_CONV, SAT>`` (``ap_ufixed`` when unsigned) and with
``FLOOR`` the same with TRN.  ``QuantizeLinear`` + ``DequantizeLinear`` with a power-of-two
scale and zero point 0 is the same with the integer type's width (int8: 8 bits, signed).

Everything else cannot be exact, and is refused with the reason (`Unsupported`):
a scale that is not a power of two (the values ``k * scale`` are not on a binary grid),
a non-zero zero point on an activation (the clamp range is shifted off every saturating
type's), narrow range on an activation (it clamps at ``-(2**(b-1) - 1)``, SAT does not),
rounding modes other than ROUND/HALF_EVEN/FLOOR on activations, per-channel scales on an
activation (one tensor has one type), Trunc of qonnx opset 1 (it rescales its value by ``2**-(in_bits-out_bits)``).
``BipolarQuant`` on an activation is the IR's sign function (`onnx_ops`), with a
power-of-two scale.  On weights, every rounding mode, narrow range and integer zero points are exact (the
integers are computed here) and are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from nnfpga.ir.fixed import FixedType, Overflow, Rounding, type_for_range
from nnfpga.ir.quant import Quantizer, WeightKind

#: Domains whose Quant / BipolarQuant / Trunc nodes follow qonnx's definitions.
QONNX_DOMAINS = ("qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general")
#: QONNX's channels-last ops (``ConvertToChannelsLastAndClean``): the standard op on an
#: (N, spatial..., C) tensor, with its weights and attributes as the standard op has them.
CHANNELS_LAST_DOMAIN = "qonnx.custom_op.channels_last"

#: qonnx rounding modes on activations, as ap_fixed roundings.
ACTIVATION_ROUNDING = {"ROUND": Rounding.RND_CONV, "HALF_EVEN": Rounding.RND_CONV, "FLOOR": Rounding.TRN}

_PO2_HINT = ("use power-of-two scales (e.g. Brevitas' *FixedPoint quantisers, "
             "restrict_scaling_type=POWER_OF_TWO)")


class Unsupported(Exception):
    """Why one ONNX node cannot be converted exactly (collected and reported together)."""


@dataclass(frozen=True)
class QuantMark:
    """A constant produced by a quantiser: its kind, and for ternary/binary its single scale."""

    kind: WeightKind = WeightKind.FIXED
    scale: float | None = None


# ----------------------------------------------------------------------------- checks
def _fmt(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.size == 1:
        return f"{float(a.reshape(-1)[0]):.9g}"
    return f"[{', '.join(f'{float(v):.6g}' for v in a.reshape(-1)[:4])}{', ...' if a.size > 4 else ''}]"


def po2_exponents(scale, what: str) -> np.ndarray:
    """Exponents ``e`` with ``scale == 2**e`` element-wise, or `Unsupported`."""
    s = np.asarray(scale, dtype=np.float64)
    if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise Unsupported(f"{what} {_fmt(s)} is not a positive number")
    mant, exp = np.frexp(s)
    if np.any(mant != 0.5):
        raise Unsupported(f"{what} {_fmt(s)} is not a power of two: the quantised values k*scale are not on "
                          f"a binary grid, so no fixed-point type holds them exactly; {_PO2_HINT}")
    return (exp - 1).astype(np.int64)


def scalar_po2(scale, what: str) -> int:
    """The one exponent of a per-tensor power-of-two scale."""
    exps = np.unique(po2_exponents(scale, what))
    if exps.size != 1:
        raise Unsupported(f"{what} has per-channel values {_fmt(np.asarray(scale))}: an activation has one "
                          "fixed-point type, so it needs a single (per-tensor) scale")
    return int(exps[0])


def _zero_point_zero(zp, what: str) -> None:
    if zp is not None and np.any(np.asarray(zp, dtype=np.float64) != 0):
        raise Unsupported(f"{what} zero point {_fmt(np.asarray(zp))} is not 0: an offset clamp range "
                          "[min_int - zp, max_int - zp] * scale is not the range of any saturating "
                          "fixed-point type; export with zero point 0 (symmetric quantisation)")


def bit_width(bits, what: str, lo: int = 1) -> int:
    b = np.asarray(bits, dtype=np.float64)
    if b.size != 1 or b.reshape(-1)[0] != np.round(b.reshape(-1)[0]) or not lo <= b.reshape(-1)[0] <= 62:
        raise Unsupported(f"{what} bit width {_fmt(b)} must be one integer in [{lo}, 62]")
    return int(b.reshape(-1)[0])


def activation_rounding(mode: str, what: str) -> Rounding:
    r = ACTIVATION_ROUNDING.get(str(mode).upper())
    if r is None:
        raise Unsupported(f"{what} rounding_mode {mode!r} has no exact form in the IR; supported on activations: "
                          "ROUND / HALF_EVEN (ap_fixed RND_CONV) and FLOOR (TRN)")
    return r


def int_spec(dtype) -> tuple[int, bool]:
    """(bits, signed) of an integer numpy dtype (including ml_dtypes' int4/uint4/int2)."""
    m = re.fullmatch(r"(u?)int(\d+)", np.dtype(dtype).name)
    if not m:
        raise Unsupported(f"quantised type {np.dtype(dtype).name} is not an integer type; supported: "
                          "int2..int32, uint2..uint32 (float8/float4 have no fixed-point form)")
    return int(m.group(2)), not m.group(1)


# ----------------------------------------------------------------------------- activations
def quant_activation_type(scale, zero_point, bits, signed: bool, narrow: bool, rounding_mode: str,
                          what: str = "Quant") -> FixedType:
    """qonnx ``Quant`` on an activation as the exactly equivalent fixed-point type."""
    frac = -scalar_po2(scale, f"{what} scale")
    _zero_point_zero(zero_point, what)
    b = bit_width(bits, what)
    if b == 1 and signed:
        raise Unsupported(f"{what} with 1 signed bit is a sign (bipolar) activation, which the IR has no "
                          "activation for")
    if narrow:
        raise Unsupported(f"{what} with narrow=1 on an activation clamps at "
                          f"{'-(2**(b-1)-1)' if signed else '2**b-2'}, which ap_fixed saturation does not; "
                          "export activation quantisers with narrow_range=False")
    return FixedType(b, b - frac, bool(signed), activation_rounding(rounding_mode, what), Overflow.SAT)


def qdq_activation_type(scale, zero_point, dtype, what: str = "QuantizeLinear") -> FixedType:
    """``QuantizeLinear`` (followed by the matching ``DequantizeLinear``) on an activation."""
    frac = -scalar_po2(scale, f"{what} scale")
    _zero_point_zero(zero_point, what)
    bits, signed = int_spec(dtype)
    if bits > 62:
        raise Unsupported(f"{what} to {bits}-bit integers exceeds the supported 62 bits")
    return FixedType(bits, bits - frac, signed, Rounding.RND_CONV, Overflow.SAT)


def trunc_activation_types(scale, zero_point, out_scale, out_bits, signed: bool, narrow: bool,
                           rounding_mode: str) -> tuple[FixedType, FixedType]:
    """qonnx ``Trunc`` (opset 2) as two conversions.

    ``y = round(x / s)`` (half to even; a no-op when x is on the grid of s, as Brevitas
    exports it), ``y / 2**t`` with ``2**t = out_scale / s``, clamp to the output bits, round
    by ``rounding_mode``, times ``out_scale``.  The first conversion saturates at a width
    where every clipped value still clamps to the same final bound.
    """
    fs = -scalar_po2(scale, "Trunc scale")
    fo = -scalar_po2(out_scale, "Trunc output scale")
    _zero_point_zero(zero_point, "Trunc")
    ob = bit_width(out_bits, "Trunc output", lo=2)
    if narrow:
        raise Unsupported("Trunc with narrow=1 clamps at -(2**(b-1)-1), which ap_fixed saturation does not")
    t = fs - fo
    w1 = ob + max(t, 0) + 2
    if w1 > 62:
        raise Unsupported(f"Trunc by {t} bits to {ob} bits needs a {w1}-bit intermediate (at most 62)")
    first = FixedType(w1, w1 - fs, True, Rounding.RND_CONV, Overflow.SAT)
    second = FixedType(ob, ob - fo, bool(signed), activation_rounding(rounding_mode, "Trunc"), Overflow.SAT)
    return first, second


# ----------------------------------------------------------------------------- constants
def _qonnx_round(mode: str):
    """qonnx's ``resolve_rounding_mode`` (float64 here: the clamped values are small
    multiples of 1/2, exact in either precision)."""
    m = str(mode).upper()
    table = {
        "ROUND": np.round, "HALF_EVEN": np.round, "CEIL": np.ceil, "FLOOR": np.floor, "DOWN": np.fix,
        "UP": lambda x: np.sign(x) * np.ceil(np.abs(x)),
        "HALF_UP": lambda x: np.sign(x) * np.floor(np.abs(x) + 0.5),
        "HALF_DOWN": lambda x: np.sign(x) * np.ceil(np.abs(x) - 0.5),
    }
    if m not in table:
        raise Unsupported(f"rounding_mode {mode!r} is not one of qonnx's ({', '.join(table)})")
    return table[m]


def _single_scale(scale: np.ndarray) -> float | None:
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    return float(s[0]) if s.size and np.all(s == s[0]) else None


def _integer_zero_point(zp, what: str) -> np.ndarray:
    z = np.asarray(zp if zp is not None else 0.0, dtype=np.float64)
    if np.any(z != np.round(z)):
        raise Unsupported(f"{what} zero point {_fmt(z)} is not an integer")
    return z


def quant_constant(x, scale, zero_point, bits, signed: bool, narrow: bool,
                   rounding_mode: str) -> tuple[np.ndarray, QuantMark]:
    """qonnx ``Quant`` on a constant (weights), exactly as ``int_quant`` computes it."""
    po2_exponents(scale, "Quant scale")
    scale = np.asarray(scale, dtype=np.float64)
    zp = _integer_zero_point(zero_point, "Quant")
    b = bit_width(bits, "Quant")
    y = np.asarray(x, dtype=np.float64) / scale + zp     # exact: a power-of-two scale
    if b == 1 and signed:
        y = np.where(y >= 0.0, 1.0, -1.0)
    else:
        lo = -(2 ** (b - 1)) + (1 if narrow else 0) if signed else 0
        hi = 2 ** (b - 1) - 1 if signed else 2 ** b - 1 - (1 if narrow else 0)
        y = _qonnx_round(rounding_mode)(np.clip(y, lo, hi))
    values = (y - zp) * scale
    single = _single_scale(scale)
    kind = WeightKind.FIXED
    if single is not None and np.all(zp == 0):
        if b == 1 and signed:
            kind = WeightKind.BINARY
        elif b == 2 and signed and narrow:
            kind = WeightKind.TERNARY
    return values, QuantMark(kind, single if kind is not WeightKind.FIXED else None)


def bipolar_constant(x, scale) -> tuple[np.ndarray, QuantMark]:
    """qonnx ``BipolarQuant`` on a constant: ``where(x >= 0, 1, -1) * scale``."""
    po2_exponents(scale, "BipolarQuant scale")
    scale = np.asarray(scale, dtype=np.float64)
    values = np.where(np.asarray(x, dtype=np.float64) >= 0.0, 1.0, -1.0) * scale
    single = _single_scale(scale)
    return values, QuantMark(WeightKind.BINARY if single is not None else WeightKind.FIXED, single)


def trunc_constant(x, scale, zero_point, in_bits, out_scale, out_bits, signed: bool, narrow: bool,
                   rounding_mode: str, version: int) -> tuple[np.ndarray, QuantMark]:
    """qonnx ``Trunc`` (v1 or v2) on a constant, as qonnx computes it."""
    po2_exponents(scale, "Trunc scale")
    scale = np.asarray(scale, dtype=np.float64)
    zp = _integer_zero_point(zero_point, "Trunc")
    y = np.round(np.asarray(x, dtype=np.float64) / scale + zp)
    fx = _qonnx_round(rounding_mode)
    if version < 2:
        y = fx(y / 2.0 ** (bit_width(in_bits, "Trunc input") - bit_width(out_bits, "Trunc output")))
        return (y - zp) * scale, QuantMark()
    po2_exponents(out_scale, "Trunc output scale")
    ts = 2.0 ** np.round(np.log2(np.asarray(out_scale, dtype=np.float64) / scale))
    b = bit_width(out_bits, "Trunc output")
    lo = -(2 ** (b - 1)) + (1 if narrow else 0) if signed else 0
    hi = 2 ** (b - 1) - 1 if signed else 2 ** b - 1 - (1 if narrow else 0)
    y = fx(np.clip(y / ts, lo, hi))
    return (y - zp / ts) * np.asarray(out_scale, dtype=np.float64), QuantMark()


def _along_axis(p, x: np.ndarray, axis: int) -> np.ndarray:
    """A per-tensor (scalar) or per-axis (1-D) parameter broadcast against ``x``."""
    p = np.asarray(p)
    if p.ndim == 0 or p.size == 1:
        return p.reshape(())
    if p.ndim != 1 or p.size != x.shape[axis]:
        raise Unsupported(f"a per-axis parameter of shape {p.shape} does not match axis {axis} of {x.shape}")
    shape = [1] * x.ndim
    shape[axis] = -1
    return p.reshape(shape)


def quantize_linear_constant(x, scale, zero_point, axis: int, dtype) -> np.ndarray:
    """``QuantizeLinear`` on a constant: saturate(round_half_even(x / scale) + zp)."""
    x = np.asarray(x, dtype=np.float64)
    po2_exponents(scale, "QuantizeLinear scale")
    axis = axis % max(x.ndim, 1)
    bits, signed = int_spec(dtype)
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    zp = _along_axis(zero_point if zero_point is not None else 0, x, axis).astype(np.float64)
    q = np.clip(np.rint(x / _along_axis(scale, x, axis).astype(np.float64)) + zp, lo, hi)
    return q.astype(np.int64)


def dequantize_linear_constant(x, scale, zero_point, axis: int) -> tuple[np.ndarray, QuantMark]:
    """``DequantizeLinear`` on a constant: ``(x - zp) * scale``, exact for power-of-two scales."""
    x = np.asarray(x)
    po2_exponents(scale, "DequantizeLinear scale")
    axis = axis % max(x.ndim, 1)
    zp = _along_axis(zero_point if zero_point is not None else 0, x, axis).astype(np.float64)
    values = (x.astype(np.float64) - zp) * _along_axis(scale, x, axis).astype(np.float64)
    return values, QuantMark()


# ----------------------------------------------------------------------------- weights
def exact_frac(values: np.ndarray) -> int:
    """The fewest fractional bits with which every value is an integer (values are
    float64, so each is a 53-bit integer times a power of two)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[v != 0]
    if v.size == 0:
        return 0
    mant, exp = np.frexp(v)
    ints = np.abs(mant * 2.0 ** 53).astype(np.int64)
    lowest = ints & -ints                         # the lowest set bit
    zeros = np.frexp(lowest.astype(np.float64))[1] - 1
    return int((53 - exp - zeros).max())


def exact_quantizer(values: np.ndarray, what: str, max_frac: int | None = None) -> Quantizer:
    """A fixed quantiser that reproduces ``values`` exactly (or, when ``max_frac`` caps the
    fractional bits, rounds them half to even there)."""
    frac = exact_frac(values)
    if max_frac is not None:
        frac = min(frac, max_frac)
    raw = np.rint(np.asarray(values, dtype=np.float64) * 2.0 ** frac)
    lo, hi = (int(raw.min()), int(raw.max())) if raw.size else (0, 0)
    try:
        t = type_for_range(min(lo, 0), max(hi, 0), frac, Rounding.RND_CONV, Overflow.SAT)
    except ValueError:
        raise Unsupported(f"{what} need more than 62 bits to be held exactly") from None
    return Quantizer(WeightKind.FIXED, t)


def weight_quantizer(values: np.ndarray, mark: QuantMark, what: str) -> Quantizer:
    """The IR quantiser of quantised weights: ternary / binary kept as such, else exact."""
    if mark.kind is WeightKind.TERNARY and mark.scale is not None:
        return Quantizer(WeightKind.TERNARY, scale=mark.scale, threshold=mark.scale / 2)
    if mark.kind is WeightKind.BINARY and mark.scale is not None:
        return Quantizer(WeightKind.BINARY, scale=mark.scale)
    return exact_quantizer(values, what)
