"""Scoring history: series, progression, reliable change, transitions, cohorts and coverage.

The contract every function here keeps:

- The scale is KL's Trivselslinealen, 1 = i trivsel … 5 = truet trivsel, so a fall is an
  improvement and ``change = latest - baseline`` is negative when a child is doing better.
- "Ikke vurderet" (``value`` NULL) is never a number: it is listed in a child's series, but it
  is never a baseline, a latest score, or part of a mean, a count of scores or a coverage.
- The unit is the child (person key) × theme, over all of the child's live cases, so a
  child with two cases (two sources, a reopened case) counts once. Cases marked deleted by a
  ``--full`` sync are left out of everything.
- Baseline is the first scored assessment of a child on a theme, latest the last one. Two
  scores of the same child, theme and day (two cases scored together) resolve to the lower
  value, at both ends. A child has a *progression* on a theme when the latest score is from a
  later day than the baseline.
- Reliable change (Jacobson & Truax 1991): ``RC = 1.96 · √2 · SD · √(1 − r)``, where SD is the
  sample standard deviation of the baseline scores of every child with a baseline on that theme
  in the whole store (or a ``reference_sd`` given by the caller) and ``r`` the reliability of the
  scale (default 0.8). A change with ``|change| ≥ RC`` is improved (< 0) or worsened (> 0);
  anything smaller is unchanged, and a non-zero sub-threshold change is flagged as *movement*
  — a move, not a reliable change. Without a threshold (fewer than two baselines and no
  reference SD) no change counts as reliable.
- A period limits which assessments count (``assessed_on`` within it), so a cohort summary
  for a period is the progression made during that period. The threshold stays the store's.
- Counts, sums and the 5×5 transition tables are computed in SQL (window functions and
  GROUP BY that run on SQLite and PostgreSQL alike), so they scale with the database; only
  the square root of the variance and the division for means happen in Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    Subquery,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    type_coerce,
)

from bridge.errors import BridgeError, ConfigError
from bridge.model.records import Theme
from bridge.model.tables import ASSESSMENTS, CASES, MEASURES
from bridge.services.labels import TARGET_GROUP_LABELS, municipality_label, municipality_names
from bridge.services.periods import Period, months_before
from bridge.services.population import live, open_on
from bridge.store import Store

DEFAULT_RELIABILITY = 0.8
COVERAGE_MONTHS = 6
Z_95 = 1.96

GroupBy = Literal["all", "municipality", "target_group", "paragraph"]
GROUP_BY_VALUES: tuple[GroupBy, ...] = ("all", "municipality", "target_group", "paragraph")
ALL_CHILDREN = "alle"

_FROZEN = ConfigDict(frozen=True)


class UnknownChild(BridgeError):
    """No live case holds the person key asked for (exit 1)."""


# -- reliable change ---------------------------------------------------------------------


class ChangeClass(StrEnum):
    improved = "improved"
    unchanged = "unchanged"
    worsened = "worsened"


class ReliableChange(BaseModel):
    """How reliable change is judged: the scale's reliability ``r`` and, optionally, a fixed SD."""

    model_config = _FROZEN

    r: float = Field(default=DEFAULT_RELIABILITY, ge=0.0, lt=1.0)
    reference_sd: float | None = Field(default=None, ge=0.0, description="instead of the store's baseline SD")


class Threshold(BaseModel):
    """The reliable-change threshold of one theme and what it was computed from."""

    model_config = _FROZEN

    theme: Theme
    n: int = Field(description="children with a baseline on the theme")
    sd: float | None = Field(description="SD of those baselines (or the reference SD)")
    r: float
    value: float | None = Field(description="1.96·√2·SD·√(1−r); None when SD is unknown")

    def classify(self, change: int) -> tuple[ChangeClass, bool]:
        """The class of ``change`` and whether it is a sub-threshold *movement*."""
        reliable = self.value is not None and change != 0 and abs(change) >= self.value
        if reliable:
            return (ChangeClass.improved if change < 0 else ChangeClass.worsened), False
        return ChangeClass.unchanged, change != 0


def rc_threshold(sd: float, r: float) -> float:
    """Jacobson–Truax: the smallest change that is reliable at the 95 % level."""
    return Z_95 * math.sqrt(2.0) * sd * math.sqrt(1.0 - r)


def sample_sd(n: int, total: float, total_sq: float) -> float | None:
    """The sample SD (n − 1) from the count, sum and sum of squares; None below two values."""
    if n < 2:
        return None
    variance = (total_sq - total * total / n) / (n - 1)
    return math.sqrt(max(variance, 0.0))  # rounding may leave a tiny negative for equal values


# -- results -----------------------------------------------------------------------------


class ScorePoint(BaseModel):
    model_config = _FROZEN

    assessed_on: date
    value: int | None = Field(description='None is "ikke vurderet"')


