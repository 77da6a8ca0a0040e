"""remove_dead_units: drop neurons / filters that no longer influence the result.

Contract: runs on integer weights (after `quantize_weights`) when pruning is requested
(``pruning`` section or a layer ``sparsity``) and ``pruning.dead_units`` is not
``keep``.  Bit-exact: the golden emulator gives identical outputs for every input before
and after.  A unit ``j`` of a Dense/Conv2D layer ``L`` whose outputs reach the next
Dense/Conv2D ``M`` through element-wise activations (`ActivationFunction.elementwise`),
max pools, per-channel ScaleShifts (an unfolded BatchNorm: its channel ``j`` goes too)
and a flatten, each read by nothing else, is removed when

* every weight of ``M`` that reads it is zero (*unused*): drop ``L``'s column ``j``
  and bias ``j`` and ``M``'s rows for ``j``; or
* every weight of ``L`` that feeds it is zero (*constant*: its value is the activation
  of its bias, the same for every input) and ``M`` is a Dense or a ``valid`` Conv2D:
  its exact integer contribution ``c * W_M[j]`` is added to ``M``'s bias (at the
  accumulator's own fractional bits, so the accumulator is unchanged) and the unit is
  dropped.  The float bias of ``M`` gets the float network's contribution likewise.

Repeated until nothing changes; a layer keeps at least one unit, and the model's
inputs and outputs never change.  The summary ``dead_units`` gives per layer the units
removed, the parameters (weights and biases of both layers) and the multiplications
(non-zero weights) removed, and the totals before and after.  Units are dead by their
*integer* weights: a float weight that quantised to zero is dropped with its unit, so
the float reference changes by exactly that (counted per layer).
"""

from __future__ import annotations

import copy

import numpy as np

from nnfpga.compiler.adjustments import record_pass
from nnfpga.compiler.config import CompileOptions
from nnfpga.compiler.passes.precision import assign_exact_types
from nnfpga.compiler.source_layers import layer_of, weight_nodes
from nnfpga.ir.emulator import trace_raw
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D, Dense, MaxPool2D, Reshape, ScaleShift
from nnfpga.ir.quant import QuantArray, WeightKind


def remove_dead_units(graph: Graph, options: CompileOptions) -> Graph:
    if not options.pruning_requested or options.config.get("pruning", "dead_units") == "keep":
        return graph
    before = _counts(graph)
    removed: dict[str, dict] = {}
    while _remove_one(graph, options, removed):
        pass
    after = _counts(graph)
    record_pass(graph, "dead_units", {
        "layers": list(removed.values()),
        "parameters_before": before["parameters"], "parameters_after": after["parameters"],
        "parameters_removed": before["parameters"] - after["parameters"],
        "multiplications_before": before["multiplications"], "multiplications_after": after["multiplications"],
        "multiplications_removed": before["multiplications"] - after["multiplications"],
    })
    return graph


def _positions(node, shapes) -> int:
    return int(np.prod(shapes[node.name][:2])) if isinstance(node, Conv2D) else 1


def _counts(graph: Graph) -> dict:
    shapes = {n.name: n.info.shape for n in _typed(graph).nodes}
    params = mults = 0
    for n in weight_nodes(graph):
        params += n.kernel_q.raw.size + (n.bias_q.raw.size if n.bias_q is not None else 0)
        mults += int((n.kernel_q.raw != 0).sum()) * _positions(n, shapes)
    return {"parameters": int(params), "multiplications": int(mults)}


def _typed(graph: Graph, options: CompileOptions | None = None) -> Graph:
    g = copy.deepcopy(graph)
    assign_exact_types(g, options.auto_modes if options is not None else None)
    return g


