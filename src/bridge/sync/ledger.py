"""The run ledger and the per-source cursor.

A run row is written when a run starts and its counters grow inside each batch's
transaction, so after a crash the ledger still says exactly what was committed.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, select, update

from bridge.model.tables import RUNS, SYNC_STATE, SyncRun
from bridge.store import Store
from bridge.sync.writer import WriteCounts, upsert, utcnow

RUNNING = "running"
SUCCEEDED = "succeeded"
QUARANTINED = "quarantined"
FAILED = "failed"
ABANDONED = "abandoned"


def abandon_stale_runs(store: Store, source: str) -> int:
    """Close runs left ``running`` by a process that died; the caller holds the source lock."""
    with store.transaction() as conn:
        return conn.execute(
            update(RUNS)
            .where(and_(RUNS.c.source == source, RUNS.c.status == RUNNING))
            .values(status=ABANDONED, finished_at=utcnow(), error="the process ended before the run finished")
        ).rowcount


def start_run(store: Store, source: str, *, full: bool, cursor: str | None) -> int:
    with store.transaction() as conn:
        run_id = conn.execute(
            RUNS.insert()
            .values(
                source=source,
                full=full,
                started_at=utcnow(),
                status=RUNNING,
                cursor_before=cursor,
                cursor_after=cursor,
            )
            .returning(RUNS.c.id)
        ).scalar_one()
    return int(run_id)


def add_to_run(
    conn: Connection, run_id: int, *, fetched: int, counts: WriteCounts, cursor: str | None, deleted: int = 0
) -> None:
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(
            fetched=RUNS.c.fetched + fetched,
            inserted=RUNS.c.inserted + counts.inserted,
            updated=RUNS.c.updated + counts.updated,
            unchanged=RUNS.c.unchanged + counts.unchanged,
            quarantined=RUNS.c.quarantined + counts.quarantined,
            deleted=RUNS.c.deleted + deleted,
            cursor_after=cursor,
        )
    )


def finish_run(store: Store, run_id: int, status: str, *, deleted: int = 0, error: str | None = None) -> SyncRun:
    with store.transaction() as conn:
        conn.execute(
            update(RUNS)
            .where(RUNS.c.id == run_id)
            .values(status=status, finished_at=utcnow(), deleted=RUNS.c.deleted + deleted, error=error)
        )
    return get_run(store, run_id)


def get_run(store: Store, run_id: int) -> SyncRun:
    with store.session() as session:
        run = session.get(SyncRun, run_id)
        if run is None:
            raise LookupError(f"no sync run {run_id}")
        session.expunge(run)
        return run


def get_cursor(conn: Connection, source: str) -> str | None:
    cursor: str | None = conn.execute(select(SYNC_STATE.c.cursor).where(SYNC_STATE.c.source == source)).scalar()
    return cursor


def set_cursor(conn: Connection, source: str, cursor: str | None, run_id: int) -> None:
    upsert(
        conn,
        SYNC_STATE,
        [{"source": source, "cursor": cursor, "run_id": run_id, "updated_at": utcnow()}],
        ["source"],
        ["cursor", "run_id", "updated_at"],
    )
