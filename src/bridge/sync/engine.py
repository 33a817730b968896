"""The sync engine: fetch batches from an adapter and commit each with its cursor.

Each batch — its cases with their children, its quarantined records, the run's counters
and the cursor to resume after it — is committed in one transaction. A crash at any
point therefore loses nothing and duplicates nothing: the next run resumes after the last
committed batch, and records it sees again are recognised by their content hash.

:func:`sync_sources` is the one loop over sources (``Bridge.sync`` and ``bridge sync`` use it):
one source's failure never stops the others. Each run goes through the lifecycle shared with
quarantine replay (:mod:`bridge.sync.lifecycle`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

from sqlalchemy import Connection, and_, select

from bridge.adapter import INCOMPLETE, Adapter, Batch
from bridge.config import BridgeConfig, SourceSettings
from bridge.errors import BridgeError, LockHeld, describe_error
from bridge.model.tables import QUARANTINE, SyncRun
from bridge.store import Store
from bridge.sync import ledger
from bridge.sync.lifecycle import RunHandle, source_run
from bridge.sync.writer import (
    WriteCounts,
    _resolve_quarantine,
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


@dataclass(frozen=True)
class SourceOutcome:
    """What became of one source in :func:`sync_sources`: its run, or why there is none."""

    source: str
    run: SyncRun | None
    """The run's ledger row, a failed one included; ``None`` when no run began (its lock was held, or its
    adapter could not be made)."""
    error: str | None = None
    """Why the run failed or was skipped, safe to print."""
    exit_code: int = 0


@dataclass(frozen=True)
class SyncResult:
    """Every source's outcome of one :func:`sync_sources`, in the order asked."""

    outcomes: list[SourceOutcome]

    @property
    def runs(self) -> list[SyncRun]:
        """The runs that happened, failed ones included."""
        return [o.run for o in self.outcomes if o.run is not None]

    @property
    def skipped(self) -> list[SourceOutcome]:
        """Sources without a run: another run held their lock, or they failed before their run began."""
        return [o for o in self.outcomes if o.run is None]

    @property
    def exit_code(self) -> int:
        """The worst outcome: 2 (configuration), then 1 (failed), 3 (lock held), 4 (quarantined), else 0."""
        codes = {o.exit_code for o in self.outcomes}
        return next((code for code in (2, 1, 3, 4) if code in codes), 0)


def check_sources(config: BridgeConfig, names: Sequence[str]) -> list[SourceSettings]:
    """The named sources, each one's configuration checked before any of them runs.

    Raises ``ConfigError`` (exit 2) for an unknown name or a setting its adapter rejects, so a
    bad configuration never stops a loop of sources halfway.
    """
    sources = [config.source(name) for name in names]
    for source in sources:
        config.check_source(source)
    return sources


def sync_sources(
    store: Store,
    config: BridgeConfig,
    names: Sequence[str] = (),
    *,
    full: bool = False,
    on_batch: BatchCallback | None = None,
) -> SyncResult:
    """Sync the named sources (default: every configured one) one after another.

    One source's failure never stops the others: a failed run is in the ledger and in the result
    with its message, a source whose lock another run holds is skipped with the reason, and the
    loop goes on. Configuration problems of any named source are found first (``ConfigError``,
    nothing runs). An interruption (Ctrl-C) ends the running source's run as failed and stops.
    """
    sources = check_sources(config, list(names) or [s.name for s in config.sources])
    outcomes: list[SourceOutcome] = []
    for source in sources:
        started: list[RunHandle] = []
        try:
            run = _sync_one(store, config, source, full=full, on_batch=on_batch, started=started.append)
        except LockHeld as exc:
            outcomes.append(SourceOutcome(source.name, None, describe_error(exc), exc.exit_code))
        except Exception as exc:
            # The lifecycle ended the run as failed, logged why and kept the committed batches.
            code = exc.exit_code if isinstance(exc, BridgeError) else 1
            failed = started[0].run if started else None
            outcomes.append(SourceOutcome(source.name, failed, describe_error(exc), code))
        else:
            outcomes.append(SourceOutcome(source.name, run, None, exit_code(run)))
    return SyncResult(outcomes)


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
    return _sync_one(store, config, config.source(source_name), full=full, on_batch=on_batch)


