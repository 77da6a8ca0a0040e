"""error_bound: a guaranteed bound on |golden fixed-point output - float network output|.

Contract: read-only analysis of a typed graph whose layers still hold their float
weights.  For inputs inside the input type's range, every output of the golden
emulator differs from the exact float network (with the same float weights) by at most
the returned bound, element-wise.  Errors are propagated forward:

* input rounding: half an LSB (RND / RND_CONV) or one LSB (TRN);
* Dense / Conv2D: ``sum |Wq| e_in + sum |W - Wq| max|x| + |b - bq|``, then the
  output conversion's rounding;
* activations: by the ``error_rule`` of the function's entry in
  `nnfpga.ir.ops.activation_functions`, with its ``lipschitz`` constant L (the entries
  say which function has which rule and L; the names below are examples) --

  - exact then conversion (piecewise-linear functions, e.g. relu: L = 1): ``L e_in``, plus
    the entry's ``parameter_error`` (leaky_relu: ``|alpha - alpha_q| * max(0, -x)``, the
    float slope against the exact one, x down to the range's minimum less the input
    error), plus the conversion's rounding;
  - table (e.g. tanh: L = 1, sigmoid: L = 1/4): L times the input error and the index
    rounding, plus the entry rounding, plus what clipping the index range can cost;
  - none (e.g. softmax): no bound, the result is None;

  a function without an entry is an error (`UnknownActivationError`), never assumed
  1-Lipschitz;
* MaxPool, Reshape: errors carried through.

The bound is returned in the order of the emulator's outputs (the user's layout when
the graph has an ``output_layout``).  A framework computing in float32 adds its own
rounding on top (about 1e-6 relative), which callers account for separately.
"""

from __future__ import annotations

import numpy as np

from nnfpga.ir.fixed import FixedType, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D, Dense, Input, MaxPool2D, Reshape
from nnfpga.ir.ops.activation_functions import ActivationFunction, ErrorRule
from nnfpga.ir.tables import LookupTable


def rounding_error(t: FixedType) -> float:
    return t.lsb if t.rounding is Rounding.TRN else t.lsb / 2


def _max_abs(node) -> float:
    i = node.info
    return max(abs(i.lo), abs(i.hi)) * i.type.lsb


def _conversion_error(src_frac: int, dst: FixedType) -> float:
    return 0.0 if dst.frac >= src_frac else rounding_error(dst)


def _table_error(fn: ActivationFunction, table: LookupTable, e_in: float, in_lo: float,
                 in_hi: float) -> float:
    def f(x: float) -> float:   # the float network's function
        return fn.float_function(x, None)
    idx = table.index_type
    err = fn.lipschitz * (e_in + rounding_error(idx)) + rounding_error(table.out_type)
    # Inputs beyond the index range are clipped to its ends.
    lo_end, hi_end = idx.min_value, idx.max_value
    clip = 0.0
    if in_hi + e_in > hi_end:
        clip = max(clip, abs(f(in_hi + e_in) - f(hi_end)))
    if in_lo - e_in < lo_end:
        clip = max(clip, abs(f(in_lo - e_in) - f(lo_end)))
    return err + clip


def error_bound(graph: Graph, input_range: tuple[float, float] | None = None) -> np.ndarray | None:
    """Per-output-element bound (flattened), or None when an op has no bound.

    ``input_range`` (min, max of the real inputs) narrows the range analysis to the data
    actually fed; without it the whole input type's range is assumed.
    """
    if input_range is not None:
        graph = _narrowed(graph, *input_range)
    err: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        if isinstance(node, Input):
            err[node.name] = np.full(int(np.prod(node.info.shape)), rounding_error(node.info.type))
            continue
        src = graph.node(node.inputs[0])
        e_in = err[src.name]
        if isinstance(node, (Dense, Conv2D)):
            e = _linear_error(node, src, e_in)
        elif isinstance(node, Activation):
            e = _activation_error(node, src, e_in)
            if e is None:
                return None
        elif isinstance(node, MaxPool2D):
            e = np.full(int(np.prod(node.info.shape)), e_in.max())
        elif isinstance(node, Reshape):
            e = e_in
        else:
            return None
        err[node.name] = e
    bound = err[graph.outputs[0]]
    if graph.output_layout is not None:
        bound = graph.output_layout.to_user(bound[None]).reshape(-1)
    return bound


def _activation_error(node: Activation, src, e_in: np.ndarray) -> np.ndarray | None:
    """The output error of an activation by its function's rule (None: no bound)."""
    fn = node.properties   # an unknown function is an error here, never 1-Lipschitz
    lo, hi = src.info.lo * src.info.type.lsb, src.info.hi * src.info.type.lsb
    if fn.error_rule is ErrorRule.NONE:
        return None
    if fn.error_rule is ErrorRule.TABLE:
        return np.array([_table_error(fn, node.table, v, lo, hi) for v in e_in])
    if fn.error_rule is ErrorRule.EXACT_THEN_CONVERSION:
        e = fn.lipschitz * e_in + _conversion_error(node.pre_frac(src.info.type.frac), node.info.type)
        if fn.parameter_error is not None:
            e = e + fn.parameter_error(node, lo, e_in)
        return e
    raise ValueError(f"error_bound: no rule {fn.error_rule} for activation {node.function!r} of {node.name!r}")


def _narrowed(graph: Graph, lo: float, hi: float) -> Graph:
    """A copy of the graph whose ranges follow from inputs in ``[lo, hi]`` (types kept
    wherever the graph fixed them; only the ranges shrink)."""
    g = Graph.from_json(graph.to_json())
    t = g.input.info.type
    raw_lo, raw_hi = (int(v) for v in t.quantize(np.array([lo, hi])))
    g.input.info = g.input.info.__class__(g.input.info.shape, t, raw_lo, raw_hi)
    for node in g.nodes[1:]:
        node.info = node.infer(g.in_infos(node))
    return g


def _linear_error(node, src, e_in: np.ndarray) -> np.ndarray:
    wq = node.kernel_q.value.reshape(-1, node.kernel_q.raw.shape[-1])
    w = node.kernel.reshape(wq.shape)
    x_max = _max_abs(src) + float(e_in.max())
    if isinstance(node, Dense):
        prop = np.abs(wq).T @ e_in
    else:  # every receptive field sees at most the largest input error
        prop = np.abs(wq).sum(axis=0) * float(e_in.max())
    e = prop + np.abs(w - wq).sum(axis=0) * x_max
    if node.bias is not None:
        e = e + np.abs(node.bias - node.bias_q.value)
    e = e + _conversion_error(node.acc_frac(src.info.type.frac), node.info.type)
    if isinstance(node, Conv2D):
        e = np.tile(e, int(np.prod(node.info.shape[:2])))
    return e
