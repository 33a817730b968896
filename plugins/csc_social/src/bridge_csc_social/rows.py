"""Row validation: one delivered CSV record → a part of a case record, or the reason class it fails with.

A row that breaks several rules reports the first class in the specification's order
(:data:`CLASSES`). Messages name the column and what is wrong; they repeat a value only
for code lists, numbers and dates, never a CPR number or a note.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from bridge.model.records import EARLIEST, LATEST, CaseStatus, TargetGroup
from bridge.privacy import InvalidCPR, Pseudonymizer, is_unknown_cpr, parse_cpr
from bridge_csc_social import wire

MALFORMED = "malformed"
DUPLICATE = "duplicate"
INVALID_CPR = "invalid_cpr"
INVALID_DATE = "invalid_date"
INVALID_SCORE = "invalid_score"
INVALID_VALUE = "invalid_value"
END_BEFORE_START = "end_before_start"
ORPHAN = "orphan"
PARENT_QUARANTINED = "parent_quarantined"
CLASSES = (
    MALFORMED,
    DUPLICATE,
    INVALID_CPR,
    INVALID_DATE,
    INVALID_SCORE,
    INVALID_VALUE,
    END_BEFORE_START,
    ORPHAN,
    PARENT_QUARANTINED,
)


class RowProblem(Exception):
    """A row fails with a reason class of the specification and a message without person data."""

    def __init__(self, klass: str, message: str) -> None:
        super().__init__(f"{klass}: {message}")
        self.klass = klass
        self.message = message


@dataclass(frozen=True)
class Settings:
    """What the adapter's configuration decides about rows."""

    municipality: str
    kle: str
    target_groups: Mapping[str, TargetGroup]


Values = Mapping[str, str]
_D = TypeVar("_D", date, datetime)


def _required(values: Values, file: str) -> None:
    for column in wire.COLUMNS[file]:
        if column in wire.REQUIRED[file] and not values[column]:
            raise RowProblem(INVALID_VALUE, f"required value {column} is empty")


def _dated(values: Values, column: str, parse: Callable[[str], _D]) -> _D | None:
    """A date or timestamp column read with ``parse``: ``None`` when empty, ``invalid_date`` when wrong."""
    text = values[column]
    if not text:
        return None
    try:
        value = parse(text)
    except ValueError as exc:
        raise RowProblem(INVALID_DATE, f"{column} {text!r} {exc}") from None
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST <= day <= LATEST:
        raise RowProblem(INVALID_DATE, f"{column} {text!r} is outside {EARLIEST.year}–{LATEST.year}")
    return value


def _date(values: Values, column: str) -> date | None:
    return _dated(values, column, wire.parse_date)


def _cpr(values: Values, column: str) -> None:
    text = values[column]
    if not text or (column != "CPR" and is_unknown_cpr(text)):
        return
    try:
        parse_cpr(text)
    except InvalidCPR as exc:
        raise RowProblem(INVALID_CPR, f"{column}: {exc}") from None


def _code(values: Values, column: str, allowed: Mapping[str, Any] | frozenset[str]) -> None:
    text = values[column]
    if text and text not in allowed:
        raise RowProblem(INVALID_VALUE, f"{column} {text!r} is not one of {', '.join(sorted(allowed))}")


