"""Findings: the sheet round-trips, bad sheets are refused per cell with nothing imported, corrections
are new versions, and a failed item is closed when the next sync shows it corrected."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bridge.law import Outcome
from bridge.model.records import CaseEventRecord, CaseRecord, EventKind
from bridge.privacy import Pseudonymizer
from bridge.services import findings, sampling
from bridge.services.findings import FINDINGS, Change, current_findings, follow_up_status, history
from bridge.services.sampling import DrawSpec, Strategy
from bridge.services.sheet import COL, SHEET, SheetError, import_sheet, write_sheet
from bridge.store import Store
from bridge.sync.writer import store_records
from bridge.synthetic.generate import generate

AS_OF = date(2025, 12, 31)


@pytest.fixture
def sample(store: Store, persons: Pseudonymizer) -> tuple[int, list[CaseRecord]]:
    records = generate(seed=5, municipalities=1, caseworkers=3, as_of=date(2026, 3, 1)).expected_records(persons)
    store_records(store, "synthetic", records)
    summary = sampling.draw_sample(store, DrawSpec(Strategy.per_caseworker, AS_OF, k=2), seed="ark")
    written = findings.fill_sample(store, summary.id, recorded_by="leder")
    assert written > 0
    assert findings.fill_sample(store, summary.id, recorded_by="leder") == 0  # filling twice adds nothing
    return summary.id, records


def versions(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(FINDINGS)).scalar_one())


def rows_of(path: Path) -> list[tuple[int, dict[str, object]]]:
    sheet = load_workbook(path)[SHEET]
    out = []
    for number, values in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2):
        out.append((number, {name: values[i - 1] for name, i in COL.items()}))
    return out


def set_cell(path: Path, row: int, column: str, value: object) -> None:
    book = load_workbook(path)
    book[SHEET].cell(row, COL[column]).value = value
    book.save(path)


def test_the_sheet_has_automatic_results_filled_and_judgement_items_empty(
    store: Store, sample: tuple[int, list[CaseRecord]], tmp_path: Path
) -> None:
    sample_id, _ = sample
    path = write_sheet(store, sample_id, tmp_path / "ark.xlsx")
    rows = rows_of(path)
    drawn = sampling.sampled_cases(store, sample_id)
    assert {r["Sag"] for _, r in rows} == {c.key for c in drawn}
    automatic = [r for _, r in rows if r["Automatisk"] == "ja"]
    judgement = [r for _, r in rows if r["Automatisk"] == "nej"]
    assert all(r["Resultat"] in {"Opfyldt", "Ikke opfyldt", "Ikke forfalden", "Ikke relevant"} for r in automatic)
    assert all(r["Dokumentation"] for r in automatic)
    assert judgement
    assert all(r["Resultat"] is None for r in judgement)
    assert any(r["Resultat"] == "Ikke opfyldt" and r["Opfølgningsfrist"] is not None for r in automatic)
    validations = load_workbook(path)[SHEET].data_validations.dataValidation
    assert any("Ikke opfyldt" in (v.formula1 or "") for v in validations)  # a drop-down for the answer
    assert any('"ja,nej"' in (v.formula1 or "") for v in validations)


def test_a_filled_sheet_round_trips_as_new_versions(
    store: Store, sample: tuple[int, list[CaseRecord]], tmp_path: Path
) -> None:
    sample_id, _ = sample
    path = write_sheet(store, sample_id, tmp_path / "ark.xlsx")
    judgement = [(n, r) for n, r in rows_of(path) if r["Automatisk"] == "nej"]
    answered = {}
    for i, (number, row) in enumerate(judgement):
        answer = ("Opfyldt", "Ikke opfyldt", "Ikke relevant")[i % 3]
        set_cell(path, number, "Resultat", answer)
        answered[(row["Sag"], row["Punkt"])] = answer
    number, row = judgement[1]
    set_cell(path, number, "Refusionsmæssig betydning", "ja")
    set_cell(path, number, "Bemærkning", "Mangler begrundelse")
    before = versions(store)
    result = import_sheet(store, path, recorded_by="leder2")
    assert result.new_versions == len(judgement)
    assert versions(store) == before + len(judgement)  # nothing overwritten
    now = {(f.case_key, f.rule): f for f in current_findings(store, sample_id)}
    for key, answer in answered.items():
        assert now[key].outcome is {"Opfyldt": Outcome.passed, "Ikke opfyldt": Outcome.failed}.get(
            answer, Outcome.not_relevant
        )
        assert now[key].recorded_by == "leder2"
    flagged = now[(row["Sag"], row["Punkt"])]
    assert flagged.refusion
    assert flagged.note == "Mangler begrundelse"
    assert flagged.follow_up_due is not None  # a failed judgement item gets a follow-up deadline
    old, new = history(store, sample_id, str(row["Sag"]), str(row["Punkt"]))
    assert (old.version, old.outcome, old.recorded_by) == (1, None, "leder")
    assert (new.version, new.outcome) == (2, Outcome.failed)
    # the same sheet again changes nothing
    assert import_sheet(store, path, recorded_by="leder2").new_versions == 0
    # written again, the sheet shows the answers
    again = rows_of(write_sheet(store, sample_id, tmp_path / "igen.xlsx"))
    assert {(r["Sag"], r["Punkt"]): r["Resultat"] for _, r in again if r["Automatisk"] == "nej"} == answered


@pytest.mark.parametrize(
    "bad",
    [
        ("Resultat", "Måske", "is not an answer"),
        ("Sag", "synthetic:999999", "is not a case of sample"),
    ],
)
def test_a_bad_cell_is_refused_by_name_and_nothing_is_imported(
    store: Store, sample: tuple[int, list[CaseRecord]], tmp_path: Path, bad: tuple[str, str, str]
) -> None:
    column, value, message = bad
    sample_id, _ = sample
    path = write_sheet(store, sample_id, tmp_path / "ark.xlsx")
    judgement = [n for n, r in rows_of(path) if r["Automatisk"] == "nej"]
    set_cell(path, judgement[0], "Resultat", "Opfyldt")  # a good answer that must not get in either
    bad_row = judgement[1]
    set_cell(path, bad_row, column, value)
    before = versions(store)
    with pytest.raises(SheetError, match=message) as raised:
        import_sheet(store, path, recorded_by="leder")
    letter = "I" if column == "Resultat" else "A"
    assert f"{SHEET}!{letter}{bad_row}" in str(raised.value)
    assert versions(store) == before


def test_a_changed_automatic_cell_is_refused_by_name(
    store: Store, sample: tuple[int, list[CaseRecord]], tmp_path: Path
) -> None:
    sample_id, _ = sample
    path = write_sheet(store, sample_id, tmp_path / "ark.xlsx")
    number = next(n for n, r in rows_of(path) if r["Resultat"] == "Ikke opfyldt")
    set_cell(path, number, "Resultat", "Opfyldt")
    before = versions(store)
    with pytest.raises(SheetError, match=rf"{SHEET}!I{number}: the automatic result 'Ikke opfyldt' was changed"):
        import_sheet(store, path, recorded_by="leder")
    assert versions(store) == before


def test_record_a_single_finding_and_the_next_sync_closes_a_corrected_error(
    store: Store, sample: tuple[int, list[CaseRecord]]
) -> None:
    sample_id, records = sample
    open_errors = [f for f in current_findings(store, sample_id) if f.open_error and f.rule == "journal"]
    fixable = {"plan_rettidig", "opfoelgning_3_maaneder", "opfoelgning_6_maaneder", "undersoegelse_4_maaneder"}
    missing = [
        f for f in current_findings(store, sample_id) if f.open_error and f.rule in fixable and "mangler" in f.evidence
    ]
    target = (open_errors or missing)[0]
    findings.record(store, sample_id, [Change(target.case_number, target.rule, refusion=True)], recorded_by="leder")
    assert history(store, sample_id, target.case_key, target.rule)[-1].refusion
    # the caseworker adds what was missing, and the next sync brings it in
    record = next(r for r in records if f"synthetic:{r.source_ref}" == target.case_key)
    fixed = _add_missing(record, target.rule)
    store_records(store, "synthetic", [fixed])
    closed = findings.refresh_follow_ups(store, today=date(2026, 1, 10))
    assert closed >= 1
    latest = history(store, sample_id, target.case_key, target.rule)[-1]
    assert latest.closed_on == date(2026, 1, 10)
    assert latest.outcome is Outcome.failed  # it was an error; now it is corrected
    assert latest.refusion  # earlier versions' answers are carried on
    status = follow_up_status(current_findings(store, sample_id), date(2026, 1, 10))
    assert status.closed_in_time >= 1


def _add_missing(record: CaseRecord, rule: str) -> CaseRecord:
    kind = {
        "journal": EventKind.journal_note,
        "plan_rettidig": EventKind.plan_made,
        "opfoelgning_3_maaneder": EventKind.follow_up,
        "opfoelgning_6_maaneder": EventKind.follow_up,
        "undersoegelse_4_maaneder": EventKind.investigation_completed,
    }[rule]
    event = CaseEventRecord(kind=kind, occurred_on=date(2026, 1, 5), source_ref=f"{record.source_ref}-fix")
    return record.model_copy(update={"events": (*record.events, event)})
