"""A small structural RTL description for the hand-built blocks around a core (the stream
wrappers): ports, signals, memories, continuous assignments, clocked processes of
``if``/``else`` statements and one instance of the core.  `structural_print.print_module`
prints it as VHDL-2008 and as Verilog-2005, so a wrapper is described once and its two HDL
texts cannot drift apart (as the core's `Netlist` and its two printers).

Values are bit patterns: a `Sig` is one bit (``width`` None: ``std_logic`` / a scalar) or
a vector of ``width`` bits (``std_logic_vector`` / ``[width-1:0]``); the only arithmetic
is unsigned counting (`Add`, modulo ``2**width``) and comparison (`Eq`).  A signal driven
by a process is a register (``reg`` in Verilog); its ``init`` is its power-up value, which
the VHDL printer declares and the Verilog printer leaves out, as the core's printers do
(the reset, when the description has one, is an ordinary ``if``; a register's value
before it is the simulator's business).

Expressions: `Sig`, `Lit`, `Not`, `And`, `Eq` (``==`` / ``!=``), `Add`, `Slice`, `Index`
(one bit of a vector), `Cat` (most significant part first), `Read` (a memory word,
asynchronous).  Statements inside a process: `Set` (a register's next value), `If`,
`Write` (a memory word).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from nnfpga.core.version import __version__


# --------------------------------------------------------------------------- expressions
@dataclass(eq=False)
class Sig:
    name: str
    width: int | None = None
    #: power-up value of a register (None: not given)
    init: int | None = None
    note: str = ""


@dataclass(frozen=True)
class Lit:
    value: int
    width: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.value < 1 << (self.width or 1):
            raise ValueError(f"literal {self.value} does not fit {self.width or 1} unsigned bits")


@dataclass(frozen=True)
class Not:
    a: "Expr"


@dataclass(frozen=True)
class And:
    terms: tuple["Expr", ...]


@dataclass(frozen=True)
class Eq:
    """``a == b`` (``a != b`` when ``negate``): one bit."""

    a: "Expr"
    b: "Expr"
    negate: bool = False


@dataclass(frozen=True)
class Add:
    """``a + k`` modulo ``2**width`` (``k`` may be negative)."""

    a: Sig
    k: int


@dataclass(frozen=True)
class Slice:
    sig: Sig
    hi: int
    lo: int


@dataclass(frozen=True)
class Index:
    sig: Sig
    k: int


@dataclass(frozen=True)
class Cat:
    parts: tuple["Expr", ...]


@dataclass(eq=False)
class Mem:
    """``depth`` words of ``width`` bits, read asynchronously (distributed RAM)."""

    name: str
    depth: int
    width: int
    note: str = ""


@dataclass(frozen=True)
class Read:
    mem: Mem
    addr: "Expr"


Expr = Union[Sig, Lit, Not, And, Eq, Add, Slice, Index, Cat, Read]


def width_of(e: Expr) -> int | None:
    """Bits of ``e`` (None: a single bit)."""
    if isinstance(e, (Sig, Lit)):
        return e.width
    if isinstance(e, (Not, And, Eq, Index)):
        return None
    if isinstance(e, Add):
        return e.a.width
    if isinstance(e, Slice):
        return e.hi - e.lo + 1
    if isinstance(e, Cat):
        return sum(width_of(p) or 1 for p in e.parts)
    if isinstance(e, Read):
        return e.mem.width
    raise TypeError(f"not an expression: {e!r}")


def children(e: Expr) -> tuple[Expr, ...]:
    """The operands of ``e``."""
    if isinstance(e, (Not, Add)):
        return (e.a,)
    if isinstance(e, And):
        return e.terms
    if isinstance(e, Cat):
        return e.parts
    if isinstance(e, Eq):
        return (e.a, e.b)
    if isinstance(e, (Slice, Index)):
        return (e.sig,)
    if isinstance(e, Read):
        return (e.addr,)
    return ()


def lit(value: int, like: Sig) -> Lit:
    """``value`` as a literal of ``like``'s width."""
    return Lit(value, like.width)


def eq(a: Sig, b: Expr | int) -> Eq:
    return Eq(a, lit(b, a) if isinstance(b, int) else b)


def ne(a: Sig, b: Expr | int) -> Eq:
    return Eq(a, lit(b, a) if isinstance(b, int) else b, negate=True)


def conj(*terms: Expr) -> Expr:
    return terms[0] if len(terms) == 1 else And(tuple(terms))


def has_compare(e: Expr) -> bool:
    """Does ``e`` contain a comparison (VHDL: a boolean, converted to a bit where it is a value)?"""
    if isinstance(e, Eq):
        return True
    if isinstance(e, Not):
        return has_compare(e.a)
    if isinstance(e, And):
        return any(has_compare(t) for t in e.terms)
    return False


# --------------------------------------------------------------------------- statements
@dataclass(eq=False)
class Set:
    target: Sig
    value: Expr


@dataclass(eq=False)
class If:
    cond: Expr
    then: list["Stmt"]
    orelse: list["Stmt"] = field(default_factory=list)


@dataclass(eq=False)
class Write:
    mem: Mem
    addr: Expr
    data: Expr


Stmt = Union[Set, If, Write]


def assign(target: Sig, value: Expr | int) -> Set:
    """``target``'s next value (an integer is a literal of its width)."""
    return Set(target, lit(value, target) if isinstance(value, int) else value)


def chain(*branches: tuple[Expr, list[Stmt]], orelse: list[Stmt] | None = None) -> If:
    """``if c1 .. elsif c2 .. else``."""
    (cond, then), rest = branches[0], branches[1:]
    return If(cond, then, [chain(*rest, orelse=orelse)] if rest else list(orelse or []))


