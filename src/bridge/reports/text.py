"""Text formats: a terminal table (rich), CSV and JSON.

CSV of a report with one table is plain CSV (a header row, then the rows). A report with
several tables is written as blocks: a row holding only the table's title, the header, the
rows, and an empty row between blocks. JSON holds every table with its column keys and
labels, the rows as objects keyed by column key, and the report's notes.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

from bridge.reports.formats import Report, Table, plain


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(plain(value))


class TerminalTable:
    """``--format table``: rich tables as plain text (no colour codes, safe to pipe)."""

    name = "table"
    suffix = "txt"

    def __init__(self, width: int = 120) -> None:
        self.width = width

    def render(self, report: Report) -> bytes:
        out = io.StringIO()
        console = Console(file=out, width=self.width, color_system=None, force_terminal=False, highlight=False)
        console.print(report.title, style="bold")
        for table in report.tables:
            shown = RichTable(title=table.title, title_justify="left", caption=table.note or None)
            for column in table.columns:
                shown.add_column(column, overflow="fold")
            for row in table.rows:
                shown.add_row(*(_cell_text(v) for v in row))
            console.print(shown)
        for note in report.notes:
            console.print(note, soft_wrap=False)
        return out.getvalue().encode()


class Csv:
    """``--format csv``: UTF-8, comma separated, dates in ISO 8601, decimal point."""

    name = "csv"
    suffix = "csv"

    def render(self, report: Report) -> bytes:
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")
        blocks = len(report.tables) > 1
        for i, table in enumerate(report.tables):
            if blocks:
                if i:
                    writer.writerow([])
                writer.writerow([table.title])
            writer.writerow(table.columns)
            writer.writerows([["" if v is None else plain(v) for v in row] for row in table.rows])
        return out.getvalue().encode()


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
            "notes": list(report.notes),
            "tables": [_table_json(t) for t in report.tables],
        }
        return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode()
