"""The presentation of an exploration: its Pareto front, as Markdown, CSV, PNG plots and one
HTML page.

Input is the list of point records the runner stores (one plain dict per design point, see
docs/explore.md); nothing here knows how the points were evaluated.

Design:

* The objectives follow the figures the run has: LUT and DSP come from Yosys when any
  successful point was synthesised (``--synth``), otherwise from the analytic estimate, so
  a front never mixes the two; accuracy is the AUC, else the classification accuracy, else
  the largest deviation from the reference (the source model), whichever the run measured. FF is shown but
  is no objective: it follows LUT and would only widen the front.
* Only points that compiled, fit the part and meet the clock can be on the front: a
  smaller design that cannot run at the trigger's clock is no trade-off. A point missing
  one of the objective figures cannot be compared and is left out too (and counted).
* Every output depends on the records only, never on the run (``seconds``, ``worker``,
  ``finished_utc`` are not shown): the same records give byte-identical files, PNGs
  included (matplotlib's Agg canvas, no pyplot state, no ``Software`` metadata). Records
  are ordered by their ``index`` first, so their order in the store does not matter.
* Every user-provided string (title, parameter names and values, error messages, commands)
  goes through `nnfpga.backends.escape` for its target format.
* Each file is written to a temporary file in its folder and renamed over the old one, so a
  run killed mid-write leaves the previous file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from nnfpga.backends.escape import html_text, markdown_text, matplotlib_text
from nnfpga.backends.report.html import figure
from nnfpga.explore.store import write_atomic

__all__ = ["Objective", "objectives", "pareto_front", "write_front_outputs",
           "front_markdown", "front_csv", "index_html", "front_plots", "objectives_json"]


@dataclass(frozen=True)
class Objective:
    """One figure the front trades off: the record field, ``"min"`` or ``"max"``, a label."""
    column: str
    sense: str
    label: str


#: Accuracy figures in the order they are preferred as the objective.
_ACCURACY_OBJECTIVES = (("acc_auc", "max", "AUC"), ("acc_accuracy", "max", "accuracy"),
                        ("acc_max_deviation", "min", "max |fixed - reference|"))

#: Accuracy columns shown when the run measured them, with their labels.
_ACCURACY_COLUMNS = (("acc_auc", "AUC"), ("acc_auc_reference", "AUC (reference)"),
                     ("acc_accuracy", "accuracy"), ("acc_accuracy_reference", "accuracy (reference)"),
                     ("acc_max_deviation", "max |fixed - reference|"),
                     ("acc_mean_deviation", "mean |fixed - reference|"), ("acc_agreement", "agreement"))

PLOT_DIR = "plots"
GREY, HIGHLIGHT, LINE = "#b0b0b0", "#d62728", "#1f77b4"


# ----------------------------------------------------------------------------- figures
def _number(v) -> float | None:
    """A record's figure as a float, or None when absent or not a number (NaN included)."""
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return None if math.isnan(v) else v


def _ok(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("status") == "ok"]


def _has(records: list[dict], column: str) -> bool:
    return any(_number(r.get(column)) is not None for r in _ok(records))


def _source(records: list[dict], figure: str) -> str:
    """``syn_<figure>`` when any successful point has that Yosys figure, else ``est_<figure>``."""
    return f"syn_{figure}" if _has(records, f"syn_{figure}") else f"est_{figure}"


def _kind(column: str) -> str:
    return "Yosys" if column.startswith("syn_") else "estimate"


def objectives(records: list[dict]) -> list[Objective]:
    """The objectives of the front for these records: latency (ns), LUT, DSP and, when the
    run measured it, one accuracy figure (see the module docstring)."""
    lut, dsp = _source(records, "lut"), _source(records, "dsp")
    out = [Objective("latency_ns", "min", "latency (ns)"),
           Objective(lut, "min", f"LUT ({_kind(lut)})"),
           Objective(dsp, "min", f"DSP ({_kind(dsp)})")]
    for column, sense, label in _ACCURACY_OBJECTIVES:
        if _has(records, column):
            out.append(Objective(column, sense, label))
            break
    return out


