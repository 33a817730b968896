"""``bridge quarantine``: list, show and replay rejected records."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from bridge.api import Bridge
from bridge.cli.common import FormatOption, list_format, load, open_bridge_store
from bridge.cli.output import console, emit, notice, print_json
from bridge.errors import BridgeError
from bridge.privacy import mask_cpr
from bridge.sync.replay import replay_quarantined

app = typer.Typer(help="Records a source sent that could not be accepted, with the reason.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include records already resolved.")] = False,
    fmt: FormatOption = None,
) -> None:
    """List quarantined records and why they were rejected (payloads are not shown)."""
    bridge = Bridge(open_bridge_store(ctx))
    try:
        rows = [
            (q.id, q.source, q.source_ref, q.reason, q.run_id, q.created_at, q.resolved_at)
            for q in bridge.quarantined(source=source, include_resolved=all_)
        ]
    finally:
        bridge.close()
    emit("Quarantine", ("id", "source", "ref", "reason", "run", "quarantined", "resolved"), rows, list_format(ctx, fmt))


@app.command()
def show(
    ctx: typer.Context,
    record_id: Annotated[int, typer.Argument(help="The id from `bridge quarantine list`.")],
    payload: Annotated[
        bool, typer.Option("--payload", help="Also print the raw payload, with CPR numbers masked.")
    ] = False,
) -> None:
    """Show one quarantined record. The raw payload is only printed on request, CPR numbers masked."""
    bridge = Bridge(open_bridge_store(ctx))
    try:
        found = [q for q in bridge.quarantined(include_resolved=True) if q.id == record_id]
    finally:
        bridge.close()
    if not found:
        raise BridgeError(f"no quarantined record {record_id}")
    q = found[0]
    for label, value in (
        ("id", q.id),
        ("source", q.source),
        ("ref", q.source_ref),
        ("reason", q.reason),
        ("run", q.run_id),
        ("quarantined", q.created_at),
        ("resolved", q.resolved_at),
        ("payload", f"{len(q.payload)} characters, sha256 {q.payload_hash[:16]}…"),
    ):
        line = Text(f"{label:>12} ", style="bold")
        line.append("" if value is None else str(value))
        console.print(line)
    if payload:
        console.print(mask_cpr(q.payload))


@app.command()
def replay(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The source whose records to replay.")],
    ids: Annotated[list[int] | None, typer.Argument(help="Only these ids (default: all unresolved).")] = None,
    fmt: FormatOption = None,
) -> None:
    """Parse quarantined records again (after a fix); those that now pass are stored. Exit 4 if some are not."""
    config = load(ctx)
    store = open_bridge_store(ctx)
    try:
        result = replay_quarantined(store, config, source, ids or ())
    finally:
        store.dispose()
    notice(
        f"replayed {result.accepted + result.still_rejected}: {result.accepted} stored, "
        f"{result.still_rejected} still rejected (run {result.run_id})",
        source=source,
        run_id=result.run_id,
    )
    if list_format(ctx, fmt) == "json":
        print_json(
            {"source": source, "run": result.run_id, "stored": result.accepted, "still_rejected": result.still_rejected}
        )
    if result.still_rejected:
        raise typer.Exit(4)
