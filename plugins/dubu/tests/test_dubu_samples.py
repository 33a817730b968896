"""The reference samples, read as a person reads them: every value written out by hand.

The samples in ``reference/`` are the vendor's examples (copied unchanged from the contract
folder). The adapter must read them exactly as given, quirks included: prefixes, a default
namespace, whitespace around values, offsets, an extension element, an ``IkkeVurderet`` score,
a migrated underretning with a date only, an empty custody container.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from plugins.dubu.tests.fake_dubu import (
    REFERENCE,
    FakeDubu,
    make_adapter,
    mocked,
    persons,
    reference_validator,
    sample,
    soap,
)

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
from bridge_dubu import wire
from bridge_dubu.adapter import DubuFault

CASE = "ff32e9c4-42aa-5468-9e7d-1b72e05c4210"
UNACCOMPANIED = "527eaeb6-3b24-53e7-97f6-6c11e90e3d41"


def test_the_reference_samples_are_valid_against_the_contract() -> None:
    validate = reference_validator()
    for path in sorted(REFERENCE.glob("sample_*.xml")):
        assert validate.validate_envelope(path) == [], path.name


def test_the_listing_sample_reads_as_three_references_a_token_and_the_answer_time() -> None:
    page = wire.read_listing(io.BytesIO(sample("sample_HentAendredeSager_response.xml")))

    assert [(r.uuid, r.modified, r.status) for r in page.references] == [
        ("527eaeb6-3b24-53e7-97f6-6c11e90e3d41", datetime(2024, 5, 21, 10, 59, 40, tzinfo=UTC), "Aktiv"),
        ("ff32e9c4-42aa-5468-9e7d-1b72e05c4210", datetime(2024, 5, 21, 11, 5, 9, 123000, tzinfo=UTC), "Aktiv"),
        ("7068fc57-14f0-56d2-92e7-d23bd0d54ade", datetime(2024, 5, 21, 11, 6, tzinfo=UTC), None),
    ]
    assert page.token == "eyJvIjozLCJ0IjoiMjAyNC0wNS0wMVQwMDowMDowMCswMjowMCJ9"
    assert page.answered_at == datetime(2024, 6, 12, 0, 0, 3, 417000, tzinfo=UTC)
    assert page.broken == ()
    # In instants the page is in order although the strings are not ("13:05+02:00" < "11:06Z").
    instants = [r.modified for r in page.references]
    assert instants == sorted(instants)
    assert [r.modified.isoformat() for r in page.references] != sorted(r.modified.isoformat() for r in page.references)


def test_the_case_sample_maps_to_the_record_a_person_reads_from_it() -> None:
    keys = persons()
    record = make_adapter().parse_payload(sample("sample_HentSag_response.xml").decode())

    child = keys.person("150314-4001")
    notification = "3fd46355-f1a6-57c3-84d8-3423c9a550a8"
    investigation = "2dea7a50-3422-5219-993b-35a270661b16"
    assert record == CaseRecord(
        source_ref=CASE,
        municipality="851",
        child_key=child.key,
        child_birth_date=date(2014, 3, 15),  # 7th digit 4, year 14: born 2014
        child_sex="M",  # last digit odd
        family_key=keys.family_key(["150385-1002", "070688-2001"]),  # a holder without the dash, no Relation
        caseworker=CaseworkerRecord(source_ref="ATE", name="Anne Testrup"),  # no BrugerUUID: the initials
        case_number="27.24.00-G01-118-23",
        kle="27.24.00",
        target_group=TargetGroup.udsatte,
        opened=date(2023, 2, 14),
        status=CaseStatus.open,
        source_modified=datetime(2024, 5, 21, 11, 5, 9, 123000, tzinfo=UTC),
        measures=(
            MeasureRecord(
                source_ref="3f51b4ea-e022-56a3-8031-bbc64e708625",
                act=Act.SEL,
                paragraph="52 stk. 3 nr. 3",
                start=date(2023, 7, 1),
                end=date(2023, 12, 31),
                has_grant=True,  # " true " with whitespace
                account_code="5.28.21",
                provider="Familiecenter Nord (kommunalt tilbud)",
            ),
            MeasureRecord(
                source_ref="331e9966-d085-5ff5-914f-797c17321b1a",
                act=Act.BL,
                paragraph="32 stk. 1 nr. 3",
                start=date(2024, 1, 2),
                has_grant=True,  # "1"
                account_code="5.28.21",
                provider="Kontaktpersonkorpset",
            ),
        ),
        assessments=(
            AssessmentRecord(theme=Theme.udvikling_adfaerd, value=4, assessed_on=date(2023, 6, 8), assessor="ATE"),
            AssessmentRecord(theme=Theme.familieforhold, value=4, assessed_on=date(2023, 6, 8), assessor="ATE"),
            AssessmentRecord(theme=Theme.skole_beskaeftigelse, value=5, assessed_on=date(2023, 6, 8), assessor="ATE"),
            AssessmentRecord(theme=Theme.sundhed, value=None, assessed_on=date(2023, 6, 8), assessor="ATE"),
            AssessmentRecord(theme=Theme.fritid_venskaber, value=3, assessed_on=date(2023, 6, 8), assessor="ATE"),
            AssessmentRecord(theme=Theme.udvikling_adfaerd, value=3, assessed_on=date(2024, 3, 1)),
            AssessmentRecord(theme=Theme.skole_beskaeftigelse, value=4, assessed_on=date(2024, 3, 1)),
        ),
        events=(
            # Received 14:40 Danish winter time (13:40 UTC), assessed 08:05 UTC the next day: 18 h 25 min.
            CaseEventRecord(
                kind=EventKind.notification,
                occurred_on=date(2023, 2, 13),
                occurred_at=datetime(2023, 2, 13, 13, 40, tzinfo=UTC),
                source_ref=notification,
            ),
            CaseEventRecord(
                kind=EventKind.notification_assessed,
                occurred_on=date(2023, 2, 14),
                occurred_at=datetime(2023, 2, 14, 8, 5, tzinfo=UTC),
                source_ref=notification,
            ),
            CaseEventRecord(
                kind=EventKind.investigation_started, occurred_on=date(2023, 2, 20), source_ref=investigation
            ),
            CaseEventRecord(kind=EventKind.consent, occurred_on=date(2023, 2, 20)),
            CaseEventRecord(kind=EventKind.child_conversation, occurred_on=date(2023, 3, 2)),
            CaseEventRecord(
                kind=EventKind.investigation_completed, occurred_on=date(2023, 6, 8), source_ref=investigation
            ),
            CaseEventRecord(kind=EventKind.plan_made, occurred_on=date(2023, 6, 20)),
            CaseEventRecord(kind=EventKind.consent, occurred_on=date(2023, 6, 22)),
            CaseEventRecord(
                kind=EventKind.decision,
                occurred_on=date(2023, 6, 26),
                source_ref="0ce26407-790e-5fb1-a78c-bb54c1aad19a",
            ),
            CaseEventRecord(kind=EventKind.follow_up, occurred_on=date(2023, 9, 19)),
            CaseEventRecord(
                kind=EventKind.decision,
                occurred_on=date(2024, 1, 2),
                source_ref="773d040e-79cd-5572-ab16-05b15b82f9e1",
            ),
            CaseEventRecord(kind=EventKind.follow_up, occurred_on=date(2024, 3, 1)),
            CaseEventRecord(kind=EventKind.plan_made, occurred_on=date(2024, 3, 1)),
        ),
    )
    assert record.child_cpr is None  # keys only, unless the installation opted in


def test_the_unaccompanied_minors_case_maps_with_no_family_and_a_migrated_underretning() -> None:
    keys = persons()
    record = make_adapter().parse_payload(sample("sample_HentSag_response_ingen_myndighed.xml").decode())

    assert record == CaseRecord(
        source_ref=UNACCOMPANIED,
        municipality="851",
        child_key=keys.person("030909-4002").key,
        child_birth_date=date(2009, 9, 3),
        child_sex="F",
        family_key=None,  # custody with no holder in Denmark: an empty container
        caseworker=CaseworkerRecord(
            source_ref="9c5a8ee1-2d9c-5cb5-8ca0-c584c49a0d73",
            name="Jonas Prøvesen",
            unit="Børn og Familie, Team Uledsagede",
        ),
        case_number="27.24.00-G01-41-19",
        kle="27.24.00",  # no KLEEmne: read from the case number
        target_group=TargetGroup.udsatte,
        opened=date(2019, 8, 12),
        status=CaseStatus.open,
        source_modified=datetime(2024, 5, 21, 10, 59, 40, tzinfo=UTC),
        measures=(
            MeasureRecord(
                source_ref="574eca89-e840-5915-b0fa-be0fd909c1a4",
                act=Act.BL,
                paragraph="32 stk. 1 nr. 1",
                start=date(2024, 1, 15),
                has_grant=True,
                account_code="5.28.21",
            ),
        ),
        assessments=(
            AssessmentRecord(theme=Theme.sundhed, value=2, assessed_on=date(2024, 4, 30), assessor="Jonas Prøvesen"),
        ),
        events=(
            # Migrated from DUBU 2.0: a date only, no time, not assessed, no UUID.
            CaseEventRecord(kind=EventKind.notification, occurred_on=date(2019, 8, 9)),
            CaseEventRecord(kind=EventKind.investigation_started, occurred_on=date(2019, 8, 15)),
            CaseEventRecord(kind=EventKind.investigation_completed, occurred_on=date(2019, 12, 2)),
            CaseEventRecord(kind=EventKind.decision, occurred_on=date(2024, 1, 10)),
        ),
    )


FAULT_TEXT = (
    "Sag 7068fc57-14f0-56d2-92e7-d23bd0d54ade kan ikke udleveres: sagen er under flytning til anden handlekommune."
)


def test_the_fault_sample_reads_as_code_text_and_kind() -> None:
    fault = wire.parse_fault(sample("sample_fault.xml"))
    assert fault == wire.Fault(
        fault_code="soap:Server", fault_string="Sagen kan ikke udleveres", code="3002", text=FAULT_TEXT
    )


def test_the_fault_sample_as_an_answer_becomes_an_error_naming_operation_code_and_text() -> None:
    fake = FakeDubu().then(wire.Operation.list_changed, soap(sample("sample_fault.xml"), 500))
    with mocked(fake), pytest.raises(DubuFault) as raised:
        list(make_adapter().fetch(None))
    message = str(raised.value)
    assert "HentAendredeSager" in message
    assert "3002" in message
    assert FAULT_TEXT in message
    assert len(fake.requests) == 1  # a fault is an answer: read, not retried


def test_the_fault_sample_for_one_case_quarantines_it_with_code_and_text() -> None:
    fake = FakeDubu().then(wire.Operation.fetch_case, soap(sample("sample_fault.xml"), 500))
    with mocked(fake):
        batches = list(make_adapter().refetch(["7068fc57-14f0-56d2-92e7-d23bd0d54ade"]))
    [rejection] = [r for b in batches for r in b.rejections]
    assert rejection.source_ref == "7068fc57-14f0-56d2-92e7-d23bd0d54ade"
    assert "3002" in rejection.reason
    assert FAULT_TEXT in rejection.reason


def test_the_adapters_requests_are_valid_and_say_what_the_request_samples_say(tmp_path: Path) -> None:
    page_2_token = "eyJvIjozLCJ0IjoiMjAyNC0wNS0wMVQwMDowMDowMCswMjowMCJ9"
    fake = FakeDubu().then(
        wire.Operation.list_changed,
        sample("sample_HentAendredeSager_response.xml"),
        wire.render_listing(wire.ListingPage((), None, None)),
    )
    fake.default[wire.Operation.fetch_case] = lambda call: soap(sample("sample_HentSag_response.xml"))
    since = datetime(2024, 4, 30, 22, 0, tzinfo=UTC)  # the sample's 2024-05-01T00:00:00+02:00
    with mocked(fake):
        list(make_adapter(listing_passes=1).fetch(f'{{"since": "{since.isoformat()}"}}'))
    validate = reference_validator()
    for n, raw in enumerate(fake.raw):
        path = tmp_path / f"request-{n}.xml"
        path.write_bytes(raw.content)
        assert validate.validate_envelope(path) == [], path.read_text()
        assert raw.headers["Content-Type"] == "text/xml; charset=utf-8"
    second = fake.listed()[1]
    expected = wire.read_request(sample("sample_HentAendredeSager_request.xml"))
    assert second.listing is not None
    assert expected.listing is not None
    assert second.listing.token == expected.listing.token == page_2_token  # copied verbatim
    assert wire.parse_instant(second.listing.changed_after or "", "") == wire.parse_instant(
        expected.listing.changed_after or "", ""
    )  # the same AendretEfter on every page, as an instant
    assert second.listing.max_count == "500"
    assert second.context == wire.InvocationContext(
        expected.context.service_agreement,  # type: ignore[union-attr]
        expected.context.user_system,  # type: ignore[union-attr]
        expected.context.user,  # type: ignore[union-attr]
        expected.context.service,  # type: ignore[union-attr]
        accounting="bridge",
    )
    fetches = [r for r in fake.raw if r.headers["SOAPAction"].endswith('HentSag"')]
    assert len(fetches) == 3
    assert (
        fake.raw[0].headers["SOAPAction"]
        == '"http://serviceplatformen.dk/xml/wsdl/soap11/DUBU/HentSager/1/HentAendredeSager"'
    )
