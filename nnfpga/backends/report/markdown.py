"""report.md: the report as Markdown tables."""

from __future__ import annotations

from nnfpga.backends.escape import markdown_text

KEYS = ("dsp", "lut", "ff", "bram")


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return out + [""]


def report_markdown(r: dict) -> str:
    res, tim = r["resources"], r["timing"]
    lines = [f"# {markdown_text(r['model'])} on {r['part']} at {r['clock_mhz']:g} MHz", "",
             f"nnfpga {r['nnfpga_version']}; top entity {markdown_text(r.get('top', r['model']))}.", ""]
    for w in r.get("warnings", []):
        lines.append(f"> **warning:** {markdown_text(w)}")
    if r.get("warnings"):
        lines.append("")
    lines += ["## Latency and throughput", ""]
    lines += _table(["latency (cycles)", "latency (ns)", "II (cycles)", "events/s",
                     "keeps up with 40 MHz bunch crossings", "Fmax estimate (MHz)"],
                    [[r["latency"]["cycles"], r["latency"]["ns"], r["ii_cycles"], r["events_per_second"],
                      r["keeps_up_with_40mhz"], tim["estimate"]["fmax_mhz"]]])
    lines += ["## Resources", ""]
    syn = res.get("synthesis") or {}
    rows = [["analytic estimate", *(res["estimate"][k] for k in KEYS), res["estimate_detail"]["uram"],
             res["estimate_detail"]["carry8"]]]
    for src in ("verilog", "vhdl"):
        s = syn.get(src)
        if s:
            rows.append([f"Yosys ({src})", *(s[k] for k in KEYS), s.get("uram", 0), s.get("carry8", 0)])
    if syn.get("ratio"):
        rows.append(["estimate / Yosys", *(syn["ratio"].get(k) for k in KEYS), None, None])
    rows.append(["available", *(res["available"][k] for k in KEYS), res["available"].get("uram"), None])
    rows.append(["% of part (estimate)", *(res["utilisation_percent"][k] for k in KEYS),
                 res["utilisation_percent"].get("uram"), None])
    lines += _table(["", "DSP", "LUT", "FF", "BRAM36", "URAM", "CARRY8"], rows)
    lines.append(f"Fits the part: {_fmt(res['fits'])}.  LUT breakdown (estimate): " +
                 ", ".join(f"{k} {v:,}" for k, v in res["estimate_detail"]["lut_by_kind"].items()) + ".")
    lines.append("")
    lines += ["## Timing", ""]
    trows = [["estimate (analytic)", tim["estimate"]["logic_levels"], tim["estimate"]["carry4_on_path"],
              tim["estimate"]["critical_path_ns"], tim["estimate"]["fmax_mhz"], tim["estimate"]["meets_clock"]]]
    if tim.get("synthesis"):
        s = tim["synthesis"]
        trows.append(["Yosys netlist", s["logic_levels"], s["carry4_on_path"], s["critical_path_ns"],
                      s["fmax_mhz"], s["meets_clock"]])
    lines += _table(["", "LUT levels", "CARRY4 on path", "critical path (ns)", "Fmax (MHz)",
                     f"meets {r['clock_mhz']:g} MHz"], trows)
    lines.append(f"Model: {tim['estimate']['model']}.")
    if tim.get("schedule"):
        lines.append(f"Pipeline: {schedule_text(tim['schedule'])}.")
    lines.append("")
    if syn:
        for src in ("verilog", "vhdl"):
            s = syn.get(src)
            if s:
                lines.append(f"Yosys on the {src}: `{s['command']}` in {s['seconds']:.1f} s ({s['tool']}).")
        lines.append("")
    lines += data_accuracy_markdown(r.get("data_accuracy"))
    lines += verification_markdown(r.get("verification"))
    lines += ["## Layers", ""]
    rows = []
    for layer in r["layers"]:
        x = layer["resources"]
        t = (layer.get("timing") or {}) if layer["op"] != "Input" else {}  # an Input has no logic: "-"
        rows.append([markdown_text(layer["name"]), layer["op"], "x".join(map(str, layer["shape"])), layer["type"],
                     layer["latency_cycles"], layer["reuse_factor"], layer["multiplications"],
                     x["dsp"], x["lut"], x["ff"], x["bram"], t.get("fmax_mhz"),
                     markdown_text(layer.get("implemented_in", ""))])
    lines += _table(["layer", "op", "shape", "type", "latency", "reuse", "mult.", "DSP", "LUT", "FF", "BRAM36",
                     "Fmax est.", "built in"], rows)
    return "\n".join(lines)


