"""Chart primitives, drawn as static inline SVG from a table's own (already suppressed) values.

Every report draws with these five primitives; formats that can draw (HTML) ask
:func:`render_svg` for the markup. Why hand-drawn SVG and not a chart library is written
down in docs/reports.md. The rules every primitive keeps, so a leader cannot misread a chart:

- **Better is up (or right).** A :class:`Scale` says which end is better; that end is drawn
  at the top, and both ends carry their words (Trivselslinealen: "i trivsel" at the top,
  "truet trivsel" at the bottom). A child whose scores fall from 5 to 1 is drawn rising.
- **A cell that is not a number is never drawn as one.** "ikke vurderet" sits in its own
  lane under the plot, apart from the scale; a suppressed or hidden cell is drawn as a
  outlined "skjult" band that says why, never as a zero.
- **Labels never overprint.** Date axes pick calendar ticks (months, quarters, years) that
  fit their labels; long labels wrap instead of being clipped.
- **Danish formats** from :mod:`bridge.reports.danish`, the same as the tables beside them.

The SVG needs no fonts, scripts or styles from outside, so a report stays one file, and the
output is a pure function of the table, so tests can compare it byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Any, Literal

from bridge.reports import danish

WIDTH = 720
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif"
MUTED = "#7b8794"
INK = "#1f2933"
GRID = "#e3e7eb"
WITHHELD_FILL = "#eef1f4"
CHAR_WIDTH = 0.6
"""A conservative average glyph width, in units of the font size, for laying out labels."""


@dataclass(frozen=True)
class Scale:
    """A value axis: its range, which end is better (drawn at the top) and the words for the ends."""

    low: float
    high: float
    better: Literal["low", "high"] | None = None
    low_label: str = ""
    high_label: str = ""
    step: float = 1.0


TRIVSELSLINEALEN = Scale(1, 5, better="low", low_label="i trivsel", high_label="truet trivsel")
"""KL's Trivselslinealen: 1 = i trivsel … 5 = truet trivsel, so 1 is drawn at the top."""


@dataclass(frozen=True)
class StackedBars:
    """One horizontal bar per row, split into ``parts`` (shares in % adding up to 100).

    ``label`` names the column (or columns, joined with " · ") that label each bar. A row
    whose shares are withheld is drawn as an outlined band that says so.
    """

    label: str | tuple[str, ...]
    parts: Sequence[str]
    colors: Sequence[str]


@dataclass(frozen=True)
class Bars:
    """One horizontal bar per row: the ``value`` column on a 0…``maximum`` scale (per cent by default).

    ``interval`` names the columns of a lower and an upper limit (a confidence interval), drawn
    as a whisker across the bar; ``reference`` a value drawn as a dashed line across every
    bar (a norm), worded by ``reference_label``. ``persons`` says whom a withheld value has too few of.
    """

    label: str | tuple[str, ...]
    value: str
    maximum: float = 100.0
    color: str = "#1f6fb2"
    percent: bool = True
    interval: tuple[str, str] | None = None
    reference: float | None = None
    reference_label: str = ""
    persons: str = "børn"


@dataclass(frozen=True)
class DivergingBars:
    """One bar per row from a zero line: the better direction to the right, both directions named.

    ``better`` says whether a negative value (a fall on Trivselslinealen) or a positive one is
    the improvement; improvements are drawn to the right in ``better_color``.
    """

    label: str | tuple[str, ...]
    value: str
    better: Literal["negative", "positive"] = "negative"
    better_label: str = "forbedring"
    worse_label: str = "forværring"
    unit: str = ""
    better_color: str = "#2e7d32"
    worse_color: str = "#c62828"


@dataclass(frozen=True)
class Heatmap:
    """The table as a grid: the first column labels the rows, every other column is a count.

    The grid shows every value, so a format that draws it need not repeat the table.
    ``end_labels`` words the first and last row and column (e.g. "i trivsel", "truet trivsel").
    """

    row_axis: str
    column_axis: str
    color: tuple[int, int, int] = (31, 111, 178)
    end_labels: tuple[str, str] = ("", "")


@dataclass(frozen=True)
class Lines:
    """One line per ``series`` column against the ``x`` column (dates or labels), on ``scale``.

    A cell that is not a number (``"ikke vurderet"``) is drawn in a lane of its own under the
    plot, named by the cell's text, never on the scale.
    """

    x: str
    series: Sequence[str]
    colors: Sequence[str]
    scale: Scale = TRIVSELSLINEALEN


Chart = StackedBars | Bars | DivergingBars | Heatmap | Lines


