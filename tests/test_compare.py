"""``bridge compare``: indicators, suppression, extracts and their merge, on SQLite and PostgreSQL.

The reference figures are recomputed here from the records a correct adapter yields (the
ground truth), not read back from the store; suppression is checked against hand-made counts.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from bridge.cli.compare import app
from bridge.errors import ConfigError
from bridge.model.records import CaseRecord
from bridge.model.tables import CASES
from bridge.privacy import Pseudonymizer
from bridge.reports.compare import comparison_report, rank_ranges
from bridge.reports.formats import Report
from bridge.reports.suppression import HIDDEN, SUPPRESSED, WITHHELD
from bridge.services import compare, findings, sampling
from bridge.services.compare import Cell, Comparison, ExtractError, RawFigures
from bridge.services.periods import Period
from bridge.store import Store, open_store
from bridge.sync.writer import store_records
from bridge.synthetic.generate import generate
from tests.conftest import TEST_SECRET

AS_OF = date(2026, 6, 30)
PERIODS = [Period.parse("2025"), Period.parse("2026H1")]
runner = CliRunner()


@dataclass
class Loaded:
    records: list[CaseRecord]
    cprs: set[str]
    codes: list[str]


def load(store: Store, persons: Pseudonymizer) -> Loaded:
    """Three synthetic municipalities, and a ledelsestilsyn sample with its automatic findings."""
    truth = generate(seed=14, municipalities=3, caseworkers=7, as_of=AS_OF)
    records = truth.expected_records(persons)
    store_records(store, "synthetic", records)
    _audit_sample(store)
    return Loaded(records, truth.cprs(), sorted({r.municipality for r in records}))


def _audit_sample(store: Store) -> None:
    spec = sampling.DrawSpec(sampling.Strategy.per_caseworker, date(2026, 3, 31), k=3, label="tilsyn")
    sample = sampling.draw_sample(store, spec, seed="compare", drawn_by="test")
    findings.fill_sample(store, sample.id, recorded_by="test")


@pytest.fixture
def loaded(store: Store, persons: Pseudonymizer) -> Loaded:
    return load(store, persons)


def _open_on(record: CaseRecord, day: date) -> bool:
    return record.opened <= day and (record.closed is None or record.closed > day)


# -- the indicators --------------------------------------------------------------------------


def test_case_indicators_equal_a_recomputation_from_the_records(store: Store, loaded: Loaded) -> None:
    result = compare.compare(store, periods=PERIODS, as_of=AS_OF)
    assert [m.code for m in result.municipalities] == loaded.codes
    checked = 0
    for period in PERIODS:
        day = min(period.end, AS_OF)
        for municipality in result.municipalities:
            mine = [r for r in loaded.records if r.municipality == municipality.code and _open_on(r, day)]
            children = len({r.child_key for r in mine})
            by_group: dict[str, list[CaseRecord]] = defaultdict(list)
            for r in mine:
                by_group[r.target_group].append(r)
            for group, cases in by_group.items():
                workers = len({r.caseworker.source_ref for r in cases if r.caseworker is not None})
                cell = municipality.cells[period.label, f"caseload_{group}"]
                assert cell.denominator == (SUPPRESSED if 0 < workers < 5 else workers)
                if isinstance(cell.numerator, int):
                    assert cell.numerator == len(cases)
                    checked += 1
            open_cases = municipality.cells[period.label, "coverage"].denominator
            assert open_cases == len(mine)
            assert municipality.cells[period.label, "children_open"].numerator == children
    assert checked >= 3  # the udsatte caseloads at least were shown


def test_figures_are_numerators_and_denominators_and_shares_are_computed_from_them() -> None:
    assert Cell(30, 40).value("share") == 75.0
    assert Cell(200, 5).value("ratio") == 40.0
    assert Cell(-12, 24).value("mean") == -0.5
    assert Cell(HIDDEN, 40).value("share") == WITHHELD
    assert Cell(SUPPRESSED, SUPPRESSED).value("share") == WITHHELD
    assert Cell(0, 0).value("share") is None


def test_a_period_after_the_day_counted_and_an_unknown_municipality_are_refused(store: Store) -> None:
    with pytest.raises(ConfigError, match="period 2027 starts after 2026-06-30"):
        compare.compare(store, periods=[Period.parse("2027")], as_of=AS_OF)
    with pytest.raises(ConfigError, match="no live case in municipality 999"):
        compare.compare(store, municipalities=["999"], as_of=AS_OF)


# -- suppression on a hand-made table --------------------------------------------------------


def test_secondary_suppression_where_a_total_would_reveal_a_cell() -> None:
    raw = RawFigures(
        {
            # 38 udsatte + 2 handicap = 40 open cases, the coverage's denominator: 40 - 38 would give the 2.
            "caseload_udsatte": (38, 6),
            "caseload_handicap": (2, 1),
            "coverage": (3, 40),  # 3 scored: the 37 not scored would give them
            "children_open": (39, None),  # 40 cases, 39 children: one child holds two cases
            # 2 improved + 1 worsened = 3, which 23 - 20 would give: the 20 goes too.
            "improved_sundhed": (2, 23),
            "unchanged_sundhed": (20, 23),
            "worsened_sundhed": (1, 23),
            "mean_change_sundhed": (-3, 23),
            "improved_familieforhold": (3, 4),
            "unchanged_familieforhold": (1, 4),
            "worsened_familieforhold": (0, 4),
            "mean_change_familieforhold": (-4, 4),
            "barometer_plan_rettidig": (40, 43),  # 3 failing: 43 - 40 would give them
            "barometer_journal": (12, 12),  # every case passes: nothing to hide
            "audit_errors": (0, 9),
        }
    )
    cells = compare.protect_figures(raw)
    assert cells["caseload_handicap"] == Cell(SUPPRESSED, SUPPRESSED)
    assert cells["caseload_udsatte"] == Cell(HIDDEN, 6)
    assert cells["coverage"] == Cell(SUPPRESSED, 40)
    assert cells["children_open"] == Cell(HIDDEN)
    assert [cells[f"{k}_sundhed"] for k in ("improved", "unchanged", "worsened")] == [
        Cell(SUPPRESSED, 23),
        Cell(HIDDEN, 23),
        Cell(SUPPRESSED, 23),
    ]
    assert cells["mean_change_sundhed"] == Cell(-3, 23)
    assert cells["improved_familieforhold"] == Cell(SUPPRESSED, SUPPRESSED)
    assert cells["mean_change_familieforhold"] == Cell(WITHHELD, SUPPRESSED)
    assert cells["barometer_plan_rettidig"] == Cell(HIDDEN, 43)
    assert cells["barometer_journal"] == Cell(12, 12)
    assert cells["audit_errors"] == Cell(0, 9)


def test_a_report_of_the_hand_made_table_shows_nothing_a_hidden_cell_could_be_worked_out_from() -> None:
    period = Period.parse("2025")
    cells = compare.protect_figures(RawFigures({"barometer_plan_rettidig": (40, 43), "coverage": (3, 40)}))
    municipality = compare.Municipality("461", "Odense", AS_OF, {(period.label, k): v for k, v in cells.items()})
    comparison = Comparison([period], compare.indicators(), [municipality])
    report = comparison_report(comparison)
    plan = next(
        t
        for t in report.tables
        if t.title == next(i.label for i in comparison.indicators if i.id == "barometer_plan_rettidig")
    )
    assert plan.rows == [["Odense (461)", HIDDEN, 43, WITHHELD, None, None, None]]
    overview = report.tables[0]
    row = next(r for r in overview.rows if r[0].startswith("Handleplan"))
    assert row[1] == WITHHELD


# -- the merge equals the report over one store ----------------------------------------------


def _extracts(store: Store, codes: list[str], directory: Path) -> list[Path]:
    paths = []
    for code in codes:
        one = compare.compare(store, periods=PERIODS, municipalities=[code], as_of=AS_OF)
        paths.append(compare.write_extract(one, code, directory / f"{code}.json"))
    return paths


def _figures(report: Report) -> list[tuple[str, list[list[Any]]]]:
    return [(t.title, [list(r) for r in t.rows]) for t in report.tables]


def test_the_merge_of_three_extracts_equals_the_report_over_one_store(
    store: Store, loaded: Loaded, tmp_path: Path
) -> None:
    in_store = compare.compare(store, periods=PERIODS, as_of=AS_OF)
    merged = compare.merge(_extracts(store, loaded.codes, tmp_path))
    for mine, theirs in zip(in_store.municipalities, merged.municipalities, strict=True):
        assert theirs.cells == mine.cells, mine.code
    direct, combined = comparison_report(in_store), comparison_report(merged)
    assert _figures(combined) == _figures(direct)
    assert combined.key_figures == direct.key_figures
    # Shown figures are recomputed from numerators and denominators: 100 · Σ numerators / Σ denominators.
    coverage = [m.cells["2026H1", "coverage"] for m in merged.municipalities]
    numerators = [c.numerator for c in coverage]
    denominators = [c.denominator for c in coverage]
    assert all(isinstance(n, int) for n in numerators + denominators)
    expected = round(100 * sum(numerators) / sum(denominators), 1)  # type: ignore[arg-type]
    assert next(f.value for f in combined.key_figures if f.label.startswith("Åbne sager scoret")) == expected


def test_extracts_from_each_municipality_s_own_store_merge_to_the_report_over_one_store(
    store: Store, loaded: Loaded, persons: Pseudonymizer, tmp_path: Path
) -> None:
    """As it happens for real: each municipality syncs into its own store and sends an extract."""
    paths = []
    for code in loaded.codes:
        own = open_store(f"sqlite:///{tmp_path / code}.db")
        try:
            store_records(own, "synthetic", [r for r in loaded.records if r.municipality == code])
            _audit_sample(own)
            one = compare.compare(own, periods=PERIODS, as_of=AS_OF)
            paths.append(compare.write_extract(one, code, tmp_path / f"{code}.json"))
        finally:
            own.dispose()
    merged = comparison_report(compare.merge(paths))
    direct = comparison_report(compare.compare(store, periods=PERIODS, as_of=AS_OF))
    assert _figures(merged) == _figures(direct)
    assert merged.key_figures == direct.key_figures


def test_merged_shares_are_recomputed_from_numerators_and_denominators_not_averaged(tmp_path: Path) -> None:
    period = Period.parse("2025")
    paths = []
    for code, scored, cases in (("461", 10, 20), ("751", 10, 100)):
        cells = compare.protect_figures(RawFigures({"coverage": (scored, cases), "children_open": (cases, None)}))
        one = Comparison(
            [period],
            compare.indicators(),
            [compare.Municipality(code, code, AS_OF, {(period.label, k): v for k, v in cells.items()})],
        )
        paths.append(compare.write_extract(one, code, tmp_path / f"{code}.json"))
    report = comparison_report(compare.merge(paths))
    figures = {f.label: f.value for f in report.key_figures}
    assert figures["Åbne sager scoret seneste 6 mdr."] == 16.7  # 20 / 120, not (50 % + 10 %) / 2
    assert figures["Børn med åben sag"] == 120
    coverage = next(t for t in report.tables if t.title == "Åbne sager scoret seneste 6 mdr.")
    assert [row[:4] for row in coverage.rows] == [["461", 10, 20, 50.0], ["751", 10, 100, 10.0]]


def test_each_extract_holds_only_its_municipality_and_aggregates(store: Store, loaded: Loaded, tmp_path: Path) -> None:
    (path,) = _extracts(store, loaded.codes[:1], tmp_path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["schema_version"] == compare.SCHEMA_VERSION
    assert document["municipality"]["code"] == loaded.codes[0]
    assert [p["label"] for p in document["periods"]] == ["2025", "2026H1"]
    assert document["bridge_version"]
    assert set(document) == {
        "format", "schema_version", "bridge_version", "municipality", "as_of", "method", "periods", "indicators",
        "figures", "checksum",
    }  # fmt: skip
    assert all(set(f) == {"period", "indicator", "numerator", "denominator"} for f in document["figures"])


# -- nothing from fewer than five persons, no person data ------------------------------------


def _person_counts(document: dict[str, Any]) -> list[Any]:
    """Every count of persons in an extract: all numerators and denominators but a mean's sum."""
    kinds = {i["id"]: i["kind"] for i in document["indicators"]}
    counts = []
    for f in document["figures"]:
        counts.append(f["denominator"])
        if kinds[f["indicator"]] != "mean":
            counts.append(f["numerator"])
    return counts


