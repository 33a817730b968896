"""``bridge import-dst``: a Danmarks Statistik delivery (L201, L231) as measures of a source's cases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bridge.cli.common import FormatOption, list_format, load, open_bridge_store
from bridge.cli.output import emit


def import_dst(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The delivery file (L201 or L231 XML), as sent to Danmarks Statistik.")],
    source: Annotated[str, typer.Option("--source", help="The configured source whose cases the measures belong to.")],
    codes: Annotated[
        Path | None, typer.Option(help="A TOML code list that corrects or extends the DST measure codes.")
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """Import a Danmarks Statistik delivery as measures of a source's cases.

    Every fagsystem reports its children's measures to Danmarks Statistik (L201: forebyggende
    foranstaltninger for udsatte børn og unge; L231: børn med handicap). Each entry is matched to
    the source's case of the same child and kept beside the source's own measures; a measure the
    source reports itself is left out. Entries with a bad CPR, an unknown code or an end before
    their start go to the quarantine with a reason (`bridge quarantine list`). Importing the same
    file again changes nothing. Exit code 4 when entries were quarantined.

    Example: bridge import-dst L201-2024-06.xml --source aalborg-dubu
    """
    from bridge.dst.importer import import_delivery

    config = load(ctx)
    store = open_bridge_store(ctx)
    try:
        result = import_delivery(store, config, source, file, codes_file=codes)
    finally:
        store.dispose()
    rows = [
        ("entries read", result.entries),
        ("measures added", result.inserted),
        ("measures changed", result.updated),
        ("measures unchanged", result.unchanged),
        ("already reported by the source", result.known),
        ("quarantined", result.quarantined),
    ]
    rows += [(f"  {reason}", count) for reason, count in sorted(result.reasons.items())]
    emit(f"DST import into {source} (run {result.run_id})", ("", "count"), rows, list_format(ctx, fmt))
    raise typer.Exit(4 if result.quarantined else 0)
