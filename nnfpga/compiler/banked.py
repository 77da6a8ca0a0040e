"""Ensembles as one core: identically shaped networks merged into a banked graph.

`merge_banks` takes the compiled (quantised, typed) IR graphs of B networks that have the
same layers, shapes, activations and fixed-point types and differ only in their Dense
weights and biases (e.g. the NeuralRinger's 25 MLPs, one per (E_T, |eta|) bin) and returns
one graph whose Dense layers are `BankedDense`: sample ``s`` with bank index ``bank[s]``
gets exactly the result of network ``bank[s]``.  The RTL and HLS backends then build one
datapath with the weights in ROMs addressed by the bank index, instead of B copies.

Exactness: the kernels are stacked at the finest fractional bits of the members (exact
left shifts); layers whose type is the exact accumulator take the union of the members'
ranges (no member can overflow it); every other layer must have the same type in every
member.  `merge_banks` then checks its own result: on random raw inputs the banked graph
must equal every member, bit for bit, or it refuses.
"""

from __future__ import annotations

import copy

import numpy as np

from nnfpga.ir.emulator import run_raw
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import BankedDense, Dense, Op
from nnfpga.ir.quant import QuantArray, WeightKind

#: Random raw samples per member for the self-check.
CHECK_SAMPLES = 512


def _signature(node: Op) -> dict:
    """What must agree between the members for a non-weight layer (not its range)."""
    d = node.to_json()
    for key in ("name", "inputs", "info", "source_layer"):
        d.pop(key, None)
    return d


def _stack(arrays: list[QuantArray]) -> QuantArray:
    frac = max(a.frac for a in arrays)
    raw = np.stack([a.raw.astype(np.int64) << (frac - a.frac) for a in arrays])
    kinds = {a.kind for a in arrays}
    return QuantArray(raw, frac, kinds.pop() if len(kinds) == 1 else WeightKind.FIXED)


def _banked_dense(members: list[Dense], where: str) -> BankedDense:
    first = members[0]
    for m in members:
        if m.kernel_q is None:
            raise ValueError(f"{where}: layer {m.name!r} is not quantised")
        if m.kernel_q.raw.shape != first.kernel_q.raw.shape:
            raise ValueError(f"{where}: layer {m.name!r} has a kernel of shape {m.kernel_q.raw.shape}, "
                             f"the first network {first.kernel_q.raw.shape}")
        if m.out_type != first.out_type:
            raise ValueError(f"{where}: layer {m.name!r} has output type {m.out_type}, the first network "
                             f"{first.out_type}; banked layers need the same type in every network")
    if any(m.bias_q is not None for m in members):
        biases = [m.bias_q if m.bias_q is not None else QuantArray(np.zeros(m.n_out, dtype=np.int64), 0)
                  for m in members]
        bias = _stack(biases)
    else:
        bias = None
    return BankedDense(name=first.name, inputs=list(first.inputs), out_type=first.out_type,
                       source_layer=first.source_layer, auto_frac=first.auto_frac,
                       kernel_q=_stack([m.kernel_q for m in members]), bias_q=bias,
                       reuse_factor=max(int(m.reuse_factor) for m in members),
                       bank_layers=tuple(m.source_layer or m.name for m in members))


def merge_banks(graphs: list[Graph], name: str | None = None, check: bool = True) -> Graph:
    """One banked graph from the compiled graphs of identically shaped networks; bank
    ``b`` is ``graphs[b]``.  Raises ValueError naming the first difference."""
    if len(graphs) < 2:
        raise ValueError("a banked ensemble needs at least two networks")
    chains = [g.chain() for g in graphs]
    first = chains[0]
    nodes: list[Op] = []
    for k, node in enumerate(first):
        column = []
        for b, chain in enumerate(chains):
            where = f"network {b} ({graphs[b].name!r})"
            if len(chain) != len(first):
                raise ValueError(f"{where} has {len(chain)} layers, network 0 has {len(first)}")
            other = chain[k]
            if other.op_type != node.op_type:
                raise ValueError(f"{where}: layer {k} is {other.op_type} {other.name!r}, in network 0 "
                                 f"{node.op_type} {node.name!r}")
            if other.info is None or other.info.shape != node.info.shape:
                raise ValueError(f"{where}: layer {other.name!r} has shape "
                                 f"{other.info.shape if other.info else None}, network 0 {node.info.shape}")
            column.append(other)
        if isinstance(node, Dense):
            nodes.append(_banked_dense(column, "banked ensemble"))
            continue
        if node.op_type in ("Conv2D", "BankedDense"):
            raise ValueError(f"layer {node.name!r}: {node.op_type} layers cannot be banked "
                             "(banked ensembles support Dense weights)")
        ref = _signature(node)
        for b, other in enumerate(column[1:], start=1):
            if _signature(other) != ref:
                raise ValueError(f"network {b} ({graphs[b].name!r}): layer {other.name!r} differs from "
                                 f"network 0's {node.name!r} (type, activation or table); only Dense "
                                 "weights and biases may differ between banked networks")
        merged = copy.deepcopy(node)
        merged.info = None
        nodes.append(merged)
    # consecutive names: the members' layer names (the first network's) are kept
    for prev, cur in zip(nodes, nodes[1:]):
        cur.inputs = [prev.name]
    out = Graph(name or f"{graphs[0].name}_banked", nodes, [nodes[-1].name],
                copy.deepcopy(graphs[0].input_layout), copy.deepcopy(graphs[0].output_layout),
                {"banks": {"members": [g.name for g in graphs]}}, banks=len(graphs))
    out.infer()
    if check:
        _self_check(out, graphs)
    return out


def _self_check(banked: Graph, graphs: list[Graph]) -> None:
    t = banked.input.info.type
    rng = np.random.default_rng(0)
    shape = (CHECK_SAMPLES, *banked.input.info.shape)
    x = rng.integers(t.min_raw, t.max_raw + 1, size=shape, dtype=np.int64)
    x[0], x[1] = t.min_raw, t.max_raw
    for b, g in enumerate(graphs):
        got = run_raw(banked, x, np.full(len(x), b))
        want = run_raw(g, x)
        if not np.array_equal(got, want):
            raise ValueError(f"banked ensemble differs from network {b} ({g.name!r}) on "
                             f"{int(np.any(got != want, axis=tuple(range(1, got.ndim))).sum())} of "
                             f"{len(x)} random samples; the networks' layer types do not agree")