def _eligible(r: dict) -> bool:
    return r.get("status") == "ok" and r.get("fits") is True and r.get("meets_clock") is True


def _costs(r: dict, objs: list[Objective]) -> tuple[float, ...] | None:
    """The record's objective values, each turned so that smaller is better; None when one
    is missing."""
    values = [_number(r.get(o.column)) for o in objs]
    if any(v is None for v in values):
        return None
    return tuple(v if o.sense == "min" else -v for v, o in zip(values, objs))


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def _sort_key(r: dict, objs: list[Objective]):
    lut = next((o.column for o in objs if o.column.endswith("_lut")), "est_lut")
    inf = float("inf")
    lat, n = _number(r.get("latency_ns")), _number(r.get(lut))
    index = r.get("index")
    return (inf if lat is None else lat, inf if n is None else n, index is None, index or 0)


def pareto_front(records: list[dict], objectives: list[Objective]) -> list[dict]:
    """The records no other eligible record dominates (no worse in every objective and
    better in one), among those that are ok, fit the part, meet the clock and have every
    objective figure. Equal points are all kept. Sorted by latency, LUT, index."""
    for o in objectives:
        if o.sense not in ("min", "max"):
            raise ValueError(f"objective {o.column}: sense must be 'min' or 'max', not {o.sense!r}")
    points = [(r, c) for r in records if _eligible(r) and (c := _costs(r, objectives)) is not None]
    front = [r for r, c in points if not any(_dominates(d, c) for _, d in points)]
    return sorted(front, key=lambda r: _sort_key(r, objectives))


def _front_2d(points: list[tuple[float, float]], senses: tuple[str, str]) -> list[tuple[float, float]]:
    """The points not dominated in one plane, sorted by x: the staircase a plot draws."""
    sx, sy = (1 if s == "min" else -1 for s in senses)
    costs = [(sx * x, sy * y) for x, y in points]
    keep = {p for p, c in zip(points, costs) if not any(_dominates(d, c) for d in costs)}
    return sorted(keep)


# ----------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class _Column:
    key: str          # record field, or "params.<name>" for a swept parameter
    label: str


def _param_names(records: list[dict]) -> list[str]:
    """The swept parameters' names, in the order first seen over the records."""
    names: dict[str, None] = {}
    for r in _by_index(records):
        for k in (r.get("params") or {}):
            names.setdefault(str(k), None)
    return list(names)


def _by_index(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: (r.get("index") is None, r.get("index") or 0))


def _columns(records: list[dict]) -> list[_Column]:
    cols = [_Column("index", "point")]
    cols += [_Column(f"params.{name}", name) for name in _param_names(records)]
    cols += [_Column("latency_cycles", "latency (cycles)"), _Column("latency_ns", "latency (ns)"),
             _Column("ii_cycles", "II (cycles)")]
    for name, label in (("lut", "LUT"), ("ff", "FF"), ("dsp", "DSP"), ("bram", "BRAM")):
        col = _source(records, name)
        cols.append(_Column(col, f"{label} ({_kind(col)})"))
    fmax = _source(records, "fmax_mhz")
    cols.append(_Column(fmax, f"Fmax (MHz, {_kind(fmax)})"))
    cols += [_Column(c, label) for c, label in _ACCURACY_COLUMNS if _has(records, c)]
    return cols


def _cell(r: dict, key: str):
    if key.startswith("params."):
        params = r.get("params") or {}
        name = key[len("params."):]
        return _MISSING if name not in params else _Param(params[name])
    return r.get(key)


class _Param:
    """A parameter value as given: strings as they are, anything else in JSON notation."""
    def __init__(self, value):
        self.value = value

    def __str__(self) -> str:
        if isinstance(self.value, str):
            return self.value
        return json.dumps(self.value, sort_keys=True, default=str)


