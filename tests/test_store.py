"""The store: migrations match the models, URLs are checked, the per-source lock holds."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert
from sqlmodel import SQLModel

from bridge.errors import ConfigError, LockHeld
from bridge.model.tables import LOCKS
from bridge.store import Store, open_store
from bridge.store import engine as store_engine
from bridge.sync.lock import lock_file, release_lock, source_lock


def test_the_migrated_schema_is_exactly_the_models(store: Store) -> None:
    assert store.current_revision() == Store.head_revision()
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_opening_again_does_not_migrate_again(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a migrated store was migrated again")

    monkeypatch.setattr(store_engine.command, "upgrade", must_not_run)
    again = open_store(store_url)
    try:
        again.upgrade()  # `bridge db upgrade` of a store at head changes nothing either
        assert again.current_revision() == Store.head_revision()
    finally:
        again.dispose()


# Runs the first migration of a new store and dies (SIGKILL, nothing cleans up) once it has
# created some tables, or, with "pause", holds there until stdin closes.
MIGRATE_AND_STOP = """
import os, signal, sys
from alembic.operations import Operations
from bridge.store import open_store
created = []
original = Operations.create_table
def create_table(self, *args, **kwargs):
    result = original(self, *args, **kwargs)
    created.append(args[0])
    if len(created) == 3:
        print("midway", flush=True)
        if sys.argv[2] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        sys.stdin.read()
    return result
Operations.create_table = create_table
open_store(sys.argv[1]).dispose()
"""


def _migrate_and_stop(url: str, how: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", MIGRATE_AND_STOP, url, how],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def _assert_schema_is_the_models(url: str) -> None:
    store = open_store(url)
    try:
        assert store.current_revision() == Store.head_revision()
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
    finally:
        store.dispose()


def test_a_kill_during_the_first_migration_leaves_a_store_the_next_open_migrates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    killed = _migrate_and_stop(url, "kill")
    assert killed.stdout is not None
    assert killed.stdout.readline().strip() == "midway"
    assert killed.wait(timeout=60) == -signal.SIGKILL
    _assert_schema_is_the_models(url)  # not "table municipalities already exists"


def test_of_two_first_opens_at_once_one_migrates_and_the_other_waits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    first = _migrate_and_stop(url, "pause")
    assert first.stdout is not None
    assert first.stdin is not None
    assert first.stdout.readline().strip() == "midway"
    threading.Timer(1.0, first.stdin.close).start()  # the first finishes while the second waits for it
    _assert_schema_is_the_models(url)
    assert first.wait(timeout=60) == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [("not a url", "not a database URL"), ("mysql://localhost/x", "unsupported database 'mysql'")],
)
def test_bad_urls_are_configuration_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_store(url)


def test_the_lock_refuses_a_second_holder_and_frees_on_exit(store: Store) -> None:
    with source_lock(store, "a"):
        with pytest.raises(LockHeld, match="another sync of 'a' is running"), source_lock(store, "a"):
            pass
        with source_lock(store, "b"):  # other sources are not affected
            pass
    with source_lock(store, "a"):
        pass


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'bridge.db'}")
    yield opened
    opened.dispose()


def test_a_sqlite_lock_row_left_by_a_dead_process_is_taken_over(sqlite_store: Store) -> None:
    with sqlite_store.transaction() as conn:
        owner = f"{socket.gethostname()}:{_dead_pid()}"
        conn.execute(insert(LOCKS).values(source="a", owner=owner, acquired_at=datetime.now(UTC)))
    with source_lock(sqlite_store, "a"):
        pass


@pytest.mark.parametrize("owner", ["elsewhere:1", f"{socket.gethostname()}:1"])
def test_a_sqlite_lock_record_of_another_host_or_a_reused_pid_does_not_block(sqlite_store: Store, owner: str) -> None:
    # A new container, or a holder recorded as a PID that now belongs to another process (PID 1
    # in a container is always alive): only a lock the kernel still holds for a live process counts.
    with sqlite_store.transaction() as conn:
        conn.execute(insert(LOCKS).values(source="a", owner=owner, acquired_at=datetime.now(UTC)))
    with source_lock(sqlite_store, "a"):
        pass


HOLD_LOCK = """
import sys, time
from bridge.store import open_store
from bridge.sync.lock import source_lock
with source_lock(open_store(sys.argv[1]), "a"):
    print("held", flush=True)
    time.sleep(600)
"""


def _hold_lock(url: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, url], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_sqlite_lock_held_by_a_live_process_names_it_and_goes_when_it_is_killed(sqlite_store: Store) -> None:
    url = sqlite_store.engine.url.render_as_string(hide_password=False)
    holder = _hold_lock(url)
    try:
        with pytest.raises(LockHeld, match=rf":{holder.pid}\)"), source_lock(sqlite_store, "a"):
            pass
        with pytest.raises(LockHeld, match="end that process"):
            release_lock(sqlite_store, "a")  # a live holder's lock is not taken from it
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with source_lock(sqlite_store, "a"):  # at once: the kernel released it with the process
        pass
    path = lock_file(sqlite_store, "a")
    assert path == Path(sqlite_store.engine.url.database or "").parent / "bridge.db-locks" / "a.lock"


def test_releasing_a_sqlite_lock_nobody_holds_clears_its_record(sqlite_store: Store) -> None:
    with sqlite_store.transaction() as conn:
        conn.execute(insert(LOCKS).values(source="a", owner="gone:7", acquired_at=datetime.now(UTC)))
    released = release_lock(sqlite_store, "a")
    assert (released.was_held, released.holder) == (False, "gone:7")
    with sqlite_store.engine.connect() as conn:
        assert conn.execute(LOCKS.select()).all() == []


def test_releasing_a_postgresql_lock_ends_the_session_that_holds_it(postgresql_ready: str) -> None:
    store = open_store(postgresql_ready)
    holder = _hold_lock(postgresql_ready)
    try:
        released = release_lock(store, "a")
        assert released.was_held
        assert (released.holder or "").startswith("PostgreSQL session")
        _acquire_soon(store, "the released lock is still held")
        assert release_lock(store, "a").was_held is False
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        store.dispose()


def test_a_postgresql_advisory_lock_dies_with_a_killed_process(postgresql_ready: str) -> None:
    store = open_store(postgresql_ready)
    holder = _hold_lock(postgresql_ready)
    try:
        with pytest.raises(LockHeld), source_lock(store, "a"):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    _acquire_soon(store, "the advisory lock outlived its process")
    store.dispose()


def _acquire_soon(store: Store, failure: str) -> None:
    """Take the lock of "a" within 10 s: the server notices a dead or ended session within moments."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with source_lock(store, "a"):
                return
        except LockHeld:
            assert time.monotonic() < deadline, failure
            time.sleep(0.1)
