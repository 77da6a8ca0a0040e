"""The RTL description: a netlist of typed integer signals and simple operations.

Everything here is integer arithmetic on raw values.  A `Signal` carries the exact
range ``[lo, hi]`` of the integers it can hold; its width and signedness follow from
that range (`nnfpga.ir.fixed.bits_for_range`), so no operation can overflow unless it
says so (`Wrap`).  ``frac`` is informational: the real value is ``raw * 2**-frac``
(the lowering keeps it for comments and for planning conversions).

Operations (each drives exactly one signal, ``out``):

``InputSlice``  element ``index`` of the ``in_data`` bus
``MulConst``    ``a * c`` with an integer constant ``c``
``Sum``         ``sum(+-(t.sig << t.shift))`` over `Term` s (add, subtract, negate, shift
                left, resize: the result is exact because ``out``'s range holds it)
``Shr``         ``floor(a / 2**s)`` (arithmetic shift right: drop the low ``s`` bits)
``Bit``         bit ``k`` of ``a`` (two's complement), a 1-bit unsigned signal
``Clip``        ``min(max(a, lo), hi)`` (ReLU is ``lo = 0``; saturation)
``Wrap``        the low ``out.width`` bits of ``a`` read with ``out.signed`` (WRAP overflow)
``Requant``     a fixed-point conversion ``a`` -> `FixedType` (optional ReLU/clip first,
                rounding TRN/RND/RND_CONV, overflow WRAP/SAT); it owns its ``steps``: the
                primitive operations above that implement it, which the printers emit
``Rom``         ``table.entries[a]``: a read-only table (`RomTable`, shared by every lookup
                into it) addressed by the unsigned signal ``a``
``Reg``         a register: ``out`` is ``a`` one clock later (``out.stage = a.stage + 1``);
                optionally with an enable ``en`` (loads only when ``en = 1``, else holds) and
                a ``reset`` value (loaded by ``rst``, also the power-up value)

Time-multiplexed layers (reuse factor > 1) add:

``ValidTap``    the valid bit of the sample at stage ``delay`` (``in_valid`` delayed)
``Counter``     the phase counter ``0, 1, ..., n`` of a layer: 0 in the cycle after
                ``start``, then counting up to ``n`` ("idle"), where it stays; reset to ``n``
``Mux``         ``inputs[sel]`` (``sel`` ranges over the inputs' indices)
``Mul``         ``a * b`` of two signals (a multiplier unit: a DSP)
``Max``         ``max(a, b)`` (max pooling, softmax)
``Acc``         an accumulator register: ``a`` when ``sel == first``, ``out + a`` when
                ``first < sel <= last``, else it holds.  Its range, the hull of its partial
                sums, comes from ``terms`` (the exact range of ``a`` in each of those
                phases); its ``stage`` is declared by the lowering: the stage at which it
                holds the sample's complete sum

Signals computed from these are *sequential* (``seq``): they carry a sample's values at
times the schedule, not the stage count, defines; their ``stage`` is only indicative.
An `Acc` (or an enabled `Reg` given a stage) returns to the pipeline discipline.

Constants are signals with ``lo == hi`` and no driver; printers write them as literals.
Every non-constant signal has a pipeline ``stage`` (the number of registers between
``in_data`` and it: the signal holds the sample's value ``stage`` cycles after its
``in_valid``); the operands of a combinational operation share one stage.
`check` re-derives every range and stage from the operations, so a printer may trust
the widths it is given.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import ClassVar

from nnfpga.ir.fixed import FixedType, bits_for_range


# --------------------------------------------------------------------------- signals
@dataclass(eq=False)
class Signal:
    name: str
    lo: int
    hi: int
    frac: int = 0
    stage: int | None = None
    layer: str = ""
    #: Part of a time-multiplexed schedule (see the module doc); not stage-aligned.
    seq: bool = False

    def __post_init__(self) -> None:
        lo, hi = int(self.lo), int(self.hi)
        self.lo, self.hi = lo, hi
        if lo > hi:
            raise ValueError(f"signal {self.name!r}: empty range [{lo}, {hi}]")
        # the range never changes after construction, so what follows from it is computed
        # once (the printers and the estimator read these for every operand)
        #: bits of the two's complement (signed) or plain (unsigned) representation
        self.width: int = bits_for_range(lo, hi)[0]
        self.signed: bool = lo < 0
        self.is_const: bool = lo == hi

    @property
    def value(self) -> int:
        if not self.is_const:
            raise ValueError(f"signal {self.name!r} is not a constant")
        return self.lo

    def __repr__(self) -> str:
        if self.is_const:
            return f"Const({self.lo})"
        kind = "s" if self.signed else "u"
        return f"Signal({self.name}:{kind}{self.width} [{self.lo},{self.hi}] f{self.frac} @{self.stage})"


def const(value: int, frac: int = 0) -> Signal:
    return Signal(f"c{value}", int(value), int(value), frac, None)


@dataclass(eq=False)
class Term:
    """``+-(sig << shift)`` inside a `Sum`."""

    sig: Signal
    shift: int = 0
    neg: bool = False

    def __post_init__(self) -> None:
        if self.shift < 0:
            raise ValueError("a Term shifts left only; use Shr to drop bits")

    def range(self) -> tuple[int, int]:
        lo, hi = self.sig.lo << self.shift, self.sig.hi << self.shift
        return (-hi, -lo) if self.neg else (lo, hi)


# --------------------------------------------------------------------------- operations
@dataclass(eq=False)
class Op:
    kind: ClassVar[str] = "op"
    out: Signal
    #: A comment the printers put above the operation.
    note: str = field(default="", kw_only=True)

    def operands(self) -> list[Signal]:
        return []

    def range(self) -> tuple[int, int]:
        """The exact output range implied by the operands' ranges."""
        raise NotImplementedError

    def seq(self) -> bool:
        """Is the output sequential (see the module doc)?  By default: is an operand?"""
        for s in self.operands():
            if s.seq:
                return True
        return False

    def stage(self) -> int | None:
        """Pipeline stage of the output, from the operands (combinational by default)."""
        # one pass over the operands (this runs for every operation the lowering adds)
        stage, mixed = None, False
        for s in self.operands():
            if s.is_const:
                continue
            if stage is None:
                stage = s.stage
            elif s.stage != stage:
                mixed = True
                stage = max(stage, s.stage)
        if mixed and not self.seq():
            stages = sorted({s.stage for s in self.operands() if not s.is_const})
            raise ValueError(f"{self.kind} driving {self.out.name!r} mixes pipeline stages {stages}")
        return stage