class ThemeSeries(BaseModel):
    model_config = _FROZEN

    theme: Theme
    points: list[ScorePoint]


class Progression(BaseModel):
    """One child's change on one theme from baseline to latest."""

    model_config = _FROZEN

    theme: Theme
    baseline_on: date
    baseline: int
    latest_on: date
    latest: int
    scores: int = Field(description="scored assessments between and including the two")
    change: int
    change_class: ChangeClass
    movement: bool = Field(description="a non-zero change below the threshold")


class ChildScores(BaseModel):
    """A child's series and progression per theme (themes without any assessment are left out)."""

    model_config = _FROZEN

    child_key: str
    series: list[ThemeSeries]
    progressions: list[Progression]
    thresholds: list[Threshold]


class Transition(BaseModel):
    """5×5 counts of children: ``counts[baseline - 1][latest - 1]``."""

    model_config = _FROZEN

    theme: Theme
    counts: list[list[int]]

    @property
    def n(self) -> int:
        return sum(sum(row) for row in self.counts)


class CohortRow(BaseModel):
    """Progression of the children of one group on one theme."""

    model_config = _FROZEN

    group: str = Field(description="municipality code, target group, 'SEL §52 stk. 3 nr. 7', or 'alle'")
    group_label: str
    theme: Theme
    n: int
    total_change: int
    improved: int
    unchanged: int
    worsened: int
    movement: int = Field(description="among the unchanged: a non-zero sub-threshold change")

    @property
    def mean_change(self) -> float | None:
        return self.total_change / self.n if self.n else None


class CohortSummary(BaseModel):
    model_config = _FROZEN

    by: GroupBy
    period: Period | None
    rows: list[CohortRow]
    thresholds: list[Threshold]
    transitions: list[Transition]


class CoverageRow(BaseModel):
    model_config = _FROZEN

    municipality: str
    name: str
    open_cases: int
    scored_recently: int = Field(description="with a scored assessment in the window")
    never_scored: int = Field(description="with no scored assessment at all up to as_of")


class Coverage(BaseModel):
    """Open cases scored recently, per municipality and in total."""

    model_config = _FROZEN

    as_of: date
    since: date = Field(description="the window is since ≤ assessed_on ≤ as_of")
    months: int
    rows: list[CoverageRow]
    total: CoverageRow


# -- queries -----------------------------------------------------------------------------


def _scored(period: Period | None, child_key: str | None) -> Select[tuple[object, ...]]:
    """Scored assessments of live cases, numbered from both ends of each child-and-theme series."""
    a, c = ASSESSMENTS.c, CASES.c
    series = (c.child_key, a.theme)
    query = (
        select(
            c.child_key,
            a.theme,
            a.value,
            a.assessed_on,
            func.row_number().over(partition_by=series, order_by=(a.assessed_on, a.value)).label("first"),
            func.row_number().over(partition_by=series, order_by=(a.assessed_on.desc(), a.value)).label("last"),
        )
        .join_from(ASSESSMENTS, CASES, a.case_id == c.id)
        .where(live(), a.value.is_not(None))
    )
    if period is not None:
        query = query.where(a.assessed_on.between(period.start, period.end))
    if child_key is not None:
        query = query.where(c.child_key == child_key)
    return query


def _endpoints(period: Period | None = None, child_key: str | None = None) -> Subquery:
    """Per child and theme: baseline, latest (values and days) and the number of scores."""
    s = _scored(period, child_key).subquery("scored")
    first, last = s.c.first == 1, s.c.last == 1
    return (
        select(
            s.c.child_key,
            s.c.theme,
            func.max(case((first, s.c.value))).label("baseline"),
            type_coerce(func.max(case((first, s.c.assessed_on))), Date).label("baseline_on"),
            func.max(case((last, s.c.value))).label("latest"),
            type_coerce(func.max(case((last, s.c.assessed_on))), Date).label("latest_on"),
            func.count().label("scores"),
        )
        .group_by(s.c.child_key, s.c.theme)
        .subquery("endpoints")
    )


def _progressions(period: Period | None, thresholds: Sequence[Threshold]) -> Subquery:
    """Children with a progression, their change and their class as 0/1 flags."""
    e = _endpoints(period)
    change = e.c.latest - e.c.baseline
    known = [t for t in thresholds if t.value is not None]
    reliable: ColumnElement[bool] = (
        or_(*(and_(e.c.theme == t.theme.value, func.abs(change) >= literal(t.value)) for t in known))
        if known
        else false()
    )

    def flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return case((condition, 1), else_=0)

    return (
        select(
            e.c.child_key,
            e.c.theme,
            e.c.baseline,
            e.c.latest,
            change.label("change"),
            flag(and_(change < 0, reliable)).label("improved"),
            flag(and_(change > 0, reliable)).label("worsened"),
            flag(and_(change != 0, ~reliable)).label("movement"),
        )
        .where(e.c.latest_on > e.c.baseline_on)
        .subquery("progressions")
    )


