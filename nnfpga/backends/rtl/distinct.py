"""The operations of a netlist as synthesis keeps them: operations with the same
operands and parameters are built once (synthesis merges them, as it does for the
products ``x_i * w`` that several outputs share), and logic no output depends on is
removed.  The lowering's per-layer DSP counts (``rtl.json``) and the estimator
(``report.json``) both count these, so they agree by construction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass
class DistinctOps:
    """The distinct operations of a netlist that its outputs depend on, as synthesis
    keeps them (`distinct_live_ops`), with their fan-in and fan-out by key."""

    unique: list
    canon: dict[int, int]                 # id(signal) -> key of the distinct operation driving it
    in_keys: dict[int, list[int]]         # key -> keys of its non-constant operands
    consumers: dict[int, list]            # key -> the operations reading it
    port_driven: set[int]                 # keys that drive an output port
    merged_by_layer: dict[str, int]
    notes: list[str]

    def key(self, op) -> int:
        return self.canon[id(op.out)]

    def only_regs(self, op) -> bool:
        """Is ``op`` read by registers only (and no port)?"""
        k = self.canon[id(op.out)]
        users = self.consumers.get(k, [])
        return bool(users) and k not in self.port_driven and all(type(u).__name__ == "Reg" for u in users)


def merge_key(op, key_of):
    kind = type(op).__name__
    if kind == "Reg":  # the commonest first (the kinds exclude each other)
        en = getattr(op, "en", None)
        return (kind, key_of(op.a), op.out.width, None if en is None else key_of(en),
                getattr(op, "reset", None), getattr(op, "aligned_stage", None))
    if kind == "Sum":
        return ("sum", op.out.width, tuple([(key_of(t.sig), t.shift, t.neg) for t in op.terms]))
    if kind == "InputSlice":
        return ("in", op.index)
    if kind == "MulConst":
        return ("mul", key_of(op.a), op.c, op.out.width)
    if kind == "Wrap":
        return (kind, key_of(op.a), op.out.width)
    if kind == "Shr":
        return ("shr", key_of(op.a), op.s)
    if kind == "Bit":
        return ("bit", key_of(op.a), op.k)
    if kind == "Clip":
        return ("clip", key_of(op.a), op.lo, op.hi)
    if kind == "Rom":
        return ("rom", key_of(op.a), id(op.table))
    if kind in ("Mux", "Mul", "Max"):
        return (kind, tuple(key_of(s) for s in op.operands()), op.out.width)
    return ("op", id(op))


def distinct_live_ops(nl) -> DistinctOps:
    """Operations with the same operands and parameters are built once (synthesis merges
    them), and logic no output depends on is removed."""
    canon: dict[int, int] = {}
    keys: dict[object, int] = {}
    unique: list = []
    merged_by_layer: dict[str, int] = defaultdict(int)
    notes: list[str] = []

    def key_of(s):
        return ("c", s.lo) if s.is_const else canon[id(s)]

    for op in nl.primitive_ops():
        try:
            key = merge_key(op, key_of)
        except KeyError:
            key = ("op", id(op))
        if key in keys:
            canon[id(op.out)] = keys[key]
            merged_by_layer[op.out.layer] += 1
            continue
        keys[key] = len(keys)
        canon[id(op.out)] = keys[key]
        unique.append(op)

    # dead logic (values no output depends on, e.g. a hidden unit whose outgoing weights
    # are all zero) is removed by synthesis: keep what the outputs reach
    by_key = {canon[id(op.out)]: op for op in unique}
    live: set = set()
    in_keys: dict[int, list[int]] = {}
    todo = [canon[id(s)] for s in nl.outputs if not s.is_const]
    while todo:
        k = todo.pop()
        if k in live or k not in by_key:
            continue
        live.add(k)
        ks = in_keys[k] = [canon[id(s)] for s in by_key[k].operands() if not s.is_const]
        todo.extend(ks)
    dead = [op for op in unique if canon[id(op.out)] not in live]
    if dead:
        notes.append(f"{len(dead)} operations drive nothing the outputs depend on; synthesis removes them")
        unique = [op for op in unique if canon[id(op.out)] in live]

    consumers: dict[int, list] = defaultdict(list)
    for op in unique:
        for src in in_keys[canon[id(op.out)]]:
            consumers[src].append(op)
    port_driven = {canon[id(s)] for s in nl.outputs if not s.is_const}
    return DistinctOps(unique, canon, in_keys, consumers, port_driven, merged_by_layer, notes)
