"""report.html: one self-contained page (plots embedded as base64 PNG) with the tables of
report.md and three matplotlib figures: the pipeline timeline (per-layer latency), the
per-layer resources and the utilisation of the part (estimate and, after ``--synth``,
Yosys)."""

from __future__ import annotations

import base64
import io

from nnfpga.backends.escape import html_text, matplotlib_text
from nnfpga.backends.report.markdown import (KEYS, _fmt, data_accuracy_note, data_accuracy_rows, schedule_text,
                                             verification_rows)

#: Plot colours (matplotlib's tab10): estimate, synthesis, third series.
BLUE, ORANGE, GREEN, RED, PURPLE = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"


def figure(width: float, height: float):
    """A matplotlib figure on the Agg canvas (no pyplot state: safe in any thread or process)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _own_layers(r: dict) -> list[dict]:
    return [layer for layer in r["layers"] if "implemented_in" not in layer and
            (layer["latency_cycles"] or any(layer["resources"].values()))]


def latency_plot(r: dict) -> str:
    layers = _own_layers(r) or r["layers"]
    period = 1000.0 / r["clock_mhz"]
    fig = figure(7.5, 0.45 * len(layers) + 1.4)
    ax = fig.add_subplot(1, 1, 1)
    names = [matplotlib_text(layer["name"]) for layer in layers][::-1]
    starts = [(layer.get("first_cycle") or 0) for layer in layers][::-1]
    lat = [layer["latency_cycles"] for layer in layers][::-1]
    ax.barh(names, lat, left=starts, color=BLUE)
    for y, (s, n) in enumerate(zip(starts, lat)):
        if n:
            ax.text(s + n + 0.1, y, f"{n} cy = {n * period:.1f} ns", va="center", fontsize=8)
    ax.set_xlabel(f"clock cycle ({period:.3g} ns each)")
    ax.set_title(f"pipeline: latency {r['latency']['cycles']} cycles = {r['latency']['ns']:g} ns, "
                 f"II {r['ii_cycles']}")
    ax.set_xlim(0, max(r["latency"]["cycles"], 1) * 1.35)
    return _png(fig)


def resources_plot(r: dict) -> str:
    layers = _own_layers(r) or r["layers"]
    names = [matplotlib_text(layer["name"]) for layer in layers]
    fig = figure(9, 4.2)
    colours = {"lut": BLUE, "ff": PURPLE, "dsp": GREEN, "bram": RED}
    for i, k in enumerate(KEYS):
        ax = fig.add_subplot(2, 2, i + 1)
        values = [layer["resources"][k] for layer in layers]
        ax.bar(range(len(names)), values, color=colours[k])
        ax.set_ylim(0, max(values + [1]) * 1.1)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{k.upper()} per layer (estimate)", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return _png(fig)


def utilisation_plot(r: dict) -> str:
    res = r["resources"]
    avail = res["available"]
    keys = [k for k in ("dsp", "lut", "ff", "bram", "uram") if avail.get(k)]
    est = {**res["estimate"], "uram": res["estimate_detail"].get("uram", 0)}
    syn = (res.get("synthesis") or {}).get("verilog")
    fig = figure(7.5, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    ys = range(len(keys))
    h = 0.38 if syn else 0.6
    pe = [100.0 * est.get(k, 0) / avail[k] for k in keys]
    ax.barh([y + (h / 2 if syn else 0) for y in ys], pe, height=h, color=BLUE, label="estimate")
    if syn:
        ps = [100.0 * syn.get(k, 0) / avail[k] for k in keys]
        ax.barh([y - h / 2 for y in ys], ps, height=h, color=ORANGE, label="Yosys")
    ax.set_yticks(list(ys))
    ax.set_yticklabels([k.upper() for k in keys])
    ax.invert_yaxis()
    peak = max(pe + (ps if syn else []) + [0.0])
    ax.set_xlim(0, min(max(peak * 1.25, 5.0), 1000.0))
    if peak * 1.25 >= 100.0:
        ax.axvline(100.0, color=RED, linestyle="--", linewidth=1)
    for y, v in zip(ys, pe):
        ax.text(v, y + (h / 2 if syn else 0), f" {v:.2f}%", va="center", fontsize=7)
    ax.set_xlabel(f"% of {r['part']}")
    ax.set_title("utilisation of the part")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def deviation_plot(d: dict) -> str:
    """The histogram of |fixed - framework| over every output of every sample."""
    h = d["histogram"]
    edges, counts = h["edges"], h["counts"]
    fig = figure(7.5, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    widths = [b - a for a, b in zip(edges, edges[1:])]
    ax.bar(edges[:-1], counts, width=widths, align="edge", color=BLUE, edgecolor="white", label="observed")
    if d.get("error_bound_max") is not None:
        ax.axvline(d["error_bound_max"], color=RED, linestyle="--", linewidth=1, label="guaranteed bound")
    ax.set_xlabel("|fixed point - framework|")
    ax.set_ylabel("output values")
    ax.set_title(f"deviation on {matplotlib_text(str(d['data']))} ({d['samples']} samples)")
    ax.legend(loc="upper right", fontsize=8)
    return _png(fig)


def _data_accuracy_html(d: dict | None) -> list[str]:
    if not d:
        return []
    tables = data_accuracy_rows(d)
    parts = ["<h2>Accuracy on data</h2>", f"<p class='note'>{html_text(data_accuracy_note(d))}</p>"]
    sat = d["saturation"]
    if sat["values"]:
        parts.append(f"<div class='warn'><b>warning:</b> {sat['values']} input values in {sat['samples']} samples "
                     f"lie outside the input type {html_text(sat['input_type'])} and saturate</div>")
    parts += [_table(*tables["summary"]), _table(*tables["outputs"])]
    if tables["saturated"][1]:
        parts.append(_table(*tables["saturated"]))
    parts.append(f"<img id='plot-deviation' alt='histogram of the deviation on the data' "
                 f"src='data:image/png;base64,{deviation_plot(d)}'>")
    return parts


def _verification_html(v: dict | None) -> list[str]:
    if not v:
        return []
    verdict = "bit-exact" if v["bit_exact"] else "MISMATCH"
    return ["<h2>Verification</h2>",
            f"<p>nnfpga verify on {html_text(v['data'])} ({v['samples']} samples): <b>{verdict}</b> against the "
            "golden model.</p>", _table(*verification_rows(v))]


def _table(header: list[str], rows: list[list]) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{html_text(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html_text(_fmt(c))}</td>" for c in row) + "</tr>")
    return "\n".join(out + ["</table>"])


CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
.warn { background: #fdd; border-left: 4px solid #d62728; padding: 0.4em 0.8em; margin: 0.3em 0; }
img { display: block; margin: 0.5em 0 1.5em; max-width: 100%; }
.note { color: #666; font-size: 0.85em; }
"""