def thresholds(store: Store, rc: ReliableChange | None = None) -> list[Threshold]:
    """The reliable-change threshold of every theme, from the baselines of all live children."""
    rc = rc or ReliableChange()
    e = _endpoints()
    query = select(e.c.theme, func.count(), func.sum(e.c.baseline), func.sum(e.c.baseline * e.c.baseline)).group_by(
        e.c.theme
    )
    with store.engine.connect() as conn:
        sums = {theme: (int(n), float(s), float(sq)) for theme, n, s, sq in conn.execute(query)}
    found = []
    for theme in Theme:
        n, total, total_sq = sums.get(theme.value, (0, 0.0, 0.0))
        sd = rc.reference_sd if rc.reference_sd is not None else sample_sd(n, total, total_sq)
        value = None if sd is None else rc_threshold(sd, rc.r)
        found.append(Threshold(theme=theme, n=n, sd=sd, r=rc.r, value=value))
    return found


def transitions(store: Store, *, period: Period | None = None) -> list[Transition]:
    """The 5×5 before/after table of every theme, counting children with a progression."""
    p = _progressions(period, ())
    query = select(p.c.theme, p.c.baseline, p.c.latest, func.count()).group_by(p.c.theme, p.c.baseline, p.c.latest)
    counts = {theme: [[0] * 5 for _ in range(5)] for theme in Theme}
    with store.engine.connect() as conn:
        for theme, before, after, n in conn.execute(query):
            counts[Theme(theme)][int(before) - 1][int(after) - 1] = int(n)
    return [Transition(theme=theme, counts=counts[theme]) for theme in Theme]


def _groups(by: GroupBy, period: Period | None) -> Subquery:
    """Which group each child belongs to; a child belongs to every group one of its live cases is in."""
    c, m = CASES.c, MEASURES.c
    if by == "all":
        return select(c.child_key, literal(ALL_CHILDREN).label("grp")).where(live()).distinct().subquery("groups")
    if by == "municipality":
        return select(c.child_key, c.municipality.label("grp")).where(live()).distinct().subquery("groups")
    if by == "target_group":
        return select(c.child_key, c.target_group.label("grp")).where(live()).distinct().subquery("groups")
    query = (
        select(c.child_key, (m.act + literal(" §") + m.paragraph).label("grp"))
        .join_from(MEASURES, CASES, m.case_id == c.id)
        .where(live())
    )
    if period is not None:
        # Only measures in force during the period say what the child received then.
        query = query.where(m.start <= period.end, or_(m.end.is_(None), m.end >= period.start))
    return query.distinct().subquery("groups")


def _group_label(by: GroupBy, group: str, names: dict[str, str]) -> str:
    if by == "municipality":
        return municipality_label(group, names.get(group))
    if by == "target_group":
        return TARGET_GROUP_LABELS.get(group, group)
    if by == "all":
        return "Alle børn"
    return group


def cohort_summary(
    store: Store,
    *,
    by: GroupBy = "all",
    period: Period | None = None,
    rc: ReliableChange | None = None,
) -> CohortSummary:
    """Per group and theme: children with a progression, their total change and classes.

    ``by="paragraph"`` groups children by the act and paragraph of their measures (in force
    during ``period`` when one is given); a child with several measures counts in each group,
    and a child without a measure in none.
    """
    if by not in GROUP_BY_VALUES:
        raise ConfigError(f"cannot group by {by!r}; use one of {', '.join(GROUP_BY_VALUES)}")
    limits = thresholds(store, rc)
    p = _progressions(period, limits)
    g = _groups(by, period)
    query = (
        select(
            g.c.grp,
            p.c.theme,
            func.count(),
            func.sum(p.c.change),
            func.sum(p.c.improved),
            func.sum(p.c.worsened),
            func.sum(p.c.movement),
        )
        .join_from(p, g, p.c.child_key == g.c.child_key)
        .group_by(g.c.grp, p.c.theme)
    )
    names = municipality_names(store) if by == "municipality" else {}
    rows = []
    with store.engine.connect() as conn:
        for group, theme, n, total, improved, worsened, movement in conn.execute(query):
            rows.append(
                CohortRow(
                    group=group,
                    group_label=_group_label(by, group, names),
                    theme=Theme(theme),
                    n=int(n),
                    total_change=int(total),
                    improved=int(improved),
                    unchanged=int(n) - int(improved) - int(worsened),
                    worsened=int(worsened),
                    movement=int(movement),
                )
            )
    order = {theme: i for i, theme in enumerate(Theme)}
    rows.sort(key=lambda row: (order[row.theme], row.group_label))
    return CohortSummary(
        by=by, period=period, rows=rows, thresholds=limits, transitions=transitions(store, period=period)
    )


