"""fold_batchnorm: merge each BatchNorm into the Dense/Conv2D that feeds it.

Contract: runs on float weights, before `quantize_weights`.  ``W' = W * s``,
``b' = b * s + t`` with ``s = gamma / sqrt(var + eps)``, ``t = beta - mean * s``.  A
layer whose weights carry a quantiser is re-quantised after folding by the same
quantiser, which differs from a framework that applies BatchNorm in float after the
quantised layer: the compiler warns about that case.
"""

from __future__ import annotations

import warnings

import numpy as np

from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import BatchNorm, Conv2D, Dense


def fold_batchnorm(graph: Graph) -> Graph:
    kept = []
    for node in graph.nodes:
        if not isinstance(node, BatchNorm):
            kept.append(node)
            continue
        prev = kept[-1] if kept else None
        if not (isinstance(prev, (Dense, Conv2D)) and node.inputs == [prev.name]
                and len(graph.consumers(prev.name)) == 1 and prev.kernel is not None):
            raise ValueError(f"BatchNorm {node.name!r} does not directly follow a Dense or Conv2D layer; "
                             "only BatchNorm right after Dense/Conv2D (foldable) is supported")
        if prev.kernel_quantizer is not None:
            warnings.warn(f"BatchNorm {node.name!r} is folded into quantised layer {prev.name!r}: the folded "
                          "weights are re-quantised, so results differ from applying BatchNorm in float",
                          stacklevel=2)
        scale, shift = node.scale_shift()
        prev.kernel = prev.kernel * scale  # broadcast over the last (output) axis
        bias = prev.bias if prev.bias is not None else np.zeros_like(shift)
        prev.bias = bias * scale + shift
        prev.bias_q = None
        prev.kernel_q = None
        if prev.bias_quantizer is None and prev.kernel_quantizer is not None:
            prev.bias_quantizer = prev.kernel_quantizer
        for c in graph.consumers(node.name):
            c.inputs = [prev.name if i == node.name else i for i in c.inputs]
        graph.outputs = [prev.name if o == node.name else o for o in graph.outputs]
    graph.nodes = kept
    return graph
