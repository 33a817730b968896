"""``bridge workload`` (weighted caseload, who takes a new case) and ``bridge handover`` (a leaving caseworker).

The weights come from ``bridge.toml``'s ``[workload]`` table (or a plugin's ``bridge_case_weight``);
see :mod:`bridge.services.workload`. Reports go through the shared report layer (``--format``,
``--out``), so every format shows the same figures.
"""

from __future__ import annotations

import getpass
from datetime import date
from typing import Annotated

import typer

from bridge.cli.common import FormatOption, list_format, load, state
from bridge.cli.output import emit, notice, print_json
from bridge.cli.reporting import CsvDialectOption, OutOption, ReportFormatOption, emit_report
from bridge.cli.sample import parse_day
from bridge.config import BridgeConfig
from bridge.reports.workload import handover_report, workload_report
from bridge.services import handover as handovers_service
from bridge.services.workload import suggest, workload
from bridge.store import Store, open_store

app = typer.Typer(invoke_without_command=True)

OnOption = Annotated[str | None, typer.Option("--on", help="The day to weigh cases on, YYYY-MM-DD (default today).")]
MunicipalityOption = Annotated[str | None, typer.Option(help="Only this municipality (kommunekode, e.g. 461).")]


def _open(ctx: typer.Context) -> tuple[BridgeConfig, Store]:
    config = load(ctx)
    return config, open_store(config.database_url())


def _day(text: str | None) -> date:
    return parse_day(text, "--on") or date.today()


@app.callback()
def report(
    ctx: typer.Context,
    *,
    on: OnOption = None,
    municipality: MunicipalityOption = None,
    fmt: ReportFormatOption = None,
    out: OutOption = None,
    csv_dialect: CsvDialectOption = "excel-da",
) -> None:
    """Weighted caseload per caseworker and team against the benchmark; `assign`: who takes a new case.

    The report: each caseworker's children in open cases, their weighted load in per cent of the
    benchmark, each team's, and the distribution. A case weighs 1 (udsatte) or 40/55 (handicap),
    more with a placement, per open measure and after a recent notification; 40 is the benchmark
    for everyone. The weights are set in bridge.toml's \\[workload] table. Examples:

      bridge workload                          # on the terminal
      bridge workload -f html -o workload.html
      bridge workload -f xlsx -o workload.xlsx
      bridge workload assign 27.24.00-G01-5-19 # who should take this new case
    """
    if ctx.invoked_subcommand is not None:
        return
    config, store = _open(ctx)
    try:
        result = workload(store, settings=config.workload, on=_day(on), municipality=municipality)
    finally:
        store.dispose()
    emit_report(ctx, workload_report(result), fmt, out, csv_dialect)


@app.command()
def assign(
    ctx: typer.Context,
    case_number: Annotated[str, typer.Argument(help="The new case's number (bridge cases --open lists them).")],
    *,
    on: OnOption = None,
    municipality: MunicipalityOption = None,
    fmt: FormatOption = None,
) -> None:
    """Who should take a new case, and why.

    In this order: the caseworker who has the child's siblings (a family stays with one
    caseworker); else the municipality's own rule, when bridge.toml names one
    (\\[workload.assignment] rule = "birthday" or "team", or a plugin's); else the lowest weighted
    load in the case's team. The team's loads are listed to compare.
    """
    config, store = _open(ctx)
    try:
        found = suggest(store, case_number, settings=config.workload, on=_day(on), municipality=municipality)
    finally:
        store.dispose()
    worker = found.caseworker
    if list_format(ctx, fmt) == "json":
        print_json(
            {
                "case_number": found.case_number,
                "caseworker": worker.name,
                "team": worker.team,
                "step": found.step,
                "reasons": found.reasons,
                "alternatives": [
                    {"caseworker": w.name, "team": w.team, "children": w.children, "load": round(w.load, 2)}
                    for w in found.alternatives
                ],
            }
        )
        return
    typer.echo(f"Forslag til sag {found.case_number}: {worker.name} ({worker.team})")
    for reason in found.reasons:
        typer.echo(f"  - {reason}")
    emit(
        "Teamets belastning",
        ["sagsbehandler", "team", "børn", "vægtet sagstal", "belastning (%)"],
        [[w.name, w.team, w.children, round(w.load, 1), round(w.share, 1)] for w in found.alternatives],
        "table",
    )


