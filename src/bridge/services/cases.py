"""Finding cases, and the read model of one case that services build on.

- :func:`find_cases` finds cases by status, caseworker, municipality, case number, or a child's CPR number.
- :func:`case_views` reads whole cases — the case with its caseworker and team, its measures and
  dated milestones (the :class:`~bridge.law.Timeline` the audit rules read), and its latest score per
  theme with the direction since the score before — for services that work on one case at a time
  (handover dossiers, who takes a new case).

A person never needs a person key to find a child: a case is found by its case number, or
by the child's CPR number, which is turned into the person key with the installation's
secret on this machine and never stored, printed or logged. What is shown of a child is
the case number and the child's age — never the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy import func, or_, select

from bridge.law import MeasureFact, Timeline
from bridge.model.records import Theme
from bridge.model.tables import ASSESSMENTS, CASES, CASEWORKERS, MUNICIPALITIES
from bridge.privacy import Pseudonymizer
from bridge.services.audit import CaseInfo, timelines
from bridge.services.population import live
from bridge.store import Store


@dataclass(frozen=True)
class CaseSummary:
    """One child's case as a person looks it up; ``child_key`` is for code, never for display."""

    id: int
    source: str
    case_number: str
    municipality: str
    municipality_name: str
    caseworker: str | None
    child_age: int
    status: str
    opened: date
    closed: date | None
    child_key: str

    def label(self) -> str:
        """How a report names the child: ``sag 27.24.00-G01-5-19, 9 år``."""
        return f"sag {self.case_number}, {self.child_age} år"


def find_cases(
    store: Store,
    *,
    open_only: bool = False,
    caseworker: str | None = None,
    municipality: str | None = None,
    case_number: str | None = None,
    child_key: str | None = None,
    on: date | None = None,
    limit: int | None = None,
) -> list[CaseSummary]:
    """Live cases, newest opened first. ``caseworker`` matches part of the name, any case;
    ``municipality`` a kommunekode or part of its name; ages are whole years on ``on`` (today).
    """
    c, w, m = CASES.c, CASEWORKERS.c, MUNICIPALITIES.c
    query = (
        select(
            c.id,
            c.source,
            c.case_number,
            c.municipality,
            m.name,
            w.name,
            c.child_birth_date,
            c.status,
            c.opened,
            c.closed,
            c.child_key,
        )
        .join_from(CASES, MUNICIPALITIES, c.municipality == m.code)
        .outerjoin(CASEWORKERS, c.caseworker_id == w.id)
        .where(live())
        .order_by(c.opened.desc(), c.case_number, c.id)
    )
    if open_only:
        query = query.where(c.status == "open")
    if caseworker:
        query = query.where(func.lower(w.name).contains(caseworker.lower(), autoescape=True))
    if municipality:
        query = query.where(or_(c.municipality == municipality, func.lower(m.name).contains(municipality.lower())))
    if case_number:
        query = query.where(or_(c.case_number == case_number, c.family_case_number == case_number))
    if child_key:
        query = query.where(c.child_key == child_key)
    if limit:
        query = query.limit(limit)
    today = on or date.today()
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        CaseSummary(
            id=row[0],
            source=row[1],
            case_number=row[2],
            municipality=row[3],
            municipality_name=row[4],
            caseworker=row[5],
            child_age=age(row[6], today),
            status=row[7],
            opened=row[8],
            closed=row[9],
            child_key=row[10],
        )
        for row in rows
    ]


def age(born: date, on: date) -> int:
    """Whole years from ``born`` to ``on`` (born 29 February: a year older on 1 March in other years)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def child_key_for_cpr(persons: Pseudonymizer, cpr: str) -> str:
    """The person key of ``cpr``; raises ``InvalidCPR`` (whose message holds no digits) when it is none."""
    return persons.person(cpr).key


Direction = Literal["forbedret", "uændret", "forværret", "første score"]


@dataclass(frozen=True)
class ThemeScore:
    """The latest score on one theme (Trivselslinealen: 1 = i trivsel … 5 = truet trivsel) and the one before."""

    theme: Theme
    value: int
    on: date
    previous: int | None

    @property
    def direction(self) -> Direction:
        """Since the score before: a fall is an improvement ("forbedret"). Not a reliable-change verdict."""
        if self.previous is None:
            return "første score"
        if self.value < self.previous:
            return "forbedret"
        return "uændret" if self.value == self.previous else "forværret"


@dataclass(frozen=True)
class CaseView:
    """One case as services read it: who and where it is, its timeline and its latest scores.

    ``family_key`` is for keeping siblings together in code; like the person key, it is never shown.
    """

    info: CaseInfo
    timeline: Timeline
    family_key: str | None
    scores: tuple[ThemeScore, ...]

    @property
    def case_number(self) -> str:
        return self.info.case_number

    def age_on(self, day: date) -> int:
        return age(self.timeline.birth_date, day)

    def open_measures(self, day: date) -> list[MeasureFact]:
        """Measures in force on ``day`` (started, not ended), earliest first."""
        found = [m for m in self.timeline.measures if m.start <= day and (m.end is None or m.end >= day)]
        return sorted(found, key=lambda m: (m.start, m.label))

    def last_journal_note(self) -> date | None:
        notes = self.timeline.of("journal_note")
        return notes[-1].on if notes else None


def case_views(store: Store, case_ids: Sequence[int]) -> list[CaseView]:
    """The live cases among ``case_ids``, whole, in case-id order."""
    wanted = sorted(set(case_ids))
    if not wanted:
        return []
    c = CASES.c
    with store.engine.connect() as conn:
        families = {row.id: row.family_key for row in conn.execute(select(c.id, c.family_key).where(c.id.in_(wanted)))}
    scores = latest_scores(store, wanted)
    return [
        CaseView(info, timeline, families[info.id], scores.get(info.id, ()))
        for info, timeline in timelines(store, case_ids=wanted)
    ]


def latest_scores(store: Store, case_ids: Sequence[int]) -> dict[int, tuple[ThemeScore, ...]]:
    """Per case, the latest scored assessment of each theme and the value before it ("ikke vurderet" skipped)."""
    a = ASSESSMENTS.c
    rank = (
        func.row_number()
        .over(partition_by=(a.case_id, a.theme), order_by=(a.assessed_on.desc(), a.id.desc()))
        .label("rank")
    )
    ranked = (
        select(a.case_id, a.theme, a.value, a.assessed_on, rank)
        .where(a.case_id.in_(list(case_ids)), a.value.is_not(None))
        .subquery()
    )
    query = select(ranked).where(ranked.c.rank <= 2).order_by(ranked.c.case_id, ranked.c.theme, ranked.c.rank)
    newest: dict[tuple[int, str], tuple[int, date]] = {}
    before: dict[tuple[int, str], int] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            if row.rank == 1:
                newest[(row.case_id, row.theme)] = (row.value, row.assessed_on)
            else:
                before[(row.case_id, row.theme)] = row.value
    order = {theme: i for i, theme in enumerate(Theme)}
    found: dict[int, list[ThemeScore]] = {}
    for (case_id, theme), (value, on) in newest.items():
        found.setdefault(case_id, []).append(ThemeScore(Theme(theme), value, on, before.get((case_id, theme))))
    return {k: tuple(sorted(v, key=lambda s: order[s.theme])) for k, v in found.items()}
