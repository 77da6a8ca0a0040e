"""prune: magnitude pruning of the float weights to a sparsity target.

Contract: runs on float weights, after `apply_config` and before quantisation (so the
quantiser sees exact zeros, and post-training quantisation sees the pruned network).
Targets come from ``pruning.sparsity`` (``scope: layer``: every Dense/Conv2D reaches
the target; ``scope: global``: one magnitude threshold over all of them together) and
``layers.<name>.sparsity`` (that layer alone, outside the global ranking).  A target
``s`` on ``n`` weights zeroes the smallest-magnitude non-zero weights until at least
``ceil(s * n)`` are zero (ties broken by position, so the result is deterministic);
weights that are already zero count.  Biases are never pruned.  Binary and power-of-two
weights cannot be zero: such layers are left out of ``pruning.sparsity`` (and named in
the summary).  Only weights change; the dead neurons this leaves are removed later by
`remove_dead_units` (bit-exact).  The summary ``pruning`` gives per layer the weights,
the zeros before and after and the target; with calibration data also the float
network's max output change caused by pruning.
"""

from __future__ import annotations

import math

import numpy as np

from nnfpga.compiler.adjustments import record_pass
from nnfpga.compiler.config import CompileOptions
from nnfpga.compiler.float_reference import float_forward
from nnfpga.compiler.source_layers import layer_of, weight_nodes
from nnfpga.ir.graph import Graph
from nnfpga.ir.quant import QuantArray, WeightKind


def _kind(node) -> WeightKind:
    if node.kernel_quantizer is not None:
        return node.kernel_quantizer.kind
    return node.kernel_q.kind if node.kernel_q is not None else WeightKind.FIXED


def _needed(target: float, n: int) -> int:
    return min(n, math.ceil(target * n - 1e-9))


def prune(graph: Graph, options: CompileOptions) -> Graph:
    if not options.pruning_requested:
        return graph
    cfg = options.config
    target = cfg.get("pruning", "sparsity")
    scope = cfg.get("pruning", "scope")
    nodes = weight_nodes(graph)
    skipped = [layer_of(n) for n in nodes if _kind(n) in (WeightKind.BINARY, WeightKind.PO2)
               and n.name not in options.sparsity]
    reference = float_forward(graph, options.calibration) if options.calibration is not None else None
    before = {n.name: int((n.kernel == 0).sum()) for n in nodes}
    targets: dict[str, float] = {n.name: s.value for n in nodes if (s := options.sparsity.get(n.name))}
    pooled = [n for n in nodes if n.name not in targets and layer_of(n) not in skipped]
    if scope == "layer":
        targets.update({n.name: target for n in pooled if target > 0})
    elif target > 0 and pooled:
        _prune_global(pooled, target)
    for n in nodes:
        if n.name in targets:
            _prune_layer(n, targets[n.name])
    layers = []
    for n in nodes:
        size = int(n.kernel.size)
        zero = int((n.kernel == 0).sum())
        layers.append({"layer": layer_of(n), "node": n.name, "weights": size, "zero_before": before[n.name],
                       "zero_after": zero, "pruned": zero - before[n.name],
                       "sparsity": round(zero / size, 6) if size else 0.0,
                       "target": targets.get(n.name, target if scope == "global" and n in pooled else None)})
    summary = {"scope": scope, "target": target, "layers": layers, "skipped_layers": skipped,
               "weights_pruned": sum(x["pruned"] for x in layers)}
    if reference is not None:
        summary["float_max_deviation"] = float(np.abs(float_forward(graph, options.calibration) - reference).max())
    record_pass(graph, "pruning", summary)
    return graph


def _zero(node, flat_idx: np.ndarray) -> None:
    k = node.kernel.copy().reshape(-1)
    k[flat_idx] = 0.0
    node.kernel = k.reshape(node.kernel.shape)
    if node.kernel_q is not None:   # an already-quantised layer: same positions, exactly
        raw = node.kernel_q.raw.copy().reshape(-1)
        raw[flat_idx] = 0
        node.kernel_q = QuantArray(raw.reshape(node.kernel_q.raw.shape), node.kernel_q.frac, node.kernel_q.kind)


def _prune_layer(node, target: float) -> None:
    mag = np.abs(node.kernel).reshape(-1)
    need = _needed(target, mag.size) - int((mag == 0).sum())
    if need <= 0:
        return
    order = np.lexsort((np.arange(mag.size), mag))          # by magnitude, then position
    nonzero = order[mag[order] != 0]
    _zero(node, nonzero[:need])


def _prune_global(nodes: list, target: float) -> None:
    mags = [np.abs(n.kernel).reshape(-1) for n in nodes]
    allm = np.concatenate(mags)
    owner = np.concatenate([np.full(m.size, i) for i, m in enumerate(mags)])
    pos = np.concatenate([np.arange(m.size) for m in mags])
    need = _needed(target, allm.size) - int((allm == 0).sum())
    if need <= 0:
        return
    order = np.lexsort((pos, owner, allm))
    chosen = order[allm[order] != 0][:need]
    for i, n in enumerate(nodes):
        idx = pos[chosen[owner[chosen] == i]]
        if idx.size:
            _zero(n, idx)
