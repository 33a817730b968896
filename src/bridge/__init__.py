"""bridge: one store and one set of services over DUBU, CSC Social and SB-SYS.

>>> import bridge
>>> with bridge.open("bridge.toml") as b:          # doctest: +SKIP
...     result = b.sync()
...     cases = b.cases(status="open")
"""

from bridge.api import Bridge, open
from bridge.hookspecs import hookimpl
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

__version__ = "0.1.0"

__all__ = [
    "Act",
    "AssessmentRecord",
    "Bridge",
    "CaseEventRecord",
    "CaseRecord",
    "CaseStatus",
    "CaseworkerRecord",
    "EventKind",
    "MeasureRecord",
    "TargetGroup",
    "Theme",
    "__version__",
    "hookimpl",
    "open",
]
