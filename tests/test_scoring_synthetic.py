"""The SQL aggregates of the scoring service equal a plain-Python recomputation over synthetic data.

The reference below reads the records a correct adapter yields (the ground truth), not the
store, and follows the contract in :mod:`bridge.services.scoring` step by step: live cases
only, "ikke vurderet" never a score, the child (not the case) as the unit, the lower value on a
day with two scores, a progression only across two days, RC = 1.96·√2·SD·√(1 − r).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update

from bridge.model.records import CaseRecord, Theme
from bridge.model.tables import CASES
from bridge.privacy import Pseudonymizer
from bridge.services import scoring
from bridge.services.periods import Period
from bridge.services.scoring import GroupBy, ReliableChange
from bridge.store import Store
from bridge.sync.writer import store_records

SEED = 4242
GROUPINGS: tuple[GroupBy, ...] = ("all", "municipality", "target_group", "paragraph")
AS_OF = date(2026, 6, 30)


@dataclass
class Loaded:
    records: list[CaseRecord]
    deleted: set[tuple[str, str]]  # (source, source_ref)
    cprs: set[str]

    def live(self) -> list[tuple[str, CaseRecord]]:
        return [(s, r) for s, r in self.sources() if (s, r.source_ref) not in self.deleted]

    def sources(self) -> list[tuple[str, CaseRecord]]:
        return [("second" if r.source_ref.endswith("-b") else "synthetic", r) for r in self.records]

    def assert_not_in(self, text: str) -> None:
        """No person key, family key or CPR number (with or without its dash) of these cases is in ``text``."""
        for record in self.records:
            assert record.child_key not in text
            if record.family_key:
                assert record.family_key not in text
        for cpr in self.cprs:
            assert cpr not in text
            assert cpr.replace("-", "") not in text


def _second_case(record: CaseRecord, municipality: str) -> CaseRecord:
    """The same child, a year later, in another municipality's system (a move)."""
    later = tuple(a.model_copy(update={"assessed_on": a.assessed_on + timedelta(days=365)}) for a in record.assessments)
    return record.model_copy(
        update={"source_ref": record.source_ref + "-b", "municipality": municipality, "assessments": later}
    )


def load_synthetic(store: Store, persons: Pseudonymizer, *, seed: int = SEED) -> Loaded:
    """Store the synthetic truth, a second case for a few children, and mark a few cases deleted."""
    from bridge.synthetic.generate import generate

    truth = generate(seed=seed, municipalities=2, caseworkers=3, as_of=AS_OF)
    records = truth.expected_records(persons)
    codes = sorted({r.municipality for r in records})
    elsewhere = next(c for c in ("999", "998") if c not in codes)
    extra = [_second_case(r, elsewhere) for r in records[3:40:9]]
    store_records(store, "synthetic", records)
    store_records(store, "second", extra)
    deleted = {("synthetic", r.source_ref) for r in records[::13]} | {("second", extra[0].source_ref)}
    cases = CASES
    with store.transaction() as conn:
        for source, ref in sorted(deleted):
            conn.execute(
                update(cases)
                .where(cases.c.source == source, cases.c.source_ref == ref)
                .values(deleted_at=datetime.now(UTC))
            )
    return Loaded(records + extra, deleted, truth.cprs())


# -- the reference ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ends:
    baseline_on: date
    baseline: int
    latest_on: date
    latest: int
    scores: int


def reference_ends(loaded: Loaded, period: Period | None = None) -> dict[tuple[str, Theme], Ends]:
    scored: dict[tuple[str, Theme], list[tuple[date, int]]] = defaultdict(list)
    for _, record in loaded.live():
        for a in record.assessments:
            if a.value is not None and (period is None or period.start <= a.assessed_on <= period.end):
                scored[(record.child_key, a.theme)].append((a.assessed_on, a.value))
    ends = {}
    for key, points in scored.items():
        first_day = min(d for d, _ in points)
        last_day = max(d for d, _ in points)
        ends[key] = Ends(
            first_day,
            min(v for d, v in points if d == first_day),
            last_day,
            min(v for d, v in points if d == last_day),
            len(points),
        )
    return ends


def reference_thresholds(loaded: Loaded, r: float) -> dict[Theme, tuple[int, float | None]]:
    baselines: dict[Theme, list[int]] = defaultdict(list)
    for (_, theme), end in reference_ends(loaded).items():
        baselines[theme].append(end.baseline)
    found: dict[Theme, tuple[int, float | None]] = {}
    for theme in Theme:
        values = baselines[theme]
        sd = statistics.stdev(values) if len(values) > 1 else None
        found[theme] = (len(values), None if sd is None else 1.96 * math.sqrt(2) * sd * math.sqrt(1 - r))
    return found


def reference_groups(loaded: Loaded, by: GroupBy, period: Period | None) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = defaultdict(set)
    for _, record in loaded.live():
        if by == "all":
            groups[record.child_key].add("alle")
        elif by == "municipality":
            groups[record.child_key].add(record.municipality)
        elif by == "target_group":
            groups[record.child_key].add(record.target_group.value)
        else:
            for m in record.measures:
                if period is None or (m.start <= period.end and (m.end is None or m.end >= period.start)):
                    groups[record.child_key].add(f"{m.act.value} §{m.paragraph}")
    return groups