@dataclass(eq=False)
class InputSlice(Op):
    kind: ClassVar[str] = "input"
    index: int = 0
    elem_type: FixedType | None = None
    #: bit position on the bus when not ``index * width`` (the bank index field)
    offset: int | None = None

    @property
    def lsb(self) -> int:
        return self.index * self.elem_type.width if self.offset is None else self.offset

    def range(self) -> tuple[int, int]:
        return self.elem_type.min_raw, self.elem_type.max_raw

    def stage(self) -> int | None:
        return 0


@dataclass(eq=False)
class MulConst(Op):
    kind: ClassVar[str] = "mul"
    a: Signal = None
    c: int = 0

    def operands(self) -> list[Signal]:
        return [self.a]

    def range(self) -> tuple[int, int]:
        p, q = self.a.lo * self.c, self.a.hi * self.c
        return min(p, q), max(p, q)


@dataclass(eq=False)
class Sum(Op):
    kind: ClassVar[str] = "sum"
    terms: list[Term] = field(default_factory=list)
    #: The exact range of the result when the lowering knows better than the terms'
    #: ranges: an adder tree over shifted copies of the same input (``x * 7`` as
    #: ``(x << 3) - x``) is a linear function of its inputs, whose range is tighter than
    #: the sum of the terms' ranges.
    bound: tuple[int, int] | None = None

    def operands(self) -> list[Signal]:
        return [t.sig for t in self.terms]

    def terms_range(self) -> tuple[int, int]:
        lo = hi = 0
        for t in self.terms:
            tlo, thi = t.range()
            lo, hi = lo + tlo, hi + thi
        return lo, hi

    def range(self) -> tuple[int, int]:
        lo, hi = self.terms_range()
        if self.bound is not None:
            lo, hi = max(lo, self.bound[0]), min(hi, self.bound[1])
        return lo, hi

    @property
    def is_adder(self) -> bool:
        """Needs a carry chain: two or more non-constant terms, a constant added to a
        signal, or a negation.  A single positive term is wiring (shift/resize)."""
        return len(self.terms) > 1 or any(t.neg for t in self.terms)


