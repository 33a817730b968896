"""State shared by the commands: the configuration path and the listing format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from bridge.cli.output import ListFormat
from bridge.config import BridgeConfig, load_config
from bridge.store import Store, open_store


@dataclass
class State:
    config_path: Path
    list_format: ListFormat


FormatOption = Annotated[
    ListFormat | None,
    typer.Option("--format", "-f", help="table (default) or json; overrides the global --format."),
]


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    found = root.obj
    if not isinstance(found, State):
        found = State(Path("bridge.toml"), "table")
        root.obj = found
    return found


def list_format(ctx: typer.Context, override: ListFormat | None) -> ListFormat:
    return override or state(ctx).list_format


def load(ctx: typer.Context) -> BridgeConfig:
    return load_config(state(ctx).config_path)


def open_bridge_store(ctx: typer.Context) -> Store:
    """The store named by the configuration (or BRIDGE_DATABASE_URL), migrated."""
    return open_store(load(ctx).database_url())
