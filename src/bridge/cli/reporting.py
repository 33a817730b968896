"""How every report command writes its report: the format, the file or folder, the CSV dialect.

Commands that produce a :class:`bridge.reports.formats.Report` take the options below and hand
the report to :func:`emit_report`, so every report command behaves alike: ``--format`` picks a
registered report format (default: the global ``--format``), ``--out`` a file or folder, and
CSV, which holds one table per file, writes one file per table into a folder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bridge.cli.common import state
from bridge.cli.output import notice
from bridge.errors import ConfigError
from bridge.plugins import get_plugins
from bridge.reports.formats import Report
from bridge.reports.text import Csv, CsvDialectName

ReportFormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", "-f", help="table, csv, json, html, xlsx or a plugin's format; default: the global --format."
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out", "-o", help="Write the report to this file, or into this folder (CSV: one file per table)."
    ),
]
CsvDialectOption = Annotated[
    CsvDialectName,
    typer.Option(
        "--csv-dialect",
        help="excel-da: ';', decimal comma, BOM (opens in a Danish Excel); machine: ',', decimal point, ISO dates.",
    ),
]


def emit_report(
    ctx: typer.Context, report: Report, fmt: str | None, out: Path | None, csv_dialect: CsvDialectName = "excel-da"
) -> None:
    """Render ``report`` to standard output, a file, or (several CSV tables) a folder of files."""
    name = fmt or state(ctx).list_format
    formats = get_plugins().report_formats()
    if name not in formats:
        raise ConfigError(f"no report format named {name!r} (installed: {', '.join(sorted(formats))})")
    renderer = formats[name]
    if isinstance(renderer, Csv):
        renderer = Csv(csv_dialect)
        if out is not None and (len(report.tables) > 1 or out.is_dir() or not out.suffix):
            out.mkdir(parents=True, exist_ok=True)
            for filename, data in renderer.render_files(report):
                (out / filename).write_bytes(data)
                notice(f"wrote {out / filename}")
            return
    data = renderer.render(report)
    if out is None:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            if sys.stdout.isatty():
                raise ConfigError(f"{name} is a binary format: give --out FILE") from None
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = out / f"{report.kind}.{renderer.suffix}" if out.is_dir() else out
    target.write_bytes(data)
    notice(f"wrote {target}")
