"""Charts as inline SVG, drawn from a table's own (already suppressed) values.

A chart is a small spec attached to a :class:`bridge.reports.formats.Table`; formats that can
draw (HTML) turn it into SVG markup here. The SVG needs no fonts, scripts or styles from
outside, so a report stays one self-contained file. A cell that is not a number (a
suppressed "<5", a hidden "–", "ikke vurderet") is never drawn as a value: bars show the
marker instead, grid cells are grey, and points sit on the axis as hollow rings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Any

WIDTH = 720
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif"
MUTED = "#b0b7bf"
INK = "#1f2933"


@dataclass(frozen=True)
class StackedBars:
    """One horizontal bar per row, split into ``parts`` (shares in % adding up to 100).

    ``label`` names the column (or columns, joined with " · ") that label each bar.
    """

    label: str | tuple[str, ...]
    parts: Sequence[str]
    colors: Sequence[str]


@dataclass(frozen=True)
class Bars:
    """One horizontal bar per row: the ``value`` column on a 0…``maximum`` scale."""

    label: str
    value: str
    maximum: float = 100.0
    color: str = "#1f6fb2"
    unit: str = " %"


@dataclass(frozen=True)
class Heatmap:
    """The table as a grid: the first column labels the rows, every other column is a count.

    The grid shows every value, so a format that draws it need not repeat the table.
    """

    row_axis: str
    column_axis: str
    color: tuple[int, int, int] = (31, 111, 178)


@dataclass(frozen=True)
class Lines:
    """One line per ``series`` column against the ``x`` column (dates or labels)."""

    x: str
    series: Sequence[str]
    colors: Sequence[str]
    y_min: float = 1.0
    y_max: float = 5.0
    y_label: str = ""


Chart = StackedBars | Bars | Heatmap | Lines


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(x: float, y: float, content: object, *, anchor: str = "start", size: int = 12, fill: str = INK) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
        f'style="{FONT}">{escape(str(content))}</text>'
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, *, title: str = "") -> str:
    tip = f"<title>{escape(title)}</title>" if title else ""
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" fill="{fill}">{tip}</rect>'


def _svg(height: float, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" width="100%" '
        f'role="img" aria-label="{escape(label)}" class="chart">{"".join(body)}</svg>'
    )


def _legend(items: Sequence[tuple[str, str]], y: float, x0: float) -> list[str]:
    body, x = [], x0
    for name, color in items:
        body.append(_rect(x, y - 10, 12, 12, color))
        body.append(_text(x + 16, y, name, size=12))
        x += 24 + 7 * len(name)
    return body


def _stacked(chart: StackedBars, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    at = {c: i for i, c in enumerate(columns)}
    names = (chart.label,) if isinstance(chart.label, str) else chart.label
    left, right, bar, gap = 250, WIDTH - 20, 20, 8
    span = right - left
    body = _legend(list(zip(chart.parts, chart.colors, strict=True)), 16, left)
    y = 30.0
    for row in rows:
        label = " · ".join(str(row[at[name]]) for name in names)
        body.append(_text(left - 8, y + bar * 0.72, _clip(label, 38), anchor="end"))
        values = [_number(row[at[p]]) for p in chart.parts]
        if any(v is None for v in values):
            marker = next(row[at[p]] for p, v in zip(chart.parts, values, strict=True) if v is None)
            body.append(_rect(left, y, span, bar, "#eceff1", title="skjult"))
            body.append(_text(left + 6, y + bar * 0.72, f"skjult ({marker})", size=11, fill="#52606d"))
        else:
            x = float(left)
            for part, value, color in zip(chart.parts, values, chart.colors, strict=True):
                width = span * (value or 0.0) / 100.0
                body.append(_rect(x, y, width, bar, color, title=f"{label} · {part}: {value:.1f} %"))
                if width > 34:
                    body.append(
                        _text(x + width / 2, y + bar * 0.72, f"{value:.0f} %", anchor="middle", size=11, fill="#ffffff")
                    )
                x += width
        y += bar + gap
    return _svg(y + 4, body, "stablede søjler")


def _bars(chart: Bars, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    at = {c: i for i, c in enumerate(columns)}
    left, right, bar, gap = 230, WIDTH - 70, 18, 8
    span = right - left
    body: list[str] = []
    y = 8.0
    for row in rows:
        label = str(row[at[chart.label]])
        raw = row[at[chart.value]]
        value = _number(raw)
        baseline = y + bar * 0.72
        body.append(_text(left - 8, baseline, _clip(label, 38), anchor="end"))
        body.append(_rect(left, y, span, bar, "#eceff1"))
        if value is None:
            body.append(_text(left + 6, baseline, f"skjult ({raw})", size=11, fill="#52606d"))
        else:
            width = span * min(max(value / chart.maximum, 0.0), 1.0)
            body.append(_rect(left, y, width, bar, chart.color, title=f"{label}: {value:.1f}{chart.unit}"))
            body.append(_text(right + 6, baseline, f"{value:.1f}{chart.unit}", size=11))
        y += bar + gap
    return _svg(y + 2, body, "søjler")


def _heatmap(chart: Heatmap, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cell, left, top = 56, 150, 44
    counts = [v for row in rows for v in (_number(x) for x in row[1:]) if v is not None]
    peak = max(counts, default=0.0) or 1.0
    red, green, blue = chart.color
    body = [_text(left + cell * (len(columns) - 1) / 2, 14, chart.column_axis, anchor="middle", size=12)]
    for j, column in enumerate(columns[1:]):
        body.append(_text(left + cell * j + cell / 2, top - 8, column, anchor="middle", size=12))
    for i, row in enumerate(rows):
        y = top + cell * i
        body.append(_text(left - 10, y + cell / 2 + 4, row[0], anchor="end", size=12))
        for j, raw in enumerate(row[1:]):
            x = left + cell * j
            value = _number(raw)
            if value is None:
                body.append(_rect(x + 1, y + 1, cell - 2, cell - 2, "#e3e7eb", title=f"skjult ({raw})"))
                body.append(_text(x + cell / 2, y + cell / 2 + 4, raw, anchor="middle", size=12, fill="#52606d"))
                continue
            share = value / peak
            fill = "#f7f9fb" if value == 0 else f"rgb({_mix(red, share)},{_mix(green, share)},{_mix(blue, share)})"
            tip = f"{row[0]} → {columns[j + 1]}: {value:.0f}"
            body.append(_rect(x + 1, y + 1, cell - 2, cell - 2, fill, title=tip))
            ink = "#ffffff" if share > 0.55 else INK
            body.append(_text(x + cell / 2, y + cell / 2 + 4, f"{value:.0f}", anchor="middle", size=12, fill=ink))
    bottom = top + cell * len(rows)
    body.append(_text(left - 10, top - 8, chart.row_axis, anchor="end", size=12))
    return _svg(bottom + 8, body, "før/efter-tabel")


def _mix(channel: int, share: float) -> int:
    """Blend from a pale tint (few children) to the full colour (the largest cell)."""
    return round(246 + (channel - 246) * (0.15 + 0.85 * share))


def _lines(chart: Lines, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    at = {c: i for i, c in enumerate(columns)}
    left, right, top, bottom = 60, WIDTH - 20, 30, 230
    xs = [row[at[chart.x]] for row in rows]
    position = _x_positions(xs, left, right)

    def y_of(value: float) -> float:
        return bottom - (value - chart.y_min) / (chart.y_max - chart.y_min) * (bottom - top)

    body = _legend(list(zip(chart.series, chart.colors, strict=True)), 16, left)
    step = 1.0 if chart.y_max - chart.y_min <= 10 else (chart.y_max - chart.y_min) / 5
    tick = chart.y_min
    while tick <= chart.y_max + 1e-9:
        y = y_of(tick)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e3e7eb"/>')
        body.append(_text(left - 8, y + 4, f"{tick:g}", anchor="end", size=11))
        tick += step
    if chart.y_label:
        body.append(_text(left, bottom + 36, chart.y_label, size=11, fill="#52606d"))
    for x_value, x in zip(xs, position, strict=True):
        body.append(_text(x, bottom + 16, _x_label(x_value), anchor="middle", size=10))
    for name, color in zip(chart.series, chart.colors, strict=True):
        values = [_number(row[at[name]]) for row in rows]
        points = [(x, y_of(v)) for x, v in zip(position, values, strict=True) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.5"/>')
        for x, value, row in zip(position, values, rows, strict=True):
            if value is None:
                body.append(
                    f'<circle cx="{x:.1f}" cy="{bottom:.1f}" r="4" fill="#ffffff" stroke="{MUTED}" stroke-width="2">'
                    f"<title>{escape(str(row[at[name]]))}</title></circle>"
                )
            else:
                body.append(
                    f'<circle cx="{x:.1f}" cy="{y_of(value):.1f}" r="4.5" fill="{color}">'
                    f"<title>{escape(_x_label(row[at[chart.x]]))}: {value:g}</title></circle>"
                )
    return _svg(bottom + 44, body, "linjediagram")


def _x_positions(xs: Sequence[Any], left: float, right: float) -> list[float]:
    if not xs:
        return []
    if all(isinstance(x, date) for x in xs):
        first, last = min(xs), max(xs)
        days = (last - first).days or 1
        return [left + 20 + (right - left - 40) * (x - first).days / days for x in xs]
    if len(xs) == 1:
        return [(left + right) / 2]
    return [left + 20 + (right - left - 40) * i / (len(xs) - 1) for i in range(len(xs))]


def _x_label(value: Any) -> str:
    return value.strftime("%d.%m.%Y") if isinstance(value, date) else str(value)


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def render_svg(chart: Chart, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The chart as one ``<svg>`` element (escaped text, no external references)."""
    if isinstance(chart, StackedBars):
        return _stacked(chart, columns, rows)
    if isinstance(chart, Bars):
        return _bars(chart, columns, rows)
    if isinstance(chart, Heatmap):
        return _heatmap(chart, columns, rows)
    return _lines(chart, columns, rows)
