"""The SBSIP wire model: the reference payload, timestamps, numbers, paragraphs, score forms."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from plugins.sbsys.tests.fake_sbsip import REFERENCE

from bridge.model.records import Act, Theme
from bridge_sbsys import wire


def test_the_reference_payload_reads_with_both_cpr_casings() -> None:
    assert "CPRnummer" in REFERENCE["PrimaryPart"]
    assert "CprNummer" in REFERENCE["Personer"][0]
    child = wire.read_child(REFERENCE)
    assert child == wire.Child(cpr="010490-9989", guardians=("010862-9996", "010858-9995"))


def test_the_reference_payloads_unknown_father_is_kept_as_the_placeholder() -> None:
    sag = {**REFERENCE, "PrimaryPart": {"CPRnummer": "010772-9995"}}
    assert wire.read_child(sag).guardians == ("251248-9996", "000000-0000")


def test_reference_timestamps_keep_their_milliseconds_in_utc() -> None:
    assert wire.parse_timestamp(REFERENCE["SenestAendret"], "SenestAendret") == datetime(
        2020, 2, 21, 13, 2, 20, 687000, tzinfo=UTC
    )
    assert wire.parse_local_date(REFERENCE["Oprettet"], "Oprettet") == date(2019, 11, 18)


@pytest.mark.parametrize(
    ("instant", "text"),
    [
        (datetime(2024, 1, 15, 9, 0, 0, 123000, tzinfo=UTC), "2024-01-15T10:00:00.123+01:00"),
        (datetime(2024, 7, 1, 10, 0, tzinfo=UTC), "2024-07-01T12:00:00.000+02:00"),
        (datetime(2024, 3, 31, 0, 59, 59, 999000, tzinfo=UTC), "2024-03-31T01:59:59.999+01:00"),
        (datetime(2024, 3, 31, 1, 0, tzinfo=UTC), "2024-03-31T03:00:00.000+02:00"),
    ],
)
def test_timestamps_use_copenhagen_winter_and_summer_offsets(instant: datetime, text: str) -> None:
    assert wire.format_timestamp(instant) == text
    assert wire.parse_timestamp(text, "x") == instant


def test_pure_dates_follow_todays_offset_rules_like_the_reference() -> None:
    assert wire.date_value(date(1900, 4, 1)) == REFERENCE["Personer"][0]["FoedeDato"]
    assert wire.date_value(date(1972, 4, 1)) == REFERENCE["Personer"][1]["FoedeDato"]
    assert wire.date_value(date(2015, 3, 1)) == "2015-03-01T00:00:00+01:00"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2023-02-30T09:00:00.000+01:00", "Oprettet is not a valid date and time"),
        ("2023-02-28T09:00:00", "Oprettet has no UTC offset"),
        (20230228, "Oprettet is not a timestamp"),
    ],
)
def test_broken_timestamps_name_the_field(text: object, message: str) -> None:
    with pytest.raises(wire.WireError, match=message):
        wire.parse_local_date(text, "Oprettet")


def test_case_numbers() -> None:
    number = wire.parse_case_number(REFERENCE["Nummer"])
    assert number == wire.CaseNumber("32.03.12", "G01", 36, 2019)
    assert str(number) == REFERENCE["Nummer"]
    assert number.year == REFERENCE["SagsNummer"]["Aarstal"]
    assert "27.24.00-G01-5-19" in wire.MAIN_CASES
    assert "27.27.00-G01-5-19" not in wire.MAIN_CASES
    assert "27.27.04-G01-5-19" in wire.GRANT_CASES
    with pytest.raises(wire.WireError):
        wire.parse_case_number("27.24.00-5-19")


@pytest.mark.parametrize(
    ("act", "paragraph", "text"),
    [
        (Act.SEL, "52 stk. 3 nr. 7", "SEL § 52, stk. 3, nr. 7"),
        (Act.BL, "32", "BL § 32"),
        (Act.BL, "46 stk. 1", "BL § 46, stk. 1"),
    ],
)
def test_paragraphs_round_trip(act: Act, paragraph: str, text: str) -> None:
    assert wire.format_paragraph(act, paragraph) == text
    assert wire.parse_paragraph(text) == (act, paragraph)
    assert wire.parse_paragraph(text.replace(", ", " ")) == (act, paragraph)


def test_search_query_round_trip() -> None:
    query = wire.SearchQuery(
        wire.MAIN_CASES, 50, 100, modified_since=datetime(2024, 7, 1, 10, tzinfo=UTC), primary_cpr="010490-9989"
    )
    body = wire.render_search_query(query)
    assert body == {
        "Limit": 50,
        "Skip": 100,
        "NummerInterval": {"From": "27.24.00-G01", "To": "27.24.00-G02"},
        "SenestAendretFra": "2024-07-01T12:00:00.000+02:00",
        "PrimaerPerson": {"CprNummer": "010490-9989"},
    }
    assert wire.read_search_query(body, default_limit=10) == query


def test_score_form_round_trip_with_ikke_vurderet() -> None:
    xml = wire.render_score_form(
        child_cpr="010490-9989",
        kle="27.24.00",
        assessed_on=date(2024, 3, 1),
        assessor="ab1234",
        scores=[("udvikling_adfaerd", 5), ("fritid_venskaber", None)],
    )
    form = wire.read_score_form(xml)
    assert form == wire.ScoreForm(
        date(2024, 3, 1),
        "ab1234",
        (wire.Score(Theme.udvikling_adfaerd, 5), wire.Score(Theme.fritid_venskaber, None)),
    )


def test_a_theme_twice_on_one_form_is_one_score_or_a_rejected_form() -> None:
    def form(*scores: tuple[str, int | None]) -> bytes:
        return wire.render_score_form(
            child_cpr="010490-9989", kle="27.24.00", assessed_on=date(2024, 3, 1), assessor=None, scores=list(scores)
        )

    same = wire.read_score_form(form(("sundhed", 3), ("familieforhold", 2), ("sundhed", 3)))
    assert same is not None
    assert same.scores == (wire.Score(Theme.sundhed, 3), wire.Score(Theme.familieforhold, 2))
    with pytest.raises(wire.WireError, match="gives sundhed twice, with different values"):
        wire.read_score_form(form(("sundhed", 3), ("sundhed", 4)))


def test_an_entity_bomb_in_a_score_form_fails_safely() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE os2formsFormular [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b"<os2formsFormular><OS2FormsId>trivselsvurdering</OS2FormsId><FormularData>&c;</FormularData>"
        b"</os2formsFormular>"
    )
    with pytest.raises(wire.WireError, match="DOCTYPE"):
        wire.read_score_form(bomb)
