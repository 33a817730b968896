"""Danmarks Statistik deliveries: L201/L231 read back to the same measures, bad entries quarantined
with reasons, imports onto a source's cases that a second import and a later sync leave alone."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bridge.config import BridgeConfig, parse_config
from bridge.dst.codes import DEFAULT_CODES, L201_CODES, L231_CODES, UnknownCode, load_code_list
from bridge.dst.files import DeliveryLine, DstMeasure, DstRejection, read_delivery, write_l201, write_l231
from bridge.dst.importer import import_delivery
from bridge.errors import ConfigError
from bridge.model.records import Act, MeasureRecord, TargetGroup
from bridge.privacy import Pseudonymizer, is_unknown_cpr
from bridge.store import Store
from bridge.sync import run_sync
from bridge.synthetic.adapter import SyntheticConfig
from bridge.synthetic.truth import GroundTruth, TruthMeasure
from tests.conftest import TEST_SECRET
from tests.storecheck import bridge_cli, dump, stored_records

MUNICIPALITY = "461"
SOURCE = "syn"
SETTINGS: dict[str, Any] = {"seed": 7, "caseworkers": 4, "page_size": 50}


def make_config(**settings: Any) -> BridgeConfig:
    source = {
        "name": SOURCE,
        "adapter": "synthetic",
        "municipality": MUNICIPALITY,
        "settings": {**SETTINGS, **settings},
    }
    return parse_config({"sources": [source]}, Path("."))


def truth_for(**settings: Any) -> GroundTruth:
    return SyntheticConfig(**{**SETTINGS, **settings}).truth(MUNICIPALITY)


def lines_of(truth: GroundTruth, group: TargetGroup) -> list[DeliveryLine]:
    """What the fagsystem would report to DST for the truth's measures of ``group``."""
    codes = L201_CODES if group is TargetGroup.udsatte else L231_CODES
    lines = []
    for case in truth.valid_cases():
        if case.target_group is not group:
            continue
        for m in case.measures:
            code = codes.code_for(m.act, m.paragraph)
            assert code is not None, (m.act, m.paragraph)
            guardian = next((g for g in case.child.guardians if not is_unknown_cpr(g)), None)
            lines.append(DeliveryLine(case.child.cpr, f"L-{m.ref}", code, m.start, m.end, guardian_cpr=guardian))
    return lines


def imported(m: TruthMeasure) -> MeasureRecord:
    """What an imported delivery line of ``m`` is stored as (the fagsystem reported it as ``L-<ref>``)."""
    return MeasureRecord(
        source_ref=f"dst:L-{m.ref}", act=m.act, paragraph=m.paragraph, start=m.start, end=m.end, has_grant=True
    )


def expected_measures(
    truth: GroundTruth, group: TargetGroup, persons: Pseudonymizer
) -> list[tuple[str, MeasureRecord]]:
    return sorted(
        (
            (
                persons.person(case.child.cpr).key,
                imported(m),
            )
            for case in truth.valid_cases()
            if case.target_group is group
            for m in case.measures
        ),
        key=lambda pair: (pair[0], pair[1].source_ref),
    )


def read_back(path: Path, persons: Pseudonymizer) -> list[tuple[str, MeasureRecord]]:
    entries = list(read_delivery(path, DEFAULT_CODES, persons))
    assert all(isinstance(e, DstMeasure) for e in entries), [e for e in entries if isinstance(e, DstRejection)]
    return sorted(
        ((e.child_key, e.measure) for e in entries if isinstance(e, DstMeasure)), key=lambda p: (p[0], p[1].source_ref)
    )


def test_a_code_stands_for_the_serviceloven_paragraph_before_2024_and_barnets_lov_after() -> None:
    assert L201_CODES.basis("220", date(2023, 12, 31)) == (Act.SEL, "52 stk. 3 nr. 3")
    assert L201_CODES.basis("220", date(2024, 1, 1)) == (Act.BL, "32")
    assert L201_CODES.basis(" 405 ", date(2024, 6, 1)) == (Act.SEL, "11 stk. 3 nr. 1")  # known under SEL only
    with pytest.raises(UnknownCode, match="'999' is not in the code list"):
        L201_CODES.basis("999", date(2024, 1, 1))


