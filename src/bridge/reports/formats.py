"""The shape every output format renders, and the protocol a format implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Table:
    """A titled table of plain values (str, int, float, date, None)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


@dataclass(frozen=True)
class Report:
    """A service result ready to render: tables for every format, ``data`` for rich ones."""

    kind: str
    title: str
    tables: Sequence[Table]
    data: Any = None
    notes: Sequence[str] = field(default_factory=tuple)


class ReportFormat(Protocol):
    """An output format, registered through ``bridge_register_report_formats``."""

    name: str
    suffix: str

    def render(self, report: Report) -> bytes:
        """Render ``report`` to the bytes of one file (or of terminal output)."""
        ...
