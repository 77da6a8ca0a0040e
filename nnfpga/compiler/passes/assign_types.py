"""assign_types: range analysis over the whole graph, fixing every tensor's type.

Contract: walks the nodes in order; each node's exact output range follows from its
inputs' ranges and its integer weights (`Op.infer`).  A node with ``auto_frac`` (a
layer of a float model) gets that many fractional bits, round-to-nearest, and exactly
enough integer bits for its range after rounding, so saturation can never trigger.
Accumulators are never narrowed: they are exact by construction.
"""

from __future__ import annotations

from nnfpga.ir.graph import Graph


def assign_types(graph: Graph) -> Graph:
    """Range analysis with the default modes (RND, SAT) for ``auto_frac`` nodes; the
    pipeline runs the same analysis as `precision.infer_precision` (config modes,
    accumulator checks)."""
    from nnfpga.compiler.passes.precision import assign_exact_types
    assign_exact_types(graph)
    return graph
