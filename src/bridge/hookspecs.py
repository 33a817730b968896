"""Every pluggy hook of bridge, with its contract.

Plugins implement these with ``@bridge.hookimpl``. Registration hooks receive a
``register`` callback: core validates what is registered, owns duplicate-name errors
and messages, and plugins stay thin. Core's own pieces register the same way.

Core code never calls ``pm.hook.*`` directly; it goes through :class:`bridge.plugins.Plugins`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from bridge.adapter import Adapter
    from bridge.law.rule import AuditRule
    from bridge.reports.formats import ReportFormat
    from bridge.services.workload import AssignmentRule, WeightedCase

PROJECT = "bridge"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def bridge_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    """Register source-system adapters by calling ``register(AdapterClass)`` once per class.

    The class must subclass :class:`bridge.adapter.Adapter` and set ``name`` (lower case
    letters, digits, ``_``; unique among all installed adapters) and ``Config``. Core
    rejects anything else with a :class:`bridge.errors.PluginError` naming the plugin.
    Return value is ignored.
    """


@hookspec
def bridge_register_report_formats(register: Callable[[ReportFormat], None]) -> None:
    """Register output formats for service results by calling ``register(format)``.

    ``format.name`` is what ``--format`` accepts (unique); ``format.suffix`` is the file
    ending used for ``--out`` defaults. A format renders a :class:`bridge.reports.formats.Report`
    to bytes and must not add person data the report does not hold. Return value is ignored.
    """


@hookspec
def bridge_register_audit_rules(register: Callable[[AuditRule], None]) -> None:
    """Register checklist items for the ledelsestilsyn by calling ``register(rule)`` once per rule.

    ``rule`` is an instance of a :class:`bridge.law.AuditRule` subclass: ``id`` (lower case
    letters, digits, ``_``; unique among all installed rules), a Danish ``title`` and
    ``description``, the Børnesagsbarometret ``area`` and case ``step`` it belongs to, the
    ``sources`` (act and paragraph) it applies, and ``check(case, as_of)``, which returns the
    checks of one case's timeline and must not raise on incomplete data. A
    :class:`bridge.law.JudgementRule` is a question for the leader's sheet that is never checked
    automatically. Core's own rules register through this hook too. Core rejects anything else
    with a :class:`bridge.errors.PluginError` naming the plugin. Return value is ignored.
    """


@hookspec(firstresult=True)
def bridge_case_weight(case: WeightedCase) -> float | None:
    """The workload weight of one open case, or None to leave it to the next plugin or to ``[workload]``.

    ``case`` is a :class:`bridge.services.workload.WeightedCase`: the case number, municipality,
    team, target group, the open measures (act and paragraph), whether one is a placement, whether
    a notification came recently, and ``weight``, the weight ``bridge.toml``'s ``[workload]`` table
    gives it — so a plugin may scale that weight or replace it. It holds no person key and no CPR
    number. The first implementation to return a number wins (``firstresult``); the return value
    must be a finite number ≥ 0, in the same unit as the configured weights (an udsatte case
    without extras weighs 1). Anything else stops the computation with a
    :class:`bridge.errors.PluginError` naming the case number. Called once per open case, so keep
    it cheap: no I/O.
    """


@hookspec
def bridge_register_assignment_rules(register: Callable[[AssignmentRule], None]) -> None:
    """Register a municipality's rule for who takes a new case by calling ``register(rule)`` once per rule.

    ``rule`` is an instance of a :class:`bridge.services.workload.AssignmentRule` subclass: a
    lower-case ``name`` (unique among installed rules) that ``[workload.assignment] rule = "…"``
    selects, a Danish ``description``, a pydantic ``Config`` validated from
    ``[workload.assignment.settings]``, and ``choose(case, candidates, settings)``, which returns a
    :class:`bridge.services.workload.RuleChoice` (the caseworkers the rule points at, and the reason
    in Danish) or None when the rule does not decide the case. Core's own rules (``birthday``,
    ``team``) register through this hook too. Core rejects anything else with a
    :class:`bridge.errors.PluginError` naming the plugin. Return value is ignored.
    """
