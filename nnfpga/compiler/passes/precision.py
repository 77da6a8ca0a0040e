"""precision: exact minimal widths for every tensor and accumulator (range analysis).

Contract: runs after the weights are integers.  Walks the nodes in order; each node's
exact output range follows from its inputs' ranges and its integer weights
(`Op.infer`).  A node whose type the compiler chooses (``auto_frac``: a layer of a float
model) gets ``auto_frac`` fractional bits and exactly enough integer bits for its range
after rounding -- so its overflow mode can never act -- with the rounding / overflow
modes the config gives for it (default RND, SAT).  Types fixed by the model, the config
or post-training quantisation are kept.  Accumulators are exact by construction and are
never narrowed: a configured ``accumulator`` that cannot hold the exact range is an
error naming the exact type; a wider one is recorded as an adjustment (the exact type is
used).  Data-independent: the result holds for every input in the input type's range.
The summary ``precision`` lists every accumulator's type and raw range.
"""

from __future__ import annotations

import numpy as np

from nnfpga.compiler.adjustments import record_adjustment, record_pass
from nnfpga.compiler.config import CompileOptions
from nnfpga.compiler.source_layers import layer_of
from nnfpga.ir.fixed import FixedType, Overflow, Rounding, type_for_range
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Conv2D, Dense
from nnfpga.ir.ops.linear import acc_type_for


def auto_type(node, exact, rounding: Rounding = Rounding.RND, overflow: Overflow = Overflow.SAT) -> FixedType:
    """The type of an ``auto_frac`` node: its fractional bits, its exact range after rounding."""
    wide = FixedType(62, 62 - node.auto_frac, True, rounding, Overflow.SAT)
    lo, hi = (int(v) for v in wide.requantize(np.array([exact.lo, exact.hi], dtype=np.int64), exact.type.frac))
    return type_for_range(lo, hi, node.auto_frac, rounding, overflow)


def assign_exact_types(graph: Graph, modes: dict | None = None) -> dict:
    """Range analysis in order; ``auto_frac`` nodes without a type get `auto_type` with
    their modes (node name -> (rounding, overflow, ...)).  Returns the infos by name."""
    modes = modes or {}
    infos = {}
    for node in graph.nodes:
        ins = [infos[i] for i in node.inputs]
        if node.auto_frac is not None and node.out_type is None:
            rnd, ovf, _ = modes.get(node.name, (Rounding.RND, Overflow.SAT, None))
            node.out_type = auto_type(node, node.infer(ins), rnd, ovf)
        node.info = node.infer(ins)
        infos[node.name] = node.info
    return infos


def infer_precision(graph: Graph, options: CompileOptions | None = None) -> Graph:
    infos = assign_exact_types(graph, options.auto_modes if options is not None else None)
    accumulators = []
    for node in graph.nodes:
        if not isinstance(node, (Dense, Conv2D)):
            continue
        x = infos[node.inputs[0]]
        lo, hi, _ = node.acc_range(x)
        frac = node.acc_frac(x.type.frac)
        exact = acc_type_for(lo, hi, frac)
        lo_min, hi_max = int(min(lo.min(initial=0), 0)), int(max(hi.max(initial=0), 0))
        accumulators.append({"layer": layer_of(node), "node": node.name, "type": exact.spec(),
                             "raw_range": [lo_min, hi_max], "frac": frac})
        if options is not None and node.name in options.accumulators:
            _check_accumulator(graph, options, node, exact, lo_min, hi_max, frac)
    record_pass(graph, "precision", {"accumulators": accumulators})
    return graph


def _check_accumulator(graph: Graph, options: CompileOptions, node, exact: FixedType,
                       lo: int, hi: int, frac: int) -> None:
    s = options.accumulators[node.name]
    req: FixedType = s.value.type
    fits = req.frac >= frac and req.contains(lo << (req.frac - frac), hi << (req.frac - frac))
    if not fits:
        why = (f"its products have {frac} fractional bits" if req.frac < frac
               else f"its exact range is [{lo * 2.0 ** -frac:g}, {hi * 2.0 ** -frac:g}]")
        raise options.config.error(s, f"{s.path}: layer {layer_of(node)!r} needs the accumulator {exact} "
                                      f"({why}); {req} cannot hold it.  Accumulators keep every bit, so "
                                      f"they never round or overflow: narrow the weights or the layer's "
                                      f"input type instead")
    if (req.width, req.integer, req.signed) != (exact.width, exact.integer, exact.signed):
        record_adjustment(graph, layer=layer_of(node), node=node.name, setting="accumulator",
                          requested=req.spec(), used=exact.spec(),
                          reason="accumulators are exact: the range analysis needs no more bits")
