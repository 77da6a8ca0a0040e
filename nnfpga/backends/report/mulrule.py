"""THE rule deciding whether a constant multiplication takes DSP slices or LUT shift-add.

One function, `mul_dsp_count`, used by the analytic estimator (`estimator`) and meant to
be called by the RTL lowering when it decides how to build a product, so that both agree
with each other and with synthesis.  It has no dependency on the RTL package.

The rule is the one Yosys 0.23 ``synth_xilinx`` applies to the ``a * c`` the RTL
printers write (``mul2dsp.v`` with the ``-D`` values of ``synth_xilinx``), and which
Vivado follows closely for constant coefficients:

* after width reduction the data operand keeps its width (a signed operand keeps its
  sign-extension bits, an unsigned one loses its zero extension), the constant operand
  keeps its significant bits (``c.bit_length()`` for ``c > 0``; the full product width
  for a negative constant, written as a two's complement literal);
* a product whose **result is narrower than 9 bits**, or with an operand narrower than 2
  bits, is *small*: it becomes LUT shift-add logic (one adder per further set bit of
  ``c``), never a DSP;
* otherwise it takes DSP slices: one when both operands (one bit wider each, DSPs
  multiply signed numbers) fit the multiplier (27x18 for DSP48E2, 25x18 for DSP48E1);
  a wider product is split into 18-bit slices of the wide operand, one DSP each.

Identical products (same data signal, same constant) are built once: synthesis merges
them, so the estimator counts *distinct* products (see `estimator`).
"""

from __future__ import annotations

#: Products narrower than this many bits become LUT shift-add logic.
DSP_MIN_RESULT_BITS = 9
#: Operands narrower than this never go to a DSP.
DSP_MIN_OPERAND_BITS = 2

#: (A max, B max, A partial width) of the multiplier of each DSP primitive.
DSP_SHAPES = {"DSP48E2": (27, 18, 18), "DSP48E1": (25, 18, 18)}


def const_operand_bits(c: int, out_width: int) -> int:
    """Width of the constant operand after synthesis' width reduction."""
    if c >= 0:
        return max(int(c).bit_length(), 1)
    return out_width  # a negative constant is an all-ones-topped W-bit literal


def data_operand_bits(a_width: int, a_signed: bool, out_width: int) -> int:
    """Width of the data operand after width reduction: the printers extend it to the
    product width; zero extension is removed again, sign extension is not."""
    return out_width if a_signed else a_width


def _split(width_a: int, width_b: int, dsp_type: str) -> int:
    a_max, b_max, a_part = DSP_SHAPES.get(dsp_type, DSP_SHAPES["DSP48E2"])
    if width_a < width_b:
        width_a, width_b = width_b, width_a
    if width_a > a_max:
        n = (width_a - a_max + a_part - 2) // (a_part - 1)
        last = width_a - n * (a_part - 1)
        return n * _split(a_part, width_b, dsp_type) + _split(last, width_b, dsp_type)
    if width_b > b_max:
        n = (width_b - b_max + b_max - 2) // (b_max - 1)
        last = width_b - n * (b_max - 1)
        return n * _split(width_a, b_max, dsp_type) + _split(width_a, last, dsp_type)
    return 1


def mul_dsp_count(a_width: int, a_signed: bool, c: int, out_width: int,
                  dsp_type: str = "DSP48E2") -> int:
    """DSP slices of the product ``a * c`` (``a`` an ``a_width``-bit signal, the result
    ``out_width`` bits); 0 means LUT shift-add logic.  See the module doc."""
    c = int(c)
    if c == 0 or (c > 0 and c & (c - 1) == 0):
        return 0  # zero or a power of two: wiring
    wa = data_operand_bits(a_width, a_signed, out_width)
    wb = const_operand_bits(c, out_width)
    if out_width < DSP_MIN_RESULT_BITS or min(wa, wb) < DSP_MIN_OPERAND_BITS:
        return 0
    # unsigned operands get one more (zero) bit: the DSP multiplies signed numbers
    return _split(wa + (0 if a_signed else 1), wb + 1, dsp_type)


def shift_add_terms(c: int, out_width: int) -> list[int]:
    """The shifts of the partial products of a LUT multiplication: one per set bit of
    ``c`` (as the ``out_width``-bit pattern synthesis sees)."""
    pattern = int(c) & ((1 << out_width) - 1)
    return [k for k in range(out_width) if pattern >> k & 1]


def var_mul_dsp_count(a_width: int, a_signed: bool, b_width: int, b_signed: bool, out_width: int,
                      dsp_type: str = "DSP48E2") -> int:
    """DSP slices of a product of two signals (a time-multiplexed multiplier unit).  The
    printers write ``$signed(a) * $signed(b)`` at the operands' own widths (an unsigned
    operand gets one zero bit on top), so unlike a constant product nothing is extended
    to the product width: Yosys maps the operands as they are (checked against
    ``synth_xilinx`` by ``tests/test_rtl_models.py::test_dsp_count_matches_yosys``)."""
    wa, wb = a_width, b_width
    if out_width < DSP_MIN_RESULT_BITS or min(wa, wb) < DSP_MIN_OPERAND_BITS:
        return 0
    return _split(wa + (0 if a_signed else 1), wb + (0 if b_signed else 1), dsp_type)
