"""Core's own report formats, registered through the same hook as any plugin's."""

from __future__ import annotations

from collections.abc import Callable

from bridge.hookspecs import hookimpl
from bridge.reports.formats import ReportFormat
from bridge.reports.html import Html
from bridge.reports.spreadsheet import Xlsx
from bridge.reports.text import Csv, Json, TerminalTable


@hookimpl
def bridge_register_report_formats(register: Callable[[ReportFormat], None]) -> None:
    """Register ``table``, ``csv``, ``json``, ``html`` and ``xlsx``."""
    for fmt in (TerminalTable(), Csv(), Json(), Html(), Xlsx()):
        register(fmt)
