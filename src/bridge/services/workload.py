"""Weighted caseload per caseworker and team, and who takes a new case.

**Weights.** Every open, live case has a weight, from ``bridge.toml``'s ``[workload]`` table
(:class:`bridge.config.WorkloadSettings`)::

    weight = (udsatte / normtal of its target group)
             × (1 + placement   if an open measure is a placement
                  + measure     for each open measure (or its paragraph's weight in `measures`)
                  + notification if a notification came within notification_days)

An udsatte case without extras weighs 1 and a handicap case 40/55, so a load of 40 is the
benchmark for both (40 cases on udsatte, 55 on handicap). A plugin may weigh cases its own way
through the ``bridge_case_weight`` hook.

**Children, not folders.** A caseworker's load is the sum over the *children* of their open
cases (a child with two open cases at one caseworker counts once, with the heavier weight).

**In SQL.** The weights and the sums per caseworker are one SQL statement (no row per case
reaches Python), so the national scale — 120,000 cases — takes seconds. Only when a plugin
implements ``bridge_case_weight`` are the cases read one by one, to ask it.

**Who takes a new case** (:func:`suggest`): the family's caseworker first (siblings stay
together), then the municipality's own rule (``[workload.assignment]``: by the child's birthday,
by team, or a plugin's rule registered through ``bridge_register_assignment_rules``), then the
lowest weighted load in the team.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import ColumnElement, Float, Select, and_, case, distinct, func, literal, or_, select

from bridge.config import WorkloadSettings, _describe
from bridge.errors import BridgeError, ConfigError
from bridge.hookspecs import hookimpl
from bridge.model.records import TargetGroup
from bridge.model.tables import CASES, CASEWORKERS, EVENTS, MEASURES
from bridge.plugins import get_plugins
from bridge.reports import danish
from bridge.services.cases import CaseView, case_views
from bridge.services.labels import municipality_names
from bridge.services.population import live
from bridge.store import Store

NO_TEAM = "(intet team)"


class UnknownCase(BridgeError):
    """No open case has that case number (exit 1)."""


@dataclass(frozen=True)
class WeightedCase:
    """What ``bridge_case_weight`` sees of an open case: no person key, no CPR number."""

    id: int
    case_number: str
    municipality: str
    team: str
    caseworker: str | None
    target_group: str
    measures: tuple[str, ...]
    """The open measures, "SEL § 52 stk. 3 nr. 7" style, in no particular order."""
    placement: bool
    recent_notification: bool
    weight: float
    """The weight ``[workload]`` gives the case."""


@dataclass(frozen=True)
class OpenCase:
    """An open case with its weight, for services that move cases (keys are for code, never shown)."""

    case: WeightedCase
    caseworker_id: int | None
    child_key: str
    family_key: str | None

    @property
    def weight(self) -> float:
        return self.case.weight


@dataclass(frozen=True)
class CaseworkerLoad:
    """One caseworker's open children and weighted load; ``norm`` is the benchmark load (40)."""

    id: int
    name: str
    team: str
    municipality: str
    children: int
    udsatte: int
    handicap: int
    load: float
    norm: float

    @property
    def share(self) -> float:
        """The load in per cent of the benchmark."""
        return 100 * self.load / self.norm


@dataclass(frozen=True)
class TeamLoad:
    municipality: str
    team: str
    caseworkers: int
    children: int
    load: float
    norm: float

    @property
    def mean(self) -> float:
        return self.load / self.caseworkers

    @property
    def share(self) -> float:
        return 100 * self.mean / self.norm


@dataclass(frozen=True)
class Workload:
    on: date
    settings: WorkloadSettings
    caseworkers: list[CaseworkerLoad]
    plugin_weights: bool = False
    """Whether a plugin's ``bridge_case_weight`` weighed the cases."""
    municipality_names: dict[str, str] = field(default_factory=dict)

    def place(self, code: str) -> str:
        """A municipality as a reader knows it: its name, else its kommunekode."""
        return self.municipality_names.get(code, code)

    @property
    def norm(self) -> float:
        return self.settings.udsatte

    def teams(self) -> list[TeamLoad]:
        grouped: dict[tuple[str, str], list[CaseworkerLoad]] = defaultdict(list)
        for worker in self.caseworkers:
            grouped[(worker.municipality, worker.team)].append(worker)
        return [
            TeamLoad(
                municipality,
                team,
                len(members),
                sum(w.children for w in members),
                sum(w.load for w in members),
                self.norm,
            )
            for (municipality, team), members in sorted(grouped.items())
        ]


