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
     changes, `CostModel.fixed_dsp`: the softmax and leaky-ReLU products) fit the
     budget and every R respects the II limit; an exact dynamic programme over the DSP
     budget; ties go to fewer DSPs;
   * with only an II limit: per layer the fewest DSPs with R <= II, then the least
     latency.

   Network II = max R.  An impossible target is a `UserError` giving the best reachable.

The cost model lives in one place, `CostModel` (`COST_MODEL` is the one the pipeline
uses).  It counts what the RTL lowering (`nnfpga.backends.rtl.lower`) builds, with the
DSP rule of the report's estimator (`nnfpga.backends.report.mulrule`), so that the
budget holds for the DSP count ``report.json`` gives:

* the multiplications of a layer are its products by non-powers of two (a weight
  ``+-odd * 2**k`` with ``odd > 1``; zero weights, ternary, binary and power-of-two
  weights are wiring), over the in-bound taps of every output position of a Conv2D;
* reuse 1: one constant multiplier per distinct (input element, odd constant) --
  synthesis merges identical products -- taking `mulrule.mul_dsp_count` DSPs each
  (products narrower than 9 bits are LUT logic);
* reuse R > 1: ``ceil(N / R)`` multiplier units (N multiplications), each taking
  `mulrule.var_mul_dsp_count` DSPs for the widest data input and weight of the layer;
* operand ranges are the IR's per-tensor ranges, which contain the lowering's exact
  per-element ranges: every count is an upper bound of the estimator's -- equal to it
  unless some element's range or some unit's weights are narrower than the layer's,
  or the estimator drops logic nothing reads (tests/test_passes_reuse.py compares);
* latency: extra cycles over the fully parallel layer, 0 for R = 1 and for R > 1
  ``R + 1`` plus the change of the adder-tree depth (the RTL default of one register
  per tree level): the RTL's latency exactly.

The DSP primitive is ``CostModel.dsp_type``: DSP48E2 (UltraScale/UltraScale+), as the
options carry no part -- on a DSP48E1 part (7-series, 25x18) an operand of 26 or 27
bits takes one DSP more than counted.  Assign another `CostModel` to `COST_MODEL` to change the rule
everywhere.  The summary ``reuse`` gives the target, the per-layer choice and the totals.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from nnfpga.compiler.adjustments import record_adjustment, record_pass
from nnfpga.compiler.config import CompileOptions
from nnfpga.compiler.source_layers import layer_of, weight_nodes
from nnfpga.core.errors import UserError
from nnfpga.ir.fixed import bits_for_range
from nnfpga.ir.graph import Graph
from nnfpga.ir.ops import Activation, Conv2D
from nnfpga.ir.ops.base import TensorInfo
from nnfpga.ir.ops.conv2d import window_geometry


def output_positions(node) -> int:
    return int(np.prod(node.info.shape[:2])) if isinstance(node, Conv2D) else 1


_COUNTS: dict[int, tuple[object, int, int]] = {}


