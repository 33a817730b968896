"""The sbsys adapter against a hand-written SBSIP (respx): auth, paging, retries, mapping."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime

import httpx
import pytest
from plugins.sbsys.tests.fake_sbsip import (
    CHILD_CPR,
    REFERENCE,
    TOKEN_URL,
    FakeSbsip,
    children_sag,
    grant_sag,
    make_adapter,
    mocked,
    score_xml,
)
from pydantic import ValidationError

from bridge.adapter import Batch, Rejection
from bridge.errors import AdapterError, AuthError
from bridge.model.records import Act, CaseRecord, CaseStatus, EventKind, Theme
from bridge_sbsys import wire
from bridge_sbsys.adapter import _BearerAuth


def fetch_all(fake: FakeSbsip, cursor: str | None = None, **settings: object) -> list[Batch]:
    with mocked(fake):
        adapter = make_adapter(**settings)
        try:
            return list(adapter.fetch(cursor))
        finally:
            adapter.close()


def records(batches: list[Batch]) -> dict[str, CaseRecord]:
    return {r.source_ref: r for b in batches for r in b.records}


def rejections(batches: list[Batch]) -> dict[str | None, Rejection]:
    return {r.source_ref: r for b in batches for r in b.rejections}


def one_case(**changes: object) -> FakeSbsip:
    fake = FakeSbsip()
    fake.add_case(children_sag(1, **changes))
    return fake


# --- authentication ---------------------------------------------------------------------------


def test_client_credentials_grant_sends_the_client_only() -> None:
    fake = one_case()
    fetch_all(fake)
    assert fake.token_forms == [{"grant_type": "client_credentials", "client_id": "bridge", "client_secret": "right"}]


def test_password_grant_sends_the_service_user() -> None:
    fake = one_case()
    with mocked(fake):
        make_adapter(grant_type="password", username="svc-bridge", password="pw").check()
    assert fake.token_forms == [
        {
            "grant_type": "password",
            "client_id": "bridge",
            "client_secret": "right",
            "username": "svc-bridge",
            "password": "pw",
        }
    ]
    assert fake.calls["search"] == 0  # check() authenticates and reads nothing


def test_password_grant_without_a_user_is_a_configuration_error() -> None:
    with pytest.raises(ValidationError, match="username and password"):
        make_adapter(grant_type="password")


def test_token_is_renewed_shortly_before_it_expires() -> None:
    issued: list[str] = []
    now = [0.0]

    def fetch() -> wire.Token:
        issued.append(f"t{len(issued) + 1}")
        return wire.Token(issued[-1], expires_in=100)

    auth = _BearerAuth(fetch, clock=lambda: now[0])
    assert auth.token() == "t1"
    now[0] = 79.9  # 20 s (a fifth of the lifetime) before expiry it is still used
    assert auth.token() == "t1"
    now[0] = 80.0
    assert auth.token() == "t2"
    assert issued == ["t1", "t2"]


def test_expired_token_is_renewed_through_the_adapter() -> None:
    fake = one_case()
    fake.expires_in = 100
    now = [0.0]
    with mocked(fake):
        adapter = make_adapter()
        adapter._auth = _BearerAuth(adapter._request_token, clock=lambda: now[0])
        list(adapter.fetch(None))
        assert fake.calls["token"] == 1
        now[0] = 1000.0
        list(adapter.fetch(None))
        adapter.close()
    assert fake.calls["token"] == 2


def test_a_401_renews_the_token_once_and_repeats_the_request() -> None:
    fake = one_case()
    with mocked(fake):
        adapter = make_adapter()
        adapter.check()
        fake.valid_tokens.clear()  # the server forgot our token (restart, revocation)
        found = records(list(adapter.fetch(None)))
        adapter.close()
    assert set(found) == {"1"}
    assert fake.calls["token"] == 2


def test_a_second_401_is_an_auth_error() -> None:
    fake = one_case()
    fake.faults["search"] = [httpx.Response(401), httpx.Response(401)]
    with pytest.raises(AuthError, match="refused our credentials"):
        fetch_all(fake)
    assert fake.calls["token"] == 2
    assert fake.calls["search"] == 2


def test_wrong_credentials_fail_fast_and_name_the_token_endpoint() -> None:
    fake = one_case()
    with mocked(fake), pytest.raises(AuthError) as raised:
        make_adapter(client_secret="wrong").check()
    assert TOKEN_URL in str(raised.value)
    assert "invalid_client" in str(raised.value)
    assert "wrong" not in str(raised.value)
    assert fake.calls["token"] == 1  # not retried


# --- paging and retries -------------------------------------------------------------------------


def test_paging_reads_past_the_last_partial_page_to_an_empty_one() -> None:
    fake = FakeSbsip()
    for sag_id in range(1, 8):
        fake.add_case(children_sag(sag_id))
    batches = fetch_all(fake, page_size=3)
    assert sorted(records(batches), key=int) == [str(i) for i in range(1, 8)]
    case_searches = [b for b in fake.search_bodies if b["NummerInterval"]["From"] == "27.24.00-G01"]
    assert [(b["Skip"], b["Limit"]) for b in case_searches] == [(0, 3), (3, 3), (6, 3), (7, 3)]
    assert case_searches[0]["NummerInterval"] == {"From": "27.24.00-G01", "To": "27.24.00-G02"}
    assert "SenestAendretFra" not in case_searches[0]  # a first sync reads everything


def test_a_mid_run_cursor_resumes_after_its_page() -> None:
    fake = FakeSbsip()
    for sag_id in range(1, 8):
        fake.add_case(children_sag(sag_id))
    first = fetch_all(fake, page_size=3)[0]
    assert sorted(r.source_ref for r in first.records) == ["1", "2", "3"]
    fake.search_bodies.clear()
    resumed = fetch_all(fake, first.cursor, page_size=3)
    assert sorted(records(resumed), key=int) == ["4", "5", "6", "7"]
    assert fake.search_bodies[0]["Skip"] == 3


def test_the_next_cursor_is_the_run_start_or_latest_change_less_the_overlap() -> None:
    fake = FakeSbsip()
    fake.add_case(children_sag(1, modified="2024-01-15T10:00:00.123+01:00"))
    fake.add_case(children_sag(2, modified="2023-06-01T08:00:00.000+02:00"))
    final = fetch_all(fake, overlap_seconds=600)[-1]
    # The fake answers with Date 12:00 UTC; the latest change is 09:00:00.123 UTC.
    assert json.loads(final.cursor or "") == {"since": "2024-01-15T08:50:00.123000+00:00"}
    fake.search_bodies.clear()
    fetch_all(fake, final.cursor)
    paged = [b for b in fake.search_bodies if "PrimaerPerson" not in b]  # not the per-child grant lookups
    assert {b["NummerInterval"]["From"] for b in paged} == {"27.24.00-G01", "27.27.00"}
    assert {b["SenestAendretFra"] for b in paged} == {"2024-01-15T09:50:00.123+01:00"}


@pytest.mark.parametrize(
    ("route", "status", "headers"),
    [
        ("search", 503, {}),
        ("search", 429, {"Retry-After": "0"}),
        ("sag", 502, {}),
        ("fil", 504, {}),
        ("token", 503, {}),
    ],
)
def test_transient_answers_are_retried(route: str, status: int, headers: dict[str, str]) -> None:
    fake = FakeSbsip()
    fake.add_case(children_sag(1), score_forms=[score_xml("<trivsel_familieforhold>2</trivsel_familieforhold>")])
    fake.faults[route] = [httpx.Response(status, headers=headers) for _ in range(2)]
    found = records(fetch_all(fake))
    assert set(found) == {"1"}
    assert found["1"].assessments[0].value == 2
    assert not fake.faults[route]  # both faults were answered, then the real answer came


@pytest.mark.parametrize(("status", "error"), [(400, AdapterError), (403, AuthError), (404, None)])
def test_client_errors_are_not_retried(status: int, error: type[Exception] | None) -> None:
    fake = one_case()
    fake.faults["search"] = [httpx.Response(status, json={"Message": "nej"})]
    if error is None:  # a search that is not found is an error too, just not an auth one
        error = AdapterError
    with pytest.raises(error):
        fetch_all(fake)
    assert fake.calls["search"] == 1


def test_a_case_answering_404_once_is_fetched_again_and_stored() -> None:
    fake = FakeSbsip()
    fake.add_case(children_sag(1))
    fake.add_case(children_sag(2))
    fake.faults["sag"] = [httpx.Response(404, json={"Message": "Sag blev ikke fundet"})]
    batches = fetch_all(fake)
    assert set(records(batches)) == {"1", "2"}
    assert not rejections(batches)


@pytest.mark.parametrize("route", ["sag", "erindring", "journalarknotes", "dokumenter", "fil"])
def test_a_listed_case_whose_request_keeps_failing_is_quarantined_as_incomplete(route: str) -> None:
    """Never stored without its scores or events, and never taken as deleted (issue 8, defect 4)."""
    fake = FakeSbsip()
    fake.add_case(children_sag(1), score_forms=[score_xml("<trivsel_familieforhold>2</trivsel_familieforhold>")])
    fake.faults[route] = [httpx.Response(404, json={"Message": "Ikke fundet"}) for _ in range(2)]
    batches = fetch_all(fake, concurrency=1)
    assert not records(batches)
    rejected = rejections(batches)["1"]
    assert rejected.is_incomplete
    assert "404" in rejected.reason
    assert not fake.faults[route]  # asked twice: the first try and one retry


def test_an_incomplete_case_is_fetched_again_by_reference() -> None:
    fake = FakeSbsip()
    fake.add_case(children_sag(1), score_forms=[score_xml("<trivsel_familieforhold>2</trivsel_familieforhold>")])
    fake.add_case(children_sag(2))
    with mocked(fake):
        adapter = make_adapter()
        try:
            batches = list(adapter.refetch(["1", "2", "3"]))  # 3 is gone: SB-SYS answers 404
        finally:
            adapter.close()
    assert set(records(batches)) == {"1", "2"}
    assert records(batches)["1"].assessments[0].value == 2
    assert not rejections(batches)
    assert {b.cursor for b in batches} == {None}
    assert fake.calls["search"] == 2  # the two children's grant searches; no listing


# --- mapping -------------------------------------------------------------------------------------


def test_casing_variants_read_alike() -> None:
    reference = children_sag(1)
    swapped = children_sag(2)
    swapped["PrimaryPart"] = {"PartType": "Person", "CprNummer": CHILD_CPR, "Navn": "x"}
    for person in swapped["Personer"]:
        person["CPRnummer"] = person.pop("CprNummer")
        if "MorCPR" in person:
            person["morCpr"] = person.pop("MorCPR")
    swapped["sagsStatus"] = swapped.pop("SagsStatus")
    fake = FakeSbsip()
    fake.add_case(reference)
    fake.add_case(swapped)
    found = records(fetch_all(fake))
    one, two = found["1"], found["2"]
    assert one.child_key == two.child_key
    assert one.family_key == two.family_key is not None
    assert one.status == two.status == CaseStatus.open


def test_unknown_father_is_not_an_error() -> None:
    sag = children_sag(1)
    sag["Personer"][0]["FarCPR"] = "000000-0000"
    fake = FakeSbsip()
    fake.add_case(sag)
    fake.add_case(children_sag(2))
    found = records(fetch_all(fake))
    persons = make_adapter().context.persons
    assert found["1"].family_key == persons.family_key(["010862-9996"])
    assert found["2"].family_key == persons.family_key(["010862-9996", "010858-9995"])
    assert found["1"].child_birth_date == date(1990, 4, 1)  # from the CPR, not FoedeDato (1900)


def test_summer_and_winter_offsets_are_normalised_to_utc() -> None:
    fake = FakeSbsip()
    fake.add_case(children_sag(1, modified="2024-07-01T12:00:00.000+02:00", Oprettet="2019-11-18T00:30:00.000+01:00"))
    fake.add_case(children_sag(2, modified="2024-01-15T10:00:00.123+01:00", Oprettet="2019-06-18T00:30:00.000+02:00"))
    found = records(fetch_all(fake))
    assert found["1"].source_modified == datetime(2024, 7, 1, 10, 0, tzinfo=UTC)
    assert found["2"].source_modified == datetime(2024, 1, 15, 9, 0, 0, 123000, tzinfo=UTC)
    # A date is the local calendar day, though in UTC it was still the day before.
    assert found["1"].opened == date(2019, 11, 18)
    assert found["2"].opened == date(2019, 6, 18)


def test_closed_case_closes_on_its_last_status_change() -> None:
    closed = children_sag(1, SenesteStatusAendring="2021-03-04T15:00:00.000+01:00")
    closed["SagsStatus"] = {"Id": 9, "Navn": "Afsluttet", "SagsTilstand": "Afsluttet"}
    fake = FakeSbsip()
    fake.add_case(closed)
    record = records(fetch_all(fake))["1"]
    assert (record.status, record.closed) == (CaseStatus.closed, date(2021, 3, 4))


def test_grants_milestones_and_scores_are_mapped() -> None:
    fake = FakeSbsip()
    fake.add_case(
        children_sag(1),
        score_forms=[
            score_xml(
                "<trivsel_familieforhold>4</trivsel_familieforhold>"
                "<trivsel_sundhedsforhold>Ikke vurderet</trivsel_sundhedsforhold>"
            ),
            score_xml("<navn>Ansøgning</navn>", form_id="ansoegning"),  # another OS2forms form: not scores
        ],
    )
    fake.grants.append(grant_sag(9001))
    fake.notes[1] = [
        {"Id": 11, "SagID": 1, "Overskrift": "Underretning modtaget", "KontaktTidspunkt": "2019-11-01T09:00:00+01:00"},
        {"Id": 12, "SagID": 1, "Overskrift": "Telefonnotat", "KontaktTidspunkt": "2019-11-02T09:00:00+01:00"},
    ]
    fake.erindringer[1] = [
        {"Id": 11, "SagId": 1, "Navn": "Opfølgning", "ErindringType": {"Navn": "Opfølgning"}, "ErAfsluttet": True,
         "Deadline": "2020-05-01T12:00:00+02:00", "AfsluttetDato": "2020-05-07T10:00:00.000+02:00"},
        {"Id": 12, "SagId": 1, "Navn": "Opfølgning", "ErindringType": {"Navn": "Opfølgning"}, "ErAfsluttet": False,
         "Deadline": "2020-11-01T12:00:00+01:00"},
    ]  # fmt: skip
    record = records(fetch_all(fake))["1"]
    [measure] = record.measures
    assert (measure.source_ref, measure.act, measure.paragraph) == ("9001", Act.SEL, "52 stk. 3 nr. 7")
    assert (measure.start, measure.end, measure.has_grant) == (date(2019, 12, 1), None, True)
    assert (measure.account_code, measure.provider) == ("5.28.21.001", "Opholdsstedet Lyngen")
    assert [(e.kind, e.occurred_on, e.source_ref) for e in record.events] == [
        (EventKind.notification, date(2019, 11, 1), "note-11"),
        (EventKind.journal_note, date(2019, 11, 2), "note-12"),
        (EventKind.follow_up, date(2020, 5, 7), "erindring-11"),
    ]
    assert [(a.theme, a.value, a.assessed_on, a.assessor) for a in record.assessments] == [
        (Theme.familieforhold, 4, date(2020, 1, 20), "testbruger01"),
        (Theme.sundhed, None, date(2020, 1, 20), "testbruger01"),
    ]


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        (score_xml("<trivsel_familieforhold>2</trivsel_familieforhold>")[:-40], "not well-formed"),
        (score_xml("<trivsel_familieforhold>7</trivsel_familieforhold>"), "is 7, outside the scale 1-5"),
        (score_xml("<trivsel_humoer>2</trivsel_humoer>"), "unknown theme field 'trivsel_humoer'"),
        (score_xml("<trivsel_sundhedsforhold>to</trivsel_sundhedsforhold>"), "is not a score"),
        (
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            "<os2formsFormular><OS2FormsId>trivselsvurdering</OS2FormsId></os2formsFormular>",
            "DOCTYPE",
        ),
    ],
)
def test_bad_score_forms_are_quarantined_with_a_reason(xml: str, reason: str) -> None:
    fake = FakeSbsip()
    fake.add_case(children_sag(1), score_forms=[score_xml("<trivsel_sundhedsforhold>1</trivsel_sundhedsforhold>")])
    fake.add_case(children_sag(2), score_forms=[xml])
    fake.add_case(children_sag(3))
    batches = fetch_all(fake)
    assert set(records(batches)) == {"1", "3"}  # the rest of the batch goes on
    rejected = rejections(batches)["2"]
    assert reason in rejected.reason
    assert CHILD_CPR not in rejected.reason
    bundle = json.loads(rejected.payload)
    assert bundle["sag"]["Id"] == 2
    assert xml.encode() in [base64.b64decode(v) for v in bundle["filer64"].values()]
    with pytest.raises(ValueError, match="score form"):
        make_adapter().parse_payload(rejected.payload)


def test_a_quarantined_case_replays_once_it_is_fixed() -> None:
    fake = FakeSbsip()
    fake.add_case(children_sag(1), score_forms=[score_xml("<trivsel_familieforhold>7</trivsel_familieforhold>")])
    rejected = rejections(fetch_all(fake))["1"]
    bundle = json.loads(rejected.payload)
    [file_id] = bundle["filer64"]
    fixed = base64.b64decode(bundle["filer64"][file_id]).replace(b">7<", b">3<")
    bundle["filer64"][file_id] = base64.b64encode(fixed).decode()
    record = make_adapter().parse_payload(json.dumps(bundle))
    assert [a.value for a in record.assessments] == [3]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"Oprettet": "2023-02-30T09:00:00.000+01:00"}, "Oprettet is not a valid date"),
        ({"PrimaryPart": {"PartType": "Person", "CPRnummer": "310299-1234"}}, "impossible birth date"),
        ({"SenestAendret": "2024-01-15T10:00:00"}, "SenestAendret has no UTC offset"),
    ],
)
def test_broken_case_fields_are_quarantined(changes: dict[str, object], reason: str) -> None:
    fake = FakeSbsip()
    fake.add_case(children_sag(1, **changes))
    rejected = rejections(fetch_all(fake))["1"]
    assert reason in rejected.reason
    assert "310299" not in rejected.reason


def test_an_answer_that_is_not_json_makes_the_case_incomplete() -> None:
    fake = FakeSbsip()
    fake.add_case(children_sag(1))
    fake.add_case(children_sag(2))
    fake.faults["dokumenter"] = [httpx.Response(200, text="<html>Proxy error</html>") for _ in range(2)]
    batches = fetch_all(fake, concurrency=1)
    assert set(records(batches)) == {"2"}
    rejected = rejections(batches)["1"]
    assert rejected.reason == "incomplete: SB-SYS answered the dokumenter with something that is not JSON"
    assert json.loads(rejected.payload)["sag"]["Id"] == 1


def test_closed_before_opened_is_quarantined() -> None:
    sag = children_sag(1, SenesteStatusAendring="2019-01-01T10:00:00.000+01:00")
    sag["SagsStatus"]["SagsTilstand"] = "Afsluttet"
    fake = FakeSbsip()
    fake.add_case(sag)
    assert "closed before it was opened" in rejections(fetch_all(fake))["1"].reason


# --- answers real servers give (issue 8) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"Id": 1, "Nummer": "27.24', "not JSON"),
        (b"<html><body>Proxy error</body></html>", "not JSON"),
        (b"null", "not an object"),
        (b"[]", "not an object"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    ],
)
def test_a_case_body_that_is_not_an_object_is_quarantined_not_a_crashed_run(body: bytes, reason: str) -> None:
    """Defect 3: truncated JSON, HTML with 200, null, [] and JSON too deep to read."""
    fake = FakeSbsip()
    fake.add_case(children_sag(1))
    fake.add_case(children_sag(2))
    answer = httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
    fake.faults["sag"] = [answer, answer]  # the first try and the retry, both for case 1
    batches = fetch_all(fake, concurrency=1)
    assert set(records(batches)) == {"2"}
    rejected = rejections(batches)["1"]
    assert rejected.is_incomplete
    assert reason in rejected.reason
    json.loads(rejected.payload)  # the payload is JSON the quarantine can keep


def test_an_answer_for_another_case_than_asked_is_not_stored_as_that_case() -> None:
    """Defect 12: /api/sag/1003 answering Id -5 is quarantined under 1003, and nothing is stored as -5."""
    fake = FakeSbsip()
    fake.add_case(children_sag(1003))
    wrong = httpx.Response(200, json=children_sag(-5))
    fake.faults["sag"] = [wrong, wrong]
    batches = fetch_all(fake, concurrency=1)
    assert not records(batches)
    rejected = rejections(batches)["1003"]
    assert rejected.reason == "incomplete: SB-SYS answered case -5 when asked for case 1003"


def test_a_score_form_in_iso_8859_1_is_read_by_its_own_declaration() -> None:
    """Defect 10: the form's bytes are parsed as they came, whatever charset the HTTP header claims."""
    form = score_xml("<trivsel_sundhedsforhold>2</trivsel_sundhedsforhold>").replace("testbruger01", "Søren Ærø Åby")
    latin1 = form.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("iso-8859-1")
    fake = FakeSbsip()
    fake.add_case(children_sag(1), score_forms=[latin1])
    [assessment] = records(fetch_all(fake))["1"].assessments
    assert assessment.assessor == "Søren Ærø Åby"


