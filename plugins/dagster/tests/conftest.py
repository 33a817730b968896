"""Fixtures for the bridge-dagster tests: the project's store and person-key fixtures."""

from tests.conftest import persons, postgres_url, postgresql_ready, secret_env, store, store_url

__all__ = ["persons", "postgres_url", "postgresql_ready", "secret_env", "store", "store_url"]
