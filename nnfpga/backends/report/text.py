"""Terminal tables for reports and verification results (rich)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table


def _console() -> Console:
    return Console(soft_wrap=False, width=120)


def print_summary(report: dict, outdir: Path, compact: bool) -> None:
    con = _console()
    res = report["resources"]["estimate"]
    util = report["resources"]["utilisation_percent"]
    con.print(f"[bold]{report['model']}[/] on {report['part']} at {report['clock_mhz']:g} MHz: "
              f"latency {report['latency']['cycles']} cycles = {report['latency']['ns']:g} ns, "
              f"II {report['ii_cycles']} cycle(s), {report['events_per_second'] / 1e6:g} M events/s")
    if not compact:
        t = Table(title="per layer")
        for col in ("layer", "op", "shape", "type", "latency", "reuse", "DSP", "LUT", "FF", "BRAM"):
            t.add_column(col, justify="right" if col not in ("layer", "op", "type") else "left")
        for layer in report["layers"]:
            r = layer["resources"]
            t.add_row(layer["name"], layer["op"], "x".join(map(str, layer["shape"])), layer["type"],
                      str(layer["latency_cycles"]), str(layer["reuse_factor"]),
                      str(r["dsp"]), str(r["lut"]), str(r["ff"]), str(r["bram"]))
        con.print(t)
    t = Table(title="total (analytic estimate)")
    for col in ("", "DSP", "LUT", "FF", "BRAM"):
        t.add_column(col, justify="right")
    t.add_row("used", *(str(res[k]) for k in ("dsp", "lut", "ff", "bram")))
    t.add_row("% of part", *(f"{util[k]:.2f}" if util[k] is not None else "-" for k in ("dsp", "lut", "ff", "bram")))
    con.print(t)
    if not report["resources"]["fits"]:
        con.print(f"[bold red]warning:[/] the design does not fit {report['part']}")
    if not report["keeps_up_with_40mhz"]:
        con.print("[bold red]warning:[/] the design cannot accept an event every 25 ns bunch crossing")


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
