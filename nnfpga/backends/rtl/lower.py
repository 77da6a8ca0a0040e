"""Lowering: an IR graph (a chain of Input, Dense, Conv2D, MaxPool2D, Activation,
Reshape) to a `Netlist`.

Supported: Input; Dense and Conv2D (any reuse factor) with the linear / relu /
leaky_relu / hard_tanh Activations that follow them folded into their output stage;
MaxPool2D; tanh / sigmoid Activations as ROM layers (`_lower_table`); softmax
(`_lower_softmax`); a linear / relu / leaky_relu / hard_tanh Activation that follows no
Dense as a conversion layer (one cycle; a leaky ReLU with multipliers takes more, see
below); Reshape/Flatten (wiring: the bus is the IR layout, NHWC flattened row-major).
Anything else raises `RtlUnsupportedError` naming the layer.

Numerics follow the golden emulator exactly; only the representation changes:

* a value travels as ``(signal, frac)``: the real value is ``raw * 2**-frac``.  Shifts
  that only append zero bits are *deferred*: a product by ``w = odd * 2**k`` is the
  signal ``x * odd`` at ``frac - k``, and an adder aligns its two operands to the finer
  of their scales.  Narrower adders, identical values.
* every signal's range is exact for its position: per element, from the integer
  weights and the producing signals' ranges (tighter than the IR's per-tensor ranges,
  which `lower` checks it stays inside).
* a value whose range is a single integer is a constant: it is folded (a ReLU output
  that can never be positive, a product with a constant input, ...).

Dense and Conv2D are both a `LinearPlan`: per output ``j`` a list of (input, weight)
pairs and a bias.  A convolution's output ``(y, x, f)`` reads the inputs of its
receptive field (zero padding contributes nothing); at reuse factor 1 every output
position has its own constant multipliers (fully parallel, the whole input map on the
bus).

Reuse factor 1, per output ``j``:

1. products ``x_i * w_ij`` for every non-zero weight whose input is not constant.
   ``|w| = odd * 2**k``: ``odd == 1`` (ternary, binary, powers of two, ``+-2**k`` fixed
   weights) is wiring, the input itself, its sign handled by the adder tree; otherwise a
   `MulConst` by ``odd`` (one multiplier per such weight).  When the layer has at least
   one multiplier, products pass through ``multiplier_registers`` (M, default 2)
   registers (the inputs used by wiring terms through as many shared registers each, so
   every leaf is at the same stage); without multipliers the tree reads the inputs
   directly.
2. a balanced adder tree: leaves paired in order at every level; negative leaves become
   subtractions (only an all-negative sum needs a negation, in the output stage).  A
   register follows every ``levels_per_register`` levels and the last level.  Outputs
   with fewer leaves pass through registers so every output has the same latency.
   The bias (and the contributions of constant inputs) is one constant, added where a
   node has no partner at some level (free: that node is only being registered), else
   in the output stage.
3. output stage: the layer's conversion ``node.info.type.requantize(acc, acc_frac)``,
   then for each folded Activation (linear, relu, leaky_relu, hard_tanh) its clip and
   conversion ``act.info.type.requantize(f(x), previous type frac)``; registered.  A
   leaky ReLU (`_leaky`) is a choice by the sign bit between ``x`` (a deferred shift by
   ``alpha_frac``) and ``x * alpha_raw`` (wiring when the slope is a power of two, else a
   `MulConst`).  A leaky ReLU with multipliers is pipelined like a layer's products: the
   values before it are registered, each product passes through ``multiplier_registers``
   (M) registers, ``x`` beside it, then the choice and the conversion follow; so it adds
   ``1 + M`` cycles to the layer (M to a stand-alone conversion layer, whose input comes
   from registers).

Reuse factor R > 1 (`_reuse_leaves`): the N multiplications by non-powers of two,
ordered by (output, input), are cut into ``ceil(N / R)`` consecutive groups of at most
R; each group is one multiplier unit (`Mul`, a DSP) that performs one of its
multiplications per cycle.  The schedule, for a sample whose ``in_valid`` reaches the
layer in cycle ``t``:

* cycle ``t``: the inputs the units read are captured in registers enabled by the
  layer's valid bit (they hold until the next sample, at least R cycles later), and the
  phase counter is started;
* cycles ``t+1 .. t+R`` (phase ``p = 0 .. R-1``): each unit multiplies the input its
  phase selects (a multiplexer over the captured inputs) by the weight of that phase (a
  small constant table addressed by the phase: the weights are a sequence of R constants
  repeated for every sample); the product passes through M registers (the DSP's M and
  P registers), the phase through M registers beside it;
* cycles ``t+1+M .. t+R+M``: the unit adds the registered product into the partial sum
  of its output (an `Acc` per unit and output; the phases of one output are consecutive
  in a unit, so the first loads, the others add);
* cycle ``t+R+M+1``: every partial sum is complete (and stays so until the next sample's
  first product for that output, at least R cycles later): these, and the
  multiplier-free terms (``+-x_i * 2**k``: wiring, the inputs delayed R + M + 1 cycles
  by plain registers, not time-multiplexed), are the leaves of the adder tree of the
  reuse-1 case, followed by the same output stage.

So the layer accepts a sample in any cycle at least R cycles after the previous one
(II = R), its latency is ``R + M + 1 + ceil(depth / levels_per_register) + 1``, and the
network's II is the largest of its layers'.  A layer with no multiplication to share
(ternary, binary, power-of-two weights) is built as at reuse 1 (II 1) and says so in
its description.  The phase counter idles at R (reset and power-up value), when no
partial sum changes.

MaxPool2D: per output a balanced tree of two-input maxima over the in-bound window
elements, registered like an adder tree (outputs of shallower, border windows are
delayed to the same latency).  Softmax: see `_lower_softmax`.

Latency of a linear layer: ``[M if multipliers] + ceil(depth / levels_per_register) + 1``
at reuse 1 with ``depth = ceil(log2(max leaves over outputs))``; see above for R > 1;
plus ``1 + M`` per folded leaky ReLU with multipliers; a table layer: 2; a stand-alone
conversion: 1 (``1 + M`` for a leaky ReLU with multipliers); a pooling layer: its tree's
register levels (at least 1); the optional input register: 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from nnfpga.core.errors import UserError
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, BankedDense, Conv2D, Dense, Input, MaxPool2D, Op as IrOp, Reshape
from nnfpga.ir.ops.conv2d import window_geometry
from nnfpga.backends.rtl.names import PACKAGE_SUFFIX, RESERVED, Namer, top_name, unit_name
from nnfpga.backends.rtl.resources import dsp_count
from nnfpga.backends.rtl.netlist import (Acc, Bit, Clip, Counter, InputSlice, LayerInfo, Max, Mul,
                                        MulConst, Mux, Netlist, Op, Reg, Requant, Rom, RomTable, Shr,
                                        Signal, Sum, Term, ValidTap, Wrap, acyclic_pass, const,
                                        flat_ops)


class RtlUnsupportedError(UserError, ValueError):
    """The model uses something the RTL backend cannot build (yet); names the layer."""


@dataclass(frozen=True)
class RtlConfig:
    """Options of the RTL lowering.

    ``levels_per_register``: adder-tree levels between two pipeline registers (1 = a
    register after every level).  ``register_input``: register ``in_data`` before the
    first layer (one more cycle of latency).  ``multiplier_registers``: registers after
    every multiplier (1 to 3; a DSP48E2 absorbs them as its M and P registers, and the
    default 2 lets a multiplier run at 400+ MHz on UltraScale+); the multiplier-free
    terms of the same layer are delayed alike.
    """

    levels_per_register: int = 1
    register_input: bool = False
    multiplier_registers: int = 2

    def __post_init__(self) -> None:
        lpr = self.levels_per_register
        if isinstance(lpr, bool) or not isinstance(lpr, int) or lpr < 1:
            raise ValueError(f"levels_per_register must be an integer >= 1, got {lpr!r}")
        mr = self.multiplier_registers
        if isinstance(mr, bool) or not isinstance(mr, int) or not 1 <= mr <= 3:
            raise ValueError(f"multiplier_registers must be 1, 2 or 3, got {mr!r}")


# --------------------------------------------------------------------------- builder
@dataclass(eq=False)
class Node:
    """A value ``(-1 if neg else 1) * sig * 2**-frac`` inside an adder tree."""

    sig: Signal
    frac: int
    neg: bool = False


def _strip(raw: int, frac: int) -> tuple[int, int]:
    """Remove trailing zero bits of a constant: same value, fewer fractional bits."""
    if raw == 0:
        return 0, frac
    while raw % 2 == 0:
        raw //= 2
        frac -= 1
    return raw, frac


def _align_add(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    """Exact sum of two constants ``(raw, frac)``; None is zero."""
    if a is None:
        return b
    if b is None:
        return a
    f = max(a[1], b[1])
    raw = (a[0] << (f - a[1])) + (b[0] << (f - b[1]))
    return None if raw == 0 else _strip(raw, f)


class Builder:
    """Appends primitive operations, deriving ranges and folding constants."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.namer = Namer(set(RESERVED))
        self.layer = ""
        #: the bank index at the latest stage a banked layer needed it (delays are shared)
        self.bank_tap: Signal | None = None

    # every method returns the signal holding the result; it may be an existing one
    # (nothing to compute) or a constant (folded), in which case no operation is added
    def _add(self, op: Op, name: str, frac: int) -> Signal:
        lo, hi = op.range()
        if lo == hi:
            return const(lo, frac)
        op.out = Signal(self.namer.take(name), lo, hi, frac, None, self.layer)
        op.out.stage, op.out.seq = op.stage(), op.seq()
        self.ops.append(op)
        return op.out

    def input_slice(self, name: str, index: int, t: FixedType, offset: int | None = None) -> Signal:
        return self._add(InputSlice(None, index=index, elem_type=t, offset=offset), name, t.frac)

    def mul(self, name: str, a: Signal, c: int, frac: int, note: str = "") -> Signal:
        if a.is_const or c in (0, 1):
            return const(a.value * c, frac) if (a.is_const or c == 0) else a
        return self._add(MulConst(None, a=a, c=c, note=note), name, frac)

    def sum(self, name: str, terms: list[Term], frac: int, note: str = "") -> Signal:
        c, live = 0, []  # the constant part; the signal terms
        for t in terms:
            if t.sig.is_const:
                c += (-1 if t.neg else 1) * (t.sig.value << t.shift)
            else:
                live.append(t)
        if not live:
            return const(c, frac)
        if c:
            live.append(Term(const(c, frac)))
        if len(live) == 1 and live[0].shift == 0 and not live[0].neg:
            return live[0].sig
        return self._add(Sum(None, terms=live, note=note), name, frac)

    def shr(self, name: str, a: Signal, s: int, frac: int) -> Signal:
        if s == 0:
            return a
        if a.is_const:
            return const(a.value >> s, frac)
        return self._add(Shr(None, a=a, s=s), name, frac)

    def bit(self, name: str, a: Signal, k: int) -> Signal:
        if a.is_const:
            return const((a.value >> k) & 1)
        if k >= a.width:
            if not a.signed:
                return const(0)
            k = a.width - 1  # above the top bit every bit is the sign
        return self._add(Bit(None, a=a, k=k), name, 0)

    def clip(self, name: str, a: Signal, lo: int | None, hi: int | None, frac: int) -> Signal:
        lo = lo if lo is not None and lo > a.lo else None
        hi = hi if hi is not None and hi < a.hi else None
        if lo is None and hi is None:
            return a
        op = Clip(None, a=a, lo=lo, hi=hi)
        if a.is_const or (lo is not None and lo >= a.hi) or (hi is not None and hi <= a.lo):
            return const(op.apply(a.lo), frac)
        return self._add(op, name, frac)

    def wrap(self, name: str, a: Signal, t: FixedType, frac: int) -> Signal:
        if t.contains(a.lo, a.hi):
            return a
        if a.is_const:
            return const(int(t.with_modes(overflow=Overflow.WRAP).requantize(
                np.array([a.value], dtype=np.int64), t.frac)[0]), frac)
        return self._add(Wrap(None, a=a, type=t), name, frac)

    def rom(self, name: str, a: Signal, table: RomTable, frac: int) -> Signal:
        if a.is_const:
            return const(table.entries[a.value], frac)
        return self._add(Rom(None, a=a, table=table), name, frac)

    def reg(self, name: str, a: Signal, frac: int | None = None, en: Signal | None = None,
            reset: int | None = None) -> Signal:
        """``a`` one cycle later; ``frac`` (default ``a.frac``) labels the value's scale
        (a signal read as a tree leaf can stand for a value at another scale).  ``en``:
        load only when it is 1; ``reset``: the value after ``rst``."""
        if a.is_const and reset is None:
            return a
        return self._add(Reg(None, a=a, en=en, reset=reset), name, a.frac if frac is None else frac)

    def delay(self, name: str, a: Signal, cycles: int) -> Signal:
        for k in range(cycles):
            a = self.reg(f"{name}_d{k + 1}" if cycles > 1 else name, a)
        return a

    def valid(self, name: str, delay: int) -> Signal:
        return self._add(ValidTap(None, delay=delay), name, 0)

    def counter(self, name: str, start: Signal, n: int) -> Signal:
        return self._add(Counter(None, start=start, n=n), name, 0)

    def mux(self, name: str, sel: Signal, inputs: list[Signal], frac: int) -> Signal:
        if all(s is inputs[0] for s in inputs):
            return inputs[0]
        return self._add(Mux(None, sel=sel, inputs=inputs), name, frac)

    def mult(self, name: str, a: Signal, bb: Signal, frac: int, note: str = "") -> Signal:
        if a.is_const and bb.is_const:
            return const(a.value * bb.value, frac)
        return self._add(Mul(None, a=a, b=bb, note=note), name, frac)

    def max(self, name: str, a: Signal, bb: Signal, frac: int) -> Signal:
        if bb.lo >= a.hi:
            return bb
        if a.lo >= bb.hi:
            return a
        return self._add(Max(None, a=a, b=bb), name, frac)

    def acc(self, name: str, a: Signal, sel: Signal, first: int, last: int,
            terms: list[tuple[int, int]], stage: int, frac: int, note: str = "") -> Signal:
        return self._add(Acc(None, a=a, sel=sel, first=first, last=last, terms=terms,
                             aligned_stage=stage, note=note), name, frac)

    def requant(self, name: str, a: Signal, a_frac: int, t: FixedType,
                clip: tuple[int | None, int | None] | None = None,
                note: str = "") -> tuple[Signal, int]:
        """``t.requantize(clip(a), a_frac)``; returns the result and its frac.  When no
        bit is dropped and nothing overflows the value is returned as it is, possibly at
        fewer fractional bits than ``t`` (a deferred left shift)."""
        outer, self.ops = self.ops, []
        try:
            v, f = a, a_frac
            if clip is not None:
                v = self.clip(f"{name}_clip", v, clip[0], clip[1], f)
            shift = f - t.frac
            if shift > 0:  # drop bits: round, then arithmetic shift right
                half = 1 << (shift - 1)
                if t.rounding is Rounding.RND:
                    v = self.sum(f"{name}_rnd", [Term(v), Term(const(half))], f)
                elif t.rounding is Rounding.RND_CONV:
                    b = self.bit(f"{name}_lsb", v, shift)
                    v = self.sum(f"{name}_rnd", [Term(v), Term(const(half - 1)), Term(b)], f)
                v, f = self.shr(f"{name}_shr", v, shift, t.frac), t.frac
            elif shift < 0 and not t.contains(v.lo << -shift, v.hi << -shift):
                v, f = self.sum(f"{name}_shl", [Term(v, -shift)], t.frac), t.frac
            if f == t.frac and not t.contains(v.lo, v.hi):
                if t.overflow is Overflow.SAT:
                    v = self.clip(f"{name}_sat", v, t.min_raw, t.max_raw, f)
                else:
                    v = self.wrap(f"{name}_wrap", v, t, f)
            steps = self.ops
        finally:
            self.ops = outer
        if v.is_const or not steps:
            return v, f
        op = Requant(v, a=a, a_frac=a_frac, type=t, clip=clip, steps=steps,
                     note=note or f"requantize to {t}")
        self.ops.append(op)
        return v, f

    def materialize(self, name: str, v: Signal, f: int, frac: int) -> Signal:
        """The same value at exactly ``frac`` fractional bits (``f <= frac``): wiring."""
        if f > frac:
            raise AssertionError(f"cannot materialize {v!r} at fewer fractional bits")
        if f == frac:
            return v
        if v.is_const:
            return const(v.value << (frac - f), frac)
        return self.sum(name, [Term(v, frac - f)], frac)