@dataclass(eq=False)
class Shr(Op):
    kind: ClassVar[str] = "shr"
    a: Signal = None
    s: int = 0
    #: The exact range of the result when the lowering knows better than ``a``'s range:
    #: a rounding adder's range ignores that its correction bit depends on ``a``
    #: (RND_CONV), but rounding is monotone, so the rounded ends bound the result.
    bound: tuple[int, int] | None = None

    def operands(self) -> list[Signal]:
        return [self.a]

    def range(self) -> tuple[int, int]:
        lo, hi = self.a.lo >> self.s, self.a.hi >> self.s
        if self.bound is not None:
            lo, hi = max(lo, self.bound[0]), min(hi, self.bound[1])
        return lo, hi


@dataclass(eq=False)
class Bit(Op):
    kind: ClassVar[str] = "bit"
    a: Signal = None
    k: int = 0

    def operands(self) -> list[Signal]:
        return [self.a]

    def range(self) -> tuple[int, int]:
        return 0, 1


@dataclass(eq=False)
class Clip(Op):
    kind: ClassVar[str] = "clip"
    a: Signal = None
    lo: int | None = None
    hi: int | None = None

    def operands(self) -> list[Signal]:
        return [self.a]

    def apply(self, v: int) -> int:
        if self.lo is not None:
            v = max(v, self.lo)
        if self.hi is not None:
            v = min(v, self.hi)
        return v

    def range(self) -> tuple[int, int]:
        return self.apply(self.a.lo), self.apply(self.a.hi)


@dataclass(eq=False)
class Wrap(Op):
    kind: ClassVar[str] = "wrap"
    a: Signal = None
    type: FixedType | None = None

    def operands(self) -> list[Signal]:
        return [self.a]

    def range(self) -> tuple[int, int]:
        if self.type.contains(self.a.lo, self.a.hi):
            return self.a.lo, self.a.hi
        return self.type.min_raw, self.type.max_raw


@dataclass(eq=False)
class Requant(Op):
    """Conversion of ``a`` (raw at ``a_frac``) to ``type``: ``clip`` first (ReLU is
    ``(0, None)``), then align/round/overflow exactly as `FixedType.requantize`."""

    kind: ClassVar[str] = "requant"
    a: Signal = None
    a_frac: int = 0
    type: FixedType | None = None
    clip: tuple[int | None, int | None] | None = None
    steps: list[Op] = field(default_factory=list)

    def operands(self) -> list[Signal]:
        return [self.a]

    def range(self) -> tuple[int, int]:
        return self.steps[-1].out.lo, self.steps[-1].out.hi


@dataclass(eq=False)
class RomTable:
    """Constant table contents (raw integers), declared once in the HDL."""

    name: str
    entries: tuple[int, ...]
    note: str = ""

    @functools.cached_property
    def entry_range(self) -> tuple[int, int]:
        """(smallest, largest) entry: computed once (the printers and the estimator ask
        for the width at every read of a table of up to thousands of entries)."""
        return min(self.entries), max(self.entries)

    @property
    def width(self) -> int:
        return bits_for_range(*self.entry_range)[0]

    @property
    def signed(self) -> bool:
        return self.entry_range[0] < 0

    @property
    def addr_width(self) -> int:
        return max((len(self.entries) - 1).bit_length(), 1)


