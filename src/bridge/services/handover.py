"""Handing over a leaving caseworker's cases: a redistribution plan, a dossier per case, and the decision.

- :func:`plan_handover` proposes who takes each open case of the leaving caseworker. Families
  move whole (siblings share a family key, and stay with one caseworker); the receivers are the
  ones named (``to``), else the rest of the leaving caseworker's team. The plan evens the
  receivers' weighted loads (:mod:`bridge.services.workload`): it minimises the highest load
  after the handover and is never worse than handing the families out one by one to whoever
  has the lowest load at that moment (:func:`greedy`).
- :func:`dossiers` writes what a receiver needs to take a case over: the case and the child's
  age, open measures with their legal basis and end dates, deadlines coming up with days left
  and what is overdue (the audit rules' :func:`~bridge.services.audit.upcoming_deadlines`), the
  latest score per theme with its direction, open audit findings and the last journal note.
- :func:`accept` stores the plan as a dated decision; :func:`progress` checks, after the next
  syncs, which of its moves the case system shows done.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import insert, select

from bridge.config import WorkloadSettings
from bridge.errors import BridgeError, ConfigError
from bridge.law import MeasureFact
from bridge.model.handover import HandoverDecision, HandoverMove
from bridge.model.tables import CASES, CASEWORKERS, table_of
from bridge.services.audit import Deadline, audit_rules, upcoming_deadlines
from bridge.services.cases import ThemeScore, case_views
from bridge.services.findings import Finding, current_findings
from bridge.services.workload import CaseworkerLoad, OpenCase, child_load, open_cases, workload
from bridge.store import Store

DECISIONS = table_of(HandoverDecision)
MOVES = table_of(HandoverMove)
_EPSILON = 1e-9


class HandoverError(BridgeError):
    """A handover cannot be planned as asked (an unknown or ambiguous caseworker, no receivers)."""


# -- the distribution, on its own -----------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """What moves as one: a family's open cases (or a child without a family key), and their weight."""

    key: str
    weight: float


def greedy(units: Sequence[Unit], loads: Mapping[int, float]) -> dict[str, int]:
    """Each unit in turn to the receiver with the lowest load at that moment (ties: the first receiver)."""
    current = dict(loads)
    plan = {}
    for unit in units:
        receiver = min(current, key=lambda r: current[r])
        plan[unit.key] = receiver
        current[receiver] += unit.weight
    return plan


def resulting_loads(units: Sequence[Unit], loads: Mapping[int, float], plan: Mapping[str, int]) -> dict[int, float]:
    after = dict(loads)
    for unit in units:
        after[plan[unit.key]] += unit.weight
    return after


def _spread(units: Sequence[Unit], loads: Mapping[int, float], plan: Mapping[str, int]) -> tuple[float, ...]:
    """Loads after the plan, highest first: the smaller (lexicographically), the more even."""
    return tuple(sorted(resulting_loads(units, loads, plan).values(), reverse=True))


def distribute(units: Sequence[Unit], loads: Mapping[int, float]) -> dict[str, int]:
    """Units to receivers (by id, with their loads before), evening the loads after.

    The heaviest units are placed first on the lowest load, then single units are moved, and pairs
    swapped, off the most loaded receiver while that lowers it below where it was. The result is
    compared with :func:`greedy` in the given order and the more even of the two is kept, so it is
    never worse than greedy.
    """
    if not loads:
        raise HandoverError("no receivers to hand the cases to")
    weight = {u.key: u.weight for u in units}
    plan = greedy(sorted(units, key=lambda u: (-u.weight, u.key)), loads)
    after = resulting_loads(units, loads, plan)
    for _ in range(4 * len(units) + 1):
        if not _improve(plan, after, weight):
            break
    plain = greedy(units, loads)
    return plan if _spread(units, loads, plan) <= _spread(units, loads, plain) else plain


def _improve(plan: dict[str, int], after: dict[int, float], weight: Mapping[str, float]) -> bool:
    """One move or swap off the most loaded receiver that leaves both receivers below its load."""
    top = max(after, key=lambda r: (after[r], -r))
    mine = sorted((k for k, r in plan.items() if r == top), key=lambda k: (-weight[k], k))
    others = sorted((r for r in after if r != top), key=lambda r: (after[r], r))
    for key in mine:
        for other in others:
            if after[other] + weight[key] < after[top] - _EPSILON:
                plan[key] = other
                after[top] -= weight[key]
                after[other] += weight[key]
                return True
    for key in mine:
        for other in others:
            for theirs in (k for k, r in plan.items() if r == other and weight[k] < weight[key] - _EPSILON):
                delta = weight[key] - weight[theirs]
                if after[other] + delta < after[top] - _EPSILON:
                    plan[key], plan[theirs] = other, top
                    after[top] -= delta
                    after[other] += delta
                    return True
    return False


