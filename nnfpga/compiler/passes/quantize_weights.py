"""quantize_weights: turn every float weight array into integers (`QuantArray`).

Contract: a layer with a quantiser annotation (from QKeras, QONNX or the config) is
quantised exactly as that framework does; a float layer gets ``weight_frac`` fractional
bits and just enough integer bits (round to nearest).  Afterwards every Dense/Conv2D
has ``kernel_q`` (and ``bias_q`` when it has a bias), and every ScaleShift its scale
(``kernel_q``) and shift (``bias_q``), quantised the same way.
"""

from __future__ import annotations

from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Conv2D, Dense, ScaleShift
from nnfpga.ir.quant import float_weight_quantizer


def quantize_weights(graph: Graph, weight_frac: int = 10) -> Graph:
    for node in graph.nodes:
        if not isinstance(node, (Dense, Conv2D, ScaleShift)) or node.kernel_q is not None:
            continue
        kq = node.kernel_quantizer or float_weight_quantizer(node.kernel, weight_frac)
        node.kernel_q = kq.apply(node.kernel)
        if node.bias is not None:
            bq = node.bias_quantizer or float_weight_quantizer(node.bias, weight_frac)
            node.bias_q = bq.apply(node.bias)
    return graph