@dataclass(eq=False)
class Rom(Op):
    """``out = table.entries[a]``; ``out`` holds the low ``out.width`` bits of the entry
    (its range is that of the reachable entries, so no information is lost)."""

    kind: ClassVar[str] = "rom"
    a: Signal = None
    table: RomTable | None = None

    def operands(self) -> list[Signal]:
        return [self.a]

    def range(self) -> tuple[int, int]:
        if self.a.lo < 0 or self.a.hi >= len(self.table.entries):
            raise ValueError(f"address range [{self.a.lo}, {self.a.hi}] of {self.table.name!r} "
                             f"exceeds its {len(self.table.entries)} entries")
        reach = self.table.entries[self.a.lo:self.a.hi + 1]
        return min(reach), max(reach)


@dataclass(eq=False)
class Reg(Op):
    kind: ClassVar[str] = "reg"
    a: Signal = None
    en: Signal | None = None
    reset: int | None = None
    #: An enabled register that the schedule makes stage-aligned at this stage.
    aligned_stage: int | None = None

    def operands(self) -> list[Signal]:
        return [self.a] + ([self.en] if self.en is not None else [])

    def range(self) -> tuple[int, int]:
        lo, hi = self.a.lo, self.a.hi
        if self.reset is not None:
            lo, hi = min(lo, self.reset), max(hi, self.reset)
        return lo, hi

    @property
    def plain(self) -> bool:
        """No enable, no reset: a pipeline register."""
        return self.en is None and self.reset is None

    def seq(self) -> bool:
        if self.aligned_stage is not None:
            return False
        return self.en is not None or self.a.seq

    def stage(self) -> int | None:
        if self.aligned_stage is not None:
            return self.aligned_stage
        st = self.a.stage  # the latest operand's stage, plus one
        if self.en is not None and self.en.stage > st:
            st = self.en.stage
        return st + 1


@dataclass(eq=False)
class ValidTap(Op):
    kind: ClassVar[str] = "valid"
    delay: int = 0

    def range(self) -> tuple[int, int]:
        return 0, 1

    def stage(self) -> int | None:
        return self.delay


@dataclass(eq=False)
class Counter(Op):
    kind: ClassVar[str] = "counter"
    start: Signal = None
    n: int = 1

    def operands(self) -> list[Signal]:
        return [self.start]

    def range(self) -> tuple[int, int]:
        return 0, self.n

    def seq(self) -> bool:
        return True

    def stage(self) -> int | None:
        return self.start.stage + 1


@dataclass(eq=False)
class Mux(Op):
    kind: ClassVar[str] = "mux"
    sel: Signal = None
    inputs: list[Signal] = field(default_factory=list)

    def operands(self) -> list[Signal]:
        return [self.sel, *self.inputs]

    def range(self) -> tuple[int, int]:
        if self.sel.lo < 0 or self.sel.hi >= len(self.inputs):
            raise ValueError(f"mux select range [{self.sel.lo}, {self.sel.hi}] exceeds its "
                             f"{len(self.inputs)} inputs")
        reach = self.inputs[self.sel.lo:self.sel.hi + 1]
        return min(s.lo for s in reach), max(s.hi for s in reach)


@dataclass(eq=False)
class Mul(Op):
    kind: ClassVar[str] = "mult"
    a: Signal = None
    b: Signal = None

    def operands(self) -> list[Signal]:
        return [self.a, self.b]

    def range(self) -> tuple[int, int]:
        c = [self.a.lo * self.b.lo, self.a.lo * self.b.hi, self.a.hi * self.b.lo, self.a.hi * self.b.hi]
        return min(c), max(c)


@dataclass(eq=False)
class Max(Op):
    kind: ClassVar[str] = "max"
    a: Signal = None
    b: Signal = None

    def operands(self) -> list[Signal]:
        return [self.a, self.b]

    def range(self) -> tuple[int, int]:
        return max(self.a.lo, self.b.lo), max(self.a.hi, self.b.hi)


