"""The core model: records (what adapters yield) and tables (what is stored)."""

import bridge.model.audit  # noqa: F401  (registers the ledelsestilsyn tables beside the core tables)
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
