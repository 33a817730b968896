"""Writing batches: upsert by ``(source, source_ref)`` with a content hash, in bulk.

Everything here runs inside the caller's transaction, so a batch, its children, its
quarantined records and its cursor become visible together or not at all. Rows are
written through SQLAlchemy Core with the dialect's ON CONFLICT, never one by one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Table, and_, any_, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bridge.adapter import Kept, Rejection
from bridge.dst.files import MEASURE_REF_PREFIX as DST_MEASURE_PREFIX
from bridge.model.records import CaseRecord
from bridge.model.tables import ASSESSMENTS, CASES, CASEWORKERS, EVENTS, MEASURES, MUNICIPALITIES, QUARANTINE
from bridge.privacy import redact
from bridge.store import Store

# Well under SQLite's bound-parameter limit; on PostgreSQL a chunk is one array parameter.
_CHUNK = 2000

QUARANTINE_PAYLOAD_LIMIT = 256 * 1024
"""The most of a rejected payload the quarantine keeps, in UTF-8 bytes; a larger one is kept as its prefix.

Its ``payload_hash`` is then the hash of the whole payload as received (and its size is in the
reason), so a record of 200 MB costs the store a quarter of a megabyte, not 200 MB."""


@dataclass
class WriteCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0

    def __iadd__(self, other: WriteCounts) -> WriteCounts:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.quarantined += other.quarantined
        return self


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str], update_cols: list[str]) -> None:
    if not rows:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table)
    if update_cols:
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_={col: stmt.excluded[col] for col in update_cols})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    conn.execute(stmt, rows)


def one_of(conn: Connection, column: Column[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN (values)``, written so the index is used at any table size.

    On PostgreSQL it is ``column = ANY(:array)``: one parameter whatever the count, so the generic
    plan psycopg's prepared statements get after five runs still uses the index, where an IN list
    of hundreds of parameters got a plan that scanned the table (1.08 s against 0.026 s per batch
    at 120k cases). SQLite plans every statement afresh and keeps the IN list.
    """
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def ensure_municipality(conn: Connection, code: str, name: str | None) -> None:
    """Make sure the municipality row exists; a configured name wins over an older one."""
    upsert(conn, MUNICIPALITIES, [{"code": code, "name": name or code}], ["code"], ["name"] if name else [])


def _existing(conn: Connection, source: str, refs: Sequence[str]) -> dict[str, tuple[str, datetime | None]]:
    found: dict[str, tuple[str, datetime | None]] = {}
    for chunk in _chunks(refs):
        rows = conn.execute(
            select(CASES.c.source_ref, CASES.c.content_hash, CASES.c.deleted_at).where(
                and_(CASES.c.source == source, one_of(conn, CASES.c.source_ref, chunk))
            )
        )
        found.update({ref: (digest, deleted) for ref, digest, deleted in rows})
    return found


def _caseworker_ids(conn: Connection, source: str, records: Sequence[CaseRecord]) -> dict[str, int]:
    workers = {r.caseworker.source_ref: (r.caseworker, r.municipality) for r in records if r.caseworker}
    rows = [
        {"source": source, "source_ref": ref, "municipality": muni, "name": w.name, "unit": w.unit}
        for ref, (w, muni) in sorted(workers.items())
    ]
    upsert(conn, CASEWORKERS, rows, ["source", "source_ref"], ["name", "unit", "municipality"])
    ids: dict[str, int] = {}
    for chunk in _chunks(sorted(workers)):
        result = conn.execute(
            select(CASEWORKERS.c.source_ref, CASEWORKERS.c.id).where(
                and_(CASEWORKERS.c.source == source, one_of(conn, CASEWORKERS.c.source_ref, chunk))
            )
        )
        ids.update((row.source_ref, row.id) for row in result)
    return ids


def _case_row(
    source: str, record: CaseRecord, digest: str, *, worker_id: int | None, run_id: int | None, now: datetime
) -> dict[str, Any]:
    return {
        "source": source,
        "source_ref": record.source_ref,
        "municipality": record.municipality,
        "child_key": record.child_key,
        "child_birth_date": record.child_birth_date,
        "child_sex": record.child_sex,
        "child_cpr": record.child_cpr,
        "family_key": record.family_key,
        "family_case_number": record.family_case_number,
        "caseworker_id": worker_id,
        "case_number": record.case_number,
        "kle": record.kle,
        "target_group": record.target_group.value,
        "opened": record.opened,
        "closed": record.closed,
        "status": record.status.value,
        "source_modified": record.source_modified,
        "content_hash": digest,
        "deleted_at": None,
        "synced_at": now,
        "changed_run_id": run_id,
    }


_CASE_UPDATE = [c.name for c in CASES.columns if c.name not in ("id", "source", "source_ref")]


