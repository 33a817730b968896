"""Engine and session factory; an empty or older database is migrated on first use.

Migrations run in one transaction under a store-wide lock (PostgreSQL: an advisory lock; SQLite:
``BEGIN IMMEDIATE``, the database's write lock), and the revision is read again once the lock is
held: a process killed during a migration leaves the store as it was, and of two processes
opening a new store at once one migrates while the other waits and finds it done.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session

from bridge.errors import ConfigError
from bridge.privacy import redact

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module opens transactions itself, and only before INSERT/UPDATE/DELETE: DDL
    # (a migration's CREATE TABLE) would run outside any transaction. bridge begins them instead
    # (_sqlite_begin), so DDL is transactional like everything else.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers (and a second sync checking the lock) work while a batch is written.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_BEGIN = "bridge_sqlite_begin"
"""Execution option: the statement that begins a SQLite transaction (``BEGIN IMMEDIATE``: the write lock at once)."""


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN, "BEGIN"))


def make_engine(url: str) -> Engine:
    """An engine for ``url``; ``postgresql://`` URLs are read as psycopg 3.

    Statements' bound parameters never appear in error text (``hide_parameters``): they hold
    person keys and birth dates. A URL that cannot be read is never echoed with its password.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(f"not a database URL: {redact(url)!r}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and "uri" not in parsed.query:
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the store's directory {folder}: {exc.strerror}") from None
        engine = create_engine(parsed, connect_args={"timeout": 60}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql")
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Store:
    """A migrated database. Build one with :func:`open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return Session(self.engine)

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        return ScriptDirectory.from_config(alembic_config()).get_current_head()

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (``bridge db upgrade``), atomically and under the store lock."""
        with self.engine.connect().execution_options(**{_BEGIN: "BEGIN IMMEDIATE"}) as conn, conn.begin():
            if self.dialect == "postgresql":
                # Two processes opening a new database at once must not both migrate it.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _advisory_key("bridge-migrate")})
            # Read under the lock: a process that waited for another's migration finds it done.
            if MigrationContext.configure(conn).get_current_revision() != self.head_revision():
                command.upgrade(alembic_config(conn), "head")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the store at ``url`` and, unless told not to, migrate it to the newest schema."""
    store = Store(make_engine(url))
    if migrate:
        try:
            if store.current_revision() != store.head_revision():
                store.upgrade()
        except OperationalError as exc:
            store.dispose()
            where = make_url(url).render_as_string()  # hides the password
            # The driver's first line says why (refused, no such database, locked); no statement
            # with parameters has run yet, and redact() hides what a URL in it could carry.
            reason = redact(str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__)
            raise ConfigError(f"cannot open the store {where}: {reason}") from None
    return store
