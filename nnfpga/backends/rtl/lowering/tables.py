"""Lookup-table activations: tanh / sigmoid as a ROM layer (`lower_table`) and softmax
(`lower_softmax`), reading exactly the tables the IR defines."""

from __future__ import annotations

from nnfpga.backends.rtl.lowering.builder import Builder, RtlConfig, Value, balanced_tree, check_in_ir_range, \
    counted_layer, register_bits
from nnfpga.backends.rtl.netlist import LayerInfo, Mul, MulConst, RomTable, Signal, Sum, Term, const, flat_ops
from nnfpga.ir.ops import Activation


def lower_table(b: Builder, act: Activation, xs: list[Value]) -> tuple[list[Value], LayerInfo]:
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
    check_in_ir_range(act, values)
    return values, counted_layer(
        b.ops[first_op:], name=act.name, kind="table", nodes=[act.name], latency=2, first_stage=-1,
        description=f"{t.function} ROM {t.size} x {t.out_type} (index {t.index_type})")


def table_lookup(b: Builder, name: str, v: Signal, f: int, t, rom: RomTable) -> tuple[Signal, int]:
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


def lower_softmax(b: Builder, act: Activation, xs: list[Value], in_frac: int,
                   cfg: RtlConfig) -> tuple[list[Value], LayerInfo]:
    """Exactly `Activation._softmax`: ``m = max x`` (a tree of maxima), ``e_i =
    exp_table(x_i - m)``, ``s = sum e_i`` (exact adder tree), ``r = inv_table(s)``,
    ``y_i = e_i * r`` (one multiplier each) converted to the output type.  Stages: the
    max tree, 2 (exp ROM), the sum tree, 2 (reciprocal ROM), 1 (products), 1 (output)."""
    b.layer = act.name
    first_op = len(b.ops)
    n = act.name
    xs = [(b.materialize(f"{n}_in{k}", v, f, in_frac), in_frac) for k, (v, f) in enumerate(xs)]
    (m, _), d1 = balanced_tree(b, f"{n}_max", list(xs), lambda nm, p, q: (b.max(nm, p[0], q[0], in_frac), in_frac), cfg)
    xd = [b.delay(f"{n}_xd{k}", v, d1) for k, (v, _) in enumerate(xs)]
    et, it = act.table, act.inv_table
    exp_rom = RomTable(b.namer.take(f"{n}_exp_rom"), tuple(int(e) for e in et.entries),
                       note=f"exp table of {n}: {et.size} entries of {et.out_type}, index {et.index_type}")
    inv_rom = RomTable(b.namer.take(f"{n}_inv_rom"), tuple(int(e) for e in it.entries),
                       note=f"reciprocal table of {n}: {it.size} entries of {it.out_type}, index {it.index_type}")
    es = []
    for k, x in enumerate(xd):
        d = b.sum(f"{n}_d{k}", [Term(x), Term(m, 0, True)], in_frac, note=f"{n}[{k}]: x - max x (<= 0)")
        es.append(table_lookup(b, f"{n}_e{k}", d, in_frac, et, exp_rom))
    ef = et.out_type.frac

    def add(nm, p, q):
        return b.sum(nm, [Term(p[0]), Term(q[0])], ef), ef

    (s, _), d2 = balanced_tree(b, f"{n}_sum", list(es), add, cfg, adds=True)
    ed = [b.delay(f"{n}_ed{k}", v, d2 + 2) for k, (v, _) in enumerate(es)]
    r, rf = table_lookup(b, f"{n}_r", s, ef, it, inv_rom)
    vals = []
    for k, e in enumerate(ed):
        p = b.mult(f"{n}_p{k}", e, r, ef + rf, note=f"{n}[{k}]: e * (1 / sum e)")
        p = b.reg(f"{n}_pr{k}", p)
        y, fy = b.requant(f"{n}_q{k}", p, ef + rf, act.info.type, note=f"{n}[{k}]: requantize to {act.info.type}")
        vals.append((b.reg(f"{n}_y{k}", y, fy), fy))
    check_in_ir_range(act, vals)
    layer_ops = flat_ops(b.ops[first_op:])
    return vals, LayerInfo(name=n, kind="softmax", nodes=[n], latency=d1 + 2 + d2 + 2 + 2, first_stage=-1,
                           multipliers=sum(isinstance(op, (Mul, MulConst)) for op in layer_ops),
                           adders=sum(isinstance(op, Sum) and op.is_adder for op in layer_ops),
                           register_bits=register_bits(layer_ops),
                           description=f"softmax over {len(xs)}: max tree, exp ROM {et.size} x {et.out_type}, "
                                       f"sum tree, reciprocal ROM {it.size} x {it.out_type}, "
                                       f"{len(xs)} multipliers -> {act.info.type}")
