"""Trust no filter: what DUBU sends that this source did not ask for is left out and counted, never stored."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from plugins.dubu.tests.fake_dubu import FakeDubu, listing, make_adapter, mocked, sample, soap

from bridge_dubu import wire

CASE = "ff32e9c4-42aa-5468-9e7d-1b72e05c4210"
UNACCOMPANIED = "527eaeb6-3b24-53e7-97f6-6c11e90e3d41"
ANSWERS = {CASE: "sample_HentSag_response.xml", UNACCOMPANIED: "sample_HentSag_response_ingen_myndighed.xml"}
CHANGED = datetime(2024, 5, 21, 11, 5, 9, tzinfo=UTC)


def serving(answers: dict[str, bytes]) -> FakeDubu:
    fake = FakeDubu().then(
        wire.Operation.list_changed,
        listing(
            wire.SagReference(UNACCOMPANIED, datetime(2024, 5, 21, 10, 59, 40, tzinfo=UTC)),
            wire.SagReference(CASE, CHANGED),
        ),
    )
    fake.default[wire.Operation.fetch_case] = lambda call: soap(answers[call.case_uuid or ""])
    return fake


def test_a_case_of_another_municipality_is_left_out_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    answers = {uuid: sample(name) for uuid, name in ANSWERS.items()}
    answers[UNACCOMPANIED] = answers[UNACCOMPANIED].replace(b"<Kommunekode>851<", b"<Kommunekode>461<")
    caplog.set_level(logging.INFO)
    with mocked(serving(answers)):
        batches = list(make_adapter(listing_passes=1).fetch(None))
    assert [r.source_ref for b in batches for r in b.records] == [CASE]
    assert [r for b in batches for r in b.rejections] == []
    assert "left out: 1 case(s) of another municipality (Kommunekode)" in caplog.text
    assert "030909" not in caplog.text  # the SagUUID names the case, never the CPR


def test_a_listed_case_older_than_asked_for_is_not_fetched_and_is_counted(caplog: pytest.LogCaptureFixture) -> None:
    fake = serving({uuid: sample(name) for uuid, name in ANSWERS.items()})
    with mocked(fake):
        batches = list(make_adapter(listing_passes=1).fetch(f'{{"since": "{CHANGED.isoformat()}"}}'))
    assert [r.source_ref for b in batches for r in b.records] == [CASE]
    assert [call.case_uuid for call in fake.listed(wire.Operation.fetch_case)] == [CASE]
    assert f"left out: 1 listed case(s) changed before the {wire.NAMES.changed_after} asked for" in caplog.text
