"""End to end over loopback HTTP: the sync engine, the sbsys adapter and the simulator."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from tests.conftest import TEST_SECRET
from tests.storecheck import bridge_cli, dump, hashes, stored_records

from bridge.config import BridgeConfig, parse_config
from bridge.model.tables import SyncRun
from bridge.privacy import Pseudonymizer
from bridge.simulation.server import serve
from bridge.store import Store
from bridge.sync import run_sync
from bridge.sync.replay import replay_quarantined
from bridge.synthetic.generate import generate
from bridge.synthetic.truth import GroundTruth
from bridge.testing.storecheck import unresolved_quarantine
from bridge_sbsys.simulator import SbsysSimulator, SimulatorSettings, connection_settings

pytestmark = pytest.mark.slow

MUNICIPALITY = "461"
SOURCE = "sbsys"
PROXY = "/convergens-sbsip-sbsys-webapi-proxy/proxy"


def make_truth(seed: int = 5, invalid: int = 0, cases: int | None = None, caseworkers: int = 3) -> GroundTruth:
    return generate(
        seed=seed,
        municipalities=1,
        caseworkers=caseworkers,
        cases=cases,
        invalid=invalid,
        municipality_codes=[MUNICIPALITY],
    )


class Served:
    """A running simulator and the bridge configuration that reads it."""

    def __init__(self, simulator: SbsysSimulator, base_url: str, **adapter_settings: Any) -> None:
        self.simulator = simulator
        self.base_url = base_url
        settings = connection_settings(base_url, simulator.settings) | {
            "page_size": 25,
            "concurrency": 4,
            "retry_base_delay": 0.001,
            **adapter_settings,
        }
        self.settings = settings
        self.config: BridgeConfig = parse_config(
            {"sources": [{"name": SOURCE, "adapter": "sbsys", "municipality": MUNICIPALITY, "settings": settings}]},
            Path("."),
        )

    def sync(self, store: Store) -> SyncRun:
        return run_sync(store, self.config, SOURCE)


Serve = Callable[..., Served]


@pytest.fixture
def serve_truth(secret_env: str) -> Iterator[Serve]:
    """Start a simulator over a fresh ground truth: ``serve_truth(invalid=…, cases=…, adapter={…}, **knobs)``."""
    with ExitStack() as stack:

        def start(
            *,
            invalid: int = 0,
            cases: int | None = None,
            caseworkers: int = 3,
            adapter: dict[str, Any] | None = None,
            **knobs: Any,
        ) -> Served:
            truth = make_truth(invalid=invalid, cases=cases, caseworkers=caseworkers)
            simulator = SbsysSimulator(truth, SimulatorSettings(base_path=PROXY, **knobs))
            origin = stack.enter_context(serve(simulator.app))
            return Served(simulator, origin + PROXY, **(adapter or {}))

        yield start


@pytest.fixture
def served(serve_truth: Serve) -> Served:
    return serve_truth()


def expected(served: Served, persons: Pseudonymizer) -> dict[str, Any]:
    return {r.source_ref: r for r in served.simulator.expected_records(persons)}


def changed_refs(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {ref for ref in after if before.get(ref) != after[ref]} | (before.keys() - after.keys())


def test_full_sync_equals_the_ground_truth(store: Store, serve_truth: Serve, persons: Pseudonymizer) -> None:
    served = serve_truth(invalid=5)
    truth = served.simulator.truth
    run = served.sync(store)
    assert run.status == "quarantined"
    assert stored_records(store, SOURCE) == expected(served, persons)
    with store.engine.connect() as conn:
        quarantined = dict(conn.execute(text("SELECT source_ref, reason FROM quarantine")).all())
    assert set(quarantined) == {str(c.id) for c in truth.invalid_cases()}
    assert all(reason for reason in quarantined.values())
    # No CPR anywhere in the store but the quarantined raw payloads.
    content = json.dumps({k: v for k, v in dump(store).items() if k != "quarantine"}, default=str)
    reasons = " ".join(quarantined.values())
    for cpr in truth.cprs():
        assert cpr not in content
        assert cpr.replace("-", "") not in content
        assert cpr not in reasons


def test_incremental_sync_fetches_about_n_and_changes_exactly_those(
    store: Store, served: Served, persons: Pseudonymizer
) -> None:
    simulator = served.simulator
    served.sync(store)
    before = hashes(stored_records(store, SOURCE))
    with store.engine.connect() as conn:
        cursor = json.loads(conn.execute(text("SELECT cursor FROM sync_state")).scalar_one())
    since = datetime.fromisoformat(cursor["since"])
    fetched_before = simulator.requests["sag"]

    touched = simulator.modify(6, seed=3)
    run = served.sync(store)

    after = hashes(stored_records(store, SOURCE))
    assert changed_refs(before, after) == {str(i) for i in touched}
    assert after == hashes(simulator.expected_records(persons))
    # Fetched: the touched cases, plus those changed within the overlap window before the cursor.
    rereads = {c.id for c in simulator.truth.cases if c.modified >= since}
    assert set(map(int, touched)) <= rereads
    assert run.fetched == len(rereads) <= len(touched) + 10
    assert simulator.requests["sag"] - fetched_before == len(rereads)
    assert run.updated == len(touched)


def test_faults_still_converge_to_the_ground_truth(store: Store, serve_truth: Serve, persons: Pseudonymizer) -> None:
    served = serve_truth(
        error_rate=0.1,
        rate_limit_rate=0.05,
        retry_after=0,
        drop_rate=0.03,
        latency=0.001,
        token_lifetime=2,
        fault_seed=11,
        adapter={"max_attempts": 10},
    )
    run = served.sync(store)
    assert run.status == "succeeded"
    assert stored_records(store, SOURCE) == expected(served, persons)


def test_cases_changed_while_paging_are_neither_lost_nor_duplicated(
    store: Store, serve_truth: Serve, persons: Pseudonymizer
) -> None:
    served = serve_truth(modify_during_paging=4, fault_seed=2)
    simulator = served.simulator
    served.sync(store)
    assert len(simulator.paging_modified) == 4
    served.sync(store)  # the next incremental run picks up what changed behind the pages read
    stored = stored_records(store, SOURCE)
    assert stored == expected(served, persons)
    with store.engine.connect() as conn:
        refs = [r for (r,) in conn.execute(text("SELECT source_ref FROM cases"))]
    assert len(refs) == len(set(refs)) == len(stored)


def test_a_grant_changed_on_its_own_reaches_its_childs_case(
    store: Store, served: Served, persons: Pseudonymizer
) -> None:
    simulator = served.simulator
    served.sync(store)
    case = next(c for c in simulator.truth.valid_cases() if c.measures)
    before = stored_records(store, SOURCE)[str(case.id)]
    simulator.modify_grant(case.id)
    served.sync(store)
    after = stored_records(store, SOURCE)[str(case.id)]
    assert after.source_modified == before.source_modified  # the main case itself did not change
    assert after != before
    assert stored_records(store, SOURCE) == expected(served, persons)


def test_wrong_credentials_exit_1_naming_the_token_endpoint(served: Served, store_url: str, tmp_path: Path) -> None:
    settings = {**served.settings, "client_secret": "not-the-secret"}
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in settings.items())
    (tmp_path / "bridge.toml").write_text(
        f'[[sources]]\nname = "{SOURCE}"\nadapter = "sbsys"\nmunicipality = "{MUNICIPALITY}"\n'
        f"[sources.settings]\n{lines}\n",
        encoding="utf-8",
    )
    env = {"BRIDGE_DATABASE_URL": store_url, "BRIDGE_PERSON_KEY_SECRET": TEST_SECRET}
    done = bridge_cli("sync", cwd=tmp_path, env=env)
    assert done.returncode == 1, done.stderr
    assert served.base_url + "/auth/realms/sbsip/protocol/openid-connect/token" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "not-the-secret" not in done.stderr + done.stdout
    assert served.simulator.requests["token"] == 1  # refused credentials are not retried
    assert served.simulator.requests["search"] == 0


def test_the_cursor_never_passes_the_sources_clock(store: Store, served: Served) -> None:
    served.sync(store)
    with store.engine.connect() as conn:
        cursor = json.loads(conn.execute(text("SELECT cursor FROM sync_state")).scalar_one())
    latest = max(c.modified for c in served.simulator.truth.cases)
    assert datetime.fromisoformat(cursor["since"]) == latest.replace(
        microsecond=latest.microsecond // 1000 * 1000
    ) - timedelta(seconds=600)


def _write_config(served: Served, tmp_path: Path) -> None:
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in served.settings.items())
    (tmp_path / "bridge.toml").write_text(
        f'[[sources]]\nname = "{SOURCE}"\nadapter = "sbsys"\nmunicipality = "{MUNICIPALITY}"\n'
        f"[sources.settings]\n{lines}\n",
        encoding="utf-8",
    )


def _cli_env(store: Store) -> dict[str, str]:
    return {
        "BRIDGE_DATABASE_URL": store.engine.url.render_as_string(hide_password=False),
        "BRIDGE_PERSON_KEY_SECRET": TEST_SECRET,
    }


def test_bridge_sync_against_an_installation_unlike_the_model_stores_exactly_the_truth(
    store: Store, serve_truth: Serve, persons: Pseudonymizer, tmp_path: Path
) -> None:
    """Issue 7, must hold: pages capped at 3, filters ignored, template names it was not configured for."""
    served = serve_truth(
        invalid=3, cases=30, caseworkers=4, max_limit=3, ignore_filters=True, template_names="installation"
    )
    groups = {c.target_group for c in served.simulator.truth.valid_cases()}
    assert groups == {"udsatte", "handicap"}  # both templates are named the installation's way
    _write_config(served, tmp_path)
    done = bridge_cli("sync", cwd=tmp_path, env=_cli_env(store))
    assert done.returncode == 4, done.stderr  # the truth's three bad cases are quarantined
    assert stored_records(store, SOURCE) == expected(served, persons)
    with store.engine.connect() as conn:
        quarantined = {r for (r,) in conn.execute(text("SELECT source_ref FROM quarantine"))}
    assert quarantined == {str(c.id) for c in served.simulator.truth.invalid_cases()}
    assert served.simulator.requests["search"] > len(expected(served, persons))  # capped: many pages were read


@pytest.mark.parametrize("skew", [2, -2])
def test_a_total_that_disagrees_with_the_records_ends_bridge_sync_with_exit_1_naming_it(
    store: Store, serve_truth: Serve, tmp_path: Path, skew: int
) -> None:
    served = serve_truth(cases=20, max_limit=3, total_skew=skew)
    _write_config(served, tmp_path)
    done = bridge_cli("sync", cwd=tmp_path, env=_cli_env(store))
    assert done.returncode == 1, done.stderr
    assert "cannot be reconciled with its total" in done.stderr
    assert "Traceback" not in done.stderr
    with store.engine.connect() as conn:
        status, error = conn.execute(text("SELECT status, error FROM sync_runs")).one()
    assert status == "failed"
    assert "cannot be reconciled with its total" in error


FAULT_PROXY = ("not_found_rate", "garbage_rate", "non_object_rate", "delete_during_paging")


def test_behind_a_fault_proxy_nothing_is_silently_missing_and_a_clean_rerun_recovers_everything(
    store: Store, serve_truth: Serve, persons: Pseudonymizer
) -> None:
    """Issue 8, must hold: 404s, garbage bodies, non-object JSON and deletions while paging."""
    served = serve_truth(
        invalid=2,
        cases=40,
        not_found_rate=0.05,
        garbage_rate=0.04,
        non_object_rate=0.05,
        delete_during_paging=2,
        fault_seed=7,
        adapter={"page_size": 10, "incomplete_retries": 0},
    )
    simulator = served.simulator
    served.sync(store)
    assert len(simulator.paging_deleted) == 2
    truth = expected(served, persons)
    stored = stored_records(store, SOURCE)
    quarantined = unresolved_quarantine(store, SOURCE)
    incomplete = {ref for ref, reason in quarantined.items() if reason.startswith("incomplete: ")}
    assert incomplete  # the faults struck
    for ref, record in truth.items():  # every case is stored whole, or quarantined with its reason
        assert stored.get(ref) == record or ref in incomplete, ref
    read_before_they_went = set(stored) - set(truth)
    assert read_before_they_went <= {str(i) for i in simulator.paging_deleted}

    for knob in FAULT_PROXY:
        setattr(simulator.settings, knob, 0)
    served.sync(store)  # the incomplete cases are fetched again by reference
    assert set(unresolved_quarantine(store, SOURCE)) == {str(c.id) for c in simulator.truth.invalid_cases()}
    full = run_sync(store, served.config, SOURCE, full=True)
    assert full.deleted == len(read_before_they_went)  # the source says these are gone: its listing lacks them
    assert stored_records(store, SOURCE) == expected(served, persons)


def test_a_full_sync_marks_nothing_deleted_for_failed_requests(store: Store, serve_truth: Serve) -> None:
    served = serve_truth(cases=30, adapter={"incomplete_retries": 0})
    served.sync(store)
    before = set(stored_records(store, SOURCE))
    served.simulator.settings.not_found_rate = 0.3
    full = run_sync(store, served.config, SOURCE, full=True)
    assert full.deleted == 0
    assert set(stored_records(store, SOURCE)) == before
    assert full.quarantined > 0  # the 404s are quarantined as incomplete, to be fetched again


def test_replaying_an_incomplete_case_fetches_it_again(
    store: Store, serve_truth: Serve, persons: Pseudonymizer
) -> None:
    served = serve_truth(cases=30, garbage_rate=0.1, fault_seed=4, adapter={"incomplete_retries": 0})
    served.sync(store)
    incomplete = unresolved_quarantine(store, SOURCE)
    assert incomplete
    served.simulator.settings.garbage_rate = 0
    fetched = served.simulator.requests["sag"]
    result = replay_quarantined(store, served.config, SOURCE)
    assert (result.accepted, result.still_rejected) == (len(incomplete), 0)
    assert served.simulator.requests["sag"] - fetched == len(incomplete)  # asked anew, not re-parsed
    assert stored_records(store, SOURCE) == expected(served, persons)
    assert not unresolved_quarantine(store, SOURCE)