# -- weights in SQL ------------------------------------------------------------------------------


def _num(value: float) -> ColumnElement[float]:
    return literal(float(value), Float)


def _provision_matches(provision: str) -> ColumnElement[bool]:
    """A measure under ``provision`` ("SEL 52 stk. 3 nr. 7", "BL 46"): the paragraph itself or a part of it."""
    act, _, paragraph = provision.partition(" ")
    m = MEASURES.c
    return and_(m.act == act, or_(m.paragraph == paragraph, m.paragraph.startswith(paragraph + " ")))


def _measure_weight(settings: WorkloadSettings) -> ColumnElement[float]:
    specific = sorted(settings.measures.items(), key=lambda item: -len(item[0]))
    if not specific:
        return _num(settings.measure)
    return case(*((_provision_matches(p), _num(w)) for p, w in specific), else_=_num(settings.measure))


def _is_placement(settings: WorkloadSettings) -> ColumnElement[int]:
    if not settings.placements:
        return literal(0)
    return case((or_(*(_provision_matches(p) for p in settings.placements)), 1), else_=0)


def _open_cases(
    settings: WorkloadSettings,
    on: date,
    *,
    municipality: str | None = None,
    caseworker_ids: Sequence[int] | None = None,
    with_labels: bool = False,
) -> Select[Any]:
    """One row per open, live case with its weight and the parts it is made of."""
    c, w, m, e = CASES.c, CASEWORKERS.c, MEASURES.c, EVENTS.c
    in_force = and_(m.start <= on, or_(m.end.is_(None), m.end >= on))
    measure_columns = [
        m.case_id,
        func.sum(_measure_weight(settings)).label("points"),
        func.max(_is_placement(settings)).label("placed"),
    ]
    if with_labels:
        measure_columns.append(func.aggregate_strings(m.act + " § " + m.paragraph, "; ").label("labels"))
    measures = select(*measure_columns).where(in_force).group_by(m.case_id).subquery("open_measures")
    since = on - timedelta(days=settings.notification_days)
    notified = (
        select(e.case_id)
        .where(e.kind == "notification", e.occurred_on > since, e.occurred_on <= on)
        .group_by(e.case_id)
        .subquery("notified")
    )
    base = case((c.target_group == TargetGroup.handicap.value, _num(settings.udsatte / settings.handicap)), else_=1.0)
    placed = func.coalesce(measures.c.placed, 0)
    recent = case((notified.c.case_id.is_not(None), 1), else_=0)
    weight = base * (
        _num(1.0)
        + func.coalesce(measures.c.points, 0.0)
        + _num(settings.placement) * placed
        + _num(settings.notification) * recent
    )
    columns: list[Any] = [
        c.id,
        c.case_number,
        c.municipality,
        c.target_group,
        c.child_key,
        c.family_key,
        c.caseworker_id,
        w.name.label("caseworker"),
        w.unit.label("team"),
        placed.label("placed"),
        recent.label("recent"),
        weight.label("weight"),
    ]
    if with_labels:
        columns.append(measures.c.labels)
    query = (
        select(*columns)
        .select_from(CASES)
        .outerjoin(CASEWORKERS, w.id == c.caseworker_id)
        .outerjoin(measures, measures.c.case_id == c.id)
        .outerjoin(notified, notified.c.case_id == c.id)
        .where(live(), c.status == "open")
    )
    if municipality is not None:
        query = query.where(c.municipality == municipality)
    if caseworker_ids is not None:
        query = query.where(c.caseworker_id.in_(list(caseworker_ids)))
    return query


def open_cases(
    store: Store,
    *,
    settings: WorkloadSettings | None = None,
    on: date | None = None,
    municipality: str | None = None,
    caseworker_ids: Sequence[int] | None = None,
) -> list[OpenCase]:
    """Open live cases with their weights (a plugin's, where one weighs cases), in case-number order."""
    settings = settings or WorkloadSettings()
    on = on or date.today()
    query = _open_cases(settings, on, municipality=municipality, caseworker_ids=caseworker_ids, with_labels=True)
    plugins = get_plugins()
    hooked = plugins.weighs_cases()
    found = []
    with store.engine.connect() as conn:
        for row in conn.execute(query.order_by(CASES.c.case_number, CASES.c.id)):
            weighted = WeightedCase(
                id=row.id,
                case_number=row.case_number,
                municipality=row.municipality,
                team=row.team or NO_TEAM,
                caseworker=row.caseworker,
                target_group=row.target_group,
                measures=tuple(row.labels.split("; ")) if row.labels else (),
                placement=bool(row.placed),
                recent_notification=bool(row.recent),
                weight=float(row.weight),
            )
            if hooked:
                weighted = replace(weighted, weight=plugins.case_weight(weighted))
            found.append(OpenCase(weighted, row.caseworker_id, row.child_key, row.family_key))
    return found


