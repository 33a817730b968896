"""End to end over real mutual TLS: the sync engine, the dubu adapter and the simulator on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from tests.conftest import TEST_SECRET
from tests.storecheck import bridge_cli, dump, hashes, stored_records

from bridge.config import BridgeConfig, parse_config
from bridge.model.tables import SyncRun
from bridge.privacy import Pseudonymizer
from bridge.store import Store
from bridge.sync import run_sync
from bridge.synthetic.generate import generate
from bridge.synthetic.truth import GroundTruth
from bridge_dubu.simulator import (
    DubuSimulator,
    SimulatorSettings,
    TlsMaterial,
    connection_settings,
    make_tls_material,
    serve_simulator,
)

pytestmark = pytest.mark.slow

MUNICIPALITY = "851"
SOURCE = "aalborg-dubu"


def make_truth(seed: int = 5, invalid: int = 0) -> GroundTruth:
    return generate(seed=seed, municipalities=1, caseworkers=3, invalid=invalid, municipality_codes=[MUNICIPALITY])


class Served:
    """A running simulator and the bridge configuration that reads it."""

    def __init__(self, simulator: DubuSimulator, endpoint: str, tls: TlsMaterial, **adapter: Any) -> None:
        self.simulator = simulator
        self.endpoint = endpoint
        self.settings = connection_settings(endpoint, simulator.settings, tls) | {
            "page_size": 25,
            "retry_base_delay": 0.001,
            **adapter,
        }
        self.config: BridgeConfig = parse_config(
            {"sources": [{"name": SOURCE, "adapter": "dubu", "municipality": MUNICIPALITY, "settings": self.settings}]},
            Path("."),
        )

    def sync(self, store: Store, *, full: bool = False) -> SyncRun:
        return run_sync(store, self.config, SOURCE, full=full)

    def expected(self, persons: Pseudonymizer) -> dict[str, Any]:
        return {r.source_ref: r for r in self.simulator.expected_records(persons)}


Serve = Callable[..., Served]


@pytest.fixture
def serve_truth(secret_env: str, tls: TlsMaterial) -> Iterator[Serve]:
    """Start a simulator over mutual TLS: ``serve_truth(invalid=…, adapter={…}, **knobs)``."""
    with ExitStack() as stack:

        def start(*, invalid: int = 0, adapter: dict[str, Any] | None = None, **knobs: Any) -> Served:
            simulator = DubuSimulator(make_truth(invalid=invalid), SimulatorSettings(**knobs))
            endpoint = stack.enter_context(serve_simulator(simulator, tls))
            return Served(simulator, endpoint, tls, **(adapter or {}))

        yield start


def changed_refs(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {ref for ref in after if before.get(ref) != after[ref]} | (before.keys() - after.keys())


def test_full_sync_equals_the_ground_truth(store: Store, serve_truth: Serve, persons: Pseudonymizer) -> None:
    served = serve_truth(invalid=5)
    truth = served.simulator.truth
    run = served.sync(store)
    assert run.status == "quarantined"
    assert stored_records(store, SOURCE) == served.expected(persons)
    with store.engine.connect() as conn:
        quarantined = dict(conn.execute(text("SELECT source_ref, reason FROM quarantine")).all())
    assert set(quarantined) == {served.simulator.case_uuid(c) for c in truth.invalid_cases()}
    assert all(reason for reason in quarantined.values())
    content = json.dumps({k: v for k, v in dump(store).items() if k != "quarantine"}, default=str)
    reasons = " ".join(quarantined.values())
    for cpr in truth.cprs():
        assert cpr not in content
        assert cpr.replace("-", "") not in content
        assert cpr not in reasons


def test_incremental_sync_picks_up_exactly_the_changed_cases(
    store: Store, serve_truth: Serve, persons: Pseudonymizer
) -> None:
    served = serve_truth()
    simulator = served.simulator
    served.sync(store)
    before = hashes(stored_records(store, SOURCE))
    fetched_before = simulator.requests["HentSag"]

    touched = simulator.modify(6, seed=3)
    run = served.sync(store)

    after = hashes(stored_records(store, SOURCE))
    by_id = {c.id: simulator.case_uuid(c) for c in simulator.truth.cases}
    assert changed_refs(before, after) == {by_id[i] for i in touched}
    assert after == hashes(simulator.expected_records(persons))
    assert run.updated == len(touched)
    # Fetched again: the touched cases, and those the overlap window before the cursor brings back.
    assert len(touched) <= simulator.requests["HentSag"] - fetched_before == run.fetched <= len(touched) + 10


def test_a_hostile_service_still_converges_to_the_ground_truth(
    store: Store, serve_truth: Serve, persons: Pseudonymizer
) -> None:
    served = serve_truth(hostile=True, fault_seed=7, adapter={"max_attempts": 10})
    run = served.sync(store)
    assert run.status == "succeeded"
    assert stored_records(store, SOURCE) == served.expected(persons)
    assert served.simulator.paging_modified  # cases did change under the pages
    assert served.simulator.requests["fault:5001"] + served.simulator.requests["fault:5002"] > 0


def test_cases_changed_while_paging_are_all_read_in_the_same_run(
    store: Store, serve_truth: Serve, persons: Pseudonymizer
) -> None:
    # Offset tokens: a case that changes moves to the end of the listing and shifts the ones after
    # it up by one, so a single reading skips a case. The second reading finds it.
    served = serve_truth(modify_during_paging=5, fault_seed=3, adapter={"page_size": 10})
    served.sync(store)
    assert len(served.simulator.paging_modified) == 5
    assert stored_records(store, SOURCE) == served.expected(persons)


def test_one_reading_of_a_changing_listing_loses_cases(
    serve_truth: Serve, store: Store, persons: Pseudonymizer
) -> None:
    """The reason for the second reading: without it, the same changes lose cases silently."""
    served = serve_truth(modify_during_paging=5, fault_seed=3, adapter={"page_size": 10, "listing_passes": 1})
    served.sync(store)
    missing = served.expected(persons).keys() - stored_records(store, SOURCE).keys()
    assert missing


def test_undeliverable_cases_are_quarantined_and_vanished_ones_skipped(
    store: Store, serve_truth: Serve, persons: Pseudonymizer
) -> None:
    served = serve_truth()
    cases = [c.id for c in served.simulator.truth.valid_cases()]
    held = served.simulator.undeliverable(cases[0])
    gone = served.simulator.remove(cases[1])
    run = served.sync(store)
    assert run.status == "quarantined"
    stored = stored_records(store, SOURCE)
    assert stored == served.expected(persons)
    assert held not in stored
    assert gone not in stored
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT source_ref, reason FROM quarantine")).all()
    assert [(ref, "3002" in reason and "under flytning" in reason) for ref, reason in rows] == [(held, True)]


def _cli(served: Served, store_url: str, tmp_path: Path, **settings: Any) -> tuple[int, str]:
    values = {k: v for k, v in {**served.settings, **settings}.items() if v is not None}
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in values.items())
    (tmp_path / "bridge.toml").write_text(
        f'[[sources]]\nname = "{SOURCE}"\nadapter = "dubu"\nmunicipality = "{MUNICIPALITY}"\n'
        f"[sources.settings]\n{lines}\n",
        encoding="utf-8",
    )
    env = {"BRIDGE_DATABASE_URL": store_url, "BRIDGE_PERSON_KEY_SECRET": TEST_SECRET}
    done = bridge_cli("sync", cwd=tmp_path, env=env)
    output = done.stderr + done.stdout
    assert "Traceback" not in output
    return done.returncode, " ".join(output.split())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bridge.db'}"


def test_a_client_without_a_certificate_is_refused_and_told_so(
    serve_truth: Serve, sqlite_url: str, tmp_path: Path
) -> None:
    served = serve_truth()
    code, output = _cli(served, sqlite_url, tmp_path, client_cert=None, client_key=None, max_attempts=2)
    assert code == 1, output
    assert "refused the connection at the TLS layer" in output
    assert "requires a client certificate (mutual TLS) and none is configured" in output
    assert served.simulator.requests["HentAendredeSager"] == 0  # refused before any SOAP was read


def test_a_certificate_from_another_ca_is_refused_and_told_so(
    serve_truth: Serve, sqlite_url: str, tmp_path: Path
) -> None:
    served = serve_truth()
    stranger = make_tls_material(tmp_path / "other-ca")
    code, output = _cli(
        served,
        sqlite_url,
        tmp_path,
        client_cert=str(stranger.client_cert),
        client_key=str(stranger.client_key),
        max_attempts=2,
    )
    assert code == 1, output
    assert "refused the client certificate at the TLS layer" in output
    assert "issued by" in output
    assert served.simulator.requests["HentAendredeSager"] == 0


def test_a_wrong_invocation_context_fails_naming_the_fault(serve_truth: Serve, sqlite_url: str, tmp_path: Path) -> None:
    served = serve_truth()
    code, output = _cli(served, sqlite_url, tmp_path, user_uuid="00000000-0000-4000-8000-000000000001")
    assert code == 1, output
    assert "HentAendredeSager answered with fault 1002 (Client)" in output
    assert "Ingen serviceaftale" in output
    assert "user_uuid" in output  # what to check
    assert served.simulator.requests["fault:1002"] == 1  # an auth fault is not retried
