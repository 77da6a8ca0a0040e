"""The one rule for what a product costs: DSP slices, or LUT shift-add logic.

The lowering (per-layer DSP counts in ``rtl.json``), the resource estimator
(``report.json``) and the reuse-factor search all call this module, so they cannot
disagree.  It models what Yosys 0.23 ``synth_xilinx`` does with the products the RTL
printers write (the ``mul2dsp`` technology mapping with the ``-D`` values
``synth_xilinx`` passes for the family; Vivado maps constant coefficients closely
alike):

* a product with an operand narrower than 2 bits, or a result narrower than 9 bits,
  is LUT logic;
* a multiplier whose operands are both unsigned gets one zero bit on each (the DSP
  multiplies signed numbers);
* the wider operand goes to the A port.  While A is wider than the A port it is cut
  into slices of ``a_partial - 1`` bits (plus a sign bit of headroom) and a last slice
  with the rest; then B likewise; every slice is such a product again (with the same
  minimum widths), and a slice whose weight ``2**shift`` lies above the result's width
  contributes nothing and is removed.  A slice that fits is one DSP.

Port shapes (Xilinx UG579 for DSP48E2: a 27 x 18 multiplier; UG479 for DSP48E1: 25 x
18); the 18-bit partial A slice is the one ``synth_xilinx`` uses on both.  The rule was
checked against Yosys on 100 random products of each kind (constant and two-signal,
operands 2..40 bits), including the wide cases where splitting matters; the slow test
``tests/test_rtl_models.py::test_dsp_rule_matches_yosys`` re-checks a set of them.

How the printers write a product decides its operand widths:

* a constant product (`MulConst`) is unsigned: the data operand extended to the
  product width (a zero extension synthesis removes again, a sign extension it cannot)
  times the constant's significant bits (a negative constant is a product-width two's
  complement literal); a constant that is a power of two is a shift, never a multiplier;
* a product of two signals (`Mul`, a multiplier unit of a time-multiplexed layer, the
  softmax normalisation, a banked weight) is signed at the operands' own widths (an
  unsigned operand gets one zero bit, a constant its bit length plus a sign bit).

With ``--max-dsp 0`` (`RtlConfig.shift_add`) no constant product is a multiplier: the
lowering writes ``x * c`` as the canonical-signed-digit terms of ``c`` (`csd`), shifted
copies of ``x`` added or subtracted in the output's adder tree, so this rule never sees
them.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnfpga.backends.rtl.distinct import DistinctOps
from nnfpga.backends.rtl.netlist import Mul, MulConst, Op, Signal


@dataclass(frozen=True)
class DspShape:
    """The multiplier of one DSP primitive as ``synth_xilinx`` maps to it."""

    name: str
    a_max: int
    b_max: int
    a_partial: int
    b_partial: int
    a_min: int = 2
    b_min: int = 2
    y_min: int = 9


DSP_SHAPES = {s.name: s for s in (DspShape("DSP48E2", 27, 18, 18, 18),
                                  DspShape("DSP48E1", 25, 18, 18, 18),
                                  # Versal DSP58 (AM004): a 27 x 24 multiplier.  Yosys has no
                                  # Versal mapping; wider products are cut as on the others.
                                  DspShape("DSP58", 27, 24, 18, 18))}


def dsp_shape(dsp_type: str) -> DspShape:
    try:
        return DSP_SHAPES[dsp_type]
    except KeyError:
        raise ValueError(f"unknown DSP type {dsp_type!r} (known: {', '.join(DSP_SHAPES)})") from None


def multiplier_dsp(a_width: int, b_width: int, y_width: int, signed: bool,
                   dsp_type: str = "DSP48E2") -> int:
    """DSP slices of one ``a x b -> y`` multiplier as synthesis sees it (both operands
    signed, or both unsigned); 0 means LUT logic.  See the module doc."""
    shape = dsp_shape(dsp_type)
    if not signed:
        if a_width < shape.a_min or b_width < shape.b_min or y_width < shape.y_min:
            return 0
        a_width, b_width = a_width + 1, b_width + 1
    return _signed_dsp(shape, max(a_width, b_width), min(a_width, b_width), y_width, 0, y_width)


def _slices(wide: int, full: int, part: int) -> list[tuple[int, int]]:
    """(width, shift) of the slices of a ``wide``-bit operand cut for a ``full``-bit port:
    partial slices of ``part - 1`` bits (a sign bit of headroom each), then the rest."""
    step = part - 1
    n = (wide - full + step - 1) // step
    return [(part, i * step) for i in range(n)] + [(wide - n * step, n * step)]


def _signed_dsp(shape: DspShape, a: int, b: int, y: int, shift: int, y_top: int) -> int:
    # (a slice's own result width only matters for the 9-bit minimum: ``b + w`` suffices)
    if shift >= y_top:
        return 0  # every bit of this slice lies above the result: removed
    if a < shape.a_min or b < shape.b_min or y < shape.y_min:
        return 0
    if a > shape.a_max:
        return sum(_signed_dsp(shape, w, b, b + w, shift + s, y_top)
                   for w, s in _slices(a, shape.a_max, shape.a_partial))
    if b > shape.b_max:
        return sum(_signed_dsp(shape, a, w, a + w, shift + s, y_top)
                   for w, s in _slices(b, shape.b_max, shape.b_partial))
    return 1


def const_product_dsp(a_width: int, a_signed: bool, c: int, y_width: int, dsp_type: str = "DSP48E2") -> int:
    """DSP slices of the constant product ``a * c`` (``a`` an ``a_width``-bit signal,
    result ``y_width`` bits) as the printers write it."""
    c = int(c)
    if c == 0 or (c > 0 and c & (c - 1) == 0):
        return 0
    a = y_width if a_signed else a_width
    b = c.bit_length() if c > 0 else y_width
    return multiplier_dsp(a, b, y_width, False, dsp_type)


def signal_product_dsp(a_width: int, a_signed: bool, b_width: int, b_signed: bool, y_width: int,
                       dsp_type: str = "DSP48E2") -> int:
    """DSP slices of the product of two signals, ``$signed`` at their own widths."""
    return multiplier_dsp(a_width + (0 if a_signed else 1), b_width + (0 if b_signed else 1), y_width,
                          True, dsp_type)


def _signed_width(s: Signal) -> int:
    return abs(s.value).bit_length() + 1 if s.is_const else s.width + (0 if s.signed else 1)


def op_dsp(op: Op, dsp_type: str = "DSP48E2") -> int:
    """DSP slices of one netlist operation (0 for anything but a product)."""
    if isinstance(op, MulConst):
        return const_product_dsp(op.a.width, op.a.signed, op.c, op.out.width, dsp_type)
    if isinstance(op, Mul):
        return multiplier_dsp(_signed_width(op.a), _signed_width(op.b), op.out.width, True, dsp_type)
    return 0


def layer_dsp(distinct: DistinctOps, dsp_type: str = "DSP48E2") -> dict[str, int]:
    """DSP slices per layer of a netlist's distinct, live operations (`distinct`): what
    synthesis keeps (identical products built once, dead ones removed)."""
    out: dict[str, int] = {}
    for op in distinct.unique:
        n = op_dsp(op, dsp_type)
        if n:
            out[op.out.layer] = out.get(op.out.layer, 0) + n
    return out


def lut_product_shifts(c: int, y_width: int) -> list[int]:
    """The partial products of a constant product built in LUTs: one shifted copy of the
    operand per set bit of ``c`` (as the ``y_width``-bit pattern synthesis sees)."""
    pattern = int(c) & ((1 << y_width) - 1)
    return [k for k in range(y_width) if pattern >> k & 1]


def csd(c: int) -> list[tuple[int, int]]:
    """The canonical signed digits of ``c``: ``(shift, sign)`` pairs, lowest first, with
    ``c == sum(sign << shift)``, ``sign`` +1 or -1 and no two shifts adjacent (the
    non-adjacent form: the fewest non-zero digits of any signed-digit form of ``c``)."""
    c = int(c)
    out, k = [], 0
    while c:
        if c & 1:
            d = 2 - (c & 3)  # +1 when c = 1 mod 4, -1 when c = 3 mod 4: the next bit is then 0
            out.append((k, d))
            c -= d
        c >>= 1
        k += 1
    return out
