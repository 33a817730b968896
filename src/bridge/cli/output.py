"""What the CLI prints: results on stdout, messages on stderr — for people on a terminal, for programs otherwise.

- **Results** (listings, a sync's runs) go to stdout: a table on a terminal, tab-separated
  plain text when stdout is not a terminal, or JSON with ``--format json``.
- **Messages** go to stderr: coloured lines on a terminal; under cron (stderr not a terminal)
  every line is one JSON object (time, level, logger, message and the fields the message
  carries, e.g. run id, source, status, counters, duration), and nothing else is written there.
- **Failures** end with one line on stderr and, with ``--format json``, a JSON result on stdout.

No text from outside (a server's reason phrase, a source name, a stored error) is ever read as
rich markup: the consoles have markup switched off, and styled lines are built as ``Text``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from bridge.privacy import CprRedactingFilter, mask_cpr

ListFormat = Literal["table", "json"]



def make_console(*, stderr: bool = False, **options: Any) -> Console:
    """A console that never reads markup in what it prints (``options`` for tests: file, width…)."""
    return Console(stderr=stderr, markup=False, highlight=False, **options)


console = make_console()
err_console = make_console(stderr=True)
log = logging.getLogger("bridge.cli")


@dataclass
class _Mode:
    json_result: bool = False
    """A command's result was asked for as JSON (``--format json``), failures included."""
    json_lines: bool = False
    """stderr is not a terminal: messages are JSON log lines."""


mode = _Mode()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def print_json(document: Any) -> None:
    """A command's result as JSON on stdout."""
    console.file.write(json.dumps(document, ensure_ascii=False, indent=2, default=_plain) + "\n")
    console.file.flush()


def emit(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: ListFormat) -> None:
    """Print a listing: JSON (an array of objects), a table on a terminal, or tab-separated text."""
    if fmt == "json":
        print_json([{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows])
        return
    cells = [["" if v is None else str(_plain(v)) for v in row] for row in rows]
    if not console.is_terminal:
        lines = ["\t".join(columns), *("\t".join(c.replace("\t", " ").replace("\n", " ") for c in r) for r in cells)]
        console.file.write("\n".join(lines) + "\n")
        return
    table = Table(title=Text(title), title_justify="left")
    for column in columns:
        table.add_column(Text(column))
    for row in cells:
        table.add_row(*(Text(v) for v in row))
    console.print(table)


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line, for cron and orchestrators; a record's ``fields`` become keys."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update({k: _plain(v) for k, v in fields.items() if k not in line})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["error"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(verbose: bool, *, json_lines: bool | None = None) -> None:
    """Log to stderr, CPR numbers masked: rich on a terminal, JSON lines otherwise."""
    interactive = err_console.is_terminal if json_lines is None else not json_lines
    mode.json_lines = not interactive
    handler: logging.Handler
    if interactive:
        handler = RichHandler(console=err_console, show_path=False, show_time=False, markup=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLineFormatter())
    handler.addFilter(CprRedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)  # a library's warning is a log line too, JSON under cron
    for noisy in ("httpx", "httpcore", "alembic", "uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


_STYLES = {"ok": "green", "failed": "red", "skipped": "yellow", "error": "bold red"}


def notice(message: str, *, label: str = "", level: int = logging.INFO, **fields: Any) -> None:
    """A message for whoever runs the command: a line on a terminal, a JSON log line under cron.

    ``label`` (ok, failed, skipped) leads the line, coloured on a terminal; ``fields`` are
    the structured facts (source, run_id, status, …) a JSON line carries as its own keys.
    """
    text = mask_cpr(message)
    if mode.json_lines:
        if label:
            fields.setdefault("status", label)
        log.log(level, text, extra={"fields": fields})
        return
    line = Text()
    if label:
        line.append(f"{label:<7}", style=_STYLES.get(label, ""))
        line.append(" ")
    line.append(text)
    err_console.print(line)


def fail(message: str, exit_code: int = 1) -> None:
    """A failure's one line on stderr and, with ``--format json``, its result on stdout."""
    text = mask_cpr(message)
    if mode.json_result:
        print_json({"status": "error", "error": text, "exit_code": exit_code})
    if mode.json_lines:
        log.error(text, extra={"fields": {"status": "error", "exit_code": exit_code}})
        return
    line = Text("error: ", style="bold red")
    line.append(text)
    err_console.print(line)
