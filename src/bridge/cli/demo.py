"""``bridge demo``: the whole pipeline on synthetic data, in ./bridge-demo/.

Simulators serve the synthetic ground truth over loopback, each demo source is synced
into ``bridge-demo/bridge.db``, the scoring report is written beside it, and the summary
compares the store with the ground truth. Run again, it reuses the folder, and every
record is reported unchanged.
"""

from __future__ import annotations

import secrets
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text
from sqlalchemy import func, select
from sqlmodel import col

from bridge.cli.output import console, notice
from bridge.cli.sources import show_runs
from bridge.config import SourceSettings, load_config
from bridge.model.tables import Case
from bridge.store import open_store
from bridge.sync import run_sync
from bridge.synthetic.truth import GroundTruth

DEMO_CONFIG = """\
# The bridge demo: synthetic municipalities, served over loopback. Safe to delete.
[privacy]
secret_file = "person-key.secret"   # a random demo secret, made on the first run

# The built-in synthetic source.
[[sources]]
name = "odense-synthetic"
adapter = "synthetic"
municipality = "461"
municipality_name = "Odense"
[sources.settings]
seed = 461
caseworkers = 12
invalid = 5          # deliberately broken records, to show the quarantine

# SB-SYS over the SBSIP Web API. The demo starts the SB-SYS simulator on loopback and
# points this source at it; the settings below are the simulated municipality's size.
[[sources]]
name = "aarhus-sbsys"
adapter = "sbsys"
municipality = "751"
municipality_name = "Aarhus"
[sources.settings]
seed = 751
caseworkers = 8
invalid = 3
"""


def _truth(source: SourceSettings) -> GroundTruth:
    """The ground truth a demo source serves, drawn from its settings."""
    from bridge.synthetic.adapter import SyntheticConfig
    from bridge.synthetic.generate import generate

    if source.adapter == "synthetic":
        return SyntheticConfig.model_validate(source.settings).truth(source.municipality)
    settings = source.settings
    return generate(
        int(settings.get("seed", 1)),
        caseworkers=int(settings.get("caseworkers", 10)),
        invalid=int(settings.get("invalid", 0)),
        municipality_codes=[source.municipality],
    )


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo lives.")] = Path("bridge-demo"),
) -> None:
    """Run the whole pipeline on synthetic data in ./bridge-demo/ and print a summary.

    Starts the simulators on loopback, fully syncs every demo source, writes the scoring report
    (scores.html) and compares the store with the ground truth.
    """
    from bridge.reports.scoring import write_scoring_report
    from bridge.simulation import has_simulator, simulated
    from bridge.synthetic.generate import DEFAULT_AS_OF

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
    runs = []
    for source in config.sources:
        truth = _truth(source)
        expected += sum(1 for _ in truth.valid_cases())
        with ExitStack() as stack:
            if has_simulator(source.adapter):
                running = stack.enter_context(simulated(source, truth))
                notice(f"{source.adapter} simulator serving {len(truth.cases)} cases at {running.location}")
            notice(f"syncing {source.name} ({source.adapter}) …")
            runs.append(run_sync(store, config, source.name, full=True))
    report = write_scoring_report(store, directory / "scores.html", as_of=DEFAULT_AS_OF)
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(Case).where(col(Case.deleted_at).is_(None))).scalar_one()
    store.dispose()
    show_runs("Demo sync", runs, "table")
    summary = Text(f"cases in store: {stored}; ground truth: {expected} — ")
    summary.append(*(("matches", "green") if stored == expected else ("does NOT match", "red")))
    console.print(summary)
    console.print(f"store: {config.database_url()}")
    console.print(f"scoring report: {report}")
    if stored != expected:
        raise typer.Exit(1)
