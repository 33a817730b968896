"""Records: what adapters yield, validated at the boundary (pydantic v2).

A :class:`CaseRecord` is one child's case with everything that belongs to it
(measures, assessments, events). The sync engine stores it as a unit, so the content
hash of a case covers its children too. Records hold person keys, never CPR numbers
(unless the installation opted in to ``store_cpr``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from bridge.privacy import mask_cpr

EARLIEST = date(1900, 1, 1)
LATEST = date(2100, 12, 31)


class Theme(StrEnum):
    """The five statutory areas of the børnefaglig undersøgelse (SEL §50 / BL §20)."""

    udvikling_adfaerd = "udvikling_adfaerd"
    familieforhold = "familieforhold"
    skole_beskaeftigelse = "skole_beskaeftigelse"
    sundhed = "sundhed"
    fritid_venskaber = "fritid_venskaber"

    @property
    def label(self) -> str:
        return THEME_LABELS[self]


THEME_LABELS: dict[Theme, str] = {
    Theme.udvikling_adfaerd: "Udvikling og adfærd",
    Theme.familieforhold: "Familieforhold",
    Theme.skole_beskaeftigelse: "Daginstitution, skole eller beskæftigelse",
    Theme.sundhed: "Sundhedsforhold",
    Theme.fritid_venskaber: "Fritidsforhold og venskaber",
}


class TargetGroup(StrEnum):
    udsatte = "udsatte"
    handicap = "handicap"


class CaseStatus(StrEnum):
    open = "open"
    closed = "closed"


class Act(StrEnum):
    """The act a measure is granted under: Serviceloven until 2023-12-31, Barnets lov after."""

    SEL = "SEL"
    BL = "BL"


class EventKind(StrEnum):
    """Dated milestones of a case that the audit rules read."""

    notification = "notification"  # underretning (received)
    notification_assessed = "notification_assessed"  # underretningen vurderet (the 24-hour rule)
    investigation_started = "investigation_started"  # børnefaglig undersøgelse påbegyndt
    investigation_completed = "investigation_completed"
    plan_made = "plan_made"  # handleplan / barnets plan
    follow_up = "follow_up"  # opfølgning
    child_conversation = "child_conversation"  # børnesamtale
    consent = "consent"  # samtykke
    decision = "decision"  # afgørelse
    journal_note = "journal_note"


def _plausible(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"date {value.isoformat()} is outside {EARLIEST.year}–{LATEST.year}")
    return value


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    _plausible(value.date())
    return value.astimezone(UTC)


PlausibleDate = Annotated[date, AfterValidator(_plausible)]
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
Score = Annotated[int, Field(ge=1, le=5)]
"""Trivselslinealen: 1 = i trivsel … 5 = truet trivsel. A fall is an improvement."""

FreeText = Annotated[str, AfterValidator(mask_cpr)]
"""Text a person typed into the source (a name, a unit, a provider): a CPR typed into it is masked
here, at the boundary, as in logs, so it never reaches the store."""


class _Record(BaseModel):
    """Frozen, strict about unknown fields, and free of NUL characters in every text field.

    A NUL (``\\x00``) is never meaningful in case data, and PostgreSQL's text columns cannot hold
    one: left in, one such character would fail every batch that holds its case, on every run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _without_nul(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v.replace("\x00", "") if isinstance(v, str) else v for k, v in data.items()}
        return data


class CaseworkerRecord(_Record):
    source_ref: str = Field(min_length=1)
    name: FreeText
    unit: FreeText | None = None


class MeasureRecord(_Record):
    """An indsats/foranstaltning with its legal basis, e.g. SEL §52 stk. 3 nr. 7 or BL §32."""

    source_ref: str = Field(min_length=1)
    act: Act
    paragraph: str = Field(min_length=1, description='e.g. "52 stk. 3 nr. 7" or "32"')
    start: PlausibleDate
    end: PlausibleDate | None = None
    has_grant: bool
    account_code: str | None = None
    provider: FreeText | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end is not None and self.end < self.start:
            raise ValueError("measure ends before it starts")
        return self


class AssessmentRecord(_Record):
    """A score on one theme. ``value=None`` is "ikke vurderet", never a number."""

    theme: Theme
    value: Score | None
    assessed_on: PlausibleDate
    assessor: FreeText | None = None


class CaseEventRecord(_Record):
    kind: EventKind
    occurred_on: PlausibleDate
    occurred_at: UtcDatetime | None = Field(default=None, description="the instant, where the source has a time of day")
    source_ref: str | None = None


class CaseRecord(_Record):
    """One child's case, keyed by ``(source, source_ref)`` in the store.

    A family case holding several children is yielded as one record per child, sharing
    ``family_key`` and ``family_case_number``.
    """

    source_ref: str = Field(min_length=1)
    municipality: str = Field(pattern=r"^\d{3}$", description="kommunekode")
    child_key: str = Field(min_length=8)
    child_birth_date: PlausibleDate
    child_sex: str = Field(pattern=r"^[FM]$")
    child_cpr: str | None = Field(default=None, description="only with store_cpr")
    family_key: str | None = None
    family_case_number: str | None = None
    caseworker: CaseworkerRecord | None = None
    case_number: str = Field(min_length=1, description="e.g. 27.24.00-G01-5-19")
    kle: str = Field(pattern=r"^\d{2}\.\d{2}\.\d{2}$", description="KLE emne, e.g. 27.24.00")
    target_group: TargetGroup
    opened: PlausibleDate
    closed: PlausibleDate | None = None
    status: CaseStatus
    source_modified: UtcDatetime
    measures: tuple[MeasureRecord, ...] = ()
    assessments: tuple[AssessmentRecord, ...] = ()
    events: tuple[CaseEventRecord, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.closed is not None and self.closed < self.opened:
            raise ValueError("case closed before it was opened")
        if (self.status is CaseStatus.closed) != (self.closed is not None):
            raise ValueError("case status and closing date disagree")
        # Sources list children in any order; a canonical order keeps the content hash stable.
        object.__setattr__(self, "measures", tuple(sorted(self.measures, key=_measure_order)))
        scores = sorted(_without_repeats(self.assessments), key=_assessment_order)
        object.__setattr__(self, "assessments", tuple(scores))
        object.__setattr__(self, "events", tuple(sorted(self.events, key=_event_order)))
        return self

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of the whole case, children included."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()


def _without_repeats(assessments: tuple[AssessmentRecord, ...]) -> list[AssessmentRecord]:
    """The scores, each identical one (theme, day, value, assessor) once.

    A theme a form lists twice would otherwise count twice in every cohort and transition. Two
    different values on one day stay: they may come from two forms, and scoring resolves such a
    pair (to the lower value); a form that holds one theme twice is the adapter's to reject.
    """
    return list(dict.fromkeys(assessments))


def _measure_order(m: MeasureRecord) -> tuple[str, str]:
    return (m.start.isoformat(), m.source_ref)


def _assessment_order(a: AssessmentRecord) -> tuple[str, str, int]:
    return (a.assessed_on.isoformat(), a.theme.value, a.value or 0)


def _event_order(e: CaseEventRecord) -> tuple[str, str, str]:
    return (e.occurred_on.isoformat(), e.kind.value, e.source_ref or "")


def rejection_reason(exc: ValueError) -> str:
    """A short, readable reason for a rejected record that never echoes the input.

    Pydantic errors are given as ``field: message`` without the offending value (which
    may be a CPR number); any other message is masked for CPR-shaped numbers.
    """
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(p) for p in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            parts.append(f"{where}: {message}" if where else message)
        return mask_cpr("; ".join(parts))
    return mask_cpr(str(exc))