def test_a_code_list_file_corrects_and_extends_the_default(tmp_path: Path) -> None:
    path = tmp_path / "codes.toml"
    path.write_text('[l201.220]\nSEL = "52 stk. 3 nr. 4"\n[l201.999]\nBL = "47"\nlabel = "Ny kode"\n', encoding="utf-8")
    codes = load_code_list(path)
    assert codes["l201"].basis("220", date(2023, 1, 1)) == (Act.SEL, "52 stk. 3 nr. 4")
    assert codes["l201"].basis("999", date(2024, 2, 1)) == (Act.BL, "47")
    assert codes["l231"] is DEFAULT_CODES["l231"]
    path.write_text('[l201.998]\nlabel = "no paragraph"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[l201.998\] needs SEL or BL"):
        load_code_list(path)


def test_a_generated_l201_and_l231_read_back_to_the_same_measures(tmp_path: Path, persons: Pseudonymizer) -> None:
    truth = truth_for()
    for group, write in ((TargetGroup.udsatte, write_l201), (TargetGroup.handicap, write_l231)):
        path = write(tmp_path / f"{group.value}.xml", lines_of(truth, group), municipality=MUNICIPALITY)
        expected = expected_measures(truth, group, persons)
        assert expected  # the truth has measures of both groups
        assert read_back(path, persons) == expected
        assert {m.act for _, m in expected} == {Act.SEL, Act.BL}  # both acts, chosen by date


BAD_LINES = [
    DeliveryLine("321399-1234", "bad-cpr", "220", "2023-03-01"),
    DeliveryLine("010415-4001", "backwards", "220", "2023-03-01", "2023-02-01"),
    DeliveryLine("010415-4001", "unknown-code", "999", "2023-03-01"),
    DeliveryLine("010415-4001", "no-such-day", "220", "2023-02-30"),
]


def test_malformed_entries_are_rejected_with_reasons_that_hold_no_cpr(tmp_path: Path, persons: Pseudonymizer) -> None:
    path = write_l201(tmp_path / "bad.xml", BAD_LINES, municipality=MUNICIPALITY)
    entries = list(read_delivery(path, DEFAULT_CODES, persons))
    assert [(e.ref, e.reason) for e in entries if isinstance(e, DstRejection)] == [
        ("dst:bad-cpr", "CPR number holds an impossible birth date"),
        ("dst:backwards", "measure ends before it starts"),
        ("dst:unknown-code", "the DST code '999' is not in the code list"),
        ("dst:no-such-day", "ForanstaltningStartDato is not a date that exists"),
    ]
    assert all("3213991234" in e.payload or "0104154001" in e.payload for e in entries if isinstance(e, DstRejection))


def test_a_file_with_a_doctype_is_refused_whole(tmp_path: Path, persons: Pseudonymizer) -> None:
    path = tmp_path / "xxe.xml"
    path.write_text('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>')
    with pytest.raises(ValueError, match="DOCTYPE"):
        list(read_delivery(path, DEFAULT_CODES, persons))


def import_lines(store: Store, tmp_path: Path, lines: list[DeliveryLine]) -> Any:
    path = write_l201(tmp_path / "L201.xml", lines, municipality=MUNICIPALITY)
    return import_delivery(store, make_config(), SOURCE, path)


def dst_measures(store: Store) -> dict[str, set[MeasureRecord]]:
    return {
        ref: {m for m in record.measures if m.source_ref.startswith("dst:")}
        for ref, record in stored_records(store, SOURCE).items()
    }


def test_an_import_puts_each_measure_on_its_childs_case_and_a_second_import_changes_nothing(
    store: Store, secret_env: str, tmp_path: Path, persons: Pseudonymizer
) -> None:
    run_sync(store, make_config(), SOURCE)
    truth = truth_for()
    good = lines_of(truth, TargetGroup.udsatte)
    case = next(c for c in truth.valid_cases() if c.measures and c.target_group is TargetGroup.udsatte)
    own = case.measures[0]
    reported_by_the_source = DeliveryLine(case.child.cpr, own.ref, "220", own.start)  # same id as the source's own
    stranger = DeliveryLine("020315-4002", "stranger", "220", "2023-03-01")  # a child the source has no case of
    lines = [*good, reported_by_the_source, stranger, *BAD_LINES]

    first = import_lines(store, tmp_path, lines)

    assert (first.entries, first.inserted, first.known, first.quarantined) == (len(lines), len(good), 1, 5)
    expected: dict[str, set[MeasureRecord]] = {str(c.id): set() for c in truth.valid_cases()}
    for c in truth.valid_cases():
        if c.target_group is TargetGroup.udsatte:
            expected[str(c.id)] = {imported(m) for m in c.measures}
    assert dst_measures(store) == expected
    with store.engine.connect() as conn:
        reasons = dict(conn.execute(text("SELECT source_ref, reason FROM quarantine")).all())
    assert reasons == {
        "dst:stranger": f"no case of this child in source {SOURCE}",
        "dst:bad-cpr": "CPR number holds an impossible birth date",
        "dst:backwards": "measure ends before it starts",
        "dst:unknown-code": "the DST code '999' is not in the code list",
        "dst:no-such-day": "ForanstaltningStartDato is not a date that exists",
    }

    before = dump(store)
    second = import_lines(store, tmp_path, lines)
    assert dump(store) == before
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, len(good))


def test_a_sync_that_rewrites_a_case_keeps_its_imported_measures(store: Store, secret_env: str, tmp_path: Path) -> None:
    run_sync(store, make_config(), SOURCE)
    import_lines(store, tmp_path, lines_of(truth_for(), TargetGroup.udsatte))
    imported = dst_measures(store)

    run = run_sync(store, make_config(touched=1, touch_count=8), SOURCE)

    assert run.updated == 8
    assert dst_measures(store) == imported


def test_bridge_import_dst_reports_what_it_did_and_exits_4_with_quarantined_entries(
    store_url: str, tmp_path: Path
) -> None:
    (tmp_path / "bridge.toml").write_text(
        f'[[sources]]\nname = "{SOURCE}"\nadapter = "synthetic"\nmunicipality = "{MUNICIPALITY}"\n'
        "[sources.settings]\nseed = 7\ncaseworkers = 4\n",
        encoding="utf-8",
    )
    env = {"BRIDGE_DATABASE_URL": store_url, "BRIDGE_PERSON_KEY_SECRET": TEST_SECRET}
    assert bridge_cli("sync", cwd=tmp_path, env=env).returncode == 0
    path = write_l201(
        tmp_path / "L201.xml", [*lines_of(truth_for(), TargetGroup.udsatte), *BAD_LINES], municipality=MUNICIPALITY
    )
    done = bridge_cli("import-dst", str(path), "--source", SOURCE, "--format", "json", cwd=tmp_path, env=env)
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    assert "measures added" in done.stdout
    assert "the DST code '999' is not in the code list" in done.stdout
    assert "3213991234" not in done.stdout + done.stderr