def choose_receivers(
    candidates: Sequence[CaseworkerLoad], leaving: CaseworkerLoad, to: Sequence[str] | None
) -> list[CaseworkerLoad]:
    """The named receivers (by name, in the leaving caseworker's municipality), else the rest of the team."""
    pool = [w for w in candidates if w.municipality == leaving.municipality and w.id != leaving.id]
    if to:
        chosen: list[CaseworkerLoad] = []
        for name in to:
            match = [w for w in pool if w.name.casefold() == name.strip().casefold()]
            if not match:
                if name.strip().casefold() == leaving.name.casefold():
                    raise HandoverError(f"--to {name!r}: that is the caseworker who leaves")
                known = ", ".join(sorted({w.name for w in pool})) or "none"
                raise HandoverError(
                    f"--to {name!r}: no caseworker of that name has open cases here (they are: {known})"
                )
            chosen.extend(m for m in match if m not in chosen)
        return chosen
    team = [w for w in pool if w.team == leaving.team]
    if not team:
        raise HandoverError(
            f"{leaving.name} is the only caseworker with open cases in team {leaving.team}; "
            "name the receivers with --to"
        )
    return team


# -- the plan over the store ---------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    case_id: int
    case_key: str
    case_number: str
    family: str
    """"F1", "F2" … for cases that move together, numbered in the plan; "" for a child on its own."""
    weight: float
    receiver: CaseworkerLoad


@dataclass(frozen=True)
class ReceiverLoad:
    caseworker: CaseworkerLoad
    before: float
    after: float
    children: int
    """Children handed to this receiver."""

    @property
    def share_after(self) -> float:
        return 100 * self.after / self.caseworker.norm


@dataclass(frozen=True)
class HandoverPlan:
    leaving: CaseworkerLoad
    on: date
    receivers: list[ReceiverLoad]
    moves: list[Move]
    greedy_highest: float
    """The highest load after handing the families out greedily, for comparison."""

    @property
    def highest(self) -> float:
        return max(r.after for r in self.receivers)


def find_caseworker(candidates: Sequence[CaseworkerLoad], name: str, municipality: str | None = None) -> CaseworkerLoad:
    """The caseworker called ``name`` (any case); part of a name when only one matches."""
    pool = [w for w in candidates if municipality is None or w.municipality == municipality]
    exact = [w for w in pool if w.name.casefold() == name.casefold()]
    found = exact or [w for w in pool if name.casefold() in w.name.casefold()]
    if len(found) == 1:
        return found[0]
    if not found:
        raise HandoverError(f"no caseworker called {name!r} has open cases (bridge workload lists them)")
    names = "; ".join(f"{w.name}, {w.team}, kommune {w.municipality}" for w in found)
    raise HandoverError(f"{name!r} matches several caseworkers ({names}): give the full name and --municipality")


def plan_handover(
    store: Store,
    leaving: str,
    *,
    to: Sequence[str] | None = None,
    on: date | None = None,
    settings: WorkloadSettings | None = None,
    municipality: str | None = None,
) -> HandoverPlan:
    """A plan moving every open case of ``leaving`` to ``to`` (or the rest of the team), families whole."""
    on = on or date.today()
    load = workload(store, settings=settings, on=on, municipality=municipality)
    person = find_caseworker(load.caseworkers, leaving, municipality)
    receivers = choose_receivers(load.caseworkers, person, to)
    cases = open_cases(store, settings=settings, on=on, caseworker_ids=[person.id])
    plan = assign_cases(cases, receivers)
    units, members = _families(cases)
    before = {r.id: r.load for r in receivers}
    greedy_after = resulting_loads(units, before, greedy(units, before))
    by_id = {r.id: r for r in receivers}
    keys = _case_keys(store, [c.case.id for c in cases])
    numbering = {u.key: f"F{i}" for i, u in enumerate((u for u in units if len(members[u.key]) > 1), start=1)}
    moves = [
        Move(item.case.id, keys[item.case.id], item.case.case_number, numbering.get(unit.key, ""), item.weight,
             by_id[plan[item.case.id]])
        for unit in units
        for item in members[unit.key]
    ]  # fmt: skip
    moves.sort(key=lambda m: (m.receiver.name, m.family or "~", m.case_number))
    loads = []
    for receiver in receivers:
        mine = [c for c in cases if plan[c.case.id] == receiver.id]
        children = len({c.child_key for c in mine})
        loads.append(ReceiverLoad(receiver, receiver.load, receiver.load + child_load(mine), children))
    return HandoverPlan(person, on, loads, moves, max(greedy_after.values()))


