"""``--format html``: one self-contained file with Danish number formats, charts and print CSS.

Nothing is loaded from anywhere: the styles are inline, the charts are inline SVG drawn by
:mod:`bridge.reports.charts`, there are no scripts, and a Content-Security-Policy forbids the
browser to fetch anything. Text is escaped by the template engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from bridge.reports import danish
from bridge.reports.charts import Heatmap, render_svg
from bridge.reports.formats import KeyFigure, Report, Table
from bridge.reports.suppression import MARKERS


def cell_class(value: Any) -> str:
    if value in MARKERS:
        return "num sup"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "num"
    return ""


def figure_value(figure: KeyFigure) -> str:
    """A key figure's value in Danish, with its unit; a marker as it is."""
    value = figure.value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return danish.percent(value) if figure.percent else danish.number(value)
    return danish.cell(value)


@dataclass(frozen=True)
class _Block:
    table: Table
    svgs: list[Markup]
    show_table: bool

    @property
    def digits(self) -> list[int | None]:
        """Decimals per column, so a column never mixes 0,5 and -0,75."""
        return [danish.decimals(row[j] for row in self.table.rows) for j in range(len(self.table.columns))]


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
        svgs = [Markup(render_svg(chart, table.columns, table.rows)) for chart in table.charts]
        if not sections or sections[-1].title != table.section:
            sections.append(_Section(f"afsnit-{len(sections) + 1}", table.section, []))
        grid_only = bool(table.charts) and all(isinstance(c, Heatmap) for c in table.charts)
        sections[-1].blocks.append(_Block(table, svgs, show_table=not grid_only))
    return sections


_environment = Environment(
    loader=PackageLoader("bridge.reports", "templates"),
    autoescape=select_autoescape(["html", "j2"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters["danish"] = danish.cell
_environment.filters["figure_value"] = figure_value
_environment.filters["cell_class"] = cell_class


class Html:
    name = "html"
    suffix = "html"

    def render(self, report: Report) -> bytes:
        template = _environment.get_template("report.html.j2")
        return template.render(report=report, sections=_sections(report)).encode()
