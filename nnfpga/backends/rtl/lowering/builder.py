"""The building kit of the lowering: `Builder` appends primitive operations to a netlist
while deriving every signal's exact range and folding constants; `RtlConfig` holds the
lowering's options; small helpers shared by the per-op rules.

A value travels as ``(signal, frac)``: the real value is ``raw * 2**-frac``.  Shifts
that only append zero bits are *deferred*: a product by ``w = odd * 2**k`` is the signal
``x * odd`` at ``frac - k``, and an adder aligns its two operands to the finer of their
scales.  A value whose range is a single integer is a constant and is folded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nnfpga.backends.rtl.dsp import csd
from nnfpga.backends.rtl.timing import DEFAULT_FAMILY, DELAYS, Delays
from nnfpga.core.errors import UserError
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.ops import Activation, Op as IrOp
from nnfpga.backends.rtl.names import RESERVED, Namer
from nnfpga.backends.rtl.netlist import (Acc, Bit, Clip, Counter, InputSlice, LayerInfo, Max, Mul, MulConst, Mux,
                                        Op, Reg, Requant, Rom, RomTable, Shr, Signal, Sum, Term, ValidTap, Wrap,
                                        const, flat_ops)


class RtlUnsupportedError(UserError, ValueError):
    """The model uses something the RTL backend cannot build (yet); names the layer."""


@dataclass(frozen=True)
class RtlConfig:
    """Options of the RTL lowering.

    Pipelining (`lowering.schedule` applies it): by default (``pipeline`` "auto") the
    registers go where the accumulated delay of the `timing` model of ``family`` would
    exceed the period of ``clock_mhz``, so a lower clock gives fewer cycles.
    ``levels_per_register``: fix the adder-tree levels between two pipeline registers
    instead (1 = a register after every level).  ``multiplier_registers``: fix the
    registers after every multiplier (1 to 3; a DSP48 absorbs them as its P; M and P;
    A/B, M and P registers); the multiplier-free terms of the same layer are delayed
    alike.  None (the default of both): chosen from the clock.  ``register_input``:
    register ``in_data`` before the first layer (one more cycle of latency).
    ``clock_mhz`` / ``family``: the clock and the part family (`timing.DELAYS`) the
    schedule is built for.  ``shift_add`` (``--max-dsp 0``): every constant product of a
    linear layer is built without a multiplier, as the canonical-signed-digit terms of its
    weight (`dsp.csd`): shifted copies of the input, leaves of the output's adder tree.
    """

    levels_per_register: int | None = None
    register_input: bool = False
    multiplier_registers: int | None = None
    clock_mhz: float = 240.0
    family: str = DEFAULT_FAMILY
    shift_add: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.shift_add, bool):
            raise ValueError(f"shift_add must be true or false, got {self.shift_add!r}")
        lpr = self.levels_per_register
        if lpr is not None and (isinstance(lpr, bool) or not isinstance(lpr, int) or lpr < 1):
            raise ValueError(f"levels_per_register must be an integer >= 1 (or None: from the clock), got {lpr!r}")
        mr = self.multiplier_registers
        if mr is not None and (isinstance(mr, bool) or not isinstance(mr, int) or not 1 <= mr <= 3):
            raise ValueError(f"multiplier_registers must be 1, 2 or 3 (or None: from the clock), got {mr!r}")
        ck = self.clock_mhz
        if isinstance(ck, bool) or not isinstance(ck, (int, float)) or not ck > 0:
            raise ValueError(f"clock_mhz must be a positive number, got {ck!r}")
        if self.family not in DELAYS:
            raise ValueError(f"family must be one of {', '.join(DELAYS)}, got {self.family!r}")

    @property
    def delays(self) -> Delays:
        return DELAYS[self.family]

    @property
    def period_ns(self) -> float:
        return 1000.0 / self.clock_mhz

    @property
    def pipeline(self) -> str:
        """How the registers are placed, as ``--pipeline`` writes it."""
        if self.levels_per_register is None and self.multiplier_registers is None:
            return "auto"
        parts = [f"levels={self.levels_per_register}"] if self.levels_per_register is not None else []
        parts += [f"mult={self.multiplier_registers}"] if self.multiplier_registers is not None else []
        return ",".join(parts)


def pipeline_settings(text: str) -> dict:
    """The RtlConfig fields of a ``--pipeline`` value: ``auto`` (from the clock), or
    ``levels=N`` (N adder-tree levels per register; the multipliers keep 2 registers, the
    fixed rule of nnfpga before the clock drove the schedule), optionally
    ``,mult=M`` (M registers after every multiplier, 1 to 3)."""
    t = str(text).strip().lower()
    if t == "auto":
        return {"levels_per_register": None, "multiplier_registers": None}
    out: dict = {}
    for part in t.split(","):
        key, _, value = part.strip().partition("=")
        if key in ("levels", "mult") and key not in out and value.isdigit():
            out[key] = int(value)
            continue
        out = {}
        break
    if "levels" in out and out["levels"] >= 1 and 1 <= out.get("mult", 2) <= 3:
        return {"levels_per_register": out["levels"], "multiplier_registers": out.get("mult", 2)}
    raise UserError(f"--pipeline {text!r}: write auto (registers placed from the clock), levels=N "
                    "(N >= 1 adder-tree levels per register) or levels=N,mult=M (M = 1, 2 or 3 registers "
                    "after every multiplier)")


def tree_registers(level_ns: list[float], start_ns: float, cfg: RtlConfig) -> tuple[tuple[int, ...], float]:
    """Where a tree's registers go: (the levels, 1-based, followed by a register -- the
    last level always is -- and the longest register-to-register path, in ns).
    ``level_ns[l - 1]``: the delay of level ``l``; ``start_ns``: what the first stage
    pays before its first level (the source register and the clock overhead).  Fixed
    ``levels_per_register``: every that many levels; else a register before a level
    that would make the stage exceed the clock period (a level alone always fits)."""
    depth = len(level_ns)
    over = cfg.delays.overhead
    regs, path, acc, n = [], 0.0, start_ns, 0
    for level, d in enumerate(level_ns, 1):
        if cfg.levels_per_register is None and n and acc + d > cfg.period_ns:
            regs.append(level - 1)
            path, acc, n = max(path, acc), over, 0
        acc, n = acc + d, n + 1
        if cfg.levels_per_register is not None and level % cfg.levels_per_register == 0 and level < depth:
            regs.append(level)
            path, acc, n = max(path, acc), over, 0
    if depth:
        regs.append(depth)
        path = max(path, acc)
    return tuple(regs), path


# --------------------------------------------------------------------------- builder
@dataclass(eq=False)
class Node:
    """A value ``(-1 if neg else 1) * sig * 2**-frac`` inside an adder tree."""

    sig: Signal
    frac: int
    neg: bool = False
    #: ``sig`` as a linear function of other signals, when it is a sum the lowering
    #: built: ``{id(s): (s, c)}`` for ``sum(c * s)``, the constant as ``(None, c)``
    #: (None: ``sig`` itself).  Its range over independent ``s`` bounds ``sig`` exactly
    #: where shifted copies of one input meet (`linear.combine`; kept with
    #: `RtlConfig.shift_add` only: otherwise an input is at most one leaf of a tree).
    lin: dict | None = None


def strip_zeros(raw: int, frac: int) -> tuple[int, int]:
    """Remove trailing zero bits of a constant: same value, fewer fractional bits."""
    if raw == 0:
        return 0, frac
    while raw % 2 == 0:
        raw //= 2
        frac -= 1
    return raw, frac


def add_constants(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    """Exact sum of two constants ``(raw, frac)``; None is zero."""
    if a is None:
        return b
    if b is None:
        return a
    f = max(a[1], b[1])
    raw = (a[0] << (f - a[1])) + (b[0] << (f - b[1]))
    return None if raw == 0 else strip_zeros(raw, f)


class Builder:
    """Appends primitive operations, deriving ranges and folding constants."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.namer = Namer(set(RESERVED))
        self.layer = ""
        #: the bank index at the latest stage a banked layer needed it (delays are shared)
        self.bank_tap: Signal | None = None
        #: `RtlConfig.shift_add`: `mul` builds the canonical signed digits, no multiplier
        self.shift_add = False

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
        """``a * c``: a `MulConst`, or with `shift_add` the sum of the shifted copies of
        ``a`` that the canonical signed digits of ``c`` name (its exact range kept)."""
        if a.is_const or c in (0, 1):
            return const(a.value * c, frac) if (a.is_const or c == 0) else a
        if self.shift_add:
            ends = (a.lo * c, a.hi * c)
            return self.sum(name, [Term(a, k, s < 0) for k, s in csd(c)], frac, note=note + " (shift-add)",
                            bound=(min(ends), max(ends)))
        return self._add(MulConst(None, a=a, c=c, note=note), name, frac)

    def sum(self, name: str, terms: list[Term], frac: int, note: str = "",
            bound: tuple[int, int] | None = None) -> Signal:
        """``bound``: the exact range when the caller knows better than the terms
        (`Sum.bound`); kept only when it is tighter."""
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
        op = Sum(None, terms=live, note=note)
        lo, hi = op.terms_range()
        if bound is not None and (bound[0] > lo or bound[1] < hi):
            op.bound = (max(lo, bound[0]), min(hi, bound[1]))
        return self._add(op, name, frac)

    def shr(self, name: str, a: Signal, s: int, frac: int,
            bound: tuple[int, int] | None = None) -> Signal:
        if s == 0:
            return a
        if a.is_const:
            return const(a.value >> s, frac)
        return self._add(Shr(None, a=a, s=s, bound=bound), name, frac)

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
                bound = (_rounded(v.lo, shift, t.rounding), _rounded(v.hi, shift, t.rounding))
                if t.rounding is Rounding.RND:
                    v = self.sum(f"{name}_rnd", [Term(v), Term(const(half))], f)
                elif t.rounding is Rounding.RND_CONV:
                    b = self.bit(f"{name}_lsb", v, shift)
                    v = self.sum(f"{name}_rnd", [Term(v), Term(const(half - 1)), Term(b)], f)
                v, f = self.shr(f"{name}_shr", v, shift, t.frac, bound), t.frac
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