def _shares_are_safe(tables: list[dict[str, Any]]) -> int:
    """In every table with a numerator and a denominator: a shown share rests on counts of 0 or ≥ 5,
    and so does its complement. Returns the shares checked."""
    checked = 0
    for table in tables:
        for row in table["rows"]:
            if "numerator" not in row:
                continue
            share = row.get("share_pct")
            if not isinstance(share, float | int):
                continue
            num, den = row["numerator"], row["denominator"]
            assert isinstance(num, int), row
            assert isinstance(den, int), row
            assert den >= 5, row
            assert not 0 < num < 5, row
            assert not 0 < den - num < 5, row
            checked += 1
    return checked


@pytest.fixture
def project(store_url: str, loaded: Loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bridge.toml naming the loaded store, in the working directory."""
    monkeypatch.delenv("BRIDGE_DATABASE_URL", raising=False)
    (tmp_path / "bridge.toml").write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_no_output_holds_a_small_cell_a_person_key_a_case_number_or_a_cpr(
    store: Store, loaded: Loaded, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tmp_path = project
    caplog.set_level(logging.DEBUG)
    common = ["-p", "2025", "-p", "2026H1", "--as-of", AS_OF.isoformat()]
    outputs: list[str] = []
    for args in (
        ["report", *common, "-f", "json"],
        ["report", *common, "-o", "report.html"],
        ["report", *common, "-f", "csv", "-o", "csv"],
        ["report", *common, "-o", "report.xlsx"],
        *(["extract", "-m", code, *common, "-o", f"{code}.json"] for code in loaded.codes),
        ["merge", *(f"{code}.json" for code in loaded.codes), "-f", "json"],
        ["merge", *(f"{code}.json" for code in loaded.codes), "-o", "merged.html"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        outputs.append(result.output)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "bridge.toml" and p.suffix != ".db"]
    assert len(files) >= 8
    for path in files:
        if path.suffix == ".xlsx":
            book = openpyxl.load_workbook(path)
            outputs.append(" ".join(str(c) for ws in book for row in ws.iter_rows(values_only=True) for c in row))
        else:
            outputs.append(path.read_text(encoding="utf-8-sig"))
    outputs.append("\n".join(r.getMessage() for r in caplog.records))
    with store.engine.connect() as conn:
        rows = list(conn.execute(select(CASES.c.child_key, CASES.c.family_key, CASES.c.case_number)))
    forbidden = {key for row in rows for key in row if key} | loaded.cprs
    forbidden |= {f"{c[:6]}-{c[6:]}" for c in loaded.cprs if "-" not in c}
    assert len(forbidden) > 500
    everything = "\n".join(outputs)
    found = sorted(f for f in forbidden if f in everything)
    assert not found, found[:5]
    # Counts: none of 1-4 persons in any extract, and no share resting on one in any JSON report.
    for code in loaded.codes:
        document = json.loads((tmp_path / f"{code}.json").read_text(encoding="utf-8"))
        counts = _person_counts(document)
        assert not [c for c in counts if isinstance(c, int) and 0 < c < 5]
        assert SUPPRESSED in counts  # the data do have small cells, so suppression was at work
    for text in (outputs[0], outputs[len(loaded.codes) + 4]):
        assert _shares_are_safe(json.loads(text)["tables"]) > 20


# -- refusals ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The three municipalities' extracts, made once (from SQLite: a merge reads files, not a store)."""
    directory = tmp_path_factory.mktemp("extracts")
    one = open_store(f"sqlite:///{directory / 'bridge.db'}")
    try:
        codes = load(one, Pseudonymizer(SecretStr(TEST_SECRET))).codes
        return {p.name: p.read_bytes() for p in _extracts(one, codes, directory)}
    finally:
        one.dispose()


@pytest.fixture
def extracts(written: dict[str, bytes], tmp_path: Path) -> list[Path]:
    """Fresh copies of the extracts, for a test to change."""
    paths = [tmp_path / name for name in sorted(written)]
    for path in paths:
        path.write_bytes(written[path.name])
    return paths


def _rewrite(path: Path, change: dict[str, Any], *, checksum: bool) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    document.update(change)
    if checksum:
        body = {k: v for k, v in document.items() if k != "checksum"}
        document["checksum"] = compare.checksum(body)
    path.write_text(json.dumps(document), encoding="utf-8")


def test_a_tampered_extract_is_refused_naming_the_file(extracts: list[Path]) -> None:
    document = json.loads(extracts[1].read_text(encoding="utf-8"))
    figure = next(f for f in document["figures"] if isinstance(f["numerator"], int) and f["numerator"] > 5)
    figure["numerator"] += 1  # a better figure, by hand
    _rewrite(extracts[1], {"figures": document["figures"]}, checksum=False)
    with pytest.raises(ExtractError, match=re.escape(str(extracts[1])) + ".*checksum does not match"):
        compare.merge(extracts)


def test_an_unknown_schema_version_is_refused_naming_the_file(extracts: list[Path]) -> None:
    _rewrite(extracts[2], {"schema_version": compare.SCHEMA_VERSION + 1}, checksum=True)
    with pytest.raises(ExtractError, match=re.escape(str(extracts[2])) + ": schema version 2 is not one"):
        compare.merge(extracts)


def test_a_municipality_twice_for_one_period_is_refused_naming_both_files(extracts: list[Path], tmp_path: Path) -> None:
    again = tmp_path / "again.json"
    again.write_bytes(extracts[0].read_bytes())
    with pytest.raises(ExtractError) as caught:
        compare.merge([*extracts, again])
    assert str(caught.value).startswith(f"{again}: municipality {extracts[0].stem} for period 2025 is already in")
    assert str(extracts[0]) in str(caught.value)


def test_an_extract_showing_a_small_count_is_refused_even_with_a_fresh_checksum(extracts: list[Path]) -> None:
    document = json.loads(extracts[0].read_text(encoding="utf-8"))
    figure = next(f for f in document["figures"] if f["numerator"] == SUPPRESSED)
    figure["numerator"] = 3
    _rewrite(extracts[0], {"figures": document["figures"]}, checksum=True)
    with pytest.raises(ExtractError, match="fewer than 5 persons"):
        compare.merge(extracts)


def test_the_cli_refuses_with_exit_2_and_names_the_file(
    extracts: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from bridge.cli import main

    _rewrite(extracts[0], {"as_of": "2030-01-01"}, checksum=False)
    with pytest.raises(SystemExit) as done:
        main(["compare", "merge", *map(str, extracts), "-o", str(extracts[0].with_name("out.html"))])
    assert done.value.code == 2
    assert f"{extracts[0]}: the checksum does not match" in capsys.readouterr().err
    assert not extracts[0].with_name("out.html").exists()


# -- ranks -------------------------------------------------------------------------------------


def test_ranks_are_the_places_the_intervals_allow() -> None:
    intervals = [(10.0, 20.0), (15.0, 25.0), (30.0, 40.0), None]
    assert rank_ranges(intervals, "high") == ["2–3", "2–3", "1", None]
    assert rank_ranges(intervals, "low") == ["1–2", "1–2", "3", None]
    assert rank_ranges(intervals, None) == [None, None, None, None]


# -- the library -------------------------------------------------------------------------------


def test_the_library_compares_extracts_and_merges_like_the_service(
    store: Store, store_url: str, loaded: Loaded, tmp_path: Path
) -> None:
    import bridge

    with bridge.open(store_url) as b:
        whole = b.compare(periods=["2025", "2026H1"], as_of=AS_OF)
        assert whole == compare.compare(store, periods=PERIODS, as_of=AS_OF)
        paths = [
            b.write_compare_extract(tmp_path / f"{code}.json", code, periods=["2025", "2026H1"], as_of=AS_OF)
            for code in loaded.codes
        ]
    merged = bridge.Bridge.merge_compare_extracts(paths)
    assert [m.cells for m in merged.municipalities] == [m.cells for m in whole.municipalities]
    html = bridge.Bridge.write_comparison_report(merged, tmp_path / "merged.html").read_text(encoding="utf-8")
    assert "Kommuner side om side" in html


def test_the_html_draws_intervals_norms_and_withheld_values_as_such() -> None:
    from bridge.reports.html import Html

    period = Period.parse("2025")
    municipalities = []
    for code, counts in (
        ("461", {"coverage": (30, 120), "caseload_udsatte": (120, 6), "caseload_handicap": (0, 0)}),
        ("751", {"coverage": (2, 80), "caseload_udsatte": (78, 3), "caseload_handicap": (2, 1)}),
    ):
        cells = compare.protect_figures(RawFigures(dict(counts)))
        municipalities.append(compare.Municipality(code, code, AS_OF, {(period.label, k): v for k, v in cells.items()}))
    html = Html().render(comparison_report(Comparison([period], compare.indicators(), municipalities))).decode()
    coverage = html[html.index("Åbne sager scoret seneste 6 mdr.</h3>") :]
    coverage = coverage[: coverage.index("</svg>")]
    assert coverage.count('class="interval"') == 1  # 461's 25 %; 751's 2 of 80 is withheld
    # Wilson for 30 of 120: (0,25 + z²/240 ± z·√(0,25·0,75/120 + z²/57600)) / (1 + z²/120), z = 1,96
    assert "95 %-interval 18,1–33,4" in coverage
    assert "Værdien er skjult: færre end 5 børn" in coverage
    assert "norm 40 (udsatte)" in html
    assert "Værdien er skjult: færre end 5 børn eller sagsbehandlere" in html
    assert "<script" not in html