# -- drawing helpers ---------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def text_width(content: str, size: float) -> float:
    """The width a label takes at ``size`` px, estimated generously so laid-out labels never touch."""
    return len(content) * size * CHAR_WIDTH


def _text(
    x: float,
    y: float,
    content: object,
    *,
    anchor: str = "start",
    size: int = 12,
    fill: str = INK,
    css: str = "",
    weight: str = "",
) -> str:
    cls = f' class="{css}"' if css else ""
    bold = f' font-weight="{weight}"' if weight else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"{cls}{bold} '
        f'style="{FONT}">{escape(str(content))}</text>'
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, *, title: str = "", css: str = "") -> str:
    tip = f"<title>{escape(title)}</title>" if title else ""
    cls = f' class="{css}"' if css else ""
    # Withheld values get a dashed outline: an empty band that is not a zero.
    edge = ' stroke="#9aa5b1" stroke-dasharray="4 3"' if fill == WITHHELD_FILL else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" fill="{fill}"{edge}{cls}>{tip}</rect>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str = GRID, *, dash: bool = False) -> str:
    pattern = ' stroke-dasharray="4 3"' if dash else ""
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"{pattern}/>'


def _svg(height: float, body: list[str], label: str, kind: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" width="100%" '
        f'role="img" aria-label="{escape(label)}" class="chart chart-{kind}">{"".join(body)}</svg>'
    )


_LEGEND_LINE = 18


def _legend(items: Sequence[tuple[str, str]], y: float, x0: float) -> tuple[list[str], float]:
    """The legend from ``x0``, in as many lines as its names need; and the height it adds below one line."""
    body, x, line = [], x0, 0
    for name, color in items:
        width = 28 + text_width(name, 12)
        if x > x0 and x + width - 12 > WIDTH - 8:
            x, line = x0, line + 1
        top = y + line * _LEGEND_LINE
        body.append(_rect(x, top - 10, 12, 12, color))
        body.append(_text(x + 16, top, name, size=12, css="legend"))
        x += width
    return body, line * _LEGEND_LINE


def wrap(label: str, width: float, size: int = 12, lines: int = 2) -> list[str]:
    """``label`` in at most ``lines`` lines that fit ``width`` px; only a longer last line is shortened."""
    words, out, current = label.split(), [], ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if text_width(candidate, size) <= width or not current:
            current = candidate
        else:
            out.append(current)
            current = word
    out.append(current)
    if len(out) > lines:
        rest = " ".join(out[lines - 1 :])
        keep = max(int(width / (size * CHAR_WIDTH)) - 1, 1)
        out = [*out[: lines - 1], rest[:keep] + "…"]
    return out


def _row_label(label: str, right: float, middle: float, width: float) -> list[str]:
    """A bar's label right-aligned at ``right``, wrapped to two lines around ``middle``."""
    parts = wrap(label, width)
    first = middle + 4 - 7 * (len(parts) - 1)
    return [_text(right, first + 14 * i, part, anchor="end", css="row-label") for i, part in enumerate(parts)]


def _marker_band(
    x: float, y: float, w: float, h: float, *, raw: object, what: str, persons: str = "børn"
) -> list[str]:
    return [
        _rect(x, y, w, h, WITHHELD_FILL, title=f"skjult ({raw})", css="withheld"),
        _text(x + 8, y + h * 0.7, f"{what} skjult: færre end 5 {persons} ({raw})", size=11, fill="#52606d"),
    ]


# -- the primitives ----------------------------------------------------------------------

_LABEL_WIDTH = 200
"""Room for row labels left of the bars: two lines of ~30 characters."""


def _labels(at: dict[str, int], names: str | tuple[str, ...], row: Sequence[Any]) -> str:
    chosen = (names,) if isinstance(names, str) else names
    return " · ".join(danish.cell(row[at[name]]) for name in chosen)


