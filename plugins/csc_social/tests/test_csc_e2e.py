"""End to end: the simulator writes nights of the ground truth, the sync engine reads them with the adapter.

After each night the store equals the truth; closed cases are closed, deleted ones marked
deleted and never removed; a crash after any batch resumes to exactly the truth; and no CPR
of the truth is in the store outside the quarantine's payloads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from tests.conftest import TEST_SECRET
from tests.storecheck import bridge_cli, dump, stored_records

from bridge.adapter import Batch
from bridge.config import BridgeConfig, parse_config
from bridge.privacy import Pseudonymizer
from bridge.store import Store, open_store
from bridge.sync import run_sync
from bridge.synthetic.generate import generate
from bridge.synthetic.truth import GroundTruth
from bridge_csc_social.adapter import CscSocialAdapter
from bridge_csc_social.simulator import CscSimulator, source_settings, write_nights

MUNICIPALITY = "561"
SOURCE = "esbjerg-csc"


def make_truth(invalid: int = 5) -> GroundTruth:
    return generate(seed=561, caseworkers=3, invalid=invalid, municipality_codes=[MUNICIPALITY])


def make_config(drop: Path, **settings: Any) -> BridgeConfig:
    source = {"name": SOURCE, "adapter": "csc_social", "municipality": MUNICIPALITY}
    return parse_config({"sources": [{**source, "settings": source_settings(drop, **settings)}]}, Path("."))


def expected(simulator: CscSimulator, persons: Pseudonymizer) -> dict[str, Any]:
    return {r.source_ref: r for r in simulator.expected_records(persons)}


def _cases(store: Store) -> dict[str, tuple[str, bool]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT source_ref, status, deleted_at IS NOT NULL FROM cases WHERE source = :s"), {"s": SOURCE}
        )
        return {ref: (status, bool(deleted)) for ref, status, deleted in rows}


def _no_cpr_outside_quarantine_payloads(store: Store, truth: GroundTruth) -> None:
    tables = dump(store)
    content = json.dumps({k: v for k, v in tables.items() if k != "quarantine"}, default=str)
    with store.engine.connect() as conn:
        reasons = " ".join(conn.execute(text("SELECT reason FROM quarantine")).scalars())
    for cpr in truth.cprs():
        for written in (cpr, cpr.replace("-", "")):
            assert written not in content
            assert written not in reasons


def test_three_nights_leave_the_store_equal_to_the_truth(
    store: Store, secret_env: str, persons: Pseudonymizer, tmp_path: Path
) -> None:
    truth = make_truth()
    simulator = CscSimulator(truth, tmp_path / "drop", seed=3)
    config = make_config(tmp_path / "drop", batch_size=40)
    closed: set[str] = set()
    for night in (1, 2, 3):
        name = simulator.night()
        run = run_sync(store, config, SOURCE)
        assert run.status == ("quarantined" if night == 1 else "succeeded"), (name, run.error)
        assert stored_records(store, SOURCE) == expected(simulator, persons)
        plan = simulator.plans[-1]
        closed |= {str(i) for i in plan.case_ids if truth.cases[i - 1001].closed is not None}
        stored = _cases(store)
        assert {ref for ref, (_, deleted) in stored.items() if deleted} == {str(i) for i in simulator.deleted}
        assert all(stored[ref][0] == "closed" for ref in closed)
        if night > 1:
            assert run.deleted == len(plan.deleted) == 1
            assert (run.inserted, run.updated) == (2, len(plan.case_ids) - 2)
    assert len(simulator.deleted) == 2  # still there, marked
    with store.engine.connect() as conn:
        quarantined = conn.execute(text("SELECT source_ref, reason FROM quarantine")).all()
    delivered_broken = {str(c.id) for c in truth.invalid_cases() if c.id in simulator.present}
    assert len(delivered_broken) >= 4  # one, closed before it opened, is older than the export window
    assert {ref for ref, _ in quarantined} == delivered_broken
    _no_cpr_outside_quarantine_payloads(store, truth)


class _Crash(Exception):
    pass


@pytest.mark.parametrize("after", [1, 2, 3])
def test_a_crash_after_any_batch_resumes_to_exactly_the_truth(
    secret_env: str, persons: Pseudonymizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: int
) -> None:
    """Sets of several batches: a crash inside a set keeps nothing of it, one after a set keeps that set."""
    simulator = write_nights(make_truth(invalid=0), tmp_path / "drop", 1, seed=4)
    config = make_config(tmp_path / "drop", batch_size=4)
    store = open_store(f"sqlite:///{tmp_path / 'bridge.db'}")
    run_sync(store, config, SOURCE)
    simulator.night()
    simulator.night()
    fetch = CscSocialAdapter.fetch
    seen: list[Batch] = []

    def crashing(self: CscSocialAdapter, cursor: str | None) -> Iterator[Batch]:
        for batch in fetch(self, cursor):
            yield batch
            seen.append(batch)
            if len(seen) == after:
                raise _Crash

    monkeypatch.setattr(CscSocialAdapter, "fetch", crashing)
    with pytest.raises(_Crash):
        run_sync(store, config, SOURCE)
    committed = 1 + sum(1 for b in seen if not b.continues)
    with store.engine.connect() as conn:
        cursor = conn.execute(text("SELECT cursor FROM sync_state")).scalar()
    assert len(json.loads(cursor)["applied"] if cursor else []) == committed
    # Exactly the sets committed are in the store: nothing of the set the crash interrupted.
    plans = simulator.plans[:committed]
    assert set(_cases(store)) == {str(i) for plan in plans for i in plan.case_ids}
    assert {ref for ref, (_, gone) in _cases(store).items() if gone} == {str(i) for p in plans for i in p.deleted}
    monkeypatch.setattr(CscSocialAdapter, "fetch", fetch)
    run = run_sync(store, config, SOURCE)
    assert run.status == "succeeded"
    assert stored_records(store, SOURCE) == expected(simulator, persons)
    assert {ref for ref, (_, gone) in _cases(store).items() if gone} == {str(i) for i in simulator.deleted}
    store.dispose()


def test_bridge_sync_reads_the_drop_from_the_command_line(tmp_path: Path, persons: Pseudonymizer) -> None:
    simulator = write_nights(make_truth(invalid=2), tmp_path / "drop", 2)
    (tmp_path / "bridge.toml").write_text(
        f'[[sources]]\nname = "{SOURCE}"\nadapter = "csc_social"\nmunicipality = "{MUNICIPALITY}"\n'
        f"[sources.settings]\ndrop = {json.dumps(str(tmp_path / 'drop'))}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    env = {"BRIDGE_DATABASE_URL": url, "BRIDGE_PERSON_KEY_SECRET": TEST_SECRET}
    first = bridge_cli("sync", cwd=tmp_path, env=env)
    assert first.returncode == 4, first.stderr  # the two broken cases are quarantined
    again = bridge_cli("sync", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert "2 sets already applied" in again.stderr
    store = open_store(url)
    assert stored_records(store, SOURCE) == expected(simulator, persons)
    store.dispose()
    for cpr in simulator.truth.cprs():
        assert cpr not in first.stderr + again.stderr


def test_bridge_simulate_writes_nights_into_a_drop_folder(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    args = ("simulate", "csc-social", "--drop", str(drop), "--nights", "3", "--cases", "60", "--municipality", "630")
    done = bridge_cli(*args, "--set", "in_progress=3", cwd=tmp_path, env={})
    assert done.returncode == 0, done.stderr
    assert f'adapter = "csc_social"\nmunicipality = "630"\n[sources.settings]\ndrop = "{drop}"' in done.stdout
    sets = sorted(p.name for p in drop.iterdir())
    assert len(sets) == 3
    assert [(drop / s / "manifest.json").exists() for s in sets] == [True, True, False]
    assert (drop / sets[1] / "deleted.csv").exists()
    again = bridge_cli(*args, cwd=tmp_path, env={})
    assert again.returncode == 2
    assert "already holds extract sets" in again.stderr
    wrong = bridge_cli("simulate", "csc-social", "--drop", str(tmp_path / "other"), "--set", "truncated=2",
                       cwd=tmp_path, env={})
    assert wrong.returncode == 2
    assert "unknown option 'truncated'" in wrong.stderr


def test_quarantine_replay_says_what_settles_a_row(store: Store, secret_env: str, tmp_path: Path) -> None:
    from bridge.errors import BridgeError
    from bridge.sync.replay import replay_quarantined

    write_nights(make_truth(invalid=1), tmp_path / "drop", 1)
    config = make_config(tmp_path / "drop")
    assert run_sync(store, config, SOURCE).quarantined > 0
    with pytest.raises(BridgeError, match="ask the vendor for a corrected delivery"):
        replay_quarantined(store, config, SOURCE)
