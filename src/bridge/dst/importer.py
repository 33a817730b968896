"""``bridge import-dst FILE --source NAME``: a DST delivery's measures onto a source's cases.

Each entry's child (by person key) is matched to the source's live cases: the case that was open
when the measure started, else the child's latest case. The measure is kept under
``dst:<ForanstaltningId>`` beside the source's own measures, and a sync that rewrites the case
keeps it. An entry the source itself already reports (its own measure has the same id) is left
out, so nothing is counted twice. Entries that cannot be read or matched go to the quarantine
with a reason. The import is a run of the source in the ledger, under the source's lock; the
source's cursor is left as it is. Importing the same file again changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, select, update

from bridge.adapter import Rejection, XmlRejected
from bridge.config import BridgeConfig
from bridge.dst.codes import load_code_list
from bridge.dst.files import MEASURE_REF_PREFIX, DstEntry, DstMeasure, DstRejection, read_delivery
from bridge.errors import BridgeError
from bridge.model.records import MeasureRecord
from bridge.model.tables import CASES, MEASURES
from bridge.store import Store
from bridge.sync import ledger
from bridge.sync.lifecycle import source_run
from bridge.sync.writer import WriteCounts, quarantine, utcnow

CHUNK = 2000


@dataclass
class ImportResult:
    """What an import did, measure by measure."""

    run_id: int
    entries: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    known: int = 0
    """Entries the source reports itself (its own measure has the same id): left out."""
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def _chunks(entries: Iterable[DstEntry]) -> Iterator[list[DstEntry]]:
    iterator = iter(entries)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk


def import_delivery(
    store: Store, config: BridgeConfig, source_name: str, path: Path, *, codes_file: Path | None = None
) -> ImportResult:
    """Import the L201/L231 file ``path`` as measures of ``source_name``'s cases."""
    source = config.source(source_name)
    persons = config.pseudonymizer()
    codes = load_code_list(codes_file)
    if not path.is_file():
        raise BridgeError(f"{path}: no such file")
    with source_run(store, source, kind="import") as handle:
        result = ImportResult(handle.run_id)
        try:
            for chunk in _chunks(read_delivery(path, codes, persons)):
                with store.transaction() as conn:
                    counts = _apply(conn, source.name, chunk, handle.run_id, result)
                    ledger.add_to_run(conn, handle.run_id, fetched=len(chunk), counts=counts, cursor=handle.cursor)
        except XmlRejected as exc:
            raise BridgeError(f"{path.name} is refused: {exc}") from None
        handle.finish(ledger.QUARANTINED if result.quarantined else ledger.SUCCEEDED)
    return result


@dataclass(frozen=True)
class _Case:
    id: int
    opened: date
    closed: date | None


def _case_for(cases: list[_Case], start: date) -> _Case:
    """The case open when the measure started, else the latest opened."""
    running = [c for c in cases if c.opened <= start and (c.closed is None or start <= c.closed)]
    return max(running or cases, key=lambda c: (c.opened, c.id))


_FIELDS = ("act", "paragraph", "start", "end", "has_grant", "account_code", "provider")


def _row(case_id: int, measure: MeasureRecord) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "source_ref": measure.source_ref,
        "act": measure.act.value,
        "paragraph": measure.paragraph,
        "start": measure.start,
        "end": measure.end,
        "has_grant": measure.has_grant,
        "account_code": measure.account_code,
        "provider": measure.provider,
    }


def _apply(conn: Connection, source: str, chunk: list[DstEntry], run_id: int, result: ImportResult) -> WriteCounts:
    counts = WriteCounts()
    rejections = [Rejection(e.ref, e.reason, e.payload) for e in chunk if isinstance(e, DstRejection)]
    measures = [e for e in chunk if isinstance(e, DstMeasure)]
    keys = sorted({m.child_key for m in measures})
    cases: defaultdict[str, list[_Case]] = defaultdict(list)
    if keys:
        rows = conn.execute(
            select(CASES.c.id, CASES.c.child_key, CASES.c.opened, CASES.c.closed).where(
                and_(CASES.c.source == source, CASES.c.deleted_at.is_(None), CASES.c.child_key.in_(keys))
            )
        )
        for found in rows:
            cases[found.child_key].append(_Case(found.id, found.opened, found.closed))
    placed: dict[tuple[int, str], MeasureRecord] = {}
    for entry in measures:
        if not cases[entry.child_key]:
            rejections.append(
                Rejection(entry.measure.source_ref, f"no case of this child in source {source}", entry.payload)
            )
            continue
        placed[(_case_for(cases[entry.child_key], entry.measure.start).id, entry.measure.source_ref)] = entry.measure
    existing: dict[tuple[int, str], dict[str, Any]] = {}
    case_ids = sorted({case_id for case_id, _ in placed})
    if case_ids:
        for stored in conn.execute(select(MEASURES).where(MEASURES.c.case_id.in_(case_ids))).mappings():
            existing[(stored["case_id"], stored["source_ref"])] = dict(stored)
    inserts: list[dict[str, Any]] = []
    for (case_id, ref), measure in placed.items():
        own = ref.removeprefix(MEASURE_REF_PREFIX)
        if (case_id, own) in existing:
            result.known += 1
            continue
        values = _row(case_id, measure)
        before = existing.get((case_id, ref))
        if before is None:
            inserts.append(values)
            counts.inserted += 1
        elif any(before[name] != values[name] for name in _FIELDS):
            conn.execute(update(MEASURES).where(MEASURES.c.id == before["id"]).values(values))
            counts.updated += 1
        else:
            counts.unchanged += 1
    if inserts:
        conn.execute(MEASURES.insert(), inserts)
    counts.quarantined = quarantine(conn, source, rejections, run_id=run_id, now=utcnow())
    for rejection in rejections:
        result.reasons[rejection.reason] = result.reasons.get(rejection.reason, 0) + 1
    result.entries += len(chunk)
    result.inserted += counts.inserted
    result.updated += counts.updated
    result.unchanged += counts.unchanged
    result.quarantined += counts.quarantined
    return counts
