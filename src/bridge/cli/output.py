"""What the CLI prints: listings as tables or JSON, and log lines for people or for cron."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from bridge.privacy import CprRedactingFilter, mask_cpr

ListFormat = Literal["table", "json"]

console = Console()
err_console = Console(stderr=True)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def emit(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: ListFormat) -> None:
    """Print a listing: a rich table on a terminal, or one JSON array of objects."""
    if fmt == "json":
        data = [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows]
        console.file.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(_plain(v)) for v in row))
    console.print(table)


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line, for cron and orchestrators."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            line["error"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def configure_logging(verbose: bool, *, json_lines: bool | None = None) -> None:
    """Log to stderr, CPR numbers masked: rich on a terminal, JSON lines otherwise."""
    interactive = sys.stderr.isatty() if json_lines is None else not json_lines
    handler: logging.Handler
    if interactive:
        handler = RichHandler(console=err_console, show_path=False, show_time=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLineFormatter())
    handler.addFilter(CprRedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "httpcore", "alembic", "uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {mask_cpr(message)}", highlight=False)
