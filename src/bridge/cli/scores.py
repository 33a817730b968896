"""``bridge scores``: scoring history per child, per cohort, and coverage.

Each command asks the scoring service, builds a report and renders it with a registered
report format (``--format``; the global ``--format`` when not given here). Without ``--out``
the report goes to standard output; a binary format (xlsx) needs ``--out`` on a terminal.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import typer

from bridge.cli.common import open_bridge_store
from bridge.cli.reporting import CsvDialectOption, OutOption, ReportFormatOption, emit_report
from bridge.errors import ConfigError
from bridge.privacy import mask_cpr
from bridge.reports.scoring import child_report, cohort_report, coverage_report
from bridge.services import scoring
from bridge.services.scoring import COVERAGE_MONTHS, DEFAULT_RELIABILITY, GroupBy, Period, ReliableChange
from bridge.store import Store

app = typer.Typer(
    help="Scoring history on Trivselslinealen (1 = i trivsel … 5 = truet trivsel): per child, per cohort, coverage.",
    no_args_is_help=True,
)

CohortBy = Literal["all", "municipality", "target-group", "paragraph"]
_GROUP_BY: dict[str, GroupBy] = {
    "all": "all",
    "municipality": "municipality",
    "target-group": "target_group",
    "paragraph": "paragraph",
}

ReliabilityOption = Annotated[
    float,
    typer.Option("--r", min=0.0, max=0.99, help="Reliability of the scale, for the reliable change index."),
]


def _store(ctx: typer.Context) -> Store:
    return open_bridge_store(ctx)


@app.command()
def child(
    ctx: typer.Context,
    *,
    person_key: Annotated[str, typer.Argument(help="The child's person key (never a CPR number).")],
    fmt: ReportFormatOption = None,
    out: OutOption = None,
    csv_dialect: CsvDialectOption = "excel-da",
    r: ReliabilityOption = DEFAULT_RELIABILITY,
) -> None:
    """One child's scores per theme over time, and the change from the first to the latest."""
    if mask_cpr(person_key) != person_key:
        raise ConfigError("that looks like a CPR number: give the child's person key instead")
    store = _store(ctx)
    try:
        result = scoring.child_scores(store, person_key, rc=ReliableChange(r=r))
    finally:
        store.dispose()
    emit_report(ctx, child_report(result), fmt, out, csv_dialect)


@app.command()
def cohort(
    ctx: typer.Context,
    *,
    by: Annotated[CohortBy, typer.Option("--by", help="Compare children by this.")] = "municipality",
    period: Annotated[
        list[str] | None,
        typer.Option(
            "--period",
            "-p",
            help="Count only scores in this period: 2024, 2024H1, 2024Q3, 2024-03 or 2023-07-01..2024-06-30. "
            "Repeat to compare periods.",
        ),
    ] = None,
    fmt: ReportFormatOption = None,
    out: OutOption = None,
    csv_dialect: CsvDialectOption = "excel-da",
    r: ReliabilityOption = DEFAULT_RELIABILITY,
) -> None:
    """Progression of groups of children: n, mean change, share improved / unchanged / worsened."""
    periods: list[Period | None] = [Period.parse(p) for p in period or []] or [None]
    store = _store(ctx)
    try:
        summaries = [scoring.cohort_summary(store, by=_GROUP_BY[by], period=p, rc=ReliableChange(r=r)) for p in periods]
    finally:
        store.dispose()
    emit_report(ctx, cohort_report(summaries), fmt, out, csv_dialect)


@app.command()
def coverage(
    ctx: typer.Context,
    *,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The day to count on (YYYY-MM-DD); default: today.")
    ] = None,
    months: Annotated[int, typer.Option(min=1, max=60, help="The window, in months before --as-of.")] = COVERAGE_MONTHS,
    fmt: ReportFormatOption = None,
    out: OutOption = None,
    csv_dialect: CsvDialectOption = "excel-da",
) -> None:
    """Share of open cases scored in the last months, and cases never scored, per municipality."""
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise ConfigError(f"--as-of {as_of!r}: use YYYY-MM-DD") from None
    store = _store(ctx)
    try:
        result = scoring.coverage(store, as_of=day, months=months)
    finally:
        store.dispose()
    emit_report(ctx, coverage_report(result), fmt, out, csv_dialect)
