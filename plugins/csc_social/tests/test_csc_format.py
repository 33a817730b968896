"""The specification's checks and reason classes, one by one, on copies of the vendor's sample sets.

A set is rejected whole with the first failing check's class (in the specification's order)
and a message naming the set, the file and what differs; a row is quarantined with the first
matching reason class, and its case image is held back with it.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.adapter import Batch, Kept, SourceContext
from bridge.errors import AdapterError
from bridge.privacy import Pseudonymizer
from bridge_csc_social import wire
from bridge_csc_social.adapter import (
    DETAILED,
    AppliedSet,
    CscSocialAdapter,
    CscSocialConfig,
    Ledger,
    files_digest,
)
from bridge_csc_social.simulator import rewrite_file

SAMPLE = Path(__file__).parent / "reference" / "sample"
FULL = "extract-20260101-020000"
DELTA = "extract-20260102-020000"


def drop_with(tmp_path: Path, *sets: tuple[str, str]) -> Path:
    """A drop folder holding copies of sample sets: ``(sample set, name in the drop)``."""
    drop = tmp_path / "drop"
    for sample, name in sets:
        shutil.copytree(SAMPLE / sample, drop / name)
        if name != sample:
            manifest = json.loads((drop / name / wire.MANIFEST).read_text(encoding="utf-8"))
            manifest["extract"] = name
            (drop / name / wire.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return drop


class Reading:
    def __init__(self, drop: Path, persons: Pseudonymizer) -> None:
        self.adapter = CscSocialAdapter(CscSocialConfig(drop=drop), SourceContext("kbh-csc", "101", persons))
        self.cursor: str | None = None

    def fetch(self) -> tuple[list[Batch], str | None]:
        """The batches of one run and the error it ends with; the cursor moves as the engine's would."""
        batches: list[Batch] = []
        try:
            for batch in self.adapter.fetch(self.cursor):
                batches.append(batch)
                if not batch.continues:
                    self.cursor = batch.cursor
        except AdapterError as exc:
            return batches, str(exc)
        return batches, None

    def statuses(self) -> list[tuple[str, str]]:
        return [(s.name, s.label) for s in self.adapter.report]


@pytest.fixture
def persons_() -> Pseudonymizer:
    from pydantic import SecretStr

    return Pseudonymizer(SecretStr("format-test-secret"))


def edit(folder: Path, name: str, change: Callable[[str], str]) -> None:
    rewrite_file(folder, name, lambda data: change(data.decode("cp1252")).encode("cp1252"))


def test_a_manifest_naming_another_set_is_a_bad_manifest(tmp_path: Path, persons_: Pseudonymizer) -> None:
    drop = drop_with(tmp_path, (FULL, FULL))
    manifest = json.loads((drop / FULL / wire.MANIFEST).read_text(encoding="utf-8"))
    (drop / FULL / wire.MANIFEST).write_text(json.dumps({**manifest, "extract": "extract-20260101-030000"}))
    reading = Reading(drop, persons_)
    batches, error = reading.fetch()
    assert batches == []
    assert reading.statuses() == [(FULL, "rejected:bad_manifest")]
    assert f"{FULL}/manifest.json: 'extract' is 'extract-20260101-030000', not the folder's name" in str(error)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: {**m, "files": {"../cases.csv": m["files"]["cases.csv"]}}, "'files' lists '../cases.csv'"),
        (lambda m: {k: v for k, v in m.items() if k != "full"}, "key 'full' is missing"),
        (lambda m: {**m, "full": "true"}, "key 'full' is not a bool"),
        (lambda m: {**m, "created": "2026-01-01T02:04:31"}, "has no UTC offset"),
    ],
)
def test_what_a_manifest_must_be(
    tmp_path: Path, persons_: Pseudonymizer, change: Callable[[dict[str, object]], dict[str, object]], message: str
) -> None:
    drop = drop_with(tmp_path, (FULL, FULL))
    manifest = json.loads((drop / FULL / wire.MANIFEST).read_text(encoding="utf-8"))
    (drop / FULL / wire.MANIFEST).write_text(json.dumps(change(manifest)))
    reading = Reading(drop, persons_)
    _, error = reading.fetch()
    assert reading.statuses() == [(FULL, "rejected:bad_manifest")]
    assert message in str(error)