def assign_cases(cases: Sequence[OpenCase], receivers: Sequence[CaseworkerLoad]) -> dict[int, int]:
    """Every case (by id) to a receiver (by id): families whole, the receivers' loads evened (:func:`distribute`)."""
    units, members = _families(cases)
    plan = distribute(units, {r.id: r.load for r in receivers})
    return {item.case.id: plan[unit.key] for unit in units for item in members[unit.key]}


def _families(cases: Sequence[OpenCase]) -> tuple[list[Unit], dict[str, list[OpenCase]]]:
    """Cases grouped by family key, in order of their first case number.

    A child's cases stay together too: a case without a family key joins the family of the child's
    other cases, and a child with no family key at all is a unit of its own.
    """
    family_of = {item.child_key: item.family_key for item in cases if item.family_key}
    members: dict[str, list[OpenCase]] = defaultdict(list)
    for item in cases:
        family = item.family_key or family_of.get(item.child_key)
        members[f"family:{family}" if family else f"child:{item.child_key}"].append(item)
    ordered = sorted(members, key=lambda k: min(c.case.case_number for c in members[k]))
    return [Unit(k, child_load(members[k])) for k in ordered], members


def _case_keys(store: Store, case_ids: Sequence[int]) -> dict[int, str]:
    c = CASES.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(c.id, c.source, c.source_ref).where(c.id.in_(list(case_ids))))
        return {row.id: f"{row.source}:{row.source_ref}" for row in rows}


# -- dossiers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dossier:
    """What the receiver of one case needs on the day of the handover."""

    case_number: str
    age: int
    target_group: str
    opened: date
    receiver: str
    family: str
    siblings: tuple[str, ...]
    measures: list[MeasureFact]
    deadlines: list[Deadline]
    scores: tuple[ThemeScore, ...]
    findings: list[Finding]
    last_journal_note: date | None
    overdue: tuple[str, ...]
    on: date

    def days_left(self, deadline: Deadline) -> int:
        return (deadline.due - self.on).days


def _overdue(
    deadlines: Sequence[Deadline], findings: Sequence[Finding], titles: Mapping[str, str], on: date
) -> tuple[str, ...]:
    """What is overdue on ``on``, in Danish: missed deadlines, and audit findings past their follow-up day."""
    found = [f"{d.title}: frist {d.due:%d.%m.%Y}, {(on - d.due).days} dage over" for d in deadlines if d.overdue]
    found += [
        f"Fund fra ledelsestilsyn, {titles.get(f.rule, f.rule)}: skulle være rettet {f.follow_up_due:%d.%m.%Y}"
        for f in findings
        if f.follow_up_due is not None and f.follow_up_due < on
    ]
    return tuple(found)


def dossiers(store: Store, plan: HandoverPlan) -> list[Dossier]:
    """One dossier per moved case, in the plan's order."""
    by_id = {m.case_id: m for m in plan.moves}
    views = {v.info.id: v for v in case_views(store, list(by_id))}
    keys = {m.case_key for m in plan.moves}
    open_findings: dict[str, list[Finding]] = defaultdict(list)
    for finding in current_findings(store):
        if finding.case_key in keys and finding.open_error:
            open_findings[finding.case_key].append(finding)
    families: dict[str, list[str]] = defaultdict(list)
    for move in plan.moves:
        if move.family:
            families[move.family].append(move.case_number)
    rules = audit_rules()
    titles = {r.id: r.title for r in rules}
    automatic = [r for r in rules if r.automatic]
    found = []
    for move in plan.moves:
        view = views[move.case_id]
        deadlines = upcoming_deadlines(view.timeline, plan.on, rules=automatic)
        errors = sorted(open_findings[move.case_key], key=lambda f: (f.follow_up_due or date.max, f.rule))
        found.append(
            Dossier(
                case_number=move.case_number,
                age=view.age_on(plan.on),
                target_group=view.timeline.target_group,
                opened=view.timeline.opened,
                receiver=move.receiver.name,
                family=move.family,
                siblings=tuple(n for n in families.get(move.family, ()) if n != move.case_number),
                measures=view.open_measures(plan.on),
                deadlines=deadlines,
                scores=view.scores,
                findings=errors,
                last_journal_note=view.last_journal_note(),
                overdue=_overdue(deadlines, errors, titles, plan.on),
                on=plan.on,
            )
        )
    return found


