"""The shape every output format renders, and the protocol a format implements.

A :class:`Report` is a list of :class:`Table` values that every format can render. Whatever
must not be shown (cells describing fewer than five children, person data in aggregate
reports) is taken out while the report is built, so no format can show it by mistake:
formats render what the tables hold and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bridge.reports.charts import Chart


@dataclass(frozen=True)
class Table:
    """A titled table of plain values (str, int, float, date, None).

    ``keys`` are machine names for the columns (JSON keys; default: derived from ``columns``),
    ``section`` groups consecutive tables under one heading, ``charts`` ask formats that can
    draw (HTML) to draw the table's values (see :mod:`bridge.reports.charts`), and ``note`` is
    a line of explanation under it. A column whose label ends in ``(%)`` holds per cents.
    """

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    keys: Sequence[str] | None = None
    section: str = ""
    charts: Sequence[Chart] = ()
    note: str = ""

    def column_keys(self) -> list[str]:
        if self.keys is not None:
            if len(self.keys) != len(self.columns):
                raise ValueError(f"table {self.title!r}: {len(self.keys)} keys for {len(self.columns)} columns")
            return list(self.keys)
        return [column_key(c) for c in self.columns]


def column_key(label: str) -> str:
    """A snake_case key for a column label (ASCII letters, digits and _)."""
    folded = label.lower().replace("æ", "ae").replace("ø", "oe").replace("å", "aa")
    return re.sub(r"[^a-z0-9]+", "_", folded).strip("_") or "column"


def is_percent(column: str) -> bool:
    """Whether a column holds per cents (its label ends in ``(%)``)."""
    return column.rstrip().endswith("(%)")


@dataclass(frozen=True)
class KeyFigure:
    """A number a leader reads first: ``value`` is a number, or a suppression marker."""

    label: str
    value: Any
    percent: bool = False
    note: str = ""


@dataclass(frozen=True)
class Report:
    """A service result ready to render: tables for every format, ``data`` for rich ones.

    ``period`` says what the figures cover (``01.01.2024–31.12.2024``) and ``key_figures``
    are what a leader reads first; every format shows both before the tables.
    """

    kind: str
    title: str
    tables: Sequence[Table]
    data: Any = None
    notes: Sequence[str] = field(default_factory=tuple)
    period: str = ""
    key_figures: Sequence[KeyFigure] = ()


class ReportFormat(Protocol):
    """An output format, registered through ``bridge_register_report_formats``."""

    name: str
    suffix: str

    def render(self, report: Report) -> bytes:
        """Render ``report`` to the bytes of one file (or of terminal output)."""
        ...


def plain(value: Any) -> Any:
    """A cell as JSON/CSV want it: dates in ISO 8601, everything else unchanged."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value