# --------------------------------------------------------------------------- lowering
Value = tuple[Signal, int]


def _unsupported(node: IrOp, why: str) -> RtlUnsupportedError:
    return RtlUnsupportedError(f"layer {node.name!r} ({node.op_type}"
                               f"{' ' + node.function if isinstance(node, Activation) else ''}): {why}")


def _check_in_ir_range(node: IrOp, values: list[Value]) -> None:
    """Our per-element ranges must lie inside the IR's per-tensor range."""
    t = node.info.type
    for j, (s, f) in enumerate(values):
        lo, hi = s.lo << (t.frac - f), s.hi << (t.frac - f)
        if lo < node.info.lo or hi > node.info.hi:
            raise AssertionError(f"RTL range [{lo}, {hi}] of {node.name}[{j}] is outside the IR's "
                                 f"[{node.info.lo}, {node.info.hi}]: range analyses disagree")


def _conversions(node_list: list[IrOp]) -> list[tuple[IrOp, str]]:
    out = []
    for n in node_list:
        if isinstance(n, (Dense, BankedDense, Conv2D)):
            out.append((n, "none"))
        else:
            out.append((n, n.function))
    return out


def _leaky_multiplies(act: Activation, values: list[Value]) -> bool:
    """Does the leaky ReLU ``act`` need a multiplier (a slope that is not a power of two
    and an input element that can be negative)?"""
    return act.alpha_raw != 1 and any(not v.is_const and v.lo < 0 for v, _ in values)


