"""What a checklist rule is and what it returns.

A rule checks one requirement of the law on one case's :class:`~bridge.law.timeline.Timeline`
as of a day, and returns a :class:`Check` per subject it applies to (a notification, a measure,
a follow-up interval): **pass**, **fail**, **not yet due** or **not relevant**, with the
deadline, the act and paragraph it applied, and the evidence in Danish. A rule never raises on
odd data: a missing milestone past its deadline is a fail that says so, and before the
deadline it is not yet due.

Rules are registered through the ``bridge_register_audit_rules`` hook; core's own rules in
:mod:`bridge.law.rules` are registered the same way as a municipality's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from bridge.law.timeline import Timeline


class Outcome(StrEnum):
    passed = "pass"
    failed = "fail"
    not_yet_due = "not_yet_due"
    not_relevant = "not_relevant"

    @property
    def label(self) -> str:
        return OUTCOME_LABELS[self]


OUTCOME_LABELS = {
    Outcome.passed: "Opfyldt",
    Outcome.failed: "Ikke opfyldt",
    Outcome.not_yet_due: "Ikke forfalden",
    Outcome.not_relevant: "Ikke relevant",
}


class Area(StrEnum):
    """Børnesagsbarometret's areas, in its order, and the formal requirements after them."""

    faglig_udredning = "faglig_udredning"
    inddragelse = "inddragelse"
    valg_af_indsats = "valg_af_indsats"
    opfoelgning = "opfoelgning"
    underretninger = "underretninger"
    formelle_krav = "formelle_krav"

    @property
    def label(self) -> str:
        return AREA_LABELS[self]


AREA_LABELS = {
    Area.faglig_udredning: "Faglig udredning",
    Area.inddragelse: "Inddragelse",
    Area.valg_af_indsats: "Valg af indsats",
    Area.opfoelgning: "Opfølgning",
    Area.underretninger: "Underretninger",
    Area.formelle_krav: "Formelle krav",
}


class Step(StrEnum):
    """The case steps (sagsskridt) of Social- og Boligstyrelsen's ledelsestilsyn templates."""

    underretning = "underretning"
    undersoegelse = "undersoegelse"
    afgoerelse = "afgoerelse"
    plan = "plan"
    opfoelgning = "opfoelgning"
    dokumentation = "dokumentation"

    @property
    def label(self) -> str:
        return STEP_LABELS[self]


STEP_LABELS = {
    Step.underretning: "Underretning",
    Step.undersoegelse: "Børnefaglig undersøgelse",
    Step.afgoerelse: "Afgørelse og indsats",
    Step.plan: "Barnets plan / handleplan",
    Step.opfoelgning: "Opfølgning",
    Step.dokumentation: "Journal og økonomi",
}


@dataclass(frozen=True, slots=True)
class Citation:
    """A provision: ``source`` is the act's short name (SEL, BL, OFFL, …), ``provision`` e.g. "§ 20, stk. 3"."""

    source: str
    provision: str

    def __str__(self) -> str:
        return f"{self.source} {self.provision}"


@dataclass(frozen=True, slots=True)
class Check:
    """The result of one rule on one subject of a case.

    ``due`` is the deadline (or the day the requirement applied), which also places the check
    in a period; ``open`` is true while the requirement is still unmet (no milestone yet), so a
    failed open check is overdue and a not-yet-due check is upcoming.
    """

    rule: str
    outcome: Outcome
    citation: Citation
    evidence: str
    due: date | None = None
    subject: str = ""
    open: bool = False


class AuditRule(ABC):
    """A checklist item, registered as an instance through ``bridge_register_audit_rules``.

    ``id`` is lower case letters, digits and ``_`` and unique among installed rules; ``title``
    and ``description`` are Danish; ``sources`` are the provisions the rule applies, and the
    class docstring says where each deadline comes from. ``automatic`` rules check the data;
    the others (:class:`JudgementRule`) are left for a person's judgement in the sheet.
    """

    id: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    area: ClassVar[Area]
    step: ClassVar[Step]
    sources: ClassVar[tuple[Citation, ...]]
    automatic: ClassVar[bool] = True

    @abstractmethod
    def check(self, case: Timeline, as_of: date) -> Iterable[Check]:
        """The checks of ``case`` as of ``as_of``. Must not raise on incomplete data."""


class JudgementRule(AuditRule):
    """A checklist item only a person can answer: it is in the sheet, empty, and never checked automatically."""

    automatic: ClassVar[bool] = False

    def check(self, case: Timeline, as_of: date) -> Iterable[Check]:
        return ()


def dato(day: date) -> str:
    """A day as evidence text: 31.10.2023."""
    return day.strftime("%d.%m.%Y")
