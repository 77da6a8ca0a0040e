"""Dense, BankedDense and Conv2D: one `LinearPlan` each, lowered by `lower_linear`.

A plan is, per output ``j``, a list of (input, weight) pairs and a bias.  A
convolution's output ``(y, x, f)`` reads the inputs of its receptive field (zero padding
contributes nothing); at reuse factor 1 every output position has its own constant
multipliers (fully parallel, the whole input map on the bus).

Reuse factor 1, per output ``j``:

1. products ``x_i * w_ij`` for every non-zero weight whose input is not constant.
   ``|w| = odd * 2**k``: ``odd == 1`` (ternary, binary, powers of two) is wiring, the
   input itself, its sign handled by the adder tree; otherwise a `MulConst` by ``odd``.
   With ``cfg.shift_add`` (``--max-dsp 0``) every weight is wiring: ``w`` is the sum of
   its canonical signed digits ``+-2**k`` (`dsp.csd`), and each is a leaf of its own
   (the input, shifted, its sign handled by the adder tree), so no multiplier is built;
   the two lowest digits of a weight, when the same pair ``x_i * (1 +- 2**d)`` occurs
   in several weights of input ``i``, are one pre-adder built once and shared
   (`schedule.shared_pairs`: a first common-subexpression step).
   Shifted copies of one input meet in the tree (``x * 7 = (x << 3) - x``): every tree
   node tracks itself as a linear function of the inputs (`Node.lin`), whose range is
   the node's exact bound (`Sum.bound`) -- the terms' ranges alone would widen it.
   When the layer has at least one multiplier, products pass through
   ``multiplier_registers`` (M) registers (the wiring terms' inputs through as many
   shared registers, so every leaf is at the same stage).
2. a balanced adder tree: leaves paired in order at every level; negative leaves become
   subtractions.  Registers follow the levels `schedule.linear_pipeline` names (from the
   clock, or every ``levels_per_register`` levels) and the last level.  The bias (and the contributions of constant inputs) is one constant, added
   where a node has no partner at some level, else in the output stage.
3. output stage: the layer's conversion, then the folded activations
   (`conversions`); registered.

Reuse factor R > 1: the multiplications by non-powers of two are shared by multiplier
units (`multiplier_units`, grouped by `schedule.unit_groups`); their partial sums are
the leaves of the same adder tree.  The latency is `schedule.linear_pipeline`'s.
"""

from __future__ import annotations

import math

from nnfpga.backends.rtl.dsp import csd
from nnfpga.backends.rtl.lowering.builder import (Builder, Node, RtlConfig, Value, add_constants, register_bits,
                                                  strip_zeros, unsupported)
from nnfpga.backends.rtl.lowering.conversions import apply_conversions, conversion_chain
from nnfpga.backends.rtl.lowering.multiplier_units import reuse_leaves
from nnfpga.backends.rtl.lowering.plans import LinearPlan
from nnfpga.backends.rtl.lowering import schedule
from nnfpga.backends.rtl.lowering.stage_delay import combinational_ns
from nnfpga.backends.rtl.timing import fmax_mhz
from nnfpga.backends.rtl.netlist import LayerInfo, Mul, MulConst, RomTable, Signal, Sum, Term, const, flat_ops
from nnfpga.ir.ops import Activation, Op as IrOp
from nnfpga.ir.ops.base import TensorInfo


def bank_table(b: Builder, name: str, per_bank: tuple[int, ...], bank_bits: int, note: str) -> RomTable:
    """A ROM addressed by the bank index; addresses past the last bank read bank 0."""
    entries = tuple(per_bank) + (per_bank[0],) * ((1 << bank_bits) - len(per_bank))
    return RomTable(b.namer.take(name), entries, note=note)