def test_a_score_form_that_does_not_decode_is_quarantined_with_a_reason() -> None:
    form = score_xml("<trivsel_sundhedsforhold>2</trivsel_sundhedsforhold>").replace("testbruger01", "Søren")
    fake = FakeSbsip()
    fake.add_case(children_sag(1), score_forms=[form.encode("iso-8859-1")])  # declared UTF-8, is not
    rejected = rejections(fetch_all(fake))["1"]
    assert not rejected.is_incomplete
    assert "not well-formed" in rejected.reason


# --- the reference payload and what real installations lack (issue 7) -----------------------------


def test_the_reference_payload_through_the_whole_read_path_is_not_a_childrens_case_by_number() -> None:
    """``sag_with_parts.json`` (KLE 32.03.12) is read, and left out because its number is not in the interval."""
    reference = json.loads(json.dumps(REFERENCE))
    fake = FakeSbsip()
    fake.add_case(reference)
    with mocked(fake):
        adapter = make_adapter()
        try:
            batches = list(adapter.refetch([str(reference["Id"])]))
        finally:
            adapter.close()
    assert not records(batches)
    assert not rejections(batches)  # skipped for a true reason, not quarantined
    assert adapter.counts == {"cases outside the case number interval, left out": 1}
    assert fake.calls["sag"] == fake.calls["dokumenter"] == 1  # read whole before it was judged


