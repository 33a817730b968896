"""CPR parsing, pseudonymisation and log redaction (bridge.privacy).

Expected values are worked out by hand from CPR-kontoret's rules, or computed here with
:mod:`hmac` directly, never by calling the code under test a second way.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import re
from collections.abc import Iterator
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from bridge.model.records import AssessmentRecord, CaseRecord, CaseworkerRecord, MeasureRecord
from bridge.privacy import CprRedactingFilter, InvalidCPR, Pseudonymizer, looks_like_cpr, mask_cpr, parse_cpr, redact
from tests.scripted import case

SECRET = "a-municipal-secret"
MOD11_WEIGHTS = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)


def mod11_valid(digits: str) -> bool:
    return sum(int(d) * w for d, w in zip(digits, MOD11_WEIGHTS, strict=True)) % 11 == 0


def leaks(text: str, digits: str) -> bool:
    """Whether ``text`` shows the CPR ``digits``, with or without dash, or its birth-date part."""
    return any(part in text for part in (digits, f"{digits[:6]}-{digits[6:]}", digits[:6]))


def holds_a_number(message: str) -> bool:
    """Error messages about a CPR hold no run of three or more digits at all."""
    return re.search(r"\d{3,}", message) is not None


# --- parse_cpr ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["010490-9989", "0104909989", "  010490-9989\n", "\t0104909989 "])
def test_parse_accepts_dash_no_dash_and_surrounding_whitespace(text: str) -> None:
    cpr = parse_cpr(text)
    assert cpr.digits == "0104909989"
    assert cpr.birth_date == date(1990, 4, 1)


@pytest.mark.parametrize(
    ("text", "born"),
    [
        # 7th digit 0-3: always 1900-1999, even for year 00
        ("010190-0123", date(1990, 1, 1)),
        ("150545-1234", date(1945, 5, 15)),
        ("311299-2000", date(1999, 12, 31)),
        ("010100-3999", date(1900, 1, 1)),
        # 7th digit 4 and 9: 2000s for year 00-36, 1900s for 37-99
        ("010136-4001", date(2036, 1, 1)),
        ("010137-4001", date(1937, 1, 1)),
        ("290200-9001", date(2000, 2, 29)),
        ("010136-9001", date(2036, 1, 1)),
        ("010137-9001", date(1937, 1, 1)),
        # 7th digit 5-8: 2000s for year 00-57, 1800s for 58-99
        ("010157-5001", date(2057, 1, 1)),
        ("010158-5001", date(1858, 1, 1)),
        ("010100-6001", date(2000, 1, 1)),
        ("010199-7001", date(1899, 1, 1)),
        ("010157-8001", date(2057, 1, 1)),
        ("010158-8001", date(1858, 1, 1)),
    ],
)
def test_century_from_the_seventh_digit(text: str, born: date) -> None:
    assert parse_cpr(text).birth_date == born


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("290200-2001", "1900 was no leap year (7th digit 2 → 1900s)"),
        ("290258-5001", "1858 was no leap year (7th digit 5, year 58 → 1800s)"),
        ("310299-1234", "no 31 February"),
        ("320190-1234", "no day 32"),
        ("011390-1234", "no month 13"),
        ("000190-1234", "no day 0"),
        ("010090-1234", "no month 0"),
        ("000000-0000", "the unknown-person placeholder"),
    ],
)
def test_impossible_dates_are_rejected(text: str, why: str) -> None:
    with pytest.raises(InvalidCPR):
        parse_cpr(text)


def test_the_leap_day_depends_on_the_century() -> None:
    # The same DDMMYY is a real date in 2000 (7th digit 4) and none in 1900 (7th digit 2).
    assert parse_cpr("290200-4001").birth_date == date(2000, 2, 29)
    with pytest.raises(InvalidCPR):
        parse_cpr("290200-2001")


@pytest.mark.parametrize("text", ["0104909989", "0103104123", "0108629996"])
def test_modulus_11_is_not_required(text: str) -> None:
    assert not mod11_valid(text)  # the example really fails modulus 11
    assert parse_cpr(text).digits == text


def test_a_number_issued_after_2007_that_fails_modulus_11() -> None:
    cpr = parse_cpr("010310-4123")
    assert not mod11_valid("0103104123")
    assert cpr.birth_date == date(2010, 3, 1)


def test_a_modulus_11_valid_number_is_accepted_too() -> None:
    assert mod11_valid("0707610018")
    assert parse_cpr("070761-0018").birth_date == date(1961, 7, 7)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "010490",
        "010490-998",
        "010490-99891",
        "01049-099989",
        "010490--9989",
        "010490 9989",
        "01.04.90-9989",
        "0104909989x",
        "x0104909989",
        "12345678901",
        "０１０４９０９９８９",  # full-width digits: not what any source sends, and a second key
        "٠١٠٤٩٠٩٩٨٩",  # Arabic-Indic digits
    ],
)
def test_malformed_numbers_are_rejected(text: str) -> None:
    with pytest.raises(InvalidCPR):
        parse_cpr(text)


def rejection(text: str) -> InvalidCPR | None:
    try:
        parse_cpr(text)
    except InvalidCPR as exc:
        return exc
    return None


@given(digits=st.text(alphabet="0123456789", min_size=10, max_size=10), dash=st.booleans())
def test_invalid_cpr_messages_never_hold_the_digits(digits: str, dash: bool) -> None:
    text = f"{digits[:6]}-{digits[6:]}" if dash else digits
    exc = rejection(text)
    if exc is not None:
        for shown in (str(exc), repr(exc), *map(str, exc.args)):
            assert not holds_a_number(shown)


@given(text=st.text(alphabet="0123456789-/ .x", min_size=0, max_size=14))
def test_malformed_input_messages_never_hold_the_input(text: str) -> None:
    exc = rejection(text)
    if exc is not None:
        assert not holds_a_number(str(exc))


@pytest.mark.parametrize(("last", "sex"), [(str(d), "F" if d % 2 == 0 else "M") for d in range(10)])
def test_sex_from_the_last_digit(last: str, sex: str) -> None:
    assert parse_cpr(f"010490-998{last}").sex == sex


def test_cpr_repr_and_str_never_show_the_digits() -> None:
    cpr = parse_cpr("010490-9989")
    for shown in (repr(cpr), str(cpr), f"{cpr}", f"{cpr!r}", repr([cpr]), repr({"child": cpr})):
        assert not leaks(shown, "0104909989")
    assert "1990-04-01" in repr(cpr)  # derived facts are fine to show


# --- Pseudonymizer ----------------------------------------------------------------------------


def expected_key(secret: str, purpose: str, value: str) -> str:
    return hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


@pytest.fixture
def persons() -> Pseudonymizer:
    return Pseudonymizer(SecretStr(SECRET))


def test_person_key_is_a_keyed_hmac_sha256_of_the_digits(persons: Pseudonymizer) -> None:
    # Pinned: a change to the derivation would orphan every key already in a store.
    assert persons.person("010490-9989").key == expected_key(SECRET, "person", "0104909989")


def test_same_cpr_with_and_without_dash_gives_the_same_key(persons: Pseudonymizer) -> None:
    keys = {persons.person(t).key for t in ("010490-9989", "0104909989", " 0104909989 ")}
    assert len(keys) == 1


def test_different_people_get_different_keys(persons: Pseudonymizer) -> None:
    assert persons.person("010490-9989").key != persons.person("010490-9988").key


def test_a_different_secret_gives_a_different_key(persons: Pseudonymizer) -> None:
    other = Pseudonymizer(SecretStr("another-municipal-secret"))
    assert persons.person("010490-9989").key != other.person("010490-9989").key


def test_person_keeps_derived_facts_but_not_the_cpr_by_default(persons: Pseudonymizer) -> None:
    person = persons.person("010490-9988")
    assert (person.birth_date, person.sex, person.cpr) == (date(1990, 4, 1), "F", None)
    assert not leaks(repr(person), "0104909988")


def test_store_cpr_keeps_the_digits_but_never_in_the_repr() -> None:
    person = Pseudonymizer(SecretStr(SECRET), store_cpr=True).person("010490-9989")
    assert person.cpr == "0104909989"
    assert person.key == expected_key(SECRET, "person", "0104909989")
    assert not leaks(repr(person), "0104909989")
    assert not leaks(str(person), "0104909989")


def test_family_key_ignores_guardian_order_and_writing(persons: Pseudonymizer) -> None:
    mother, father = "010170-1234", "0202680123"
    expected = expected_key(SECRET, "family", "0101701234|0202680123")
    assert persons.family_key([mother, father]) == expected
    assert persons.family_key([father, mother]) == expected
    assert persons.family_key(["0101701234", "020268-0123"]) == expected


def test_family_key_leaves_out_unknown_guardians(persons: Pseudonymizer) -> None:
    mother = "010170-1234"
    alone = persons.family_key([mother])
    assert alone == expected_key(SECRET, "family", "0101701234")
    assert persons.family_key([mother, "000000-0000"]) == alone
    assert persons.family_key(["0000000000", mother, "", None]) == alone


@pytest.mark.parametrize("guardians", [[], ["000000-0000"], ["", None], ["0000000000", "000000-0000", " "]])
def test_family_key_is_none_without_a_known_guardian(persons: Pseudonymizer, guardians: list[str | None]) -> None:
    assert persons.family_key(guardians) is None


def test_siblings_with_the_same_guardians_share_the_family_key(persons: Pseudonymizer) -> None:
    guardians = {"mor": "010170-1234", "far": "020268-0123"}
    first = persons.family_key([guardians["mor"], guardians["far"]])
    second = persons.family_key([guardians["far"], "000000-0000", guardians["mor"]])
    half_sibling = persons.family_key([guardians["mor"], "030371-4567"])
    assert first is not None
    assert first == second
    assert half_sibling != first


def test_family_key_is_not_a_guardians_person_key(persons: Pseudonymizer) -> None:
    assert persons.family_key(["010170-1234"]) != persons.person("010170-1234").key


def test_a_malformed_guardian_is_an_error(persons: Pseudonymizer) -> None:
    with pytest.raises(InvalidCPR):
        persons.family_key(["010170-1234", "31029-91234"])


@pytest.mark.parametrize("secret", ["", "short", "1234567"])
def test_a_short_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="at least 8"):
        Pseudonymizer(SecretStr(secret))


def test_an_eight_character_secret_is_enough() -> None:
    assert Pseudonymizer(SecretStr("12345678")).person("0104909989").key == expected_key(
        "12345678", "person", "0104909989"
    )


# --- mask_cpr -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("010490-9989", "######-####"),
        ("0104909989", "######-####"),
        ("child 010490-9989 moved", "child ######-#### moved"),
        ("cpr=0104909989;", "cpr=######-####;"),
        ("CPR:0104909989.", "CPR:######-####."),
        ("010490-9989 and 0202680123", "######-#### and ######-####"),
        ("'0104909989'", "'######-####'"),
    ],
)
def test_mask_cpr_masks_cpr_shaped_numbers(text: str, masked: str) -> None:
    assert mask_cpr(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "12345678901",  # 11 digits: an account or EAN number, not a CPR
        "010490998912",
        "phone 12345678",
        "+45 12 34 56 78",
        "tlf. 87654321, case 27.24.00-G01-5-19",
        "2024-01-01",
        "ref 123456-12345",
        "1234567-1234",
    ],
)
def test_mask_cpr_leaves_other_numbers_alone(text: str) -> None:
    assert mask_cpr(text) == text


# --- CprRedactingFilter ---------------------------------------------------------------------------


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A real logger whose only handler writes through the filter into a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(CprRedactingFilter())
    logger = logging.getLogger("bridge.test_privacy")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_filter_masks_cpr_in_message_arguments(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.info("child %s moved to %s", "010490-9989", "guardian 0202680123")
    output = stream.getvalue()
    assert "child ######-#### moved to guardian ######-####" in output
    assert not leaks(output, "0104909989")
    assert not leaks(output, "0202680123")


def test_filter_masks_cpr_in_the_message_itself(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.warning("lookup of 0104909989 failed after %d tries", 3)
    assert "lookup of ######-#### failed after 3 tries" in stream.getvalue()


def test_filter_masks_cpr_in_exception_tracebacks(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged

    def lookup(cpr: str) -> None:
        raise KeyError(f"no person {cpr}")

    try:
        try:
            lookup("010490-9989")
        except KeyError as exc:
            raise RuntimeError("sync of 0202680123 failed") from exc
    except RuntimeError:
        logger.exception("batch failed")
    output = stream.getvalue()
    assert "Traceback (most recent call last)" in output
    assert "RuntimeError: sync of ######-#### failed" in output
    assert "no person ######-####" in output
    assert not leaks(output, "0104909989")
    assert not leaks(output, "0202680123")


def test_filter_masks_cpr_in_stack_info(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.info("here", stack_info=True)  # the source line of this frame holds 0104909989
    output = stream.getvalue()
    assert "Stack (most recent call last)" in output
    assert not leaks(output, "0104909989")


def test_filter_survives_arguments_that_do_not_fit_the_format(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.error("child %d", "0104909989")  # a bug in a log call must not crash the caller
    output = stream.getvalue()
    assert "child %d" in output
    assert not leaks(output, "0104909989")


# --- secrets in messages, CPR numbers in free text ----------------------------------------------


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("POST http://svc:Hemmelig1@idp.example/token failed", "POST http://svc:***@idp.example/token failed"),
        ("https://idp.example/token?client_id=bridge&client_secret=s3cr3t", "https://idp.example/token?client_id=bridge&client_secret=***"),
        ("http://h/x?access_token=abc&page=2", "http://h/x?access_token=***&page=2"),
        ("not a database URL: 'postgresql://bridge:pw@[::1/db'", "not a database URL: 'postgresql://bridge:***@[::1/db'"),
        ("grant_type=password&username=svc&password=p%40ss", "grant_type=password&username=svc&password=***"),
        ("http://u:p@ss@host/x", "http://u:***@host/x"),
        ("http://host:8080/path?page=2", "http://host:8080/path?page=2"),
    ],
)  # fmt: skip
def test_redact_hides_passwords_and_secret_parameters_in_any_url_or_message(said: str, shown: str) -> None:
    assert redact(said) == shown


def test_the_log_filter_redacts_secrets_too() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "TLS is off for %s", ("https://u:pw@h",), None)
    CprRedactingFilter().filter(record)
    assert record.getMessage() == "TLS is off for https://u:***@h"


def test_a_cpr_typed_into_free_text_is_masked_at_the_record_boundary() -> None:
    worker = CaseworkerRecord(source_ref="cw1", name="Karen 010490-9989", unit="team 0104909989")
    measure = MeasureRecord(source_ref="m", act="BL", paragraph="32", start=date(2024, 1, 1), has_grant=True,
                            provider="Solsikken (barn 0104909989)", account_code="5.28.21.1")  # fmt: skip
    assessment = AssessmentRecord(theme="sundhed", value=2, assessed_on=date(2024, 1, 1), assessor="Ole 010490-9989")
    assert (worker.name, worker.unit) == ("Karen ######-####", "team ######-####")
    assert measure.provider == "Solsikken (barn ######-####)"
    assert assessment.assessor == "Ole ######-####"


def test_a_whole_cpr_is_told_from_text_that_merely_holds_ten_digits() -> None:
    assert looks_like_cpr("010490-9989")
    assert looks_like_cpr(" 0104909989 ")
    assert not looks_like_cpr("a81f0102031234c9d2e47b66f0aa1c3e")
    assert not looks_like_cpr("27.24.00-G01-0102031234-21")


def test_a_score_a_form_repeats_is_kept_once() -> None:
    same = {"theme": "sundhed", "value": 3, "assessed_on": "2024-03-01", "assessor": "Ole"}
    other_value = {**same, "value": 4}  # another form the same day: scoring resolves the pair
    record = CaseRecord.model_validate(case("1", assessments=[same, same, other_value]))
    assert [(a.theme.value, a.value) for a in record.assessments] == [("sundhed", 3), ("sundhed", 4)]
