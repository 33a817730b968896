"""Shared fixtures. Every store test runs against SQLite and PostgreSQL.

PostgreSQL comes from ``BRIDGE_TEST_POSTGRES_URL`` (a database the tests may create other
databases from). Locally, without it, PostgreSQL tests skip; under CI (``CI`` set) they
use the default server and fail loudly if it is not there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bridge.privacy import Pseudonymizer
from bridge.store import Store, open_store
from bridge.testing.stores import empty
from tests.leakscan import LeakScan

TEST_SECRET = "test-secret-for-bridge"


@pytest.fixture(scope="session")
def postgres_url(kit_postgres_url: str) -> str:
    """The PostgreSQL database of this test process (the kit's, from ``bridge.testing.plugin``)."""
    return kit_postgres_url


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
    empty(opened)
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
