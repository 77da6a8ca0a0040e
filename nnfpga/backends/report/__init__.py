"""report.json (and report.md, report.html): latency, II, throughput, resources and timing.

`build_report` makes the report at compile time from the graph and the RTL description:
the analytic estimate (`estimator`) of DSP, LUT, FF, BRAM (and URAM, carry chains,
shift registers) per layer and in total, latency in cycles and ns, II, events per
second, whether the design keeps up with the 40 MHz bunch crossings and fits the part,
and an analytic logic depth / Fmax (`timing`).  `nnfpga report OUTDIR --synth` adds
Yosys results (`nnfpga.synth`): ``resources.synthesis`` and ``timing.synthesis``;
``compile/report --data`` adds ``data_accuracy`` (`nnfpga.compiler.data_accuracy`: the
golden model against the source framework on the user's samples) and ``nnfpga verify``
adds ``verification`` (each simulator's mismatches and throughput).  These later sections
are rendered here but computed above this layer.

`write_report_files(outdir, report)` writes report.json, report.md (`markdown`) and the
self-contained report.html with plots (`html`).  The JSON layout is specified by
``schema.json`` (package data; `schema.validate`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from nnfpga.backends.report import timing as T
from nnfpga.backends.report.estimator import Cost, estimate_netlist
from nnfpga.core.parts import Part, synth_family
from nnfpga.core.version import __version__
from nnfpga.ir.graph import Graph

BUNCH_CROSSING_MHZ = 40.0
BUNCH_CROSSING_NS = 25.0
REPORT_FILES = ("report.json", "report.md", "report.html")

__all__ = ["BUNCH_CROSSING_MHZ", "build_report", "estimate_for", "fit_and_rate_warnings",
           "write_report_files"]


def _netlist(graph: Graph, rtl: dict, part: Part | None = None, clock_mhz: float | None = None):
    """The RTL description the firmware was printed from (lowered again from the graph
    with the configuration recorded in rtl.json; a tree written before the clock drove
    the pipeline records no clock or family: the report's)."""
    from nnfpga.backends.rtl import RtlConfig, lower
    from nnfpga.backends.rtl.timing import part_family
    given = ({"clock_mhz": float(clock_mhz)} if clock_mhz else {}) | ({"family": part_family(part)} if part else {})
    try:
        config = RtlConfig(**(given | rtl.get("config", {})))
    except (TypeError, ValueError):
        config = None
    return lower(graph, config)


def estimate_on_part(nl, part: Part):
    """`estimate_netlist` of ``nl`` with the DSP type and memories of ``part``."""
    return estimate_netlist(nl, part.dsp_type, part.uram > 0)


def estimate_for(graph: Graph, rtl: dict, part: Part, netlist=None, clock_mhz: float | None = None):
    nl = netlist if netlist is not None else _netlist(graph, rtl, part, clock_mhz)
    return nl, estimate_on_part(nl, part)


def _multiplications(node) -> int:
    """Non-zero weights of a Dense/Conv layer (scales of a ScaleShift, once per position):
    the multiplications one input needs."""
    kq = getattr(node, "kernel_q", None)
    if kq is None:
        return 0
    import numpy as np
    n = int(np.count_nonzero(kq.raw))
    if node.op_type in ("Conv2D", "ScaleShift"):
        shape = getattr(node.info, "shape", ())
        n *= int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    return n


def _resources(cost: Cost | None) -> dict:
    return (cost or Cost()).resources()


def build_report(graph: Graph, rtl: dict, hls: dict, part: Part, clock_mhz: float,
                 netlist=None, estimate=None) -> dict:
    """The report of a compiled design: the same for the same design (the run's own
    figures, such as the compile time, go to the tree's run.json).  ``netlist``: the lowered description (else lowered again from ``graph``);
    ``estimate``: its `estimate_on_part` when the caller already has it."""
    period_ns = 1000.0 / clock_mhz
    family = synth_family(part)  # None (Versal): the timing model uses its default scale
    if estimate is None:
        nl, est = estimate_for(graph, rtl, part, netlist, clock_mhz)
    else:
        nl, est = netlist, estimate
    infos = {info.name: info for info in nl.layers}
    owner = {n: info.name for info in nl.layers for n in info.nodes}
    rtl_layers = {layer["name"]: layer for layer in rtl.get("layers", [])}
    layers = []
    for node in graph.nodes:
        lname = owner.get(node.name, node.name)
        own = lname == node.name
        info = infos.get(lname)
        cost = est.layers.get(node.name) if own else None
        entry = {
            "name": node.name, "op": node.op_type, "source_layer": node.source_layer,
            "shape": list(node.info.shape), "type": node.info.type.spec(),
            "latency_cycles": int(info.latency) if (own and info) else 0,
            "first_cycle": int(info.first_stage) if info else None,
            "reuse_factor": int(getattr(node, "reuse_factor", 1)),
            "ii_cycles": int(rtl_layers.get(lname, {}).get("ii_cycles", 1)),
            "multiplications": _multiplications(node),
            "resources": _resources(cost),
            "detail": (cost or Cost()).detail(),
            "timing": ({"path_ns": round((T.T_FF + cost.path_ns) * T.scale(family), 3),
                        "logic_levels": cost.levels,
                        "fmax_mhz": T.fmax_mhz(cost.path_ns, family)} if cost and cost.operations else None),
        }
        if own and info is not None and info.path_ns is not None:
            entry["schedule"] = info.schedule()
        if not own:
            entry["implemented_in"] = lname
        layers.append(entry)
    total = est.total.resources()
    detail = est.total.detail()
    available = {"dsp": part.dsp, "lut": part.lut, "ff": part.ff, "bram": part.bram36, "uram": part.uram}
    used = dict(total, uram=detail["uram"])
    ii = int(rtl["ii_cycles"])
    cycles = int(rtl["latency_cycles"])
    rate = clock_mhz * 1e6 / ii
    report = {
        "nnfpga_version": __version__,
        "model": graph.name,
        "top": rtl.get("top", nl.name),
        "part": part.name, "part_family": part.family, "synth_family": family,
        "clock_mhz": clock_mhz,
        "latency": {"cycles": cycles, "ns": round(cycles * period_ns, 3),
                    "bunch_crossings": round(cycles * period_ns / BUNCH_CROSSING_NS, 3)},
        "ii_cycles": ii,
        "events_per_second": rate,
        "keeps_up_with_40mhz": rate >= BUNCH_CROSSING_MHZ * 1e6,
        "bunch_crossing": {"rate_mhz": BUNCH_CROSSING_MHZ, "period_ns": BUNCH_CROSSING_NS,
                           "max_ii_cycles": max(1, math.floor(clock_mhz / BUNCH_CROSSING_MHZ + 1e-9)),
                           "events_per_crossing": round(rate / (BUNCH_CROSSING_MHZ * 1e6), 4)},
        "resources": {
            "estimate": total,
            "estimate_detail": detail,
            "estimate_model": "analytic (nnfpga.backends.report.estimator), calibrated against "
                              "Yosys 0.23 synth_xilinx",
            "available": available,
            "utilisation_percent": _utilisation(used, available),
            "fits": _fits(used, available),
            "synthesis": None,
        },
        "timing": {"clock_mhz": clock_mhz, "period_ns": round(period_ns, 4),
                   "estimate": T.timing_summary(est.total.path_ns, est.total.levels, est.total.path_carry4,
                                                family, clock_mhz),
                   "synthesis": None, "schedule": _schedule(nl)},
        "io": {"input_shape": list(graph.input.info.shape), "input_type": graph.input.info.type.spec(),
               "output_shape": list(graph.output.info.shape), "output_type": graph.output.info.type.spec()},
        "layers": layers,
        "hls": {k: v for k, v in hls.items() if k != "dir"},   # no temporary path in the report
        "notes": est.notes + ([] if nl.latency == cycles else
                              [f"the re-lowered description has latency {nl.latency}, rtl.json says {cycles}"]),
    }
    report["warnings"] = fit_and_rate_warnings(report)
    return report


def _schedule(nl) -> dict:
    """The design's pipeline schedule: the rule and what it was built for (rtl.json's
    configuration) and its longest planned path over the linear layers."""
    from nnfpga.backends.rtl import RtlConfig
    cfg = RtlConfig(**(nl.config or {}))
    paths = [info.path_ns for info in nl.layers if info.path_ns is not None]
    worst = max(paths) if paths else None
    return {"pipeline": cfg.pipeline, "clock_mhz": cfg.clock_mhz, "family": cfg.family,
            "critical_path_ns": worst, "fmax_mhz": round(1000.0 / worst, 1) if worst else None}


def _utilisation(used: dict, available: dict) -> dict:
    return {k: (round(100.0 * used[k] / available[k], 3) if available.get(k) else None) for k in used}


def _fits(used: dict, available: dict) -> bool:
    return all(used[k] <= available.get(k, 0) for k in used if used[k])


def fit_and_rate_warnings(report: dict) -> list[str]:
    """The design-level warnings: not fitting the part, missing the bunch-crossing rate,
    an Fmax (synthesis if known, else estimate) below the clock, a reuse factor that a
    layer cannot use."""
    out = []
    res = report["resources"]
    source = res.get("synthesis") or {}
    used = source.get("verilog") if source else None
    if not res["fits"]:
        over = [f"{k.upper()} {res['estimate'].get(k, res['estimate_detail'].get(k))} > {res['available'][k]}"
                for k in res["utilisation_percent"]
                if (res["utilisation_percent"][k] or 0) > 100.0]
        out.append(f"the design does not fit {report['part']} ({', '.join(over)})")
    elif used and not _fits({k: used.get(k, 0) for k in ("dsp", "lut", "ff", "bram", "uram")}, res["available"]):
        out.append(f"the synthesised design does not fit {report['part']}")
    if not report["keeps_up_with_40mhz"]:
        bc = report["bunch_crossing"]
        out.append(f"the design cannot accept an event every 25 ns bunch crossing: II {report['ii_cycles']} "
                   f"cycles at {report['clock_mhz']:g} MHz gives {report['events_per_second'] / 1e6:g} M events/s "
                   f"(needs II <= {bc['max_ii_cycles']})")
    tim = report.get("timing", {})
    t = tim.get("synthesis") or tim.get("estimate")
    if t and not t.get("meets_clock", True):
        which = "synthesis" if tim.get("synthesis") else "estimate"
        out.append(f"{which} Fmax {t['fmax_mhz']:g} MHz is below the {report['clock_mhz']:g} MHz clock "
                   f"({t['logic_levels']} logic levels on the critical path)")
    idle = [f"{layer['name']!r} (reuse {layer['reuse_factor']})" for layer in report.get("layers", [])
            if layer.get("reuse_factor", 1) > 1 and layer.get("ii_cycles", 1) == 1]
    if idle:
        out.append(f"a reuse factor saves nothing in layer(s) {', '.join(idle)}: they have no multiplier to share "
                   "(ternary, binary or power-of-two weights, or shift-add constants with --max-dsp 0), so they "
                   "are built fully parallel, II 1; reuse 1 gives the same firmware")
    return out


def compare(estimate: dict, synthesis: dict) -> dict:
    """``estimate / synthesis`` ratio of each figure (None where synthesis has 0)."""
    out = {}
    for k in ("dsp", "lut", "ff", "bram"):
        e, s = estimate.get(k, 0), synthesis.get(k, 0)
        out[k] = round(e / s, 3) if s else (1.0 if not e else None)
    return out


def add_synthesis(report: dict, results: dict) -> dict:
    """Put Yosys results (``{source: record}`` from `nnfpga.synth.firmware.run_synthesis`)
    into the report."""
    syn = dict(results)
    main = syn.get("verilog") or next(iter(syn.values()))
    syn["ratio"] = compare(report["resources"]["estimate"], main)
    if "verilog" in syn and "vhdl" in syn:
        syn["vhdl_matches_verilog"] = all(syn["verilog"][k] == syn["vhdl"][k] for k in ("dsp", "lut", "ff", "bram"))
    report["resources"]["synthesis"] = syn
    report["timing"]["synthesis"] = main["timing"]
    report["warnings"] = fit_and_rate_warnings(report)
    return report


def write_report_files(outdir: Path | str, report: dict, html: bool = True) -> list[Path]:
    """Write report.json, report.md and (``html``) report.html into ``outdir``."""
    from nnfpga.backends.report.markdown import report_markdown
    outdir = Path(outdir)
    paths = [outdir / "report.json", outdir / "report.md"]
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    paths[1].write_text(report_markdown(report))
    if html:
        from nnfpga.backends.report.html import report_html
        paths.append(outdir / "report.html")
        paths[2].write_text(report_html(report))
    return paths
