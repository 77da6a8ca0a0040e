"""The float reference: an IR graph evaluated in float64 with its float weights.

This is what the fixed-point model is measured against (post-training quantisation,
pruning figures): the network as trained, computed with real numbers.  No framework is
imported.  Inputs are not quantised; Dense / Conv2D use the float ``kernel`` / ``bias``;
BatchNorm (when not yet folded) and ScaleShift (a BatchNorm where it cannot be folded, with
its float scale and shift) are applied in float; activations are the real functions
(each function's ``float_function`` in `nnfpga.ir.ops.activation_functions`; leaky_relu
with the source model's float slope) -- an activation's fixed-point output type (e.g.
QKeras ``quantized_relu``) is ignored, as are lookup tables and the quantised leaky slope;
a `Quantize` (HGQ2's per-element quantiser) is the identity.

Samples and results are in the user's layout, like `nnfpga.ir.emulator.emulate`.
"""

from __future__ import annotations

import numpy as np

from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import (Activation, Add, BatchNorm, Concatenate, Conv2D, Dense, Gather, Input, MaxPool2D, Quantize,
                           Reshape, ScaleShift)
from nnfpga.ir.ops.conv2d import windows


def _conv(node: Conv2D, x: np.ndarray) -> np.ndarray:
    win = windows(x, node.kernel_size, node.strides, node.padding)   # B, OH, OW, kh, kw, C
    b, oh, ow = win.shape[:3]
    y = win.reshape(b * oh * ow, -1) @ node.kernel.reshape(-1, node.kernel.shape[-1])
    if node.bias is not None:
        y = y + node.bias
    return y.reshape(b, oh, ow, -1)


def _maxpool(node: MaxPool2D, x: np.ndarray) -> np.ndarray:
    win = windows(x, node.pool_size, node.strides, node.padding, pad_value=-np.inf)
    return win.max(axis=(3, 4))


def _input_shape(graph: Graph) -> tuple[int, ...]:
    inp = graph.input
    if inp.info is not None:
        return tuple(inp.info.shape)
    return tuple(inp.shape)


def trace_float(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's float output (IR layout, batch first) for float samples ``x``
    (user layout)."""
    x = np.asarray(x, dtype=np.float64)
    shape = _input_shape(graph)
    if graph.input_layout is not None:
        expected = tuple(graph.input_layout.shape)
    else:
        expected = shape
    if x.shape[1:] != expected:
        raise ValueError(f"input has shape {x.shape[1:]} per sample; model {graph.name!r} expects {expected}")
    if graph.input_layout is not None:
        x = graph.input_layout.to_ir(x, shape)
    values: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        if isinstance(node, Input):
            values[node.name] = x
            continue
        v = values[node.inputs[0]]
        if isinstance(node, Add):
            values[node.name] = sum(s * values[i] for s, i in zip(node.sign_list(), node.inputs))
        elif isinstance(node, Concatenate):
            values[node.name] = np.concatenate([values[i] for i in node.inputs],
                                               axis=1 + node.sample_axis(len(v.shape) - 1))
        elif isinstance(node, Dense):
            y = v.reshape(len(v), -1) @ node.kernel
            values[node.name] = y + node.bias if node.bias is not None else y
        elif isinstance(node, Conv2D):
            values[node.name] = _conv(node, v)
        elif isinstance(node, BatchNorm):
            scale, shift = node.scale_shift()
            values[node.name] = v * scale + shift
        elif isinstance(node, ScaleShift):   # a BatchNorm that could not be folded: its float s, t
            values[node.name] = v * node.kernel + (node.bias if node.bias is not None else 0.0)
        elif isinstance(node, Activation):
            values[node.name] = node.float_forward(v)
        elif isinstance(node, MaxPool2D):
            values[node.name] = _maxpool(node, v)
        elif isinstance(node, Reshape):
            target = list(node.target_shape)
            values[node.name] = v.reshape((len(v), *target))
        elif isinstance(node, Gather):
            values[node.name] = node.forward(v)
        elif isinstance(node, Quantize):
            values[node.name] = v
        else:
            raise ValueError(f"no float meaning for {node.op_type} node {node.name!r}")
    return values


def float_forward(graph: Graph, x: np.ndarray) -> np.ndarray:
    """The float network's outputs (user layout) for float samples ``x``."""
    y = trace_float(graph, x)[graph.outputs[0]]
    return graph.output_layout.to_user(y) if graph.output_layout is not None else y

