"""``bridge simulate NAME``: serve a source system's simulator until Ctrl-C."""

from __future__ import annotations

import json
import threading
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from bridge.simulation import DEFAULT_MUNICIPALITY, SimulatorRequest, parse_options, simulator_for
from bridge.synthetic.generate import generate


def _settings_toml(name: str, municipality: str, settings: dict[str, Any]) -> str:
    lines = [
        "[[sources]]",
        f'name = "{name}-simulated"',
        f'adapter = "{name}"',
        f'municipality = "{municipality}"',
        "[sources.settings]",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines)


def simulate(  # noqa: PLR0917 - typer turns each parameter into an option
    name: Annotated[str, typer.Argument(help="The adapter whose source system to simulate, e.g. sbsys.")],
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8081,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    cases: Annotated[int, typer.Option(help="Number of cases in the simulated municipality.")] = 2000,
    caseworkers: Annotated[int | None, typer.Option(help="Caseworkers (default: ~1 per 45 cases).")] = None,
    invalid: Annotated[int, typer.Option(help="Cases broken on purpose (they end in quarantine).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic ground truth.")] = 1,
    municipality: Annotated[str, typer.Option(help="Kommunekode of the simulated municipality.")] = (
        DEFAULT_MUNICIPALITY
    ),
    directory: Annotated[
        Path | None,
        typer.Option(
            "--directory",
            "--drop",
            help=(
                "Folder a simulator writes its files to: extracts of file-based sources, "
                "the DUBU simulator's TLS certificates."
            )
        ),
    ] = None,
    nights: Annotated[
        int | None, typer.Option(help="Nights of extract sets a file-based simulator writes (csc-social: 3).")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Simulator option KEY=VALUE (repeatable), e.g. latency=0.02.")
    ] = None,
) -> None:
    """Serve synthetic cases the way the source system does, until Ctrl-C.

    Prints the ``bridge.toml`` source block that syncs from it.
    """
    name = name.replace("-", "_")  # csc-social names the csc_social adapter
    factory = simulator_for(name)
    workers = caseworkers if caseworkers is not None else max(1, round(cases / 45))
    truth = generate(
        seed=seed,
        municipalities=1,
        caseworkers=workers,
        cases=cases,
        invalid=invalid,
        as_of=date.today(),
        municipality_codes=[municipality],
    )
    options = parse_options(set_ or [])
    if nights is not None:
        options["nights"] = str(nights)
    request = SimulatorRequest(truth=truth, host=host, port=port, directory=directory, options=options)
    with factory(request) as running:
        where = "at" if running.serving else "written to"
        typer.echo(f"{name} simulator with {len(truth.cases)} cases {where} {running.location}")
        typer.echo("Sync from it with this source in bridge.toml:\n")
        typer.echo(_settings_toml(name, municipality, running.settings))
        if not running.serving:  # a file-based simulator is done once its files are written
            return
        typer.echo("\nPress Ctrl-C to stop.")
        try:
            _wait_until_interrupted()
        except KeyboardInterrupt:
            typer.echo("stopped")


def _wait_until_interrupted() -> None:
    threading.Event().wait()