def test_the_reference_payload_numbered_as_a_childrens_case_is_read_with_the_default_target_group() -> None:
    """Its template (Ansøgningssag) names no target group: defaulted and counted, never a quarantine."""
    fake = FakeSbsip()
    fake.add_case(children_sag(1, SagSkabelon=REFERENCE["SagSkabelon"]))
    with mocked(fake):
        adapter = make_adapter()
        try:
            found = records(list(adapter.fetch(None)))
        finally:
            adapter.close()
    assert found["1"].target_group == "udsatte"
    assert adapter.counts == {"cases whose template names no target group, read as udsatte": 1}


def test_template_names_are_a_setting() -> None:
    fake = FakeSbsip()
    fake.add_case(children_sag(1, SagSkabelon={"Id": 7, "Navn": "Børnesag (Odense)"}))
    fake.add_case(children_sag(2, SagSkabelon={"Id": 8, "Navn": "BUF - Handicapsag"}))
    found = records(fetch_all(fake, target_groups={"Børnesag (Odense)": "handicap"}))
    assert (found["1"].target_group, found["2"].target_group) == ("handicap", "handicap")
    found = records(fetch_all(fake, target_group_keywords={}, default_target_group="udsatte"))
    assert (found["1"].target_group, found["2"].target_group) == ("udsatte", "udsatte")