def _rounded(x: int, shift: int, rounding: Rounding) -> int:
    """``x * 2**-shift`` rounded to an integer by ``rounding`` (as ``FixedType.requantize``)."""
    if rounding is Rounding.RND:
        return (x + (1 << (shift - 1))) >> shift
    if rounding is Rounding.RND_CONV:
        return (x + (1 << (shift - 1)) - 1 + ((x >> shift) & 1)) >> shift
    return x >> shift


# --------------------------------------------------------------------------- lowering
Value = tuple[Signal, int]


def unsupported(node: IrOp, why: str) -> RtlUnsupportedError:
    return RtlUnsupportedError(f"layer {node.name!r} ({node.op_type}"
                               f"{' ' + node.function if isinstance(node, Activation) else ''}): {why}")


def check_in_ir_range(node: IrOp, values: list[Value]) -> None:
    """Our per-element ranges must lie inside the IR's per-tensor range."""
    t = node.info.type
    for j, (s, f) in enumerate(values):
        lo, hi = s.lo << (t.frac - f), s.hi << (t.frac - f)
        if lo < node.info.lo or hi > node.info.hi:
            raise AssertionError(f"RTL range [{lo}, {hi}] of {node.name}[{j}] is outside the IR's "
                                 f"[{node.info.lo}, {node.info.hi}]: range analyses disagree")