def _path(graph: Graph, layer) -> tuple[list, object, object] | None:
    """(intermediate nodes, next weight layer, flatten node or None), or None."""
    inter, flat, cur = [], None, layer
    conv = isinstance(layer, Conv2D)
    while True:
        if cur.name in graph.outputs:
            return None
        cons = graph.consumers(cur.name)
        if len(cons) != 1:
            return None
        nxt = cons[0]
        if isinstance(nxt, Dense):
            return (inter, nxt, flat) if (not conv or flat is not None) else None
        if isinstance(nxt, Conv2D):
            return (inter, nxt, None) if conv and flat is None else None
        if isinstance(nxt, Activation) and nxt.properties.elementwise:
            inter.append(nxt)
        elif isinstance(nxt, MaxPool2D) and conv and flat is None:
            inter.append(nxt)
        elif isinstance(nxt, ScaleShift) and flat is None:   # one scale per unit (channel)
            inter.append(nxt)
        elif isinstance(nxt, Reshape) and len(nxt.target_shape) == 1 and flat is None:
            flat = nxt
            inter.append(nxt)
        else:
            return None
        cur = nxt


def _rows(nxt, unit: int, n_units: int, positions_at_flat: int):
    """Index into ``nxt``'s kernel selecting the weights that read ``unit``."""
    if isinstance(nxt, Conv2D):
        return (slice(None), slice(None), unit)
    return (np.arange(positions_at_flat) * n_units + unit,)


def _remove_one(graph: Graph, options: CompileOptions, removed: dict) -> bool:
    typed = None
    for layer in weight_nodes(graph):
        path = _path(graph, layer)
        if path is None:
            continue
        inter, nxt, flat = path
        typed = typed or _typed(graph, options)
        n_units = layer.kernel_q.raw.shape[-1]
        if n_units <= 1:
            continue
        feed = inter[-1] if inter else layer
        p_flat = 1
        if flat is not None:
            before_flat = typed.node(flat.inputs[0]).info.shape
            p_flat = int(np.prod(before_flat[:-1]))
        kq = layer.kernel_q.raw.reshape(-1, n_units)
        wq = nxt.kernel_q.raw
        unused = [j for j in range(n_units) if not wq[_rows(nxt, j, n_units, p_flat)].any()]
        foldable = isinstance(nxt, Dense) or nxt.padding == "valid"
        const = [j for j in range(n_units) if foldable and j not in unused and not kq[:, j].any()]
        dead = unused + const
        if not dead:
            continue
        if len(dead) == n_units:          # keep one unit so the layer stays a layer
            dead = dead[1:]
            const = [j for j in const if j in dead]
        if const:
            _fold_constants(typed, layer, inter, nxt, feed, const, n_units, p_flat)
        _drop(graph, layer, inter, nxt, flat, sorted(dead), n_units, p_flat, typed, removed)
        return True
    return False


def _fold_constants(typed: Graph, layer, inter, nxt, feed, const, n_units, p_flat) -> None:
    """Add the constant units' exact contributions to ``nxt``'s bias (integers and floats)."""
    inp = typed.input
    zeros = np.zeros((1, *inp.info.shape), dtype=np.float64)
    values = trace_raw(typed, zeros)
    c_raw = np.asarray(values[feed.name], dtype=np.int64).reshape(-1, n_units)[0]   # position 0
    f_in = typed.node(feed.name).info.type.frac
    kq = nxt.kernel_q
    fw = kq.frac
    old_b = nxt.bias_q
    fb = max(old_b.frac, f_in + fw) if old_b is not None else f_in + fw
    n_out = kq.raw.shape[-1]
    braw = [int(v) << (fb - old_b.frac) for v in old_b.raw.reshape(-1)] if old_b is not None else [0] * n_out
    fbias = nxt.bias.copy() if nxt.bias is not None else np.zeros(n_out)
    for j in const:
        idx = _rows(nxt, j, n_units, p_flat)
        w_int = kq.raw[idx].reshape(-1, n_out).sum(axis=0)
        for k in range(n_out):
            braw[k] += int(c_raw[j]) * int(w_int[k]) << (fb - f_in - fw)
        c_float = float(layer.bias[j]) if layer.bias is not None else 0.0
        for n in inter:
            if isinstance(n, Activation):
                c_float = float(n.float_forward(np.array([c_float]))[0])
            elif isinstance(n, ScaleShift):
                c_float = c_float * float(n.kernel[j]) + (float(n.bias[j]) if n.bias is not None else 0.0)
        fbias = fbias + c_float * nxt.kernel[idx].reshape(-1, n_out).sum(axis=0)
    nxt.bias_q = QuantArray(np.array(braw, dtype=np.int64), fb, WeightKind.FIXED)
    nxt.bias = fbias


