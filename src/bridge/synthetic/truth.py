"""The synthetic ground truth: what the source systems "really" hold.

It is deliberately source-neutral and holds raw facts, CPR numbers included, the way a
fagsystem does. Simulators render it into their wire formats; the synthetic adapter
serves it directly; tests compare the store against :meth:`GroundTruth.expected_records`.

A case with a ``defect`` is invalid on purpose: its raw values break a rule (a bad CPR,
a score of 7, an unknown theme, closed before opened, a date that does not exist), it
must end in quarantine, and it is not among the expected records.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

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
from bridge.privacy import Pseudonymizer, is_unknown_cpr


class Defect(StrEnum):
    """How an invalid case is broken; renderers must put the broken value on the wire."""

    bad_cpr = "bad_cpr"  # child.cpr is malformed or an impossible date
    score_out_of_range = "score_out_of_range"  # one assessment has value 7
    unknown_theme = "unknown_theme"  # one assessment has theme "humoer"
    closed_before_opened = "closed_before_opened"  # closed < opened
    broken_date = "broken_date"  # `opened` is rendered as BROKEN_DATE_TEXT


BROKEN_DATE_TEXT = "2023-02-30"
"""What renderers write instead of ``opened`` for a case with ``Defect.broken_date``."""


@dataclass(slots=True)
class TruthCaseworker:
    ref: str  # stable id, e.g. "cw-0007"
    logon: str  # e.g. "ab1234"
    name: str
    unit: str
    municipality: str
    target_group: TargetGroup


@dataclass(slots=True)
class TruthChild:
    cpr: str  # "DDMMYY-SSSS"; malformed for Defect.bad_cpr
    name: str
    guardians: list[str]  # guardian CPRs; "000000-0000" for an unknown one


@dataclass(slots=True)
class TruthMeasure:
    ref: str
    act: Act
    paragraph: str
    start: date
    end: date | None
    has_grant: bool
    account_code: str | None
    provider: str | None


@dataclass(slots=True)
class TruthAssessment:
    theme: str  # a Theme value; "humoer" for Defect.unknown_theme
    value: int | None  # 1..5, None = ikke vurderet; 7 for Defect.score_out_of_range
    assessed_on: date
    assessor: str | None


@dataclass(slots=True)
class TruthEvent:
    kind: EventKind
    occurred_on: date
    ref: str
    at: datetime | None = None  # UTC, for the events a source records with a time of day


@dataclass(slots=True)
class TruthCase:
    id: int  # the source's own id; adapters use str(id) as source_ref
    municipality: str
    child: TruthChild
    caseworker_ref: str
    case_number: str  # "27.24.00-G01-<seq>-<yy>"
    family_case_number: str | None
    kle: str
    target_group: TargetGroup
    opened: date
    closed: date | None
    modified: datetime  # aware, UTC
    measures: list[TruthMeasure] = field(default_factory=list)
    assessments: list[TruthAssessment] = field(default_factory=list)
    events: list[TruthEvent] = field(default_factory=list)
    defect: Defect | None = None
    broken: frozenset[str] = frozenset()
    """The audit rules whose deadline the generator drew broken for this case (rule ids)."""

    @property
    def status(self) -> CaseStatus:
        return CaseStatus.closed if self.closed is not None else CaseStatus.open


@dataclass(slots=True)
class GroundTruth:
    seed: int
    municipalities: dict[str, str]  # kommunekode -> name
    caseworkers: dict[str, TruthCaseworker]
    cases: list[TruthCase]

    def valid_cases(self) -> Iterator[TruthCase]:
        return (c for c in self.cases if c.defect is None)

    def invalid_cases(self) -> Iterator[TruthCase]:
        return (c for c in self.cases if c.defect is not None)

    def cprs(self) -> set[str]:
        """Every CPR number in the truth (children and guardians), for privacy scans."""
        found: set[str] = set()
        for case in self.cases:
            found.add(case.child.cpr)
            found.update(g for g in case.child.guardians if not is_unknown_cpr(g))
        return found

    def expected_record(self, case: TruthCase, persons: Pseudonymizer) -> CaseRecord:
        """The record a correct adapter yields for a valid ``case``."""
        child = persons.person(case.child.cpr)
        worker = self.caseworkers[case.caseworker_ref]
        return CaseRecord(
            source_ref=str(case.id),
            municipality=case.municipality,
            child_key=child.key,
            child_birth_date=child.birth_date,
            child_sex=child.sex,
            child_cpr=child.cpr,
            family_key=persons.family_key(case.child.guardians),
            family_case_number=case.family_case_number,
            caseworker=CaseworkerRecord(source_ref=worker.ref, name=worker.name, unit=worker.unit),
            case_number=case.case_number,
            kle=case.kle,
            target_group=case.target_group,
            opened=case.opened,
            closed=case.closed,
            status=case.status,
            source_modified=case.modified,
            measures=tuple(
                MeasureRecord(
                    source_ref=m.ref,
                    act=m.act,
                    paragraph=m.paragraph,
                    start=m.start,
                    end=m.end,
                    has_grant=m.has_grant,
                    account_code=m.account_code,
                    provider=m.provider,
                )
                for m in case.measures
            ),
            assessments=tuple(
                AssessmentRecord(theme=Theme(a.theme), value=a.value, assessed_on=a.assessed_on, assessor=a.assessor)
                for a in case.assessments
            ),
            events=tuple(
                CaseEventRecord(kind=e.kind, occurred_on=e.occurred_on, occurred_at=e.at, source_ref=e.ref)
                for e in case.events
            ),
        )

    def expected_records(self, persons: Pseudonymizer) -> list[CaseRecord]:
        return [self.expected_record(c, persons) for c in self.valid_cases()]