@dataclass(eq=False)
class Acc(Op):
    kind: ClassVar[str] = "acc"
    a: Signal = None
    sel: Signal = None
    first: int = 0
    last: int = 0
    #: exact range of ``a`` in phases ``first .. last``
    terms: list[tuple[int, int]] = field(default_factory=list)
    aligned_stage: int = 0

    def operands(self) -> list[Signal]:
        return [self.a, self.sel]

    def range(self) -> tuple[int, int]:
        if len(self.terms) != self.last - self.first + 1:
            raise ValueError(f"accumulator {self.out.name!r}: {len(self.terms)} term ranges for phases "
                             f"{self.first}..{self.last}")
        lo = hi = 0
        out_lo = out_hi = None
        for tlo, thi in self.terms:
            if tlo < self.a.lo or thi > self.a.hi:
                raise ValueError(f"accumulator term range [{tlo}, {thi}] outside its input's range")
            lo, hi = lo + tlo, hi + thi
            out_lo = lo if out_lo is None else min(out_lo, lo)
            out_hi = hi if out_hi is None else max(out_hi, hi)
        return out_lo, out_hi

    def seq(self) -> bool:
        return False

    def stage(self) -> int | None:
        return self.aligned_stage


#: Operations with state beyond a pipeline register (printed as clocked signals).
STATEFUL = (Counter, Acc)


def flat_ops(ops: list[Op]) -> list[Op]:
    """The primitive operations in order: a `Requant` is replaced by its steps."""
    out: list[Op] = []
    append, extend = out.append, out.extend
    for op in ops:
        if isinstance(op, Requant):
            extend(op.steps)
        else:
            append(op)
    return out


# --------------------------------------------------------------------------- netlist
@dataclass
class LayerInfo:
    """One hardware layer: which IR nodes it implements and what it costs."""

    name: str
    kind: str
    nodes: list[str]
    latency: int
    first_stage: int
    multipliers: int = 0
    adders: int = 0
    register_bits: int = 0
    description: str = ""
    #: initiation interval: the layer accepts a sample every ``ii`` cycles
    ii: int = 1
    reuse_factor: int = 1
    #: DSP slices of its multipliers, for the part's DSP type (`nnfpga.backends.rtl.dsp`)
    dsp: int = 0
    #: a linear layer's schedule (`lowering.schedule.linear_pipeline`): the longest path
    #: it planned (ns, overhead included), the Fmax that allows, the clock it was built
    #: for, the adder-tree levels followed by a register, the registers after a multiplier
    path_ns: float | None = None
    fmax_mhz: float | None = None
    clock_mhz: float | None = None
    tree_registers: list[int] | None = None
    multiplier_registers: int = 0
    #: registers of a linear layer's output stage: 1, or 2 when its accumulator and its
    #: conversions do not fit one clock period together (a register between them)
    output_registers: int = 1

    def summary(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "nodes": list(self.nodes),
               "latency_cycles": self.latency, "ii_cycles": self.ii,
               "reuse_factor": self.reuse_factor, "multipliers": self.multipliers, "dsp": self.dsp,
               "adders": self.adders, "register_bits": self.register_bits,
               "description": self.description}
        if self.path_ns is not None:
            out["schedule"] = self.schedule()
        return out

    def schedule(self) -> dict:
        """What the schedule built this layer for (a linear layer; see the fields)."""
        return {"clock_mhz": self.clock_mhz, "critical_path_ns": self.path_ns, "fmax_mhz": self.fmax_mhz,
                "tree_registers": list(self.tree_registers or []),
                "multiplier_registers": self.multiplier_registers, "output_registers": self.output_registers}