# --------------------------------------------------------------------------- module items
@dataclass(eq=False)
class Assign:
    """A continuous assignment."""

    target: Sig
    value: Expr
    note: str = ""


@dataclass(eq=False)
class Process:
    """Statements executed at every rising edge of ``clock``."""

    clock: Sig
    body: list[Stmt]
    note: str = ""


@dataclass(eq=False)
class Instance:
    """An instance ``label`` of the entity/module ``entity`` (in the same VHDL library):
    (formal, actual) pairs of its inputs, then of its outputs (each drives its actual)."""

    entity: str
    label: str
    inputs: list[tuple[str, Expr]]
    outputs: list[tuple[str, Sig]]

    @property
    def ports(self) -> list[tuple[str, Expr]]:
        return [*self.inputs, *self.outputs]


Item = Union[Assign, Process, Instance]


@dataclass(eq=False)
class Module:
    name: str
    #: comment text (without comment markers) under the generated-file line
    header: list[str]
    #: what the module is, for the generated-file line ("AXI4-Stream wrapper of core ...")
    kind: str = ""
    ports: list[tuple[Sig, str]] = field(default_factory=list)
    decls: list[Sig | Mem] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)

    def port(self, name: str, direction: str, width: int | None = None, note: str = "") -> Sig:
        if direction not in ("in", "out"):
            raise ValueError(f"port direction 'in' or 'out', got {direction!r}")
        s = Sig(name, width, note=note)
        self.ports.append((s, direction))
        return s

    def signal(self, name: str, width: int | None = None, init: int | None = None, note: str = "") -> Sig:
        s = Sig(name, width, init, note)
        self.decls.append(s)
        return s

    def memory(self, name: str, depth: int, width: int, note: str = "") -> Mem:
        mem = Mem(name, depth, width, note)
        self.decls.append(mem)
        return mem

    def assign(self, target: Sig, value: Expr, note: str = "") -> None:
        self.items.append(Assign(target, value, note))

    def process(self, clock: Sig, body: list[Stmt], note: str = "") -> None:
        self.items.append(Process(clock, body, note))

    def instance(self, entity: str, label: str, inputs: list[tuple[str, Expr]],
                 outputs: list[tuple[str, Sig]]) -> None:
        self.items.append(Instance(entity, label, inputs, outputs))

    def registers(self) -> set[int]:
        """ids of the signals a process drives."""
        out: set[int] = set()

        def walk(body: list[Stmt]) -> None:
            for st in body:
                if isinstance(st, Set):
                    out.add(id(st.target))
                elif isinstance(st, If):
                    walk(st.then)
                    walk(st.orelse)

        for item in self.items:
            if isinstance(item, Process):
                walk(item.body)
        return out

    def check(self) -> None:
        """Names unique (without regard to case); every assignment of a value of the target's
        width; every signal driven once (by one continuous assignment, one process or the
        instance); no input driven, no output read (VHDL-93 tools may not read an ``out``
        port); initial values on registers only."""
        seen: set[str] = set()
        for name in [s.name for s, _ in self.ports] + [d.name for d in self.decls]:
            if name.lower() in seen:  # VHDL names ignore case
                raise ValueError(f"{self.name}: the name {name!r} is declared twice")
            seen.add(name.lower())
        regs = self.registers()
        outputs = {id(s) for s, d in self.ports if d == "out"}
        inputs = {id(s) for s, d in self.ports if d == "in"}
        driver: dict[int, str] = {}

        def drive(s: Sig, by: str) -> None:
            if id(s) in inputs:
                raise ValueError(f"{self.name}: input {s.name!r} is driven")
            if driver.setdefault(id(s), by) != by:
                raise ValueError(f"{self.name}: {s.name!r} is driven by {driver[id(s)]} and {by}")

        def same_width(s: Sig | Mem, e: Expr) -> None:
            if s.width != width_of(e):
                raise ValueError(f"{self.name}: {s.name!r} ({s.width} bits) assigned {width_of(e)} bits")

        def reads(e: Expr) -> None:
            if isinstance(e, Sig) and id(e) in outputs:
                raise ValueError(f"{self.name}: output {e.name!r} is read")
            for c in children(e):
                reads(c)

        def walk(body: list[Stmt], k: int) -> None:
            for st in body:
                if isinstance(st, Set):
                    same_width(st.target, st.value)
                    drive(st.target, f"process {k}")
                    reads(st.value)
                elif isinstance(st, If):
                    reads(st.cond)
                    walk(st.then, k)
                    walk(st.orelse, k)
                else:
                    same_width(st.mem, st.data)
                    reads(st.addr)
                    reads(st.data)

        for k, item in enumerate(self.items):
            if isinstance(item, Assign):
                same_width(item.target, item.value)
                drive(item.target, "a continuous assignment")
                reads(item.value)
            elif isinstance(item, Process):
                walk(item.body, k)
            else:
                for _, actual in item.inputs:
                    reads(actual)
                for _, actual in item.outputs:
                    drive(actual, f"instance {item.label}")
        for s in self.decls:
            if isinstance(s, Sig) and s.init is not None and id(s) not in regs:
                raise ValueError(f"{self.name}: {s.name!r} has a power-up value but is no register")


def header_lines(m: Module, language: str) -> list[str]:
    """Comment text (without markers) at the top of the printed file."""
    return [f"{m.name}: {language} generated by nnfpga {__version__}" + (f", {m.kind}" if m.kind else "") + ".",
            "Do not edit: regenerate from the model instead.", "", *m.header]
