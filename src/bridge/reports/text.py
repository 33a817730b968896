"""Text formats: a terminal table (rich), CSV and JSON.

CSV holds one table per file, in one of two dialects: ``excel-da`` (the default) is what a
Danish Excel opens by double-click — ``;`` between fields, a decimal comma, dates as
``29-02-2024``, UTF-8 with a byte-order mark; ``machine`` is for programs — ``,``, a decimal
point, ISO 8601 dates, UTF-8 without a mark. A report with several tables is written as
several files (:meth:`Csv.render_files`), the key figures first. JSON holds every table with
its column keys and labels, the rows as objects keyed by column key, the key figures, the
period and the notes.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from bridge.errors import ConfigError
from bridge.reports import danish
from bridge.reports.formats import KeyFigure, Report, Table, column_key, plain

CsvDialectName = Literal["excel-da", "machine"]


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str
    decimal: str
    date_format: str
    bom: bool

    def cell(self, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, float):
            return repr(value).replace(".", self.decimal)
        if isinstance(value, datetime):
            return value.strftime(self.date_format + " %H:%M:%S")
        if isinstance(value, date):
            return value.strftime(self.date_format)
        return value


CSV_DIALECTS: dict[str, CsvDialect] = {
    "excel-da": CsvDialect(delimiter=";", decimal=",", date_format="%d-%m-%Y", bom=True),
    "machine": CsvDialect(delimiter=",", decimal=".", date_format="%Y-%m-%d", bom=False),
}
KEY_FIGURES_TITLE = "Nøgletal"


def key_figure_table(report: Report) -> Table:
    """The report's period and key figures as a table (for formats that only hold tables)."""
    rows: list[list[Any]] = [["Periode", report.period, ""]] if report.period else []
    rows += [[f.label, f.value, "%" if f.percent else ""] for f in report.key_figures]
    columns, keys = ("Nøgletal", "Værdi", "Enhed"), ("label", "value", "unit")
    return Table(title=KEY_FIGURES_TITLE, columns=columns, keys=keys, rows=rows)


def _figure_text(figure: KeyFigure) -> str:
    value = figure.value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return danish.percent(value) if figure.percent else danish.number(value)
    return danish.cell(value)


class TerminalTable:
    """``--format table``: rich tables as plain text (no colour codes, no markup read, safe to pipe)."""

    name = "table"
    suffix = "txt"

    def __init__(self, width: int = 120) -> None:
        self.width = width

    def render(self, report: Report) -> bytes:
        out = io.StringIO()
        console = Console(file=out, width=self.width, color_system=None, force_terminal=False, highlight=False)
        console.print(Text(report.title, style="bold"))
        if report.period:
            console.print(Text(f"Periode: {report.period}"))
        for figure in report.key_figures:
            console.print(Text(f"  {figure.label}: {_figure_text(figure)}"))
        for table in report.tables:
            shown = RichTable(
                title=Text(table.title), title_justify="left", caption=Text(table.note) if table.note else None
            )
            for column in table.columns:
                shown.add_column(Text(column), overflow="fold")
            for row in table.rows:
                shown.add_row(*(Text(danish.cell(v)) for v in row))
            console.print(shown)
        for note in report.notes:
            console.print(Text(note), soft_wrap=False)
        return out.getvalue().encode()


class Csv:
    """``--format csv``: one table per file, in the Danish Excel dialect unless told otherwise."""

    name = "csv"
    suffix = "csv"

    def __init__(self, dialect: CsvDialectName = "excel-da") -> None:
        if dialect not in CSV_DIALECTS:
            raise ConfigError(f"no CSV dialect {dialect!r} (choose {' or '.join(CSV_DIALECTS)})")
        self.dialect = CSV_DIALECTS[dialect]

    def table(self, table: Table) -> bytes:
        """One table as the bytes of one CSV file: the header, then the rows."""
        out = io.StringIO(newline="")
        writer = csv.writer(out, delimiter=self.dialect.delimiter, lineterminator="\r\n")
        writer.writerow(table.columns)
        writer.writerows([[self.dialect.cell(v) for v in row] for row in table.rows])
        return ("\ufeff" if self.dialect.bom else "").encode() + out.getvalue().encode()

    def render_files(self, report: Report) -> list[tuple[str, bytes]]:
        """Every table as its own file, named ``KIND-NN-title.csv``; the key figures first."""
        tables = list(report.tables)
        if report.key_figures or report.period:
            tables.insert(0, key_figure_table(report))
        return [
            (f"{report.kind}-{i:02d}-{column_key(t.title).replace('_', '-')[:60]}.csv", self.table(t))
            for i, t in enumerate(tables, start=1)
        ]

    def render(self, report: Report) -> bytes:
        """A report of one table; more tables need :meth:`render_files` (one file per table)."""
        if len(report.tables) != 1:
            raise ConfigError(
                f"this report has {len(report.tables)} tables and CSV holds one table per file: "
                "give --out DIRECTORY to write one file per table"
            )
        return self.table(report.tables[0])


def _table_json(table: Table) -> dict[str, Any]:
    keys = table.column_keys()
    return {
        "title": table.title,
        "section": table.section,
        "note": table.note,
        "columns": [{"key": k, "label": c} for k, c in zip(keys, table.columns, strict=True)],
        "rows": [{k: plain(v) for k, v in zip(keys, row, strict=True)} for row in table.rows],
    }


class Json:
    """``--format json``: one object with the report's tables and notes."""

    name = "json"
    suffix = "json"

    def render(self, report: Report) -> bytes:
        document = {
            "kind": report.kind,
            "title": report.title,
            "period": report.period,
            "key_figures": [
                {"key": column_key(f.label), "label": f.label, "value": plain(f.value), "percent": f.percent}
                for f in report.key_figures
            ],
            "notes": list(report.notes),
            "tables": [_table_json(t) for t in report.tables],
        }
        return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode()
