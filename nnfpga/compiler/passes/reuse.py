"""select_reuse: check every reuse factor, and choose them for a DSP or II budget.

Contract: runs last, on the typed integer graph.  Changes only ``reuse_factor`` of
Dense/Conv2D nodes.

1. A reuse factor larger than the layer's scheduled multiplications (its non-zero
   weights, times the output positions of a Conv2D; zero weights are never scheduled)
   cannot be scheduled: it is set to that number (at least 1) and recorded as an
   adjustment.
2. With a target -- ``max_dsp`` (``--max-dsp``), an II limit (``--ii``, or
   ``--event-rate`` with the clock: ``II <= floor(clock / rate)``) -- the reuse factors
   not fixed by the config are chosen:

   * with ``max_dsp``: the least total latency (`CostModel.latency`) such that the
     total DSPs (`CostModel.dsp` of every Dense/Conv2D, plus the DSPs no reuse factor
     changes, `CostModel.fixed_dsp`: the softmax, leaky-ReLU and ScaleShift products)
     fit the budget and every R respects the II limit; an exact dynamic programme over the DSP
     budget; ties go to fewer DSPs;
   * with only an II limit: per layer the fewest DSPs with R <= II, then the least
     latency.

   Network II = max R.  An impossible target is a `UserError` giving the best reachable.
3. ``max_dsp`` 0: no layer has a multiplier (`RtlConfig.shift_add`: every constant
   product as canonical-signed-digit shift-add logic), so every reuse factor is 1 (a
   reuse factor the config fixes above 1 is recorded as an adjustment; a leaky-ReLU
   slope is shift-add logic too).  What still needs a DSP by the rule (a softmax
   normalisation: a product of two signals) is a `UserError` naming the layers.

What a layer costs at a reuse factor is not decided here: `CostModel` (in
`nnfpga.backends.rtl.lowering.schedule`, beside the lowering that builds the schedule)
prices it with the part's DSP type (``options.dsp_type``) and the DSP rule the lowering
and the estimator share (`nnfpga.backends.rtl.dsp`), so the budget holds for the DSP
count ``report.json`` gives; its latency with the RTL configuration the lowering gets
(``options.rtl``: the clock, the part family and ``--pipeline``), so the pipeline
registers it counts are the ones built.  A caller can pass another ``model``.  The summary
``reuse`` gives the target, the per-layer choice and the totals.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from nnfpga.backends.rtl.lowering.builder import RtlConfig
from nnfpga.backends.rtl.lowering.schedule import CostModel, scheduled_multiplications
from nnfpga.compiler.adjustments import record_adjustment, record_pass
from nnfpga.compiler.config import CompileOptions
from nnfpga.compiler.source_layers import layer_of, weight_nodes
from nnfpga.core.errors import UserError
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops.base import TensorInfo


def select_reuse(graph: Graph, options: CompileOptions, model: CostModel | None = None) -> Graph:
    model = model or CostModel(options.dsp_type, options.rtl or _rtl_config(options))
    if options.max_dsp == 0 and not model.rtl.shift_add:
        model = dataclasses.replace(model, rtl=dataclasses.replace(model.rtl, shift_add=True))
    nodes = weight_nodes(graph)
    for n in nodes:
        limit = model.max_reuse(n)
        if n.reuse_factor > limit:
            record_adjustment(graph, layer=layer_of(n), node=n.name, setting="reuse_factor",
                              requested=n.reuse_factor, used=limit,
                              reason=f"the layer has only {scheduled_multiplications(n)} multiplications to share")
            n.reuse_factor = limit
    max_dsp, ii = options.max_dsp, options.ii
    if max_dsp is None and ii is None:
        return graph
    if max_dsp == 0:
        _no_dsp(graph, model)
    xs = {n.name: graph.in_infos(n)[0] for n in nodes}
    pinned = [n for n in nodes if f"{n.name}:reuse_factor" in options.pinned]
    free = [n for n in nodes if n not in pinned and model.dsp(n, 1, xs[n.name]) > 0]
    for n in nodes:
        if n not in pinned and n not in free:
            n.reuse_factor = 1          # no DSPs to save: fastest
    for n in pinned:
        if ii is not None and n.reuse_factor > ii:
            s = options.config.layers.get(layer_of(n))
            where = options.config.where(s.settings.get("reuse_factor") if s else options.config.defaults.get("reuse_factor"))
            raise UserError(f"{where}: reuse_factor {n.reuse_factor} of layer {layer_of(n)!r} exceeds the II limit "
                            f"{ii} ({options.ii_reason})")
    fixed = model.fixed_dsp(graph)
    pinned_dsp = sum(model.dsp(n, n.reuse_factor, xs[n.name]) for n in pinned)
    other_dsp = pinned_dsp + sum(fixed.values())
    cands = {n.name: _candidates(n, xs[n.name], model, ii) for n in free}
    if max_dsp is not None:
        choice = _min_latency(free, cands, max_dsp - other_dsp)
        if choice is None:
            least = other_dsp + sum(min(d for _, d, _ in cands[n.name]) for n in free)
            why = [f"{pinned_dsp} of them in layers whose reuse factor the config fixes"] if pinned_dsp else []
            why += [f"{sum(fixed.values())} in softmax products, which no reuse factor shares"] if fixed else []
            raise UserError(f"--max-dsp {max_dsp} cannot be met: the fewest DSPs reachable"
                            f"{' with II <= ' + str(ii) if ii is not None else ''} is {least}"
                            f"{' (' + '; '.join(why) + ')' if why else ''}")
        objective = "least latency within the DSP budget"
    else:
        choice = {n.name: min(cands[n.name], key=lambda c: (c[1], c[2]))[0] for n in free}
        objective = "fewest DSPs within the II limit, then least latency"
    for n in free:
        n.reuse_factor = choice[n.name]
    layers = [{"layer": layer_of(n), "node": n.name, "reuse_factor": n.reuse_factor,
               "multiplications": scheduled_multiplications(n), "dsp_multiplications": model.multipliers(n, xs[n.name]),
               "dsp": model.dsp(n, n.reuse_factor, xs[n.name]),
               "extra_latency_cycles": model.latency(n, n.reuse_factor, xs[n.name]),
               "chosen": n in free} for n in nodes]
    record_pass(graph, "reuse", {
        "target": {"max_dsp": max_dsp, "ii": ii, "ii_reason": options.ii_reason,
                   "event_rate_hz": options.event_rate_hz, "clock_mhz": options.clock_mhz},
        "objective": objective, "dsp_type": getattr(model, "dsp_type", None),
        "layers": layers, "other_dsp": [{"node": k, "dsp": v} for k, v in fixed.items()],
        "dsp": sum(x["dsp"] for x in layers) + sum(fixed.values()),
        "ii_cycles": max([n.reuse_factor for n in nodes], default=1),
        "extra_latency_cycles": sum(x["extra_latency_cycles"] for x in layers),
    })
    return graph


def _no_dsp(graph: Graph, model: CostModel) -> None:
    """``--max-dsp 0``: refuse what needs a DSP whatever the reuse factors; a reuse factor
    above 1 has nothing to share (every product is shift-add logic): 1."""
    fixed = model.fixed_dsp(graph)
    if fixed:
        what = "; ".join(f"layer {layer_of(n)!r} ({n.function}: e * 1/sum(e), a product of two signals, "
                         f"{fixed[n.name]} DSPs)" for n in graph.nodes if n.name in fixed)
        raise UserError(f"--max-dsp 0 cannot be met: {what} cannot be built without a DSP (only constant "
                        "products become shift-add logic); give a DSP budget above 0, or drop the softmax "
                        "normalisation (the argmax of the logits is the same)")
    for n in weight_nodes(graph):
        if n.reuse_factor > 1:
            record_adjustment(graph, layer=layer_of(n), node=n.name, setting="reuse_factor",
                              requested=n.reuse_factor, used=1,
                              reason="--max-dsp 0: every product is shift-add logic, no multiplier to share")
            n.reuse_factor = 1


def _rtl_config(options: CompileOptions) -> RtlConfig:
    """The lowering's configuration when the caller gave none (``nnfpga config``): the
    default pipeline at the options' clock (shift-add products with ``--max-dsp 0``)."""
    base = RtlConfig(clock_mhz=options.clock_mhz) if options.clock_mhz else RtlConfig()
    return dataclasses.replace(base, shift_add=options.max_dsp == 0)