def child_scores(store: Store, child_key: str, *, rc: ReliableChange | None = None) -> ChildScores:
    """One child's series (with "ikke vurderet" entries) and progression per theme.

    Raises :class:`UnknownChild` when no live case holds ``child_key``.
    """
    a, c = ASSESSMENTS.c, CASES.c
    childs = and_(c.child_key == child_key, live())
    points = (
        select(a.theme, a.assessed_on, a.value)
        .join_from(ASSESSMENTS, CASES, a.case_id == c.id)
        .where(childs)
        .order_by(a.theme, a.assessed_on, a.value.is_(None), a.value)
    )
    e = _endpoints(child_key=child_key)
    ends = select(e.c.theme, e.c.baseline, e.c.baseline_on, e.c.latest, e.c.latest_on, e.c.scores)
    with store.engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(CASES).where(childs)).scalar_one() == 0:
            raise UnknownChild("no live case holds that person key")
        by_theme: dict[Theme, list[ScorePoint]] = {}
        for theme, on, value in conn.execute(points):
            by_theme.setdefault(Theme(theme), []).append(ScorePoint(assessed_on=on, value=value))
        endpoint_rows = list(conn.execute(ends))
    limits = thresholds(store, rc)
    limit_of = {t.theme: t for t in limits}
    progressions = []
    for theme, baseline, baseline_on, latest, latest_on, scores in endpoint_rows:
        if latest_on <= baseline_on:
            continue
        change = int(latest) - int(baseline)
        klass, movement = limit_of[Theme(theme)].classify(change)
        progressions.append(
            Progression(
                theme=Theme(theme),
                baseline_on=baseline_on,
                baseline=baseline,
                latest_on=latest_on,
                latest=latest,
                scores=scores,
                change=change,
                change_class=klass,
                movement=movement,
            )
        )
    order = {theme: i for i, theme in enumerate(Theme)}
    progressions.sort(key=lambda p: order[p.theme])
    series = [ThemeSeries(theme=theme, points=by_theme[theme]) for theme in Theme if theme in by_theme]
    return ChildScores(child_key=child_key, series=series, progressions=progressions, thresholds=limits)


def coverage(store: Store, *, as_of: date | None = None, months: int = COVERAGE_MONTHS) -> Coverage:
    """Cases open on ``as_of`` (opened on or before it, not closed by then, not deleted): how many
    have a scored assessment within the last ``months`` months (``since ≤ day ≤ as_of``), and how
    many have none at all up to ``as_of``. "Ikke vurderet" does not count as a score.
    """
    as_of = as_of or date.today()
    since = months_before(as_of, months)
    a, c = ASSESSMENTS.c, CASES.c
    last = (
        select(a.case_id, type_coerce(func.max(a.assessed_on), Date).label("last_scored"))
        .where(a.value.is_not(None), a.assessed_on <= as_of)
        .group_by(a.case_id)
        .subquery("last_scored")
    )
    recent = case((last.c.last_scored >= since, 1), else_=0)
    never = case((last.c.last_scored.is_(None), 1), else_=0)
    query = (
        select(c.municipality, func.count(), func.sum(recent), func.sum(never))
        .select_from(CASES.outerjoin(last, last.c.case_id == c.id))
        .where(open_on(as_of))
        .group_by(c.municipality)
        .order_by(c.municipality)
    )
    names = municipality_names(store)
    with store.engine.connect() as conn:
        rows = [
            CoverageRow(
                municipality=code,
                name=names.get(code, code),
                open_cases=int(n),
                scored_recently=int(scored),
                never_scored=int(none),
            )
            for code, n, scored, none in conn.execute(query)
        ]
    total = CoverageRow(
        municipality=ALL_CHILDREN,
        name="I alt",
        open_cases=sum(r.open_cases for r in rows),
        scored_recently=sum(r.scored_recently for r in rows),
        never_scored=sum(r.never_scored for r in rows),
    )
    return Coverage(as_of=as_of, since=since, months=months, rows=rows, total=total)


__all__ = [
    "COVERAGE_MONTHS",
    "DEFAULT_RELIABILITY",
    "GROUP_BY_VALUES",
    "ChangeClass",
    "ChildScores",
    "CohortRow",
    "CohortSummary",
    "Coverage",
    "CoverageRow",
    "GroupBy",
    "Progression",
    "ReliableChange",
    "ScorePoint",
    "ThemeSeries",
    "Threshold",
    "Transition",
    "UnknownChild",
    "child_scores",
    "cohort_summary",
    "coverage",
    "rc_threshold",
    "sample_sd",
    "thresholds",
    "transitions",
]
