"""Small SVG bar charts for report.html: no plotting library (importing matplotlib alone
took longer than the rest of a compile), deterministic text output, crisp at any zoom.

A chart is a list of panels; each panel draws horizontal bars (``hbars``: a label, a
start, a length, an optional text after the bar, per row and series) or vertical bars
(``vbars``: one value per label) into its own box with a title and a linear axis.
"""

from __future__ import annotations

import html
import math

FONT = "font-family='sans-serif'"


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def nice_ticks(top: float, n: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [k * step for k in range(int(math.ceil(top / step - 1e-9)) + 1)]


def _tick_text(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e5 else f"{v:.3g}"


class Svg:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.items: list[str] = []

    def text(self, x: float, y: float, s, size: int = 11, anchor: str = "start", extra: str = "") -> None:
        self.items.append(f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' {FONT}"
                          f"{' ' + extra if extra else ''}>{_esc(s)}</text>")

    def rect(self, x: float, y: float, w: float, h: float, colour: str) -> None:
        self.items.append(f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(w, 0):.1f}' height='{max(h, 0):.1f}' "
                          f"fill='{colour}'/>")

    def line(self, x1: float, y1: float, x2: float, y2: float, colour: str = "#999", dash: bool = False) -> None:
        self.items.append(f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' stroke='{colour}'"
                          f"{' stroke-dasharray=' + chr(39) + '4 3' + chr(39) if dash else ''} stroke-width='1'/>")

    def render(self) -> str:
        return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{self.width}' height='{self.height}' "
                f"viewBox='0 0 {self.width} {self.height}'>"
                f"<rect width='100%' height='100%' fill='white'/>" + "".join(self.items) + "</svg>")


def hbars(svg: Svg, box: tuple[float, float, float, float], title: str, xlabel: str, labels: list[str],
          series: list[tuple[str, str, list[float], list[float], list[str]]], xmax: float,
          mark: float | None = None) -> None:
    """Horizontal bars in ``box`` = (x, y, w, h): per series (name, colour, starts,
    lengths, texts) one bar per label, series side by side within a row."""
    x0, y0, w, h = box
    left = 8 + 6.5 * max((len(s) for s in labels), default=1)
    px, pw, py, ph = x0 + left, w - left - 10, y0 + 22, h - 22 - 34
    svg.text(x0 + w / 2, y0 + 14, title, 12, "middle")
    ticks = nice_ticks(xmax)
    scale = pw / ticks[-1]
    for t in ticks:
        svg.line(px + t * scale, py, px + t * scale, py + ph, "#e4e4e4")
        svg.text(px + t * scale, py + ph + 13, _tick_text(t), 9, "middle")
    svg.text(px + pw / 2, py + ph + 28, xlabel, 10, "middle")
    rows = max(len(labels), 1)
    row_h = ph / rows
    bar_h = row_h * 0.7 / max(len(series), 1)
    for r, label in enumerate(labels):
        yr = py + r * row_h + row_h * 0.15
        svg.text(px - 5, py + (r + 0.5) * row_h + 4, label, 10, "end")
        for k, (_, colour, starts, lengths, texts) in enumerate(series):
            yb = yr + k * bar_h
            svg.rect(px + starts[r] * scale, yb, lengths[r] * scale, bar_h, colour)
            if texts[r]:
                svg.text(px + (starts[r] + lengths[r]) * scale + 3, yb + bar_h / 2 + 3.5, texts[r], 9)
    if mark is not None and mark <= ticks[-1]:
        svg.line(px + mark * scale, py, px + mark * scale, py + ph, "#d62728", dash=True)
    svg.line(px, py, px, py + ph, "#666")
    if len(series) > 1:
        for k, (name, colour, *_rest) in enumerate(series):
            svg.rect(px + pw - 90, py + 4 + 14 * k, 10, 10, colour)
            svg.text(px + pw - 76, py + 13 + 14 * k, name, 9)


def vbars(svg: Svg, box: tuple[float, float, float, float], title: str, labels: list[str],
          values: list[float], colour: str) -> None:
    """Vertical bars in ``box`` = (x, y, w, h), one per label, labels rotated below."""
    x0, y0, w, h = box
    px, pw, py = x0 + 42, w - 52, y0 + 20
    ph = h - 20 - 58
    svg.text(x0 + w / 2, y0 + 13, title, 11, "middle")
    ticks = nice_ticks(max(values + [1.0]))
    scale = ph / ticks[-1]
    for t in ticks:
        y = py + ph - t * scale
        svg.line(px, y, px + pw, y, "#e4e4e4")
        svg.text(px - 4, y + 3, _tick_text(t), 9, "end")
    n = max(len(labels), 1)
    slot = pw / n
    for i, (label, v) in enumerate(zip(labels, values)):
        xb = px + i * slot + slot * 0.15
        svg.rect(xb, py + ph - v * scale, slot * 0.7, v * scale, colour)
        xc, yc = px + (i + 0.5) * slot, py + ph + 10
        svg.text(xc, yc, label, 9, "end", f"transform='rotate(-30 {xc:.1f} {yc:.1f})'")
    svg.line(px, py + ph, px + pw, py + ph, "#666")