_MISSING = object()


def _text(v) -> str:
    """A cell for the human-readable tables (escaping is the caller's)."""
    if v is None or v is _MISSING:
        return "-"
    if isinstance(v, _Param):
        return str(v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def _raw(v) -> str:
    """A cell for the CSV: full precision, empty when absent."""
    if v is None or v is _MISSING:
        return ""
    if isinstance(v, _Param):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def _counts(records: list[dict], front: list[dict], objs: list[Objective]) -> dict[str, int]:
    ok = _ok(records)
    eligible = [r for r in ok if _eligible(r)]
    return {"total": len(records), "ok": len(ok), "failed": len(records) - len(ok),
            "not_eligible": len(ok) - len(eligible),
            "incomplete": sum(1 for r in eligible if _costs(r, objs) is None),
            "front": len(front)}


def _counts_sentence(c: dict[str, int]) -> str:
    s = (f"{c['total']} points: {c['ok']} ok, {c['failed']} failed, "
         f"{c['not_eligible']} not fitting the part or missing the clock")
    if c["incomplete"]:
        s += f", {c['incomplete']} without every objective figure"
    return s + f"; {c['front']} on the front."


def _objectives_sentence(objs: list[Objective]) -> str:
    parts = [f"{'lowest' if o.sense == 'min' else 'highest'} {o.label}" for o in objs]
    res = [o for o in objs if o.column[:4] in ("syn_", "est_")]
    names = {"Yosys": "Yosys synthesis (--synth)", "estimate": "the analytic estimate"}
    kinds = {_kind(o.column) for o in res}
    if len(kinds) == 1:
        source = f"Resources are from {names[kinds.pop()]}."
    else:  # some figure only one point's synthesis reported: say which is which
        source = "; ".join(f"{o.label.split()[0]} from {names[_kind(o.column)]}" for o in res) + "."
    return (f"Objectives: {', '.join(parts)}. {source} Only points that fit "
            "the part and meet the clock can be on the front; a point is on it when no other "
            "point is at least as good in every objective and better in one.")


# ----------------------------------------------------------------------------- Markdown / CSV
def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _fence(command: str) -> str:
    # a fence longer than any backtick run in the command, so no line of it closes the block
    longest = max((len(m) for m in re.findall(r"`+", command)), default=0)
    return "`" * max(3, longest + 1)


def _command(r: dict) -> str:
    cmd = str(r.get("command") or "")
    # kept verbatim so it can be pasted; only a control character is written as an escape
    return "\n".join(_printable(line) for line in cmd.split("\n"))


def _printable(line: str) -> str:
    return "".join(c if " " <= c or c == "\t" else f"\\x{ord(c):02x}" for c in line)


def front_markdown(records: list[dict], title: str) -> str:
    """front.md: objectives, the front's table, each front point's command, the counts."""
    objs = objectives(records)
    front = pareto_front(records, objs)
    cols = _columns(records)
    lines = [f"# {markdown_text(title)}", "", _objectives_sentence(objs), ""]
    if front:
        lines += [_md_row([markdown_text(c.label) for c in cols]), _md_row(["---"] * len(cols))]
        lines += [_md_row([markdown_text(_text(_cell(r, c.key))) for c in cols]) for r in front]
        lines += ["", "## Commands", ""]
        for r in front:
            cmd = _command(r)
            fence = _fence(cmd)
            lines += [f"Point {_text(r.get('index'))}:", "", fence + "sh", cmd, fence, ""]
    else:
        lines += ["**No design point is on the front**: none compiled, fit the part and met the "
                  "clock with every objective figure.", ""]
    lines += [_counts_sentence(_counts(records, front, objs)), ""]
    return "\n".join(lines)


def front_csv(records: list[dict]) -> str:
    """front.csv: the front's rows with the same columns as front.md, full precision."""
    objs = objectives(records)
    front = pareto_front(records, objs)
    cols = _columns(records)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    # machine-readable header: the record's field names, a swept parameter by its name
    w.writerow([c.key[len("params."):] if c.key.startswith("params.") else c.key for c in cols])
    for r in front:
        w.writerow([_raw(_cell(r, c.key)) for c in cols])
    return buf.getvalue()


# ----------------------------------------------------------------------------- plots
def _png(fig) -> bytes:
    buf = io.BytesIO()
    # no "Software" entry (it names the matplotlib version): same records, same bytes
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _plot(records: list[dict], front: list[dict], x: Objective, y: Objective, title: str) -> bytes:
    fig = figure(7.0, 4.6)
    ax = fig.add_subplot(1, 1, 1)

    def xy(rs):
        pts = [(_number(r.get(x.column)), _number(r.get(y.column))) for r in rs]
        return [(a, b) for a, b in pts if a is not None and b is not None]

    ok = _ok(records)
    every, best = xy(ok), xy(front)
    usable, excluded = xy([r for r in ok if _eligible(r)]), xy([r for r in ok if not _eligible(r)])
    if usable:
        ax.scatter([a for a, _ in usable], [b for _, b in usable], s=18, color=GREY, zorder=1,
                   label=f"fit the part, meet the clock ({len(usable)})")
    if excluded:  # hollow: cheap points that cannot run are no trade-off, but show where they are
        ax.scatter([a for a, _ in excluded], [b for _, b in excluded], s=18, facecolors="none",
                   edgecolors=GREY, zorder=1, label=f"do not fit or miss the clock ({len(excluded)})")
    if best:
        stairs = _front_2d(best, (x.sense, y.sense))
        ax.step([a for a, _ in stairs], [b for _, b in stairs], where="post", color=LINE,
                linewidth=1.2, zorder=2, label="trade-off in this plane")
        ax.scatter([a for a, _ in best], [b for _, b in best], s=36, color=HIGHLIGHT, zorder=3,
                   label=f"Pareto front ({len(best)})")
    else:
        # low in the frame, where it hides no point (the axes scale to the points)
        ax.text(0.5, 0.04 if every else 0.5, "no point on the front" if every else "no successful point",
                transform=ax.transAxes, ha="center", va="bottom" if every else "center", color="#666")
    if every:
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel(matplotlib_text(x.label))
    ax.set_ylabel(matplotlib_text(y.label))
    ax.set_title(matplotlib_text(title), fontsize=10)
    ax.grid(True, color="#eee", zorder=0)
    fig.tight_layout()
    return _png(fig)


def front_plots(records: list[dict], title: str) -> dict[str, bytes]:
    """The plots as PNG bytes by relative path: latency against LUT and DSP and, when the
    run measured accuracy, accuracy against LUT. Failed points are not plotted."""
    objs = objectives(records)
    front = pareto_front(records, objs)
    lat, lut, dsp = objs[0], objs[1], objs[2]
    out = {f"{PLOT_DIR}/latency_vs_lut.png": _plot(records, front, lut, lat, f"{title}: latency vs LUT"),
           f"{PLOT_DIR}/latency_vs_dsp.png": _plot(records, front, dsp, lat, f"{title}: latency vs DSP")}
    if len(objs) > 3:
        out[f"{PLOT_DIR}/accuracy_vs_lut.png"] = _plot(records, front, lut, objs[3],
                                                       f"{title}: {objs[3].label} vs LUT")
    return out


# ----------------------------------------------------------------------------- HTML
CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #eee; } td.text { text-align: left; }
tr.failed td { background: #fdd; } tr.front td { background: #efe; } tr.excluded td { color: #888; }
img { display: block; margin: 0.5em 0 1.5em; max-width: 100%; }
pre { background: #f6f6f6; padding: 0.4em 0.8em; overflow-x: auto; }
.note { color: #666; font-size: 0.9em; }
"""


_TEXT_CLASS = " class='text'"


def _is_text(c) -> bool:
    return isinstance(c, str) or (isinstance(c, _Param) and isinstance(c.value, str))


def _html_table(header: list[str], rows: list[tuple[str, list]]) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{html_text(h)}</th>" for h in header) + "</tr>"]
    for cls, row in rows:
        cells = "".join(f"<td{_TEXT_CLASS if _is_text(c) else ''}>"
                        f"{html_text(_text(c))}</td>" for c in row)
        out.append(f"<tr class='{cls}'>{cells}</tr>" if cls else f"<tr>{cells}</tr>")
    return "\n".join(out + ["</table>"])


def index_html(records: list[dict], title: str, plots: list[str]) -> str:
    """index.html: summary, plots (relative ``plots/*.png``), the front, every point, the
    front's commands. Small and self-contained apart from the PNG files beside it."""
    objs = objectives(records)
    front = pareto_front(records, objs)
    on_front = {id(r) for r in front}
    cols = _columns(records)
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
             f"<title>nnfpga explore: {html_text(title)}</title>", f"<style>{CSS}</style></head><body>",
             f"<h1>{html_text(title)}</h1>",
             f"<p>{html_text(_counts_sentence(_counts(records, front, objs)))}</p>",
             f"<p class='note'>{html_text(_objectives_sentence(objs))}</p>"]
    for rel in plots:
        name = Path(rel).stem.replace("_", " ")
        parts.append(f"<img alt='{html_text(name)}' src='{html_text(rel)}'>")
    parts.append("<h2>Pareto front</h2>")
    if front:
        parts.append(_html_table([c.label for c in cols],
                                 [("", [_cell(r, c.key) for c in cols]) for r in front]))
    else:
        parts.append("<p><b>No design point is on the front</b>: none compiled, fit the part and "
                     "met the clock with every objective figure.</p>")
    parts.append("<h2>All points</h2>")
    parts.append("<p class='note'>Green: on the front; grey: does not fit the part or misses the "
                 "clock; red: failed, with its error.</p>")
    header = [c.label for c in cols] + ["fits", "meets clock", "status", "error"]
    rows = []
    for r in _by_index(records):
        cls = ("failed" if r.get("status") != "ok" else "front" if id(r) in on_front
               else "" if _eligible(r) else "excluded")
        error = r.get("error")
        rows.append((cls, [_cell(r, c.key) for c in cols] +
                     [r.get("fits"), r.get("meets_clock"), str(r.get("status")),
                      None if error is None else str(error)]))
    parts.append(_html_table(header, rows))
    if front:
        parts.append("<h2>Commands</h2>")
        parts.append("<p class='note'>Each builds the firmware of one front point.</p>")
        for r in front:
            parts.append(f"<p>Point {html_text(_text(r.get('index')))}:</p>"
                         f"<pre><code>{html_text(r.get('command') or '')}</code></pre>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_front_outputs(results_dir: Path, records: list[dict], title: str) -> dict:
    """Write front.md, front.csv, plots/*.png and index.html into ``results_dir``.

    Returns ``{"front": [records on the front], "objectives": [Objective...], "files":
    [relative paths written]}``. The same records (in any order) give the same bytes."""
    results_dir = Path(results_dir)
    records = _by_index(list(records))
    objs = objectives(records)
    front = pareto_front(records, objs)
    plots = front_plots(records, title)
    files: dict[str, bytes] = {"front.md": front_markdown(records, title).encode("utf-8"),
                               "front.csv": front_csv(records).encode("utf-8"),
                               **plots,
                               "index.html": index_html(records, title, list(plots)).encode("utf-8")}
    for rel, data in files.items():
        write_atomic(results_dir / rel, data)
    return {"front": front, "objectives": objs, "files": list(files)}


def objectives_json(objs: list[Objective]) -> list[dict]:
    """The objectives as plain dicts (for a JSON summary)."""
    return [asdict(o) for o in objs]
