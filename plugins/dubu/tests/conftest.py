"""Fixtures for the dubu tests: the project's store and person-key fixtures, and test certificates."""

from pathlib import Path

import pytest
from tests.conftest import persons, postgres_url, postgresql_ready, secret_env, store, store_url

from bridge_dubu.simulator import TlsMaterial, make_tls_material

__all__ = ["persons", "postgres_url", "postgresql_ready", "secret_env", "store", "store_url", "tls"]


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """A test CA with a loopback server certificate and the client certificate it signs."""
    directory: Path = tmp_path_factory.mktemp("dubu-tls")
    return make_tls_material(directory)
