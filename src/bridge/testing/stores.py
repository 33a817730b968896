"""Stores for tests: a new SQLite file, or a PostgreSQL database made for the test process.

PostgreSQL comes from ``BRIDGE_TEST_POSTGRES_URL`` (a server the tests may create databases
on). Without it PostgreSQL tests skip, except under CI (``CI`` set), where the default local
server is used so that a missing server fails loudly.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from bridge.store import Store

POSTGRES_URL_ENV = "BRIDGE_TEST_POSTGRES_URL"
DEFAULT_CI_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str | None:
    """The PostgreSQL server tests may use, or ``None`` if there is none."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        return url
    return DEFAULT_CI_POSTGRES if os.environ.get("CI") else None


def create_database(base: str) -> str:
    """Create a fresh database on the server of ``base``; return its URL (drop it with :func:`drop_database`)."""
    name = f"bridge_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(base).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(base).set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def empty(store: Store) -> None:
    """Delete every row of every table, keeping the schema (faster than a new database)."""
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