def lower_linear(b: Builder, plan: LinearPlan, xs: list[Value], folded: list[Activation],
                  cfg: RtlConfig, node: IrOp, x_info: TensorInfo) -> tuple[list[Value], LayerInfo]:
    """Dense or Conv2D (``node``) with the foldable activations that follow it;
    ``x_info``: the IR tensor of its input (the schedule prices the layer from it, as the
    reuse search does)."""
    name = plan.name
    b.layer = name
    first_op = len(b.ops)
    stages = {s.stage for s, _ in xs if not s.is_const}
    if len(stages) > 1:
        raise AssertionError(f"inputs of {name} are at different stages {stages}")
    s0 = stages.pop() if stages else 0

    mr = schedule.multiplier_registers(plan.reuse, cfg)
    if plan.bank_cols is not None:
        leaves, consts, n_mult, R, pre_adder = banked_leaves(b, plan, xs, s0, mr, node, cfg.shift_add)
    else:
        leaves, consts, n_mult, R, pre_adder = fixed_leaves(b, plan, xs, s0, mr, cfg.shift_add)

    # ---- balanced adder trees --------------------------------------------------------
    depth = max((math.ceil(math.log2(len(r))) for r in leaves if len(r) > 1), default=0)
    pipe = schedule.linear_pipeline(n_mult, R, depth, schedule.product_bits(node, x_info), cfg, pre_adder)
    nodes = leaves
    for level in range(1, depth + 1):
        registered = level in pipe.registered
        new_nodes = []
        for j, row in enumerate(nodes):
            new = []
            for k in range(0, len(row) - 1, 2):
                new.append(combine(b, f"{name}_s{level}_{j}_{k // 2}", row[k], row[k + 1]))
            if len(row) % 2:
                last = row[-1]
                if consts[j] is not None:  # a free slot: add the constant here
                    last = add_constant(b, f"{name}_s{level}_{j}_{len(row) // 2}", last, consts[j])
                    consts[j] = None
                new.append(last)
            if registered:
                # the register holds the same linear function of the same sample's inputs
                new = [Node(b.reg(f"{name}_r{level}_{j}_{k}", n.sig, n.frac), n.frac, n.neg,
                            (n.lin or {id(n.sig): (n.sig, 1)}) if b.shift_add else None)
                       for k, n in enumerate(new)]
            new_nodes.append(new)
        nodes = new_nodes

    # ---- output stage: accumulator, conversions, register -------------------------
    acc_frac = plan.acc_frac
    out_mark = len(b.ops)
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
    # a leaky ReLU's products follow the registered values, not a unit's input selection
    conv_mark, taken = len(b.ops), b.namer.snapshot()
    accumulators = values
    values, extra = apply_conversions(b, accumulators, conversion_chain([node, *folded]), acc_frac,
                                      schedule.multiplier_registers(1, cfg), settle=R > 1)
    out_ns = combinational_ns(b.ops[out_mark:], cfg.delays)
    split = out_ns is not None and cfg.levels_per_register is None and cfg.delays.overhead + out_ns > cfg.period_ns
    if split:
        # the accumulator and the conversions do not fit one period: a register between them
        del b.ops[conv_mark:]
        b.namer.restore(taken)
        acc_ns = combinational_ns(b.ops[out_mark:], cfg.delays)
        accumulators = [(b.reg(f"{name}_acc_r{j}", v, f), f) for j, (v, f) in enumerate(accumulators)]
        conv_mark = len(b.ops)
        values, extra = apply_conversions(b, accumulators, conversion_chain([node, *folded]), acc_frac,
                                          schedule.multiplier_registers(1, cfg), registered=True, settle=R > 1)
        conv_ns = combinational_ns(b.ops[conv_mark:], cfg.delays)
        out_ns = None if conv_ns is None else max(acc_ns, conv_ns)
        extra += 1
    last = folded[-1].name if folded else name
    values = [(b.reg(f"{last}_y{j}", v, f), f) for j, (v, f) in enumerate(values)]

    latency = pipe.latency + extra
    path_ns = round(max(pipe.path_ns, cfg.delays.overhead + (out_ns or 0.0)), 3)   # the output stage too
    n_units = len(schedule.unit_groups(n_mult, R))
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
                     register_bits=register_bits(layer_ops),
                     description=desc, ii=R, reuse_factor=plan.reuse, path_ns=path_ns,
                     fmax_mhz=fmax_mhz(path_ns), clock_mhz=cfg.clock_mhz,
                     tree_registers=list(pipe.registered), multiplier_registers=mr if n_mult else 0,
                     output_registers=2 if split else 1)
    return values, info


def _product_items(i: int, w: int, shift_add: bool = False) -> list[tuple[int, int, int, bool]]:
    """``x_i * w`` as (input, odd, shift, negative) items: ``|w| = odd * 2**shift``, or
    with ``shift_add`` one item ``(i, 1, k, s < 0)`` per canonical signed digit
    ``s * 2**k`` of ``w``."""
    if shift_add:
        return [(i, 1, k, s < 0) for k, s in csd(w)]
    mag = abs(w)
    k = (mag & -mag).bit_length() - 1
    return [(i, mag >> k, k, w < 0)]