def _leaky(b: Builder, name: str, act: Activation, v: Signal, f: int, delay: int) -> Value:
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


def _apply_conversions(b: Builder, values: list[Value], convs: list[tuple[IrOp, str]],
                       in_frac: int, mr: int, registered: bool = False) -> tuple[list[Value], int]:
    """Chain of conversions of the output stage, element by element, as the emulator.
    A leaky ReLU that multiplies is pipelined: a register before its multipliers (unless
    ``registered``: the values come straight from registers) and ``mr`` after them.
    Returns the values and the number of register stages added."""
    prev_frac = in_frac
    extra = 0
    for node, fn in convs:
        t = node.info.type
        delay = 0
        if fn == "leaky_relu" and _leaky_multiplies(node, values):
            if not registered:
                values = [(b.reg(f"{node.name}_x{j}", v, f), f) for j, (v, f) in enumerate(values)]
                extra += 1
            delay = mr
            extra += mr
        new = []
        for j, (v, f) in enumerate(values):
            clip = None
            if fn == "relu":
                clip = (0, None)
            elif fn == "leaky_relu":
                v, f = _leaky(b, f"{node.name}_lk{j}", node, v, f, delay)
            elif fn == "hard_tanh":
                v, f = b.materialize(f"{node.name}_in{j}", v, f, prev_frac), prev_frac
                clip = (-(1 << f), 1 << f)
            name = f"{node.name}_q{j}"
            note = f"{node.name}[{j}]: " + ("" if fn in ("none", "linear") else f"{fn}, then ") + \
                f"requantize to {t}"
            new.append(b.requant(name, v, f, t, clip, note))
        _check_in_ir_range(node, new)
        values, prev_frac, registered = new, t.frac, False
    return values, extra


@dataclass
class LinearPlan:
    """A linear layer as lists of weights: output ``j`` is ``sum(w * x[i] for i, w in
    cols[j]) + bias[j]`` (raw integers; weights at ``kf`` fractional bits, biases as
    ``(raw, frac)``).  Dense and Conv2D both lower through it."""

    name: str
    cols: list[list[tuple[int, int]]]
    bias: list[tuple[int, int] | None]
    kf: int
    acc_frac: int
    reuse: int
    description: str
    #: a BankedDense: per output the (input, per-bank weights) pairs and the per-bank
    #: biases at ``acc_frac``
    bank_cols: list[list[tuple[int, tuple[int, ...]]]] | None = None
    bank_bias: list[tuple[int, ...]] | None = None


def _dense_plan(dense: Dense, n_in: int, in_frac: int) -> LinearPlan:
    if dense.kernel_q is None:
        raise _unsupported(dense, "the layer is not quantised")
    w = dense.kernel_q.raw
    if w.shape != (n_in, dense.n_out):
        raise _unsupported(dense, f"kernel shape {w.shape} does not match {n_in} inputs")
    cols = [[(int(i), int(w[i, j])) for i in np.flatnonzero(w[:, j])] for j in range(dense.n_out)]
    bias = _biases(dense.bias_q, dense.n_out, lambda j: j)
    kinds = sorted({dense.kernel_q.kind.value})
    return LinearPlan(dense.name, cols, bias, dense.kernel_q.frac, dense.acc_frac(in_frac),
                      _reuse(dense), f"Dense {n_in}->{dense.n_out} ({', '.join(kinds)} weights)")


