"""The store: migrations match the models, URLs are checked, the per-source lock holds."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
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
from bridge.sync.lock import source_lock


def test_the_migrated_schema_is_exactly_the_models(store: Store) -> None:
    assert store.current_revision() == Store.head_revision()
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_opening_again_does_not_migrate_again(store: Store, store_url: str) -> None:
    again = open_store(store_url)
    try:
        assert again.current_revision() == store.current_revision()
    finally:
        again.dispose()


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


def test_a_sqlite_lock_row_held_by_another_host_is_respected(sqlite_store: Store) -> None:
    with sqlite_store.transaction() as conn:
        conn.execute(insert(LOCKS).values(source="a", owner="elsewhere:1", acquired_at=datetime.now(UTC)))
    with pytest.raises(LockHeld, match="elsewhere:1"), source_lock(sqlite_store, "a"):
        pass


HOLD_ADVISORY_LOCK = """
import sys, time
from bridge.store import open_store
from bridge.sync.lock import source_lock
with source_lock(open_store(sys.argv[1]), "a"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_postgresql_advisory_lock_dies_with_a_killed_process(postgresql_ready: str) -> None:
    store = open_store(postgresql_ready)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_ADVISORY_LOCK, postgresql_ready], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld), source_lock(store, "a"):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # the server notices the dead session within moments
        try:
            with source_lock(store, "a"):
                break
        except LockHeld:
            assert time.monotonic() < deadline, "the advisory lock outlived its process"
            time.sleep(0.1)
    store.dispose()