def _sync_one(
    store: Store,
    config: BridgeConfig,
    source: SourceSettings,
    *,
    full: bool,
    on_batch: BatchCallback | None,
    started: Callable[[RunHandle], None] | None = None,
) -> SyncRun:
    """:func:`run_sync`; ``started`` is handed the run once it is in the ledger, so a caller can report it failed."""
    adapter = config.build_adapter(source)
    try:
        with source_run(store, source, kind="sync", full=full) as handle:
            if started is not None:
                started(handle)
            total = _refetch_incomplete(store, source.name, handle.run_id, adapter, handle.cursor)
            fetched, seen, cursor = _fetch_all(
                store, source.name, handle.run_id, adapter.fetch(None if full else handle.cursor),
                full=full, on_batch=on_batch, cursor=handle.cursor,
            )  # fmt: skip
            total += fetched
            deleted = 0
            if full:
                with store.transaction() as conn:
                    if seen is not None:
                        deleted = mark_deleted(conn, source.name, seen, utcnow())
                    # A full run moves the incremental cursor only once it has read everything: one
                    # killed midway leaves the cursor where the last complete run put it.
                    ledger.set_cursor(conn, source.name, cursor, handle.run_id)
            return handle.finish(ledger.QUARANTINED if total.quarantined else ledger.SUCCEEDED, deleted=deleted)
    finally:
        adapter.close()


def _refetch_incomplete(store: Store, source: str, run_id: int, adapter: Adapter, cursor: str | None) -> WriteCounts:
    """Ask the source again for the cases it did not deliver whole before (quarantined as incomplete).

    Their batches leave the cursor where it is. A case the source no longer has is left out of
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
        return total
    try:
        batches = adapter.refetch(refs)
    except NotImplementedError:
        return total  # the adapter cannot; the next listing that holds the case brings it
    returned: set[str] = set()
    for batch in batches:
        batch.cursor = cursor
        with store.transaction() as conn:
            total += _write(conn, source, run_id, batch)
        returned.update(r.source_ref for r in batch.records)
        returned.update(r.source_ref for r in batch.rejections if r.source_ref)
    if gone := [ref for ref in refs if ref not in returned]:
        with store.transaction() as conn:
            _resolve_quarantine(conn, source, gone, run_id, utcnow())
    log.info("%d incomplete cases of %s fetched again, %d of them gone from the source", len(refs), source, len(gone))
    return total


def _fetch_all(
    store: Store,
    source: str,
    run_id: int,
    batches: Iterator[Batch],
    *,
    full: bool,
    on_batch: BatchCallback | None,
    cursor: str | None,
) -> tuple[WriteCounts, set[str] | None, str | None]:
    """Commit every batch; return the counts, the refs seen (full runs) and the cursor to resume from.

    A batch that ``continues`` is committed with the ones after it, up to the first that does not
    (an extract set is one transaction); a group that is a ``snapshot`` marks what it lacks deleted.
    """
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
                if not full:
                    ledger.set_cursor(conn, source, batch.cursor, run_id)
                group.close()
                conn = None
                in_group = set()
                cursor = batch.cursor
            total += counts
            fetched += len(batch.records) + len(batch.rejections)
            if seen is not None:
                # A case the source still has but sent broken is not deleted.
                seen |= refs
            if on_batch is not None:
                on_batch(BatchDone(source, run_id, number, counts, total, fetched, expected))
        if conn is not None:
            raise BridgeError(f"the {source} source ended in the middle of a transaction; nothing of it is stored")
    return total, seen, cursor


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