def report_html(r: dict) -> str:
    res, tim = r["resources"], r["timing"]
    title = f"{r['model']} on {r['part']} at {r['clock_mhz']:g} MHz"
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
             f"<title>nnfpga report: {html_text(title)}</title>", f"<style>{CSS}</style></head><body>",
             f"<h1>{html_text(title)}</h1>",
             f"<p class='note'>nnfpga {html_text(r['nnfpga_version'])}, top entity "
             f"<code>{html_text(r.get('top', r['model']))}</code></p>"]
    for w in r.get("warnings", []):
        parts.append(f"<div class='warn'><b>warning:</b> {html_text(w)}</div>")
    parts.append("<h2>Latency and throughput</h2>")
    parts.append(_table(["latency (cycles)", "latency (ns)", "II (cycles)", "events/s",
                         "keeps up with 40 MHz", "Fmax estimate (MHz)"],
                        [[r["latency"]["cycles"], r["latency"]["ns"], r["ii_cycles"], r["events_per_second"],
                          r["keeps_up_with_40mhz"], tim["estimate"]["fmax_mhz"]]]))
    parts.append(f"<img id='plot-latency' alt='per-layer latency' src='data:image/png;base64,{latency_plot(r)}'>")
    parts.append("<h2>Resources</h2>")
    syn = res.get("synthesis") or {}
    rows = [["analytic estimate", *(res["estimate"][k] for k in KEYS), res["estimate_detail"]["uram"],
             res["estimate_detail"]["carry8"]]]
    for src in ("verilog", "vhdl"):
        if syn.get(src):
            s = syn[src]
            rows.append([f"Yosys ({src})", *(s[k] for k in KEYS), s.get("uram", 0), s.get("carry8", 0)])
    if syn.get("ratio"):
        rows.append(["estimate / Yosys", *(syn["ratio"].get(k) for k in KEYS), None, None])
    rows.append(["available", *(res["available"][k] for k in KEYS), res["available"].get("uram"), None])
    parts.append(_table(["", "DSP", "LUT", "FF", "BRAM36", "URAM", "CARRY8"], rows))
    parts.append(f"<img id='plot-utilisation' alt='utilisation of the part' "
                 f"src='data:image/png;base64,{utilisation_plot(r)}'>")
    parts.append(f"<img id='plot-resources' alt='per-layer resources' "
                 f"src='data:image/png;base64,{resources_plot(r)}'>")
    parts.append("<h2>Timing</h2>")
    trows = [["estimate", tim["estimate"]["logic_levels"], tim["estimate"]["critical_path_ns"],
              tim["estimate"]["fmax_mhz"], tim["estimate"]["meets_clock"]]]
    if tim.get("synthesis"):
        s = tim["synthesis"]
        trows.append(["Yosys netlist", s["logic_levels"], s["critical_path_ns"], s["fmax_mhz"], s["meets_clock"]])
    parts.append(_table(["", "LUT levels", "critical path (ns)", "Fmax (MHz)", "meets clock"], trows))
    parts.append(f"<p class='note'>{html_text(tim['estimate']['model'])}</p>")
    if tim.get("schedule"):
        parts.append(f"<p class='note'>Pipeline: {html_text(schedule_text(tim['schedule']))}.</p>")
    parts += _data_accuracy_html(r.get("data_accuracy"))
    parts += _verification_html(r.get("verification"))
    parts.append("<h2>Layers</h2>")
    rows = []
    for layer in r["layers"]:
        x = layer["resources"]
        rows.append([layer["name"], layer["op"], "x".join(map(str, layer["shape"])), layer["type"],
                     layer["latency_cycles"], layer["reuse_factor"], layer["multiplications"],
                     x["dsp"], x["lut"], x["ff"], x["bram"], layer.get("implemented_in", "")])
    parts.append(_table(["layer", "op", "shape", "type", "latency", "reuse", "mult.", "DSP", "LUT", "FF",
                         "BRAM36", "built in"], rows))
    parts.append("<script>window.addEventListener('load', function () {"
                 " document.querySelectorAll('img').forEach(function (im) {"
                 " im.setAttribute('data-decoded', im.naturalWidth + 'x' + im.naturalHeight); }); });</script>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
