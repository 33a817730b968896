"""``bridge cases``: find a child's case by status, caseworker, municipality, case number or CPR.

A CPR number is only ever typed at a hidden prompt (never an argument, which would end up in
the shell's history and the process list); it is turned into the person key here with the
installation's secret, and neither the number nor the key is printed or logged.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bridge.cli.common import FormatOption, list_format, load, open_bridge_store
from bridge.cli.output import emit
from bridge.errors import BridgeError, ConfigError
from bridge.privacy import InvalidCPR
from bridge.services.cases import CaseSummary, child_key_for_cpr, find_cases

COLUMNS = ("case", "municipality", "caseworker", "age", "status", "opened", "closed", "source")


class NoSuchCase(BridgeError):
    """Nothing matched a lookup (exit 1)."""


def _rows(found: list[CaseSummary]) -> list[tuple[object, ...]]:
    return [
        (c.case_number, f"{c.municipality_name} ({c.municipality})", c.caseworker, c.child_age, c.status, c.opened,
         c.closed, c.source)
        for c in found
    ]  # fmt: skip


def prompt_for_child_key(ctx: typer.Context) -> str:
    """Ask for a CPR number without echoing it, and return its person key (never shown)."""
    persons = load(ctx).pseudonymizer()
    typed = typer.prompt("Barnets CPR-nummer (vises ikke)", hide_input=True, err=True)
    try:
        return child_key_for_cpr(persons, typed)
    except InvalidCPR as exc:
        raise ConfigError(f"not a valid CPR number: {exc}") from None


def cases(
    ctx: typer.Context,
    *,
    case_number: Annotated[
        str | None, typer.Argument(help="A case number (or a family case number), e.g. 27.24.00-G01-5-19.")
    ] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only open cases.")] = False,
    caseworker: Annotated[str | None, typer.Option(help="Caseworker: part of the name.")] = None,
    municipality: Annotated[str | None, typer.Option(help="Kommunekode or part of the municipality's name.")] = None,
    cpr: Annotated[
        bool, typer.Option("--cpr", help="Find a child's cases by CPR number, typed at a hidden prompt.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest opened first.")] = 200,
    fmt: FormatOption = None,
) -> None:
    """List children's cases: the case number, municipality, caseworker and the child's age.

    A child is never shown by person key. Look a child up by case number (`bridge cases
    27.24.00-G01-5-19`) or by CPR number (`bridge cases --cpr`, typed at a prompt that does not
    echo, hashed on this machine and never stored, printed or logged).
    """
    child_key = prompt_for_child_key(ctx) if cpr else None
    store = open_bridge_store(ctx)
    try:
        found = find_cases(
            store, open_only=open_only, caseworker=caseworker, municipality=municipality, case_number=case_number,
            child_key=child_key, limit=limit,
        )  # fmt: skip
    finally:
        store.dispose()
    if not found and (case_number or cpr):
        raise NoSuchCase("no case matches" + (f" case number {case_number!r}" if case_number else " that CPR number"))
    emit("Cases", COLUMNS, _rows(found), list_format(ctx, fmt))
