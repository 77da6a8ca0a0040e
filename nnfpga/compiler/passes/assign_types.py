"""assign_types: range analysis over the whole graph, fixing every tensor's type.

Contract: walks the nodes in order; each node's exact output range follows from its
inputs' ranges and its integer weights (`Op.infer`).  A node with ``auto_frac`` (a
layer of a float model) gets that many fractional bits, round-to-nearest, and exactly
enough integer bits for its range after rounding, so saturation can never trigger.
Accumulators are never narrowed: they are exact by construction.
"""

from __future__ import annotations

import numpy as np

from nnfpga.ir.fixed import FixedType, Overflow, Rounding, type_for_range
from nnfpga.ir.graph import Graph


def assign_types(graph: Graph) -> Graph:
    infos = {}
    for node in graph.nodes:
        ins = [infos[i] for i in node.inputs]
        if node.auto_frac is not None and node.out_type is None:
            exact = node.infer(ins)
            # Bounds after rounding (RND is monotone), in a type wide enough never to clip.
            wide = FixedType(62, 62 - node.auto_frac, True, Rounding.RND, Overflow.SAT)
            lo, hi = (int(v) for v in wide.requantize(np.array([exact.lo, exact.hi], dtype=np.int64),
                                                      exact.type.frac))
            node.out_type = type_for_range(lo, hi, node.auto_frac, Rounding.RND, Overflow.SAT)
        node.info = node.infer(ins)
        infos[node.name] = node.info
    return graph
