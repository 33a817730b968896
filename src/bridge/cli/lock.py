"""``bridge lock``: the per-source run lock, for the operator."""

from __future__ import annotations

from typing import Annotated

import typer

from bridge.cli.common import FormatOption, list_format, load, open_bridge_store
from bridge.cli.output import notice, print_json
from bridge.errors import ConfigError
from bridge.sync.lock import release_lock

app = typer.Typer(help="The lock that keeps two runs of one source apart.", no_args_is_help=True)


@app.command()
def release(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The source whose lock to release, as named in bridge.toml.")],
    force: Annotated[
        bool, typer.Option("--force", help="Really release it (required: this can end another process's run).")
    ] = False,
    fmt: FormatOption = None,
) -> None:
    """Release a source's lock when its holder is stuck, so the next sync can run.

    A lock never outlives its holder: on PostgreSQL it belongs to the holder's database session,
    on SQLite it is an OS file lock beside the database, and both go the moment the process
    ends, however it ends. So first look for the process (`bridge runs` shows the run still
    "running"), and end it if you can. When you cannot (a hung session on another machine):

    - PostgreSQL: --force ends the database session that holds the lock. Its uncommitted batch
      is rolled back; the next sync resumes after the last committed one.
    - SQLite: --force clears a lock record no process holds. A lock a running process holds is
      not taken from it (exit 3, naming host:pid): end that process.
    """
    config = load(ctx)
    config.source(source)  # a typo is a usage error, not a silent no-op
    if not force:
        raise ConfigError(f"releasing the lock of {source!r} can end another process's run; add --force to do it")
    store = open_bridge_store(ctx)
    try:
        released = release_lock(store, source)
    finally:
        store.dispose()
    if released.was_held:
        message = f"released the lock of {source}: ended {released.holder}"
    elif released.holder:
        message = f"the lock of {source} was not held; cleared the record left by {released.holder}"
    else:
        message = f"the lock of {source} was not held"
    notice(message, label="ok", source=source)
    if list_format(ctx, fmt) == "json":
        print_json({"source": source, "was_held": released.was_held, "holder": released.holder})
