"""Small-number suppression: counts of 1–4 children never reach a cohort, transition or coverage report."""

from __future__ import annotations

from datetime import date

import pytest

from bridge.model.records import Theme
from bridge.reports.scoring import cohort_report, coverage_report, transition_table
from bridge.reports.suppression import HIDDEN, SUPPRESSED, WITHHELD, protect, protect_columns, share_cell
from bridge.services.scoring import CohortRow, CohortSummary, Coverage, CoverageRow, Transition

U = Theme.udvikling_adfaerd


@pytest.mark.parametrize(
    ("counts", "total", "cells", "total_cell"),
    [
        ([0, 5, 12], None, [0, 5, 12], None),
        ([1, 4, 5], None, [SUPPRESSED, SUPPRESSED, 5], None),
        # One suppressed count next to a shown total: the smallest other count is hidden too.
        ([3, 10, 7], 20, [SUPPRESSED, 10, HIDDEN], 20),
        # A hidden zero would leave 12 - 9 = 3 for the two hidden cells: the 9 goes instead.
        ([3, 0, 9], 12, [SUPPRESSED, 0, HIDDEN], 12),
        # Two suppressed counts cannot be told apart from the total, and their sum is 5.
        ([3, 2, 7], 12, [SUPPRESSED, SUPPRESSED, 7], 12),
        # Two suppressed counts whose sum (3) the total would reveal: the smallest other goes too.
        ([1, 2, 10, 6], 19, [SUPPRESSED, SUPPRESSED, 10, HIDDEN], 19),
        ([1, 2, 3, 10], 16, [SUPPRESSED, SUPPRESSED, SUPPRESSED, 10], 16),
        # Nothing else to hide: the total goes.
        ([3], 3, [SUPPRESSED], SUPPRESSED),
        ([3, 6], 9, [SUPPRESSED, HIDDEN], 9),
        ([7], 7, [7], 7),
    ],
)
def test_protect(counts: list[int], total: int | None, cells: list[object], total_cell: object) -> None:
    assert protect(counts, total) == (cells, total_cell)


def test_the_total_of_a_single_row_is_protected_like_the_row() -> None:
    rows, totals = protect_columns([[7, 3, 0]], [7, 3, 0])
    assert rows == [[7, SUPPRESSED, 0]]
    assert totals == [7, SUPPRESSED, 0]


def test_shares_follow_their_count_and_base() -> None:
    # A share is never "<5": in a per-cent column that would read as "under 5 %".
    assert share_cell(SUPPRESSED, 3, 20) == WITHHELD
    assert share_cell(HIDDEN, 7, 20) == WITHHELD
    assert share_cell(10, 10, 4) == WITHHELD
    assert share_cell(10, 10, 40) == 25.0


def _row(group: str, n: int, improved: int, unchanged: int, worsened: int, *, movement: int = 0) -> CohortRow:
    return CohortRow(
        group=group, group_label=group, theme=U, n=n, total_change=-n, improved=improved, unchanged=unchanged,
        worsened=worsened, movement=movement,
    )  # fmt: skip


def test_cohort_rows_are_suppressed_before_any_format_sees_them() -> None:
    summary = CohortSummary(
        by="municipality",
        period=None,
        rows=[
            _row("A", 4, 2, 1, 1),
            _row("B", 20, 3, 10, 7, movement=6),
            _row("C", 12, 3, 7, 2, movement=2),
            _row("D", 30, 10, 10, 10, movement=0),
        ],
        thresholds=[],
        transitions=[],
    )
    [table] = cohort_report([summary]).tables[:1]
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["A"] == [SUPPRESSED] + [WITHHELD] * 5
    assert rows["B"] == [20, -1.0, WITHHELD, 50.0, WITHHELD, 30.0]
    assert rows["C"] == [12, -1.0, WITHHELD, 58.3, WITHHELD, WITHHELD]
    assert rows["D"] == [30, -1.0, 33.3, 33.3, 33.3, 0.0]


def test_movement_is_hidden_with_a_hidden_unchanged_share() -> None:
    rows = [_row("E", 30, 3, 12, 15, movement=6), _row("F", 20, 8, 3, 9, movement=0)]
    summary = CohortSummary(by="target_group", period=None, rows=rows, thresholds=[], transitions=[])
    [table] = cohort_report([summary]).tables[:1]
    assert table.rows[0][1:] == [30, -1.0, WITHHELD, WITHHELD, 50.0, WITHHELD]
    # A suppressed (not hidden) unchanged count of 1–4 leaves a movement of 0 to be shown.
    assert table.rows[1][1:] == [20, -1.0, WITHHELD, WITHHELD, 45.0, 0.0]


def test_transition_cells_of_one_to_four_children_are_suppressed() -> None:
    counts = [[0] * 5 for _ in range(5)]
    counts[3][1], counts[2][2], counts[0][0] = 3, 9, 6
    table = transition_table(Transition(theme=U, counts=counts))
    assert table.rows[3] == [4, 0, SUPPRESSED, 0, 0, 0]
    # One suppressed cell and a shown total of 18: the smallest other non-zero cell is hidden as well.
    assert table.rows[0] == [1, HIDDEN, 0, 0, 0, 0]
    assert table.rows[2][3] == 9
    assert "18" in table.note


def test_coverage_rows_and_total_are_protected_by_column() -> None:
    rows = [
        CoverageRow(municipality="101", name="Aby", open_cases=40, scored_recently=30, never_scored=2),
        CoverageRow(municipality="202", name="Bby", open_cases=25, scored_recently=20, never_scored=6),
    ]
    total = CoverageRow(municipality="alle", name="I alt", open_cases=65, scored_recently=50, never_scored=8)
    result = Coverage(as_of=date(2024, 6, 30), since=date(2023, 12, 30), months=6, rows=rows, total=total)
    [table] = coverage_report(result).tables
    assert table.rows[0] == ["Aby (101)", 40, 30, 75.0, SUPPRESSED, WITHHELD]
    assert table.rows[1] == ["Bby (202)", 25, 20, 80.0, HIDDEN, WITHHELD]
    assert table.rows[2] == ["I alt", 65, 50, 76.9, 8, 12.3]
