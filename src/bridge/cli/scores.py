"""``bridge scores``: scoring history per child, per cohort, and coverage.

Each command asks the scoring service, builds a report and renders it with a registered
report format (``--format``; the global ``--format`` when not given here). Without ``--out``
the report goes to standard output; a binary format (xlsx) needs ``--out`` on a terminal.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import typer

from bridge.cli.common import open_bridge_store, state
from bridge.cli.output import err_console
from bridge.errors import ConfigError
from bridge.plugins import get_plugins
from bridge.privacy import mask_cpr
from bridge.reports.formats import Report
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

FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", "-f", help="table, csv, json, html, xlsx or a plugin's format; default: the global --format."
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Write the report to this file (or into this directory)."),
]
ReliabilityOption = Annotated[
    float,
    typer.Option("--r", min=0.0, max=0.99, help="Reliability of the scale, for the reliable change index."),
]


def _store(ctx: typer.Context) -> Store:
    return open_bridge_store(ctx)


def _emit(ctx: typer.Context, report: Report, fmt: str | None, out: Path | None) -> None:
    name = fmt or state(ctx).list_format
    formats = get_plugins().report_formats()
    if name not in formats:
        raise ConfigError(f"no report format named {name!r} (installed: {', '.join(sorted(formats))})")
    renderer = formats[name]
    data = renderer.render(report)
    if out is None:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            if sys.stdout.isatty():
                raise ConfigError(f"{name} is a binary format: give --out FILE") from None
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = out / f"{report.kind}.{renderer.suffix}" if out.is_dir() else out
    target.write_bytes(data)
    err_console.print(f"wrote {target}")


@app.command()
def child(
    ctx: typer.Context,
    person_key: Annotated[str, typer.Argument(help="The child's person key (never a CPR number).")],
    fmt: FormatOption = None,
    out: OutOption = None,
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
    _emit(ctx, child_report(result), fmt, out)


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
    fmt: FormatOption = None,
    out: OutOption = None,
    r: ReliabilityOption = DEFAULT_RELIABILITY,
) -> None:
    """Progression of groups of children: n, mean change, share improved / unchanged / worsened."""
    periods: list[Period | None] = [Period.parse(p) for p in period or []] or [None]
    store = _store(ctx)
    try:
        summaries = [scoring.cohort_summary(store, by=_GROUP_BY[by], period=p, rc=ReliableChange(r=r)) for p in periods]
    finally:
        store.dispose()
    _emit(ctx, cohort_report(summaries), fmt, out)


@app.command()
def coverage(
    ctx: typer.Context,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The day to count on (YYYY-MM-DD); default: today.")
    ] = None,
    months: Annotated[int, typer.Option(min=1, max=60, help="The window, in months before --as-of.")] = COVERAGE_MONTHS,
    fmt: FormatOption = None,
    out: OutOption = None,
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
    _emit(ctx, coverage_report(result), fmt, out)
