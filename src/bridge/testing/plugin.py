"""The conformance kit as a pytest plugin (entry point ``pytest11: bridge``).

Installed with bridge, pytest loads it by itself. It adds the ``kit_store`` fixture (an
empty, migrated store on SQLite, and on PostgreSQL when ``BRIDGE_TEST_POSTGRES_URL`` is set)
and :class:`ConformanceSuite`, which a plugin's tests subclass with a ``harness`` fixture::

    from bridge.testing.plugin import ConformanceSuite

    class TestConformance(ConformanceSuite):
        @pytest.fixture
        def harness(self) -> Harness:
            return MyHarness()
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bridge.store import Store, open_store
from bridge.testing.kit import TOLERATED, Behaviour, Conformance, Harness
from bridge.testing.stores import create_database, drop_database, empty, postgres_base_url

SECRET_ENV = "BRIDGE_PERSON_KEY_SECRET"
KIT_SECRET = "conformance-kit-person-key-secret"


@pytest.fixture(scope="session")
def kit_postgres_url() -> Iterator[str]:
    """A PostgreSQL database for the kit in this test process, migrated once, dropped at the end."""
    base = postgres_base_url()
    if base is None:
        pytest.skip("PostgreSQL needs BRIDGE_TEST_POSTGRES_URL (or CI)")
    url = create_database(base)
    try:
        open_store(url).dispose()
        yield url
    finally:
        drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def kit_store(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[Store]:
    """An empty, migrated store: a new SQLite file, or the kit's emptied PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{os.fspath(tmp_path)}/kit.db"
    else:
        url = request.getfixturevalue("kit_postgres_url")
    store = open_store(url)
    empty(store)
    try:
        yield store
    finally:
        store.dispose()


class ConformanceSuite:
    """Every check of :class:`bridge.testing.Conformance`, as tests. Subclass it with a ``harness`` fixture.

    Behaviours the harness does not declare are skipped, naming the behaviour, so a report
    shows what an adapter has not been tried against.
    """

    @pytest.fixture
    def harness(self) -> Harness:
        raise NotImplementedError("a ConformanceSuite subclass provides the harness fixture")

    @pytest.fixture(autouse=True)
    def _person_key_secret(self, monkeypatch: pytest.MonkeyPatch) -> None:
        if not os.environ.get(SECRET_ENV):
            monkeypatch.setenv(SECRET_ENV, KIT_SECRET)

    @pytest.fixture
    def conformance(self, harness: Harness, kit_store: Store) -> Conformance:
        return Conformance(harness, kit_store)

    @staticmethod
    def _declared(harness: Harness, behaviour: Behaviour) -> None:
        if behaviour not in harness.behaviours:
            pytest.skip(f"the harness does not declare {behaviour}")

    def test_a_full_sync_equals_the_truth(self, conformance: Conformance) -> None:
        conformance.full_sync(invalid=3)

    def test_every_hostile_behaviour_at_once(self, conformance: Conformance, harness: Harness) -> None:
        behaviours = harness.behaviours & TOLERATED
        if not behaviours:
            pytest.skip("the harness declares no hostile behaviour")
        conformance.full_sync(behaviours, invalid=2)

    @pytest.mark.parametrize("behaviour", sorted(TOLERATED))
    def test_a_hostile_behaviour(self, conformance: Conformance, harness: Harness, behaviour: Behaviour) -> None:
        self._declared(harness, behaviour)
        conformance.full_sync(frozenset({behaviour}), invalid=2)

    def test_an_unchanged_resync_changes_nothing(self, conformance: Conformance) -> None:
        conformance.unchanged_resync()

    def test_a_crash_after_any_batch_resumes_to_the_truth(self, conformance: Conformance) -> None:
        assert conformance.crash_and_resume() >= 2, "the truth must span several batches to test resuming"

    def test_changes_reach_the_next_run(self, conformance: Conformance) -> None:
        conformance.changes_are_caught()

    def test_a_total_that_disagrees_fails_the_run(self, conformance: Conformance, harness: Harness) -> None:
        self._declared(harness, Behaviour.wrong_total)
        conformance.wrong_total_fails()

    def test_no_cpr_outside_quarantine_payloads(self, conformance: Conformance, harness: Harness) -> None:
        conformance.no_cpr_outside_quarantine(harness.behaviours & TOLERATED)