def counted_layer(ops: list[Op], **fields) -> LayerInfo:
    """The `LayerInfo` of a layer made of ``ops`` (the operations it added): its
    multipliers, adders and register bits counted from them, the rest from ``fields``."""
    flat = flat_ops(ops)
    return LayerInfo(multipliers=sum(isinstance(op, (Mul, MulConst)) for op in flat),
                     adders=sum(isinstance(op, Sum) and op.is_adder for op in flat),
                     register_bits=sum(op.out.width for op in flat if isinstance(op, Reg)), **fields)


def register_bits(ops: list[Op]) -> int:
    return sum(op.out.width for op in ops if isinstance(op, (Reg, Acc, Counter)))


def balanced_tree(b: Builder, name: str, row: list[Value], combine, cfg: RtlConfig,
                  adds: bool = False) -> tuple[Value, int]:
    """A balanced tree over ``row`` with ``combine(name, p, q) -> Value``, registered
    where `tree_registers` puts registers (and after the last level); returns the root
    and the number of register levels.  ``adds``: the nodes are adders (one bit wider per
    level); else two-input maxima (a comparator and a multiplexer)."""
    depth = math.ceil(math.log2(len(row))) if len(row) > 1 else 0
    bits = max((v.width for v, _ in row if not v.is_const), default=1)
    dl = cfg.delays
    level_ns = [dl.adder(bits + level) if adds else dl.adder(bits + 1) + dl.lut for level in range(1, depth + 1)]
    registered, _ = tree_registers(level_ns, dl.overhead, cfg)
    regs = 0
    for level in range(1, depth + 1):
        new = [combine(f"{name}_l{level}_{k // 2}", row[k], row[k + 1]) for k in range(0, len(row) - 1, 2)]
        if len(row) % 2:
            new.append(row[-1])
        if level in registered:
            new = [(b.reg(f"{name}_r{level}_{k}", v, f), f) for k, (v, f) in enumerate(new)]
            regs += 1
        row = new
    return row[0], regs