def _drop(graph, layer, inter, nxt, flat, dead, n_units, p_flat, typed, removed) -> None:
    keep = np.array([j for j in range(n_units) if j not in dead])
    shapes = {n.name: n.info.shape for n in typed.nodes}
    pos_l, pos_n = _positions(layer, shapes), _positions(nxt, shapes)
    kq = layer.kernel_q.raw
    w_next = nxt.kernel_q.raw
    mults_l = int((kq[..., dead] != 0).sum()) * pos_l
    if isinstance(nxt, Conv2D):
        sel_next = w_next[:, :, dead, :]
    else:
        idx = np.concatenate([_rows(nxt, j, n_units, p_flat)[0] for j in dead])
        sel_next = w_next[idx]
    mults_n = int((sel_next != 0).sum()) * pos_n
    params = kq[..., dead].size + (len(dead) if layer.bias_q is not None else 0) + sel_next.size
    # float weights that quantised to zero but were not zero (the float reference loses them too)
    if isinstance(nxt, Conv2D):
        float_next = nxt.kernel[:, :, dead, :]
    else:
        float_next = nxt.kernel[np.concatenate([_rows(nxt, j, n_units, p_flat)[0] for j in dead])]
    lost = int(((layer.kernel[..., dead] != 0) & (kq[..., dead] == 0)).sum() +
               ((float_next != 0) & (sel_next == 0)).sum())
    # the layer: columns
    layer.kernel = layer.kernel[..., keep]
    layer.kernel_q = QuantArray(kq[..., keep], layer.kernel_q.frac, layer.kernel_q.kind)
    if layer.bias is not None:
        layer.bias = layer.bias[keep]
    if layer.bias_q is not None:
        layer.bias_q = QuantArray(layer.bias_q.raw[keep], layer.bias_q.frac, layer.bias_q.kind)
    # the ScaleShifts in between: their channels
    for n in inter:
        if isinstance(n, ScaleShift):
            n.kernel = n.kernel[keep]
            n.kernel_q = QuantArray(n.kernel_q.raw[keep], n.kernel_q.frac, n.kernel_q.kind)
            if n.bias is not None:
                n.bias = n.bias[keep]
            if n.bias_q is not None:
                n.bias_q = QuantArray(n.bias_q.raw[keep], n.bias_q.frac, n.bias_q.kind)
    # the next layer: rows
    if isinstance(nxt, Conv2D):
        nxt.kernel = nxt.kernel[:, :, keep, :]
        nxt.kernel_q = QuantArray(w_next[:, :, keep, :], nxt.kernel_q.frac, nxt.kernel_q.kind)
    else:
        rows_keep = np.sort(np.concatenate([_rows(nxt, j, n_units, p_flat)[0] for j in keep]))
        nxt.kernel = nxt.kernel[rows_keep]
        nxt.kernel_q = QuantArray(w_next[rows_keep], nxt.kernel_q.frac, nxt.kernel_q.kind)
    if flat is not None:
        flat.target_shape = (-1,)
    entry = removed.setdefault(layer.name, {"layer": layer_of(layer), "node": layer.name, "units_removed": 0,
                                            "parameters_removed": 0, "multiplications_removed": 0,
                                            "float_weights_quantised_to_zero_dropped": 0})
    entry["float_weights_quantised_to_zero_dropped"] += lost
    entry["units_removed"] += len(dead)
    entry["parameters_removed"] += int(params)
    entry["multiplications_removed"] += int(mults_l + mults_n)
    entry["units_left"] = int(len(keep))