# -- the decision and whether it happened ----------------------------------------------------------


def accept(store: Store, plan: HandoverPlan, *, decided_by: str) -> int:
    """Store ``plan`` as a dated decision; returns its id."""
    with store.transaction() as conn:
        decision = conn.execute(
            insert(DECISIONS)
            .values(
                caseworker_id=plan.leaving.id,
                caseworker_name=plan.leaving.name,
                effective_on=plan.on,
                decided_at=datetime.now(UTC),
                decided_by=decided_by,
            )
            .returning(DECISIONS.c.id)
        ).scalar_one()
        conn.execute(
            insert(MOVES),
            [
                {
                    "decision_id": decision,
                    "case_id": m.case_id,
                    "case_number": m.case_number,
                    "receiver_id": m.receiver.id,
                    "receiver_name": m.receiver.name,
                    "weight": m.weight,
                }
                for m in plan.moves
            ],
        )
    return int(decision)


DONE, WAITING, ELSEWHERE, ENDED = "flyttet", "venter", "hos en anden", "lukket"
STATUSES = (DONE, WAITING, ELSEWHERE, ENDED)


@dataclass(frozen=True)
class MoveStatus:
    case_number: str
    receiver: str
    status: str
    """``flyttet`` (the case system shows the receiver), ``venter`` (still the leaving caseworker),
    ``hos en anden`` (a third caseworker), ``lukket`` (closed or gone since)."""
    now_with: str | None


@dataclass(frozen=True)
class DecisionProgress:
    id: int
    caseworker: str
    effective_on: date
    decided_at: datetime
    decided_by: str
    moves: list[MoveStatus]

    def count(self, status: str) -> int:
        return sum(1 for m in self.moves if m.status == status)


def progress(store: Store, decision_id: int | None = None) -> list[DecisionProgress]:
    """Accepted decisions (one, or all, newest first), each move checked against the cases as synced now."""
    d, m, c, w = DECISIONS.c, MOVES.c, CASES.c, CASEWORKERS.c
    query = select(DECISIONS).order_by(d.id.desc())
    if decision_id is not None:
        query = query.where(d.id == decision_id)
    moves = (
        select(m.decision_id, m.case_number, m.receiver_id, m.receiver_name, c.caseworker_id, c.status, c.deleted_at,
               w.name)
        .join_from(MOVES, CASES, c.id == m.case_id)
        .outerjoin(CASEWORKERS, w.id == c.caseworker_id)
        .order_by(m.receiver_name, m.case_number)
    )  # fmt: skip
    with store.engine.connect() as conn:
        decisions = list(conn.execute(query))
        if decision_id is not None and not decisions:
            raise ConfigError(f"no accepted handover has id {decision_id} (bridge handovers lists them)")
        rows: dict[int, list[MoveStatus]] = defaultdict(list)
        leaving = {row.id: row.caseworker_id for row in decisions}
        for row in conn.execute(moves.where(m.decision_id.in_(list(leaving)))):
            if row.deleted_at is not None or row.status != "open":
                status = ENDED
            elif row.caseworker_id == row.receiver_id:
                status = DONE
            elif row.caseworker_id == leaving[row.decision_id]:
                status = WAITING
            else:
                status = ELSEWHERE
            rows[row.decision_id].append(MoveStatus(row.case_number, row.receiver_name, status, row.name))
    return [
        DecisionProgress(
            row.id,
            row.caseworker_name,
            row.effective_on,
            row.decided_at if row.decided_at.tzinfo else row.decided_at.replace(tzinfo=UTC),
            row.decided_by,
            rows[row.id],
        )
        for row in decisions
    ]


__all__ = [
    "DecisionProgress",
    "Dossier",
    "HandoverError",
    "HandoverPlan",
    "Move",
    "MoveStatus",
    "ReceiverLoad",
    "Unit",
    "accept",
    "assign_cases",
    "choose_receivers",
    "distribute",
    "dossiers",
    "find_caseworker",
    "greedy",
    "plan_handover",
    "progress",
    "resulting_loads",
]
