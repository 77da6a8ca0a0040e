"""Terminal tables for reports and verification results (rich)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from nnfpga.backends.escape import rich_text


def _console() -> Console:
    return Console(soft_wrap=False, width=120)


def headline(report: dict) -> str:
    """The design in one line (rich markup): the core's name (``--name``; the model's when
    it differs), part, clock, latency, II, rate and the Fmax estimate."""
    tim = report.get("timing", {})
    top, model = report.get("top") or report["model"], report["model"]
    who = f"[bold]{rich_text(top)}[/]" + (f" (model {rich_text(model)})" if top != model else "")
    return (f"{who} on {report['part']} at {report['clock_mhz']:g} MHz: "
            f"latency {report['latency']['cycles']} cycles = {report['latency']['ns']:g} ns, "
            f"II {report['ii_cycles']} cycle(s), {report['events_per_second'] / 1e6:g} M events/s"
            + (f", Fmax estimate {tim['estimate']['fmax_mhz']:g} MHz" if tim.get("estimate") else ""))


RESOURCE_KEYS = ("dsp", "lut", "ff", "bram")


def _n(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v != int(v):
        return f"{v:,.1f}"
    return f"{int(v):,}"


def print_summary(report: dict, outdir: Path, compact: bool) -> None:
    con = _console()
    res = report["resources"]["estimate"]
    util = report["resources"]["utilisation_percent"]
    detail = report["resources"].get("estimate_detail", {})
    syn = report["resources"].get("synthesis") or {}
    tim = report.get("timing", {})
    # one line however long: wrapped at the console width (fixed when piped), a value
    # such as "50 ns" would be cut in two
    con.print(headline(report), soft_wrap=True)
    if not compact:
        t = Table(title="per layer (analytic estimate)")
        for col in ("layer", "op", "shape", "type", "latency", "reuse", "DSP", "LUT", "FF", "BRAM"):
            t.add_column(col, justify="right" if col not in ("layer", "op", "type") else "left")
        for layer in report["layers"]:
            r = layer["resources"]
            t.add_row(rich_text(layer["name"]), layer["op"], "x".join(map(str, layer["shape"])), layer["type"],
                      str(layer["latency_cycles"]), str(layer["reuse_factor"]),
                      *(_n(r[k]) for k in RESOURCE_KEYS))
        con.print(t)
    t = Table(title="resources" if syn else "total (analytic estimate)")
    for col in ("", "DSP", "LUT", "FF", "BRAM36", "CARRY8"):
        t.add_column(col, justify="right")
    t.add_row("estimate", *(_n(res[k]) for k in RESOURCE_KEYS), _n(detail.get("carry8")))
    for src in ("verilog", "vhdl"):
        if syn.get(src):
            s = syn[src]
            t.add_row(f"Yosys ({src})", *(_n(s[k]) for k in RESOURCE_KEYS), _n(s.get("carry8")))
    if syn.get("ratio"):
        t.add_row("estimate/Yosys", *(f"{syn['ratio'][k]:.2f}" if syn["ratio"].get(k) is not None else "-"
                                      for k in RESOURCE_KEYS), "")
    t.add_row("% of part", *(f"{util[k]:.2f}" if util[k] is not None else "-" for k in RESOURCE_KEYS), "")
    con.print(t)
    if tim.get("estimate") and not compact:
        rows = [("estimate", tim["estimate"])] + ([("Yosys", tim["synthesis"])] if tim.get("synthesis") else [])
        t = Table(title="timing (delay model: nnfpga.backends.report.timing)")
        for col in ("", "LUT levels", "CARRY4 on path", "critical path ns", "Fmax MHz", f"meets {report['clock_mhz']:g} MHz"):
            t.add_column(col, justify="right")
        for name, x in rows:
            t.add_row(name, str(x["logic_levels"]), str(x["carry4_on_path"]), f"{x['critical_path_ns']:.2f}",
                      f"{x['fmax_mhz']:g}", "yes" if x["meets_clock"] else "[red]no[/]")
        con.print(t)
    for src in ("verilog", "vhdl"):
        if syn.get(src):
            s = syn[src]
            con.print(f"Yosys on the {src}: {s['seconds']:.1f} s ({s['command']})", soft_wrap=True)
    warnings = report.get("warnings")
    if warnings is None:  # a report.json of an older nnfpga
        warnings = []
        if not report["resources"]["fits"]:
            warnings.append(f"the design does not fit {report['part']}")
        if not report["keeps_up_with_40mhz"]:
            warnings.append("the design cannot accept an event every 25 ns bunch crossing")
    for w in warnings:
        con.print(f"[bold red]warning:[/] {rich_text(w)}", soft_wrap=True)


def print_verify(summary: dict) -> None:
    con = _console()
    t = Table(title=f"verification against the golden emulator ({summary['samples']} samples)")
    for col in ("simulator", "samples", "mismatching samples", "seconds", "result"):
        t.add_column(col)
    for sim, r in summary["results"].items():
        ok = r["mismatches"] == 0
        t.add_row(sim, str(r["samples"]), str(r["mismatches"]), f"{r['seconds']:.2f}",
                  "[green]bit-exact[/]" if ok else f"[red]MISMATCH[/] (first at sample {r['first_mismatch']})")
    con.print(t)
