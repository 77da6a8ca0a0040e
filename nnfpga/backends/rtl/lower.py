"""Lowering: an IR graph (a chain of Input, Dense, Activation, Reshape) to a `Netlist`.

Supported: Input; Dense (reuse factor 1) with the linear / relu / hard_tanh Activations
that follow it folded into its output stage; tanh / sigmoid Activations as ROM layers
(`_lower_table`); a linear / relu / hard_tanh Activation that follows no Dense as a
one-cycle conversion layer; Reshape/Flatten (wiring: the bus order is row-major).
Anything else (Conv2D, MaxPool2D, softmax, reuse factor > 1) raises
`RtlUnsupportedError` naming the layer.

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

Dense (reuse factor 1), per output ``j``:

1. products ``x_i * w_ij`` for every non-zero weight whose input is not constant.
   ``|w| = odd * 2**k``: ``odd == 1`` (ternary, binary, powers of two, ``+-2**k`` fixed
   weights) is wiring, the input itself, its sign handled by the adder tree; otherwise a
   `MulConst` by ``odd`` (one multiplier per such weight).  When the layer has at least
   one multiplier, products are registered (the inputs used by wiring terms go through
   one shared register each, so every leaf is at the same stage); without multipliers
   the tree reads the inputs directly.
2. a balanced adder tree: leaves paired in order at every level; negative leaves become
   subtractions (only an all-negative sum needs a negation, in the output stage).  A
   register follows every ``levels_per_register`` levels and the last level.  Outputs
   with fewer leaves pass through registers so every output has the same latency.
   The bias (and the contributions of constant inputs) is one constant, added where a
   node has no partner at some level (free: that node is only being registered), else
   in the output stage.
3. output stage: the Dense conversion ``dense.info.type.requantize(acc, acc_frac)``,
   then for each folded Activation (linear, relu, hard_tanh) its clip and conversion
   ``act.info.type.requantize(f(x), previous type frac)``; registered.

Latency of a Dense layer: ``[1 if multipliers] + ceil(depth / levels_per_register) + 1``
with ``depth = ceil(log2(max leaves over outputs))``; a table layer: 2; a stand-alone
conversion: 1; the optional input register: 1.  II = 1 everywhere.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from nnfpga.compiler.errors import UserError
from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Dense, Input, Op as IrOp, Reshape
from nnfpga.backends.rtl.names import RESERVED, Namer, top_name
from nnfpga.backends.rtl.netlist import (Bit, Clip, InputSlice, LayerInfo, MulConst, Netlist, Op,
                                        Reg, Requant, Rom, RomTable, Shr, Signal, Sum, Term, Wrap,
                                        const, flat_ops)


class RtlUnsupportedError(UserError, ValueError):
    """The model uses something the RTL backend cannot build (yet); names the layer."""


@dataclass(frozen=True)
class RtlConfig:
    """Options of the RTL lowering.

    ``levels_per_register``: adder-tree levels between two pipeline registers (1 = a
    register after every level).  ``register_input``: register ``in_data`` before the
    first layer (one more cycle of latency).
    """

    levels_per_register: int = 1
    register_input: bool = False

    def __post_init__(self) -> None:
        lpr = self.levels_per_register
        if isinstance(lpr, bool) or not isinstance(lpr, int) or lpr < 1:
            raise ValueError(f"levels_per_register must be an integer >= 1, got {lpr!r}")


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

    # every method returns the signal holding the result; it may be an existing one
    # (nothing to compute) or a constant (folded), in which case no operation is added
    def _add(self, op: Op, name: str, frac: int) -> Signal:
        lo, hi = op.range()
        if lo == hi:
            return const(lo, frac)
        op.out = Signal(self.namer.take(name), lo, hi, frac, op.stage(), self.layer)
        self.ops.append(op)
        return op.out

    def input_slice(self, name: str, index: int, t: FixedType) -> Signal:
        return self._add(InputSlice(None, index=index, elem_type=t), name, t.frac)

    def mul(self, name: str, a: Signal, c: int, frac: int, note: str = "") -> Signal:
        if a.is_const or c in (0, 1):
            return const(a.value * c, frac) if (a.is_const or c == 0) else a
        return self._add(MulConst(None, a=a, c=c, note=note), name, frac)

    def sum(self, name: str, terms: list[Term], frac: int, note: str = "") -> Signal:
        c = sum(((-1 if t.neg else 1) * (t.sig.value << t.shift)) for t in terms if t.sig.is_const)
        live = [t for t in terms if not t.sig.is_const]
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

    def reg(self, name: str, a: Signal, frac: int | None = None) -> Signal:
        """``a`` one cycle later; ``frac`` (default ``a.frac``) labels the value's scale
        (a signal read as a tree leaf can stand for a value at another scale)."""
        if a.is_const:
            return a
        return self._add(Reg(None, a=a), name, a.frac if frac is None else frac)

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
        if isinstance(n, Dense):
            out.append((n, "none"))
        else:
            out.append((n, n.function))
    return out


def _apply_conversions(b: Builder, values: list[Value], convs: list[tuple[IrOp, str]],
                       in_frac: int) -> list[Value]:
    """Chain of conversions of the output stage, element by element, as the emulator."""
    prev_frac = in_frac
    for node, fn in convs:
        t = node.info.type
        new = []
        for j, (v, f) in enumerate(values):
            clip = None
            if fn == "relu":
                clip = (0, None)
            elif fn == "hard_tanh":
                v, f = b.materialize(f"{node.name}_in{j}", v, f, prev_frac), prev_frac
                clip = (-(1 << f), 1 << f)
            name = f"{node.name}_q{j}"
            note = f"{node.name}[{j}]: " + ("" if fn in ("none", "linear") else f"{fn}, then ") + \
                f"requantize to {t}"
            new.append(b.requant(name, v, f, t, clip, note))
        _check_in_ir_range(node, new)
        values, prev_frac = new, t.frac
    return values


def _lower_dense(b: Builder, dense: Dense, xs: list[Value], in_frac: int, folded: list[Activation],
                 cfg: RtlConfig) -> tuple[list[Value], LayerInfo]:
    """``in_frac``: fractional bits of the IR type of the Dense's input tensor."""
    name = dense.name
    b.layer = name
    first_op = len(b.ops)
    if dense.kernel_q is None:
        raise _unsupported(dense, "the layer is not quantised")
    if dense.reuse_factor != 1:
        raise _unsupported(dense, f"reuse factor {dense.reuse_factor} is not supported by the RTL "
                                  "backend yet (only 1)")
    w = dense.kernel_q.raw
    if w.shape != (len(xs), dense.n_out):
        raise _unsupported(dense, f"kernel shape {w.shape} does not match {len(xs)} inputs")
    kf = dense.kernel_q.frac
    stages = {s.stage for s, _ in xs if not s.is_const}
    if len(stages) > 1:
        raise AssertionError(f"inputs of {name} are at different stages {stages}")

    # ---- leaves: products (registered when there is any multiplier) ---------------
    plan: list[list[tuple[int, int, int, bool]]] = []     # per j: (i, odd, k, neg)
    consts: list[tuple[int, int] | None] = []            # per j: constant (raw, frac)
    for j in range(dense.n_out):
        items, c = [], None
        if dense.bias_q is not None and int(dense.bias_q.raw.reshape(-1)[j]) != 0:
            c = _strip(int(dense.bias_q.raw.reshape(-1)[j]), dense.bias_q.frac)
        for i, (x, fx) in enumerate(xs):
            wij = int(w[i, j])
            if wij == 0:
                continue
            if x.is_const:
                c = _align_add(c, None if x.value == 0 else _strip(x.value * wij, fx + kf))
                continue
            mag = abs(wij)
            k = (mag & -mag).bit_length() - 1
            items.append((i, mag >> k, k, wij < 0))
        plan.append(items)
        consts.append(c)
    n_mult = sum(odd != 1 for items in plan for (_, odd, _, _) in items)
    product_stage = n_mult > 0
    xd: dict[int, Signal] = {}
    leaves: list[list[Node]] = []
    for j, items in enumerate(plan):
        row = []
        for i, odd, k, neg in items:
            x, fx = xs[i]
            if odd != 1:
                m = b.mul(f"{name}_m{i}_{j}", x, odd, fx + kf - k,
                          note=f"{name}: x{i} * w[{i},{j}] = x{i} * {'-' if neg else ''}{odd}*2^{k}")
                sig = b.reg(f"{name}_p{i}_{j}", m)
            elif product_stage:
                if i not in xd:
                    xd[i] = b.reg(f"{name}_xd{i}", x)
                sig = xd[i]
            else:
                sig = x
            row.append(Node(sig, fx + kf - k, neg))
        leaves.append(row)

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
    acc_frac = dense.acc_frac(in_frac)
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
    values = _apply_conversions(b, values, _conversions([dense, *folded]), acc_frac)
    last = folded[-1].name if folded else name
    values = [(b.reg(f"{last}_y{j}", v, f), f) for j, (v, f) in enumerate(values)]

    latency = int(product_stage) + math.ceil(depth / lpr) + 1
    layer_ops = flat_ops(b.ops[first_op:])
    kinds = sorted({dense.kernel_q.kind.value})
    desc = (f"Dense {len(xs)}->{dense.n_out} ({', '.join(kinds)} weights)"
            + "".join(f" + {a.function} -> {a.info.type}" for a in folded)
            + f"; tree depth {depth}")
    info = LayerInfo(name=name, kind="dense", nodes=[dense.name, *(a.name for a in folded)], latency=latency,
                     first_stage=-1,
                     multipliers=sum(isinstance(op, MulConst) for op in layer_ops),
                     adders=sum(isinstance(op, Sum) and op.is_adder for op in layer_ops),
                     register_bits=sum(op.out.width for op in layer_ops if isinstance(op, Reg)),
                     description=desc)
    return values, info


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