@dataclass
class Netlist:
    name: str
    model_name: str
    in_type: FixedType
    out_type: FixedType
    inputs: list[Signal]
    outputs: list[Signal]
    ops: list[Op]
    layers: list[LayerInfo]
    latency: int
    config: dict = field(default_factory=dict)
    #: initiation interval of the network: the largest of its layers'
    ii: int = 1
    #: the bank index (a banked graph): an unsigned field above the data elements of
    #: ``in_data``; raw input rows then carry it as one more column (`in_columns`)
    bank: Signal | None = None
    banks: int = 0

    @property
    def sequential(self) -> bool:
        """Has time-multiplexed logic (then `netlist_sim.evaluate` simulates cycle by cycle)."""
        return any(op.out.seq or isinstance(op, (Acc, Counter, ValidTap)) or
                   (isinstance(op, Reg) and not op.plain) for op in self.primitive_ops())

    @property
    def n_in(self) -> int:
        return len(self.inputs)

    @property
    def n_out(self) -> int:
        return len(self.outputs)

    @property
    def bank_bits(self) -> int:
        return self.bank.width if self.bank is not None else 0

    @property
    def in_columns(self) -> int:
        """Columns of a raw input row: the data elements, then the bank index if any."""
        return self.n_in + (self.bank is not None)

    @property
    def in_bus_width(self) -> int:
        return self.n_in * self.in_type.width + self.bank_bits

    @property
    def out_bus_width(self) -> int:
        return self.n_out * self.out_type.width

    def primitive_ops(self) -> list[Op]:
        return flat_ops(self.ops)

    def signals(self) -> list[Signal]:
        """Every driven signal, in order (declaration order for the printers)."""
        return [op.out for op in self.primitive_ops()]

    def tables(self) -> list[RomTable]:
        """The distinct ROM tables, in order of first use."""
        seen: dict[int, RomTable] = {}
        for op in self.primitive_ops():
            if isinstance(op, Rom):
                seen.setdefault(id(op.table), op.table)
        return list(seen.values())

    def count(self, kind: type[Op]) -> int:
        return sum(isinstance(op, kind) for op in self.primitive_ops())

    def check(self) -> None:
        """Re-derive every range and stage; raise on any inconsistency."""
        driven: set[int] = set()
        names: set[str] = set()
        for op in self.primitive_ops():
            for s in op.operands():
                if not s.is_const and id(s) not in driven:
                    raise ValueError(f"{op.kind} driving {op.out.name!r} reads {s.name!r} before it is driven")
            lo, hi = op.range()
            if (lo, hi) != (op.out.lo, op.out.hi):
                raise ValueError(f"{op.kind} driving {op.out.name!r}: range [{op.out.lo}, {op.out.hi}] "
                                 f"but the operands give [{lo}, {hi}]")
            if op.out.is_const:
                raise ValueError(f"{op.kind} drives a constant {op.out.name!r}; constants have no driver")
            if op.stage() != op.out.stage:
                raise ValueError(f"{op.out.name!r} is marked stage {op.out.stage}, its operation gives {op.stage()}")
            if op.seq() != op.out.seq:
                raise ValueError(f"{op.out.name!r}: sequential flag {op.out.seq}, its operation gives {op.seq()}")
            if isinstance(op, Shr) and op.s < 1:
                raise ValueError(f"Shr driving {op.out.name!r} shifts by {op.s}")
            key = op.out.name.lower()
            if key in names:
                raise ValueError(f"signal name {op.out.name!r} is used twice")
            names.add(key)
            driven.add(id(op.out))
        for i, s in enumerate(self.outputs):
            if not s.is_const:
                if id(s) not in driven:
                    raise ValueError(f"output {i} ({s.name!r}) is not driven")
                if s.seq or s.stage != self.latency:
                    raise ValueError(f"output {i} ({s.name!r}) is at stage {s.stage}, latency is {self.latency}")
            if not self.out_type.contains(s.lo, s.hi):
                raise ValueError(f"output {i} range [{s.lo}, {s.hi}] exceeds the output type {self.out_type}")
            if s.frac != self.out_type.frac:
                raise ValueError(f"output {i} has {s.frac} fractional bits, the output type {self.out_type.frac}")
