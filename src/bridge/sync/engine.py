"""The sync engine: fetch batches from an adapter and commit each with its cursor.

Each batch — its cases with their children, its quarantined records, the run's counters
and the cursor to resume after it — is committed in one transaction. A crash at any
point therefore loses nothing and duplicates nothing: the next run resumes after the last
committed batch, and records it sees again are recognised by their content hash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

from sqlalchemy import Connection, and_, select

from bridge.adapter import INCOMPLETE, Adapter, Batch
from bridge.config import BridgeConfig
from bridge.errors import BridgeError
from bridge.model.tables import QUARANTINE, SyncRun
from bridge.privacy import mask_cpr
from bridge.store import Store
from bridge.sync import ledger
from bridge.sync.lock import source_lock
from bridge.sync.writer import (
    WriteCounts,
    _resolve_quarantine,
    ensure_municipality,
    mark_deleted,
    mark_gone,
    quarantine,
    utcnow,
    write_records,
)

log = logging.getLogger("bridge.sync")

EXIT_CODES = {ledger.SUCCEEDED: 0, ledger.QUARANTINED: 4, ledger.FAILED: 1}


@dataclass(frozen=True)
class BatchDone:
    """Told to ``on_batch`` after each committed batch: the batch's numbers and the run's so far."""

    source: str
    run_id: int
    number: int
    batch: WriteCounts
    total: WriteCounts
    fetched: int
    expected: int | None = None
    """The records the source said this run would yield, when it said; for progress and ETA."""


BatchCallback = Callable[[BatchDone], None]


def exit_code(run: SyncRun) -> int:
    """The process exit code for a finished run (README.md, "Exit codes of bridge sync")."""
    return EXIT_CODES.get(run.status, 1)


def run_sync(
    store: Store,
    config: BridgeConfig,
    source_name: str,
    *,
    full: bool = False,
    on_batch: BatchCallback | None = None,
) -> SyncRun:
    """Sync one configured source into ``store`` and return its ledger row.

    ``full`` fetches everything from the start and marks cases the source no longer
    has as deleted. Raises :class:`bridge.errors.LockHeld` (changing nothing) when another
    run of the source is going, and ``ConfigError`` for a bad configuration; a failure
    while fetching or writing ends the run as ``failed`` and is raised again.
    """
    source = config.source(source_name)
    adapter = config.build_adapter(source)
    try:
        with source_lock(store, source.name):
            if ledger.abandon_stale_runs(store, source.name):
                log.warning("an earlier run of %s ended without finishing; it is marked abandoned", source.name)
            with store.transaction() as conn:
                ensure_municipality(conn, source.municipality, source.municipality_name)
                cursor = None if full else ledger.get_cursor(conn, source.name)
            run_id = ledger.start_run(store, source.name, full=full, cursor=cursor)
            began = time.monotonic()
            fields = {"run_id": run_id, "source": source.name, "full": full}
            log.info(
                "sync of %s started (run %d, %s)",
                source.name,
                run_id,
                "full" if full else "incremental",
                extra={"fields": {**fields, "status": ledger.RUNNING}},
            )
            try:
                recovered, refetched = _refetch_incomplete(store, source.name, run_id, adapter, cursor)
                total, fetched, seen = _fetch_all(
                    store, source.name, run_id, adapter.fetch(cursor), full=full, on_batch=on_batch
                )
                total += recovered
                fetched += refetched
                deleted = 0
                if seen is not None:
                    with store.transaction() as conn:
                        deleted = mark_deleted(conn, source.name, seen, utcnow())
            except BaseException as exc:
                message = _describe(exc)
                failed = ledger.finish_run(store, run_id, ledger.FAILED, error=message)
                log.error(
                    "sync of %s failed (run %d): %s",
                    source.name,
                    run_id,
                    message,
                    extra={"fields": {**fields, **run_fields(failed), "duration_s": _since(began)}},
                )
                raise
            status = ledger.QUARANTINED if total.quarantined else ledger.SUCCEEDED
            run = ledger.finish_run(store, run_id, status, deleted=deleted)
            log.info(
                "sync of %s %s (run %d): fetched %d, inserted %d, updated %d, unchanged %d, quarantined %d, deleted %d",
                source.name,
                status,
                run_id,
                fetched,
                total.inserted,
                total.updated,
                total.unchanged,
                total.quarantined,
                run.deleted,
                extra={"fields": {**fields, **run_fields(run), "duration_s": _since(began)}},
            )
            return run
    finally:
        adapter.close()


def _refetch_incomplete(
    store: Store, source: str, run_id: int, adapter: Adapter, cursor: str | None
) -> tuple[WriteCounts, int]:
    """Ask the source again for the cases it did not deliver whole before (quarantined as incomplete).

    Their batches keep the cursor where it is. A case the source no longer has is left out of
    the refetch; its quarantined record is resolved, since there is nothing left to recover.
    """
    with store.transaction() as conn:
        refs = sorted(
            set(
                conn.execute(
                    select(QUARANTINE.c.source_ref).where(
                        and_(
                            QUARANTINE.c.source == source,
                            QUARANTINE.c.resolved_at.is_(None),
                            QUARANTINE.c.reason.startswith(INCOMPLETE, autoescape=True),
                            QUARANTINE.c.source_ref.is_not(None),
                        )
                    )
                ).scalars()
            )
        )
    total = WriteCounts()
    if not refs:
        return total, 0
    try:
        batches = adapter.refetch(refs)
    except NotImplementedError:
        return total, 0  # the adapter cannot; the next listing that holds the case brings it
    fetched = 0
    returned: set[str] = set()
    for batch in batches:
        batch.cursor = cursor
        with store.transaction() as conn:
            total += _write(conn, source, run_id, batch)
            ledger.set_cursor(conn, source, cursor, run_id)
        fetched += len(batch.records) + len(batch.rejections)
        returned.update(r.source_ref for r in batch.records)
        returned.update(r.source_ref for r in batch.rejections if r.source_ref)
    if gone := [ref for ref in refs if ref not in returned]:
        with store.transaction() as conn:
            _resolve_quarantine(conn, source, gone, run_id, utcnow())
    log.info("%d incomplete cases of %s fetched again, %d of them gone from the source", len(refs), source, len(gone))
    return total, fetched


def _fetch_all(
    store: Store,
    source: str,
    run_id: int,
    batches: Iterator[Batch],
    *,
    full: bool,
    on_batch: BatchCallback | None,
) -> tuple[WriteCounts, int, set[str] | None]:
    total = WriteCounts()
    fetched = 0
    seen: set[str] | None = set() if full else None
    expected: int | None = None
    with ExitStack() as group:
        conn: Connection | None = None
        in_group: set[str] = set()
        for number, batch in enumerate(batches, start=1):
            expected = batch.expected if batch.expected is not None else expected
            if conn is None:
                conn = group.enter_context(store.transaction())
            counts = _write(conn, source, run_id, batch)
            refs = {r.source_ref for r in batch.records} | {r.source_ref for r in batch.rejections if r.source_ref}
            in_group |= refs
            if not batch.continues:
                if batch.snapshot:
                    gone = mark_deleted(conn, source, in_group, utcnow())
                    ledger.add_to_run(conn, run_id, fetched=0, counts=WriteCounts(), cursor=batch.cursor, deleted=gone)
                ledger.set_cursor(conn, source, batch.cursor, run_id)
                group.close()
                conn = None
                in_group = set()
            total += counts
            fetched += len(batch.records) + len(batch.rejections)
            if seen is not None:
                # A case the source still has but sent broken is not deleted.
                seen |= refs
            if on_batch is not None:
                on_batch(BatchDone(source, run_id, number, counts, total, fetched, expected))
        if conn is not None:
            raise BridgeError(f"the {source} source ended in the middle of a transaction; nothing of it is stored")
    return total, fetched, seen


def _write(conn: Connection, source: str, run_id: int, batch: Batch) -> WriteCounts:
    """Write one batch inside the transaction ``conn``; the caller commits it (with its cursor)."""
    now = utcnow()
    counts = write_records(conn, source, batch.records, run_id=run_id, now=now, kept=batch.kept)
    counts.quarantined = quarantine(conn, source, batch.rejections, run_id=run_id, now=now)
    gone = mark_gone(conn, source, batch.deleted, now)
    ledger.add_to_run(
        conn,
        run_id,
        fetched=len(batch.records) + len(batch.rejections),
        counts=counts,
        cursor=batch.cursor,
        deleted=gone,
    )
    return counts


def run_fields(run: SyncRun) -> dict[str, object]:
    """A run's status and counters, as the fields of a JSON log line."""
    return {
        "status": run.status,
        "fetched": run.fetched,
        "inserted": run.inserted,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "quarantined": run.quarantined,
        "deleted": run.deleted,
    }


def _since(began: float) -> float:
    return round(time.monotonic() - began, 3)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = str(exc) if isinstance(exc, BridgeError) else f"{type(exc).__name__}: {exc}"
    return mask_cpr(text)
