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
``Reg``         a register: ``out`` is ``a`` one clock later (``out.stage = a.stage + 1``)

Constants are signals with ``lo == hi`` and no driver; printers write them as literals.
Every non-constant signal has a pipeline ``stage`` (the number of registers between
``in_data`` and it); the operands of a combinational operation share one stage.
`check` re-derives every range and stage from the operations, so a printer may trust
the widths it is given.
"""

from __future__ import annotations

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

    def __post_init__(self) -> None:
        self.lo, self.hi = int(self.lo), int(self.hi)
        if self.lo > self.hi:
            raise ValueError(f"signal {self.name!r}: empty range [{self.lo}, {self.hi}]")

    @property
    def width(self) -> int:
        return bits_for_range(self.lo, self.hi)[0]

    @property
    def signed(self) -> bool:
        return self.lo < 0

    @property
    def is_const(self) -> bool:
        return self.lo == self.hi

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

    def stage(self) -> int | None:
        """Pipeline stage of the output, from the operands (combinational by default)."""
        stages = {s.stage for s in self.operands() if not s.is_const}
        if len(stages) > 1:
            raise ValueError(f"{self.kind} driving {self.out.name!r} mixes pipeline stages {sorted(stages)}")
        return stages.pop() if stages else None


@dataclass(eq=False)
class InputSlice(Op):
    kind: ClassVar[str] = "input"
    index: int = 0
    elem_type: FixedType | None = None

    @property
    def lsb(self) -> int:
        return self.index * self.elem_type.width

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

    def operands(self) -> list[Signal]:
        return [t.sig for t in self.terms]

    def range(self) -> tuple[int, int]:
        rs = [t.range() for t in self.terms]
        return sum(r[0] for r in rs), sum(r[1] for r in rs)

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

    def operands(self) -> list[Signal]:
        return [self.a]

    def range(self) -> tuple[int, int]:
        return self.a.lo >> self.s, self.a.hi >> self.s


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

    @property
    def width(self) -> int:
        return bits_for_range(min(self.entries), max(self.entries))[0]

    @property
    def signed(self) -> bool:
        return min(self.entries) < 0

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

    def operands(self) -> list[Signal]:
        return [self.a]

    def range(self) -> tuple[int, int]:
        return self.a.lo, self.a.hi

    def stage(self) -> int | None:
        return self.a.stage + 1


def flat_ops(ops: list[Op]) -> list[Op]:
    """The primitive operations in order: a `Requant` is replaced by its steps."""
    out: list[Op] = []
    for op in ops:
        out.extend(op.steps if isinstance(op, Requant) else [op])
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

    def summary(self) -> dict:
        return {"name": self.name, "kind": self.kind, "nodes": list(self.nodes),
                "latency_cycles": self.latency, "multipliers": self.multipliers,
                "adders": self.adders, "register_bits": self.register_bits,
                "description": self.description}


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

    @property
    def n_in(self) -> int:
        return len(self.inputs)

    @property
    def n_out(self) -> int:
        return len(self.outputs)

    @property
    def in_bus_width(self) -> int:
        return self.n_in * self.in_type.width

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
                if s.stage != self.latency:
                    raise ValueError(f"output {i} ({s.name!r}) is at stage {s.stage}, latency is {self.latency}")
            if not self.out_type.contains(s.lo, s.hi):
                raise ValueError(f"output {i} range [{s.lo}, {s.hi}] exceeds the output type {self.out_type}")
            if s.frac != self.out_type.frac:
                raise ValueError(f"output {i} has {s.frac} fractional bits, the output type {self.out_type.frac}")


# --------------------------------------------------------------------------- interpreter
def evaluate(netlist: Netlist, x_raw, check_ranges: bool = True):
    """Reference interpreter of the description (registers are transparent): raw inputs
    ``(n, n_in)`` to raw outputs ``(n, n_out)`` int64.  With ``check_ranges`` every
    value is checked against its signal's range, which tests the range analysis."""
    import numpy as np

    x = np.asarray(x_raw)
    if x.ndim != 2 or x.shape[1] != netlist.n_in:
        raise ValueError(f"expected inputs of shape (n, {netlist.n_in}), got {x.shape}")
    x = x.astype(np.int64)
    n = x.shape[0]
    vals: dict[int, np.ndarray] = {}

    def val(s: Signal) -> np.ndarray:
        return np.full(n, s.value, dtype=np.int64) if s.is_const else vals[id(s)]

    for op in netlist.primitive_ops():
        if op.out.width > 62:
            raise ValueError(f"{op.out.name!r} is {op.out.width} bits wide; the interpreter handles 62")
        if isinstance(op, InputSlice):
            v = x[:, op.index]
        elif isinstance(op, MulConst):
            v = val(op.a) * op.c
        elif isinstance(op, Sum):
            v = np.zeros(n, dtype=np.int64)
            for t in op.terms:
                tv = np.left_shift(val(t.sig), t.shift)
                v = v - tv if t.neg else v + tv
        elif isinstance(op, Shr):
            v = np.right_shift(val(op.a), op.s)
        elif isinstance(op, Bit):
            v = np.bitwise_and(np.right_shift(val(op.a), op.k), 1)
        elif isinstance(op, Clip):
            v = val(op.a)
            if op.lo is not None:
                v = np.maximum(v, op.lo)
            if op.hi is not None:
                v = np.minimum(v, op.hi)
        elif isinstance(op, Wrap):
            v = np.bitwise_and(val(op.a), (1 << op.out.width) - 1)
            if op.out.signed:
                v = np.where(v >= 1 << (op.out.width - 1), v - (1 << op.out.width), v)
        elif isinstance(op, Rom):
            v = np.asarray(op.table.entries, dtype=np.int64)[val(op.a)]
        elif isinstance(op, Reg):
            v = val(op.a)
        else:
            raise TypeError(f"no interpreter for {op.kind}")
        if check_ranges and v.size and (v.min() < op.out.lo or v.max() > op.out.hi):
            raise AssertionError(f"{op.out.name!r} takes [{v.min()}, {v.max()}] outside its range "
                                 f"[{op.out.lo}, {op.out.hi}]")
        vals[id(op.out)] = v
    return np.stack([val(s) for s in netlist.outputs], axis=1) if netlist.outputs else np.zeros((n, 0), np.int64)
