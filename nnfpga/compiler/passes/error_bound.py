"""error_bound: a guaranteed bound on |golden fixed-point output - float network output|.

Contract: read-only analysis of a typed graph whose layers still hold their float
weights.  For inputs inside the box ``input_range`` (else the input type's range),
every output of the golden emulator differs from the exact float network (with the same
float weights) by at most the returned bound, element-wise.

How it is computed.  Every value is tracked per element, forward through the graph, as
*affine forms* over shared noise symbols ``eps`` in [-1, 1]: the float network's value
``z = zc + eps @ zg`` and the error ``golden - float = ec + eps @ eg``.  The symbols are
the position of each input in its box and one fresh symbol per element for each rounding
or relaxation; an error that has one cause (the same weights' quantisation seen through
the same input) keeps its sign across neurons and cancels where the weights make it
cancel, instead of being added in absolute value.  The bound is ``|ec| + sum |eg|``.

* input: its rounding (half an LSB for RND / RND_CONV, one for TRN), plus what
  saturation costs where the box leaves the type's range;
* Dense: ``golden - float = Wq^T (xq - x) + (Wq - W)^T x + (bq - b)`` with the actual
  float and quantised weights, exact on the forms; then the output conversion: its
  rounding (0 when no bit is dropped) and saturation, which costs only where the float
  value itself leaves the type's range (it projects towards it); WRAP counts only where
  the IR's range analysis does not rule overflow out (an infinite bound: None in
  ``report.json``);
* activations, by the ``error_rule`` of the function's entry in
  `nnfpga.ir.ops.activation_functions` (the entries say which function has which rule;
  the names below are examples), on the interval ``[lo - e, hi + e]`` the fixed-point
  input can take (float interval widened by the error bound):

  - the error becomes ``s * e_in`` with ``s`` a mean slope of the function there, in
    ``[m, M]``: ``M`` the entry's ``local_lipschitz`` (e.g. 0 for relu on a negative
    interval, ``tanh'`` at the point nearest 0 for tanh), capped by its ``lipschitz``,
    ``m`` the smaller slope at the ends; the form keeps ``(M + m)/2 * e_in`` and a fresh
    symbol takes ``(M - m)/2 * |e_in|``;
  - exact then conversion (piecewise-linear, e.g. relu, leaky_relu, hard_tanh): plus
    the entry's ``parameter_error`` (leaky_relu: ``|alpha - alpha_q| * max(0, -x)``)
    and the conversion's rounding and saturation; where the function is 0 on the whole
    interval (relu of a negative input) the error is exactly 0;
  - table (e.g. tanh, sigmoid): the index conversion's rounding goes in with the slope,
    plus the entry rounding, plus what clipping the index range can cost; where the
    function's largest step over any move within the input error (`_largest_step`) is
    below the part the form cannot carry, one fresh symbol takes that step instead (on
    the last node: wherever it is below the whole);
  - step (sign): exact (then the conversion) where the input error is 0 or the input
    stays on one side of the step for every value within it; anywhere else no bound, the
    result is None (a step turns any input error into the whole step);
  - none (e.g. softmax): no bound, the result is None;

  the float value's form is ``lam z + g``: for piecewise-linear functions ``lam`` is
  the chord's slope and g's range comes from the ends and the entry's ``breakpoints``;
  otherwise ``lam`` is the smaller end slope (the entries' slopes never grow away from
  zero, so ``g`` is monotone); a function without an entry is an error
  (`UnknownActivationError`), never assumed 1-Lipschitz;
* Conv2D, MaxPool2D: element-wise intervals and error bounds (forms over whole images
  would be too large): ``|Wq|`` times the window's input errors plus the weight
  quantisation's largest value over the window's box (``|(Wq-W)^T c| + |Wq-W|^T r``),
  then the conversion; MaxPool takes the window's largest error; a Dense layer after
  them starts forms again with one symbol per input element;
* Reshape: carried through; Gather: each output element is its input element's.
* ScaleShift (a BatchNorm that is not folded): ``s_q e + (s_q - s) x + (t_q - t)`` per
  element, exact on affine forms (`_scale_shift`), then the conversion.

Where a ReLU or tanh input interval straddles the kink (the slope may be 0 or 1 for the
same input) the bound takes the worst case on either side, so it can stay an order of
magnitude above errors seen on random inputs in deep networks with wide input ranges.

The bound is returned in the order of the emulator's outputs (the user's layout when
the graph has an ``output_layout``); `accuracy_summary` is what ``report.json`` holds
(over the input type's range).  A framework computing in float32 adds its own rounding
on top (about 1e-6 relative), which callers account for separately.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np

from nnfpga.ir.fixed import FixedType, Overflow, Rounding
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import (Activation, Add, Concatenate, Conv2D, Dense, Gather, Input, MaxPool2D, Quantize, Reshape,
                           ScaleShift)
from nnfpga.ir.ops.activation_functions import ErrorRule
from nnfpga.ir.ops.conv2d import windows


def rounding_error(t: FixedType) -> float:
    return t.lsb if t.rounding is Rounding.TRN else t.lsb / 2


def _conversion_error(src_frac: int, dst: FixedType) -> float:
    return 0.0 if dst.frac >= src_frac else rounding_error(dst)


@dataclass
class _State:
    """One node's output, element by element (IR layout, flattened): the float network's
    interval ``[lo, hi]`` and the bound ``e`` on |golden - float|."""

    shape: tuple[int, ...]
    lo: np.ndarray
    hi: np.ndarray
    e: np.ndarray


def _converted(lo: np.ndarray, hi: np.ndarray, e: np.ndarray, rounding: float, t: FixedType,
               info=None) -> np.ndarray:
    """The error after converting a value within ``e`` of a float value in ``[lo, hi]``
    to type ``t`` (``rounding``: 0 when no bit is dropped).  Saturation projects onto the
    type's range, which moves the value towards a float value inside it: it costs only
    where the float value itself is outside.  Wrapping can cost anything, unless the IR's
    range analysis (``info``, the node's output) proves that it never happens."""
    over = np.maximum(np.maximum(hi - t.max_value, t.min_value - lo), 0.0)
    if t.overflow is not Overflow.SAT:
        if info is not None and (info.lo, info.hi) != (t.min_raw, t.max_raw):
            return e + rounding   # the range analysis fits the range in the type
        may_wrap = (hi + e + rounding > t.max_value) | (lo - e - rounding < t.min_value)
        return np.where(may_wrap, np.inf, e + rounding)
    return e + rounding + over


def error_bound(graph: Graph, input_range: tuple[float, float] | None = None,
                exact_input: bool = False, shared_quantisers: frozenset[str] = frozenset()) -> np.ndarray | None:
    """Per-output-element bound (flattened), or None when an op has no bound.

    ``input_range`` (min, max of the real inputs) is the box the inputs lie in; without
    it the whole input type's range is assumed.  ``exact_input``: the inputs are already
    on the input type's grid and inside its range (no input rounding or saturation).
    ``shared_quantisers``: activations that the reference network applies too, the same
    function into the same output type (a framework's own quantisers, `framework_bound`):
    there the reference is rounded as well (`_shared_quantiser`).
    """
    # a node's output: affine forms (after Dense layers) or element-wise intervals (the
    # input, and after Conv2D / MaxPool2D, whose forms would be as large as the image)
    states: dict[str, _Zono | _State] = {}
    # every symbol has one row index in the whole graph: a form read by another branch is
    # padded to the symbols made so far, so fresh symbols never reuse a row of another branch
    n_symbols = 0
    for node in graph.nodes:
        if isinstance(node, Input):
            states[node.name] = _input_state(node, input_range)
            if exact_input:
                states[node.name].e[:] = 0.0
            continue
        if isinstance(node, (Add, Concatenate)):
            s = _merged(node, [_padded(states[i], n_symbols) for i in node.inputs], graph)
            if not _finite(s):
                return np.full(int(np.prod(graph.output.info.shape)), np.inf)
            states[node.name] = s
            continue
        src_node = graph.node(node.inputs[0])
        src = _padded(states[src_node.name], n_symbols)
        if isinstance(node, (Dense, Conv2D)) and (node.kernel is None or node.kernel_q is None):
            return None   # no float weights to compare with
        if isinstance(node, Dense):
            s = _zono_dense(node, src_node, src)
        elif isinstance(node, Activation) and node.name in shared_quantisers:
            s = _shared_quantiser(node, src_node, src.box() if isinstance(src, _Zono) else src)
        elif isinstance(node, Activation):
            if isinstance(src, _Zono):
                s = _zono_activation(node, src_node, src, last=node.name == graph.outputs[0])
            else:
                s = _activation(node, src_node, src)
            if s is None:
                return None
        elif isinstance(node, ScaleShift):
            s = _scale_shift(node, src_node, src)
            if s is None:
                return None
        elif isinstance(node, Reshape):
            s = dataclasses.replace(src, shape=tuple(node.info.shape))
        elif isinstance(node, Gather):
            s = _gathered(node, src)
        elif isinstance(node, (Conv2D, MaxPool2D)):
            box = src.box() if isinstance(src, _Zono) else src
            s = _conv(node, src_node, box) if isinstance(node, Conv2D) else _maxpool(node, box)
        else:
            return None
        if not _finite(s):   # an overflow may wrap: no finite bound
            return np.full(int(np.prod(graph.output.info.shape)), np.inf)
        if isinstance(s, _Zono):
            if not isinstance(src, _Zono):   # made from intervals: its symbols are all new
                s = _shifted(s, n_symbols)
            n_symbols = s.zg.shape[0]
        states[node.name] = s
    out = states[graph.outputs[0]]
    bound = out.e_max() if isinstance(out, _Zono) else out.e
    if graph.output_layout is not None:
        bound = graph.output_layout.to_user(bound[None]).reshape(-1)
    return bound


def _padded(s, k: int):
    """A form over the first ``k`` symbols (zero rows for those it does not depend on)."""
    if not isinstance(s, _Zono) or s.zg.shape[0] == k:
        return s
    extra = np.zeros((k - s.zg.shape[0], len(s.zc)))
    return _Zono(s.shape, s.zc, np.vstack([s.zg, extra]), s.ec, np.vstack([s.eg, extra]))


def _shifted(s: _Zono, k: int) -> _Zono:
    """``s`` with its symbols numbered from ``k`` (all of them new)."""
    zeros = np.zeros((k, len(s.zc)))
    return _Zono(s.shape, s.zc, np.vstack([zeros, s.zg]), s.ec, np.vstack([zeros, s.eg]))


def _merged(node, srcs: list, graph: Graph):
    """Add (signed sum) and Concatenate: exact on affine forms when every operand is one
    (over the same symbols), else on intervals; an Add given an output type converts."""
    shape = tuple(node.info.shape)
    if isinstance(node, Concatenate):
        axis = node.sample_axis(len(srcs[0].shape))

        def cat(arrays: list[np.ndarray], rows: int | None = None) -> np.ndarray:
            if rows is None:
                return np.concatenate([a.reshape(s.shape) for a, s in zip(arrays, srcs)], axis=axis).reshape(-1)
            return np.concatenate([a.reshape(rows, *s.shape) for a, s in zip(arrays, srcs)],
                                  axis=axis + 1).reshape(rows, -1)
        if all(isinstance(s, _Zono) for s in srcs):
            k = srcs[0].zg.shape[0]
            return _Zono(shape, cat([s.zc for s in srcs]), cat([s.zg for s in srcs], k),
                         cat([s.ec for s in srcs]), cat([s.eg for s in srcs], k))
        boxes = [s.box() if isinstance(s, _Zono) else s for s in srcs]
        return _State(shape, cat([b.lo for b in boxes]), cat([b.hi for b in boxes]), cat([b.e for b in boxes]))
    signs = node.sign_list()
    rnd = _conversion_error(node.acc_frac([graph.node(i).info for i in node.inputs]), node.info.type)
    if all(isinstance(s, _Zono) for s in srcs):
        z = _Zono(shape, sum(g * s.zc for g, s in zip(signs, srcs)), sum(g * s.zg for g, s in zip(signs, srcs)),
                  sum(g * s.ec for g, s in zip(signs, srcs)), sum(g * s.eg for g, s in zip(signs, srcs)))
        return _converted_form(z, rnd, node.info)
    boxes = [s.box() if isinstance(s, _Zono) else s for s in srcs]
    lo = sum(b.lo if g > 0 else -b.hi for g, b in zip(signs, boxes))
    hi = sum(b.hi if g > 0 else -b.lo for g, b in zip(signs, boxes))
    e = sum(b.e for b in boxes)
    return _State(shape, lo, hi, _converted(lo, hi, e, rnd, node.info.type, node.info))


def _finite(s) -> bool:
    if isinstance(s, _Zono):
        return bool(np.all(np.isfinite(s.ec)) and np.all(np.isfinite(s.eg)))
    return bool(np.all(np.isfinite(s.e)))


#: The graph annotation in which a frontend names what the source model defines exactly
#: (the Keras frontend's ``FRAMEWORK_EXACT``): input and activation quantisers by their
#: output type, quantised layers by their weight quantisers.
FRAMEWORK_EXACT = "framework_exact"


def framework_bound(graph: Graph) -> np.ndarray | None:
    """A bound on |golden - the source framework's own output| (QKeras: the network with
    its quantised weights and quantisers), over the input type's range; None when the
    frontend recorded no fixed-point meaning (`FRAMEWORK_EXACT`).

    The chain's longest prefix that computes exactly what the framework computes (its
    input quantiser, quantised layers with exact accumulators, its quantisers, exact
    activations of exact values, pooling and re-arrangements) has no error: a model that
    is all such a prefix has the bound 0.  The rest of the chain is bounded by
    `error_bound` from the prefix's last output (exact, inside its IR range) against the
    framework's weights (quantised where the framework quantises them); a framework
    quantiser in that rest rounds both networks' values (`_shared_quantiser`: the
    difference grows by at most one of its steps where it was not 0)."""
    marks = graph.annotations.get(FRAMEWORK_EXACT)
    if not marks:
        return None
    if not graph.is_chain():
        # a general graph: 0 where every node computes what the framework computes, else
        # no bound (the rest of a graph may start from several exact tensors)
        exact: set[str] = set()
        for n in graph.nodes:
            if all(i in exact for i in n.inputs) and (
                    isinstance(n, (Add, Concatenate)) and n.out_type is None
                    or not isinstance(n, (Add, Concatenate)) and
                    _framework_exact(n, graph.node(n.inputs[0]) if n.inputs else None, marks)):
                exact.add(n.name)
        return np.zeros(int(np.prod(graph.output.info.shape))) if graph.outputs[0] in exact else None
    nodes = graph.chain()
    n_exact = 0
    while n_exact < len(nodes) and _framework_exact(nodes[n_exact], nodes[n_exact - 1] if n_exact else None, marks):
        n_exact += 1
    if n_exact == len(nodes):
        return np.zeros(int(np.prod(graph.output.info.shape)))
    if n_exact == 0:
        return None
    # the framework's quantisers after the prefix: the same function and type in both
    # networks (else the golden rounds differently and nothing is claimed)
    shared = frozenset(n.name for n in nodes[n_exact:] if n.name in marks and "out_type" in marks[n.name])
    if any(not (isinstance(n, Activation) and n.out_type is not None and n.properties.piecewise_linear
                and n.properties.lipschitz is not None and n.out_type.to_json() == marks[n.name]["out_type"]
                and _float32_sum_exact(n, graph.in_infos(n)[0]))
           for n in nodes[n_exact:] if n.name in shared):
        return None
    last = nodes[n_exact - 1]
    start = Input(f"{last.name}_exact", [], out_type=last.info.type, shape=tuple(last.info.shape))
    start.info = last.info
    rest = [copy.deepcopy(n) for n in nodes[n_exact:]]
    rest[0].inputs = [start.name]
    for n in rest:
        if _same_weight_quantisers(n, marks):   # the framework computes with the quantised weights
            n.kernel = n.kernel_q.value.reshape(np.shape(n.kernel))
            if n.bias is not None and not marks[n.name]["float_bias"]:
                n.bias = n.bias_q.value.reshape(np.shape(n.bias))
    sub = Graph(graph.name, [start, *rest], list(graph.outputs), output_layout=graph.output_layout)
    t = last.info.type
    return error_bound(sub, (last.info.lo * t.lsb, last.info.hi * t.lsb), exact_input=True, shared_quantisers=shared)


def _same_weight_quantisers(node, marks: dict) -> bool:
    mark = marks.get(node.name, {})
    if "kernel_quantizer" not in mark or getattr(node, "kernel_quantizer", None) is None:
        return False
    bq = node.bias_quantizer.to_json() if node.bias_quantizer is not None else None
    return node.kernel_quantizer.to_json() == mark["kernel_quantizer"] and bq == mark["bias_quantizer"]


def _framework_exact(node, prev, marks: dict) -> bool:
    """Does ``node`` compute what the framework computes, given that its input does?"""
    mark = marks.get(node.name, {})
    if isinstance(node, Input):
        return "out_type" in mark and node.out_type is not None and node.out_type.to_json() == mark["out_type"]
    if isinstance(node, (MaxPool2D, Reshape, Gather)):
        return True
    if isinstance(node, Quantize):   # the framework's own per-element quantiser (HGQ2), applied exactly
        return "quantize" in mark
    if isinstance(node, (Dense, Conv2D)):
        # the framework's quantised weights and bias, and the exact accumulator
        return (_same_weight_quantisers(node, marks) and not (node.bias is not None and mark["float_bias"])
                and node.out_type is None and node.info.type.frac >= node.acc_frac(prev.info.type.frac))
    if isinstance(node, Activation):
        if "out_type" in mark:   # the framework's quantiser, applied to the exact value
            return (node.out_type is not None and node.out_type.to_json() == mark["out_type"]
                    and _float32_sum_exact(node, prev.info))
        return (node.properties.piecewise_linear and node.out_type is None and
                node.info.type.frac >= node.pre_frac(prev.info.type.frac))
    return False


def _float32_sum_exact(node: Activation, x) -> bool:
    """QKeras returns a quantiser's value as ``x_u + (xq - x_u)`` in float32 (its
    straight-through form), which is ``xq`` only while ``x_u`` is not too large against
    ``xq``: for quantized_relu(negative_slope) (``x_u = slope * x``, ``xq`` down to
    ``-slope * 2**integer``) while ``|x| < 2**(24 + integer)``, for binary (``xq = +-1``)
    while ``|x| < 2**24`` (``x`` the input range ``x``, an IR `TensorInfo`)."""
    biggest = max(abs(int(x.lo)), abs(int(x.hi))) * x.type.lsb
    if node.function == "saturating_leaky_relu":
        return biggest < 2.0 ** 24 * -node.out_type.min_value
    if node.function == "sign":
        return biggest < 2.0 ** 24
    return True


def accuracy_summary(graph: Graph) -> dict:
    """The bound for ``report.json``: over the input type's whole range, against the float
    network (None where no bound is derived or an overflow could wrap)."""
    bound = error_bound(graph)
    finite = bound is not None and bool(np.all(np.isfinite(bound)))
    t = graph.input.info.type
    summary = {"against": "float network",
               "input_range": [t.min_value, t.max_value],
               "error_bound_max": float(bound.max()) if finite else None,
               "error_bound_per_output": [float(v) for v in bound] if finite else None,
               "method": "affine forms over the input box and per-element roundings "
                         "(nnfpga.compiler.passes.error_bound)"}
    if not finite:   # say why rather than leave a bare None
        steps = [n.name for n in graph.nodes if isinstance(n, Activation) and n.properties.error_rule is ErrorRule.STEP]
        others = [n.name for n in graph.nodes if isinstance(n, Activation) and n.properties.error_rule is ErrorRule.NONE]
        why = []
        if steps:
            why.append(f"a step ({', '.join(steps)}) whose input may differ from the float network's: any input "
                       "error can flip it by the whole step")
        if others:
            why.append(f"a function without an error rule ({', '.join(others)})")
        summary["no_bound"] = "no guaranteed bound: " + ("; ".join(why) if why else "an overflow could wrap")
    if any(getattr(n, "kernel_quantizer", None) is not None for n in graph.nodes):
        summary["note"] = ("the model (QKeras, QONNX or the config) quantises its own weights: the bound "
                           "includes that quantisation against the float weights; the firmware's exactness "
                           "against the framework's own quantized model is what nnfpga verify and the "
                           "framework's predict compare")
    fw = framework_bound(graph) if FRAMEWORK_EXACT in graph.annotations else None
    if fw is not None and bool(np.all(np.isfinite(fw))):
        summary["error_bound_vs_framework_max"] = float(fw.max())
        summary["error_bound_vs_framework_per_output"] = [float(v) for v in fw]
        summary["note_framework"] = ("against the source framework's own fixed-point model (QKeras: its quantised "
                                     "weights and quantisers); 0 where the firmware computes exactly what it "
                                     "computes; the framework's own float32 rounding is not included")
    return summary


def _input_state(node: Input, input_range: tuple[float, float] | None) -> _State:
    t = node.info.type
    shape = tuple(node.info.shape)
    n = int(np.prod(shape))
    lo, hi = (t.min_value, t.max_value) if input_range is None else (float(input_range[0]), float(input_range[1]))
    lo_a, hi_a = np.full(n, lo), np.full(n, hi)
    e = _converted(lo_a, hi_a, np.zeros(n), rounding_error(t), t)
    return _State(shape, lo_a, hi_a, e)


def _bias_terms(node, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    if node.bias is None:
        return np.zeros(n_out), np.zeros(n_out)
    b = np.asarray(node.bias, dtype=np.float64).reshape(-1)
    return b, np.abs(b - node.bias_q.value.reshape(-1))


def _gathered(node: Gather, src):
    i = node.index
    if isinstance(src, _Zono):
        return _Zono(tuple(node.info.shape), src.zc[i], src.zg[:, i], src.ec[i], src.eg[:, i])
    return _State(tuple(node.info.shape), src.lo[i], src.hi[i], src.e[i])


def _conv(node: Conv2D, src_node, src: _State) -> _State:
    def win(v: np.ndarray) -> np.ndarray:   # (OH * OW, kh * kw * C); padding holds 0
        w_ = windows(v.reshape(1, *src.shape), node.kernel_size, node.strides, node.padding)
        return w_.reshape(-1, int(np.prod(w_.shape[3:])))
    wq = node.kernel_q.value.reshape(-1, node.kernel_q.raw.shape[-1])
    w = np.asarray(node.kernel, dtype=np.float64).reshape(wq.shape)
    dw = w - wq
    c, r, e_in = win((src.lo + src.hi) / 2), win((src.hi - src.lo) / 2), win(src.e)
    b, db = _bias_terms(node, wq.shape[1])
    mid, rad = (c @ w + b).reshape(-1), (r @ np.abs(w)).reshape(-1)
    e_acc = (e_in @ np.abs(wq) + np.abs(c @ dw) + r @ np.abs(dw) + db).reshape(-1)
    rnd = _conversion_error(node.acc_frac(src_node.info.type.frac), node.info.type)
    e = _converted(mid - rad, mid + rad, e_acc, rnd, node.info.type, node.info)
    return _State(tuple(node.info.shape), mid - rad, mid + rad, e)


def _scale_shift(node: ScaleShift, src_node, src: _Zono | _State) -> _Zono | _State | None:
    """Element-wise ``golden - float = s_q (xq - x) + (s_q - s) x + (t_q - t)``, then the
    conversion's rounding and saturation: exact on affine forms; on intervals
    ``|s_q| e_in + |s - s_q| max|x| + |t - t_q|``."""
    if node.kernel is None or node.kernel_q is None:
        return None   # no float scale to compare with
    ch = np.arange(len(src.zc if isinstance(src, _Zono) else src.lo)) % node.n_channels   # channels: last axis
    s = np.asarray(node.kernel, dtype=np.float64).reshape(-1)[ch]
    sq = node.kernel_q.value.reshape(-1)[ch]
    t = np.asarray(node.bias, dtype=np.float64).reshape(-1)[ch] if node.bias is not None else np.zeros(len(ch))
    tq = node.bias_q.value.reshape(-1)[ch] if node.bias_q is not None else np.zeros(len(ch))
    t_out = node.info.type
    rnd = _conversion_error(node.acc_frac(src_node.info.type.frac), t_out)
    if isinstance(src, _Zono):
        z = _Zono(tuple(node.info.shape), src.zc * s + t, src.zg * s,
                  src.ec * sq + src.zc * (sq - s) + (tq - t), src.eg * sq + src.zg * (sq - s))
        return _converted_form(z, rnd, node.info)
    a, b = s * src.lo + t, s * src.hi + t
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    e = np.abs(sq) * src.e + np.abs(s - sq) * np.maximum(np.abs(src.lo), np.abs(src.hi)) + np.abs(t - tq)
    return _State(tuple(node.info.shape), lo, hi, _converted(lo, hi, e, rnd, t_out, node.info))


def _maxpool(node: MaxPool2D, src: _State) -> _State:
    """|max xq - max x| <= the largest input error of the window."""
    def pooled(v: np.ndarray, pad: float) -> np.ndarray:
        w_ = windows(v.reshape(1, *src.shape), node.pool_size, node.strides, node.padding, pad_value=pad)
        return w_.max(axis=(3, 4)).reshape(-1)
    return _State(tuple(node.info.shape), pooled(src.lo, -np.inf), pooled(src.hi, -np.inf), pooled(src.e, 0.0))


def _activation(node: Activation, src_node, src: _State) -> _State | None:
    """The output error of an activation by its function's rule (None: no bound)."""
    fn = node.properties   # an unknown function is an error here, never 1-Lipschitz
    if fn.error_rule is ErrorRule.NONE:
        return None
    shape = tuple(node.info.shape)
    lo, hi, e_in = src.lo, src.hi, src.e
    out_lo, out_hi = _float_image(node, lo, hi)
    if fn.error_rule is ErrorRule.TABLE:
        idx = node.table.index_type
        r_idx = _conversion_error(src_node.info.type.frac, idx)
        d = e_in + r_idx   # the index is within d of the float input (inside the index range)
        moved = np.minimum(_slope(fn, lo - d, hi + d) * d, _largest_step(node, lo, hi, d))
        e = moved + rounding_error(node.table.out_type)
        # inputs beyond the index range are clipped to its ends
        f = lambda v: node.float_forward(np.asarray(v, dtype=np.float64))   # noqa: E731
        clip = np.zeros_like(e)
        above, below = hi + d > idx.max_value, lo - d < idx.min_value
        clip = np.where(above, np.abs(f(np.maximum(hi + d, idx.max_value)) - f(idx.max_value)), clip)
        clip = np.where(below, np.maximum(clip, np.abs(f(np.minimum(lo - d, idx.min_value)) - f(idx.min_value))), clip)
        return _State(shape, out_lo, out_hi, e + clip)
    if fn.error_rule is ErrorRule.STEP:
        # the golden input lies within e_in of the float one: the same side of the step
        # (the same output) where e_in is 0 or the widened interval misses the step at 0;
        # elsewhere the outputs can differ by the whole step, and nothing is claimed
        same = (e_in == 0) | (lo - e_in >= 0) | (hi + e_in < 0)
        if not np.all(same):
            return None
        rnd = _conversion_error(node.pre_frac(src_node.info.type.frac), node.info.type)
        return _State(shape, out_lo, out_hi, _converted(out_lo, out_hi, np.zeros_like(e_in), rnd, node.info.type,
                                                        node.info))
    if fn.error_rule is ErrorRule.EXACT_THEN_CONVERSION:
        e = _slope(fn, lo - e_in, hi + e_in) * e_in
        if fn.parameter_error is not None:
            e = e + fn.parameter_error(node, lo, e_in)
        rnd = _conversion_error(node.pre_frac(src_node.info.type.frac), node.info.type)
        e = _converted(out_lo, out_hi, e, rnd, node.info.type, node.info)
        # a function that is 0 wherever the input can be (relu of a negative input):
        # exactly 0 in both networks
        zero = _is_zero_on(node, lo - e_in, hi + e_in)
        return _State(shape, out_lo, out_hi, np.where(zero, 0.0, e))
    raise ValueError(f"error_bound: no rule {fn.error_rule} for activation {node.function!r} of {node.name!r}")


def _shared_quantiser(node: Activation, src_node, src: _State) -> _State:
    """An activation the reference applies too (the same exact function ``f``, then the
    conversion ``c`` to the same type): golden ``c(f(a))``, reference ``c(f(b))`` with
    ``|a - b| <= e``.  ``c`` rounds to a grid (each result within half a step of its
    argument, monotone) and saturates (which only brings values closer), so the outputs
    differ by at most ``L e + lsb`` -- and not at all where ``e`` is 0.  The reference's
    value lies within half a step of ``f``'s image, inside the type's range."""
    fn = node.properties
    if not fn.piecewise_linear or fn.lipschitz is None:
        raise ValueError(f"error_bound: {node.function!r} of {node.name!r} cannot be a shared quantiser")
    t = node.info.type
    lo, hi, e_in = src.lo, src.hi, src.e
    f_lo, f_hi = _float_image(node, lo, hi)
    e = np.where(e_in > 0, _slope(fn, lo - e_in, hi + e_in) * e_in + t.lsb, 0.0)
    out_lo = np.clip(f_lo - t.lsb / 2, t.min_value, t.max_value)
    out_hi = np.clip(f_hi + t.lsb / 2, t.min_value, t.max_value)
    return _State(tuple(node.info.shape), out_lo, out_hi, e)


def _slope(fn, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A Lipschitz constant of the function on each ``[lo, hi]``: the entry's local one
    where it has it, else its global one."""
    if fn.local_lipschitz is not None:
        return np.minimum(fn.local_lipschitz(lo, hi), fn.lipschitz)
    return np.full(lo.shape, fn.lipschitz)


#: grid points of the search for the largest step (its slack is one grid step times the
#: largest slope)
_STEP_GRID = 256


def _largest_step(node: Activation, lo: np.ndarray, hi: np.ndarray, d: np.ndarray) -> np.ndarray:
    """A bound on ``|f(x + e) - f(x)|`` for ``x`` in ``[lo, hi]`` and ``|e| <= d``, for a
    non-decreasing function whose slope never grows away from zero (the table entries).

    The move lies in a window ``[t, t + d]`` that starts at ``x`` or ends at it: ``t`` in
    ``[lo, hi]`` or in ``[lo - d, hi - d]``.  ``phi(t) = f(t + d) - f(t)`` rises for
    ``t <= -d``, is concave on ``[-d, 0]`` (its derivative ``f'(t + d) - f'(t)`` falls
    there) and falls for ``t >= 0``: on each range of starts its largest value lies in the
    part nearest ``[-d, 0]``, searched on a grid plus the slack a grid step can hide
    (``phi`` moves by at most L times the step).  Much below ``L d`` where ``d`` is wide
    compared with the function's knee."""
    return np.maximum(_largest_window(node, lo, hi, d), _largest_window(node, lo - d, hi - d, d))


def _largest_window(node: Activation, t_lo: np.ndarray, t_hi: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The largest ``f(t + d) - f(t)`` for ``t`` in ``[t_lo, t_hi]`` (see `_largest_step`)."""
    a, b = np.clip(-d, t_lo, t_hi), np.clip(0.0, t_lo, t_hi)
    t = a + (b - a) * np.linspace(0.0, 1.0, _STEP_GRID + 1)[:, None]
    phi = node.float_forward(t + d) - node.float_forward(t)
    return phi.max(axis=0) + node.properties.lipschitz * (b - a) / _STEP_GRID


def _float_image(node: Activation, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float function's values for inputs in ``[lo, hi]``: its ends for a
    non-decreasing function, else the centre's value plus or minus L times the radius."""
    fn = node.properties
    if fn.nondecreasing:
        return node.float_forward(lo), node.float_forward(hi)
    mid = node.float_forward((lo + hi) / 2)
    return mid - fn.lipschitz * (hi - lo) / 2, mid + fn.lipschitz * (hi - lo) / 2


def _is_zero_on(node: Activation, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    fn = node.properties
    if not fn.nondecreasing or not fn.piecewise_linear:
        return np.zeros(lo.shape, dtype=bool)
    return (node.float_forward(lo) == 0) & (node.float_forward(hi) == 0) & (fn.parameter_error is None)


# ------------------------------------------------------------------ affine (zonotope) forms
@dataclass
class _Zono:
    """One node's output as affine forms over shared noise symbols ``eps`` in [-1, 1]^k:
    float value ``zc + eps @ zg``, error (golden - float) ``ec + eps @ eg`` (``zg``,
    ``eg``: k x n).  Symbols are the input's position in its box and one fresh symbol per
    element for each rounding or relaxation, so errors that stem from one cause cancel
    where the weights make them cancel."""

    shape: tuple[int, ...]
    zc: np.ndarray
    zg: np.ndarray
    ec: np.ndarray
    eg: np.ndarray

    def interval(self) -> tuple[np.ndarray, np.ndarray]:
        r = np.abs(self.zg).sum(axis=0)
        return self.zc - r, self.zc + r

    def e_max(self) -> np.ndarray:
        return np.abs(self.ec) + np.abs(self.eg).sum(axis=0)

    def box(self) -> _State:
        lo, hi = self.interval()
        return _State(self.shape, lo, hi, self.e_max())


def _fresh(n_old: int, radius: np.ndarray) -> np.ndarray:
    """Rows for new symbols, one per nonzero radius (k_new x n)."""
    nz = np.flatnonzero(radius)
    rows = np.zeros((len(nz), len(radius)))
    rows[np.arange(len(nz)), nz] = radius[nz]
    return rows


def _extend(z: _Zono, z_rad: np.ndarray | None, e_rad: np.ndarray | None) -> _Zono:
    """Append fresh symbols: ``z_rad`` to the float value, ``e_rad`` to the error."""
    n = len(z.zc)
    zr = _fresh(n, z_rad) if z_rad is not None else np.zeros((0, n))
    er = _fresh(n, e_rad) if e_rad is not None else np.zeros((0, n))
    zg = np.vstack([z.zg, zr, np.zeros((len(er), n))])
    eg = np.vstack([z.eg, np.zeros((len(zr), n)), er])
    return _Zono(z.shape, z.zc, zg, z.ec, eg)


def _converted_form(z: _Zono, rnd: float, info) -> _Zono:
    """The form ``z`` after the conversion to the node's type (``info``): its rounding and
    saturation as fresh symbols (a wrap that may happen: with ``z``'s whole error too)."""
    lo, hi = z.interval()
    conv = _converted(lo, hi, np.zeros_like(lo), rnd, info.type, info)   # rounding + saturation
    if not np.all(np.isfinite(conv)):
        conv = _converted(lo, hi, z.e_max(), rnd, info.type, info)
    return _extend(z, None, conv)


def _zono_of_box(s: _State, k: int) -> _Zono:
    n = len(s.lo)
    z = _Zono(s.shape, (s.lo + s.hi) / 2, np.zeros((k, n)), np.zeros(n), np.zeros((k, n)))
    return _extend(z, (s.hi - s.lo) / 2, s.e)


def _zono_dense(node: Dense, src_node, src: _Zono | _State) -> _Zono:
    wq = node.kernel_q.value.reshape(-1, node.kernel_q.raw.shape[-1])
    w = np.asarray(node.kernel, dtype=np.float64).reshape(wq.shape)
    dw = wq - w
    b, _ = _bias_terms(node, wq.shape[1])
    db = (node.bias_q.value.reshape(-1) - b) if node.bias is not None else np.zeros(wq.shape[1])
    # golden - float = Wq^T (xq - x) + (Wq - W)^T x + (bq - b)
    if isinstance(src, _State):   # intervals: one symbol per element for x, one for xq - x
        c, r = (src.lo + src.hi) / 2, (src.hi - src.lo) / 2
        n_out = wq.shape[1]
        zg = np.vstack([r[:, None] * w, np.zeros((len(r), n_out))])
        eg = np.vstack([r[:, None] * dw, src.e[:, None] * wq])
        z = _Zono(tuple(node.info.shape), c @ w + b, zg, c @ dw + db, eg)
    else:
        z = _Zono(tuple(node.info.shape), src.zc @ w + b, src.zg @ w,
                  src.ec @ wq + src.zc @ dw + db, src.eg @ wq + src.zg @ dw)
    rnd = _conversion_error(node.acc_frac(src_node.info.type.frac), node.info.type)
    return _converted_form(z, rnd, node.info)


def _zono_activation(node: Activation, src_node, src: _Zono, last: bool = False) -> _Zono | None:
    fn = node.properties
    if fn.error_rule is ErrorRule.NONE:
        return None
    if not fn.nondecreasing or fn.local_lipschitz is None or fn.error_rule is ErrorRule.STEP:   # interval rules only
        s = _activation(node, src_node, src.box())
        return None if s is None else _zono_of_box(s, src.zg.shape[0])
    shape = tuple(node.info.shape)
    lo, hi = src.interval()
    e = src.e_max()
    f = lambda v: node.float_forward(np.asarray(v, dtype=np.float64))   # noqa: E731
    point = lambda v: np.minimum(fn.local_lipschitz(v, v), fn.lipschitz)   # noqa: E731
    lam, g_lo, g_hi = _relaxation(node, lo, hi)
    zc = lam * src.zc + (g_lo + g_hi) / 2
    zg = src.zg * lam
    extra = np.zeros_like(e)
    if fn.error_rule is ErrorRule.TABLE:
        idx = node.table.index_type
        r_idx = _conversion_error(src_node.info.type.frac, idx)
        d = e + r_idx
        a, b_ = lo - d, hi + d
        extra = extra + r_idx   # the index rounding, carried with the slope below
        clip = np.zeros_like(e)
        above, below = hi + d > idx.max_value, lo - d < idx.min_value
        clip = np.where(above, np.abs(f(np.maximum(hi + d, idx.max_value)) - f(idx.max_value)), clip)
        clip = np.where(below, np.maximum(clip, np.abs(f(np.minimum(lo - d, idx.min_value)) - f(idx.min_value))), clip)
        after = rounding_error(node.table.out_type) + clip
        zero = np.zeros(e.shape, dtype=bool)
    else:
        a, b_ = lo - e, hi + e
        after = np.zeros_like(e)
        if fn.parameter_error is not None:
            after = after + fn.parameter_error(node, lo, e)
        rnd = _conversion_error(node.pre_frac(src_node.info.type.frac), node.info.type)
        out_lo, out_hi = f(lo), f(hi)
        after = _converted(out_lo, out_hi, after, rnd, node.info.type, node.info)
        zero = (f(a) == 0) & (f(b_) == 0) & (fn.parameter_error is None) & fn.piecewise_linear
    # golden - float = s (e_in [+ index rounding]) with s, a mean slope, in [m, M]:
    # (M + m)/2 e_in plus at most (M - m)/2 |e_in| (fresh)
    big = np.minimum(fn.local_lipschitz(a, b_), fn.lipschitz)
    small = np.minimum(np.minimum(point(a), point(b_)), big)
    c = (big + small) / 2
    fresh_e = (big - small) / 2 * e + big * extra
    if fn.error_rule is ErrorRule.TABLE:
        # the largest step of the function over any move within d: where it is below the
        # part the form cannot carry, a fresh symbol alone is tighter (and, on the last
        # node, wherever the whole is smaller)
        step = _largest_step(node, lo, hi, e + extra)
        alone = (step <= fresh_e) | (last & (step <= c * e + fresh_e))
        c = np.where(alone, 0.0, c)
        fresh_e = np.where(alone, step, fresh_e)
    fresh_e = fresh_e + after
    ec, eg = np.where(zero, 0.0, c * src.ec), src.eg * np.where(zero, 0.0, c)
    fresh_e = np.where(zero, 0.0, fresh_e)
    z = _Zono(shape, zc, zg, ec, eg)
    return _extend(z, (g_hi - g_lo) / 2, fresh_e)


def _relaxation(node: Activation, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, ...]:
    """``f(z) = lam z + g`` with ``g`` in ``[g_lo, g_hi]`` for z in ``[lo, hi]``.

    Piecewise-linear: ``lam`` is the chord's slope and g's extremes lie at the ends or
    the breakpoints.  Else ``lam`` is the smaller end slope, below the slope everywhere in
    between (the entries' slopes never grow away from zero), so g is non-decreasing."""
    fn = node.properties
    f = lambda v: node.float_forward(np.asarray(v, dtype=np.float64))   # noqa: E731
    if fn.piecewise_linear:
        width = hi - lo
        lam = np.where(width > 0, (f(hi) - f(lo)) / np.where(width > 0, width, 1.0), 0.0)
        pts = [lo, hi] + [np.clip(np.full(lo.shape, p), lo, hi) for p in fn.breakpoints]
        g = np.array([f(p) - lam * p for p in pts])
        return lam, g.min(axis=0), g.max(axis=0)
    point = lambda v: np.minimum(fn.local_lipschitz(v, v), fn.lipschitz)   # noqa: E731
    lam = np.minimum(point(lo), point(hi))
    return lam, f(lo) - lam * lo, f(hi) - lam * hi
