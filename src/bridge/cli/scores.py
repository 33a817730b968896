"""``bridge scores``: scoring history per child, per cohort, and coverage.

Each command asks the scoring service, builds a report and renders it with a registered
report format (``--format``; the global ``--format`` when not given here). Without ``--out``
the report goes to standard output; a binary format (xlsx) needs ``--out`` on a terminal.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import typer

from bridge.cli.cases import NoSuchCase, prompt_for_child_key
from bridge.cli.common import open_bridge_store
from bridge.cli.reporting import CsvDialectOption, OutOption, ReportFormatOption, emit_report
from bridge.errors import ConfigError
from bridge.privacy import looks_like_cpr
from bridge.reports.scoring import child_report, cohort_report, coverage_report
from bridge.services import scoring
from bridge.services.cases import find_cases
from bridge.services.periods import Period
from bridge.services.scoring import COVERAGE_MONTHS, DEFAULT_RELIABILITY, GroupBy, ReliableChange
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
    case_number: Annotated[
        str | None, typer.Argument(help="The child's case number (see `bridge cases`), e.g. 27.24.00-G01-5-19.")
    ] = None,
    cpr: Annotated[
        bool, typer.Option("--cpr", help="Find the child by CPR number, typed at a hidden prompt.")
    ] = False,
    fmt: ReportFormatOption = None,
    out: OutOption = None,
    csv_dialect: CsvDialectOption = "excel-da",
    r: ReliabilityOption = DEFAULT_RELIABILITY,
) -> None:
    """One child's scores per theme over time, and the change from the first to the latest.

    Name the child by case number, or give --cpr and type the CPR number at the prompt. The
    report names the child by case number and age, never by person key.
    """
    if (case_number is None) == (not cpr):
        raise ConfigError("give the child's case number, or --cpr to type the CPR number at a prompt")
    if case_number is not None and looks_like_cpr(case_number):
        raise ConfigError("that looks like a CPR number: use --cpr, which asks for it without showing it")
    child_key = prompt_for_child_key(ctx) if cpr else None
    store = _store(ctx)
    try:
        found = find_cases(store, case_number=case_number, child_key=child_key)
        if not found:
            raise NoSuchCase(f"no case with case number {case_number!r}" if case_number else "no case for that CPR")
        keys = {c.child_key for c in found}
        if len(keys) > 1:
            raise ConfigError(
                f"case {case_number} is a family case of {len(keys)} children: give one child's own case number "
                f"(`bridge cases {case_number}` lists them)"
            )
        cases = find_cases(store, child_key=keys.pop())
        result = scoring.child_scores(store, cases[0].child_key, rc=ReliableChange(r=r))
    finally:
        store.dispose()
    emit_report(ctx, child_report(result, cases), fmt, out, csv_dialect)


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
