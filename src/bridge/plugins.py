"""The plugin manager and a typed facade over it.

Plugins are modules (or objects) with ``@hookimpl`` functions from :mod:`bridge.hookspecs`.
Core's own pieces are registered first, then every entry point in group ``bridge``,
limited by the environment variable ``BRIDGE_LOAD_PLUGINS`` when it is set (a comma
separated allow-list of entry-point names; empty means none).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, TypeVar

import pluggy
from pydantic import BaseModel

from bridge import hookspecs
from bridge.adapter import Adapter
from bridge.errors import ConfigError, PluginError
from bridge.law.rule import AuditRule, JudgementRule
from bridge.reports.formats import ReportFormat

if TYPE_CHECKING:
    from bridge.services.workload import AssignmentRule, WeightedCase

BUILTIN_PLUGINS = ("bridge.synthetic.adapter", "bridge.reports.builtin", "bridge.law.rules", "bridge.services.workload")
ENTRY_POINT_GROUP = "bridge"
ALLOW_LIST_ENV = "BRIDGE_LOAD_PLUGINS"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SIMULATOR = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

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


def _origin(item: object) -> str:
    """Where a registered class or object is defined, so errors point at the plugin."""
    cls = item if isinstance(item, type) else type(item)
    return f"{cls.__module__}.{cls.__qualname__}"


def _collect(
    hook: Callable[..., object], accept: Callable[[T], str], what: str
) -> dict[str, T]:
    found: dict[str, T] = {}

    def register(item: T) -> None:
        name = accept(item)
        if name in found:
            raise PluginError(
                f"the {what} name {name!r} is registered twice, by {_origin(found[name])} and by "
                f"{_origin(item)}; uninstall one, or leave it out of {ALLOW_LIST_ENV}"
            )
        found[name] = item

    hook(register=register)
    return found


def _accept_adapter(cls: type[Adapter]) -> str:
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise PluginError(f"{cls!r} was registered as an adapter but does not subclass bridge.adapter.Adapter")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(f"adapter {_origin(cls)} needs a lower-case `name` (letters, digits, _)")
    if not (isinstance(cls.Config, type) and issubclass(cls.Config, BaseModel)):
        raise PluginError(f"adapter {name!r} ({_origin(cls)}) needs a pydantic `Config` class")
    simulator = cls.simulator
    if simulator is not None and not (isinstance(simulator, str) and _SIMULATOR.match(simulator)):
        raise PluginError(
            f"adapter {name!r} ({_origin(cls)}) declares simulator {simulator!r}; "
            "it must be None or 'module:attribute' naming a simulator factory"
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise PluginError(f"adapter {name!r} ({_origin(cls)}) does not implement {missing}")
    return name


def _accept_format(fmt: ReportFormat) -> str:
    name = getattr(fmt, "name", None)
    suffix = getattr(fmt, "suffix", None)
    if (
        not isinstance(name, str)
        or not _NAME.match(name)
        or not isinstance(suffix, str)
        or not callable(getattr(fmt, "render", None))
    ):
        raise PluginError(
            f"{fmt!r} ({_origin(fmt)}) is not a report format: it needs a lower-case `name` "
            "(letters, digits, _), a `suffix` string and a `render(report)` method"
        )
    return name


def _accept_rule(rule: AuditRule) -> str:
    if not isinstance(rule, AuditRule):
        raise PluginError(
            f"{rule!r} ({_origin(rule)}) was registered as an audit rule but is not an instance of bridge.law.AuditRule"
        )
    rule_id = getattr(rule, "id", None)
    if not isinstance(rule_id, str) or not _NAME.match(rule_id):
        raise PluginError(f"audit rule {_origin(rule)} needs a lower-case `id` (letters, digits, _)")
    missing = [a for a in ("title", "description", "area", "step", "sources") if not getattr(rule, a, None)]
    if missing:
        raise PluginError(f"audit rule {rule_id!r} ({_origin(rule)}) does not set {', '.join(missing)}")
    if rule.automatic == isinstance(rule, JudgementRule):
        raise PluginError(f"audit rule {rule_id!r} ({_origin(rule)}): judgement rules subclass JudgementRule")
    return rule_id


def _accept_assignment_rule(rule: AssignmentRule) -> str:
    from bridge.services.workload import AssignmentRule

    if not isinstance(rule, AssignmentRule):
        raise PluginError(
            f"{rule!r} ({_origin(rule)}) was registered as an assignment rule but is not an instance of "
            "bridge.services.workload.AssignmentRule"
        )
    name = getattr(rule, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(f"assignment rule {_origin(rule)} needs a lower-case `name` (letters, digits, _)")
    config = getattr(rule, "Config", None)
    if not getattr(rule, "description", None) or not (isinstance(config, type) and issubclass(config, BaseModel)):
        raise PluginError(f"assignment rule {name!r} ({_origin(rule)}) needs a `description` and a pydantic `Config`")
    return name


def _checked_weight(case: WeightedCase, result: object) -> float:
    """A plugin's weight for ``case``: None keeps the configured one; anything but a number ≥ 0 is an error."""
    if result is None:
        return case.weight
    if isinstance(result, bool) or not isinstance(result, int | float) or not math.isfinite(result) or result < 0:
        raise PluginError(
            f"bridge_case_weight returned {result!r} for case {case.case_number}; a weight is a finite number ≥ 0"
        )
    return float(result)


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
            allowed = os.environ.get(ALLOW_LIST_ENV)
            limit = "" if allowed is None else f"; {ALLOW_LIST_ENV}={allowed!r} limits which plugins load"
            raise ConfigError(f"no adapter named {name!r} is installed (installed: {known}){limit}")
        return adapters[name].adapter

    def audit_rules(self) -> dict[str, AuditRule]:
        """Installed checklist rules by id, core's first, in registration order."""
        return _collect(self.pm.hook.bridge_register_audit_rules, _accept_rule, "audit rule")

    def report_formats(self) -> dict[str, ReportFormat]:
        return _collect(self.pm.hook.bridge_register_report_formats, _accept_format, "report format")

    def assignment_rules(self) -> dict[str, AssignmentRule]:
        """Installed rules for who takes a new case, by name (core's ``birthday`` and ``team`` first)."""
        return _collect(self.pm.hook.bridge_register_assignment_rules, _accept_assignment_rule, "assignment rule")

    def weighs_cases(self) -> bool:
        """Whether any plugin implements ``bridge_case_weight`` (else the weights are ``[workload]``'s, in SQL)."""
        return bool(self.pm.hook.bridge_case_weight.get_hookimpls())

    def case_weight(self, case: WeightedCase) -> float:
        """The first plugin's weight of ``case``, or its configured weight when every plugin returns None."""
        return _checked_weight(case, self.pm.hook.bridge_case_weight(case=case))


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
        _register(pm, plugin, ep.name)


def _register(pm: pluggy.PluginManager, plugin: object, name: str | None) -> str:
    """Register ``plugin``, turning pluggy's validation errors into a :class:`PluginError`.

    A hook implementation whose name is no hook of bridge (a typo) is an error here, not a
    plugin that silently does nothing.
    """
    label = repr(name) if name else _origin(plugin)
    try:
        plugin_name = pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"plugin {label} cannot be registered: {exc}") from exc
    if plugin_name is None:
        raise PluginError(f"plugin {label} is blocked and was not registered")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        pm.unregister(plugin)
        raise PluginError(f"plugin {label} implements a hook bridge does not have: {exc}") from exc
    return plugin_name


def make_plugin_manager() -> pluggy.PluginManager:
    """A new plugin manager: core's built-in plugins, then the allowed entry points."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        _register(pm, importlib.import_module(module_name), module_name)
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
    plugin_name = _register(plugins.pm, plugin, name)
    try:
        yield plugins
    finally:
        plugins.pm.unregister(name=plugin_name)