def test_a_delta_first_has_no_baseline(tmp_path: Path, persons_: Pseudonymizer) -> None:
    reading = Reading(drop_with(tmp_path, (DELTA, DELTA)), persons_)
    batches, error = reading.fetch()
    assert (batches, reading.statuses()) == ([], [(DELTA, "rejected:no_baseline")])
    assert f"{DELTA}: a delta set, but no full set has been applied" in str(error)


def test_missing_files_and_columns(tmp_path: Path, persons_: Pseudonymizer) -> None:
    drop = drop_with(tmp_path, (FULL, FULL))
    edit(drop / FULL, "measures.csv", lambda t: "\r\n".join(";".join(r.split(";")[:-1]) for r in t.split("\r\n")))
    reading = Reading(drop, persons_)
    _, error = reading.fetch()
    assert reading.statuses() == [(FULL, "rejected:missing_column")]
    assert f"{FULL}/measures.csv: required column 'Beloeb' missing" in str(error)
    (drop / FULL / "events.csv").unlink()
    _, error = reading.fetch()
    assert reading.statuses() == [(FULL, "rejected:missing_file")]
    assert f"{FULL}/events.csv: listed in the manifest but not in the folder" in str(error)


def test_a_delta_without_its_deletion_list_is_missing_a_file(tmp_path: Path, persons_: Pseudonymizer) -> None:
    drop = drop_with(tmp_path, (FULL, FULL), (DELTA, DELTA))
    manifest = json.loads((drop / DELTA / wire.MANIFEST).read_text(encoding="utf-8"))
    del manifest["files"]["deleted.csv"]
    (drop / DELTA / wire.MANIFEST).write_text(json.dumps(manifest))
    reading = Reading(drop, persons_)
    _, error = reading.fetch()
    assert reading.statuses() == [(FULL, "applied"), (DELTA, "rejected:missing_file")]
    assert f"{DELTA}/deleted.csv: a required file is not listed in the manifest" in str(error)


def test_a_different_set_under_an_applied_name_is_a_conflict(tmp_path: Path, persons_: Pseudonymizer) -> None:
    drop = drop_with(tmp_path, (FULL, FULL))
    reading = Reading(drop, persons_)
    reading.fetch()
    edit(drop / FULL, "cases.csv", lambda t: t.replace("Bo Åberg", "Bo Aaberg"))
    batches, error = reading.fetch()
    assert (batches, reading.statuses()) == ([], [(FULL, "rejected:conflict")])
    assert f"{FULL}: was applied with another manifest" in str(error)
    assert "cases.csv: sha256 22abee588a0afe405e57d1d0b3d11580163c19aff0dc4693170dcdb95467ffd4 → " in str(error)


def test_a_late_delta_is_out_of_order(tmp_path: Path, persons_: Pseudonymizer) -> None:
    drop = drop_with(tmp_path, (FULL, FULL), (DELTA, DELTA))
    reading = Reading(drop, persons_)
    reading.fetch()
    late = "extract-20260101-120000"
    shutil.copytree(drop_with(tmp_path / "late", (DELTA, late)) / late, drop / late)
    batches, error = reading.fetch()
    assert batches == []
    assert reading.statuses() == [(FULL, "skipped_already_applied"), (late, "rejected:out_of_order"),
                                  (DELTA, "skipped_already_applied")]
    assert f"{late}: arrived after {DELTA}, which is applied" in str(error)


def test_a_rejected_delta_holds_later_ones_back_until_a_full_set_supersedes_them(
    tmp_path: Path, persons_: Pseudonymizer
) -> None:
    d2, d3, f4 = "extract-20260102-020000", "extract-20260103-020000", "extract-20260104-020000"
    drop = drop_with(tmp_path, (FULL, FULL), (DELTA, d2), (DELTA, d3))
    (drop / d2 / "cases.csv").write_bytes((drop / d2 / "cases.csv").read_bytes()[:-40])  # truncated
    reading = Reading(drop, persons_)
    batches, error = reading.fetch()
    assert len(batches) == 1
    assert reading.statuses() == [(FULL, "applied"), (d2, "rejected:manifest_mismatch"), (d3, "pending")]
    assert reading.adapter.report[2].detail == f"waits for {d2} (rejected:manifest_mismatch)"
    assert error is not None
    shutil.copytree(drop_with(tmp_path / "f4", (FULL, f4)) / f4, drop / f4)
    batches, error = reading.fetch()
    assert (error, [b.snapshot for b in batches]) == (None, [True])
    assert reading.statuses() == [(FULL, "skipped_already_applied"), (d2, "superseded"), (d3, "superseded"),
                                  (f4, "applied")]
    reading.fetch()
    assert reading.statuses()[1:3] == [(d2, "superseded"), (d3, "superseded")]


