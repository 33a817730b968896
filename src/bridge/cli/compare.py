"""``bridge compare``: municipalities side by side, without moving person data.

Within one store (a shared installation): ``bridge compare report``. Across municipalities that
each keep their own store: each runs ``bridge compare extract --out FILE`` and sends the file —
aggregates only, counts of fewer than five persons suppressed, no person key, case number or
CPR — and whoever compares runs ``bridge compare merge FILE… --out report.html``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from bridge.cli.common import open_bridge_store
from bridge.cli.output import notice
from bridge.cli.reporting import CsvDialectOption, OutOption, ReportFormatOption, emit_report
from bridge.cli.sample import parse_day
from bridge.errors import ConfigError
from bridge.reports.compare import comparison_report
from bridge.services import compare as service
from bridge.services.periods import Period

app = typer.Typer(
    help="Compare municipalities: a report over one store, or extracts (aggregates only) merged centrally.",
    no_args_is_help=True,
)

PeriodOption = Annotated[
    list[str] | None,
    typer.Option(
        "--period",
        "-p",
        help="2025, 2025H1, 2025Q3, 2025-03 or 2024-07-01..2025-06-30; repeat for several (default: this year).",
    ),
]
AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="Count open cases and judge deadlines as of this day (default today).")
]


def _measure(
    ctx: typer.Context, period: list[str] | None, municipality: list[str] | None, as_of: str | None
) -> service.Comparison:
    periods = sorted((Period.parse(p) for p in period or []), key=lambda p: (p.start, p.end)) or None
    day = parse_day(as_of, "--as-of") or date.today()
    store = open_bridge_store(ctx)
    try:
        return service.compare(store, periods=periods, municipalities=municipality, as_of=day)
    finally:
        store.dispose()


@app.command()
def report(
    ctx: typer.Context,
    *,
    period: PeriodOption = None,
    municipality: Annotated[
        list[str] | None, typer.Option("--municipality", "-m", help="Only this kommunekode; repeat (default: all).")
    ] = None,
    as_of: AsOfOption = None,
    fmt: ReportFormatOption = None,
    out: OutOption = None,
    csv_dialect: CsvDialectOption = "excel-da",
) -> None:
    """The municipalities of this store side by side: key figures, then each indicator with its
    numerator, denominator, 95 % interval and rank.

    Every figure is suppressed as an extract would be, so the report equals the merge of the
    municipalities' extracts. Example: bridge compare report -p 2025 -o sammenligning.html
    """
    emit_report(ctx, comparison_report(_measure(ctx, period, municipality, as_of)), fmt, out, csv_dialect)


@app.command()
def extract(
    ctx: typer.Context,
    *,
    out: Annotated[Path, typer.Option("--out", "-o", help="The extract to write (JSON).")],
    municipality: Annotated[
        str | None,
        typer.Option("--municipality", "-m", help="The kommunekode; needed when the store holds several."),
    ] = None,
    period: PeriodOption = None,
    as_of: AsOfOption = None,
) -> None:
    """Write one municipality's figures to send for a comparison: numerators and denominators only.

    The file holds the schema version, the kommunekode, the periods and bridge's version; counts
    of 1–4 persons are "<5", counts a total would reveal "–"; no person key, case number or CPR.
    A SHA-256 checksum over its contents lets `bridge compare merge` detect an edited file (it
    detects edits, it does not prove who wrote it). Example: bridge compare extract -p 2025 -o 461.json
    """
    if municipality is None:
        store = open_bridge_store(ctx)
        try:
            known = service.store_municipalities(store)
        finally:
            store.dispose()
        if len(known) != 1:
            codes = ", ".join(code for code, _ in known) or "none"
            raise ConfigError(f"this store holds the municipalities {codes}: name one with --municipality")
        municipality = known[0][0]
    comparison = _measure(ctx, period, [municipality], as_of)
    path = service.write_extract(comparison, municipality, out)
    notice(f"wrote {path}: municipality {municipality}, periods {', '.join(p.label for p in comparison.periods)}")


@app.command()
def merge(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Extracts written by `bridge compare extract`.")],
    *,
    fmt: ReportFormatOption = None,
    out: OutOption = None,
    csv_dialect: CsvDialectOption = "excel-da",
) -> None:
    """Combine municipalities' extracts into one comparison report; shares are recomputed from the
    numerators and denominators, never averaged.

    Refuses (exit 2, naming the file) an extract whose checksum does not match its contents, one
    of an unknown schema version, and a municipality that appears twice for the same period.
    Needs no store. Example: bridge compare merge 461.json 751.json 851.json -o sammenligning.html
    """
    emit_report(ctx, comparison_report(service.merge(files)), fmt, out, csv_dialect)
