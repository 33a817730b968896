"""Core's report formats: registered through the hook, and each one gives back what the tables hold."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import date, datetime

import openpyxl
import pytest

from bridge.errors import ConfigError
from bridge.plugins import get_plugins
from bridge.reports.charts import Bars, Heatmap, Lines, StackedBars
from bridge.reports.danish import cell as danish
from bridge.reports.formats import KeyFigure, Report, ReportFormat, Table
from bridge.reports.spreadsheet import sheet_names
from bridge.reports.suppression import SUPPRESSED
from bridge.reports.text import Csv

FIRST = Table(
    title="Udvikling: Familieforhold",
    columns=("Kommune", "Børn", "Andel (%)", "Første dato", "Note"),
    keys=("municipality", "children", "share_pct", "first_on", "note"),
    rows=[
        ["Odense (461)", 12, 41.7, date(2023, 1, 31), None],
        ["Århus (751)", SUPPRESSED, SUPPRESSED, date(2024, 2, 29), "æøå, \"citat\"; semikolon"],
    ],
    charts=(Bars(label="Kommune", value="Andel (%)"),),
    section="Sammenligning",
)
SECOND = Table(title="Før/efter", columns=("Første", "1", "2"), rows=[["1", 5, 0], ["2", SUPPRESSED, 7]])
REPORT = Report(kind="test-report", title="Prøverapport", tables=[FIRST, SECOND], notes=("En note.",))


def fmt(name: str) -> ReportFormat:
    return get_plugins().report_formats()[name]


def test_core_registers_its_formats_through_the_hook() -> None:
    formats = get_plugins().report_formats()
    assert {"table", "csv", "json", "html", "xlsx"} <= set(formats)
    assert {name: formats[name].suffix for name in ("csv", "json", "html", "xlsx")} == {
        "csv": "csv", "json": "json", "html": "html", "xlsx": "xlsx",
    }  # fmt: skip


def _excel_da(data: bytes) -> list[list[object]]:
    """Read a CSV the way a Danish Excel does: BOM, ';', decimal comma, dd-mm-yyyy dates."""
    assert data.startswith(b"\xef\xbb\xbf"), "no UTF-8 byte-order mark: Excel would guess Windows-1252"
    rows = list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline=""), delimiter=";"))

    def value(text: str) -> object:
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        if re.fullmatch(r"-?\d+,\d+", text):
            return float(text.replace(",", "."))
        if re.fullmatch(r"\d{2}-\d{2}-\d{4}", text):
            day, month, year = map(int, text.split("-"))
            return date(year, month, day)
        return text or None

    return [rows[0], *[[value(t) for t in row] for row in rows[1:]]]


def test_csv_read_back_with_danish_excel_conventions_gives_the_same_values() -> None:
    data = Csv().render(Report(kind="k", title="t", tables=[FIRST]))
    rows = _excel_da(data)
    assert rows[0] == list(FIRST.columns)
    assert rows[1:] == [list(row) for row in FIRST.rows]
    assert b"41,7" in data
    assert b"41.7" not in data


def test_csv_machine_dialect_is_comma_separated_with_iso_dates_and_no_bom() -> None:
    data = Csv("machine").render(Report(kind="k", title="t", tables=[FIRST]))
    assert not data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[1] == ["Odense (461)", "12", "41.7", "2023-01-31", ""]
    assert rows[2][3:] == ["2024-02-29", "æøå, \"citat\"; semikolon"]


def test_csv_holds_one_table_per_file_and_the_key_figures_first() -> None:
    report = Report(
        kind="test-report", title="Prøverapport", tables=[FIRST, SECOND], period="2024",
        key_figures=[KeyFigure("Børn", 17), KeyFigure("Forbedret", 16.5, percent=True)],
    )  # fmt: skip
    with pytest.raises(ConfigError, match="one table per file"):
        Csv().render(report)
    files = Csv().render_files(report)
    assert [name for name, _ in files] == [
        "test-report-01-noegletal.csv", "test-report-02-udvikling-familieforhold.csv", "test-report-03-foer-efter.csv",
    ]  # fmt: skip
    assert _excel_da(files[0][1])[1:] == [["Periode", 2024, None], ["Børn", 17, None], ["Forbedret", 16.5, "%"]]
    assert _excel_da(files[2][1]) == [["Første", "1", "2"], [1, 5, 0], [2, SUPPRESSED, 7]]


def test_json_keys_rows_by_column_key() -> None:
    document = json.loads(fmt("json").render(REPORT))
    assert (document["kind"], document["title"], document["notes"]) == ("test-report", "Prøverapport", ["En note."])
    first, second = document["tables"]
    assert first["columns"][0] == {"key": "municipality", "label": "Kommune"}
    assert first["rows"][0] == {
        "municipality": "Odense (461)", "children": 12, "share_pct": 41.7, "first_on": "2023-01-31", "note": None,
    }  # fmt: skip
    assert first["rows"][1]["children"] == SUPPRESSED
    assert [c["key"] for c in second["columns"]] == ["foerste", "1", "2"]
    assert second["rows"][1] == {"foerste": "2", "1": SUPPRESSED, "2": 7}


def test_xlsx_sheets_are_excel_tables_of_typed_cells_linked_from_the_contents() -> None:
    long_title = "Sammenligning af kommunerne: Daginstitution, skole eller beskæftigelse"
    report = replace(REPORT, tables=[FIRST, replace(SECOND, title=long_title)])
    book = openpyxl.load_workbook(io.BytesIO(fmt("xlsx").render(report)))
    assert book.sheetnames == ["Indhold", "Udvikling Familieforhold", "Sammenligning af kommunerne Dag"]
    for name, table in zip(book.sheetnames[1:], report.tables, strict=True):
        sheet = book[name]
        rows = [list(r) for r in sheet.iter_rows(values_only=True)][: len(table.rows) + 1]
        assert rows[0] == list(table.columns)
        back = [[v.date() if isinstance(v, datetime) else v for v in row] for row in rows[1:]]
        assert back == [list(row) for row in table.rows]
        assert list(sheet.tables) == [f"Tabel{book.sheetnames.index(name)}"]
        assert sheet.tables[next(iter(sheet.tables))].ref == f"A1:{chr(64 + len(table.columns))}{len(table.rows) + 1}"
    first = book["Udvikling Familieforhold"]
    assert (first["B2"].data_type, first["B2"].value, first["B2"].number_format) == ("n", 12, "#,##0")
    assert (first["C2"].data_type, first["C2"].number_format) == ("n", '0.0" %"')
    assert first["D2"].is_date
    assert first["D2"].number_format == "dd-mm-yyyy"
    assert first["E2"].value is None
    assert first["B3"].data_type == "s"  # "<5" is a marker, not a number
    contents = book["Indhold"]
    titles = {c.value: c for c in contents["A"] if c.value}
    assert titles[long_title].hyperlink.location == f"'{book.sheetnames[2]}'!A1"
    assert titles["Udvikling: Familieforhold"].hyperlink.location == "'Udvikling Familieforhold'!A1"


def test_sheet_names_are_safe_short_and_unique() -> None:
    names = sheet_names(["a/b", "x" * 40, "x" * 40, "Rapport", ""])
    assert names == ["a b", "x" * 31, "x" * 27 + " (2)", "Rapport", "Tabel"]
    assert sheet_names(["Indhold"]) == ["Indhold (2)"]


def test_terminal_table_shows_titles_and_values() -> None:
    text = fmt("table").render(REPORT).decode()
    for expected in ("Prøverapport", "Udvikling: Familieforhold", "Odense (461)", "41,7", "31.01.2023", "<5"):
        assert expected in text
    assert "\x1b[" not in text


def test_html_is_self_contained_escaped_and_danish() -> None:
    html = fmt("html").render(REPORT).decode()
    assert html.startswith("<!doctype html>")
    assert '<html lang="da">' in html
    assert "default-src 'none'" in html
    for forbidden in ("<script", "<link", "src=", "url(", "@import", "<iframe"):
        assert forbidden not in html
    assert "&#34;citat&#34;" in html or "&quot;citat&quot;" in html
    assert "41,7" in html
    assert "31.01.2023" in html
    assert html.count("<svg") == 1
    assert "@media print" in html


@pytest.mark.parametrize(
    ("value", "text"),
    [(1234567, "1.234.567"), (-0.33, "-0.33".replace(".", ",")), (41.7, "41,7"), (None, ""), ("<5", "<5"),
     (date(2024, 2, 29), "29.02.2024"), (True, "ja")],
)  # fmt: skip
def test_danish_number_and_date_format(value: object, text: str) -> None:
    assert danish(value) == text


def test_charts_draw_values_and_mark_suppressed_cells() -> None:
    from bridge.reports.charts import render_svg

    stacked = StackedBars(label=("a", "b"), parts=("x", "y"), colors=("#111111", "#222222"))
    bars = render_svg(stacked, ("a", "b", "x", "y"), [["P", "Q", 25.0, 75.0], ["R", "S", SUPPRESSED, 40.0]])
    assert "P · Q" in bars
    assert "#111111" in bars
    assert "skjult: færre end 5 børn (&lt;5)" in bars
    grid = render_svg(Heatmap(row_axis="r", column_axis="c"), ("r", "1", "2"), [["1", 9, SUPPRESSED], ["2", 0, 5]])
    assert grid.count("<rect") == 4
    assert "&lt;5" in grid
    line = render_svg(Lines(x="d", series=("v",), colors=("#333333",)), ("d", "v"),
                      [[date(2023, 1, 1), 4], [date(2023, 6, 1), "ikke vurderet"], [date(2024, 1, 1), 2]])  # fmt: skip
    assert line.count("<polyline") == 1
    assert "ikke vurderet" in line
    assert "<script" not in bars + grid + line