def test_links_in_the_drop_folder_are_not_followed(
    tmp_path: Path, persons_: Pseudonymizer, caplog: pytest.LogCaptureFixture
) -> None:
    drop = drop_with(tmp_path, (FULL, FULL))
    (drop / DELTA).symlink_to(SAMPLE / DELTA, target_is_directory=True)
    (drop / FULL / "events.csv").unlink()
    (drop / FULL / "events.csv").symlink_to(SAMPLE / FULL / "events.csv")
    before = sorted((p.relative_to(drop), p.lstat().st_mtime_ns) for p in drop.rglob("*"))
    reading = Reading(drop, persons_)
    with caplog.at_level(logging.WARNING):
        _, error = reading.fetch()
    assert reading.statuses() == [(FULL, "rejected:missing_file")]
    assert f"{FULL}/events.csv: is not a regular file (a link?); it is not read" in str(error)
    assert f"{DELTA} in the drop folder is a symbolic link; it is not read" in caplog.text
    assert sorted((p.relative_to(drop), p.lstat().st_mtime_ns) for p in drop.rglob("*")) == before  # read only


def test_rows_are_quarantined_with_the_first_class_and_the_rest_of_their_case_applies(
    tmp_path: Path, persons_: Pseudonymizer
) -> None:
    drop = drop_with(tmp_path, (FULL, FULL))
    folder = drop / FULL
    edit(folder, "cases.csv", lambda t: t.replace("010109-4002", "321309-4002") + t.split("\r\n")[5] + "\r\n")
    edit(folder, "measures.csv", lambda t: t.replace("01-06-2025;31-05-2026", "01-06-2025;31-05-2024")
         .replace("BL;32;1;2", "XY;32;1;2"))
    edit(folder, "assessments.csv", lambda t: t.replace("FAMILIE;2;10-12-2025", "FAMILIE;0;31-02-2025"))
    extra = "400098;100002;Journalnotat\r\n400099;999999;Journalnotat;01-01-2026;x\r\n"
    edit(folder, "events.csv", lambda t: t + extra)
    reading = Reading(drop, persons_)
    batches, error = reading.fetch()
    assert error is None  # row problems do not reject the set
    records = {r.source_ref: r for b in batches for r in b.records}
    assert sorted(records) == ["100001", "100002", "100004"]  # 100003's row and both 100005 rows are broken
    assert [m.source_ref for m in records["100001"].measures] == ["200001"]
    assert records["100001"].assessments == ()  # held back with 300002
    assert [e.source_ref for e in records["100001"].events] == ["400001", "400002", "400003", "400004", "400005"]
    assert (records["100002"].measures, [e.source_ref for e in records["100002"].events]) == ((), ["400006"])
    assert [a.theme.value for a in records["100002"].assessments] == ["sundhed"]
    assert batches[-1].kept == {
        "100001": Kept(measures=frozenset({"200002"}), assessments=True),
        "100002": Kept(measures=frozenset({"200003"}), events=frozenset({"400098"})),
    }
    assert reading.adapter.report[0].counts["assessments_held_back"] == 1
    reasons = sorted((j.source_ref or "", j.reason) for b in batches for j in b.rejections)
    at = f"{FULL}/"
    assert reasons == sorted(
        [
            ("100001", f"end_before_start: {at}measures.csv record 2 (ForanstaltningsID 200002): Slut is before Start"),
            ("100001", f"invalid_date: {at}assessments.csv record 2 (MaalingsID 300002): Dato '31-02-2025' is not "
                       "a day on the calendar"),
            ("100002", f"invalid_value: {at}measures.csv record 3 (ForanstaltningsID 200003): Lov 'XY' is not one "
                       "of BL, SEL"),
            ("100002", f"malformed: {at}events.csv record 11 (HaendelsesID 400098): 3 fields, the header has 5"),
            ("100003", f"invalid_cpr: {at}cases.csv record 3 (SagsID 100003): CPR: CPR number holds an impossible "
                       "birth date"),
            ("100003", f"parent_quarantined: {at}measures.csv record 5 (ForanstaltningsID 200005): its case "
                       "'100003' is quarantined"),
            ("100003", f"parent_quarantined: {at}assessments.csv record 4 (MaalingsID 300004): its case '100003' "
                       "is quarantined"),
            ("100003", f"parent_quarantined: {at}events.csv record 7 (HaendelsesID 400007): its case '100003' is "
                       "quarantined"),
            *[("100005", f"duplicate: {at}cases.csv record {n} (SagsID 100005): SagsID '100005' appears more than "
                         "once in the file") for n in (5, 6)],
            *[("100005", f"parent_quarantined: {at}{file} record {n} ({key} {rid}): its case '100005' is "
                         "quarantined")
              for file, n, key, rid in [("assessments.csv", 5, "MaalingsID", "300005"),
                                        ("events.csv", 9, "HaendelsesID", "400009"),
                                        ("events.csv", 10, "HaendelsesID", "400010")]],
            ("", f"orphan: {at}events.csv record 12 (HaendelsesID 400099): SagsID '999999' is not in this "
                   "set's cases.csv"),
        ]
    )
    payload = json.loads(next(j.payload for b in batches for j in b.rejections if "malformed" in j.reason))
    assert payload == {"file": "events.csv", "row": {"fields": ["400098", "100002", "Journalnotat"]}}
    assert reading.adapter.report[0].counts["quarantined"] == len(reasons)


