"""The scoring service against a small fixture worked out by hand, on SQLite and PostgreSQL.

The fixture (U = udvikling_adfaerd, S = sundhed; "–" = ikke vurderet; all dates 20yy-mm-dd)::

    child  case  kommune  group     opened      closed      scores
    A      A     101      udsatte   2021-11-01  -           U 22-01-10:4 22-07-01:3 23-01-15:2; S 22-01-10:5 23-01-15:1
    B      B     101      udsatte   2022-01-01  -           U 22-02-01:– 22-03-01:3 23-03-01:3
    C      C     101      udsatte   2021-12-01  2023-03-31  U 22-01-05:2 23-02-01:4
    D      D     202      handicap  2022-01-01  -           U 22-01-20:5 22-12-20:4
    E      E     202      handicap  2022-03-01  -           U 22-04-01:3
    F      F     202      handicap  2022-04-01  -           U 22-05-01:1 23-05-01:–
    G      G1    101      handicap  2021-12-01  2022-12-31  U 22-01-01:4
    G      G2    202      udsatte   2023-01-01  -           U 23-06-01:1
    H      H     101      udsatte   2021-01-01  -           U 22-01-01:1 23-01-01:5     (case deleted)
    I      I     202      udsatte   2022-01-01  -           U 22-02-02:3 22-02-02:5 23-02-02:5
    J      J     101      udsatte   2023-05-01  -           (none)
    K      K     101      udsatte   2023-02-01  -           U 23-03-01:–
    L      L     202      udsatte   2023-07-15  -           (none)

    measures: A SEL §52 stk. 3 nr. 7 from 21-12-01; B SEL §52 stk. 3 nr. 7 22-01-01..22-12-31 and
    BL §32 from 24-01-01; C BL §32 from 22-01-01; G2 BL §32 from 23-01-01.

Baselines and latest on U (first and last *scored* day; the same-day pair of I resolves to the
lower value 3; G's two cases are one child; H is deleted; F's and B's "–" are not scores):

    A 4→2 (−2)  B 3→3 (0)  C 2→4 (+2)  D 5→4 (−1)  E 3 (one score)  F 1 (one score)  G 4→1 (−3)  I 3→5 (+2)

SD of the U baselines 4,3,2,5,3,1,4,3 (n = 8): Σx = 25, Σx² = 89,
var = (89 − 25²/8) / 7 = 10.875 / 7 = 1.553571, SD = 1.246423.
RC threshold (r = 0.8) = 1.96 · √2 · 1.246423 · √0.2 = 1.545083.
So A (−2) and G (−3) improved, C (+2) and I (+2) worsened, B unchanged, D (−1) unchanged with
movement. With r = 0.5 the threshold is 1.96 · 1.246423 = 2.442990: only G improved; A, C, D,
I are movement.

S has one baseline (A: 5), so no SD and no threshold: A's −4 is unchanged, with movement.

Transitions on U (baseline → latest): 4→2, 3→3, 2→4, 5→4, 4→1, 3→5 (n = 6).

Cohorts on U:
    all       n 6  Σchange −2  improved 2 unchanged 2 worsened 2 movement 1
    101       n 4  (A B C G)   Σ −3  improved 2 (A G) unchanged 1 (B) worsened 1 (C) movement 0
    202       n 3  (D G I)     Σ −2  improved 1 (G) unchanged 1 (D) worsened 1 (I) movement 1
    udsatte   n 5  (A B C G I) Σ −1  improved 2 unchanged 1 worsened 2 movement 0
    handicap  n 2  (D G)       Σ −4  improved 1 unchanged 1 worsened 0 movement 1
    SEL §52 stk. 3 nr. 7  n 2 (A B)    Σ −2  improved 1 unchanged 1
    BL §32                n 3 (B C G)  Σ −1  improved 1 unchanged 1 worsened 1
Period 2022 (only 2022 scores): A 4→3 (−1), D 5→4 (−1); both movement; B, C, E, F, G, I have
one scored day in 2022. Measures in force in 2022: A and B SEL §52.3.7, C BL §32 → SEL n 1 (A).

Coverage as of 2023-06-30, 6 months (since 2022-12-30); open then: 101 A B J K (C and G1 closed,
H deleted), 202 D E F G2 I (L opened later). Scored since 2022-12-30: A B | G2 I. Never scored:
J K (K only "ikke vurderet") | none. Totals: 9 open, 4 recent, 2 never.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import update

from bridge.model.records import (
    Act,
    AssessmentRecord,
    CaseRecord,
    CaseStatus,
    MeasureRecord,
    TargetGroup,
    Theme,
)
from bridge.model.tables import CASES
from bridge.services import scoring
from bridge.services.scoring import ChangeClass, Period, ReliableChange
from bridge.store import Store
from bridge.sync.writer import store_records

U = Theme.udvikling_adfaerd
S = Theme.sundhed
SD_U = 1.246423
RC_U = 1.545083


def _d(text: str) -> date:
    return date.fromisoformat("20" + text)


def _case(
    ref: str,
    child: str,
    municipality: str,
    group: str,
    opened: str,
    *,
    closed: str | None = None,
    scores: tuple[tuple[Theme, str, int | None], ...] = (),
    measures: tuple[tuple[Act, str, str, str | None], ...] = (),
) -> CaseRecord:
    return CaseRecord(
        source_ref=ref,
        municipality=municipality,
        child_key=f"child-key-{child}",
        child_birth_date=date(2012, 1, 1),
        child_sex="F",
        case_number=f"27.24.00-G01-{ref}-21",
        kle="27.24.00",
        target_group=TargetGroup(group),
        opened=_d(opened),
        closed=_d(closed) if closed else None,
        status=CaseStatus.closed if closed else CaseStatus.open,
        source_modified=datetime(2023, 7, 1, tzinfo=UTC),
        assessments=tuple(AssessmentRecord(theme=t, value=v, assessed_on=_d(on)) for t, on, v in scores),
        measures=tuple(
            MeasureRecord(
                source_ref=f"{ref}-m{i}", act=act, paragraph=par, start=_d(start), end=_d(end) if end else None,
                has_grant=True,
            )
            for i, (act, par, start, end) in enumerate(measures)
        ),
    )


SEL_52 = (Act.SEL, "52 stk. 3 nr. 7")
FIXTURE = (
    _case("A", "A", "101", "udsatte", "21-11-01",
          scores=((U, "22-01-10", 4), (U, "22-07-01", 3), (U, "23-01-15", 2), (S, "22-01-10", 5), (S, "23-01-15", 1)),
          measures=((*SEL_52, "21-12-01", None),)),
    _case("B", "B", "101", "udsatte", "22-01-01",
          scores=((U, "22-02-01", None), (U, "22-03-01", 3), (U, "23-03-01", 3)),
          measures=((*SEL_52, "22-01-01", "22-12-31"), (Act.BL, "32", "24-01-01", None))),
    _case("C", "C", "101", "udsatte", "21-12-01", closed="23-03-31",
          scores=((U, "22-01-05", 2), (U, "23-02-01", 4)), measures=((Act.BL, "32", "22-01-01", None),)),
    _case("D", "D", "202", "handicap", "22-01-01", scores=((U, "22-01-20", 5), (U, "22-12-20", 4))),
    _case("E", "E", "202", "handicap", "22-03-01", scores=((U, "22-04-01", 3),)),
    _case("F", "F", "202", "handicap", "22-04-01", scores=((U, "22-05-01", 1), (U, "23-05-01", None))),
    _case("G1", "G", "101", "handicap", "21-12-01", closed="22-12-31", scores=((U, "22-01-01", 4),)),
    _case("G2", "G", "202", "udsatte", "23-01-01", scores=((U, "23-06-01", 1),),
          measures=((Act.BL, "32", "23-01-01", None),)),
    _case("H", "H", "101", "udsatte", "21-01-01", scores=((U, "22-01-01", 1), (U, "23-01-01", 5))),
    _case("I", "I", "202", "udsatte", "22-01-01",
          scores=((U, "22-02-02", 3), (U, "22-02-02", 5), (U, "23-02-02", 5))),
    _case("J", "J", "101", "udsatte", "23-05-01"),
    _case("K", "K", "101", "udsatte", "23-02-01", scores=((U, "23-03-01", None),)),
    _case("L", "L", "202", "udsatte", "23-07-15"),
)  # fmt: skip


def load_handworked(store: Store) -> None:
    """Store the fixture and mark case H deleted, as a ``--full`` sync would."""
    store_records(store, "fixture", FIXTURE)
    cases = CASES
    with store.transaction() as conn:
        conn.execute(update(cases).where(cases.c.source_ref == "H").values(deleted_at=datetime.now(UTC)))


@pytest.fixture
def handworked(store: Store) -> Store:
    load_handworked(store)
    return store


def _row(summary: scoring.CohortSummary, group: str, theme: Theme) -> tuple[Any, ...]:
    [row] = [r for r in summary.rows if r.group == group and r.theme is theme]
    return (row.n, row.total_change, row.improved, row.unchanged, row.worsened, row.movement)


def test_threshold_is_the_jacobson_truax_rc_of_the_baseline_sd(handworked: Store) -> None:
    limits = {t.theme: t for t in scoring.thresholds(handworked)}
    assert limits[U].n == 8
    assert limits[U].sd == pytest.approx(SD_U, abs=1e-6)
    assert limits[U].value == pytest.approx(RC_U, abs=1e-6)
    assert (limits[S].n, limits[S].sd, limits[S].value) == (1, None, None)
    assert (limits[Theme.familieforhold].n, limits[Theme.familieforhold].value) == (0, None)
    half = {t.theme: t for t in scoring.thresholds(handworked, ReliableChange(r=0.5))}
    assert half[U].value == pytest.approx(2.442990, abs=1e-6)
    fixed = {t.theme: t for t in scoring.thresholds(handworked, ReliableChange(reference_sd=1.0))}
    assert fixed[S].value == pytest.approx(1.96 * 2**0.5 * 0.2**0.5)


def test_transition_table_counts_children_from_baseline_to_latest(handworked: Store) -> None:
    tables = {t.theme: t for t in scoring.transitions(handworked)}
    moves = {(b + 1, a + 1): n for b, row in enumerate(tables[U].counts) for a, n in enumerate(row) if n}
    assert moves == {(4, 2): 1, (3, 3): 1, (2, 4): 1, (5, 4): 1, (4, 1): 1, (3, 5): 1}
    assert tables[S].n == 1
    assert tables[S].counts[4][0] == 1
    assert tables[Theme.familieforhold].n == 0
    in_2022 = {t.theme: t for t in scoring.transitions(handworked, period=Period.parse("2022"))}
    assert in_2022[U].counts[3][2] == 1
    assert in_2022[U].counts[4][3] == 1
    assert in_2022[U].n == 2


def test_cohorts_by_each_grouping(handworked: Store) -> None:
    every = scoring.cohort_summary(handworked)
    assert _row(every, "alle", U) == (6, -2, 2, 2, 2, 1)
    assert _row(every, "alle", S) == (1, -4, 0, 1, 0, 1)
    assert {r.theme for r in every.rows} == {U, S}

    kommune = scoring.cohort_summary(handworked, by="municipality")
    assert _row(kommune, "101", U) == (4, -3, 2, 1, 1, 0)
    assert _row(kommune, "202", U) == (3, -2, 1, 1, 1, 1)
    assert _row(kommune, "101", S) == (1, -4, 0, 1, 0, 1)
    assert len(kommune.rows) == 3

    group = scoring.cohort_summary(handworked, by="target_group")
    assert _row(group, "udsatte", U) == (5, -1, 2, 1, 2, 0)
    assert _row(group, "handicap", U) == (2, -4, 1, 1, 0, 1)

    paragraph = scoring.cohort_summary(handworked, by="paragraph")
    assert _row(paragraph, "SEL §52 stk. 3 nr. 7", U) == (2, -2, 1, 1, 0, 0)
    assert _row(paragraph, "BL §32", U) == (3, -1, 1, 1, 1, 0)
    assert _row(paragraph, "SEL §52 stk. 3 nr. 7", S) == (1, -4, 0, 1, 0, 1)
    assert len(paragraph.rows) == 3
    mean = next(r for r in paragraph.rows if r.group == "BL §32").mean_change
    assert mean == pytest.approx(-1 / 3)


def test_reliability_is_configurable(handworked: Store) -> None:
    summary = scoring.cohort_summary(handworked, rc=ReliableChange(r=0.5))
    assert _row(summary, "alle", U) == (6, -2, 1, 5, 0, 4)


def test_a_period_limits_the_scores_and_the_measures_that_count(handworked: Store) -> None:
    year = Period.parse("2022")
    assert _row(scoring.cohort_summary(handworked, period=year), "alle", U) == (2, -2, 0, 2, 0, 2)
    paragraph = scoring.cohort_summary(handworked, by="paragraph", period=year)
    assert [(r.group, r.theme, r.n) for r in paragraph.rows] == [("SEL §52 stk. 3 nr. 7", U, 1)]
    # The threshold stays the store's, not the period's.
    assert paragraph.thresholds[0].value == pytest.approx(RC_U, abs=1e-6)


def test_child_series_and_progression(handworked: Store) -> None:
    g = scoring.child_scores(handworked, "child-key-G")
    [series] = g.series
    assert [(p.assessed_on, p.value) for p in series.points] == [(date(2022, 1, 1), 4), (date(2023, 6, 1), 1)]
    [progress] = g.progressions
    assert (progress.baseline, progress.latest, progress.change, progress.scores) == (4, 1, -3, 2)
    assert (progress.change_class, progress.movement) == (ChangeClass.improved, False)

    a = {p.theme: p for p in scoring.child_scores(handworked, "child-key-A").progressions}
    assert (a[U].baseline_on, a[U].latest_on, a[U].change, a[U].change_class) == (
        date(2022, 1, 10), date(2023, 1, 15), -2, ChangeClass.improved,
    )  # fmt: skip
    assert (a[S].change, a[S].change_class, a[S].movement) == (-4, ChangeClass.unchanged, True)

    b = scoring.child_scores(handworked, "child-key-B")
    assert [p.value for p in b.series[0].points] == [None, 3, 3]
    assert b.progressions[0].baseline_on == date(2022, 3, 1)
    assert b.progressions[0].change_class is ChangeClass.unchanged
    assert not b.progressions[0].movement

    d = scoring.child_scores(handworked, "child-key-D").progressions[0]
    assert (d.change, d.change_class, d.movement) == (-1, ChangeClass.unchanged, True)
    i = scoring.child_scores(handworked, "child-key-I").progressions[0]
    assert (i.baseline, i.latest, i.scores, i.change_class) == (3, 5, 3, ChangeClass.worsened)
    f = scoring.child_scores(handworked, "child-key-F")
    assert f.progressions == []
    assert [p.value for p in f.series[0].points] == [1, None]
    assert scoring.child_scores(handworked, "child-key-J").series == []


def test_a_deleted_case_is_left_out_everywhere(handworked: Store) -> None:
    with pytest.raises(scoring.UnknownChild):
        scoring.child_scores(handworked, "child-key-H")
    with pytest.raises(scoring.UnknownChild):
        scoring.child_scores(handworked, "no-such-child")


def test_coverage_counts_open_cases_scored_in_the_window(handworked: Store) -> None:
    result = scoring.coverage(handworked, as_of=date(2023, 6, 30))
    assert result.since == date(2022, 12, 30)
    rows = {r.municipality: (r.open_cases, r.scored_recently, r.never_scored) for r in result.rows}
    assert rows == {"101": (4, 2, 2), "202": (5, 2, 0)}
    assert (result.total.open_cases, result.total.scored_recently, result.total.never_scored) == (9, 4, 2)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2024", date(2024, 1, 1), date(2024, 12, 31)),
        ("2024H2", date(2024, 7, 1), date(2024, 12, 31)),
        ("2024q1", date(2024, 1, 1), date(2024, 3, 31)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2023-07-01..2024-06-30", date(2023, 7, 1), date(2024, 6, 30)),
    ],
)
def test_period_forms(text: str, start: date, end: date) -> None:
    period = Period.parse(text)
    assert (period.start, period.end) == (start, end)


@pytest.mark.parametrize("text", ["24", "2024Q5", "2024-13", "2024-06-30..2024-01-01", "last year"])
def test_bad_periods_are_usage_errors(text: str) -> None:
    from bridge.errors import ConfigError

    with pytest.raises(ConfigError, match="period"):
        Period.parse(text)


def test_months_before_clamps_to_the_end_of_the_month() -> None:
    assert scoring.months_before(date(2024, 8, 31), 6) == date(2024, 2, 29)
    assert scoring.months_before(date(2024, 3, 15), 6) == date(2023, 9, 15)
