"""``--format xlsx``: a contents sheet, then one worksheet per table, each an Excel table.

The first sheet holds the report's title, period and key figures, and a contents list with
each table's full title (sheet names are cut at Excel's 31 characters) linked to its sheet.
Every table's sheet has the column labels in row 1 and the values from row 2 as typed cells
(numbers, dates, text; an empty cell for no value), formatted as an Excel table with Danish
number formats, so it filters, sorts and reads back as the table it came from. A suppression
marker ("<5", "–", "skjult") stays text: it is not a number.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.table import Table as ExcelTable
from openpyxl.worksheet.table import TableStyleInfo
from openpyxl.worksheet.worksheet import Worksheet

from bridge.reports.formats import Report, Table, is_percent

_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_MAX_SHEET_NAME = 31
INDEX_SHEET = "Indhold"
INTEGER = "#,##0"
DECIMAL = "#,##0.0##"
PERCENT = '0.0" %"'
DAY = "dd-mm-yyyy"
TIMESTAMP = "dd-mm-yyyy hh:mm"
_STYLE = TableStyleInfo(name="TableStyleMedium2", showRowStripes=True)


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


def _width(values: Sequence[Any]) -> float:
    return min(max((len(str(v)) for v in values if v is not None), default=8) + 3, 60)


def _number_format(column: str, value: Any) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, datetime):
        return TIMESTAMP
    if isinstance(value, date):
        return DAY
    if is_percent(column):
        return PERCENT
    return INTEGER if isinstance(value, int) else DECIMAL


def _cell(value: Any) -> Any:
    return None if value == "" else value


def _header(labels: Sequence[str]) -> list[str]:
    """Excel tables need unique, non-empty header texts."""
    seen: set[str] = set()
    out = []
    for i, label in enumerate(labels, start=1):
        text = label.strip() or f"Kolonne {i}"
        while text.lower() in seen:
            text += " "
        seen.add(text.lower())
        out.append(text)
    return out


def _write_table(sheet: Worksheet, table: Table, number: int) -> None:
    sheet.append(_header(table.columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in table.rows:
        sheet.append([_cell(v) for v in row])
    for j, column in enumerate(table.columns, start=1):
        letter = get_column_letter(j)
        for i, row in enumerate(table.rows, start=2):
            number_format = _number_format(column, row[j - 1])
            if number_format:
                sheet[f"{letter}{i}"].number_format = number_format
        sheet.column_dimensions[letter].width = _width([column, *(row[j - 1] for row in table.rows)])
    sheet.freeze_panes = "A2"
    last = f"{get_column_letter(len(table.columns))}{len(table.rows) + 1}"
    if table.rows:
        excel = ExcelTable(displayName=f"Tabel{number}", ref=f"A1:{last}")
        excel.tableStyleInfo = _STYLE
        sheet.add_table(excel)
    if table.note:
        sheet.cell(row=len(table.rows) + 3, column=1, value=table.note).font = Font(italic=True)


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
        if report.period:
            index.append(["Periode", report.period])
        if report.key_figures:
            index.append([])
            index.append(["Nøgletal"])
            index.cell(row=index.max_row, column=1).font = Font(bold=True)
            for figure in report.key_figures:
                index.append([figure.label, _cell(figure.value)])
                value = index.cell(row=index.max_row, column=2)
                if isinstance(figure.value, int | float) and not isinstance(figure.value, bool):
                    value.number_format = PERCENT if figure.percent else INTEGER
        index.append([])
        index.append(["Tabel", "Ark", "Note"])
        for cell in index[index.max_row]:
            cell.font = Font(bold=True)
        names = sheet_names([t.title for t in report.tables])
        for number, (name, table) in enumerate(zip(names, report.tables, strict=True), start=1):
            index.append([table.title, name, table.note or None])
            link = index.cell(row=index.max_row, column=1)
            link.hyperlink = Hyperlink(ref=link.coordinate, location=f"{quote_sheetname(name)}!A1")
            link.style = "Hyperlink"
            _write_table(book.create_sheet(name), table, number)
        if report.notes:
            index.append([])
            for note in report.notes:
                index.append([note])
        index.column_dimensions["A"].width = 60
        index.column_dimensions["B"].width = 34
        index.column_dimensions["C"].width = 80
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()