def test_deleting_wins_over_an_upsert_in_the_same_set(tmp_path: Path, persons_: Pseudonymizer) -> None:
    drop = drop_with(tmp_path, (FULL, FULL), (DELTA, DELTA))
    edit(drop / DELTA, "deleted.csv", lambda t: t + "100006\r\n100999\r\n")
    batches, _ = Reading(drop, persons_).fetch()
    assert [r.source_ref for r in batches[-1].records] == ["100002"]
    assert batches[-1].deleted == ["100004", "100006", "100999"]  # an unknown SagsID is a no-op in the store


def test_local_times_are_read_as_zoneinfo_reads_them_with_fold_0() -> None:
    assert wire.parse_timestamp("26-10-2025 02:30:00") == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # first: +02
    assert wire.parse_timestamp("30-03-2025 02:30:00") == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)  # gap: +01
    assert wire.parse_timestamp("15-07-2025 12:00:00") == datetime(2025, 7, 15, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a moment on the calendar"):
        wire.parse_timestamp("31-02-2025 12:00:00")


@pytest.mark.parametrize(("text", "value"), [("12500,50", "12500.50"), ("-3,5", "-3.5"), ("41800", "41800")])
def test_amounts_have_a_decimal_comma(text: str, value: str) -> None:
    assert wire.parse_amount(text) == Decimal(value)


@pytest.mark.parametrize("text", ["1.250,00", "12500.50", "1,255", "12 500,00", ""])
def test_what_is_no_amount(text: str) -> None:
    with pytest.raises(ValueError, match="is not an amount"):
        wire.parse_amount(text)


def test_the_ledger_keeps_older_sets_by_digest_and_still_knows_them() -> None:
    files = {"cases.csv": {"rows": 5, "sha256": "ab" * 32}}
    ledger = Ledger()
    for day in range(1, DETAILED + 3):
        name = f"extract-2026{day // 28 + 1:02d}{day % 28 + 1:02d}-020000"
        ledger = ledger.with_set(AppliedSet.of(name, day == 1, files))
    encoded = json.loads(ledger.encode())["applied"]
    assert [isinstance(entry[2], str) for entry in encoded] == [True, True] + [False] * DETAILED
    again = Ledger.decode(ledger.encode())
    assert again.find(encoded[0][0]) == AppliedSet(encoded[0][0], True, None, files_digest(files))
    assert [s.digest for s in again.applied] == [s.digest for s in ledger.applied]
    assert again.encode() == ledger.encode()


def test_an_old_set_redelivered_different_is_a_conflict_told_by_digest(
    tmp_path: Path, persons_: Pseudonymizer
) -> None:
    drop = drop_with(tmp_path, (FULL, FULL))
    reading = Reading(drop, persons_)
    reading.fetch()
    assert reading.cursor is not None
    old = Ledger.decode(reading.cursor).applied[0]
    reading.cursor = Ledger([AppliedSet(old.name, old.full, None, old.digest)]).encode()
    assert reading.fetch() == ([], None)  # the same set again: known by its digest
    edit(drop / FULL, "cases.csv", lambda t: t.replace("Bo Åberg", "Bo Aaberg"))
    _, error = reading.fetch()
    assert reading.statuses() == [(FULL, "rejected:conflict")]
    delivered = json.loads((drop / FULL / "manifest.json").read_text(encoding="utf-8"))["files"]
    assert f"its files map has the digest {files_digest(delivered)}, the applied one {old.digest}" in str(error)
