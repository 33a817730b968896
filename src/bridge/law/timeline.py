"""What the audit rules read about one case: its child, its measures and its dated milestones.

A :class:`Timeline` is built from the store (:mod:`bridge.services.audit`) or from a record
(tests, hand-made timelines). It holds no person key and no CPR number: the rules need the
birth date, never who the child is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from bridge.model.records import Act, CaseRecord


@dataclass(frozen=True, slots=True)
class MeasureFact:
    ref: str
    act: Act
    paragraph: str
    start: date
    end: date | None = None
    has_grant: bool = True
    account_code: str | None = None

    @property
    def section(self) -> str:
        """The paragraph number alone: "52" of "52 stk. 3 nr. 7"."""
        return self.paragraph.split()[0]

    @property
    def label(self) -> str:
        return f"{self.act.value} § {self.paragraph}"


@dataclass(frozen=True, slots=True)
class EventFact:
    """A milestone: ``on`` is its day; ``at`` its time where the source has one (UTC), else None."""

    kind: str
    on: date
    at: datetime | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    key: str
    case_number: str
    birth_date: date
    target_group: str
    opened: date
    closed: date | None = None
    measures: tuple[MeasureFact, ...] = ()
    events: tuple[EventFact, ...] = ()
    recorded: frozenset[str] | None = None
    """The event kinds the case's source records at all; ``None``: not known, every kind is assumed.

    A rule about a kind its source never delivers (DUBU holds no journal notes) cannot judge the
    case from this data: a missing event there is not a missing milestone."""
    _by_kind: dict[str, tuple[EventFact, ...]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[EventFact]] = {}
        for event in sorted(self.events, key=_event_order):
            grouped.setdefault(event.kind, []).append(event)
        self._by_kind.update((kind, tuple(events)) for kind, events in grouped.items())

    def of(self, kind: str) -> tuple[EventFact, ...]:
        """Events of one kind in date order."""
        return self._by_kind.get(kind, ())

    def age_on(self, day: date) -> int:
        """Whole years of the child on ``day``."""
        birthday_passed = (day.month, day.day) >= (self.birth_date.month, self.birth_date.day)
        return day.year - self.birth_date.year - (0 if birthday_passed else 1)

    @classmethod
    def from_record(cls, record: CaseRecord, key: str | None = None) -> Timeline:
        return cls(
            key=key or record.source_ref,
            case_number=record.case_number,
            birth_date=record.child_birth_date,
            target_group=record.target_group.value,
            opened=record.opened,
            closed=record.closed,
            measures=tuple(
                MeasureFact(m.source_ref, m.act, m.paragraph, m.start, m.end, m.has_grant, m.account_code)
                for m in record.measures
            ),
            events=tuple(_event_facts(record)),
        )


def _event_order(event: EventFact) -> tuple[date, bool, float, str]:
    return (event.on, event.at is None, event.at.timestamp() if event.at else 0.0, event.ref or "")


def _event_facts(record: CaseRecord) -> Iterable[EventFact]:
    for event in record.events:
        yield EventFact(event.kind.value, event.occurred_on, getattr(event, "occurred_at", None), event.source_ref)
