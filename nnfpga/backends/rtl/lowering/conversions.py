"""The element-wise conversions of an output stage (a layer's requantisation and the
piecewise-linear activations folded into it: linear, relu, leaky_relu,
saturating_leaky_relu, sign, hard_tanh, hard_sigmoid), and the same conversions as a stand-alone one-cycle layer.

Each folded activation is its clip and its conversion ``act.info.type.requantize(f(x),
previous type frac)``.  A leaky ReLU (`leaky`) is a choice by the sign bit between
``x`` (a deferred shift by ``alpha_frac``) and ``x * alpha_raw`` (wiring when the slope
is a power of two, else a `MulConst`, or its canonical signed digits with
`RtlConfig.shift_add`: `Builder.mul`); with multipliers it is pipelined like a layer's
products: the values before it are registered, each product passes through
``multiplier_registers`` (M) registers, ``x`` beside it; so it adds ``1 + M`` cycles to
the layer (M to a stand-alone conversion layer, whose input comes from registers).
"""

from __future__ import annotations

from typing import Callable

from nnfpga.backends.rtl.lowering.builder import Builder, RtlConfig, Value, check_in_ir_range, counted_layer
from nnfpga.backends.rtl.lowering.schedule import multiplier_registers
from nnfpga.backends.rtl.netlist import LayerInfo, Signal, Term, const
from nnfpga.ir.ops import Activation, Op as IrOp


def conversion_chain(node_list: list[IrOp]) -> list[tuple[IrOp, str]]:
    """(node, function) of each conversion; a linear layer's own is ``"linear"``."""
    return [(n, n.function if isinstance(n, Activation) else "linear") for n in node_list]


def leaky_multiplies(act: Activation, values: list[Value]) -> bool:
    """Does the leaky ReLU ``act`` need a multiplier (a slope that is not a power of two
    and an input element that can be negative)?"""
    return act.alpha_raw != 1 and any(not v.is_const and v.lo < 0 for v, _ in values)


def leaky(b: Builder, name: str, act: Activation, v: Signal, f: int, delay: int) -> Value:
    """``act``'s exact leaky ReLU of ``(v, f)``, at ``f + alpha_frac``: ``v << alpha_frac``
    (wiring) when ``v >= 0``, ``v * alpha_raw`` when ``v < 0`` -- a multiplexer selected by
    the sign bit (``alpha_raw <= 2**alpha_frac``, so at 0 both agree).  The non-negative
    branch is ``max(v, 0)``: then the multiplexer's range is the exact one.  The product
    passes through ``delay`` registers (a DSP's M and P registers), ``v`` through as many."""
    af, ar = act.alpha_frac, act.alpha_raw
    fo = f + af
    if v.lo >= 0:
        return b.delay(f"{name}_d", v, delay), f  # the value itself (the shift is deferred)
    neg = b.mul(f"{name}_m", v, ar, fo, note=f"{name}: x * {ar} (x * alpha, alpha = {ar}*2^-{af})")
    neg = b.delay(f"{name}_md", neg, delay)
    if v.hi <= 0:
        return neg, fo
    v = b.delay(f"{name}_d", v, delay)
    pos = b.materialize(f"{name}_p", b.clip(f"{name}_pos", v, 0, None, f), f, fo)
    sign = b.bit(f"{name}_sign", v, v.width - 1)
    return b.mux(name, sign, [pos, neg], fo), fo


Clip = tuple[int | None, int | None] | None
#: ``rule(builder, node, element, value, frac, previous type's frac, product delay)``
#: -> (value, frac, clip bounds) that the node's conversion then requantises
ElementRule = Callable[[Builder, IrOp, int, Signal, int, int, int], tuple[Signal, int, Clip]]


def _linear(b: Builder, node: IrOp, j: int, v: Signal, f: int, prev_frac: int, delay: int):
    return v, f, None


def _relu(b: Builder, node: IrOp, j: int, v: Signal, f: int, prev_frac: int, delay: int):
    return v, f, (0, None)


def _leaky_relu(b: Builder, node: IrOp, j: int, v: Signal, f: int, prev_frac: int, delay: int):
    v, f = leaky(b, f"{node.name}_lk{j}", node, v, f, delay)
    return v, f, None


def _saturating_leaky_relu(b: Builder, node: IrOp, j: int, v: Signal, f: int, prev_frac: int, delay: int):
    """leaky_relu, then the floor ``alpha_q * T.min`` (T the output type, the floor on its
    grid): a clip at a frac where the floor is an integer (at least T's)."""
    v, f = leaky(b, f"{node.name}_lk{j}", node, v, f, delay)
    t = node.info.type
    if f < t.frac:
        v, f = b.materialize(f"{node.name}_in{j}", v, f, t.frac), t.frac
    floor = ((node.alpha_raw * t.min_raw) >> node.alpha_frac) << (f - t.frac)
    return v, f, (floor, None)


def _sign(b: Builder, node: IrOp, j: int, v: Signal, f: int, prev_frac: int, delay: int):
    """+1 for ``v >= 0``, -1 below: the sign bit selects between two constants."""
    if v.lo >= 0 or v.hi < 0:
        return const(1 if v.lo >= 0 else -1, 0), 0, None
    sign = b.bit(f"{node.name}_sign{j}", v, v.width - 1)
    return b.mux(f"{node.name}_sg{j}", sign, [const(1, 0), const(-1, 0)], 0), 0, None