def _lower_activation(b: Builder, act: Activation, xs: list[Value], in_frac: int
                      ) -> tuple[list[Value], LayerInfo]:
    b.layer = act.name
    first_op = len(b.ops)
    values = _apply_conversions(b, xs, [(act, act.function)], in_frac)
    values = [(b.reg(f"{act.name}_y{j}", v, f), f) for j, (v, f) in enumerate(values)]
    layer_ops = flat_ops(b.ops[first_op:])
    return values, LayerInfo(
        name=act.name, kind="activation", nodes=[act.name], latency=1, first_stage=-1,
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


FOLDABLE = ("linear", "relu", "hard_tanh")
TABLES = ("tanh", "sigmoid")


def lower(graph: Graph, config: RtlConfig | None = None) -> Netlist:
    """Build the RTL description of ``graph`` (a typed chain; see the module doc)."""
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
    for n in nodes[1:]:
        if isinstance(n, (Dense, Reshape)):
            continue
        if isinstance(n, Activation) and (n.function in FOLDABLE or
                                          (n.function in TABLES and n.table is not None)):
            continue
        why = {"Activation": "supported activations are linear, relu, hard_tanh, tanh and sigmoid "
                             "(softmax is not supported by the RTL backend yet)"}.get(
            n.op_type, f"{n.op_type} is not supported by the RTL backend yet "
                       "(supported: Dense, Activation, Reshape)")
        raise _unsupported(n, why)
    if not any(isinstance(n, Dense) for n in nodes):
        raise ValueError(f"model {graph.name!r} has no Dense layer: nothing to build")

    b = Builder()
    top = top_name(graph.name)
    in_type = inp.info.type
    n_in = int(np.prod(inp.info.shape))
    b.layer = inp.name
    inputs = [b.input_slice(f"{inp.name}_x{k}", k, in_type) for k in range(n_in)]
    values: list[Value] = [(s, in_type.frac) for s in inputs]
    layers: list[LayerInfo] = []
    if cfg.register_input:
        first = len(b.ops)
        values = [(b.reg(f"{inp.name}_xr{k}", s, f), f) for k, (s, f) in enumerate(values)]
        layers.append(LayerInfo(inp.name, "input", [inp.name], 1, -1,
                                register_bits=sum(op.out.width for op in b.ops[first:] if isinstance(op, Reg)),
                                description="input register"))
    type_frac = in_type.frac  # frac of the IR type of the current tensor
    k = 1
    while k < len(nodes):
        n = nodes[k]
        if isinstance(n, Reshape):
            k += 1  # row-major flattening: the bus order does not change
            continue
        if isinstance(n, Dense):
            folded = []
            while k + 1 < len(nodes) and isinstance(nodes[k + 1], Activation) \
                    and nodes[k + 1].function in FOLDABLE:
                folded.append(nodes[k + 1])
                k += 1
            values, info = _lower_dense(b, n, values, type_frac, folded, cfg)
        elif n.function in TABLES:
            values, info = _lower_table(b, n, values)
        else:
            values, info = _lower_activation(b, n, values, type_frac)
        layers.append(info)
        type_frac = nodes[k].info.type.frac
        k += 1

    out_node = nodes[-1]
    out_type = out_node.info.type
    b.layer = "(output wiring)"
    outputs = [b.materialize(f"{out_node.name}_o{j}", v, f, out_type.frac) for j, (v, f) in enumerate(values)]
    stage = 0
    for info in layers:
        info.first_stage = stage
        stage += info.latency
    nl = Netlist(name=top, model_name=graph.name, in_type=in_type, out_type=out_type,
                 inputs=inputs, outputs=outputs, ops=b.ops, layers=layers, latency=stage,
                 config=asdict(cfg))
    nl.check()
    return nl