def test_a_closed_case_without_its_status_change_time_closes_on_its_last_change() -> None:
    sag = children_sag(1, modified="2024-01-15T10:00:00.123+01:00")
    sag["SagsStatus"]["SagsTilstand"] = "Afsluttet"
    del sag["SenesteStatusAendring"]
    fake = FakeSbsip()
    fake.add_case(sag)
    found = records(fetch_all(fake))["1"]
    assert (found.status, found.closed) == (CaseStatus.closed, date(2024, 1, 15))


def test_a_server_that_ignores_the_filters_neither_injects_nor_rejects_cases() -> None:
    """An unrelated case without grant data among the grant search's answers leaves the child's case alone."""
    fake = FakeSbsip()
    fake.add_case(children_sag(1))
    unrelated = json.loads(json.dumps(REFERENCE))  # KLE 32.03.12, no Bevillingsoplysninger
    fake.add_case(unrelated)
    fake.grants = [grant_sag(10), unrelated, grant_sag(11, cpr="0101901234")]
    fake.ignore_filters = True
    found = records(fetch_all(fake))
    assert set(found) == {"1"}  # the unrelated case is not injected
    assert [m.source_ref for m in found["1"].measures] == ["10"]  # nor another child's grant taken


def test_milestone_headings_and_grant_fields_are_settings() -> None:
    fake = FakeSbsip()
    fake.add_case(children_sag(1))
    fake.notes[1] = [{"Id": 5, "Overskrift": "Underretning", "KontaktTidspunkt": "2020-01-10T10:00:00.000+01:00"}]
    grant = grant_sag(10)
    grant["Bevilling"] = grant.pop("Bevillingsoplysninger")
    fake.grants = [grant]
    found = records(
        fetch_all(fake, milestone_headings={"Underretning": "notification"}, grant_fields={"details": "Bevilling"})
    )["1"]
    assert [e.kind for e in found.events] == [EventKind.notification]
    assert [m.source_ref for m in found.measures] == ["10"]
    defaults = records(fetch_all(fake))["1"]
    assert [e.kind for e in defaults.events] == [EventKind.journal_note]
    assert defaults.measures == ()  # a grant whose details do not read as grant_fields: counted, left out


def test_an_incremental_search_that_ignores_the_time_filter_fetches_only_what_changed() -> None:
    fake = FakeSbsip()
    fake.add_case(children_sag(1, modified="2024-01-15T10:00:00.123+01:00"))
    fake.add_case(children_sag(2, modified="2023-06-01T08:00:00.000+02:00"))  # before the cursor's since
    cursor = json.dumps({"since": "2024-01-01T00:00:00+00:00"})
    with mocked(fake):
        adapter = make_adapter()
        try:
            batches = list(adapter.fetch(cursor))
        finally:
            adapter.close()
    assert set(records(batches)) == {"1"}  # the fake ignores SenestAendretFra; the adapter does not
    assert fake.calls["sag"] == 1
    assert adapter.counts == {"search results changed before the time asked for, left out": 1}
