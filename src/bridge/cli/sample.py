"""``bridge sample``: draw a ledelsestilsyn sample that anyone can verify afterwards."""

from __future__ import annotations

import getpass
from datetime import date
from typing import Annotated, Literal

import typer

from bridge.cli.common import FormatOption, list_format, open_bridge_store
from bridge.cli.output import emit
from bridge.errors import ConfigError
from bridge.services import sampling
from bridge.services.sampling import Cadence, DrawSpec, SampleSummary, Strategy

app = typer.Typer(
    help=(
        "Reproducible samples for the ledelsestilsyn: draw by caseworker, by paragraph or proportionally, "
        "and verify a draw later."
    ),
    no_args_is_help=True,
)

StrategyName = Literal["per-caseworker", "per-paragraph", "proportional"]
CadenceName = Literal["quarterly", "half-yearly", "yearly"]


def parse_day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: use YYYY-MM-DD") from None


@app.command()
def draw(
    ctx: typer.Context,
    *,
    strategy: Annotated[
        StrategyName,
        typer.Option(
            help="per-caseworker: --k cases of each caseworker; per-paragraph: --k of each paragraph; "
            "proportional: --n cases (or the size for --confidence/--tolerable) shared by --by."
        ),
    ] = "per-caseworker",
    k: Annotated[int | None, typer.Option("--k", min=1, help="Cases per stratum (practice: 2 to 20 a year).")] = None,
    n: Annotated[int | None, typer.Option("--n", min=1, help="Cases in all (proportional).")] = None,
    by: Annotated[
        Literal["caseworker", "team", "paragraph"], typer.Option("--by", help="Strata of a proportional draw.")
    ] = "caseworker",
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999, help="For the sample size.")] = 0.95,
    tolerable: Annotated[float, typer.Option(min=0.001, max=0.5, help="Tolerable error rate.")] = 0.05,
    cadence: Annotated[
        CadenceName | None,
        typer.Option(help="The tilsyn plan's cadence: draw for the period that holds --as-of (or today)."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The review date (YYYY-MM-DD); default: today, or the period's end.")
    ] = None,
    lookback_months: Annotated[
        int, typer.Option(min=1, max=60, help="Cases with a measure started this many months back.")
    ] = 12,
    exclude_months: Annotated[
        int, typer.Option(min=0, max=60, help="Leave out cases drawn in a sample within this many months (0: none).")
    ] = 12,
    municipality: Annotated[str | None, typer.Option(help="Only this municipality (kommunekode).")] = None,
    paragraph: Annotated[
        list[str] | None, typer.Option("--paragraph", help='Only cases whose latest measure is under it, e.g. "BL 32".')
    ] = None,
    seed: Annotated[
        str | None, typer.Option(help="The seed; default: a new random one, stored with the sample.")
    ] = None,
    label: Annotated[str, typer.Option(help="A name for the sample.")] = "",
    fmt: FormatOption = None,
) -> None:
    """Draw a sample and store it with its seed, parameters and a fingerprint of the population."""
    day = parse_day(as_of, "--as-of") or date.today()
    if cadence is not None:
        period = Cadence(cadence.replace("-", "_")).period(day)
        day = period.end if as_of is None else day
        label = label or f"Ledelsestilsyn {period.label}"
    spec = DrawSpec(
        Strategy(strategy.replace("-", "_")),
        day,
        k=k,
        n=n,
        stratify_by=by,
        confidence=confidence,
        tolerable=tolerable,
        municipality=municipality,
        paragraphs=tuple(paragraph or ()),
        lookback_months=lookback_months,
        exclude_months=exclude_months,
        label=label,
    )
    store = open_bridge_store(ctx)
    try:
        summary = sampling.draw_sample(store, spec, seed=seed, drawn_by=getpass.getuser())
        cases = sampling.sampled_cases(store, summary.id)
    finally:
        store.dispose()
    fmt_ = list_format(ctx, fmt)
    _emit_summary(summary, fmt_)
    if fmt_ == "table":
        emit(
            "Udtrukne sager",
            ["sag", "sagsnummer", "stratum", "plads"],
            [[c.key, c.case_number, c.stratum, c.rank] for c in cases],
            fmt_,
        )


def _emit_summary(summary: SampleSummary, fmt: Literal["table", "json"]) -> None:
    emit(
        f"Stikprøve {summary.id}: {summary.label}",
        ["id", "strategy", "seed", "as_of", "window_start", "population", "drawn", "fingerprint", "drawn_by"],
        [
            [
                summary.id,
                summary.strategy,
                summary.seed,
                summary.as_of,
                summary.window_start,
                summary.population_size,
                summary.sample_size,
                summary.fingerprint,
                summary.drawn_by,
            ]
        ],
        fmt,
    )


@app.command()
def verify(
    ctx: typer.Context,
    sample_id: Annotated[int, typer.Argument(help="The sample's id (bridge sample list).")],
) -> None:
    """Recompute a sample from its seed and parameters: confirm it, or list what changed (exit 1)."""
    store = open_bridge_store(ctx)
    try:
        result = sampling.verify(store, sample_id)
    finally:
        store.dispose()
    typer.echo(result.explain())
    if not result.confirmed:
        raise typer.Exit(1)


@app.command("list")
def list_(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """The samples drawn, newest last."""
    store = open_bridge_store(ctx)
    try:
        samples = sampling.list_samples(store)
    finally:
        store.dispose()
    emit(
        "Stikprøver",
        ["id", "label", "strategy", "as_of", "population", "drawn", "seed", "drawn_at"],
        [[s.id, s.label, s.strategy, s.as_of, s.population_size, s.sample_size, s.seed, s.drawn_at] for s in samples],
        list_format(ctx, fmt),
    )


@app.command()
def show(
    ctx: typer.Context,
    sample_id: Annotated[int, typer.Argument(help="The sample's id.")],
    fmt: FormatOption = None,
) -> None:
    """A sample's parameters, strata and drawn cases (case numbers, never person data)."""
    store = open_bridge_store(ctx)
    try:
        summary = sampling.get_sample(store, sample_id)
        strata = sampling.stratum_counts(store, sample_id)
        cases = sampling.sampled_cases(store, sample_id)
    finally:
        store.dispose()
    fmt_ = list_format(ctx, fmt)
    _emit_summary(summary, fmt_)
    emit("Strata", ["stratum", "population", "drawn"], [list(s) for s in strata], fmt_)
    emit(
        "Udtrukne sager",
        ["sag", "sagsnummer", "stratum", "plads"],
        [[c.key, c.case_number, c.stratum, c.rank] for c in cases],
        fmt_,
    )
