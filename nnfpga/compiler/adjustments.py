"""What the passes decided, recorded in the graph (``graph.annotations``), so the IR
json and the report show it.

* ``annotations["adjustments"]``: every place where the compiler used a value other than
  the one requested (a reuse factor larger than the layer's multiplications, an
  accumulator bound wider than the exact accumulator, weights that saturate in the
  requested type), each ``{layer, node, setting, requested, used, reason}``; each is
  also issued as an `AdjustmentWarning` (the CLI prints them).
* ``annotations["passes"][name]``: a pass's summary (chosen types, pruning figures, ...).
"""

from __future__ import annotations

import warnings

import numpy as np

from nnfpga.ir.graph import Graph


class AdjustmentWarning(UserWarning):
    """The compiler used a value other than the one requested; the message says which."""


def jsonable(v):
    """Plain Python values (numpy scalars and arrays converted) for the IR json."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def adjustment_message(entry: dict) -> str:
    where = f"layer {entry['layer']!r}" if entry.get("layer") else "model"
    if entry["requested"] == entry["used"]:
        return f"{where}: {entry['setting']} {entry['used']}: {entry['reason']}"
    return (f"{where}: {entry['setting']} {entry['requested']} -> {entry['used']} "
            f"({entry['reason']})")


def record_adjustment(graph: Graph, *, layer: str, node: str, setting: str, requested, used,
                      reason: str) -> dict:
    entry = jsonable({"layer": layer, "node": node, "setting": setting,
                      "requested": requested, "used": used, "reason": reason})
    graph.annotations.setdefault("adjustments", []).append(entry)
    warnings.warn(adjustment_message(entry), AdjustmentWarning, stacklevel=3)
    return entry


def record_pass(graph: Graph, name: str, summary: dict) -> None:
    graph.annotations.setdefault("passes", {})[name] = jsonable(summary)


def pass_summary(graph: Graph, name: str) -> dict | None:
    return graph.annotations.get("passes", {}).get(name)


def optimisation_lines(passes: dict) -> list[str]:
    """One line per optimisation pass that ran, for the terminal."""
    out = []
    p = passes.get("ptq")
    if p and p.get("chosen"):
        out.append(f"ptq: {p['metric']} = {p['value']:.6g} ({p['requirement']}; the default types give "
                   f"{p['default_value']:.6g}) on {p['samples']} calibration samples, {len(p['chosen'])} "
                   f"choices in {p['evaluations']} evaluations (data-dependent)")
        for c in p["chosen"]:
            out.append(f"  {c['layer']:>16} {c['what']:<11} {c['value']!s:<22} (default {c['default']})")
    p = passes.get("pruning")
    if p:
        out += pruning_lines(p)
    p = passes.get("dead_units")
    if p:
        units = sum(x["units_removed"] for x in p["layers"])
        out.append(f"dead units: {units} removed; parameters {p['parameters_before']} -> {p['parameters_after']}, "
                   f"multiplications {p['multiplications_before']} -> {p['multiplications_after']}")
    p = passes.get("trim")
    if p:
        out.append(f"trim: {len(p['trimmed'])} types narrowed to the calibration data's range (SAT, "
                   "data-dependent)")
    p = passes.get("reuse")
    if p:
        chosen = ", ".join(f"{x['layer']} R={x['reuse_factor']} ({x['dsp']} DSP)" for x in p["layers"])
        out.append(f"reuse: {chosen}; {p['dsp']} DSPs, II {p['ii_cycles']} ({p['objective']})")
    return out


def pruning_lines(p: dict) -> list[str]:
    """The terminal lines of a ``pruning`` summary: what was zeroed against which target
    (the global one, and each layer's own share)."""
    total = sum(x["weights"] for x in p["layers"])
    target, scope = float(p["target"] or 0), p["scope"]
    if target > 0 and scope == "global":
        how = f"global target {target:.0%} sparsity: one magnitude threshold over the layers together"
    elif target > 0:
        how = f"target {target:.0%} sparsity in every layer"
    else:
        how = "no global target; per-layer targets only"
    out = [f"pruning: {p['weights_pruned']:,} of {total:,} weights set to zero ({how})"]
    for x in p["layers"]:
        if not x["target"] and not x["pruned"]:
            continue
        own = x["target"] is not None and x["target"] != target  # layers.<name>.sparsity
        why = "no target" if x["target"] is None else f"{'its own ' if own else ''}target {x['target']:.0%}"
        out.append(f"  {x['layer']:>16} {x['pruned']:,} of {x['weights']:,} zeroed, sparsity "
                   f"{x['zero_before'] / max(1, x['weights']):.1%} -> {x['sparsity']:.1%} ({why})")
    if p.get("skipped_layers"):
        out.append(f"  not pruned (binary or power-of-two weights cannot be zero): {', '.join(p['skipped_layers'])}")
    return out
