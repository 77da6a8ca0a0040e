"""fold_batchnorm: merge each BatchNorm into the Dense/Conv2D that feeds it, or make it a
`ScaleShift` where there is none.

Contract: runs on float weights, before `quantize_weights`.  A BatchNorm right after a
Dense/Conv2D (its only consumer) is folded: ``W' = W * s``, ``b' = b * s + t`` with
``s = gamma / sqrt(var + eps)``, ``t = beta - mean * s``.  A layer whose weights carry a
quantiser is re-quantised after folding by the same quantiser, which differs from a
framework that applies BatchNorm in float after the quantised layer: the compiler warns
about that case (and drops the frontend's record of what the framework computes exactly,
`error_bound.FRAMEWORK_EXACT`, which no longer describes the layer).  Any other BatchNorm (on the input, after an activation, a pooling, a
reshape) becomes a `ScaleShift` with the float ``s`` and ``t``, quantised later like
weights; it keeps the BatchNorm's name, source layer and output type choice.  In a model
with quantised weights this too is warned about: the framework applies it in float.
"""

from __future__ import annotations

import warnings

import numpy as np

from nnfpga.compiler.passes.error_bound import FRAMEWORK_EXACT
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import BatchNorm, Conv2D, Dense, ScaleShift


def fold_batchnorm(graph: Graph) -> Graph:
    quantised = any(getattr(n, "kernel_quantizer", None) is not None for n in graph.nodes)
    kept = []
    for node in graph.nodes:
        if not isinstance(node, BatchNorm):
            kept.append(node)
            continue
        prev = kept[-1] if kept else None
        scale, shift = node.scale_shift()
        if not (isinstance(prev, (Dense, Conv2D)) and node.inputs == [prev.name]
                and len(graph.consumers(prev.name)) == 1 and prev.kernel is not None):
            if quantised:
                warnings.warn(f"BatchNorm {node.name!r} of a quantised model does not follow a Dense/Conv2D: it "
                              "becomes a scale and shift with quantised constants (the config's weight/bias for "
                              "it, else the default weight precision), so results differ from the framework's "
                              "float BatchNorm (within the error bound), not bit-exact", stacklevel=2)
            kept.append(ScaleShift(node.name, list(node.inputs), out_type=node.out_type,
                                   source_layer=node.source_layer, auto_frac=node.auto_frac,
                                   kernel=scale, bias=shift))
            continue
        if prev.kernel_quantizer is not None:
            warnings.warn(f"BatchNorm {node.name!r} is folded into quantised layer {prev.name!r}: the folded "
                          "weights are re-quantised, so results differ from applying BatchNorm in float",
                          stacklevel=2)
            # the framework computes BN(x @ Q(W) + b), no longer what the layer holds: no
            # bound against the framework can be derived from the graph
            graph.annotations.pop(FRAMEWORK_EXACT, None)
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
