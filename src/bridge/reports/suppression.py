"""Small-number suppression (diskretionering) for aggregate reports.

A cell that counts 1–4 children is shown as ``"<5"`` (primary suppression). When the total
of a set of counts is shown, one suppressed count could be worked out by subtraction, so the
smallest other count is hidden as well and shown as ``"–"`` (secondary suppression); with no
other count to hide, the total is hidden instead. The same holds for several suppressed counts
whose sum is 1–4: the total would reveal that sum, a cell of fewer than five of its own.
Zero is shown: it describes no child.

A value derived from hidden counts or over fewer than five children (a share, a mean, an SD)
is shown as ``"skjult"``, not ``"<5"``: in a per-cent column "<5" would read as "under 5 %".

Suppression happens while a report is built, so every format (table, CSV, JSON, XLSX, HTML
and its charts) shows the same protected values.
"""

from __future__ import annotations

from collections.abc import Sequence

MIN_CHILDREN = 5
SUPPRESSED = "<5"
HIDDEN = "–"
WITHHELD = "skjult"
MARKERS = (SUPPRESSED, HIDDEN, WITHHELD)

Cell = int | float | str


def suppressed(count: int) -> bool:
    """Whether a count of children is too small to show (1–4)."""
    return 0 < count < MIN_CHILDREN


def count_cell(count: int) -> int | str:
    return SUPPRESSED if suppressed(count) else count


def protect(counts: Sequence[int], total: int | None = None) -> tuple[list[int | str], int | str | None]:
    """Suppress ``counts`` and, when their ``total`` is shown, hide what would reveal them.

    Returns the cells in the order given and the cell to show for the total (None when no
    total is shown). The smallest other non-zero count is hidden first (a hidden zero would
    hide nothing); ties go to the first one.
    """
    cells: list[int | str] = [count_cell(c) for c in counts]
    if total is None:
        return cells, None
    total_cell = count_cell(total)
    if total_cell == SUPPRESSED:
        return cells, total_cell
    # The total minus the shown counts is the sum of the hidden ones: while that is 1–4, hide more.
    while suppressed(sum(counts[i] for i, cell in enumerate(cells) if isinstance(cell, str))):
        others = [i for i, cell in enumerate(cells) if not isinstance(cell, str) and counts[i]]
        if not others:
            total_cell = HIDDEN
            break
        cells[min(others, key=lambda i: counts[i])] = HIDDEN
    return cells, total_cell


def share_cell(count_shown: int | str, count: int, base: int, digits: int = 1) -> Cell:
    """``count / base`` in per cent, or withheld when the count is not shown or the base is too small."""
    if isinstance(count_shown, str) or suppressed(base):
        return WITHHELD
    if base == 0:
        return ""
    return round(100.0 * count / base, digits)


def protect_columns(
    rows: Sequence[Sequence[int]], totals: Sequence[int]
) -> tuple[list[list[int | str]], list[int | str]]:
    """Protect each column of ``rows`` against its shown total (a row of totals under the table)."""
    width = len(totals)
    columns = [protect([row[j] for row in rows], totals[j]) for j in range(width)]
    protected_rows = [[columns[j][0][i] for j in range(width)] for i in range(len(rows))]
    protected_totals: list[int | str] = []
    for j in range(width):
        shown = columns[j][1]
        protected_totals.append(totals[j] if shown is None else shown)
    return protected_rows, protected_totals
