"""Core's report formats: registered through the hook, and each one gives back what the tables hold."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from typing import Any

import openpyxl
import pytest

from bridge.plugins import get_plugins
from bridge.reports.charts import Bars, Heatmap, Lines, StackedBars
from bridge.reports.formats import Report, ReportFormat, Table
from bridge.reports.html import danish
from bridge.reports.spreadsheet import sheet_names
from bridge.reports.suppression import SUPPRESSED

FIRST = Table(
    title="Udvikling: Familieforhold",
    columns=("Kommune", "Børn", "Andel (%)", "Første dato", "Note"),
    keys=("municipality", "children", "share_pct", "first_on", "note"),
    rows=[
        ["Odense (461)", 12, 41.7, date(2023, 1, 31), None],
        ["Århus (751)", SUPPRESSED, SUPPRESSED, date(2024, 2, 29), "æøå, \"citat\"; semikolon"],
    ],
    chart=Bars(label="Kommune", value="Andel (%)"),
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


def _expected_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def test_csv_with_several_tables_is_written_in_titled_blocks() -> None:
    text = fmt("csv").render(REPORT).decode()
    blocks = text.split("\r\n\r\n")
    assert len(blocks) == 2
    for block, table in zip(blocks, REPORT.tables, strict=True):
        rows = list(csv.reader(io.StringIO(block)))
        assert rows[0] == [table.title]
        assert rows[1] == list(table.columns)
        assert rows[2:] == [[_expected_text(v) for v in row] for row in table.rows]


def test_csv_with_one_table_is_plain_csv() -> None:
    text = fmt("csv").render(Report(kind="k", title="t", tables=[FIRST])).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(FIRST.columns)
    assert rows[2] == ["Århus (751)", SUPPRESSED, SUPPRESSED, "2024-02-29", "æøå, \"citat\"; semikolon"]


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


def test_xlsx_has_a_sheet_per_table_that_reads_back_as_the_table() -> None:
    book = openpyxl.load_workbook(io.BytesIO(fmt("xlsx").render(REPORT)))
    assert book.sheetnames == ["Rapport", "Udvikling Familieforhold", "Før efter"]
    for name, table in zip(book.sheetnames[1:], REPORT.tables, strict=True):
        rows = [list(r) for r in book[name].iter_rows(values_only=True)]
        assert rows[0] == list(table.columns)
        back = [[v.date() if isinstance(v, datetime) else v for v in row] for row in rows[1:]]
        assert back == [list(row) for row in table.rows]
    index = [list(r) for r in book["Rapport"].iter_rows(values_only=True)]
    assert index[0][0] == "Prøverapport"
    assert ["Udvikling Familieforhold", "Udvikling: Familieforhold", None] in index


def test_sheet_names_are_safe_short_and_unique() -> None:
    names = sheet_names(["a/b", "x" * 40, "x" * 40, "Rapport", ""])
    assert names == ["a b", "x" * 31, "x" * 27 + " (2)", "Rapport (2)", "Tabel"]


def test_terminal_table_shows_titles_and_values() -> None:
    text = fmt("table").render(REPORT).decode()
    for expected in ("Prøverapport", "Udvikling: Familieforhold", "Odense (461)", "41.7", "2023-01-31", "<5"):
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
    assert "skjult (&lt;5)" in bars
    grid = render_svg(Heatmap(row_axis="r", column_axis="c"), ("r", "1", "2"), [["1", 9, SUPPRESSED], ["2", 0, 5]])
    assert grid.count("<rect") == 4
    assert "&lt;5" in grid
    line = render_svg(Lines(x="d", series=("v",), colors=("#333333",)), ("d", "v"),
                      [[date(2023, 1, 1), 4], [date(2023, 6, 1), "ikke vurderet"], [date(2024, 1, 1), 2]])  # fmt: skip
    assert line.count("<polyline") == 1
    assert "ikke vurderet" in line
    assert "<script" not in bars + grid + line