def _split_weights(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(odd part of |w|, products by a non-power of two, wiring terms) per weight."""
    mag = np.abs(raw.astype(np.int64))
    nz = mag != 0
    low = np.where(nz, mag & -mag, 1)
    odd = np.where(nz, mag // low, 0)
    return odd, nz & (odd != 1), nz & (odd == 1)


def _weight_counts(kq) -> tuple[int, int]:
    """(non-zero weights, those whose |raw| is not a power of two), cached per array."""
    hit = _COUNTS.get(id(kq))
    if hit is None or hit[0] is not kq:
        if len(_COUNTS) > 1024:
            _COUNTS.clear()
        _, mult, wiring = _split_weights(kq.raw)
        hit = _COUNTS[id(kq)] = (kq, int(mult.sum() + wiring.sum()), int(mult.sum()))
    return hit[1], hit[2]


def scheduled_multiplications(node) -> int:
    """Multiplications per inference: non-zero weights (times output positions)."""
    return _weight_counts(node.kernel_q)[0] * output_positions(node)


def dsp_multiplications(node) -> int:
    """Multiplications by non-powers of two (ternary, binary and power-of-two weights
    have none), times output positions: the products a DSP can take."""
    return _weight_counts(node.kernel_q)[1] * output_positions(node)


# ----------------------------------------------------------------------------- cost model
@dataclass(frozen=True)
class LayerProfile:
    """What the RTL lowering builds for one Dense/Conv2D, as far as DSPs and latency go."""

    multipliers: int              # N: products by non-powers of two
    parallel_dsp: int             # DSPs at reuse 1
    unit_dsp: int                 # DSPs of one multiplier unit at reuse > 1
    per_output: np.ndarray        # products by non-powers of two, per output (lowering order)
    wiring: np.ndarray            # multiplier-free terms, per output

    def leaves(self, reuse: int) -> int:
        """Most adder-tree leaves of an output at reuse ``reuse``."""
        n = self.per_output
        if reuse <= 1 or self.multipliers == 0:
            return int((n + self.wiring).max(initial=0))
        start = np.cumsum(n) - n          # the products of output j, in lowering order
        units = np.where(n > 0, (start + n - 1) // reuse - start // reuse + 1, 0)
        return int((units + self.wiring).max(initial=0))

    @property
    def parallel_depth(self) -> int:
        return _depth(self.leaves(1))


def _depth(leaves: int) -> int:
    return math.ceil(math.log2(leaves)) if leaves > 1 else 0


_PROFILES: dict[tuple, tuple[object, LayerProfile]] = {}


def _product_bits(a: tuple[int, int], b: tuple[int, int]) -> int:
    c = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
    return bits_for_range(min(c), max(c))[0]


def layer_profile(node, x: TensorInfo, dsp_type: str = "DSP48E2") -> LayerProfile:
    """`LayerProfile` of a Dense/Conv2D whose input is ``x`` (cached per weight array)."""
    kq = node.kernel_q
    key = (id(kq), x.shape, x.lo, x.hi, dsp_type, getattr(node, "strides", None), getattr(node, "padding", None))
    hit = _PROFILES.get(key)
    if hit is not None and hit[0] is kq:
        return hit[1]
    from nnfpga.backends.report.mulrule import mul_dsp_count, var_mul_dsp_count
    raw = kq.raw.astype(np.int64)
    odd, mult, wiring = _split_weights(raw)
    xr = (int(x.lo), int(x.hi))
    a_width, a_signed = bits_for_range(*xr)
    pairs: Counter = Counter()        # odd constant -> distinct (input element, constant) products
    if isinstance(node, Conv2D):
        h, w, _ = x.shape
        kh, kw = node.kernel_size
        (oh, ow), (pt, _, pl, _) = window_geometry((h, w), (kh, kw), node.strides, node.padding)
        vy = np.array([[0 <= y * node.strides[0] + d - pt < h for d in range(kh)] for y in range(oh)])
        vx = np.array([[0 <= c * node.strides[1] + d - pl < w for d in range(kw)] for c in range(ow)])
        per_output = np.einsum("yd,xe,def->yxf", vy.astype(np.int64), vx.astype(np.int64),
                               mult.sum(axis=2)).reshape(-1)
        wires = np.einsum("yd,xe,def->yxf", vy.astype(np.int64), vx.astype(np.int64),
                          wiring.sum(axis=2)).reshape(-1)
        # input rows / columns grouped by the kernel offsets that read them
        rows = Counter(tuple(d for d in range(kh) for y in range(oh) if y * node.strides[0] + d - pt == i)
                       for i in range(h))
        cols = Counter(tuple(d for d in range(kw) for c in range(ow) if c * node.strides[1] + d - pl == i)
                       for i in range(w))
        for dys, ny in rows.items():
            for dxs, nx in cols.items():
                if not dys or not dxs:
                    continue
                sub_odd, sub_mult = odd[np.ix_(dys, dxs)], mult[np.ix_(dys, dxs)]
                for ch in range(raw.shape[2]):
                    for c in np.unique(sub_odd[:, :, ch][sub_mult[:, :, ch]]):
                        pairs[int(c)] += ny * nx
    else:
        per_output, wires = mult.sum(axis=0), wiring.sum(axis=0)
        for i in range(raw.shape[0]):
            for c in np.unique(odd[i][mult[i]]):
                pairs[int(c)] += 1
    n = int(per_output.sum())
    parallel = sum(cnt * mul_dsp_count(a_width, a_signed, c, _product_bits(xr, (c, c)), dsp_type)
                   for c, cnt in pairs.items())
    unit = 0
    if n:
        wr = (int(raw[mult].min()), int(raw[mult].max()))
        b_width, b_signed = bits_for_range(*wr)
        unit = var_mul_dsp_count(a_width, a_signed, b_width, b_signed, _product_bits(xr, wr), dsp_type)
    prof = LayerProfile(n, int(parallel), int(unit), per_output.astype(np.int64), wires.astype(np.int64))
    if len(_PROFILES) > 256:
        _PROFILES.clear()
    _PROFILES[key] = (kq, prof)
    return prof


@dataclass(frozen=True)
class CostModel:
    """The DSP and latency rule of a layer at reuse factor R (swap `COST_MODEL` to change
    it); ``x`` is the layer's input (`TensorInfo`)."""

    dsp_type: str = "DSP48E2"

    def dsp(self, node, reuse: int, x: TensorInfo) -> int:
        p = layer_profile(node, x, self.dsp_type)
        if p.multipliers == 0:
            return 0
        return p.parallel_dsp if reuse <= 1 else -(-p.multipliers // reuse) * p.unit_dsp

    def latency(self, node, reuse: int, x: TensorInfo) -> int:
        """Extra cycles over the fully parallel layer."""
        p = layer_profile(node, x, self.dsp_type)
        if reuse <= 1 or p.multipliers == 0:
            return 0
        return reuse + 1 + _depth(p.leaves(reuse)) - p.parallel_depth

    def max_reuse(self, node) -> int:
        return max(scheduled_multiplications(node), 1)

    def multipliers(self, node, x: TensorInfo) -> int:
        """N: the multiplications a unit can share."""
        return layer_profile(node, x, self.dsp_type).multipliers

    def fixed_dsp(self, graph: Graph) -> dict[str, int]:
        """DSPs outside the multiplier units of the Dense/Conv2D layers (no reuse factor
        changes them), per node: a softmax multiplies every exp by the reciprocal of their
        sum; a leaky ReLU multiplies every element that can be negative by its slope."""
        from nnfpga.backends.report.mulrule import mul_dsp_count, var_mul_dsp_count
        out = {}
        for n in graph.nodes:
            if isinstance(n, Activation) and n.function == "leaky_relu":
                alpha = int(getattr(n, "alpha_raw", 0) or 0)
                x = graph.in_infos(n)[0]
                if alpha > 0 and x.lo < 0:
                    xr = (int(x.lo), int(x.hi))
                    each = mul_dsp_count(*bits_for_range(*xr), alpha, _product_bits(xr, (alpha, alpha)),
                                         self.dsp_type)
                    if each:
                        out[n.name] = each * int(np.prod(x.shape))
            if isinstance(n, Activation) and n.function == "softmax" and n.table is not None \
                    and n.inv_table is not None:
                er = (int(n.table.entries.min()), int(n.table.entries.max()))
                rr = (int(n.inv_table.entries.min()), int(n.inv_table.entries.max()))
                if er[0] == er[1] and rr[0] == rr[1]:
                    continue
                each = var_mul_dsp_count(*bits_for_range(*er), *bits_for_range(*rr), _product_bits(er, rr),
                                         self.dsp_type)
                if each:
                    out[n.name] = each * int(np.prod(n.info.shape))
        return out


COST_MODEL = CostModel()


def select_reuse(graph: Graph, options: CompileOptions, model: CostModel | None = None) -> Graph:
    model = model or COST_MODEL
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
        "objective": objective, "dsp_type": model.dsp_type if hasattr(model, "dsp_type") else None,
        "layers": layers, "other_dsp": [{"node": k, "dsp": v} for k, v in fixed.items()],
        "dsp": sum(x["dsp"] for x in layers) + sum(fixed.values()),
        "ii_cycles": max([n.reuse_factor for n in nodes], default=1),
        "extra_latency_cycles": sum(x["extra_latency_cycles"] for x in layers),
    })
    return graph


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
