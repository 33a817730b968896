"""``bridge simulate NAME``: serve the synthetic ground truth the way a source system does.

An adapter offers a simulator by naming it in a class attribute, without core knowing
the plugin::

    class SbsysAdapter(Adapter):
        name = "sbsys"
        simulator = "bridge_sbsys.simulator:simulate"   # "module:attribute", or the callable

The named callable is a :data:`SimulatorFactory`: given a :class:`SimulatorRequest` it
returns a context manager that starts the simulator, yields a :class:`RunningSimulator`
saying where it is and which adapter settings reach it, and stops it on exit. HTTP
simulators serve on ``request.host:request.port`` (port 0: any free port); file-based ones
write into ``request.directory``. ``request.options`` are simulator-specific knobs
(``--set latency=0.02``) that the simulator validates itself.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from bridge.config import SourceSettings
from bridge.errors import ConfigError, PluginError
from bridge.plugins import get_plugins
from bridge.testing.truth import GroundTruth

DEFAULT_MUNICIPALITY = "461"


@dataclass(frozen=True)
class SimulatorRequest:
    """What ``bridge simulate`` (or a test, or the demo) asks a simulator to serve."""

    truth: GroundTruth
    host: str = "127.0.0.1"
    port: int = 0
    directory: Path | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunningSimulator:
    """Where a started simulator is, and the adapter settings that reach it."""

    location: str
    """Base URL, or the folder a file-based simulator writes."""
    settings: dict[str, Any]
    """The ``[sources.settings]`` of a ``bridge.toml`` source that reads this simulator."""
    handle: Any = None
    """The simulator's own object, for tests and the demo (e.g. to modify cases)."""


SimulatorFactory = Callable[[SimulatorRequest], AbstractContextManager[RunningSimulator]]


def simulator_for(adapter_name: str) -> SimulatorFactory:
    """The simulator the installed adapter ``adapter_name`` names in its ``simulator`` attribute."""
    cls = get_plugins().adapter(adapter_name)
    target = getattr(cls, "simulator", None)
    if target is None:
        raise ConfigError(f"the {adapter_name} adapter ships no simulator")
    if callable(target):
        return target  # type: ignore[no-any-return]
    if not isinstance(target, str) or ":" not in target:
        raise PluginError(f"the {adapter_name} adapter's `simulator` must be 'module:attribute' or a callable")
    module_name, _, attribute = target.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"the {adapter_name} adapter's simulator {target!r} cannot be loaded: {exc}") from None
    if not callable(factory):
        raise PluginError(f"the {adapter_name} adapter's simulator {target!r} is not callable")
    return factory  # type: ignore[no-any-return]


def has_simulator(adapter_name: str) -> bool:
    """Whether the installed adapter ``adapter_name`` names a simulator."""
    return getattr(get_plugins().adapter(adapter_name), "simulator", None) is not None


@contextmanager
def simulated(
    source: SourceSettings, truth: GroundTruth, options: dict[str, str] | None = None
) -> Iterator[RunningSimulator]:
    """Serve ``truth`` with the simulator of ``source.adapter``; meanwhile ``source`` reads it.

    For the demo and tests: while the block runs, ``source.settings`` are the running
    simulator's connection settings (whatever they were, e.g. the generator's parameters);
    afterwards they are restored.
    """
    factory = simulator_for(source.adapter)
    original = source.settings
    with factory(SimulatorRequest(truth=truth, options=options or {})) as running:
        source.settings = dict(running.settings)
        try:
            yield running
        finally:
            source.settings = original


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``["latency=0.02", "error_rate=0.1"]`` as a dict; a pair without ``=`` is a usage error."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {pair!r}")
        options[key.strip()] = value.strip()
    return options


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
        Path | None, typer.Option(help="Folder for simulators that write files instead of serving HTTP.")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Simulator option KEY=VALUE (repeatable), e.g. latency=0.02.")
    ] = None,
) -> None:
    """Serve synthetic cases the way the source system does, until Ctrl-C.

    Prints the ``bridge.toml`` source block that syncs from it.
    """
    from bridge.testing.generate import generate

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
    request = SimulatorRequest(
        truth=truth, host=host, port=port, directory=directory, options=parse_options(set_ or [])
    )
    with factory(request) as running:
        typer.echo(f"{name} simulator with {len(truth.cases)} cases at {running.location}")
        typer.echo("Sync from it with this source in bridge.toml:\n")
        typer.echo(_settings_toml(name, municipality, running.settings))
        typer.echo("\nPress Ctrl-C to stop.")
        try:
            _wait_until_interrupted()
        except KeyboardInterrupt:
            typer.echo("stopped")


def _wait_until_interrupted() -> None:
    threading.Event().wait()
