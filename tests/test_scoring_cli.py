"""``bridge scores child|cohort|coverage`` over the hand-worked fixture, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from bridge.cli.cases import NoSuchCase
from bridge.cli.scores import app
from bridge.errors import ConfigError
from bridge.store import Store
from tests.test_scoring_handworked import load_handworked

runner = CliRunner()


@pytest.fixture
def project(store: Store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bridge.toml naming the fixture store, in the working directory."""
    load_handworked(store)
    monkeypatch.delenv("BRIDGE_DATABASE_URL", raising=False)
    (tmp_path / "bridge.toml").write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_child_as_json(project: Path) -> None:
    result = runner.invoke(app, ["child", "27.24.00-G01-A-21", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["kind"] == "scores-child"
    born = date(2012, 1, 1)  # every child of the fixture
    years = date.today().year - born.year - ((date.today().month, date.today().day) < (1, 1))
    assert document["title"] == f"Scoringer for barnet i sag 27.24.00-G01-A-21, {years} år"
    assert document["period"] == "10.01.2022–15.01.2023"
    assert "child-key" not in result.stdout
    progression = document["tables"][0]["rows"]
    assert [(r["theme"], r["change"], r["verdict"]) for r in progression] == [
        ("Udvikling og adfærd", -2, "Forbedret"),
        ("Sundhedsforhold", -4, "Uændret (bevægelse)"),
    ]


def test_child_refuses_a_cpr_number_and_names_none(project: Path) -> None:
    result = runner.invoke(app, ["child", "010203-1234"])
    assert isinstance(result.exception, ConfigError)
    assert "010203" not in str(result.exception)


@pytest.mark.parametrize("number", ["27.24.00-G01-0102031234-21", "a81f0102031234c9d2e47b66f0aa1c3e"])
def test_child_looks_for_a_case_number_or_key_holding_ten_digits_instead_of_calling_it_a_cpr(
    project: Path, number: str
) -> None:
    # Only the whole argument written as a CPR is refused; 2.9 % of person keys' hex holds a run of ten digits.
    result = runner.invoke(app, ["child", number])
    assert isinstance(result.exception, NoSuchCase), result.output
    assert "CPR" not in str(result.exception)


def test_child_by_one_of_several_cases_shows_all_of_them(project: Path) -> None:
    result = runner.invoke(app, ["child", "27.24.00-G01-G2-21", "-f", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert "sager 27.24.00-G01-G1-21, 27.24.00-G01-G2-21" in document["title"]
    assert document["tables"][0]["rows"][0]["change"] == -3


def test_cohort_by_target_group_as_csv_holds_no_person_key(project: Path) -> None:
    out = project / "cohort"
    result = runner.invoke(
        app, ["cohort", "--by", "target-group", "-f", "csv", "--csv-dialect", "machine", "--r", "0.8", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    files = sorted(out.iterdir())
    assert all("child-key" not in f.read_text(encoding="utf-8") for f in files)
    assert files[0].name == "scores-cohort-01-noegletal.csv"
    rows = list(csv.reader(io.StringIO(files[1].read_text(encoding="utf-8"))))
    assert files[1].name == "scores-cohort-02-maalgruppe-udvikling-og-adfaerd.csv"
    by_group = {row[0]: row[1:] for row in rows[1:]}
    # handicap: 2 children (suppressed); udsatte: 5 children, 2 improved / 1 unchanged / 2 worsened.
    assert by_group["Børn og unge med handicap"] == ["<5"] + ["skjult"] * 5
    assert by_group["Udsatte børn og unge"] == ["5", "-0.2", "skjult", "skjult", "skjult", "0.0"]


def test_csv_of_several_tables_to_stdout_asks_for_a_folder(project: Path) -> None:
    result = runner.invoke(app, ["cohort", "--format", "csv"])
    assert isinstance(result.exception, ConfigError)
    assert "--out DIRECTORY" in str(result.exception)


def test_cohort_compares_periods(project: Path) -> None:
    result = runner.invoke(app, ["cohort", "--by", "all", "-p", "2022", "-p", "2023H1", "-f", "json"])
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)["tables"][0]
    assert [(r["period"], r["theme"]) for r in table["rows"]] == [("2022", "Udvikling og adfærd")]


def test_a_bad_period_is_a_usage_error(project: Path) -> None:
    result = runner.invoke(app, ["cohort", "--period", "sidste år"])
    assert isinstance(result.exception, ConfigError)


def test_coverage_to_an_xlsx_file(project: Path) -> None:
    out = project / "coverage.xlsx"
    result = runner.invoke(app, ["coverage", "--as-of", "2023-06-30", "--format", "xlsx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(out)
    rows = [list(r) for r in book[book.sheetnames[1]].iter_rows(values_only=True)]
    # Open cases 4 + 5 = 9 with the total shown: the 4 is suppressed, so the 5 is hidden with it.
    assert rows[1:] == [
        ["101", "<5", "<5", "skjult", "<5", "skjult"],
        ["202", "–", "<5", "skjult", 0, "skjult"],
        ["I alt", 9, "<5", "skjult", "<5", "skjult"],
        [None] * 6,
        ["Åbne sager på opgørelsesdagen. «Ikke vurderet» tæller ikke som en score.", *[None] * 5],
    ]


def test_out_into_a_directory_uses_the_kind_and_suffix(project: Path) -> None:
    result = runner.invoke(app, ["coverage", "--as-of", "2023-06-30", "-f", "html", "-o", str(project)])
    assert result.exit_code == 0, result.output
    html = (project / "scores-coverage.html").read_text(encoding="utf-8")
    assert "Dækning" in html
    assert "child-key" not in html


def test_an_unknown_format_names_the_installed_ones(project: Path) -> None:
    result = runner.invoke(app, ["coverage", "-f", "pdf"])
    assert isinstance(result.exception, ConfigError)
    assert "xlsx" in str(result.exception)