def child_load(cases: Iterable[OpenCase]) -> float:
    """The load of some cases: per child the heaviest of its cases, summed (children, not folders)."""
    heaviest: dict[str, float] = {}
    for item in cases:
        heaviest[item.child_key] = max(heaviest.get(item.child_key, 0.0), item.weight)
    return sum(heaviest.values())


def workload(
    store: Store, *, settings: WorkloadSettings | None = None, on: date | None = None, municipality: str | None = None
) -> Workload:
    """Every caseworker with open cases: children, of which udsatte and handicap, and weighted load."""
    settings = settings or WorkloadSettings()
    on = on or date.today()
    if get_plugins().weighs_cases():
        loads = _loads_from_cases(open_cases(store, settings=settings, on=on, municipality=municipality))
    else:
        loads = _loads_in_sql(store, settings, on, municipality)
    w = CASEWORKERS.c
    ids = list(loads)
    with store.engine.connect() as conn:
        people = {
            row.id: row for row in conn.execute(select(w.id, w.name, w.unit, w.municipality).where(w.id.in_(ids)))
        }
    workers = [
        CaseworkerLoad(
            id=i,
            name=people[i].name,
            team=people[i].unit or NO_TEAM,
            municipality=people[i].municipality,
            children=children,
            udsatte=udsatte,
            handicap=handicap,
            load=load,
            norm=settings.udsatte,
        )
        for i, (children, udsatte, handicap, load) in loads.items()
    ]
    workers.sort(key=lambda x: (x.municipality, x.team, x.name, x.id))
    return Workload(on, settings, workers, get_plugins().weighs_cases(), municipality_names(store))


_Loads = dict[int, tuple[int, int, int, float]]


def _loads_in_sql(store: Store, settings: WorkloadSettings, on: date, municipality: str | None) -> _Loads:
    cases = _open_cases(settings, on, municipality=municipality).where(CASES.c.caseworker_id.is_not(None)).subquery()
    k = cases.c
    per_child = (
        select(
            k.caseworker_id,
            k.child_key,
            func.max(k.weight).label("weight"),
            func.max(case((k.target_group == TargetGroup.udsatte.value, 1), else_=0)).label("udsatte"),
            func.max(case((k.target_group == TargetGroup.handicap.value, 1), else_=0)).label("handicap"),
        )
        .group_by(k.caseworker_id, k.child_key)
        .subquery("per_child")
    )
    p = per_child.c
    query = select(
        p.caseworker_id,
        func.count(distinct(p.child_key)),
        func.sum(p.udsatte),
        func.sum(p.handicap),
        func.sum(p.weight),
    ).group_by(p.caseworker_id)
    with store.engine.connect() as conn:
        return {row[0]: (row[1], row[2], row[3], float(row[4])) for row in conn.execute(query)}


def _loads_from_cases(cases: Iterable[OpenCase]) -> _Loads:
    by_worker: dict[int, list[OpenCase]] = defaultdict(list)
    for item in cases:
        if item.caseworker_id is not None:
            by_worker[item.caseworker_id].append(item)
    loads: _Loads = {}
    for worker, mine in by_worker.items():
        udsatte = {c.child_key for c in mine if c.case.target_group == TargetGroup.udsatte.value}
        handicap = {c.child_key for c in mine if c.case.target_group == TargetGroup.handicap.value}
        loads[worker] = (len({c.child_key for c in mine}), len(udsatte), len(handicap), child_load(mine))
    return loads


# -- who takes a new case --------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleChoice:
    """What an assignment rule points at: caseworkers by name (one, or a team's), and why, in Danish."""

    caseworkers: tuple[str, ...]
    reason: str


