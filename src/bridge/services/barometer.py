"""The barometer: every automatic indicator on every live case, per period, like Børnesagsbarometret.

For each period and group (all, municipality, team or caseworker) and each automatic rule, a
case counts once: its checks *due* in the period (the deadline, or the day the requirement
applied) give one outcome by :func:`bridge.services.audit.rule_outcome` — a failed check fails
the case, else a passed one passes it. The share is passed / (passed + failed): cases not yet
due or where the rule is not relevant are counted but not in the share. Failing cases are listed
by case number, never by person.

The store is read as a stream of timelines in bounded chunks (:func:`bridge.services.audit.timelines`),
so memory holds the counts and the failing case numbers, not the cases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from bridge.errors import ConfigError
from bridge.law import Area, Check, Outcome
from bridge.services.audit import CaseInfo, audit_rules, check_case, rule_outcome, timelines
from bridge.services.labels import municipality_label, municipality_names
from bridge.services.periods import Period
from bridge.store import Store

BarometerBy = Literal["all", "municipality", "team", "caseworker"]
BY_VALUES: tuple[BarometerBy, ...] = ("all", "municipality", "team", "caseworker")
ALL = "Alle sager"


@dataclass
class Indicator:
    """One rule in one period and group: cases by outcome and the failing case numbers."""

    rule: str
    title: str
    area: Area
    period: str
    group: str
    passed: int = 0
    failed: int = 0
    not_yet_due: int = 0
    not_relevant: int = 0
    failing: list[str] = field(default_factory=list)

    @property
    def judged(self) -> int:
        return self.passed + self.failed

    @property
    def share(self) -> float | None:
        """Share of the judged cases that pass, 0..1; None when no case was due."""
        return self.passed / self.judged if self.judged else None


@dataclass(frozen=True)
class Barometer:
    as_of: date
    by: BarometerBy
    periods: list[Period]
    indicators: list[Indicator]
    cases: int

    def rows(self, period: str | None = None, group: str | None = None) -> list[Indicator]:
        return [
            i for i in self.indicators if (period is None or i.period == period) and (group is None or i.group == group)
        ]


def default_periods(as_of: date, years: int = 3) -> list[Period]:
    return [Period.parse(str(year)) for year in range(as_of.year - years + 1, as_of.year + 1)]


def _group(info: CaseInfo, by: BarometerBy, names: dict[str, str]) -> str:
    if by == "municipality":
        return municipality_label(info.municipality, names.get(info.municipality))
    if by == "team":
        return info.team
    if by == "caseworker":
        return info.caseworker
    return ALL


def barometer(
    store: Store,
    *,
    periods: Sequence[Period] | None = None,
    by: BarometerBy = "all",
    as_of: date | None = None,
    municipality: str | None = None,
) -> Barometer:
    """Each automatic indicator's share of cases passing, per period and group, over all live cases."""
    if by not in BY_VALUES:
        raise ConfigError(f"cannot group the barometer by {by!r}; use one of {', '.join(BY_VALUES)}")
    as_of = as_of or date.today()
    spans = list(periods) if periods else default_periods(as_of)
    rules = audit_rules(automatic=True)
    order = {rule.id: i for i, rule in enumerate(rules)}
    names = municipality_names(store) if by == "municipality" else {}
    found: dict[tuple[str, str, str], Indicator] = {}
    cases = 0
    for info, case in timelines(store, municipality=municipality):
        cases += 1
        group = _group(info, by, names)
        checks = check_case(case, as_of, rules)
        for span in spans:
            due_here: dict[str, list[Check]] = defaultdict(list)
            for check in checks:
                if check.due is not None and span.contains(check.due):
                    due_here[check.rule].append(check)
            for rule in rules:
                outcome = rule_outcome(due_here.get(rule.id, ()))
                if outcome is Outcome.not_relevant and rule.id not in due_here:
                    continue  # nothing of this rule fell due in the period for this case
                key = (span.label, group, rule.id)
                indicator = found.get(key)
                if indicator is None:
                    indicator = found[key] = Indicator(rule.id, rule.title, rule.area, span.label, group)
                _count(indicator, outcome, info.case_number)
    period_order = {p.label: i for i, p in enumerate(spans)}
    indicators = sorted(found.values(), key=lambda i: (period_order[i.period], i.group, order[i.rule]))
    for indicator in indicators:
        indicator.failing.sort()
    return Barometer(as_of, by, spans, indicators, cases)


def _count(indicator: Indicator, outcome: Outcome, case_number: str) -> None:
    if outcome is Outcome.passed:
        indicator.passed += 1
    elif outcome is Outcome.failed:
        indicator.failed += 1
        indicator.failing.append(case_number)
    elif outcome is Outcome.not_yet_due:
        indicator.not_yet_due += 1
    else:
        indicator.not_relevant += 1


__all__ = ["ALL", "BY_VALUES", "Barometer", "BarometerBy", "Indicator", "barometer", "default_periods"]
