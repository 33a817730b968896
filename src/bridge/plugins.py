"""The plugin manager and a typed facade over it.

Plugins are modules (or objects) with ``@hookimpl`` functions from :mod:`bridge.hookspecs`.
Core's own pieces are registered first, then every entry point in group ``bridge``,
limited by the environment variable ``BRIDGE_LOAD_PLUGINS`` when it is set (a comma
separated allow-list of entry-point names; empty means none).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

import pluggy
from pydantic import BaseModel

from bridge import hookspecs
from bridge.adapter import Adapter
from bridge.errors import ConfigError, PluginError
from bridge.reports.formats import ReportFormat

BUILTIN_PLUGINS = ("bridge.testing.synthetic", "bridge.reports.builtin")
ENTRY_POINT_GROUP = "bridge"
ALLOW_LIST_ENV = "BRIDGE_LOAD_PLUGINS"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

T = TypeVar("T")


@dataclass(frozen=True)
class AdapterInfo:
    """An installed adapter and the distribution that ships it."""

    name: str
    adapter: type[Adapter]
    distribution: str
    version: str
    description: str


def _distribution_of(obj: object) -> tuple[str, str]:
    top = getattr(obj, "__module__", "").split(".")[0]
    names = importlib.metadata.packages_distributions().get(top, [])
    if not names:
        return ("(not installed)", "-")
    return (names[0], importlib.metadata.version(names[0]))


def _collect(
    hook: Callable[..., object], accept: Callable[[T], str], what: str
) -> dict[str, T]:
    found: dict[str, T] = {}

    def register(item: T) -> None:
        name = accept(item)
        if name in found:
            raise PluginError(f"two plugins register the {what} {name!r}; uninstall or disable one")
        found[name] = item

    hook(register=register)
    return found


def _accept_adapter(cls: type[Adapter]) -> str:
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise PluginError(f"{cls!r} was registered as an adapter but does not subclass bridge.adapter.Adapter")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(f"adapter {cls.__qualname__} needs a lower-case `name` (letters, digits, _)")
    if not (isinstance(cls.Config, type) and issubclass(cls.Config, BaseModel)):
        raise PluginError(f"adapter {name!r} needs a pydantic `Config` class")
    return name


def _accept_format(fmt: ReportFormat) -> str:
    name = getattr(fmt, "name", None)
    if not isinstance(name, str) or not _NAME.match(name) or not callable(getattr(fmt, "render", None)):
        raise PluginError(f"{fmt!r} is not a report format (needs `name`, `suffix` and `render`)")
    return name


class Plugins:
    """Typed access to what plugins registered. Build one with :func:`get_plugins`."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def adapters(self) -> dict[str, AdapterInfo]:
        """Installed adapters by name, each with the distribution and version that ships it."""
        classes = _collect(self.pm.hook.bridge_register_adapters, _accept_adapter, "adapter")
        infos = {}
        for name, cls in sorted(classes.items()):
            dist, version = _distribution_of(cls)
            infos[name] = AdapterInfo(name, cls, dist, version, cls.description)
        return infos

    def adapter(self, name: str) -> type[Adapter]:
        adapters = self.adapters()
        if name not in adapters:
            known = ", ".join(adapters) or "none"
            raise ConfigError(f"no adapter named {name!r} is installed (installed: {known})")
        return adapters[name].adapter

    def report_formats(self) -> dict[str, ReportFormat]:
        return _collect(self.pm.hook.bridge_register_report_formats, _accept_format, "report format")


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed_env = os.environ.get(ALLOW_LIST_ENV)
    allowed = None if allowed_env is None else {n.strip() for n in allowed_env.split(",") if n.strip()}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        pm.register(plugin, name=ep.name)


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    _load_entry_points(pm)
    return pm


@cache
def get_plugins() -> Plugins:
    """The process-wide plugin facade (built on first use)."""
    return Plugins(make_plugin_manager())


@contextmanager
def registered(plugin: object, name: str | None = None) -> Iterator[Plugins]:
    """Register ``plugin`` for the duration of a ``with`` block (tests, embedding)."""
    plugins = get_plugins()
    plugin_name = plugins.pm.register(plugin, name=name)
    try:
        yield plugins
    finally:
        plugins.pm.unregister(name=plugin_name)