class AssignmentRule(ABC):
    """A municipality's rule for who takes a new case, registered through ``bridge_register_assignment_rules``."""

    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type[BaseModel]]

    @abstractmethod
    def choose(self, case: CaseView, candidates: Sequence[CaseworkerLoad], settings: Any) -> RuleChoice | None:
        """The caseworkers the rule gives ``case`` to among ``candidates`` (the municipality's), or None."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BirthdayRange(_Strict):
    first: int = Field(ge=1, le=31, description="first day of the month")
    last: int = Field(ge=1, le=31, description="last day of the month")
    caseworker: str

    @model_validator(mode="after")
    def _ordered(self) -> BirthdayRange:
        if self.last < self.first:
            raise ValueError(f"last ({self.last}) is before first ({self.first})")
        return self


class BirthdayConfig(_Strict):
    ranges: list[BirthdayRange] = Field(min_length=1)


class ByBirthday(AssignmentRule):
    """The child's day of birth in the month decides (days 1–10 to one caseworker, 11–20 to the next …)."""

    name = "birthday"
    description = "Fordeling efter barnets fødselsdag i måneden"
    Config = BirthdayConfig

    def choose(
        self, case: CaseView, candidates: Sequence[CaseworkerLoad], settings: BirthdayConfig
    ) -> RuleChoice | None:
        day = case.timeline.birth_date.day
        for found in settings.ranges:
            if found.first <= day <= found.last:
                return RuleChoice(
                    (found.caseworker,),
                    f"Kommunens fordeling efter fødselsdag: dag {found.first}.–{found.last}. i måneden "
                    f"hører til {found.caseworker}",
                )
        return None


class TeamConfig(_Strict):
    udsatte: str | None = None
    handicap: str | None = None


class ByTeam(AssignmentRule):
    """The case's target group decides the team (e.g. handicap cases to the handicap team)."""

    name = "team"
    description = "Fordeling efter målgruppe til et team"
    Config = TeamConfig

    def choose(self, case: CaseView, candidates: Sequence[CaseworkerLoad], settings: TeamConfig) -> RuleChoice | None:
        team = getattr(settings, case.timeline.target_group, None)
        if team is None:
            return None
        members = tuple(w.name for w in candidates if w.team == team)
        return RuleChoice(
            members, f"Kommunens fordeling: målgruppen {case.timeline.target_group} hører til team {team}"
        )


@hookimpl
def bridge_register_assignment_rules(register: Callable[[AssignmentRule], None]) -> None:
    register(ByBirthday())
    register(ByTeam())


Step = Literal["family", "rule", "load"]


@dataclass(frozen=True)
class Suggestion:
    """Who should take ``case_number``, by which step, why (Danish), and the team's loads to compare."""

    case_number: str
    caseworker: CaseworkerLoad
    step: Step
    reasons: list[str]
    alternatives: list[CaseworkerLoad] = field(default_factory=list)


def _configured_rule(settings: WorkloadSettings) -> tuple[AssignmentRule, BaseModel] | None:
    name = settings.assignment.rule
    if name is None:
        return None
    rules = get_plugins().assignment_rules()
    if name not in rules:
        raise ConfigError(
            f"workload.assignment.rule: no assignment rule named {name!r} is installed "
            f"(installed: {', '.join(sorted(rules))})"
        )
    rule = rules[name]
    try:
        config = rule.Config.model_validate(settings.assignment.settings)
    except ValidationError as exc:
        raise ConfigError(
            _describe(exc, f"the settings of assignment rule {name!r}", "workload.assignment.settings")
        ) from None
    return rule, config


def _by_name(candidates: Sequence[CaseworkerLoad], names: Iterable[str], where: str) -> list[CaseworkerLoad]:
    found = []
    for name in names:
        match = [w for w in candidates if w.name.casefold() == name.casefold()]
        if not match:
            raise ConfigError(f"{where}: no caseworker named {name!r} has open cases in the municipality")
        found.extend(match)
    return found


def _lowest(pool: Sequence[CaseworkerLoad]) -> list[CaseworkerLoad]:
    return sorted(pool, key=lambda w: (w.load, w.children, w.name, w.id))


def _number(value: float) -> str:
    return danish.number(round(value, 1), 1)


