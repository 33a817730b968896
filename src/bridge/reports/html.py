"""``--format html``: one self-contained file with Danish number formats, charts and print CSS.

Nothing is loaded from anywhere: the styles are inline, the charts are inline SVG drawn by
:mod:`bridge.reports.charts`, there are no scripts, and a Content-Security-Policy forbids the
browser to fetch anything. Text is escaped by the template engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from bridge.reports.charts import Heatmap, render_svg
from bridge.reports.formats import Report, Table
from bridge.reports.suppression import HIDDEN, SUPPRESSED

_DANISH_DIGITS = str.maketrans({",": ".", ".": ","})


def danish(value: Any) -> str:
    """A cell as a Danish reader expects it: 1.234,5 and 10.01.2022; None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nej"
    if isinstance(value, int | float):
        return f"{value:,}".translate(_DANISH_DIGITS)
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return str(value)


def cell_class(value: Any) -> str:
    if value in (SUPPRESSED, HIDDEN):
        return "num sup"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "num"
    return ""


@dataclass(frozen=True)
class _Block:
    table: Table
    svg: Markup | None
    show_table: bool


@dataclass(frozen=True)
class _Section:
    anchor: str
    title: str
    blocks: list[_Block]


def _sections(report: Report) -> list[_Section]:
    """Consecutive tables with the same ``section`` share one heading."""
    sections: list[_Section] = []
    for table in report.tables:
        # The SVG is built from escaped text only, so it may go into the page as markup.
        svg = Markup(render_svg(table.chart, table.columns, table.rows)) if table.chart else None
        if not sections or sections[-1].title != table.section:
            sections.append(_Section(f"afsnit-{len(sections) + 1}", table.section, []))
        sections[-1].blocks.append(_Block(table, svg, show_table=not isinstance(table.chart, Heatmap)))
    return sections


_environment = Environment(
    loader=PackageLoader("bridge.reports", "templates"),
    autoescape=select_autoescape(["html", "j2"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters["danish"] = danish
_environment.filters["cell_class"] = cell_class


class Html:
    name = "html"
    suffix = "html"

    def render(self, report: Report) -> bytes:
        template = _environment.get_template("report.html.j2")
        return template.render(report=report, sections=_sections(report)).encode()