def _children(case_id: int, record: CaseRecord) -> tuple[list[dict[str, Any]], ...]:
    measures = [
        {
            "case_id": case_id,
            "source_ref": m.source_ref,
            "act": m.act.value,
            "paragraph": m.paragraph,
            "start": m.start,
            "end": m.end,
            "has_grant": m.has_grant,
            "account_code": m.account_code,
            "provider": m.provider,
        }
        for m in record.measures
    ]
    assessments = [
        {
            "case_id": case_id,
            "theme": a.theme.value,
            "value": a.value,
            "assessed_on": a.assessed_on,
            "assessor": a.assessor,
        }
        for a in record.assessments
    ]
    events = [
        {
            "case_id": case_id,
            "kind": e.kind.value,
            "occurred_on": e.occurred_on,
            "occurred_at": e.occurred_at,
            "source_ref": e.source_ref,
        }
        for e in record.events
    ]
    return measures, assessments, events


def write_records(
    conn: Connection,
    source: str,
    records: Iterable[CaseRecord],
    *,
    run_id: int | None,
    now: datetime,
    kept: Mapping[str, Kept] | None = None,
) -> WriteCounts:
    """Upsert ``records`` of ``source``; unchanged ones (same content hash) are only counted.

    A changed case has its measures, assessments and events replaced as a whole, so the
    stored case always equals the last record received — except the children ``kept`` names
    for it, whose stored version stays. A case the source sends twice in one batch is
    written once, as its last version.
    """
    latest = {r.source_ref: r for r in records}
    counts = WriteCounts()
    if not latest:
        return counts
    existing = _existing(conn, source, list(latest))
    changed: list[tuple[CaseRecord, str]] = []
    for ref, record in latest.items():
        digest = record.content_hash()
        previous = existing.get(ref)
        if previous is None:
            counts.inserted += 1
        elif previous[0] != digest or previous[1] is not None:
            counts.updated += 1
        else:
            counts.unchanged += 1
            continue
        changed.append((record, digest))
    if not changed:
        return counts

    workers = _caseworker_ids(conn, source, [r for r, _ in changed])
    rows = [
        _case_row(
            source,
            r,
            d,
            worker_id=workers.get(r.caseworker.source_ref) if r.caseworker else None,
            run_id=run_id,
            now=now,
        )
        for r, d in changed
    ]
    upsert(conn, CASES, rows, ["source", "source_ref"], _CASE_UPDATE)

    ids: dict[str, int] = {}
    for chunk in _chunks([r.source_ref for r, _ in changed]):
        result = conn.execute(
            select(CASES.c.source_ref, CASES.c.id).where(
                and_(CASES.c.source == source, one_of(conn, CASES.c.source_ref, chunk))
            )
        )
        ids.update((row.source_ref, row.id) for row in result)
    kept = {ref: keep for ref, keep in (kept or {}).items() if ref in ids}
    # Only a case stored before has children to replace; a new one has none, so a first sync
    # runs no DELETE at all on the child tables, however large they have grown.
    case_ids = [ids[ref] for ref in ids if ref in existing and ref not in kept]
    for table in (MEASURES, ASSESSMENTS, EVENTS):
        for chunk in _chunks(case_ids):
            conn.execute(delete(table).where(_replaced(table, one_of(conn, table.c.case_id, chunk))))
    for ref, keep in kept.items():
        if ref in existing:
            _delete_all_but(conn, ids[ref], keep)
    measures: list[dict[str, Any]] = []
    assessments: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for record, _ in changed:
        m, a, e = _children(ids[record.source_ref], record)
        measures += m
        if not (record.source_ref in kept and kept[record.source_ref].assessments):
            assessments += a
        events += e
    for table, child_rows in ((MEASURES, measures), (ASSESSMENTS, assessments), (EVENTS, events)):
        if child_rows:
            conn.execute(table.insert(), child_rows)
    _resolve_quarantine(conn, source, [r.source_ref for r, _ in changed], run_id, now)
    return counts


def _replaced(table: Table, belongs: ColumnElement[bool]) -> ColumnElement[bool]:
    """The rows of ``table`` that a changed case's record replaces, among those ``belongs`` selects."""
    if table is MEASURES:  # measures imported from a DST delivery are not the source's to replace
        return and_(belongs, ~MEASURES.c.source_ref.startswith(DST_MEASURE_PREFIX))
    return belongs


def _delete_all_but(conn: Connection, case_id: int, keep: Kept) -> None:
    """Remove the children of one case that its record replaces, leaving those ``keep`` names."""
    for table, refs in ((MEASURES, keep.measures), (EVENTS, keep.events)):
        belongs = table.c.case_id == case_id
        if refs:
            belongs = and_(belongs, table.c.source_ref.notin_(sorted(refs)))
        conn.execute(delete(table).where(_replaced(table, belongs)))
    if not keep.assessments:
        conn.execute(delete(ASSESSMENTS).where(ASSESSMENTS.c.case_id == case_id))