def reference_cohorts(
    loaded: Loaded, by: GroupBy, period: Period | None, r: float
) -> dict[tuple[str, Theme], tuple[int, int, int, int, int, int]]:
    limits = reference_thresholds(loaded, r)
    groups = reference_groups(loaded, by, period)
    tally: dict[tuple[str, Theme], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for (child, theme), end in reference_ends(loaded, period).items():
        if end.latest_on <= end.baseline_on:
            continue
        change = end.latest - end.baseline
        limit = limits[theme][1]
        reliable = limit is not None and change != 0 and abs(change) >= limit
        for group in groups.get(child, ()):
            t = tally[(group, theme)]
            t[0] += 1
            t[1] += change
            t[2] += int(reliable and change < 0)
            t[3] += int(not reliable)
            t[4] += int(reliable and change > 0)
            t[5] += int(change != 0 and not reliable)
    return {key: (n, total, imp, unch, wor, mov) for key, (n, total, imp, unch, wor, mov) in tally.items()}


def reference_coverage(loaded: Loaded, as_of: date, since: date) -> dict[str, tuple[int, int, int]]:
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for _, record in loaded.live():
        if record.opened > as_of or (record.closed is not None and record.closed <= as_of):
            continue
        days = [a.assessed_on for a in record.assessments if a.value is not None and a.assessed_on <= as_of]
        row = found[record.municipality]
        row[0] += 1
        row[1] += int(any(d >= since for d in days))
        row[2] += int(not days)
    return {code: (a, b, c) for code, (a, b, c) in found.items()}


# -- the tests ----------------------------------------------------------------------------------


@pytest.fixture
def synthetic(store: Store, persons: Pseudonymizer) -> Loaded:
    return load_synthetic(store, persons)


def _sql_cohorts(summary: scoring.CohortSummary) -> dict[tuple[str, Theme], tuple[int, int, int, int, int, int]]:
    return {
        (r.group, r.theme): (r.n, r.total_change, r.improved, r.unchanged, r.worsened, r.movement) for r in summary.rows
    }


def _busiest_year(loaded: Loaded) -> Period:
    years = Counter(a.assessed_on.year for _, r in loaded.live() for a in r.assessments if a.value is not None)
    return Period.parse(str(years.most_common(1)[0][0]))


def test_the_synthetic_data_exercises_the_rules(synthetic: Loaded) -> None:
    """Guards the comparison below against data too plain to tell right from wrong."""
    live = synthetic.live()
    assert any(a.value is None for _, r in live for a in r.assessments)
    ends = reference_ends(synthetic)
    assert sum(1 for e in ends.values() if e.latest_on > e.baseline_on) >= 30
    cohorts = reference_cohorts(synthetic, "all", None, 0.8)
    assert sum(v[2] for v in cohorts.values()) > 0  # improved
    assert sum(v[4] for v in cohorts.values()) > 0  # worsened
    assert sum(v[5] for v in cohorts.values()) > 0  # movement
    children = Counter(r.child_key for _, r in live)
    assert max(children.values()) >= 2  # a child with two live cases


def test_cohorts_and_thresholds_equal_the_reference(store: Store, synthetic: Loaded) -> None:
    for r in (0.8, 0.5):
        expected = reference_thresholds(synthetic, r)
        for by in GROUPINGS:
            summary = scoring.cohort_summary(store, by=by, rc=ReliableChange(r=r))
            assert _sql_cohorts(summary) == reference_cohorts(synthetic, by, None, r), (by, r)
            for t in summary.thresholds:
                n, value = expected[t.theme]
                assert t.n == n
                assert t.value == pytest.approx(value, rel=1e-9)


def test_cohorts_in_a_period_equal_the_reference(store: Store, synthetic: Loaded) -> None:
    period = _busiest_year(synthetic)
    for by in GROUPINGS:
        summary = scoring.cohort_summary(store, by=by, period=period)
        assert summary.rows
        assert _sql_cohorts(summary) == reference_cohorts(synthetic, by, period, 0.8), by


def test_transitions_equal_the_reference(store: Store, synthetic: Loaded) -> None:
    expected: Counter[tuple[Theme, int, int]] = Counter(
        (theme, e.baseline, e.latest)
        for (_, theme), e in reference_ends(synthetic).items()
        if e.latest_on > e.baseline_on
    )
    found = Counter(
        {
            (t.theme, before + 1, after + 1): n
            for t in scoring.transitions(store)
            for before, row in enumerate(t.counts)
            for after, n in enumerate(row)
            if n
        }
    )
    assert found == expected


def test_coverage_equals_the_reference(store: Store, synthetic: Loaded) -> None:
    result = scoring.coverage(store, as_of=AS_OF)
    expected = reference_coverage(synthetic, AS_OF, result.since)
    found = {r.municipality: (r.open_cases, r.scored_recently, r.never_scored) for r in result.rows}
    assert found == expected
    assert result.total.open_cases == sum(v[0] for v in expected.values())


def test_every_childs_progression_equals_the_reference(store: Store, synthetic: Loaded) -> None:
    ends = reference_ends(synthetic)
    limits = reference_thresholds(synthetic, 0.8)
    children = sorted({r.child_key for _, r in synthetic.live()})
    for child in children[::7]:
        result = scoring.child_scores(store, child)
        found = {(p.theme, p.baseline_on, p.baseline, p.latest_on, p.latest, p.scores) for p in result.progressions}
        expected = {
            (theme, e.baseline_on, e.baseline, e.latest_on, e.latest, e.scores)
            for (key, theme), e in ends.items()
            if key == child and e.latest_on > e.baseline_on
        }
        assert found == expected
        for p in result.progressions:
            limit = limits[p.theme][1]
            reliable = limit is not None and p.change != 0 and abs(p.change) >= limit
            assert (p.change_class is not scoring.ChangeClass.unchanged) == reliable
