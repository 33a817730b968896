"""The core model: records (what adapters yield) and tables (what is stored)."""

# Registers the ledelsestilsyn tables and the accepted handover plans beside the core tables.
import bridge.model.audit
import bridge.model.handover  # noqa: F401
from bridge.model.records import (
    Act,
    AssessmentRecord,
    CaseEventRecord,
    CaseRecord,
    CaseStatus,
    CaseworkerRecord,
    EventKind,
    MeasureRecord,
    TargetGroup,
    Theme,
)

__all__ = [
    "Act",
    "AssessmentRecord",
    "CaseEventRecord",
    "CaseRecord",
    "CaseStatus",
    "CaseworkerRecord",
    "EventKind",
    "MeasureRecord",
    "TargetGroup",
    "Theme",
]
