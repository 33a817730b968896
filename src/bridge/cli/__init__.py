"""The ``bridge`` command."""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import Abort, TyperException

from bridge.cli import audit, cases, compare, demo, dst, lock, quarantine, sample, scores, simulate, sources, workload
from bridge.cli.common import State
from bridge.cli.output import ListFormat, configure_logging, fail, mode
from bridge.errors import BridgeError, describe_error

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


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"bridge {version('bridge')}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Option("--config", "-c", envvar="BRIDGE_CONFIG", help="The configuration file.")
    ] = Path("bridge.toml"),
    fmt: Annotated[ListFormat, typer.Option("--format", "-f", help="Listings as a table or as JSON.")] = "table",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")] = False,
    _version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print bridge's version and exit."),
    ] = False,
) -> None:
    ctx.obj = State(config, fmt)
    configure_logging(verbose)


app.command()(sources.init)
app.command()(sources.adapters)
app.command()(sources.check)
app.command()(sources.sync)
app.command()(sources.runs)
app.command()(cases.cases)
app.command()(demo.demo)
app.command()(simulate.simulate)
app.command("import-dst")(dst.import_dst)
app.add_typer(scores.app, name="scores")
app.add_typer(sample.app, name="sample")
app.add_typer(audit.app, name="audit")
app.add_typer(compare.app, name="compare")
app.add_typer(quarantine.app, name="quarantine")
app.add_typer(lock.app, name="lock")
app.add_typer(workload.app, name="workload")
app.command()(workload.handover)
app.command()(workload.handovers)
app.add_typer(sources.db, name="db")


def _asks_for_json(args: Sequence[str]) -> bool:
    """Whether the command line asks for JSON results, read before the parser could fail."""
    pairs = itertools.pairwise(args)
    return "--format=json" in args or any(a in ("--format", "-f") and b == "json" for a, b in pairs)


def main(args: Sequence[str] | None = None) -> None:
    """Run the CLI; every failure ends with a one-line message (JSON under cron) and its exit code."""
    argv = list(sys.argv[1:] if args is None else args)
    mode.json_result = _asks_for_json(argv)
    if not logging.getLogger().handlers:
        configure_logging(False)  # so a usage error is a JSON line under cron too
    try:
        code = app(args=argv, prog_name="bridge", standalone_mode=False)
    except TyperException as exc:  # usage errors: unknown option, bad value
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(exc.format_message())  # `bridge scores` alone: the help, as the user asked
        else:
            fail(exc.format_message(), exc.exit_code)
        code = exc.exit_code
    except Abort:
        fail("aborted", 130)
        code = 130
    except BridgeError as exc:
        fail(str(exc), exc.exit_code)
        code = exc.exit_code
    except Exception as exc:
        # The traceback goes through logging, whose handlers mask CPR numbers.
        logging.getLogger("bridge").debug("unexpected error", exc_info=True)
        fail(f"unexpected error: {describe_error(exc)} (run with --verbose for the traceback)")
        code = 1
    sys.exit(code if isinstance(code, int) else 0)
