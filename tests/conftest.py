"""Shared fixtures. Every store test runs against SQLite and PostgreSQL.

PostgreSQL comes from ``BRIDGE_TEST_POSTGRES_URL`` (a database the tests may create other
databases from). Locally, without it, PostgreSQL tests skip; under CI (``CI`` set) they
use the default server and fail loudly if it is not there.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from bridge.privacy import Pseudonymizer
from bridge.store import Store, open_store
from tests.leakscan import LeakScan

TEST_SECRET = "test-secret-for-bridge"
DEFAULT_CI_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str | None:
    url = os.environ.get("BRIDGE_TEST_POSTGRES_URL")
    if url:
        return url
    return DEFAULT_CI_POSTGRES if os.environ.get("CI") else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test process, dropped at the end."""
    base = postgres_base_url()
    if base is None:
        pytest.skip("PostgreSQL tests need BRIDGE_TEST_POSTGRES_URL (or CI)")
    name = f"bridge_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(base).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty(store: Store) -> None:
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of an empty, migrated store: a new SQLite file, or the emptied test database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'bridge.db'}"
        return
    url: str = request.getfixturevalue("postgresql_ready")
    yield url


@pytest.fixture(scope="session")
def postgresql_ready(postgres_url: str) -> str:
    open_store(postgres_url).dispose()
    return postgres_url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An empty, migrated store on SQLite and on PostgreSQL."""
    opened = open_store(store_url)
    _empty(opened)
    try:
        yield opened
    finally:
        opened.dispose()


@pytest.fixture
def persons() -> Pseudonymizer:
    return Pseudonymizer(SecretStr(TEST_SECRET))


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """Sets the person-key secret in the environment, as an installation would."""
    monkeypatch.setenv("BRIDGE_PERSON_KEY_SECRET", TEST_SECRET)
    return TEST_SECRET


@pytest.fixture
def leak_scan() -> Iterator[LeakScan]:
    """Collects the failure test's log lines, messages and ledger; fails if a person's data or a secret is in them."""
    scan = LeakScan()
    root = logging.getLogger()
    root.addHandler(scan)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield scan
    finally:
        root.removeHandler(scan)
        root.setLevel(level)
    hits = scan.hits()
    assert not hits, "person data or a secret in what a failure produced:\n" + "\n".join(hits)