def suggest(
    store: Store,
    case_number: str,
    *,
    settings: WorkloadSettings | None = None,
    on: date | None = None,
    municipality: str | None = None,
) -> Suggestion:
    """Who should take the open case ``case_number``, with the reasons (see the module's docstring).

    Case numbers repeat between municipalities: ``municipality`` (a kommunekode) says which one.
    """
    settings = settings or WorkloadSettings()
    on = on or date.today()
    c = CASES.c
    query = select(c.id, c.municipality).where(c.case_number == case_number, live(), c.status == "open")
    if municipality is not None:
        query = query.where(c.municipality == municipality)
    with store.engine.connect() as conn:
        found = list(conn.execute(query.order_by(c.id)))
    if not found:
        raise UnknownCase(f"no open case has the case number {case_number!r} (bridge cases --open lists them)")
    places = sorted({row.municipality for row in found})
    if len(places) > 1:
        raise UnknownCase(
            f"case number {case_number!r} is open in municipalities {', '.join(places)}: give --municipality"
        )
    ids = [row.id for row in found]
    view = case_views(store, ids[:1])[0]
    municipality = view.info.municipality
    cases = open_cases(store, settings=settings, on=on, municipality=municipality)
    mine = next(x for x in cases if x.case.id == view.info.id)
    team_of = workload(store, settings=settings, on=on, municipality=municipality)
    candidates = [_without(w, mine) for w in team_of.caseworkers]
    if not candidates:
        raise UnknownCase(f"no caseworker in municipality {municipality} has open cases to compare with")
    reasons: list[str] = []
    siblings = [x for x in cases if view.family_key and x.family_key == view.family_key and x.case.id != mine.case.id]
    with_worker = [x for x in siblings if x.caseworker_id is not None]
    if with_worker:
        counts: dict[int, list[str]] = defaultdict(list)
        for sibling in with_worker:
            assert sibling.caseworker_id is not None
            counts[sibling.caseworker_id].append(sibling.case.case_number)
        by_id = {w.id: w for w in candidates}
        chosen = min((by_id[i] for i in counts if i in by_id), key=lambda w: (-len(counts[w.id]), w.load, w.name, w.id))
        numbers = ", ".join(sorted(counts[chosen.id]))
        reasons.append(f"Søskende holdes sammen: {chosen.name} har søskendes sag {numbers}")
        return Suggestion(case_number, chosen, "family", reasons, _lowest(_team(candidates, chosen.team)))
    if siblings:
        reasons.append("Søskende har ingen sagsbehandler endnu")
    configured = _configured_rule(settings)
    if configured is not None:
        rule, config = configured
        choice = rule.choose(view, candidates, config)
        if choice is not None and choice.caseworkers:
            pool = _by_name(candidates, choice.caseworkers, f"assignment rule {rule.name!r}")
            ranked = _lowest(pool)
            reasons.append(choice.reason)
            if len(ranked) > 1:
                reasons.append(_load_reason(ranked[0], ranked[0].team))
            return Suggestion(case_number, ranked[0], "rule", reasons, ranked)
        reasons.append(f"Kommunens regel ({rule.description.lower()}) afgør ikke denne sag")
    team = _team_for(view, candidates, cases)
    ranked = _lowest(_team(candidates, team))
    reasons.append(_load_reason(ranked[0], team))
    return Suggestion(case_number, ranked[0], "load", reasons, ranked)


def _without(worker: CaseworkerLoad, case: OpenCase) -> CaseworkerLoad:
    """``worker``'s load without ``case`` itself, when it is already theirs: compare loads before the new case."""
    if case.caseworker_id != worker.id:
        return worker
    udsatte = case.case.target_group == TargetGroup.udsatte.value
    return replace(
        worker,
        children=worker.children - 1,
        udsatte=worker.udsatte - udsatte,
        handicap=worker.handicap - (not udsatte),
        load=max(worker.load - case.weight, 0.0),
    )


def _team(candidates: Sequence[CaseworkerLoad], team: str) -> list[CaseworkerLoad]:
    return [w for w in candidates if w.team == team]


def _team_for(view: CaseView, candidates: Sequence[CaseworkerLoad], cases: Sequence[OpenCase]) -> str:
    """The case's team: its caseworker's, else the team holding most open cases of its target group."""
    if view.info.team != NO_TEAM and any(w.team == view.info.team for w in candidates):
        return view.info.team
    teams = {w.id: w.team for w in candidates}
    counts: dict[str, int] = defaultdict(int)
    for item in cases:
        if item.caseworker_id in teams and item.case.target_group == view.timeline.target_group:
            counts[teams[item.caseworker_id]] += 1
    return max(counts, key=lambda t: (counts[t], t)) if counts else candidates[0].team


def _load_reason(worker: CaseworkerLoad, team: str) -> str:
    return (
        f"Laveste vægtede sagstal i team {team}: {worker.name} med {_number(worker.load)} "
        f"({_number(worker.share)} % af normtallet)"
    )


__all__ = [
    "AssignmentRule",
    "BirthdayConfig",
    "ByBirthday",
    "ByTeam",
    "CaseworkerLoad",
    "OpenCase",
    "RuleChoice",
    "Suggestion",
    "TeamConfig",
    "TeamLoad",
    "UnknownCase",
    "WeightedCase",
    "Workload",
    "child_load",
    "open_cases",
    "suggest",
    "workload",
]