def _stacked(chart: StackedBars, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    at = {c: i for i, c in enumerate(columns)}
    left, right, bar, gap = _LABEL_WIDTH + 16, WIDTH - 20, 24, 10
    span = right - left
    body, extra = _legend(list(zip(chart.parts, chart.colors, strict=True)), 16, left)
    y = 32.0 + extra
    for row in rows:
        label = _labels(at, chart.label, row)
        body += _row_label(label, left - 8, y + bar / 2, _LABEL_WIDTH)
        values = [_number(row[at[p]]) for p in chart.parts]
        if any(v is None for v in values):
            marker = next(row[at[p]] for p, v in zip(chart.parts, values, strict=True) if v is None)
            body += _marker_band(left, y, span, bar, raw=marker, what="Fordelingen er")
        else:
            x = float(left)
            for part, value, color in zip(chart.parts, values, chart.colors, strict=True):
                width = span * (value or 0.0) / 100.0
                body.append(_rect(x, y, width, bar, color, title=f"{label} · {part}: {danish.percent(value or 0)}"))
                shown = danish.percent(value or 0, 0)
                if width > text_width(shown, 11) + 6:
                    body.append(_text(x + width / 2, y + bar * 0.68, shown, anchor="middle", size=11, fill="#ffffff"))
                x += width
        y += bar + gap
    return _svg(y + 4, body, "stablede søjler", "stacked")


def _bars(chart: Bars, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    at = {c: i for i, c in enumerate(columns)}
    left, right, bar, gap = _LABEL_WIDTH + 16, WIDTH - 80, 22, 10
    span = right - left

    def x_of(value: float) -> float:
        return left + span * min(max(value / chart.maximum, 0.0), 1.0)

    body: list[str] = []
    y = 8.0
    if chart.reference is not None:
        body.append(_text(x_of(chart.reference), 14, chart.reference_label, anchor="middle", size=11, css="reference"))
        y = 24.0
    top = y
    for row in rows:
        label = _labels(at, chart.label, row)
        raw = row[at[chart.value]]
        value = _number(raw)
        body += _row_label(label, left - 8, y + bar / 2, _LABEL_WIDTH)
        if value is None:
            body += _marker_band(left, y, span, bar, raw=raw, what="Værdien er", persons=chart.persons)
        else:
            body.append(_rect(left, y, span, bar, "#eceff1"))
            shown = danish.percent(value) if chart.percent else danish.number(value)
            body.append(_rect(left, y, x_of(value) - left, bar, chart.color, title=f"{label}: {shown}"))
            body.append(_text(right + 6, y + bar * 0.68, shown, size=11))
            low, high = (_number(row[at[c]]) for c in chart.interval) if chart.interval else (None, None)
            if low is not None and high is not None:
                middle = y + bar / 2
                tip = f"95 %-interval {danish.cell(low)}–{danish.cell(high)}"
                body.append(
                    f'<g class="interval" stroke="{INK}" stroke-width="1.5"><title>{escape(tip)}</title>'
                    + _line(x_of(low), middle, x_of(high), middle, INK)
                    + _line(x_of(low), middle - 6, x_of(low), middle + 6, INK)
                    + _line(x_of(high), middle - 6, x_of(high), middle + 6, INK)
                    + "</g>"
                )
        y += bar + gap
    if chart.reference is not None:
        line = _line(x_of(chart.reference), top - 4, x_of(chart.reference), y - gap + 4, INK, dash=True)
        body.append(line.replace("<line ", '<line class="reference" ', 1))
    return _svg(y + 2, body, "søjler", "bars")


def _diverging(chart: DivergingBars, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    at = {c: i for i, c in enumerate(columns)}
    left, right, bar, gap, top = _LABEL_WIDTH + 16, WIDTH - 20, 22, 10, 34
    middle = (left + right) / 2
    values = [_number(row[at[chart.value]]) for row in rows]
    extent = max([abs(v) for v in values if v is not None] + [0.5])
    extent = float(int(extent * 2 + 0.999)) / 2  # up to the next half step
    half = (right - left) / 2 - 60  # room for the value labels at both ends
    sign = -1.0 if chart.better == "negative" else 1.0
    body = [
        _text(left - 8, 16, chart.value, anchor="end", size=12, weight="600"),
        _text(middle + 6, 16, f"{chart.better_label} →", size=12, fill=chart.better_color, css="better-end"),
        _text(middle - 6, 16, f"← {chart.worse_label}", anchor="end", size=12, fill=chart.worse_color, css="worse-end"),
    ]
    y = float(top)
    for row, value in zip(rows, values, strict=True):
        label = _labels(at, chart.label, row)
        body += _row_label(label, left - 8, y + bar / 2, _LABEL_WIDTH)
        raw = row[at[chart.value]]
        if value is None:
            body += _marker_band(left, y, right - left, bar, raw=raw, what="Ændringen er")
        else:
            reach = sign * value / extent * half  # > 0: towards "better", drawn right
            color = chart.better_color if reach > 0 else chart.worse_color
            x = middle if reach >= 0 else middle + reach
            shown = danish.signed(value) + (f" {chart.unit}" if chart.unit else "")
            body.append(_rect(x, y, abs(reach), bar, color, title=f"{label}: {shown}", css="change"))
            if reach >= 0:
                body.append(_text(middle + reach + 6, y + bar * 0.68, shown, size=11))
            else:
                body.append(_text(middle + reach - 6, y + bar * 0.68, shown, anchor="end", size=11))
        y += bar + gap
    body.append(_line(middle, top - 6, middle, y - gap + 6, MUTED))
    return _svg(y + 4, body, f"ændring, {chart.better_label} mod højre", "diverging")


def _heatmap(chart: Heatmap, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cell, left, top = 56, 170, 58
    counts = [v for row in rows for v in (_number(x) for x in row[1:]) if v is not None]
    peak = max(counts, default=0.0) or 1.0
    red, green, blue = chart.color
    width = cell * (len(columns) - 1)
    body = [_text(left + width / 2, 14, chart.column_axis, anchor="middle", size=12, weight="600")]
    first, last = chart.end_labels
    if first:
        body.append(_text(left, 30, first, size=11, fill=MUTED))
        body.append(_text(left + width, 30, last, anchor="end", size=11, fill=MUTED))
    for j, column in enumerate(columns[1:]):
        body.append(_text(left + cell * j + cell / 2, top - 8, column, anchor="middle", size=12))
    for i, row in enumerate(rows):
        y = top + cell * i
        name = danish.cell(row[0])
        if first and i in (0, len(rows) - 1):
            name = f"{name} {first if i == 0 else last}"
        body.append(_text(left - 10, y + cell / 2 + 4, name, anchor="end", size=12))
        for j, raw in enumerate(row[1:]):
            x = left + cell * j
            value = _number(raw)
            if value is None:
                body.append(_rect(x + 1, y + 1, cell - 2, cell - 2, WITHHELD_FILL, title=f"skjult ({raw})"))
                body.append(_text(x + cell / 2, y + cell / 2 + 4, raw, anchor="middle", size=12, fill="#52606d"))
                continue
            share = value / peak
            fill = "#f7f9fb" if value == 0 else f"rgb({_mix(red, share)},{_mix(green, share)},{_mix(blue, share)})"
            tip = f"{row[0]} → {columns[j + 1]}: {danish.number(value)}"
            body.append(_rect(x + 1, y + 1, cell - 2, cell - 2, fill, title=tip))
            ink = "#ffffff" if share > 0.55 else INK
            body.append(_text(x + cell / 2, y + cell / 2 + 4, danish.number(value), anchor="middle", size=12, fill=ink))
    bottom = top + cell * len(rows)
    body.append(_text(left - 10, top - 8, chart.row_axis, anchor="end", size=12, weight="600"))
    return _svg(bottom + 8, body, "før/efter-tabel", "heatmap")


def _mix(channel: int, share: float) -> int:
    """Blend from a pale tint (few children) to the full colour (the largest cell)."""
    return round(246 + (channel - 246) * (0.15 + 0.85 * share))


# -- line charts: the scale, the x axis and the lane for what was not assessed ----------

_MONTH_STEPS = (1, 2, 3, 6, 12, 24, 60)


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _first_of(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def date_ticks(first: date, last: date, room: float) -> list[tuple[date, str]]:
    """Calendar ticks between ``first`` and ``last`` whose labels fit side by side in ``room`` px.

    Months when they fit ("feb. 2024"), then quarters, half years, years ("2024"); a span
    too short to hold a calendar tick is labelled at its first and last day.
    """
    start, end = _month_index(first), _month_index(last)
    for step in _MONTH_STEPS:
        yearly = step >= 12
        ticks = [
            _first_of(i)
            for i in range(start, end + 1)
            if i % step == 0 and first <= _first_of(i) <= last and (not yearly or i % 12 == 0)
        ]
        labels = [(t, str(t.year) if yearly else danish.month(t)) for t in ticks]
        if not labels:
            continue
        widest = max(text_width(label, 11) for _, label in labels)
        if len(labels) * (widest + 16) <= room:
            if len(labels) >= 2:
                return labels
            break
    return [(first, danish.day(first))] if first == last else [(first, danish.day(first)), (last, danish.day(last))]


def _lines(chart: Lines, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    at = {c: i for i, c in enumerate(columns)}
    scale = chart.scale
    body, extra = _legend(list(zip(chart.series, chart.colors, strict=True)), 16, 130)
    left, right, top, bottom = 130, WIDTH - 24, 44 + extra, 224 + extra
    lane = bottom + 34
    xs = [row[at[chart.x]] for row in rows]
    position = _x_positions(xs, left + 16, right - 16)
    span = scale.high - scale.low

    def y_of(value: float) -> float:
        share = (value - scale.low) / span
        return top + share * (bottom - top) if scale.better == "low" else bottom - share * (bottom - top)

    if scale.better:
        body.append(_text(left - 12, top - 18, "↑ bedre", anchor="end", size=11, fill=MUTED, css="better-up"))
    tick = scale.low
    while tick <= scale.high + 1e-9:
        y = y_of(tick)
        body.append(_line(left, y, right, y))
        number = danish.number(tick)
        body.append(_text(left - 10, y + 4, number, anchor="end", size=12, css="tick-y"))
        words = scale.low_label if tick == scale.low else scale.high_label if abs(tick - scale.high) < 1e-9 else ""
        if words:
            beside = left - 10 - text_width(number, 12) - 6
            body.append(_text(beside, y + 4, words, anchor="end", size=11, fill=MUTED, css="scale-end"))
        tick += scale.step
    missing = [
        (x, row[at[name]], color)
        for name, color in zip(chart.series, chart.colors, strict=True)
        for x, row in zip(position, rows, strict=True)
        if _number(row[at[name]]) is None and row[at[name]] not in (None, "")
    ]
    if missing:
        body.append(_line(left, lane - 16, right, lane - 16, GRID, dash=True))
        body.append(_text(left - 10, lane + 4, str(missing[0][1]), anchor="end", size=11, fill=MUTED, css="lane"))
        for x, raw, _ in missing:
            body.append(
                f'<circle cx="{x:.1f}" cy="{lane:.1f}" r="5" fill="#ffffff" stroke="{MUTED}" stroke-width="2" '
                f'class="not-assessed"><title>{escape(str(raw))}</title></circle>'
            )
    axis = (lane + 22) if missing else (bottom + 20)
    body += _x_axis(xs, position, axis, left, right)
    for name, color in zip(chart.series, chart.colors, strict=True):
        values = [_number(row[at[name]]) for row in rows]
        points = [(x, y_of(v)) for x, v in zip(position, values, strict=True) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.5"/>')
        for x, value, raw_x in zip(position, values, xs, strict=True):
            if value is not None:
                body.append(
                    f'<circle cx="{x:.1f}" cy="{y_of(value):.1f}" r="4.5" fill="{color}" class="point" '
                    f'data-value="{value:g}"><title>{escape(_x_label(raw_x))}: {danish.number(value)}</title></circle>'
                )
    return _svg(axis + 14, body, "linjediagram, bedre opad", "lines")


def _x_axis(xs: Sequence[Any], position: Sequence[float], y: float, left: float, right: float) -> list[str]:
    body = [_line(left, y - 14, right, y - 14, MUTED)]
    if xs and all(isinstance(x, date) for x in xs):
        first, last = min(xs), max(xs)
        for tick, label in date_ticks(first, last, right - left):
            x = _date_x(tick, first, last, left + 16, right - 16)
            body.append(_line(x, y - 14, x, y - 10, MUTED))
            body.append(_text(x, y + 2, label, anchor="middle", size=11, css="tick-x"))
        return body
    labels = [_x_label(x) for x in xs]
    widest = max((text_width(label, 11) for label in labels), default=0.0)
    every = 1
    while len(labels) > 1 and (right - left) / ((len(labels) - 1) / every + 1) < widest + 16:
        every += 1
    for i, (x, label) in enumerate(zip(position, labels, strict=True)):
        if i % every == 0:
            body.append(_text(x, y + 2, label, anchor="middle", size=11, css="tick-x"))
    return body


def _date_x(day: date, first: date, last: date, left: float, right: float) -> float:
    days = (last - first).days
    if days == 0:
        return (left + right) / 2
    return left + (right - left) * (day - first).days / days


def _x_positions(xs: Sequence[Any], left: float, right: float) -> list[float]:
    if not xs:
        return []
    if all(isinstance(x, date) for x in xs):
        first, last = min(xs), max(xs)
        return [_date_x(x, first, last, left, right) for x in xs]
    if len(xs) == 1:
        return [(left + right) / 2]
    return [left + (right - left) * i / (len(xs) - 1) for i in range(len(xs))]


def _x_label(value: Any) -> str:
    return danish.cell(value)


def render_svg(chart: Chart, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The chart as one ``<svg>`` element (escaped text, no external references)."""
    if isinstance(chart, StackedBars):
        return _stacked(chart, columns, rows)
    if isinstance(chart, Bars):
        return _bars(chart, columns, rows)
    if isinstance(chart, DivergingBars):
        return _diverging(chart, columns, rows)
    if isinstance(chart, Heatmap):
        return _heatmap(chart, columns, rows)
    return _lines(chart, columns, rows)
