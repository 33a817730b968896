"""``bridge audit``: the checklist, the barometer over all cases, and a sample's findings.

A ledelsestilsyn round: ``bridge sample draw …`` → ``bridge audit sheet SAMPLE_ID`` (the
checklist is filled in automatically, and an XLSX is written for the leader) → the leader
answers the judgement items in the spreadsheet → ``bridge audit import FILE`` → after each
nightly sync, ``bridge audit follow-up`` closes errors the data show corrected →
``bridge audit report SAMPLE_ID``. ``bridge audit barometer`` needs no sample: it checks every
case.
"""

from __future__ import annotations

import getpass
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import typer

from bridge.cli.common import FormatOption, list_format, open_bridge_store
from bridge.cli.output import emit, err_console, notice
from bridge.cli.reporting import OutOption, ReportFormatOption, emit_report
from bridge.cli.sample import parse_day
from bridge.errors import ConfigError
from bridge.law import Outcome
from bridge.law.rule import OUTCOME_LABELS
from bridge.reports.audit import barometer_report, sample_report
from bridge.services import findings
from bridge.services.audit import audit_rules
from bridge.services.barometer import BarometerBy, barometer
from bridge.services.findings import Change
from bridge.services.periods import Period
from bridge.services.sheet import import_sheet, write_sheet

app = typer.Typer(
    help="Ledelsestilsyn: the legal checklist on every case, the barometer, and a sample's findings.",
    no_args_is_help=True,
)

ANSWERS = {"pass": Outcome.passed, "fail": Outcome.failed, "not-relevant": Outcome.not_relevant}


@app.command()
def rules(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """Every installed checklist item: area, case step, the provisions it applies, automatic or judgement."""
    emit(
        "Tjekskema",
        ["id", "område", "sagsskridt", "krav", "hjemmel", "type"],
        [
            [
                r.id,
                r.area.label,
                r.step.label,
                r.title,
                ", ".join(str(c) for c in r.sources),
                "automatisk" if r.automatic else "vurdering",
            ]
            for r in audit_rules()
        ],
        list_format(ctx, fmt),
    )


@app.command("barometer")
def barometer_(
    ctx: typer.Context,
    *,
    period: Annotated[
        list[str] | None,
        typer.Option(
            "--period", "-p", help="2025, 2025H1, 2025Q3, 2025-03 or a range; repeat for a trend (default: 3 years)."
        ),
    ] = None,
    by: Annotated[
        Literal["all", "municipality", "team", "caseworker"], typer.Option("--by", help="Split each indicator by this.")
    ] = "all",
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Judge deadlines as of this day (default today).")
    ] = None,
    municipality: Annotated[str | None, typer.Option(help="Only this municipality (kommunekode).")] = None,
    fmt: ReportFormatOption = None,
    out: OutOption = None,
) -> None:
    """Each indicator's share of cases passing, over all cases, per period, with the failing case numbers."""
    periods = sorted((Period.parse(p) for p in period or []), key=lambda p: (p.start, p.end)) or None
    day = parse_day(as_of, "--as-of")
    store = open_bridge_store(ctx)
    try:
        with err_console.status("checking every case …"):
            result = barometer(store, periods=periods, by=_by(by), as_of=day, municipality=municipality)
    finally:
        store.dispose()
    emit_report(ctx, barometer_report(result), fmt, out)


def _by(value: str) -> BarometerBy:
    if value not in ("all", "municipality", "team", "caseworker"):
        raise ConfigError(f"--by {value!r}: use all, municipality, team or caseworker")
    return value  # type: ignore[return-value]


@app.command()
def sheet(
    ctx: typer.Context,
    sample_id: Annotated[int, typer.Argument(help="The sample (bridge sample list).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The XLSX file to write.")] = Path("tjekskema.xlsx"),
    follow_up_months: Annotated[int, typer.Option(min=1, max=12, help="Months to correct a failed item.")] = 1,
) -> None:
    """Check the sample's cases and write the checklist as XLSX: automatic results filled in, judgement items empty."""
    store = open_bridge_store(ctx)
    try:
        written = findings.fill_sample(
            store, sample_id, recorded_by=getpass.getuser(), follow_up_months=follow_up_months
        )
        path = write_sheet(store, sample_id, out)
    finally:
        store.dispose()
    if written:
        notice(f"checked sample {sample_id}: {written} checklist items")
    notice(f"wrote {path}")


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The filled-in XLSX.")],
) -> None:
    """Read the leader's answers back; every cell is validated first, and nothing is imported on any error."""
    store = open_bridge_store(ctx)
    try:
        result = import_sheet(store, file, recorded_by=getpass.getuser())
    finally:
        store.dispose()
    typer.echo(f"sample {result.sample_id}: {result.rows} rows read, {result.new_versions} findings changed")


@app.command("record")
def record_(
    ctx: typer.Context,
    sample_id: Annotated[int, typer.Argument(help="The sample.")],
    case: Annotated[str, typer.Argument(help="The case number (or source:ref).")],
    rule: Annotated[str, typer.Argument(help="The checklist item (bridge audit rules).")],
    *,
    answer: Annotated[
        Literal["pass", "fail", "not-relevant"] | None,
        typer.Option(help="The answer to a judgement item."),
    ] = None,
    note: Annotated[str | None, typer.Option(help="A note on the finding.")] = None,
    refusion: Annotated[
        bool | None, typer.Option("--refusion/--no-refusion", help="The error has refusion significance.")
    ] = None,
    corrected: Annotated[
        str | None, typer.Option(help="The error was corrected on this day (YYYY-MM-DD): close it.")
    ] = None,
) -> None:
    """Record one finding as a new version (an answer, a note, refusion significance, or that it was corrected)."""
    change = Change(
        case,
        rule,
        outcome=ANSWERS[answer] if answer else None,
        note=note,
        refusion=refusion,
        closed_on=parse_day(corrected, "--corrected"),
    )
    store = open_bridge_store(ctx)
    try:
        written = findings.record(store, sample_id, [change], recorded_by=getpass.getuser())
    finally:
        store.dispose()
    if not written:
        typer.echo("nothing changed")
    for f in written:
        answer_text = OUTCOME_LABELS[f.outcome] if f.outcome else "ubesvaret"
        typer.echo(f"{f.case_number} {f.rule}: version {f.version}, {answer_text}, recorded by {f.recorded_by}")


@app.command("follow-up")
def follow_up(
    ctx: typer.Context,
    today: Annotated[str | None, typer.Option(help="The day to close on (default today).")] = None,
) -> None:
    """After a sync: close failed items whose missing milestone the data now show (a new version each)."""
    store = open_bridge_store(ctx)
    try:
        closed = findings.refresh_follow_ups(store, today=parse_day(today, "--today") or date.today())
    finally:
        store.dispose()
    typer.echo(f"{closed} errors found corrected and closed")


@app.command()
def report(
    ctx: typer.Context,
    sample_id: Annotated[int, typer.Argument(help="The sample.")],
    fmt: ReportFormatOption = None,
    out: OutOption = None,
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999, help="For the upper error limit.")] = 0.95,
) -> None:
    """The sample's results: error rate and what it proves, per rule and team, refusion, follow-up, trend."""
    store = open_bridge_store(ctx)
    try:
        result = sample_report(store, sample_id, confidence=confidence)
    finally:
        store.dispose()
    emit_report(ctx, result, fmt, out)
