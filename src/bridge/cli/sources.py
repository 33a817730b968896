"""Commands about sources and runs: init, adapters, check, sync, runs, db."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bridge.cli.common import FormatOption, list_format, load, open_bridge_store, state
from bridge.cli.output import ListFormat, emit, err_console, notice, print_json
from bridge.config import TEMPLATE
from bridge.errors import BridgeError, ConfigError, LockHeld
from bridge.model.tables import SyncRun
from bridge.plugins import get_plugins
from bridge.sync import BatchDone, SourceOutcome
from bridge.sync.engine import BatchCallback, check_sources

RUN_COLUMNS = (
    "run",
    "source",
    "status",
    "full",
    "started",
    "finished",
    "fetched",
    "inserted",
    "updated",
    "unchanged",
    "quarantined",
    "deleted",
    "error",
)


SUMMARY_COLUMNS = ("run", "source", "status", "fetched", "inserted", "updated", "unchanged", "quarantined", "deleted")


def show_runs(title: str, found: list[SyncRun], fmt: ListFormat) -> None:
    """Runs as JSON with every field, or as a table narrow enough for a terminal."""
    if fmt == "json":
        emit(title, RUN_COLUMNS, [run_row(r) for r in found], fmt)
        return
    indexes = [RUN_COLUMNS.index(c) for c in SUMMARY_COLUMNS]
    emit(title, SUMMARY_COLUMNS, [[run_row(r)[i] for i in indexes] for r in found], fmt)
    for run in found:
        if run.error:
            notice(f"run {run.id} ({run.source}): {run.error}", label=run.status, source=run.source, run_id=run.id)


def run_row(run: SyncRun) -> tuple[object, ...]:
    return (
        run.id,
        run.source,
        run.status,
        run.full,
        run.started_at,
        run.finished_at,
        run.fetched,
        run.inserted,
        run.updated,
        run.unchanged,
        run.quarantined,
        run.deleted,
        run.error,
    )


def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented bridge.toml to start from (at the --config path)."""
    path = state(ctx).config_path
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; use --force to overwrite it")
    path.write_text(TEMPLATE, encoding="utf-8")
    notice(f"wrote {path}. Set BRIDGE_PERSON_KEY_SECRET, then run `bridge check` and `bridge sync`.")


def adapters(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """List installed source adapters, with the distribution and version that ship each."""
    rows = [(i.name, i.distribution, i.version, i.description) for i in get_plugins().adapters().values()]
    emit("Installed adapters", ("adapter", "distribution", "version", "description"), rows, list_format(ctx, fmt))


def check(
    ctx: typer.Context,
    sources: Annotated[list[str] | None, typer.Argument(help="Sources to check (default: all).")] = None,
    fmt: FormatOption = None,
) -> None:
    """Reach and authenticate against each source, fetching no data. Exit 1 when one fails."""
    config = load(ctx)
    checked: list[dict[str, object]] = []
    for name in sources or [s.name for s in config.sources]:
        source = config.source(name)
        adapter = config.build_adapter(source)
        try:
            adapter.check()
            notice(f"{name} ({source.adapter})", label="ok", source=name)
            checked.append({"source": name, "adapter": source.adapter, "status": "ok", "error": None})
        except BridgeError as exc:
            notice(f"{name} ({source.adapter}): {exc}", label="failed", level=logging.ERROR, source=name)
            checked.append({"source": name, "adapter": source.adapter, "status": "failed", "error": str(exc)})
        finally:
            adapter.close()
    if list_format(ctx, fmt) == "json":
        print_json(checked)
    if any(c["status"] == "failed" for c in checked):
        raise typer.Exit(1)


def _progress(stack: ExitStack) -> BatchCallback | None:
    """A progress bar on a terminal: totals and time left when the source says how many to expect."""
    if not err_console.is_terminal:
        return None
    progress = stack.enter_context(
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        )
    )
    tasks: dict[str, TaskID] = {}

    def on_batch(done: BatchDone) -> None:
        if done.source not in tasks:
            tasks[done.source] = progress.add_task(done.source, total=None)
        t = done.total
        progress.update(
            tasks[done.source],
            completed=done.fetched,
            total=max(done.expected, done.fetched) if done.expected is not None else None,
            description=(
                f"{done.source}: {t.inserted} new · {t.updated} changed · {t.unchanged} unchanged · "
                f"{t.quarantined} quarantined"
            ),
        )

    return on_batch


def sync(
    ctx: typer.Context,
    sources: Annotated[list[str] | None, typer.Argument(help="Sources to sync (default: all configured).")] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Fetch everything and mark cases the source no longer has as deleted.")
    ] = False,
    fmt: FormatOption = None,
) -> None:
    """Sync sources into the store, one after another; print each source's run.

    Exit codes: 0 all good, 1 a run failed, 2 usage or configuration error, 3 another run
    of a source holds its lock, 4 finished with quarantined records. With --format json the
    result lists every source's run, a failed one included, and a skipped source with its reason.
    """
    from bridge.api import Bridge

    config = load(ctx)
    check_sources(config, sources or [s.name for s in config.sources])  # before the store is opened
    bridge = Bridge(open_bridge_store(ctx), config)
    try:
        with ExitStack() as stack:
            result = bridge.sync(sources or (), full=full, on_batch=_progress(stack))
    finally:
        bridge.close()
    for outcome in result.skipped:  # failed runs say why in their table row's notice
        notice(outcome.error or "", label=_status(outcome), level=logging.WARNING, source=outcome.source)
    if list_format(ctx, fmt) == "json":
        print_json([_outcome_json(o) for o in result.outcomes])
    elif result.runs:
        show_runs("Sync runs", result.runs, "table")
    raise typer.Exit(result.exit_code)


def _outcome_json(outcome: SourceOutcome) -> dict[str, object]:
    if outcome.run is not None:
        return dict(zip(RUN_COLUMNS, run_row(outcome.run), strict=True))
    status = _status(outcome)
    return {"source": outcome.source, "status": status, "error": outcome.error, "exit_code": outcome.exit_code}


def _status(outcome: SourceOutcome) -> str:
    """What a source without a run is: skipped (its lock was held), else failed before its run began."""
    return "skipped" if outcome.exit_code == LockHeld.exit_code else "failed"


def runs(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    fmt: FormatOption = None,
) -> None:
    """Show the run ledger: what each sync fetched, wrote and quarantined."""
    from bridge.api import Bridge

    bridge = Bridge(open_bridge_store(ctx))
    try:
        found = bridge.runs(source=source, limit=limit)
    finally:
        bridge.close()
    show_runs("Sync runs", found, list_format(ctx, fmt))


db = typer.Typer(help="Database schema commands.", no_args_is_help=True)


@db.command("upgrade")
def db_upgrade(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """Migrate the store to the newest schema (also done automatically on first use)."""
    store = open_bridge_store(ctx)
    try:
        store.upgrade()
        revision = store.current_revision()
    finally:
        store.dispose()
    notice(f"schema at revision {revision}")
    if list_format(ctx, fmt) == "json":
        print_json({"status": "ok", "revision": revision})
