"""The vendor's two sample sets, read in order, give exactly what a person reads from the files.

Every expectation below is written out by hand from ``tests/reference/sample`` (the CSV files
as delivered): the person keys are the only values computed, from the CPR numbers in the files.
CSC scores count the other way from Trivselslinealen (1 = alvorlig bekymring), so a CSC 2 is a
core 4 and a CSC 4 a core 2; a 3 stays a 3.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.storecheck import stored_records

from bridge.adapter import Batch, SourceContext
from bridge.config import parse_config
from bridge.errors import AdapterError
from bridge.model.records import (
    Act,
    AssessmentRecord,
    CaseEventRecord,
    CaseRecord,
    CaseStatus,
    CaseworkerRecord,
    EventKind,
    MeasureRecord,
    TargetGroup,
    Theme,
)
from bridge.privacy import Pseudonymizer
from bridge.store import Store
from bridge.sync import run_sync
from bridge_csc_social.adapter import CscSocialAdapter, CscSocialConfig

SAMPLE = Path(__file__).parent / "reference" / "sample"
FULL = "extract-20260101-020000"
DELTA = "extract-20260102-020000"


def _case(
    persons: Pseudonymizer,
    ref: str,
    cpr: str,
    guardians: list[str],
    worker: tuple[str, str],
    *,
    target: TargetGroup,
    opened: date,
    modified: datetime,
    closed: date | None = None,
    measures: tuple[MeasureRecord, ...] = (),
    assessments: tuple[AssessmentRecord, ...] = (),
    events: tuple[CaseEventRecord, ...] = (),
) -> CaseRecord:
    child = persons.person(cpr)
    return CaseRecord(
        source_ref=ref,
        municipality="101",
        child_key=child.key,
        child_birth_date=child.birth_date,
        child_sex=child.sex,
        family_key=persons.family_key(guardians),
        caseworker=CaseworkerRecord(source_ref=worker[0], name=worker[1]),
        case_number=ref,
        kle="27.24.00",
        target_group=target,
        opened=opened,
        closed=closed,
        status=CaseStatus.closed if closed else CaseStatus.open,
        source_modified=modified,
        measures=measures,
        assessments=assessments,
        events=events,
    )


def _measure(  # noqa: PLR0917 - one measure row, column by column
    ref: str,
    act: Act,
    paragraph: str,
    start: date,
    end: date | None,
    account: str | None,
    provider: str | None,
    *,
    granted: bool = True,
) -> MeasureRecord:
    return MeasureRecord(
        source_ref=ref,
        act=act,
        paragraph=paragraph,
        start=start,
        end=end,
        has_grant=granted,
        account_code=account,
        provider=provider,
    )


def _event(ref: str, kind: EventKind, on: date) -> CaseEventRecord:
    return CaseEventRecord(kind=kind, occurred_on=on, source_ref=ref)


def full_set(persons: Pseudonymizer) -> dict[str, CaseRecord]:
    mette = ("MS4711", "Mette Sørensen")
    return {
        "100001": _case(
            persons, "100001", "010112-4003", ["010179-1002", "010177-2001"], mette,
            target=TargetGroup.udsatte, opened=date(2024, 3, 14),
            modified=datetime(2025, 12, 30, 13, 22, 5, tzinfo=UTC),  # 14:22:05 CET
            measures=(
                _measure("200001", Act.BL, "32 stk. 1 nr. 3", date(2024, 4, 1), None, "5.28.21",
                         "Kontaktpersonordningen Nørrebro"),
                _measure("200002", Act.BL, "32 stk. 1 nr. 5", date(2025, 6, 1), date(2026, 5, 31), "5.28.21",
                         "Familiecenter Østerbro; team 2"),
            ),
            assessments=(
                AssessmentRecord(theme=Theme.skole_beskaeftigelse, value=3, assessed_on=date(2025, 12, 10),
                                 assessor="MS4711"),
                AssessmentRecord(theme=Theme.familieforhold, value=4, assessed_on=date(2025, 12, 10),
                                 assessor="MS4711"),  # CSC 2
            ),
            events=(
                _event("400001", EventKind.notification, date(2024, 3, 3)),
                _event("400002", EventKind.notification_assessed, date(2024, 3, 4)),  # UnderretningVurderet
                _event("400003", EventKind.investigation_started, date(2024, 3, 14)),
                _event("400004", EventKind.investigation_completed, date(2024, 7, 10)),
                _event("400005", EventKind.plan_made, date(2024, 7, 15)),
            ),
        ),
        "100002": _case(
            persons, "100002", "010114-4002", ["010193-3002"], ("JO1093", "Jørgen Ødegård"),
            target=TargetGroup.handicap, opened=date(2024, 9, 2),
            modified=datetime(2025, 12, 19, 8, 3, 51, tzinfo=UTC),
            measures=(
                _measure("200003", Act.BL, "32 stk. 1 nr. 2", date(2024, 10, 1), None, "5.28.21",
                         "Aflastning Hvidovre"),
            ),
            assessments=(  # ikke vurderet: no number
                AssessmentRecord(theme=Theme.sundhed, value=None, assessed_on=date(2025, 12, 18), assessor="JO1093"),
            ),
            events=(_event("400006", EventKind.child_conversation, date(2025, 11, 12)),),
        ),
        "100003": _case(
            persons, "100003", "010109-4002", [], ("AK0330", "Anne-Mette Kæmpe"),
            target=TargetGroup.udsatte,  # Ungdomskriminalitet, by the default mapping
            opened=date(2025, 5, 5),
            modified=datetime(2025, 6, 11, 11, 47, 0, tzinfo=UTC),  # 13:47 CEST
            measures=(_measure("200005", Act.BL, "32 stk. 1 nr. 8", date(2025, 6, 15), None, None, None,
                               granted=False),),
            assessments=(
                AssessmentRecord(theme=Theme.udvikling_adfaerd, value=4, assessed_on=date(2025, 6, 10),
                                 assessor="AK0330"),  # CSC 2
            ),
            events=(_event("400007", EventKind.decision, date(2025, 6, 10)),),
        ),
        "100004": _case(
            persons, "100004", "010116-4001", ["010173-1001", "010196-3001"], mette,
            target=TargetGroup.udsatte, opened=date(2023, 1, 10), closed=date(2025, 12, 15),
            modified=datetime(2025, 12, 15, 14, 30, 12, tzinfo=UTC),
            measures=(
                _measure("200004", Act.SEL, "52 stk. 3 nr. 7", date(2023, 2, 1), date(2025, 12, 15), "5.28.23",
                         'Opholdsstedet "Lærkereden"'),
            ),
            events=(_event("400008", EventKind.follow_up, date(2025, 12, 1)),),
        ),
        "100005": _case(
            persons, "100005", "010119-4003", ["010171-2002"], ("BA2210", "Bo Åberg"),
            target=TargetGroup.udsatte, opened=date(2025, 11, 20),
            modified=datetime(2025, 11, 25, 9, 10, 10, tzinfo=UTC),
            assessments=(
                AssessmentRecord(theme=Theme.fritid_venskaber, value=2, assessed_on=date(2025, 11, 24)),  # CSC 4
            ),
            events=(
                _event("400009", EventKind.notification, date(2025, 11, 18)),
                _event("400010", EventKind.consent, date(2025, 11, 25)),
            ),
        ),
    }


def delta_set(persons: Pseudonymizer) -> dict[str, CaseRecord]:
    kasper = ("KO5521", "Kasper Ølgaard")
    return {
        "100002": _case(
            persons, "100002", "010114-4002", ["010193-3002"], kasper,
            target=TargetGroup.handicap, opened=date(2024, 9, 2),
            modified=datetime(2026, 1, 1, 9, 12, 44, tzinfo=UTC),
            measures=(
                _measure("200003", Act.BL, "32 stk. 1 nr. 2", date(2024, 10, 1), None, "5.28.21",
                         "Aflastning Hvidovre"),
            ),
            assessments=(
                AssessmentRecord(theme=Theme.sundhed, value=3, assessed_on=date(2026, 1, 1), assessor="KO5521"),
            ),
            events=(
                _event("400006", EventKind.child_conversation, date(2025, 11, 12)),
                _event("400011", EventKind.follow_up, date(2026, 1, 1)),
            ),
        ),
        "100006": _case(
            persons, "100006", "010118-4000", ["010196-3002"], kasper,
            target=TargetGroup.udsatte, opened=date(2026, 1, 1),
            modified=datetime(2026, 1, 1, 22, 41, 9, tzinfo=UTC),
            events=(_event("400012", EventKind.notification, date(2026, 1, 1)),),
        ),
    }


def _adapter(persons: Pseudonymizer, drop: Path = SAMPLE) -> CscSocialAdapter:
    return CscSocialAdapter(CscSocialConfig(drop=drop), SourceContext("kbh-csc", "101", persons))


def _by_set(batches: list[Batch]) -> list[list[Batch]]:
    sets: list[list[Batch]] = [[]]
    for batch in batches:
        sets[-1].append(batch)
        if not batch.continues:
            sets.append([])
    return sets[:-1]


def _arriving(tmp_path: Path) -> Path:
    """A drop folder that holds the full sample set; :func:`_arrives` delivers the delta into it."""
    drop = tmp_path / "drop"
    shutil.copytree(SAMPLE / FULL, drop / FULL)
    return drop


def _arrives(drop: Path) -> None:
    shutil.copytree(SAMPLE / DELTA, drop / DELTA)


def test_the_two_samples_give_what_the_files_say(persons: Pseudonymizer, tmp_path: Path) -> None:
    """Read night by night, as they arrive: each set is its own transaction."""
    drop = _arriving(tmp_path)
    adapter = _adapter(persons, drop)
    (full,) = _by_set(list(adapter.fetch(None)))
    _arrives(drop)
    (delta,) = _by_set(list(adapter.fetch(full[-1].cursor)))
    assert {r.source_ref: r for b in full for r in b.records} == full_set(persons)
    assert [b.deleted for b in full] == [[]]
    assert full[-1].snapshot  # a full set: the store holds exactly its cases afterwards
    assert {r.source_ref: r for b in delta for r in b.records} == delta_set(persons)
    assert delta[-1].deleted == ["100004"]
    assert not delta[-1].snapshot
    assert not [j for b in full + delta for j in b.rejections]
    assert [(s.name, s.label) for s in adapter.report] == [(FULL, "skipped_already_applied"), (DELTA, "applied")]
    assert adapter.report[0].counts["kept_out"] == 0  # every row of the samples has its place in the model


def test_read_again_the_samples_are_skipped(persons: Pseudonymizer) -> None:
    adapter = _adapter(persons)
    cursor = [b.cursor for b in adapter.fetch(None)][-1]
    assert list(adapter.fetch(cursor)) == []
    assert [s.label for s in adapter.report] == ["skipped_already_applied"] * 2


def test_the_samples_synced_leave_the_deleted_case_marked_not_removed(
    store: Store, secret_env: str, persons: Pseudonymizer, tmp_path: Path
) -> None:
    drop = _arriving(tmp_path)
    config = parse_config(
        {"sources": [{"name": "kbh-csc", "adapter": "csc_social", "municipality": "101",
                      "settings": {"drop": str(drop)}}]},
        Path("."),
    )
    assert run_sync(store, config, "kbh-csc").inserted == 5
    _arrives(drop)
    run = run_sync(store, config, "kbh-csc")
    assert (run.status, run.inserted, run.updated, run.deleted) == ("succeeded", 1, 1, 1)
    expected = {**full_set(persons), **delta_set(persons)}
    del expected["100004"]
    assert stored_records(store, "kbh-csc") == expected
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT source_ref, status, deleted_at IS NOT NULL FROM cases ORDER BY source_ref"))
        assert [tuple(r) for r in rows][3] == ("100004", "closed", True)
    again = run_sync(store, config, "kbh-csc")
    assert (again.status, again.fetched, again.inserted, again.updated, again.deleted) == ("succeeded", 0, 0, 0, 0)


def test_a_first_read_of_both_samples_writes_each_case_once_from_its_newest_set(
    store: Store, secret_env: str, persons: Pseudonymizer
) -> None:
    """One transaction: the delta's images, the full set's other cases; the case deleted meanwhile never stored."""
    config = parse_config(
        {"sources": [{"name": "kbh-csc", "adapter": "csc_social", "municipality": "101",
                      "settings": {"drop": str(SAMPLE)}}]},
        Path("."),
    )
    expected = {**full_set(persons), **delta_set(persons)}
    del expected["100004"]
    for full in (False, True):  # a --full re-sync of the unchanged drop changes nothing
        run = run_sync(store, config, "kbh-csc", full=full)
        assert (run.status, run.inserted, run.updated, run.deleted) == ("succeeded", 0 if full else 5, 0, 0)
        assert stored_records(store, "kbh-csc") == expected
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM cases WHERE source_ref = '100004'")).scalar() == 0


@pytest.mark.parametrize("dash", [True, False])
def test_cpr_with_or_without_the_dash_gives_one_person(tmp_path: Path, persons: Pseudonymizer, dash: bool) -> None:
    from bridge_csc_social.simulator import rewrite_file

    drop = tmp_path / "drop"
    shutil.copytree(SAMPLE / FULL, drop / FULL)
    if not dash:
        rewrite_file(drop / FULL, "cases.csv", lambda data: data.replace(b"010112-4003", b"0101124003"))
    records = {r.source_ref: r for b in _adapter(persons, drop).fetch(None) for r in b.records}
    assert records["100001"] == full_set(persons)["100001"]


def _full_again(drop: Path, name: str, edits: dict[str, tuple[str, str]]) -> None:
    """The sample full set delivered again as ``name``, with one text replaced per file."""
    import json

    from bridge_csc_social.simulator import rewrite_file

    shutil.copytree(SAMPLE / FULL, drop / name)
    manifest = json.loads((drop / name / "manifest.json").read_text(encoding="utf-8"))
    (drop / name / "manifest.json").write_text(json.dumps({**manifest, "extract": name}), encoding="utf-8")
    for file, (old, new) in edits.items():
        rewrite_file(drop / name, file, lambda data, o=old, n=new: data.replace(o.encode("cp1252"), n.encode("cp1252")))


def test_a_quarantined_row_keeps_its_stored_version_while_the_rest_of_its_case_applies(
    store: Store, secret_env: str, persons: Pseudonymizer, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    _full_again(drop, FULL, {})
    config = parse_config(
        {"sources": [{"name": "kbh-csc", "adapter": "csc_social", "municipality": "101",
                      "settings": {"drop": str(drop)}}]},
        Path("."),
    )
    run_sync(store, config, "kbh-csc")
    expected = full_set(persons)
    assert stored_records(store, "kbh-csc") == expected
    _full_again(drop, "extract-20260101-120000", {
        "cases.csv": ("30-12-2025 14:22:05", "01-01-2026 11:00:00"),
        "measures.csv": ("01-06-2025;31-05-2026", "01-06-2025;31-05-2024"),  # ends before it starts
        "assessments.csv": ("SKOLE;3", "SKOLE;9"),
    })
    run = run_sync(store, config, "kbh-csc")
    assert (run.status, run.updated, run.unchanged, run.quarantined) == ("quarantined", 1, 4, 2)
    changed = expected["100001"].model_copy(update={"source_modified": datetime(2026, 1, 1, 10, 0, tzinfo=UTC)})
    assert stored_records(store, "kbh-csc") == {**expected, "100001": changed}  # 200002 and both scores as stored
    _full_again(drop, "extract-20260101-180000", {
        "measures.csv": ("01-06-2025;31-05-2026", "01-06-2025;31-05-2027"),
        "assessments.csv": ("SKOLE;3", "SKOLE;2"),
    })
    run = run_sync(store, config, "kbh-csc")
    assert (run.status, run.updated, run.quarantined) == ("succeeded", 1, 0)
    stored = stored_records(store, "kbh-csc")["100001"]
    assert [(m.source_ref, m.end) for m in stored.measures] == [("200001", None), ("200002", date(2027, 5, 31))]
    assert [(a.theme, a.value) for a in stored.assessments] == [
        (Theme.familieforhold, 4),
        (Theme.skole_beskaeftigelse, 4),  # CSC 2
    ]
    with store.engine.connect() as conn:
        open_entries = conn.execute(text("SELECT count(*) FROM quarantine WHERE resolved_at IS NULL")).scalar()
    assert open_entries == 0  # the corrected delivery settled them


def test_a_first_read_begins_at_the_newest_full_set_that_applies(
    persons: Pseudonymizer, tmp_path: Path
) -> None:
    """The sets a later full set supersedes are not read; a full set that is rejected is passed by."""
    drop = tmp_path / "drop"
    shutil.copytree(SAMPLE, drop)
    later = "extract-20260103-020000"
    _full_again(drop, later, {"cases.csv": ("30-12-2025 14:22:05", "01-01-2026 11:00:00")})
    adapter = _adapter(persons, drop)
    records = {r.source_ref: r for b in adapter.fetch(None) for r in b.records}
    changed = full_set(persons)["100001"].model_copy(
        update={"source_modified": datetime(2026, 1, 1, 10, 0, tzinfo=UTC)}
    )
    assert records == {**full_set(persons), "100001": changed}
    assert [s.label for s in adapter.report] == ["superseded", "superseded", "applied"]
    with (drop / later / "cases.csv").open("ab") as cases:
        cases.write(b"100009;")  # the manifest no longer matches
    adapter = _adapter(persons, drop)
    batches: list[Batch] = []
    with pytest.raises(AdapterError, match=f"{later}/cases.csv: sha256 is"):
        batches.extend(adapter.fetch(None))  # the batches before the rejection stay in the list
    records = {r.source_ref: r for b in batches for r in b.records}
    expected = {**full_set(persons), **delta_set(persons)}
    del expected["100004"]
    assert records == expected
    assert [s.label for s in adapter.report] == ["applied", "applied", "rejected:manifest_mismatch"]
