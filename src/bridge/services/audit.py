"""The checklist engine: run the installed audit rules over cases, stream timelines from the store,
and list a case's coming and overdue deadlines.

- :func:`audit_rules` — the installed rules (core's and every plugin's, through
  ``bridge_register_audit_rules``), in Børnesagsbarometret's order of areas.
- :func:`check_case` — every automatic rule on one :class:`~bridge.law.Timeline` as of a day.
- :func:`rule_outcome` — one outcome per rule from its checks: a failed check fails the rule,
  else a passed one passes it, else it is not yet due, else not relevant.
- :func:`upcoming_deadlines` — for one case and a day, the deadlines coming up and overdue, with
  their rule and act (for handover dossiers).
- :func:`timelines` — every live case of the store as a timeline, read in bounded chunks of case
  ids, so memory stays flat however large the store is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, and_, select

from bridge.errors import BridgeError
from bridge.law import Area, AuditRule, Check, Citation, EventFact, MeasureFact, Outcome, Timeline
from bridge.model.records import Act, EventKind
from bridge.model.tables import CASES, CASEWORKERS, EVENTS, MEASURES
from bridge.plugins import get_plugins
from bridge.services.population import live
from bridge.store import Store

CHUNK = 2000
_AREA_ORDER = {area: i for i, area in enumerate(Area)}


class AuditError(BridgeError):
    """A rule could not check a case (a bug in the rule): names the rule and the case number."""


def audit_rules(*, automatic: bool | None = None) -> list[AuditRule]:
    """The installed rules in area order (core's before a plugin's within an area); ``automatic`` filters."""
    found = list(get_plugins().audit_rules().values())
    found.sort(key=lambda r: (_AREA_ORDER[r.area], not type(r).__module__.startswith("bridge.law.")))
    return [r for r in found if automatic is None or r.automatic is automatic]


def check_case(case: Timeline, as_of: date, rules: Sequence[AuditRule] | None = None) -> list[Check]:
    """Every check of every automatic rule on ``case`` as of ``as_of``."""
    checks: list[Check] = []
    for rule in rules if rules is not None else audit_rules(automatic=True):
        if not rule.automatic:
            continue
        try:
            checks.extend(rule.check(case, as_of))
        except Exception as exc:
            raise AuditError(f"audit rule {rule.id!r} failed on case {case.case_number}: {exc}") from exc
    return checks


def rule_outcome(checks: Iterable[Check]) -> Outcome:
    """One outcome from several checks of one rule: fail > pass > not yet due > not relevant."""
    seen = {c.outcome for c in checks}
    for outcome in (Outcome.failed, Outcome.passed, Outcome.not_yet_due):
        if outcome in seen:
            return outcome
    return Outcome.not_relevant


@dataclass(frozen=True)
class Deadline:
    """A deadline of one case: ``overdue`` when it has passed with the milestone still missing."""

    rule: str
    title: str
    due: date
    citation: Citation
    subject: str
    overdue: bool
    evidence: str


def upcoming_deadlines(
    case: Timeline, on: date, *, within_days: int | None = None, rules: Sequence[AuditRule] | None = None
) -> list[Deadline]:
    """The deadlines of ``case`` on ``on``: overdue ones (milestone missing past its deadline) and
    coming ones (not yet due), each with its rule and act, earliest first. ``within_days`` limits
    the coming ones to that horizon."""
    chosen = rules if rules is not None else audit_rules(automatic=True)
    titles = {r.id: r.title for r in chosen}
    found = []
    for check in check_case(case, on, chosen):
        if not check.open or check.due is None:
            continue
        overdue = check.outcome is Outcome.failed
        if not overdue and check.outcome is not Outcome.not_yet_due:
            continue
        if not overdue and within_days is not None and (check.due - on).days > within_days:
            continue
        found.append(
            Deadline(check.rule, titles[check.rule], check.due, check.citation, check.subject, overdue, check.evidence)
        )
    found.sort(key=lambda d: (d.due, d.rule, d.subject))
    return found


@dataclass(frozen=True, slots=True)
class CaseInfo:
    """Who and where a case is, for grouping and listing (never a person key or CPR)."""

    id: int
    key: str
    case_number: str
    municipality: str
    caseworker: str
    team: str


def timelines(
    store: Store, *, municipality: str | None = None, case_ids: Sequence[int] | None = None, chunk: int = CHUNK
) -> Iterator[tuple[CaseInfo, Timeline]]:
    """Every live case as a timeline, in case-id order, read ``chunk`` cases at a time."""
    c, w = CASES.c, CASEWORKERS.c
    wanted = sorted(set(case_ids)) if case_ids is not None else None
    last = 0
    with store.engine.connect() as conn:
        recorded = _recorded_kinds(conn)
        while True:
            query = (
                select(
                    c.id,
                    c.source,
                    c.source_ref,
                    c.case_number,
                    c.municipality,
                    c.child_birth_date,
                    c.target_group,
                    c.opened,
                    c.closed,
                    w.name,
                    w.unit,
                )
                .select_from(CASES.outerjoin(CASEWORKERS, w.id == c.caseworker_id))
                .where(live(), c.id > last)
                .order_by(c.id)
                .limit(chunk)
            )
            if municipality is not None:
                query = query.where(c.municipality == municipality)
            if wanted is not None:
                batch_ids = [i for i in wanted if i > last][:chunk]
                if not batch_ids:
                    return
                query = query.where(c.id.in_(batch_ids))
            cases = list(conn.execute(query))
            if not cases:
                return
            low, high = cases[0].id, cases[-1].id
            measures = _measures(conn, low, high)
            events = _events(conn, low, high)
            for row in cases:
                info = CaseInfo(
                    row.id,
                    f"{row.source}:{row.source_ref}",
                    row.case_number,
                    row.municipality,
                    row.name or "(ingen sagsbehandler)",
                    row.unit or "(intet team)",
                )
                yield (
                    info,
                    Timeline(
                        key=info.key,
                        case_number=row.case_number,
                        birth_date=row.child_birth_date,
                        target_group=row.target_group,
                        opened=row.opened,
                        closed=row.closed,
                        measures=tuple(measures.get(row.id, ())),
                        events=tuple(events.get(row.id, ())),
                        recorded=recorded.get(row.source, frozenset()),
                    ),
                )
            last = high
            if len(cases) < chunk and wanted is None:
                return


def _recorded_kinds(conn: Connection) -> dict[str, frozenset[str]]:
    """Per source, the event kinds it has delivered for any case: one indexed look-up per kind and source."""
    sources = list(conn.execute(select(CASES.c.source).distinct()).scalars())
    found: dict[str, set[str]] = {source: set() for source in sources}
    e = EVENTS.c
    for kind in EventKind:
        for source in sources:
            hit = conn.execute(
                select(e.id)
                .join(CASES, CASES.c.id == e.case_id)
                .where(e.kind == kind.value, CASES.c.source == source)
                .limit(1)
            ).first()
            if hit is not None:
                found[source].add(kind.value)
    return {source: frozenset(kinds) for source, kinds in found.items()}


def _measures(conn: Connection, low: int, high: int) -> dict[int, list[MeasureFact]]:
    m = MEASURES.c
    query = select(m.case_id, m.source_ref, m.act, m.paragraph, m.start, m.end, m.has_grant, m.account_code).where(
        and_(m.case_id >= low, m.case_id <= high)
    )
    found: dict[int, list[MeasureFact]] = {}
    for row in conn.execute(query):
        found.setdefault(row.case_id, []).append(
            MeasureFact(
                row.source_ref, Act(row.act), row.paragraph, row.start, row.end, row.has_grant, row.account_code
            )
        )
    return found


def _events(conn: Connection, low: int, high: int) -> dict[int, list[EventFact]]:
    e = EVENTS.c
    at = e.get("occurred_at")
    columns = [e.case_id, e.kind, e.occurred_on, e.source_ref]
    if at is not None:
        columns.append(at)
    query = select(*columns).where(and_(e.case_id >= low, e.case_id <= high))
    found: dict[int, list[EventFact]] = {}
    for row in conn.execute(query):
        moment: datetime | None = row[4] if at is not None else None
        found.setdefault(row.case_id, []).append(EventFact(row.kind, row.occurred_on, moment, row.source_ref))
    return found


__all__ = [
    "AuditError",
    "CaseInfo",
    "Deadline",
    "audit_rules",
    "check_case",
    "rule_outcome",
    "timelines",
    "upcoming_deadlines",
]