def _resolve_quarantine(conn: Connection, source: str, refs: Sequence[str], run_id: int | None, now: datetime) -> None:
    """A record that arrives valid settles what was quarantined for it before."""
    for chunk in _chunks(refs):
        conn.execute(
            update(QUARANTINE)
            .where(
                and_(
                    QUARANTINE.c.source == source,
                    one_of(conn, QUARANTINE.c.source_ref, chunk),
                    QUARANTINE.c.resolved_at.is_(None),
                )
            )
            .values(resolved_at=now, resolved_run_id=run_id)
        )


def payload_hash(payload: str) -> str:
    return hashlib.sha256(payload.encode()).hexdigest()


def storable_text(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL's text columns cannot hold (SQLite's can)."""
    return text.replace("\x00", "")


def _kept_payload(payload: str) -> tuple[str, str, str]:
    """What the quarantine keeps of ``payload``: the text, its hash and a note for the reason.

    The kept text is NUL-free and at most :data:`QUARANTINE_PAYLOAD_LIMIT` bytes. A whole payload
    is hashed as kept (so :func:`is_cut` is false for it); a cut one keeps the hash of all of it.
    """
    size = len(payload.encode())
    if size <= QUARANTINE_PAYLOAD_LIMIT:
        kept = storable_text(payload)
        return kept, payload_hash(kept), ""
    prefix = payload.encode()[:QUARANTINE_PAYLOAD_LIMIT].decode(errors="ignore")
    note = f" (payload of {size:,} bytes; its first {QUARANTINE_PAYLOAD_LIMIT:,} kept, sha256 of the whole)"
    return storable_text(prefix), payload_hash(payload), note


def is_cut(payload: str, digest: str) -> bool:
    """Whether a quarantined ``payload`` is only the prefix of what was received."""
    return payload_hash(payload) != digest


def quarantine(conn: Connection, source: str, rejections: Sequence[Rejection], *, run_id: int, now: datetime) -> int:
    """Keep every rejection with its reason; an identical unresolved payload of one record is kept once.

    Identical means the same record (``source_ref``) with the same payload: two cases whose
    answers are alike byte for byte (the same error page) are two rejections, each kept.

    Payloads are kept NUL-free and capped (:data:`QUARANTINE_PAYLOAD_LIMIT`). Returns how many
    rejections the batch held (all are counted, stored or not).
    """
    if not rejections:
        return 0
    kept = [_kept_payload(r.payload) for r in rejections]
    known: set[tuple[str | None, str]] = set()
    for chunk in _chunks(sorted({digest for _, digest, _ in kept})):
        known.update(
            (row.source_ref, row.payload_hash)
            for row in conn.execute(
                select(QUARANTINE.c.source_ref, QUARANTINE.c.payload_hash).where(
                    and_(
                        QUARANTINE.c.source == source,
                        one_of(conn, QUARANTINE.c.payload_hash, chunk),
                        QUARANTINE.c.resolved_at.is_(None),
                    )
                )
            )
        )
    rows = []
    for rejection, (payload, digest, note) in zip(rejections, kept, strict=True):
        ref = storable_text(rejection.source_ref) if rejection.source_ref else rejection.source_ref
        if (ref, digest) in known:
            continue
        known.add((ref, digest))
        rows.append(
            {
                "source": source,
                "source_ref": ref,
                "reason": storable_text(redact(rejection.reason) + note),
                "payload": payload,
                "payload_hash": digest,
                "run_id": run_id,
                "created_at": now,
            }
        )
    if rows:
        conn.execute(QUARANTINE.insert(), rows)
    return len(rejections)


def mark_deleted(conn: Connection, source: str, seen: set[str], now: datetime) -> int:
    """Mark live cases of ``source`` that are not in ``seen`` as deleted; nothing is removed."""
    live = conn.execute(
        select(CASES.c.source_ref).where(and_(CASES.c.source == source, CASES.c.deleted_at.is_(None)))
    ).scalars()
    gone = sorted(set(live) - seen)
    for chunk in _chunks(gone):
        conn.execute(
            update(CASES)
            .where(and_(CASES.c.source == source, one_of(conn, CASES.c.source_ref, chunk)))
            .values(deleted_at=now)
        )
    return len(gone)


def mark_gone(conn: Connection, source: str, refs: Sequence[str], now: datetime) -> int:
    """Mark the live cases ``refs`` of ``source`` deleted (a source's own deletion list); unknown refs do nothing."""
    gone = 0
    for chunk in _chunks(sorted(set(refs))):
        gone += conn.execute(
            update(CASES)
            .where(and_(CASES.c.source == source, CASES.c.source_ref.in_(chunk), CASES.c.deleted_at.is_(None)))
            .values(deleted_at=now)
        ).rowcount
    return gone


def utcnow() -> datetime:
    return datetime.now(UTC)


def store_records(store: Store, source: str, records: Iterable[CaseRecord]) -> WriteCounts:
    """Write ``records`` outside a sync run, in one transaction (loaders and tests)."""
    batch = list(records)
    with store.transaction() as conn:
        for code in sorted({r.municipality for r in batch}):
            ensure_municipality(conn, code, None)
        return write_records(conn, source, batch, run_id=None, now=utcnow())
