"""The ``bridge`` command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from bridge.cli import demo, quarantine, scores, simulate, sources
from bridge.cli.common import State
from bridge.cli.output import ListFormat, configure_logging, fail
from bridge.errors import BridgeError

app = typer.Typer(
    name="bridge",
    help=(
        "Sync children's cases from DUBU, CSC Social and SB-SYS into one store, and follow up on them.\n\n"
        "Start with `bridge demo`, or `bridge init` to write a bridge.toml for your own sources."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Option("--config", "-c", envvar="BRIDGE_CONFIG", help="The configuration file.")
    ] = Path("bridge.toml"),
    fmt: Annotated[ListFormat, typer.Option("--format", "-f", help="Listings as a table or as JSON.")] = "table",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")] = False,
) -> None:
    ctx.obj = State(config, fmt)
    configure_logging(verbose)


app.command()(sources.init)
app.command()(sources.adapters)
app.command()(sources.check)
app.command()(sources.sync)
app.command()(sources.runs)
app.command()(demo.demo)
app.command()(simulate.simulate)
app.add_typer(scores.app, name="scores")
app.add_typer(quarantine.app, name="quarantine")
app.add_typer(sources.db, name="db")


def main() -> None:
    """Run the CLI; bridge's own errors end with a one-line message and their exit code."""
    try:
        app()
    except BridgeError as exc:
        fail(str(exc))
        sys.exit(exc.exit_code)
    except Exception as exc:
        # The traceback goes through logging, whose handlers mask CPR numbers.
        logging.getLogger("bridge").debug("unexpected error", exc_info=True)
        fail(f"unexpected error: {type(exc).__name__}: {exc} (run with --verbose for the traceback)")
        sys.exit(1)