def _columns(plan: LinearPlan, xs: list[Value], items_of) -> tuple[list[list[tuple[int, int, int, bool]]],
                                                                     list[tuple[int, int] | None]]:
    """Per output: its (input, odd, shift, negative) items (``items_of(i, w)`` for a
    non-constant input ``i``) and its constant part (the bias plus the products of the
    constant inputs)."""
    plan_items, consts = [], []
    for j, col in enumerate(plan.cols):
        items, c = [], plan.bias[j]
        for i, wij in col:
            x, fx = xs[i]
            if x.is_const:
                c = add_constants(c, None if x.value == 0 else strip_zeros(x.value * wij, fx + plan.kf))
            else:
                items += items_of(i, wij)
        plan_items.append(items)
        consts.append(c)
    return plan_items, consts


def fixed_leaves(b: Builder, plan: LinearPlan, xs: list[Value], s0: int, mr: int, shift_add: bool = False):
    """Constant weights: (tree leaves per output, constant per output, the
    multiplications by non-powers of two, the layer's II); ``shift_add``: no
    multiplication, every weight as its canonical signed digits, a pair of digits shared
    by several weights of one input as one pre-adder (`schedule.shared_pairs`); then also
    whether there are pre-adders."""
    name, kf = plan.name, plan.kf
    if shift_add:
        return _shift_add_leaves(b, plan, xs, mr)
    plan_items, consts = _columns(plan, xs, _product_items)
    n_mult = sum(odd != 1 for items in plan_items for (_, odd, _, _) in items)
    R = plan.reuse if n_mult else 1
    if R > 1:
        leaves = reuse_leaves(b, name, plan_items, xs, kf, R, s0, mr)
    else:
        leaves = parallel_leaves(b, name, plan_items, xs, kf, mr)
    return leaves, consts, n_mult, R, False


def _shift_add_leaves(b: Builder, plan: LinearPlan, xs: list[Value], mr: int):
    """`fixed_leaves` with shift-add products: each shared pair ``x_i * (1 +- 2**d)`` is
    a pre-adder built once (a leaf of every tree that uses it, known as that linear
    function of ``x_i`` so the trees' bounds stay exact); the other digits are ``x_i``."""
    name, kf = plan.name, plan.kf
    shared = schedule.shared_pairs(plan.cols)
    ext = list(xs)                      # the inputs, then the pre-adders
    pre: dict[tuple[int, int, int], int] = {}
    lins: dict[int, dict] = {}

    def items_of(i: int, wij: int) -> list[tuple[int, int, int, bool]]:
        x, fx = xs[i]
        p, k1, s1, rest = schedule.shift_add_terms(i, wij, shared)
        items = []
        if p is not None:
            if p not in pre:
                _, d, t = p
                factor = 1 + t * (1 << d)
                ends = (x.lo * factor, x.hi * factor)
                y = b.sum(f"{name}_pa{i}_{d}{'p' if t > 0 else 'm'}", [Term(x), Term(x, d, t < 0)], fx,
                          note=f"{name}: x{i} * (1 {'+' if t > 0 else '-'} 2^{d}), shared",
                          bound=(min(ends), max(ends)))
                lins[id(y)] = {id(x): (x, factor)}
                ext.append((y, fx))
                pre[p] = len(ext) - 1
            items.append((pre[p], 1, k1, s1 < 0))
        return items + [(i, 1, k, s < 0) for k, s in rest]

    plan_items, consts = _columns(plan, xs, items_of)
    leaves = parallel_leaves(b, name, plan_items, ext, kf, mr)
    for row in leaves:
        for n in row:
            n.lin = lins.get(id(n.sig))
    return leaves, consts, 0, 1, bool(shared)


