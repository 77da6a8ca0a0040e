"""trim_precision: narrow layer output types to the range seen in calibration data.

Contract: runs after `infer_precision` when trimming is requested (``precision.trim`` or
``--trim``; calibration data required).  Data-dependent, and marked so in the summary.
Only types the compiler chose from range analysis are trimmed -- outputs of
`Op.trimmable` ops (Dense/Conv2D, and the activations whose entry in
`nnfpga.ir.ops.activation_functions` says so: the piecewise-linear ones) that are exact
(no type requested) or come from ``auto_frac`` -- never a type set by the model's
quantisers, the config or post-training quantisation, never the input, tables or
softmax.  For each such tensor the golden emulator runs on the calibration samples; its
integer bits are reduced to hold the observed raw range times ``precision.margin`` (the
sign is kept when the exact range has negative values), the fractional bits and rounding
are kept, and the overflow becomes **SAT**: data outside the observed range saturates
instead of wrapping.  Downstream ranges and accumulators are re-derived exactly.  On the
calibration samples the outputs are bit-identical before and after (checked).  The
summary ``trim`` lists every trimmed tensor with its old and new type and the observed
range.
"""

from __future__ import annotations

import math

import numpy as np

from nnfpga.compiler.adjustments import record_pass
from nnfpga.compiler.config import CompileOptions
from nnfpga.compiler.passes.precision import assign_exact_types
from nnfpga.compiler.source_layers import layer_of
from nnfpga.ir.emulator import quantize_input, run_raw, trace_raw
from nnfpga.ir.fixed import Overflow, type_for_range
from nnfpga.ir.graph import Graph


def _eligible(node, exact_nodes: set) -> bool:
    return node.trimmable and node.name in exact_nodes


def trim_precision(graph: Graph, options: CompileOptions, exact_nodes: set | None = None) -> Graph:
    """``exact_nodes``: names whose type is the compiler's range-analysis choice; by
    default the nodes with ``auto_frac`` or without a requested type."""
    if not options.trim:
        return graph
    if exact_nodes is None:
        exact_nodes = {n.name for n in graph.nodes if n.auto_frac is not None or n.out_type is None}
    margin = options.config.get("precision", "margin")
    x_raw = quantize_input(graph, options.calibration)
    before = run_raw(graph, x_raw)
    values = trace_raw(graph, x_raw)
    trimmed = []
    for node in graph.nodes:
        if not _eligible(node, exact_nodes):
            continue
        t = node.info.type
        v = np.asarray(values[node.name])
        lo_obs, hi_obs = (int(v.min()), int(v.max())) if v.size else (0, 0)
        mag = math.ceil(max(abs(lo_obs), abs(hi_obs)) * margin)
        hi = max(min(node.info.hi, mag), 0)
        lo = min(max(node.info.lo, -mag - 1), -1) if node.info.lo < 0 else 0   # keep the sign
        new = type_for_range(lo, hi, t.frac, t.rounding, Overflow.SAT)
        if new.width >= t.width:
            continue
        node.out_type = new
        node.auto_frac = None
        trimmed.append({"layer": layer_of(node), "node": node.name, "from": t.spec(), "to": new.spec(),
                        "observed": [lo_obs * t.lsb, hi_obs * t.lsb]})
    assign_exact_types(graph, options.auto_modes)
    after = run_raw(graph, x_raw)
    if not np.array_equal(before, after):
        raise AssertionError("trimming changed outputs on the calibration data itself")
    record_pass(graph, "trim", {"data_dependent": True, "margin": margin, "samples": int(len(x_raw)),
                                "trimmed": trimmed})
    return graph
