"""One run per source at a time: a lock that never outlives its holder.

- **PostgreSQL**: an advisory lock, which belongs to a database session and so vanishes with a
  killed process.
- **SQLite file**: an OS file lock (``flock``) on ``<database>-locks/<source>.lock`` beside the
  database. The kernel releases it when the holder's process ends, however it ends, so neither a
  ``kill -9``, a new container, another host on the same volume nor a reused PID can leave a
  stale lock. The lock row in ``sync_locks`` only tells others who holds it (``host:pid``).
- **SQLite in memory**: the database lives and dies with its process; the lock row alone suffices.

``bridge lock release SOURCE --force`` (:func:`release_lock`) is the operator's way out of a
lock whose holder is stuck: it ends the holding PostgreSQL session, or clears a SQLite lock
record that no process holds.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import and_, delete, insert, select, text
from sqlalchemy.exc import IntegrityError

from bridge.errors import LockHeld
from bridge.model.tables import LOCKS
from bridge.store import Store
from bridge.sync.writer import upsert, utcnow


def advisory_key(source: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``."""
    return int.from_bytes(hashlib.sha256(f"bridge-sync:{source}".encode()).digest()[:8], "big", signed=True)


def _held_message(source: str, holder: str | None = None) -> str:
    by = f" ({holder})" if holder else ""
    return f"another sync of {source!r} is running{by}; this run changed nothing"


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def source_lock(store: Store, source: str) -> Iterator[None]:
    """Hold the lock of ``source`` for the ``with`` block, or raise :class:`LockHeld` at once."""
    if store.dialect == "postgresql":
        with _advisory_lock(store, source):
            yield
        return
    path = lock_file(store, source)
    if path is None:
        with _row_lock(store, source):
            yield
        return
    with _file_lock(path, source, _holder(store, source)):
        _record_holder(store, source)
        try:
            yield
        finally:
            with store.transaction() as conn:
                conn.execute(delete(LOCKS).where(and_(LOCKS.c.source == source, LOCKS.c.owner == _me())))


@contextmanager
def _advisory_lock(store: Store, source: str) -> Iterator[None]:
    key = advisory_key(source)
    with store.engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            raise LockHeld(_held_message(source))
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


_SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def lock_file(store: Store, source: str) -> Path | None:
    """The file whose ``flock`` is the lock of ``source`` on a SQLite file store, else ``None``."""
    database = store.engine.url.database
    if store.dialect != "sqlite" or not database or database == ":memory:" or "uri" in store.engine.url.query:
        return None
    # Source names in bridge.toml are safe file names; others (a DST import's) are hashed.
    name = source if _SAFE_NAME.match(source) else hashlib.sha256(source.encode()).hexdigest()[:32]
    db = Path(database).resolve()
    return db.with_name(f"{db.name}-locks") / f"{name}.lock"


@contextmanager
def _file_lock(path: Path, source: str, holder: str | None) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(_held_message(source, holder)) from None
        # The file is never removed: a process that opened it before a removal would lock a
        # file no one else sees, and two runs would overlap.
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock, as the kernel does on death


def _holder(store: Store, source: str) -> str | None:
    with store.engine.connect() as conn:
        owner: str | None = conn.execute(select(LOCKS.c.owner).where(LOCKS.c.source == source)).scalar()
    return owner


def _record_holder(store: Store, source: str) -> None:
    """Write who holds the lock; a row left by a holder that died is simply overwritten."""
    with store.transaction() as conn:
        row = {"source": source, "owner": _me(), "acquired_at": utcnow()}
        upsert(conn, LOCKS, [row], ["source"], ["owner", "acquired_at"])


@contextmanager
def _row_lock(store: Store, source: str) -> Iterator[None]:
    try:
        with store.transaction() as conn:
            conn.execute(insert(LOCKS).values(source=source, owner=_me(), acquired_at=utcnow()))
    except IntegrityError:
        raise LockHeld(_held_message(source, _holder(store, source))) from None
    try:
        yield
    finally:
        with store.transaction() as conn:
            conn.execute(delete(LOCKS).where(and_(LOCKS.c.source == source, LOCKS.c.owner == _me())))


@dataclass(frozen=True)
class Released:
    """What :func:`release_lock` did."""

    source: str
    was_held: bool
    """A live holder had the lock (and was ended, on PostgreSQL)."""
    holder: str | None
    """Who held it or was last recorded holding it: ``host:pid``, or a PostgreSQL session."""


def release_lock(store: Store, source: str) -> Released:
    """Free the lock of ``source`` for the operator (``bridge lock release SOURCE --force``).

    PostgreSQL: the session holding the advisory lock is terminated, which rolls back what it had
    not committed (committed batches stay; the next run resumes after them). SQLite: a lock
    record no process holds is removed; a lock a running process holds is not taken from it
    (:class:`LockHeld` names the holder: end that process), since the kernel frees it the moment
    the process ends.
    """
    if store.dialect == "postgresql":
        return _terminate_advisory_holder(store, source)
    holder = _holder(store, source)
    path = lock_file(store, source)
    if path is not None and path.exists():
        try:
            with _file_lock(path, source, holder):
                pass
        except LockHeld:
            raise LockHeld(
                f"the lock of {source!r} is held by a running process ({holder or 'unknown'}); "
                "end that process and its lock goes with it"
            ) from None
    with store.transaction() as conn:
        conn.execute(delete(LOCKS).where(LOCKS.c.source == source))
    return Released(source, False, holder)


def _terminate_advisory_holder(store: Store, source: str) -> Released:
    key = advisory_key(source) & 0xFFFFFFFFFFFFFFFF
    classid, objid = key >> 32, key & 0xFFFFFFFF
    with store.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT l.pid, a.client_addr, a.application_name FROM pg_locks l "
                "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                "AND CAST(l.classid AS bigint) = :c AND CAST(l.objid AS bigint) = :o"
            ),
            {"c": classid, "o": objid},
        ).first()
        if row is None:
            return Released(source, False, None)
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": row.pid})
        conn.commit()
    where = f" from {row.client_addr}" if row.client_addr else ""
    return Released(source, True, f"PostgreSQL session {row.pid}{where}")