def banked_leaves(b: Builder, plan: LinearPlan, xs: list[Value], s0: int, mr: int, node: IrOp,
                  shift_add: bool = False):
    """A BankedDense: like `fixed_leaves`, but a weight that differs between banks is a
    `Mul` of the input by a ROM of the per-bank weights addressed by the bank index (at
    reuse R > 1 the units' weight tables hold a sequence per bank), and a bias that
    differs is a ROM leaf of the tree.  Weights equal in every bank are constants as in a
    Dense layer (with ``shift_add``, canonical signed digits); zero in every bank, never
    built.  A weight that differs between banks has no shift-add form: with
    ``shift_add`` it is refused."""
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
                items += _product_items(i, wv[0], shift_add)
            elif shift_add:
                raise unsupported(node, f"weight [{i},{j}] differs between banks ({', '.join(map(str, wv))}): "
                                        "a product by a bank-selected weight needs a multiplier, which "
                                        "--max-dsp 0 (every product as shift-add logic) cannot build")
            else:
                var.append((i, wv))
        plan_items.append(items)
        banked.append(var)
        uniform = len(set(cb)) == 1
        consts.append(strip_zeros(cb[0], acc_frac) if uniform and cb[0] else None)
        bias_rows.append(None if uniform else tuple(cb))
    n_mult = sum(odd != 1 for items in plan_items for (_, odd, _, _) in items) + sum(map(len, banked))
    R = plan.reuse if n_mult else 1
    if R > 1:
        leaves = reuse_leaves(b, name, plan_items, xs, kf, R, s0, mr, banked, bank)
        bias_bank = b.delay(f"{name}_bankd", bank, R + mr + 1)
    else:
        leaves = parallel_leaves(b, name, plan_items, xs, kf, mr, product_stage=n_mult > 0)
        for j, var in enumerate(banked):
            for i, wv in var:
                x, fx = xs[i]
                table = bank_table(b, f"{name}_w{i}_{j}", wv, bits, f"{name}: w[{i},{j}] by bank")
                w = b.rom(f"{name}_wr{i}_{j}", bank, table, kf)
                m = b.mult(f"{name}_m{i}_{j}", x, w, fx + kf, note=f"{name}: x{i} * w[{i},{j}] of the bank")
                leaves[j].append(Node(b.delay(f"{name}_p{i}_{j}", m, mr), fx + kf))
        bias_bank = b.delay(f"{name}_bankd", bank, mr * int(n_mult > 0))
    for j, row in enumerate(bias_rows):
        if row is not None:
            table = bank_table(b, f"{name}_b{j}", row, bits, f"{name}: bias[{j}] by bank")
            leaves[j].append(Node(b.rom(f"{name}_br{j}", bias_bank, table, acc_frac), acc_frac))
    return leaves, consts, n_mult, R, False


def parallel_leaves(b: Builder, name: str, plan_items, xs: list[Value], kf: int,
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


def combine(b: Builder, name: str, p: Node, q: Node) -> Node:
    f = max(p.frac, q.frac)
    if p.neg == q.neg:
        parts, neg = [(p, Term(p.sig, f - p.frac)), (q, Term(q.sig, f - q.frac))], p.neg
    elif p.neg:
        parts, neg = [(q, Term(q.sig, f - q.frac)), (p, Term(p.sig, f - p.frac, True))], False
    else:
        parts, neg = [(p, Term(p.sig, f - p.frac)), (q, Term(q.sig, f - q.frac, True))], False
    terms = [t for _, t in parts]
    if not b.shift_add:  # every input at most once per output: the terms' range is exact
        return Node(b.sum(name, terms, f), f, neg)
    lin = _lin_sum(parts)
    return Node(b.sum(name, terms, f, bound=_lin_range(lin)), f, neg, lin)


def add_constant(b: Builder, name: str, p: Node, c: tuple[int, int]) -> Node:
    # (-1)^neg * sig * 2^-f + c  =  (-1)^neg * (sig * 2^-f + (-1)^neg * c)
    raw, fc = (-c[0], c[1]) if p.neg else c
    f = max(p.frac, fc)
    terms = [Term(p.sig, f - p.frac), Term(const(raw << (f - fc), f))]
    if not b.shift_add:
        return Node(b.sum(name, terms, f), f, p.neg)
    lin = _lin_sum([(p, terms[0])])
    lin["const"] = (None, lin.get("const", (None, 0))[1] + (raw << (f - fc)))
    return Node(b.sum(name, terms, f, bound=_lin_range(lin)), f, p.neg, lin)


def _lin_sum(parts: list[tuple[Node, Term]]) -> dict:
    """`Node.lin` of the sum of the terms (each the ``sig`` of its node)."""
    out: dict = {}
    for node, t in parts:
        for key, (s, c) in (node.lin or {id(node.sig): (node.sig, 1)}).items():
            c = (-c if t.neg else c) << t.shift
            out[key] = (s, out.get(key, (s, 0))[1] + c)
    return {k: v for k, v in out.items() if v[1]}


def _lin_range(lin: dict) -> tuple[int, int]:
    """The range of ``sum(c * s)`` over independent signals ``s``: every signal at the
    end of its range that minimises (maximises) its own term.  A signal that occurs in
    several leaves (``x * 7`` as ``(x << 3) - x``) is one variable here, not several."""
    lo = hi = 0
    for s, c in lin.values():
        a, z = (c, c) if s is None else (c * s.lo, c * s.hi)
        lo, hi = lo + min(a, z), hi + max(a, z)
    return lo, hi
