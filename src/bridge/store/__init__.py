"""The store: an SQLite file by default, PostgreSQL in production, migrated by Alembic."""

from bridge.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
