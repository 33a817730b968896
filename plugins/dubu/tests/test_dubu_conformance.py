"""The conformance kit against the dubu adapter and its simulator over mutual TLS, every hostile behaviour on."""

from __future__ import annotations

import pytest
from plugins.dubu.tests.harness import DubuHarness, small_truth
from sqlalchemy import text

from bridge.errors import AdapterError
from bridge.store import Store
from bridge.sync import exit_code, ledger
from bridge.testing import TOLERATED, Behaviour, Conformance, Harness
from bridge.testing.plugin import ConformanceSuite
from bridge.testing.stores import empty
from bridge_dubu.simulator import TlsMaterial

pytestmark = pytest.mark.slow


class TestDubuConformance(ConformanceSuite):
    @pytest.fixture
    def harness(self, tls: TlsMaterial) -> Harness:
        return DubuHarness(tls)


def test_the_dubu_harness_declares_every_behaviour_the_protocol_has() -> None:
    # wrong_total is left out: HentAendredeSager reports no total (see the harness's docstring).
    assert DubuHarness.behaviours == TOLERATED
    assert Behaviour.wrong_total not in DubuHarness.behaviours


def test_a_token_that_comes_back_fails_the_run_saying_so(tls: TlsMaterial, store: Store, secret_env: str) -> None:
    """The one way DUBU's end signal can be wrong: a listing that would never end fails loudly (exit 1)."""
    with (
        DubuHarness(tls, repeat_token=True).serve(frozenset()) as served,
        pytest.raises(AdapterError, match="continuation token it had sent before"),
    ):
        served.sync(store)
    with store.engine.connect() as conn:
        run_id = conn.execute(text("SELECT max(id) FROM sync_runs")).scalar_one()
    run = ledger.get_run(store, run_id)
    assert run.status == ledger.FAILED
    assert exit_code(run) == 1
    assert "continuation token it had sent before" in (run.error or "")


def test_an_ignored_time_window_fetches_no_more_than_an_honoured_one(
    tls: TlsMaterial, kit_store: Store, secret_env: str
) -> None:
    """Trust no filter: against a service that ignores AendretEfter an incremental run fetches
    only the cases in its window, as against one that honours it (not the whole listing)."""
    fetched = []
    for knobs in ({}, {"ignore_filter": True}):
        empty(kit_store)
        harness = DubuHarness(tls, **knobs)
        with harness.serve(frozenset()) as served:
            served.sync(kit_store)
            served.change(2)
            run = served.sync(kit_store)
            Conformance(harness, kit_store).assert_equals_truth(served, "an incremental run")
            fetched.append(run.fetched)
    honoured, ignored = fetched
    cases = len(small_truth().cases)
    assert honoured < cases
    assert ignored == honoured


def test_a_case_repeated_across_pages_is_fetched_once(tls: TlsMaterial, kit_store: Store, secret_env: str) -> None:
    """The kit sees only the end state, which upserts keep right; a repeated reference must not cost a HentSag."""
    harness = DubuHarness(tls, duplicates=True)
    with harness.serve(frozenset()) as served:
        run = served.sync(kit_store)
        Conformance(harness, kit_store).assert_equals_truth(served, "a repeated reference")
    cases = len(small_truth().cases)
    assert served.simulator.requests["HentSag"] == run.fetched == cases