def case_fields(values: Values, settings: Settings, persons: Pseudonymizer) -> dict[str, Any]:
    """The case row as the fields of a :class:`bridge.model.records.CaseRecord` (children apart)."""
    for column in ("CPR", "ForaeldremyndighedCPR1", "ForaeldremyndighedCPR2"):
        _cpr(values, column)
    opened = _date(values, "Oprettet")
    closed = _date(values, "Lukket")
    modified = _dated(values, "SenestAendret", wire.parse_timestamp)
    _required(values, wire.CASES)
    if values["Kommunekode"] != settings.municipality:
        raise RowProblem(
            INVALID_VALUE, f"Kommunekode {values['Kommunekode']!r} is not this source's {settings.municipality}"
        )
    _code(values, "Maalgruppe", wire.TARGET_GROUPS)
    _code(values, "Status", frozenset({wire.OPEN, *wire.CLOSED_STATUSES}))
    _code(values, "Familiesag", wire.FAMILY_CASE)
    status = values["Status"]
    if (status == wire.OPEN) != (closed is None):
        needs = "no Lukket date" if status == wire.OPEN else "a Lukket date"
        raise RowProblem(INVALID_VALUE, f"Status {status!r} needs {needs}")
    assert opened is not None  # required, checked above
    assert modified is not None
    if closed is not None and closed < opened:
        raise RowProblem(END_BEFORE_START, "Lukket is before Oprettet")
    child = persons.person(values["CPR"])
    worker = None
    if values["SagsbehandlerID"]:
        name = values["Sagsbehandler"] or values["SagsbehandlerID"]
        worker = {"source_ref": values["SagsbehandlerID"], "name": name}
    return {
        "source_ref": values["SagsID"],
        "municipality": settings.municipality,
        "child_key": child.key,
        "child_birth_date": child.birth_date,
        "child_sex": child.sex,
        "child_cpr": child.cpr,
        "family_key": persons.family_key([values["ForaeldremyndighedCPR1"], values["ForaeldremyndighedCPR2"]]),
        "caseworker": worker,
        "case_number": values["SagsID"],
        "kle": settings.kle,
        "target_group": settings.target_groups[wire.TARGET_GROUPS[values["Maalgruppe"]]],
        "opened": opened,
        "closed": closed,
        "status": CaseStatus.open if closed is None else CaseStatus.closed,
        "source_modified": modified,
    }


def measure_fields(values: Values) -> dict[str, Any]:
    start = _date(values, "Start")
    end = _date(values, "Slut")
    granted = _date(values, "Bevilget")
    _required(values, wire.MEASURES)
    _code(values, "Lov", wire.ACTS)
    if not wire.PARAGRAPH.match(values["Paragraf"]):
        raise RowProblem(INVALID_VALUE, f"Paragraf {values['Paragraf']!r} is not a paragraph like 32 or 52a")
    for column in ("Stk", "Nr"):
        if values[column] and not wire.INTEGER.match(values[column]):
            raise RowProblem(INVALID_VALUE, f"{column} {values[column]!r} is not a whole number")
    if values["Beloeb"]:
        try:
            wire.parse_amount(values["Beloeb"])
        except ValueError as exc:
            raise RowProblem(INVALID_VALUE, f"Beloeb {values['Beloeb']!r} {exc}") from None
    assert start is not None
    if end is not None and end < start:
        raise RowProblem(END_BEFORE_START, "Slut is before Start")
    paragraph = values["Paragraf"]
    if values["Stk"]:
        paragraph += f" stk. {int(values['Stk'])}"
    if values["Nr"]:
        paragraph += f" nr. {int(values['Nr'])}"
    return {
        "source_ref": values["ForanstaltningsID"],
        "act": values["Lov"],
        "paragraph": paragraph,
        "start": start,
        "end": end,
        "has_grant": granted is not None,
        "account_code": values["Kontering"] or None,
        "provider": values["Leverandoer"] or None,
    }


def assessment_fields(values: Values) -> dict[str, Any] | None:
    """The assessment, or ``None`` for a valid one on a theme bridge has no place for (``ANDET``)."""
    assessed = _date(values, "Dato")
    score = values["Score"]
    if score and (not wire.INTEGER.match(score) or not 1 <= int(score) <= 5):
        raise RowProblem(INVALID_SCORE, f"Score {score!r} is not a whole number 1–5")
    _required(values, wire.ASSESSMENTS)
    _code(values, "Tema", wire.THEMES)
    theme = wire.THEMES[values["Tema"]]
    if theme is None:
        return None
    return {
        "theme": theme,
        "value": wire.core_score(int(score)) if score else None,
        "assessed_on": assessed,
        "assessor": values["Maaler"] or None,
    }


def event_fields(values: Values) -> dict[str, Any] | None:
    """The event, or ``None`` for a valid one of a type bridge has no kind for."""
    occurred = _date(values, "Dato")
    _required(values, wire.EVENTS)
    _code(values, "Type", wire.EVENT_TYPES)
    kind = wire.EVENT_TYPES[values["Type"]]
    if kind is None:
        return None
    return {"kind": kind, "occurred_on": occurred, "source_ref": values["HaendelsesID"]}


def deleted_ref(values: Values) -> str:
    _required(values, wire.DELETED)
    return values["SagsID"]
