"""The longest combinational path through a few built operations, by the part family's
delay model (`nnfpga.backends.rtl.timing`): what a linear layer's output stage (its
accumulator, conversion and folded activations) costs between its two registers, so the
lowering can split the stage where it would not fit the clock period.

Adders and clips are charged as the report's estimator charges them (chained carry-chain
adders, comparators and a multiplexer LUT), a multiplexer `Delays.select`; shifts, bit
selects and wrap-around are wiring.  A register ends a path.  Products and
memories are not priced here (None): the stages that hold them are scheduled elsewhere.
"""

from __future__ import annotations

from nnfpga.backends.report.primitive_costs import comparator_cost, sum_cost
from nnfpga.backends.rtl.netlist import Acc, Clip, Max, Mul, MulConst, Mux, Op, Reg, Rom, Sum, flat_ops
from nnfpga.backends.rtl.timing import Delays


def _delay(op: Op, d: Delays) -> float:
    """As the report's estimator charges the operation (`nnfpga.backends.report.estimator`),
    with the primitives' costs of `primitive_costs`, in the family's delays."""
    carry4 = d.carry_cell * 4 / d.carry_bits
    if isinstance(op, Sum):
        terms = [(t.sig.width, t.sig.signed, t.shift, t.neg) for t in op.terms if not t.sig.is_const]
        const = sum((-1 if t.neg else 1) * (t.sig.value << t.shift) for t in op.terms if t.sig.is_const)
        _, carry, series = sum_cost(terms, const, op.out.width)
        return series * (d.lut + d.carry_io) + carry * carry4 if series else 0.0
    if isinstance(op, Clip):
        carry = sum(comparator_cost(op.a.width, op.a.signed, bound, up)[1]
                    for bound, up in ((op.lo, False), (op.hi, True)) if bound is not None)
        return d.lut + (d.carry_io + carry * carry4 if carry else 0.0)
    if isinstance(op, Max):
        return d.adder(max(op.a.width, op.b.width)) + d.lut
    if isinstance(op, Mux):
        return d.select(len(op.inputs))
    return 0.0


def combinational_ns(ops: list[Op], delays: Delays) -> float | None:
    """The longest path (ns, register overhead not included) through ``ops``, from the
    signals they read (registered) to their results or to a register among them."""
    arrival: dict[int, float] = {}
    longest = 0.0
    for op in flat_ops(ops):
        if isinstance(op, (Mul, MulConst, Rom, Acc)):
            return None
        start = max((arrival.get(id(s), 0.0) for s in op.operands() if not s.is_const), default=0.0)
        if isinstance(op, Reg):
            longest = max(longest, start)
            arrival[id(op.out)] = 0.0
            continue
        arrival[id(op.out)] = start + _delay(op, delays)
        longest = max(longest, arrival[id(op.out)])
    return longest
