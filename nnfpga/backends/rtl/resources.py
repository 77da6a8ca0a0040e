"""How many DSP slices the multipliers of a description take (UltraScale+ DSP48E2).

The rule is the one Yosys applies to our Verilog (`synth_xilinx -family xcup`, the
``mul2dsp`` mapping: 27 x 18 signed multipliers, minimum operand widths 2 and 2,
minimum product width 9), so the analytic count and a Yosys synthesis agree:

* a multiplier whose product is narrower than 9 bits, or one of whose operands is
  narrower than 2 bits, is built in LUTs (shift-and-add logic): 0 DSPs;
* otherwise, with ``a`` and ``b`` its operand widths as signed numbers (an unsigned
  operand takes one more bit) and ``a >= b``: one DSP when ``a <= 27`` and ``b <= 18``;
  a wider one is split like ``mul2dsp`` does, ``ceil((a - 27) / 17) + 1`` pieces along
  ``a`` times ``ceil((b - 18) / 17) + 1`` along ``b``.

A constant multiplier (`MulConst`, reuse factor 1) is printed as an unsigned product of
the operand extended to the product width and the odd constant: its operand widths are
then the product width (the operand's own width when it is unsigned: Yosys drops a
zero extension) and the constant's bit length.  Identical products (the same input by
the same constant, for two outputs) are merged by synthesis and count once.  A multiplier unit (`Mul`, reuse
factor > 1) multiplies its data input by the weight sequence, both signed at their own
widths.  Weights that are zero or ``+-2**k`` never reach a multiplier.
"""

from __future__ import annotations

from nnfpga.backends.rtl.netlist import Mul, MulConst, Op

DSP_A_MAX, DSP_B_MAX = 27, 18
DSP_A_MIN, DSP_B_MIN, DSP_Y_MIN = 2, 2, 9


def _pieces(width: int, full: int) -> int:
    return 1 if width <= full else 1 + -(-(width - full) // (full - 1))


def dsp_for(a_signed_width: int, b_signed_width: int, y_width: int) -> int:
    """DSP48E2 slices of one ``a x b -> y`` signed multiplier (the rule above)."""
    a, b = sorted((a_signed_width, b_signed_width), reverse=True)
    if b < DSP_B_MIN or a < DSP_A_MIN or y_width < DSP_Y_MIN:
        return 0
    return _pieces(a, DSP_A_MAX) * _pieces(b, DSP_B_MAX)


def dsp_of(op: Op) -> int:
    if isinstance(op, MulConst):
        w = op.out.width  # both operands unsigned in the Verilog: one more bit each
        a = op.a.width if not op.a.signed else w  # a zero-extension is dropped, a sign-extension kept
        return dsp_for(a + 1, abs(op.c).bit_length() + 1, w)
    if isinstance(op, Mul):
        def sw(s):
            return (abs(s.value).bit_length() + 1) if s.is_const else s.width + (0 if s.signed else 1)
        return dsp_for(sw(op.a), sw(op.b), op.out.width)
    return 0


def dsp_count(ops: list[Op]) -> int:
    """DSP slices of ``ops``: identical products (the same input by the same constant
    for two outputs) are one circuit after synthesis (common subexpressions are merged),
    so they count once."""
    seen: dict[tuple, int] = {}
    for op in ops:
        if isinstance(op, MulConst):
            seen[("c", id(op.a), op.c)] = dsp_of(op)
        elif isinstance(op, Mul):
            seen[("m", id(op.a), id(op.b))] = dsp_of(op)
    return sum(seen.values())