def handover(
    ctx: typer.Context,
    caseworker: Annotated[str, typer.Argument(help="The caseworker who leaves (name, as in bridge workload).")],
    *,
    to: Annotated[
        str | None, typer.Option("--to", help="Comma-separated receivers (default: the rest of the team).")
    ] = None,
    on: Annotated[str | None, typer.Option("--on", help="The day the cases move, YYYY-MM-DD (default today).")] = None,
    municipality: MunicipalityOption = None,
    accept: Annotated[
        bool, typer.Option("--accept", help="Store the plan as a dated decision, to check later syncs against.")
    ] = False,
    fmt: ReportFormatOption = None,
    out: OutOption = None,
    csv_dialect: CsvDialectOption = "excel-da",
) -> None:
    """Hand a leaving caseworker's open cases over: a plan that keeps families together and evens the load.

    Every open case moves; siblings go to the same receiver; the highest weighted load after the
    handover is kept as low as it can be. The plan shows each receiver's load before and after.
    HTML (and JSON) add a dossier per case for the receiver — open measures with their legal
    basis and end dates, deadlines with days left, what is overdue, the latest scores, open audit
    findings and the last journal note — one case per printed page. CSV and XLSX hold the plan.

      bridge handover "Anna Olsen" -f html -o handover.html
      bridge handover "Anna Olsen" --to "Bo Lund,Carla Dahl" --on 2026-12-01 -f xlsx -o plan.xlsx
      bridge handover "Anna Olsen" --accept     # then, after the next syncs: bridge handovers
    """
    receivers = [name.strip() for name in to.split(",") if name.strip()] if to else None
    config, store = _open(ctx)
    try:
        plan = handovers_service.plan_handover(
            store, caseworker, to=receivers, on=_day(on), settings=config.workload, municipality=municipality
        )
        name = fmt or state(ctx).list_format
        dossiers = handovers_service.dossiers(store, plan) if name in ("html", "json") else []
        emit_report(ctx, handover_report(plan, dossiers), fmt, out, csv_dialect)
        if accept:
            decision = handovers_service.accept(store, plan, decided_by=getpass.getuser())
            notice(f"accepted as handover {decision}: {len(plan.moves)} cases from {plan.on:%d.%m.%Y}")
    finally:
        store.dispose()


def handovers(
    ctx: typer.Context,
    decision: Annotated[int | None, typer.Argument(help="One accepted handover: its moves, one by one.")] = None,
    *,
    fmt: FormatOption = None,
) -> None:
    """Accepted handovers, checked against the cases as last synced: which moves the case system shows done.

    A move is "flyttet" when the case now has the receiver as caseworker, "venter" while it is
    still with the leaving caseworker, "hos en anden" with a third caseworker, "lukket" when
    the case has been closed since.
    """
    _, store = _open(ctx)
    try:
        found = handovers_service.progress(store, decision)
    finally:
        store.dispose()
    listing = list_format(ctx, fmt)
    if decision is None:
        emit(
            "Godkendte overdragelser",
            ["id", "sagsbehandler", "overdrages", "godkendt", "af", "sager", "flyttet", "venter", "hos en anden",
             "lukket"],
            [
                [d.id, d.caseworker, d.effective_on, d.decided_at.date(), d.decided_by, len(d.moves),
                 *(d.count(s) for s in handovers_service.STATUSES)]
                for d in found
            ],
            listing,
        )  # fmt: skip
        return
    emit(
        f"Overdragelse {decision}: {found[0].caseworker}",
        ["sagsnummer", "modtager", "status", "sagsbehandler nu"],
        [[m.case_number, m.receiver, m.status, m.now_with] for m in found[0].moves],
        listing,
    )
