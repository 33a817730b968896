"""One run per source at a time: an advisory lock on PostgreSQL, a lock row on SQLite.

The PostgreSQL lock belongs to a database session, so it vanishes with a killed process.
The SQLite lock row names its holder (``host:pid``); a row left by a process on this host
that no longer exists is taken over, so a ``kill -9`` never blocks the next run.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import and_, delete, insert, select, text
from sqlalchemy.exc import IntegrityError

from bridge.errors import LockHeld
from bridge.model.tables import LOCKS
from bridge.store import Store
from bridge.sync.writer import utcnow


def advisory_key(source: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``."""
    return int.from_bytes(hashlib.sha256(f"bridge-sync:{source}".encode()).digest()[:8], "big", signed=True)


def _held_message(source: str, holder: str | None = None) -> str:
    by = f" ({holder})" if holder else ""
    return f"another sync of {source!r} is running{by}; this run changed nothing"


@contextmanager
def source_lock(store: Store, source: str) -> Iterator[None]:
    """Hold the lock of ``source`` for the ``with`` block, or raise :class:`LockHeld` at once."""
    if store.dialect == "postgresql":
        with _advisory_lock(store, source):
            yield
    else:
        with _row_lock(store, source):
            yield


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


def _alive_here(owner: str) -> bool:
    """False only when ``owner`` is a process on this host that has ended."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _row_lock(store: Store, source: str) -> Iterator[None]:
    me = f"{socket.gethostname()}:{os.getpid()}"
    try:
        with store.transaction() as conn:
            conn.execute(insert(LOCKS).values(source=source, owner=me, acquired_at=utcnow()))
    except IntegrityError:
        _take_over_if_dead(store, source, me)
    try:
        yield
    finally:
        with store.transaction() as conn:
            conn.execute(delete(LOCKS).where(and_(LOCKS.c.source == source, LOCKS.c.owner == me)))


def _take_over_if_dead(store: Store, source: str, me: str) -> None:
    with store.transaction() as conn:
        holder = conn.execute(select(LOCKS.c.owner).where(LOCKS.c.source == source)).scalar()
        if holder is not None and _alive_here(holder):
            raise LockHeld(_held_message(source, holder))
        taken = conn.execute(
            LOCKS.update()
            .where(and_(LOCKS.c.source == source, LOCKS.c.owner == holder))
            .values(owner=me, acquired_at=utcnow())
        ).rowcount
        if holder is None:
            conn.execute(insert(LOCKS).values(source=source, owner=me, acquired_at=utcnow()))
        elif taken != 1:
            raise LockHeld(_held_message(source))