def _banked_plan(dense: BankedDense, n_in: int, in_frac: int) -> LinearPlan:
    w = dense.kernel_q.raw
    if w.shape[1:] != (n_in, dense.n_out):
        raise _unsupported(dense, f"kernel shape {w.shape} does not match {n_in} inputs")
    acc_frac = dense.acc_frac(in_frac)
    cols = [[(int(i), tuple(int(v) for v in w[:, i, j])) for i in np.flatnonzero(np.any(w[:, :, j], axis=0))]
            for j in range(dense.n_out)]
    if dense.bias_q is None:
        bias = [(0,) * dense.banks] * dense.n_out
    else:
        shift = acc_frac - dense.bias_q.frac
        bias = [tuple(int(v) << shift for v in dense.bias_q.raw[:, j]) for j in range(dense.n_out)]
    return LinearPlan(dense.name, [], [None] * dense.n_out, dense.kernel_q.frac, acc_frac, _reuse(dense),
                      f"BankedDense {n_in}->{dense.n_out} x {dense.banks} banks "
                      f"({dense.kernel_q.kind.value} weights, selected by the bank index)",
                      bank_cols=cols, bank_bias=bias)


def _bank_table(b: Builder, name: str, per_bank: tuple[int, ...], bank_bits: int, note: str) -> RomTable:
    """A ROM addressed by the bank index; addresses past the last bank read bank 0."""
    entries = tuple(per_bank) + (per_bank[0],) * ((1 << bank_bits) - len(per_bank))
    return RomTable(b.namer.take(name), entries, note=note)


def _biases(bias_q, n: int, channel) -> list[tuple[int, int] | None]:
    out = []
    for j in range(n):
        raw = 0 if bias_q is None else int(bias_q.raw.reshape(-1)[channel(j)])
        out.append(_strip(raw, bias_q.frac) if raw else None)
    return out


def _reuse(node: IrOp) -> int:
    r = node.reuse_factor
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
        raise _unsupported(node, f"reuse factor {r!r} is not an integer >= 1")
    return int(r)


def _conv_plan(conv: Conv2D, in_shape: tuple[int, ...], in_frac: int) -> LinearPlan:
    """Every output element of the convolution as a column of (input index, weight):
    the inputs of its receptive field in NHWC order; zero padding contributes nothing."""
    if conv.kernel_q is None:
        raise _unsupported(conv, "the layer is not quantised")
    h, w, c = in_shape
    k = conv.kernel_q.raw
    kh, kw = conv.kernel_size
    f = conv.n_filters
    (oh, ow), (pt, _, pl, _) = window_geometry((h, w), (kh, kw), conv.strides, conv.padding)
    cols = []
    for y in range(oh):
        for x in range(ow):
            taps = []
            for dy in range(kh):
                for dx in range(kw):
                    iy, ix = y * conv.strides[0] + dy - pt, x * conv.strides[1] + dx - pl
                    if 0 <= iy < h and 0 <= ix < w:
                        taps += [((iy * w + ix) * c + ch, dy, dx, ch) for ch in range(c)]
            for fi in range(f):
                cols.append([(i, int(k[dy, dx, ch, fi])) for i, dy, dx, ch in taps if k[dy, dx, ch, fi] != 0])
    bias = _biases(conv.bias_q, oh * ow * f, lambda j: j % f)
    kinds = sorted({conv.kernel_q.kind.value})
    return LinearPlan(conv.name, cols, bias, conv.kernel_q.frac, conv.acc_frac(in_frac), _reuse(conv),
                      f"Conv2D {h}x{w}x{c} -> {oh}x{ow}x{f}, {kh}x{kw} kernel, stride {conv.strides}, "
                      f"{conv.padding} ({', '.join(kinds)} weights)")


def _lower_linear(b: Builder, plan: LinearPlan, xs: list[Value], folded: list[Activation],
                  cfg: RtlConfig, node: IrOp) -> tuple[list[Value], LayerInfo]:
    """Dense or Conv2D (``node``) with the foldable activations that follow it."""
    name = plan.name
    b.layer = name
    first_op = len(b.ops)
    stages = {s.stage for s, _ in xs if not s.is_const}
    if len(stages) > 1:
        raise AssertionError(f"inputs of {name} are at different stages {stages}")
    s0 = stages.pop() if stages else 0

    mr = cfg.multiplier_registers
    if plan.bank_cols is not None:
        leaves, consts, start, n_units, R = _banked_leaves(b, plan, xs, s0, mr)
    else:
        leaves, consts, start, n_units, R = _fixed_leaves(b, plan, xs, s0, mr)

    # ---- balanced adder trees --------------------------------------------------------
    depth = max((math.ceil(math.log2(len(r))) for r in leaves if len(r) > 1), default=0)
    lpr = cfg.levels_per_register
    nodes = leaves
    for level in range(1, depth + 1):
        registered = level % lpr == 0 or level == depth
        new_nodes = []
        for j, row in enumerate(nodes):
            new = []
            for k in range(0, len(row) - 1, 2):
                new.append(_combine(b, f"{name}_s{level}_{j}_{k // 2}", row[k], row[k + 1]))
            if len(row) % 2:
                last = row[-1]
                if consts[j] is not None:  # a free slot: add the constant here
                    last = _add_const(b, f"{name}_s{level}_{j}_{len(row) // 2}", last, consts[j])
                    consts[j] = None
                new.append(last)
            if registered:
                new = [Node(b.reg(f"{name}_r{level}_{j}_{k}", n.sig, n.frac), n.frac, n.neg)
                       for k, n in enumerate(new)]
            new_nodes.append(new)
        nodes = new_nodes

    # ---- output stage: accumulator, conversions, register -------------------------
    acc_frac = plan.acc_frac
    values: list[Value] = []
    for j, row in enumerate(nodes):
        c = consts[j]
        if not row:
            raw, f = c if c is not None else (0, acc_frac)
            values.append((const(raw, f), f))
            continue
        (root,) = row
        if root.neg or c is not None:
            f = max(root.frac, c[1]) if c is not None else root.frac
            terms = [Term(root.sig, f - root.frac, root.neg)]
            if c is not None:
                terms.append(Term(const(c[0], c[1]), f - c[1]))
            acc = b.sum(f"{name}_acc{j}", terms, f, note=f"{name}[{j}]: accumulator"
                        + (" + bias" if c is not None else "") + (" (negated sum)" if root.neg else ""))
            values.append((acc, f))
        else:
            values.append((root.sig, root.frac))
    values, extra = _apply_conversions(b, values, _conversions([node, *folded]), acc_frac, mr)
    last = folded[-1].name if folded else name
    values = [(b.reg(f"{last}_y{j}", v, f), f) for j, (v, f) in enumerate(values)]

    latency = start + math.ceil(depth / lpr) + 1 + extra
    layer_ops = flat_ops(b.ops[first_op:])
    sched = (f"; reuse {R}: {n_units} multiplier units, a sample every {R} cycles" if R > 1 else
             (f"; reuse factor {plan.reuse} asked, but no multiplier to share: fully parallel"
              if plan.reuse > 1 else ""))
    desc = (plan.description + "".join(f" + {a.function} -> {a.info.type}" for a in folded)
            + f"; tree depth {depth}" + sched)
    info = LayerInfo(name=name, kind=node.op_type.lower(), nodes=[name, *(a.name for a in folded)],
                     latency=latency, first_stage=-1,
                     multipliers=sum(isinstance(op, (MulConst, Mul)) for op in layer_ops),
                     adders=sum(isinstance(op, Sum) and op.is_adder for op in layer_ops),
                     register_bits=_register_bits(layer_ops),
                     description=desc, ii=R, reuse_factor=plan.reuse)
    return values, info


