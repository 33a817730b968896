"""``bridge demo``: the whole pipeline on synthetic data, in ./bridge-demo/.

Simulators serve the synthetic ground truth over loopback, each demo source is synced
into ``bridge-demo/bridge.db``, and the summary compares the store with the ground truth.
Run again, it reuses the folder, and every record is reported unchanged.
"""

from __future__ import annotations

import secrets
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import func, select
from sqlmodel import col

from bridge.cli.output import console, emit, err_console
from bridge.cli.sources import RUN_COLUMNS, run_row
from bridge.config import load_config
from bridge.model.tables import Case
from bridge.store import open_store
from bridge.sync import run_sync

DEMO_CONFIG = """\
# The bridge demo: synthetic municipalities served over loopback. Safe to delete.
[privacy]
secret_file = "person-key.secret"   # a random demo secret, made on the first run

[[sources]]
name = "odense-synthetic"
adapter = "synthetic"
municipality = "461"
municipality_name = "Odense"
[sources.settings]
seed = 461
caseworkers = 12
invalid = 5          # deliberately broken records, to show the quarantine
"""


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo lives.")] = Path("bridge-demo"),
) -> None:
    """Run the whole pipeline on synthetic data in ./bridge-demo/ and print a summary."""
    from bridge.testing.generate import generate  # the generator is only needed here

    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "bridge.toml"
    if not config_path.exists():
        config_path.write_text(DEMO_CONFIG, encoding="utf-8")
    secret_path = directory / "person-key.secret"
    if not secret_path.exists():
        secret_path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        secret_path.chmod(0o600)
    config = load_config(config_path)
    store = open_store(config.database_url())
    expected = 0
    with ExitStack():
        runs = []
        for source in config.sources:
            settings = source.settings
            truth = generate(
                seed=int(settings.get("seed", 1)),
                caseworkers=int(settings.get("caseworkers", 10)),
                invalid=int(settings.get("invalid", 0)),
                municipality_codes=[source.municipality],
            )
            expected += sum(1 for _ in truth.valid_cases())
            err_console.print(f"syncing {source.name} ({source.adapter}) …")
            runs.append(run_sync(store, config, source.name))
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(Case).where(col(Case.deleted_at).is_(None))).scalar_one()
    store.dispose()
    emit("Demo sync", RUN_COLUMNS, [run_row(r) for r in runs], "table")
    verdict = "[green]matches[/]" if stored == expected else "[red]does NOT match[/]"
    console.print(f"cases in store: {stored}; ground truth: {expected} — {verdict}")
    console.print(f"store: {config.database_url()}")
    if stored != expected:
        raise typer.Exit(1)