def _candidates(node, x: TensorInfo, model: CostModel, ii: int | None) -> list[tuple[int, int, int]]:
    """(R, dsp, latency) on the Pareto front: for each DSP count the least latency."""
    top = model.max_reuse(node) if ii is None else min(ii, model.max_reuse(node))
    n = max(model.multipliers(node, x), 1)
    # every R up to 4096, and beyond that the smallest R of each unit count ceil(n / R)
    tries = set(range(1, min(top, 4096) + 1)) | {r for d in range(1, n + 1) if (r := -(-n // d)) <= top} | {top}
    best: dict[int, tuple[int, int, int]] = {}
    for r in sorted(tries):
        d, lat = model.dsp(node, r, x), model.latency(node, r, x)
        if d not in best or (lat, r) < (best[d][2], best[d][0]):
            best[d] = (r, d, lat)
    front, best_lat = [], math.inf
    for d in sorted(best):
        r, _, lat = best[d]
        if lat < best_lat:
            front.append((r, d, lat))
            best_lat = lat
    return front


def _min_latency(free, cands, budget: int) -> dict[str, int] | None:
    """Exact: minimise total latency subject to total DSPs <= budget."""
    if budget < 0:
        return None
    if not free:
        return {}
    budget = min(budget, sum(max(d for _, d, _ in cands[n.name]) for n in free))
    inf = np.iinfo(np.int64).max // 4
    dp = np.full(budget + 1, inf, dtype=np.int64)
    dp[0] = 0
    picks = []
    for n in free:
        new = np.full(budget + 1, inf, dtype=np.int64)
        pick = np.full(budget + 1, -1, dtype=np.int64)
        for k, (_, d, lat) in enumerate(cands[n.name]):
            if d > budget:
                continue
            shifted = np.full(budget + 1, inf, dtype=np.int64)
            shifted[d:] = dp[:budget + 1 - d] + lat
            better = shifted < new
            new[better] = shifted[better]
            pick[better] = k
        dp = new
        picks.append(pick)
    if dp.min() >= inf:
        return None
    best = int(dp.min())
    b = int(np.flatnonzero(dp == best)[0])          # fewest DSPs among the fastest
    choice = {}
    for n, pick in zip(reversed(free), reversed(picks)):
        k = int(pick[b])
        r, d, _ = cands[n.name][k]
        choice[n.name] = r
        b -= d
    return choice
