"""``--format xlsx``: one worksheet per table, and a first sheet with the title, notes and an index
of the sheets (with each table's full title and note).

Each table's sheet has the column labels in row 1 and the values from row 2, as typed cells
(numbers, dates, text), so a sheet reads back as the table it came from.
"""

from __future__ import annotations

import io
import re
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from bridge.reports.formats import Report

_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_MAX_SHEET_NAME = 31
INDEX_SHEET = "Rapport"


def sheet_names(titles: list[str]) -> list[str]:
    """Excel-safe, unique sheet names (at most 31 characters) for ``titles``, in order."""
    names: list[str] = []
    taken = {INDEX_SHEET.lower()}
    for title in titles:
        base = " ".join(_FORBIDDEN.sub(" ", title).split())[:_MAX_SHEET_NAME] or "Tabel"
        name, n = base, 1
        while name.lower() in taken:
            n += 1
            suffix = f" ({n})"
            name = base[: _MAX_SHEET_NAME - len(suffix)] + suffix
        taken.add(name.lower())
        names.append(name)
    return names


def _width(values: list[Any]) -> float:
    return min(max((len(str(v)) for v in values if v is not None), default=8) + 2, 60)


class Xlsx:
    name = "xlsx"
    suffix = "xlsx"

    def render(self, report: Report) -> bytes:
        book = Workbook()
        index = book.active
        assert index is not None  # a new workbook always has one sheet
        index.title = INDEX_SHEET
        index.append([report.title])
        index["A1"].font = Font(bold=True, size=14)
        for note in report.notes:
            index.append([note])
        index.append([])
        index.append(["Ark", "Tabel", "Note"])
        names = sheet_names([t.title for t in report.tables])
        for name, table in zip(names, report.tables, strict=True):
            index.append([name, table.title, table.note])
            sheet = book.create_sheet(name)
            sheet.append(list(table.columns))
            for cell in sheet[1]:
                cell.font = Font(bold=True)
            for row in table.rows:
                sheet.append(list(row))
            sheet.freeze_panes = "A2"
            for j, column in enumerate(table.columns, start=1):
                sheet.column_dimensions[get_column_letter(j)].width = _width(
                    [column, *(row[j - 1] for row in table.rows)]
                )
        index.column_dimensions["A"].width = 34
        index.column_dimensions["B"].width = 60
        index.column_dimensions["C"].width = 80
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()
