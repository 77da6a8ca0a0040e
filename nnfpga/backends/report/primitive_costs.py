"""LUT and carry-chain costs of the primitives Yosys ``synth_xilinx`` builds from our
Verilog: carry-chain adders, constant adders, comparators, LUT-ROMs, RAMB18 shapes.  The
estimator (`estimator`) charges every netlist operation with these."""

from __future__ import annotations

import math
from dataclasses import dataclass

#: (depth, width) configurations of a RAMB18.
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))


@dataclass
class Operand:
    lsb: int      # lowest bit that can be non-zero
    top: int      # one above the highest information bit
    signed: bool  # extended by copies of its top bit (else by zeros)


def operand(width: int, signed: bool, shift: int, neg: bool) -> Operand:
    # a negated operand is inverted: its zero extension turns into ones, like a sign
    return Operand(shift, shift + width, signed or neg)


def adder_cost(p: Operand, q: Operand, w: int) -> tuple[int, int, Operand]:
    """(LUTs, CARRY4s, result) of a two-signal carry-chain adder of output width ``w``."""
    lo = max(p.lsb, q.lsb)
    shorter, longer = (p, q) if p.top <= q.top else (q, p)
    hi = longer.top if shorter.signed else shorter.top
    hi = min(hi, w)
    luts = max(0, hi - lo)
    chain = max(0, w - lo)
    return luts, math.ceil(chain / 4), Operand(min(p.lsb, q.lsb), w, True)


def const_adder_cost(c: int, w: int) -> tuple[int, int]:
    """(inverters, CARRY4s) of adding constant ``c`` to a signal, output width ``w``: the
    chain starts at the constant's lowest set bit."""
    pattern = c & ((1 << w) - 1)
    if pattern == 0:
        return 0, 0
    lo = (pattern & -pattern).bit_length() - 1
    return bin(pattern).count("1"), math.ceil((w - lo) / 4)


def sum_cost(terms: list[tuple[int, bool, int, bool]], const: int, w: int) -> tuple[int, int, int]:
    """(LUTs, CARRY4s, chain adders in series) of ``sum(+-(x << s)) + const``; ``terms``
    are (width, signed, shift, neg) of the signal terms."""
    if not terms:
        return 0, 0, 0
    carry_in = [t for t in terms if t[0] == 1 and not t[1] and not t[3]]
    rest = [t for t in terms if not (t[0] == 1 and not t[1] and not t[3])]
    if carry_in and (len(rest) >= 1 or const):
        carry_in = carry_in[1:]  # one single-bit term rides on the carry-in
    terms = rest + carry_in
    if not terms:  # only single bits plus maybe a constant
        return 0, 1, 1
    luts = carry = series = 0
    ops = [operand(*t) for t in terms]
    acc = ops[0]
    if len(ops) == 1:
        width, signed, shift, neg = terms[0]
        if neg:
            n = max(0, w - shift)
            luts, carry, series = n, math.ceil(n / 4), 1
        if const:
            i, c = const_adder_cost(const, w)
            luts, carry, series = luts + i, carry + c, series + 1
        return luts, carry, series
    for q in ops[1:]:
        lu, ca, acc = adder_cost(acc, q, w)
        luts, carry, series = luts + lu, carry + ca, series + 1
    if const:
        i, c = const_adder_cost(const, w)
        luts, carry, series = luts + i, carry + c, series + 1
    return luts, carry, series


def pow2_exponent(v: int) -> int | None:
    return v.bit_length() - 1 if v > 0 and v & (v - 1) == 0 else None


def comparator_cost(a_width: int, a_signed: bool, bound: int, upper: bool) -> tuple[int, int]:
    """(LUTs, CARRY4s) of ``a > bound`` (upper) or ``a < bound``."""
    if not upper:
        if bound == 0 and a_signed:
            return 0, 0  # the sign bit
        k = pow2_exponent(-bound) if bound < 0 else None
        if k is not None and a_signed:
            return math.ceil(max(1, a_width - 1 - k) / 6), 0
    else:
        k = pow2_exponent(bound + 1)
        if k is not None:
            return math.ceil(max(1, a_width - k) / 6), 0
    return math.ceil(a_width / 2), math.ceil(a_width / 4)


def bram18_count(entries: int, width: int) -> int:
    return min(math.ceil(entries / d) * math.ceil(width / w) for d, w in BRAM18_SHAPES)


def lut_rom_cost(entries: tuple[int, ...], width: int) -> float:
    """LUTs of one asynchronous read of a table: per output bit one LUT6 per distinct
    non-constant 64-entry slice, plus the 4:1 multiplexers above MUXF7/F8."""
    n = len(entries)
    k = max((n - 1).bit_length(), 1)
    if k <= 6:
        return float(width)
    chunks = math.ceil(n / 64)
    total = 0
    for b in range(width):
        bits = [(e >> b) & 1 for e in entries]
        every = {tuple(bits[i:i + 64]) for i in range(0, n, 64)}
        total += sum(1 for s in every if any(s) and not all(s))
        if len(every) == 1:
            continue  # the same function in every slice: no multiplexer
        # multiplexers: MUXF7/F8 merge 4 slices for free; above, one LUT6 per 4:1 mux
        level = math.ceil(chunks / 4)
        while level > 1:
            level = math.ceil(level / 4)
            total += level
    return float(total)
