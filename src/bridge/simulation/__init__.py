"""Simulators: the synthetic ground truth served the way a source system serves it.

An adapter offers a simulator by declaring it in its ``simulator`` class attribute, without
core knowing the plugin::

    class SbsysAdapter(Adapter):
        name = "sbsys"
        simulator = "bridge_sbsys.simulator:simulate"   # "module:attribute"

The named callable is a :data:`SimulatorFactory`: given a :class:`SimulatorRequest` it
returns a context manager that starts the simulator, yields a :class:`RunningSimulator`
saying where it is and which adapter settings reach it, and stops it on exit. HTTP
simulators serve on ``request.host:request.port`` (port 0: any free port); file-based ones
write into ``request.directory``. ``request.options`` are simulator-specific knobs
(``--set latency=0.02``) that the simulator validates itself.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.adapter import Adapter
from bridge.config import BridgeConfig, SimulatedSource, SourceSettings
from bridge.errors import ConfigError, PluginError
from bridge.plugins import get_plugins
from bridge.synthetic.truth import GroundTruth

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
    serving: bool = True
    """False for a simulator that has written its files and is done: ``bridge simulate`` then exits."""


SimulatorFactory = Callable[[SimulatorRequest], AbstractContextManager[RunningSimulator]]


def simulator_for(adapter_name: str) -> SimulatorFactory:
    """The simulator the installed adapter ``adapter_name`` declares in its ``simulator`` attribute."""
    target = get_plugins().adapter(adapter_name).simulator
    if target is None:
        raise ConfigError(f"the {adapter_name} adapter ships no simulator")
    module_name, _, attribute = target.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"the {adapter_name} adapter's simulator {target!r} cannot be loaded: {exc}") from None
    if not callable(factory):
        raise PluginError(f"the {adapter_name} adapter's simulator {target!r} is not callable")
    return factory  # type: ignore[no-any-return]


def has_simulator(adapter_name: str) -> bool:
    """Whether the installed adapter ``adapter_name`` declares a simulator."""
    return get_plugins().adapter(adapter_name).simulator is not None


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


def simulated_adapter(config: BridgeConfig, source: SourceSettings, simulator: SimulatedSource) -> Adapter:
    """The adapter of ``source``, reading its simulator, started now on a free loopback port.

    Closing the adapter stops the simulator, so ``bridge sync``, ``check`` and ``quarantine
    replay`` of a ``[sources.simulator]`` source work like those of a real one.
    """
    truth = simulator.truth(source.municipality)
    stack = ExitStack()
    factory = simulator_for(source.adapter)
    running = stack.enter_context(factory(SimulatorRequest(truth=truth, options=simulator.options)))
    logging.getLogger("bridge.simulation").info(
        "%s simulator serving %d cases for %s at %s", source.adapter, len(truth.cases), source.name, running.location
    )
    try:
        reading = source.model_copy(update={"settings": dict(running.settings), "simulator": None})
        adapter = config.build_adapter(reading)
    except BaseException:
        stack.close()
        raise
    close = adapter.close

    def close_and_stop() -> None:
        try:
            close()
        finally:
            stack.close()

    adapter.close = close_and_stop  # type: ignore[method-assign]
    return adapter


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``["latency=0.02", "error_rate=0.1"]`` as a dict; a pair without ``=`` is a usage error."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {pair!r}")
        options[key.strip()] = value.strip()
    return options