def _hard_tanh(b: Builder, node: IrOp, j: int, v: Signal, f: int, prev_frac: int, delay: int):
    v = b.materialize(f"{node.name}_in{j}", v, f, prev_frac)
    return v, prev_frac, (-(1 << prev_frac), 1 << prev_frac)


def _hard_sigmoid(b: Builder, node: IrOp, j: int, v: Signal, f: int, prev_frac: int, delay: int):
    """``clip(0.5 x + 0.5, 0, 1)`` of ``x = v * 2**-f``: ``v + 2**f`` read at ``f + 1``
    fractional bits (one adder of a constant; the halving is wiring), clipped to
    ``[0, 2**(f + 1)]``.  A value whose shift was deferred (``f < prev_frac``) keeps it,
    unless ``f < 0`` (``2**f`` must be an integer)."""
    if f < 0:
        v, f = b.materialize(f"{node.name}_in{j}", v, f, 0), 0
    v = b.sum(f"{node.name}_hs{j}", [Term(v), Term(const(1 << f))], f + 1,
              note=f"{node.name}[{j}]: x + 1 at one more fractional bit (0.5 x + 0.5)")
    return v, f + 1, (0, 1 << (f + 1))


#: The RTL of each piecewise-linear activation (and of a linear layer's own conversion).
ELEMENT_RULES: dict[str, ElementRule] = {"linear": _linear, "relu": _relu, "leaky_relu": _leaky_relu,
                                         "saturating_leaky_relu": _saturating_leaky_relu, "sign": _sign,
                                         "hard_tanh": _hard_tanh, "hard_sigmoid": _hard_sigmoid}


def apply_conversions(b: Builder, values: list[Value], convs: list[tuple[IrOp, str]],
                       in_frac: int, mr: int, registered: bool = False,
                       settle: bool = False) -> tuple[list[Value], int]:
    """Chain of conversions of the output stage, element by element, as the emulator.
    A leaky ReLU that multiplies is pipelined: a register before its multipliers (unless
    ``registered``: the values come straight from registers) and ``mr`` after them.
    ``settle``: the values come from time-multiplexed accumulators, whose signals also
    hold partial sums, so their ranges can be wider than what the layer outputs; each
    conversion's result is then clipped to the IR's exact range (`settled`).
    Returns the values and the number of register stages added."""
    prev_frac = in_frac
    extra = 0
    for node, fn in convs:
        t = node.info.type
        delay = 0
        if fn != "linear" and node.properties.slope and leaky_multiplies(node, values):
            if not registered:
                values = [(b.reg(f"{node.name}_x{j}", v, f), f) for j, (v, f) in enumerate(values)]
                extra += 1
            delay = mr
            extra += mr
        rule = ELEMENT_RULES[fn]
        new = []
        for j, (v, f) in enumerate(values):
            v, f, clip = rule(b, node, j, v, f, prev_frac, delay)
            name = f"{node.name}_q{j}"
            note = f"{node.name}[{j}]: " + ("" if fn == "linear" else f"{fn}, then ") + f"requantize to {t}"
            new.append(b.requant(name, v, f, t, clip, note))
        if settle:
            new = [settled(b, node, j, v, f) for j, (v, f) in enumerate(new)]
        check_in_ir_range(node, new)
        values, prev_frac, registered = new, t.frac, False
    return values, extra


def lower_conversion_layer(b: Builder, act: Activation, xs: list[Value], in_frac: int, cfg: RtlConfig
                           ) -> tuple[list[Value], LayerInfo]:
    b.layer = act.name
    first_op = len(b.ops)
    values, extra = apply_conversions(b, xs, [(act, act.function)], in_frac, multiplier_registers(1, cfg),
                                      registered=True)
    values = [(b.reg(f"{act.name}_y{j}", v, f), f) for j, (v, f) in enumerate(values)]
    return values, counted_layer(
        b.ops[first_op:], name=act.name, kind="activation", nodes=[act.name], latency=1 + extra, first_stage=-1,
        description=f"{act.function} -> {act.info.type}")


def settled(b: Builder, node: IrOp, j: int, v: Signal, f: int) -> Value:
    """``v`` (at ``f`` fractional bits) clipped to the IR's exact range of ``node``.  On
    every sample the layer outputs the value lies in that range, so the clip changes
    nothing there; between samples a time-multiplexed accumulator shows partial sums,
    which the clip keeps inside the range the signal declares (a VHDL integer range is
    checked on every cycle).  No logic unless the ranges differ."""
    shift = node.info.type.frac - f
    lo, hi = node.info.lo, node.info.hi
    lo_f = -((-lo) >> shift) if shift >= 0 else lo << -shift   # ceil(lo / 2**shift)
    hi_f = hi >> shift if shift >= 0 else hi << -shift          # floor(hi / 2**shift)
    return b.clip(f"{node.name}_settled{j}", v, lo_f, hi_f, f), f
