"""The law the audit checks read: which act is in force on a day, deadlines in calendar months,
the checklist rules and what a rule returns.

The rule set is chosen by date: Serviceloven (SEL, LBK nr. 170 af 24/01/2022 and earlier) until
2023-12-31, Barnets lov (BL, LBK nr. 282 af 17/03/2025) from 2024-01-01. Each built-in rule in
:mod:`bridge.law.rules` cites the paragraph it checks and says where its deadline comes from.
"""

from bridge.law.calendar import BARNETS_LOV, act_in_force, add_months
from bridge.law.rule import Area, AuditRule, Check, Citation, JudgementRule, Outcome, Step
from bridge.law.timeline import EventFact, MeasureFact, Timeline

__all__ = [
    "BARNETS_LOV",
    "Area",
    "AuditRule",
    "Check",
    "Citation",
    "EventFact",
    "JudgementRule",
    "MeasureFact",
    "Outcome",
    "Step",
    "Timeline",
    "act_in_force",
    "add_months",
]