def schedule_text(s: dict) -> str:
    """One sentence on the pipeline schedule (``timing.schedule``)."""
    text = (f"{s['pipeline']}, registers placed for {s['clock_mhz']:g} MHz ({s['family']} delays)"
            if s.get("clock_mhz") else str(s.get("pipeline")))
    if s.get("critical_path_ns") is not None:
        text += (f"; longest planned path {s['critical_path_ns']:g} ns (Fmax {s['fmax_mhz']:g} MHz; "
                 "products and adder trees, the output stages are in the estimate above)")
    return text


def _element(e: dict) -> str:  # as nnfpga.compiler.data_accuracy.element_name (below this layer)
    return "(" + ", ".join(map(str, e["element"])) + ")"


def data_accuracy_rows(d: dict) -> dict:
    """The tables of the accuracy-on-data section (shared by report.md and report.html):
    ``summary``, ``outputs`` and ``saturated`` as (header, rows)."""
    dec = d["decision"]
    summary = [["samples", d["samples"]], ["compared with", d["against"]],
               ["max |fixed - framework|", d["max_abs_error"]],
               ["guaranteed bound (max)", d["error_bound_max"]],
               ["observed max within the bound", d["within_bound"]],
               ["mean |fixed - framework|", d["mean_abs_error"]],
               [f"decisions agree ({dec['rule']})", f"{100 * dec['agreement']:.2f}%"]]
    lab = d.get("labels")
    if lab:
        summary += [[f"{lab['metric']} of the firmware (labels)", lab["fixed"]],
                    [f"{lab['metric']} of the framework (labels)", lab["framework"]]]
    sat = d["saturation"]
    summary.append([f"input values outside {sat['input_type']}", f"{sat['values']} in {sat['samples']} samples"])
    outputs = [[o["index"], o["max_abs_error"], o["mean_abs_error"], o["error_bound"]] for o in d["per_output"]]
    saturated = [[_element(e), e["count"]] for e in sat["elements"]]
    return {"summary": (["", "value"], summary),
            "outputs": (["output", "max abs error", "mean abs error", "guaranteed bound"], outputs),
            "saturated": (["input element", "saturated values"], saturated)}


def data_accuracy_note(d: dict) -> str:
    """Why the bound may differ from what the data shows."""
    sat = d["saturation"]
    lo, hi = sat["input_range"]
    text = (f"Fixed point: the golden model (nnfpga.emulate, bit-exact with the firmware); framework: "
            f"{d['against']} on the same samples ({d['data']}).  The guaranteed bound holds for inputs in "
            f"[{lo:g}, {hi:g}] against the float network")
    if sat["values"]:
        text += f"; {sat['values']} input values lie outside that range and saturate, so it does not cover them"
    return text + "."


def data_accuracy_markdown(d: dict | None) -> list[str]:
    if not d:
        return []
    lines = ["## Accuracy on data", "", markdown_text(data_accuracy_note(d)), ""]
    tables = {k: (head, [[markdown_text(c) if isinstance(c, str) else c for c in row] for row in rows])
              for k, (head, rows) in data_accuracy_rows(d).items()}
    lines += _table(*tables["summary"])
    lines += _table(*tables["outputs"])
    if tables["saturated"][1]:
        lines += ["Saturated inputs (values outside the input type's range):", ""]
        lines += _table(*tables["saturated"])
    h = d["histogram"]
    lines += ["Deviation |fixed - framework| over all outputs (histogram):", ""]
    lines += _table(["from", "to", "values"],
                    [[h["edges"][i], h["edges"][i + 1], c] for i, c in enumerate(h["counts"])])
    return lines


def verification_rows(v: dict) -> tuple[list[str], list[list]]:
    rows = [[sim, r["samples"], r["mismatches"], r["mismatched_values"], r["seconds"], r["samples_per_second"]]
            for sim, r in v["simulators"].items()]
    return ["simulator", "samples", "mismatching samples", "mismatching values", "seconds", "samples/s"], rows


def verification_markdown(v: dict | None) -> list[str]:
    if not v:
        return []
    verdict = "bit-exact" if v["bit_exact"] else "**MISMATCH**"
    lines = ["## Verification", "",
             f"nnfpga verify on {markdown_text(v['data'])} ({v['samples']} samples): {verdict} against the "
             "golden model.", ""]
    return lines + _table(*verification_rows(v))