def _fixed_leaves(b: Builder, plan: LinearPlan, xs: list[Value], s0: int, mr: int):
    """Constant weights: (tree leaves per output, constant per output, the leaves' stage
    offset, multiplier units, the layer's II)."""
    name, kf = plan.name, plan.kf
    # ---- per output: constant part and the (input, odd, shift, sign) items ----------
    plan_items: list[list[tuple[int, int, int, bool]]] = []
    consts: list[tuple[int, int] | None] = []
    for j, col in enumerate(plan.cols):
        items, c = [], plan.bias[j]
        for i, wij in col:
            x, fx = xs[i]
            if x.is_const:
                c = _align_add(c, None if x.value == 0 else _strip(x.value * wij, fx + kf))
                continue
            mag = abs(wij)
            k = (mag & -mag).bit_length() - 1
            items.append((i, mag >> k, k, wij < 0))
        plan_items.append(items)
        consts.append(c)
    n_mult = sum(odd != 1 for items in plan_items for (_, odd, _, _) in items)
    R = plan.reuse if n_mult else 1
    if R > 1:
        leaves, start = _reuse_leaves(b, name, plan_items, xs, kf, R, s0, mr)
        n_units = -(-n_mult // R)
    else:
        leaves, start = _parallel_leaves(b, name, plan_items, xs, kf, mr), mr * int(n_mult > 0)
        n_units = n_mult
    return leaves, consts, start, n_units, R


def _banked_leaves(b: Builder, plan: LinearPlan, xs: list[Value], s0: int, mr: int):
    """A BankedDense: like `_fixed_leaves`, but a weight that differs between banks is a
    `Mul` of the input by a ROM of the per-bank weights addressed by the bank index (at
    reuse R > 1 the units' weight tables hold a sequence per bank), and a bias that
    differs is a ROM leaf of the tree.  Weights equal in every bank are constants as in a
    Dense layer; zero in every bank, never built."""
    name, kf, acc_frac = plan.name, plan.kf, plan.acc_frac
    tap = b.bank_tap
    bank = b.bank_tap = b.delay(f"{name}_bank", tap, s0 - tap.stage)
    bits = tap.width
    plan_items: list[list[tuple[int, int, int, bool]]] = []
    banked: list[list[tuple[int, tuple[int, ...]]]] = []
    consts: list[tuple[int, int] | None] = []
    bias_rows: list[tuple[int, ...] | None] = []
    for j, col in enumerate(plan.bank_cols):
        items, var, cb = [], [], list(plan.bank_bias[j])
        for i, wv in col:
            x, fx = xs[i]
            if x.is_const:
                cb = [c + ((x.value * w) << (acc_frac - fx - kf)) for c, w in zip(cb, wv)]
            elif len(set(wv)) == 1:
                mag = abs(wv[0])
                k = (mag & -mag).bit_length() - 1
                items.append((i, mag >> k, k, wv[0] < 0))
            else:
                var.append((i, wv))
        plan_items.append(items)
        banked.append(var)
        uniform = len(set(cb)) == 1
        consts.append(_strip(cb[0], acc_frac) if uniform and cb[0] else None)
        bias_rows.append(None if uniform else tuple(cb))
    n_mult = sum(odd != 1 for items in plan_items for (_, odd, _, _) in items) + sum(map(len, banked))
    R = plan.reuse if n_mult else 1
    if R > 1:
        leaves, start = _reuse_leaves(b, name, plan_items, xs, kf, R, s0, mr, banked, bank)
        n_units = -(-n_mult // R)
        bias_bank = b.delay(f"{name}_bankd", bank, start)
    else:
        start, n_units = mr * int(n_mult > 0), n_mult
        leaves = _parallel_leaves(b, name, plan_items, xs, kf, mr, product_stage=n_mult > 0)
        for j, var in enumerate(banked):
            for i, wv in var:
                x, fx = xs[i]
                table = _bank_table(b, f"{name}_w{i}_{j}", wv, bits, f"{name}: w[{i},{j}] by bank")
                w = b.rom(f"{name}_wr{i}_{j}", bank, table, kf)
                m = b.mult(f"{name}_m{i}_{j}", x, w, fx + kf, note=f"{name}: x{i} * w[{i},{j}] of the bank")
                leaves[j].append(Node(b.delay(f"{name}_p{i}_{j}", m, mr), fx + kf))
        bias_bank = b.delay(f"{name}_bankd", bank, start)
    for j, row in enumerate(bias_rows):
        if row is not None:
            table = _bank_table(b, f"{name}_b{j}", row, bits, f"{name}: bias[{j}] by bank")
            leaves[j].append(Node(b.rom(f"{name}_br{j}", bias_bank, table, acc_frac), acc_frac))
    return leaves, consts, start, n_units, R


def _register_bits(ops: list[Op]) -> int:
    return sum(op.out.width for op in ops if isinstance(op, (Reg, Acc, Counter)))


def _parallel_leaves(b: Builder, name: str, plan_items, xs: list[Value], kf: int,
                     mr: int, product_stage: bool | None = None) -> list[list[Node]]:
    """Reuse factor 1: one constant multiplier per product by a non-power of two,
    followed by ``mr`` registers; wiring for the others (delayed alike).
    ``product_stage``: whether the layer has multipliers (default: these items')."""
    if product_stage is None:
        product_stage = any(odd != 1 for items in plan_items for (_, odd, _, _) in items)
    xd: dict[int, Signal] = {}
    leaves: list[list[Node]] = []
    for j, items in enumerate(plan_items):
        row = []
        for i, odd, k, neg in items:
            x, fx = xs[i]
            if odd != 1:
                m = b.mul(f"{name}_m{i}_{j}", x, odd, fx + kf - k,
                          note=f"{name}: x{i} * w[{i},{j}] = x{i} * {'-' if neg else ''}{odd}*2^{k}")
                sig = b.delay(f"{name}_p{i}_{j}", m, mr)
            elif product_stage:
                if i not in xd:
                    xd[i] = b.delay(f"{name}_xd{i}", x, mr)
                sig = xd[i]
            else:
                sig = x
            row.append(Node(sig, fx + kf - k, neg))
        leaves.append(row)
    return leaves


def _reuse_leaves(b: Builder, name: str, plan_items, xs: list[Value], kf: int, R: int,
                  s0: int, mr: int, banked: list[list[tuple[int, tuple[int, ...]]]] | None = None,
                  bank: Signal | None = None) -> tuple[list[list[Node]], int]:
    """Reuse factor R > 1 (see the module doc): ``ceil(N / R)`` multiplier units, each
    with a sequence of R (weight, input) pairs and ``mr`` product registers; returns the
    tree leaves per output (at stage ``s0 + R + mr + 1``) and that offset ``R + mr + 1``.
    A banked layer (`_banked_leaves`) adds ``banked`` (per output the (input, per-bank
    weights) pairs) and the ``bank`` index: each unit's weight table then holds a
    sequence per bank, addressed by ``bank * P + phase`` (P the power of two above R)."""
    mults = sorted(((j, i, (-1 if neg else 1) * (odd << k))
                    for j, items in enumerate(plan_items) for (i, odd, k, neg) in items if odd != 1))
    if bank is not None:
        n_banks = len(banked[0][0][1]) if any(banked) else 1
        mults = sorted([(j, i, (w,) * n_banks) for j, i, w in mults]
                       + [(j, i, wv) for j, var in enumerate(banked) for i, wv in var])
    used = sorted({i for _, i, _ in mults})
    F = max(xs[i][1] for i in used)
    meet = s0 + R + mr + 1
    vin = b.valid(f"{name}_vin", s0)
    xc = {}
    for i in used:
        x, fx = xs[i]
        xm = b.materialize(f"{name}_xm{i}", x, fx, F)
        xc[i] = b.reg(f"{name}_xc{i}", xm, F, en=vin)
        if len(xc) == 1:
            b.ops[-1].note = f"{name}: the inputs, captured when valid (held for the {R} phases)"
    ph = b.counter(f"{name}_ph", vin, R)
    b.ops[-1].note = f"{name}: phase 0..{R - 1} of the schedule, {R} = idle"
    if bank is not None:
        phase_bits = R.bit_length()
        bank_c = b.reg(f"{name}_bankc", bank, 0, en=vin)
        b.ops[-1].note = f"{name}: the bank index, captured when valid"
        addr = b.sum(f"{name}_wa", [Term(bank_c, phase_bits), Term(ph)], 0,
                     note=f"{name}: weight address: bank * {1 << phase_bits} + phase")
    phd = ph  # the phase as the accumulators see it: delayed like the products
    for k in range(mr):
        phd = b.reg(f"{name}_phd{k + 1}" if mr > 1 else f"{name}_phd", phd, 0, reset=R)
    leaves: list[list[Node]] = [[] for _ in plan_items]
    for u in range(0, len(mults), R):
        seq = mults[u:u + R]
        un = u // R
        pad = R + 1 - len(seq)
        xsel = b.mux(f"{name}_u{un}_x", ph, [xc[i] for _, i, _ in seq] + [xc[seq[-1][1]]] * pad, F)
        if bank is None:
            table = RomTable(b.namer.take(f"{name}_u{un}_w"), tuple(w for _, _, w in seq) + (seq[-1][2],) * pad,
                             note=f"{name}: weights of multiplier unit {un} by phase")
            wsel = b.rom(f"{name}_u{un}_wr", ph, table, kf)
        else:
            per_bank = [seq[min(p, len(seq) - 1)][2] for p in range(1 << phase_bits)]
            entries = tuple(w[k if k < n_banks else 0] for k in range(1 << bank.width) for w in per_bank)
            table = RomTable(b.namer.take(f"{name}_u{un}_w"), entries,
                             note=f"{name}: weights of multiplier unit {un} by bank and phase")
            wsel = b.rom(f"{name}_u{un}_wr", addr, table, kf)
        m = b.mult(f"{name}_u{un}_m", xsel, wsel, F + kf,
                   note=f"{name}: multiplier unit {un}: " + ", ".join(
                       f"x{i}*w[{i},{j}]" for j, i, _ in seq))
        pr = b.delay(f"{name}_u{un}_p", m, mr)
        p = 0
        while p < len(seq):
            j = seq[p][0]
            q = p
            while q + 1 < len(seq) and seq[q + 1][0] == j:
                q += 1
            terms = []
            for j_, i, w in seq[p:q + 1]:
                x = xc[i]
                ws = w if isinstance(w, tuple) else (w,)
                terms.append((min(min(x.lo * v, x.hi * v) for v in ws), max(max(x.lo * v, x.hi * v) for v in ws)))
            a = b.acc(f"{name}_u{un}_a{j}", pr, phd, p, q, terms, meet, F + kf,
                      note=f"{name}: unit {un}, partial sum of output {j} (phases {p}..{q})")
            leaves[j].append(Node(a, F + kf, False))
            p = q + 1
    xd: dict[int, Signal] = {}
    for j, items in enumerate(plan_items):
        for i, odd, k, neg in items:
            if odd == 1:
                x, fx = xs[i]
                if i not in xd:
                    xd[i] = b.delay(f"{name}_xd{i}", x, R + mr + 1)
                leaves[j].append(Node(xd[i], fx + kf - k, neg))
    return leaves, R + mr + 1


def _combine(b: Builder, name: str, p: Node, q: Node) -> Node:
    f = max(p.frac, q.frac)
    if p.neg == q.neg:
        terms, neg = [Term(p.sig, f - p.frac), Term(q.sig, f - q.frac)], p.neg
    elif p.neg:
        terms, neg = [Term(q.sig, f - q.frac), Term(p.sig, f - p.frac, True)], False
    else:
        terms, neg = [Term(p.sig, f - p.frac), Term(q.sig, f - q.frac, True)], False
    return Node(b.sum(name, terms, f), f, neg)


def _add_const(b: Builder, name: str, p: Node, c: tuple[int, int]) -> Node:
    # (-1)^neg * sig * 2^-f + c  =  (-1)^neg * (sig * 2^-f + (-1)^neg * c)
    raw, fc = (-c[0], c[1]) if p.neg else c
    f = max(p.frac, fc)
    s = b.sum(name, [Term(p.sig, f - p.frac), Term(const(raw << (f - fc), f))], f)
    return Node(s, f, p.neg)


def _lower_activation(b: Builder, act: Activation, xs: list[Value], in_frac: int, cfg: RtlConfig
                      ) -> tuple[list[Value], LayerInfo]:
    b.layer = act.name
    first_op = len(b.ops)
    values, extra = _apply_conversions(b, xs, [(act, act.function)], in_frac, cfg.multiplier_registers,
                                       registered=True)
    values = [(b.reg(f"{act.name}_y{j}", v, f), f) for j, (v, f) in enumerate(values)]
    layer_ops = flat_ops(b.ops[first_op:])
    return values, LayerInfo(
        name=act.name, kind="activation", nodes=[act.name], latency=1 + extra, first_stage=-1,
        multipliers=sum(isinstance(op, MulConst) for op in layer_ops),
        adders=sum(isinstance(op, Sum) and op.is_adder for op in layer_ops),
        register_bits=sum(op.out.width for op in layer_ops if isinstance(op, Reg)),
        description=f"{act.function} -> {act.info.type}")


def _lower_table(b: Builder, act: Activation, xs: list[Value]) -> tuple[list[Value], LayerInfo]:
    """tanh / sigmoid: the IR's `LookupTable` as a ROM, two cycles.  Cycle 1: the index
    conversion (``table.index_type``, normally RND/SAT) and the address ``index -
    index_type.min_raw``, registered; cycle 2: the ROM read, registered (the shape of a
    block RAM with address and output registers)."""
    b.layer = act.name
    first_op = len(b.ops)
    t = act.table
    rom = RomTable(b.namer.take(f"{act.name}_rom"), tuple(int(e) for e in t.entries),
                   note=f"{t.function} table of {act.name}: {t.size} entries of {t.out_type}, "
                        f"index {t.index_type}")
    addrs = []
    for j, (v, f) in enumerate(xs):
        idx, fi = b.requant(f"{act.name}_idx{j}", v, f, t.index_type,
                            note=f"{act.name}[{j}]: table index, requantize to {t.index_type}")
        idx = b.materialize(f"{act.name}_ix{j}", idx, fi, t.index_type.frac)
        addr = b.sum(f"{act.name}_addr{j}", [Term(idx), Term(const(-t.index_type.min_raw))], 0,
                     note=f"{act.name}[{j}]: ROM address = index - ({t.index_type.min_raw})")
        addrs.append(b.reg(f"{act.name}_a{j}", addr, 0))
    values = []
    for j, a in enumerate(addrs):
        y = b.rom(f"{act.name}_rd{j}", a, rom, t.out_type.frac)
        values.append((b.reg(f"{act.name}_y{j}", y, t.out_type.frac), t.out_type.frac))
    _check_in_ir_range(act, values)
    layer_ops = flat_ops(b.ops[first_op:])
    return values, LayerInfo(
        name=act.name, kind="table", nodes=[act.name], latency=2, first_stage=-1,
        adders=sum(isinstance(op, Sum) and op.is_adder for op in layer_ops),
        register_bits=sum(op.out.width for op in layer_ops if isinstance(op, Reg)),
        description=f"{t.function} ROM {t.size} x {t.out_type} (index {t.index_type})")


def _table_lookup(b: Builder, name: str, v: Signal, f: int, t, rom: RomTable) -> tuple[Signal, int]:
    """The IR table ``t`` read at value ``(v, f)``, two cycles (index and address,
    registered; ROM read, registered)."""
    idx, fi = b.requant(f"{name}_idx", v, f, t.index_type,
                        note=f"{name}: table index, requantize to {t.index_type}")
    idx = b.materialize(f"{name}_ix", idx, fi, t.index_type.frac)
    addr = b.sum(f"{name}_addr", [Term(idx), Term(const(-t.index_type.min_raw))], 0,
                 note=f"{name}: ROM address = index - ({t.index_type.min_raw})")
    a = b.reg(f"{name}_a", addr, 0)
    y = b.rom(f"{name}_rd", a, rom, t.out_type.frac)
    return b.reg(f"{name}_y", y, t.out_type.frac), t.out_type.frac


def _tree(b: Builder, name: str, row: list[Value], combine, cfg: RtlConfig) -> tuple[Value, int]:
    """A balanced tree over ``row`` with ``combine(name, p, q) -> Value``, registered every
    ``levels_per_register`` levels and after the last; returns the root and the number of
    register levels."""
    depth = math.ceil(math.log2(len(row))) if len(row) > 1 else 0
    regs = 0
    for level in range(1, depth + 1):
        new = [combine(f"{name}_l{level}_{k // 2}", row[k], row[k + 1]) for k in range(0, len(row) - 1, 2)]
        if len(row) % 2:
            new.append(row[-1])
        if level % cfg.levels_per_register == 0 or level == depth:
            new = [(b.reg(f"{name}_r{level}_{k}", v, f), f) for k, (v, f) in enumerate(new)]
            regs += 1
        row = new
    return row[0], regs


def _lower_maxpool(b: Builder, pool: MaxPool2D, xs: list[Value], in_shape, type_frac: int,
                   cfg: RtlConfig) -> tuple[list[Value], LayerInfo]:
    """Every output is a balanced tree of two-input maxima over the in-bound elements of
    its window (same padding pads with the type's minimum: it never wins)."""
    b.layer = pool.name
    first_op = len(b.ops)
    h, w, c = in_shape
    (oh, ow), (pt, _, pl, _) = window_geometry((h, w), pool.pool_size, pool.strides, pool.padding)
    xs = [(b.materialize(f"{pool.name}_in{k}", v, f, type_frac), type_frac) for k, (v, f) in enumerate(xs)]

    def mx(name, p, q):
        return b.max(name, p[0], q[0], type_frac), type_frac

    outs, lat = [], 0
    for y in range(oh):
        for x in range(ow):
            for ch in range(c):
                row = [xs[(iy * w + ix) * c + ch]
                       for iy in range(y * pool.strides[0] - pt, y * pool.strides[0] - pt + pool.pool_size[0])
                       for ix in range(x * pool.strides[1] - pl, x * pool.strides[1] - pl + pool.pool_size[1])
                       if 0 <= iy < h and 0 <= ix < w]
                (v, f), regs = _tree(b, f"{pool.name}_{len(outs)}", row, mx, cfg)
                if regs == 0:
                    v, regs = b.reg(f"{pool.name}_y{len(outs)}", v, f), 1
                outs.append((v, f, regs))
                lat = max(lat, regs)
    # windows cut by same padding have shallower trees: align every output
    outs = [(b.delay(f"{pool.name}_al{k}", v, lat - regs), f) for k, (v, f, regs) in enumerate(outs)]
    _check_in_ir_range(pool, outs)
    layer_ops = flat_ops(b.ops[first_op:])
    return outs, LayerInfo(name=pool.name, kind="maxpool2d", nodes=[pool.name], latency=lat, first_stage=-1,
                           register_bits=_register_bits(layer_ops),
                           description=f"MaxPool2D {h}x{w}x{c} -> {oh}x{ow}x{c}, pool {pool.pool_size}, "
                                       f"stride {pool.strides}, {pool.padding}")


def _lower_softmax(b: Builder, act: Activation, xs: list[Value], in_frac: int,
                   cfg: RtlConfig) -> tuple[list[Value], LayerInfo]:
    """Exactly `Activation._softmax`: ``m = max x`` (a tree of maxima), ``e_i =
    exp_table(x_i - m)``, ``s = sum e_i`` (exact adder tree), ``r = inv_table(s)``,
    ``y_i = e_i * r`` (one multiplier each) converted to the output type.  Stages: the
    max tree, 2 (exp ROM), the sum tree, 2 (reciprocal ROM), 1 (products), 1 (output)."""
    b.layer = act.name
    first_op = len(b.ops)
    n = act.name
    xs = [(b.materialize(f"{n}_in{k}", v, f, in_frac), in_frac) for k, (v, f) in enumerate(xs)]
    (m, _), d1 = _tree(b, f"{n}_max", list(xs), lambda nm, p, q: (b.max(nm, p[0], q[0], in_frac), in_frac), cfg)
    xd = [b.delay(f"{n}_xd{k}", v, d1) for k, (v, _) in enumerate(xs)]
    et, it = act.table, act.inv_table
    exp_rom = RomTable(b.namer.take(f"{n}_exp_rom"), tuple(int(e) for e in et.entries),
                       note=f"exp table of {n}: {et.size} entries of {et.out_type}, index {et.index_type}")
    inv_rom = RomTable(b.namer.take(f"{n}_inv_rom"), tuple(int(e) for e in it.entries),
                       note=f"reciprocal table of {n}: {it.size} entries of {it.out_type}, index {it.index_type}")
    es = []
    for k, x in enumerate(xd):
        d = b.sum(f"{n}_d{k}", [Term(x), Term(m, 0, True)], in_frac, note=f"{n}[{k}]: x - max x (<= 0)")
        es.append(_table_lookup(b, f"{n}_e{k}", d, in_frac, et, exp_rom))
    ef = et.out_type.frac

    def add(nm, p, q):
        return b.sum(nm, [Term(p[0]), Term(q[0])], ef), ef

    (s, _), d2 = _tree(b, f"{n}_sum", list(es), add, cfg)
    ed = [b.delay(f"{n}_ed{k}", v, d2 + 2) for k, (v, _) in enumerate(es)]
    r, rf = _tree_root_lookup(b, n, s, ef, it, inv_rom)
    vals = []
    for k, e in enumerate(ed):
        p = b.mult(f"{n}_p{k}", e, r, ef + rf, note=f"{n}[{k}]: e * (1 / sum e)")
        p = b.reg(f"{n}_pr{k}", p)
        y, fy = b.requant(f"{n}_q{k}", p, ef + rf, act.info.type, note=f"{n}[{k}]: requantize to {act.info.type}")
        vals.append((b.reg(f"{n}_y{k}", y, fy), fy))
    _check_in_ir_range(act, vals)
    layer_ops = flat_ops(b.ops[first_op:])
    return vals, LayerInfo(name=n, kind="softmax", nodes=[n], latency=d1 + 2 + d2 + 2 + 2, first_stage=-1,
                           multipliers=sum(isinstance(op, (Mul, MulConst)) for op in layer_ops),
                           adders=sum(isinstance(op, Sum) and op.is_adder for op in layer_ops),
                           register_bits=_register_bits(layer_ops),
                           description=f"softmax over {len(xs)}: max tree, exp ROM {et.size} x {et.out_type}, "
                                       f"sum tree, reciprocal ROM {it.size} x {it.out_type}, "
                                       f"{len(xs)} multipliers -> {act.info.type}")


def _tree_root_lookup(b: Builder, n: str, s: Signal, ef: int, it, rom: RomTable) -> tuple[Signal, int]:
    return _table_lookup(b, f"{n}_r", s, ef, it, rom)


FOLDABLE = ("linear", "relu", "leaky_relu", "hard_tanh")
TABLES = ("tanh", "sigmoid")


def _layer_ops(ops: list[Op], layers: list[LayerInfo]) -> list[list[Op]]:
    by_layer: dict[str, list[Op]] = {}
    for op in flat_ops(ops):
        by_layer.setdefault(op.out.layer, []).append(op)
    return [by_layer.get(info.name, []) for info in layers]


@acyclic_pass  # tens of thousands of objects and no reference cycle
def lower(graph: Graph, config: RtlConfig | None = None, name: str | None = None,
          check: bool = True) -> Netlist:
    """Build the RTL description of ``graph`` (a typed chain; see the module doc).
    ``name``: the top entity/module (default `names.top_name` of the graph name); no
    signal is given it or the name of another design unit of the core.  ``check``:
    re-derive every range and stage of the result (`Netlist.check`; the tests always
    do, the compiler skips the re-derivation of what the builder just derived -- the
    firmware's bit-exactness is what `nnfpga verify` proves)."""
    cfg = config or RtlConfig()
    nodes = graph.chain()
    for n in nodes:
        if n.info is None:
            raise ValueError(f"node {n.name!r} has no type: run assign_types (range analysis) first")
    if len(graph.outputs) != 1 or graph.outputs[0] != nodes[-1].name:
        raise ValueError(f"model {graph.name!r}: the output must be the last node of the chain")
    inp = nodes[0]
    if not isinstance(inp, Input):
        raise ValueError(f"model {graph.name!r} does not start with an Input")
    if bool(graph.banks) != any(isinstance(n, BankedDense) for n in nodes):
        raise ValueError(f"model {graph.name!r}: banked layers and the graph's bank count disagree")
    for n in nodes[1:]:
        if isinstance(n, (Dense, BankedDense, Reshape, Conv2D, MaxPool2D)):
            continue
        if isinstance(n, Activation) and (n.function in FOLDABLE or
                                          (n.function in TABLES and n.table is not None) or
                                          (n.function == "softmax" and n.table is not None
                                           and n.inv_table is not None)):
            continue
        why = {"Activation": "supported activations are linear, relu, leaky_relu, hard_tanh, tanh, "
                             "sigmoid and softmax (with their tables)"}.get(
            n.op_type, f"{n.op_type} is not supported by the RTL backend "
                       "(supported: Dense, BankedDense, Conv2D, MaxPool2D, Activation, Reshape)")
        raise _unsupported(n, why)
    if not any(isinstance(n, (Dense, BankedDense, Conv2D)) for n in nodes):
        raise ValueError(f"model {graph.name!r} has no Dense or Conv2D layer: nothing to build")

    b = Builder()
    top = name or top_name(graph.name)
    b.namer = Namer(set(RESERVED) | {top, unit_name(top, PACKAGE_SUFFIX)})
    in_type = inp.info.type
    n_in = int(np.prod(inp.info.shape))
    b.layer = inp.name
    inputs = [b.input_slice(f"{inp.name}_x{k}", k, in_type) for k in range(n_in)]
    values: list[Value] = [(s, in_type.frac) for s in inputs]
    bank = None
    if graph.banks:
        bits = graph.bank_bits
        bank = b.bank_tap = b.input_slice(f"{inp.name}_bank", n_in, FixedType(bits, bits, False), n_in * in_type.width)
    layers: list[LayerInfo] = []
    if cfg.register_input:
        first = len(b.ops)
        values = [(b.reg(f"{inp.name}_xr{k}", s, f), f) for k, (s, f) in enumerate(values)]
        layers.append(LayerInfo(inp.name, "input", [inp.name], 1, -1,
                                register_bits=sum(op.out.width for op in b.ops[first:] if isinstance(op, Reg)),
                                description="input register"))
    type_frac = in_type.frac  # frac of the IR type of the current tensor
    shape = tuple(inp.info.shape)
    k = 1
    while k < len(nodes):
        n = nodes[k]
        if isinstance(n, Reshape):
            shape = tuple(n.info.shape)
            k += 1  # row-major flattening: the bus order does not change
            continue
        if isinstance(n, (Dense, BankedDense, Conv2D)):
            folded = []
            while k + 1 < len(nodes) and isinstance(nodes[k + 1], Activation) \
                    and nodes[k + 1].function in FOLDABLE:
                folded.append(nodes[k + 1])
                k += 1
            plan = (_dense_plan(n, len(values), type_frac) if isinstance(n, Dense)
                    else _banked_plan(n, len(values), type_frac) if isinstance(n, BankedDense)
                    else _conv_plan(n, shape, type_frac))
            values, info = _lower_linear(b, plan, values, folded, cfg, n)
        elif isinstance(n, MaxPool2D):
            values, info = _lower_maxpool(b, n, values, shape, type_frac, cfg)
        elif n.function in TABLES:
            values, info = _lower_table(b, n, values)
        elif n.function == "softmax":
            values, info = _lower_softmax(b, n, values, type_frac, cfg)
        else:
            values, info = _lower_activation(b, n, values, type_frac, cfg)
        layers.append(info)
        type_frac = nodes[k].info.type.frac
        shape = tuple(nodes[k].info.shape)
        k += 1

    out_node = nodes[-1]
    out_type = out_node.info.type
    b.layer = "(output wiring)"
    outputs = [b.materialize(f"{out_node.name}_o{j}", v, f, out_type.frac) for j, (v, f) in enumerate(values)]
    stage = 0
    for info in layers:
        info.first_stage = stage
        stage += info.latency
    for info, ops in zip(layers, _layer_ops(b.ops, layers)):
        info.dsp = dsp_count(ops)
    nl = Netlist(name=top, model_name=graph.name, in_type=in_type, out_type=out_type,
                 inputs=inputs, outputs=outputs, ops=b.ops, layers=layers, latency=stage,
                 config=asdict(cfg), ii=max(info.ii for info in layers), bank=bank, banks=graph.banks)
    if check:
        nl.check()
    return nl
