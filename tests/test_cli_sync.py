"""The real ``bridge`` command in subprocesses: exit codes, kill -9, the lock, logs, the demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bridge.privacy import Pseudonymizer
from bridge.store import Store, open_store
from bridge.synthetic.adapter import SyntheticConfig
from tests.conftest import TEST_SECRET
from tests.leakscan import LeakScan
from tests.storecheck import bridge_cli, dump, hashes, stored_records

pytestmark = pytest.mark.slow

MUNICIPALITY = "461"


def write_config(directory: Path, **settings: Any) -> Path:
    values = {"seed": 11, "caseworkers": 3, "page_size": 20, **settings}
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
    path = directory / "bridge.toml"
    path.write_text(
        f"""
[[sources]]
name = "syn"
adapter = "synthetic"
municipality = "{MUNICIPALITY}"
[sources.settings]
{lines}
""",
        encoding="utf-8",
    )
    return path


def env_for(store_url: str) -> dict[str, str]:
    return {"BRIDGE_DATABASE_URL": store_url, "BRIDGE_PERSON_KEY_SECRET": TEST_SECRET}


def expected(seed: int = 11, caseworkers: int = 3, invalid: int = 0) -> Any:
    return SyntheticConfig(seed=seed, caseworkers=caseworkers, invalid=invalid).truth(MUNICIPALITY)


def test_sync_exit_codes_json_output_and_cpr_free_logs(
    store: Store, store_url: str, tmp_path: Path, persons: Pseudonymizer, leak_scan: LeakScan
) -> None:
    write_config(tmp_path, invalid=5)
    truth = expected(invalid=5)
    leak_scan.forbid_truth(truth, persons)
    leak_scan.watch(store)
    done = bridge_cli("--format", "json", "sync", cwd=tmp_path, env=env_for(store_url))
    leak_scan.said("stderr", done.stderr)
    assert done.returncode == 4, done.stderr
    [run] = json.loads(done.stdout)
    assert run["quarantined"] == 5
    assert run["inserted"] == sum(1 for _ in truth.valid_cases())
    assert hashes(stored_records(store, "syn")) == hashes(truth.expected_records(persons))

    log_lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any("sync of syn" in line["message"] for line in log_lines)
    output = done.stdout + done.stderr
    for cpr in truth.cprs():
        assert cpr not in output
        assert cpr.replace("-", "") not in output

    listed = bridge_cli("quarantine", "list", "--format", "json", cwd=tmp_path, env=env_for(store_url))
    reasons = [row["reason"] for row in json.loads(listed.stdout)]
    assert len(reasons) == 5
    for cpr in truth.cprs():
        assert all(cpr not in r for r in reasons)


def test_usage_and_config_errors_exit_2_without_a_traceback(tmp_path: Path, store_url: str) -> None:
    missing = bridge_cli("sync", cwd=tmp_path, env=env_for(store_url))
    assert missing.returncode == 2
    assert "bridge init" in missing.stderr
    assert "Traceback" not in missing.stderr
    write_config(tmp_path)
    unknown = bridge_cli("sync", "nope", cwd=tmp_path, env=env_for(store_url))
    assert unknown.returncode == 2
    assert "no source named 'nope'" in unknown.stderr
    no_secret = bridge_cli("sync", cwd=tmp_path, env={"BRIDGE_DATABASE_URL": store_url, "BRIDGE_PERSON_KEY_SECRET": ""})
    assert no_secret.returncode == 2
    assert "BRIDGE_PERSON_KEY_SECRET" in no_secret.stderr


def _start_slow_sync(tmp_path: Path, store_url: str) -> subprocess.Popen[str]:
    env = {**os.environ, **env_for(store_url)}
    return subprocess.Popen(
        [sys.executable, "-m", "bridge", "sync"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for_committed_batches(store_url: str, at_least: int, proc: subprocess.Popen[str]) -> int:
    store = open_store(store_url, migrate=False)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            try:
                with store.engine.connect() as conn:
                    fetched = conn.execute(text("SELECT max(fetched) FROM sync_runs")).scalar()
            except Exception:  # the schema may not exist yet in a brand-new database
                fetched = None
            if fetched is not None and fetched >= at_least:
                return int(fetched)
            time.sleep(0.05)
        raise AssertionError("the sync never committed a batch")
    finally:
        store.dispose()


def test_kill_minus_9_mid_run_then_rerun_leaves_exactly_the_truth(
    store: Store, store_url: str, tmp_path: Path, persons: Pseudonymizer, leak_scan: LeakScan
) -> None:
    leak_scan.forbid_truth(expected(), persons)
    leak_scan.watch(store)
    write_config(tmp_path, batch_delay=0.2)
    proc = _start_slow_sync(tmp_path, store_url)
    _wait_for_committed_batches(store_url, 40, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    truth = expected()
    partial = stored_records(store, "syn")
    assert 0 < len(partial) < sum(1 for _ in truth.valid_cases())

    write_config(tmp_path)
    rerun = bridge_cli("sync", "--format", "json", cwd=tmp_path, env=env_for(store_url))
    leak_scan.said("stderr of the rerun", rerun.stderr)
    assert rerun.returncode == 0, rerun.stderr
    assert hashes(stored_records(store, "syn")) == hashes(truth.expected_records(persons))
    runs = json.loads(bridge_cli("runs", "--format", "json", cwd=tmp_path, env=env_for(store_url)).stdout)
    assert [r["status"] for r in runs] == ["succeeded", "abandoned"]
    assert runs[0]["inserted"] == len(truth.expected_records(persons)) - len(partial)


def test_second_sync_while_one_runs_exits_3_and_the_first_completes(
    store: Store, store_url: str, tmp_path: Path, persons: Pseudonymizer, leak_scan: LeakScan
) -> None:
    leak_scan.forbid_truth(expected(), persons)
    # Long enough per batch that the first run is still going while two more commands start on a busy machine.
    write_config(tmp_path, batch_delay=4.0)
    first = _start_slow_sync(tmp_path, store_url)
    _wait_for_committed_batches(store_url, 20, first)
    runs_before = bridge_cli("runs", "--format", "json", cwd=tmp_path, env=env_for(store_url)).stdout
    second = bridge_cli("sync", cwd=tmp_path, env=env_for(store_url))
    leak_scan.said("stderr of the second", second.stderr)
    assert second.returncode == 3, second.stderr
    assert "another sync of 'syn' is running" in second.stderr
    runs_after = json.loads(bridge_cli("runs", "--format", "json", cwd=tmp_path, env=env_for(store_url)).stdout)
    assert [r["run"] for r in runs_after] == [r["run"] for r in json.loads(runs_before)]
    assert first.wait(timeout=120) == 0, first.communicate()
    assert hashes(stored_records(store, "syn")) == hashes(expected().expected_records(persons))


def test_adapters_lists_installed_adapters_with_distribution_and_version(tmp_path: Path) -> None:
    done = bridge_cli("adapters", "--format", "json", cwd=tmp_path, env={})
    assert done.returncode == 0, done.stderr
    listed = {row["adapter"]: row for row in json.loads(done.stdout)}
    assert listed["synthetic"]["distribution"] == "bridge"
    assert listed["synthetic"]["version"] == "0.1.0"


def test_demo_matches_the_ground_truth_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    env = {"BRIDGE_PERSON_KEY_SECRET": "", "BRIDGE_DATABASE_URL": ""}
    first = bridge_cli("demo", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "matches" in first.stdout
    demo_store = open_store(f"sqlite:///{tmp_path / 'bridge-demo' / 'bridge.db'}")
    before = dump(demo_store)
    second = bridge_cli("demo", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert dump(demo_store) == before
    with demo_store.engine.connect() as conn:
        last = conn.execute(
            text("SELECT source, inserted, updated, unchanged, fetched, quarantined FROM sync_runs "
                 "WHERE id > (SELECT max(id) FROM sync_runs) - (SELECT count(DISTINCT source) FROM sync_runs)")
        ).all()
    demo_store.dispose()
    for _source, inserted, updated, unchanged, fetched, quarantined in last:
        assert (inserted, updated) == (0, 0)
        assert unchanged == fetched - quarantined


def test_init_writes_a_template_that_check_and_db_upgrade_accept(tmp_path: Path, store_url: str) -> None:
    env = env_for(store_url)
    assert bridge_cli("init", cwd=tmp_path, env=env).returncode == 0
    template = (tmp_path / "bridge.toml").read_text(encoding="utf-8")
    assert 'adapter = "synthetic"' in template
    again = bridge_cli("init", cwd=tmp_path, env=env)
    assert again.returncode == 2  # a usage error: nothing was written
    assert "--force" in again.stderr
    checked = bridge_cli("check", cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr
    assert "ok" in checked.stderr
    upgraded = bridge_cli("db", "upgrade", cwd=tmp_path, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"schema at revision {Store.head_revision()}" in upgraded.stderr


def test_quarantine_show_prints_the_payload_only_on_request_and_masked(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    write_config(tmp_path, invalid=5)
    env = env_for(store_url)
    bridge_cli("sync", cwd=tmp_path, env=env)
    listed = json.loads(bridge_cli("quarantine", "list", "--format", "json", cwd=tmp_path, env=env).stdout)
    truth = expected(invalid=5)
    assert len(listed) == 5
    for row in listed[:2]:
        plain = bridge_cli("quarantine", "show", str(row["id"]), cwd=tmp_path, env=env)
        assert row["reason"] in plain.stdout.replace("\n", " ") or row["reason"][:30] in plain.stdout
        assert '"child"' not in plain.stdout
        shown = bridge_cli("quarantine", "show", str(row["id"]), "--payload", cwd=tmp_path, env=env)
        assert '"child"' in shown.stdout
        for cpr in truth.cprs():
            assert cpr not in shown.stdout
            assert cpr.replace("-", "") not in shown.stdout
    replayed = bridge_cli("quarantine", "replay", "syn", cwd=tmp_path, env=env)
    assert replayed.returncode == 4
    assert "0 stored, 5 still rejected" in replayed.stderr


def test_lock_release_wants_force_names_the_holder_and_teaches_in_its_help(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    write_config(tmp_path)
    env = env_for(store_url)
    unforced = bridge_cli("lock", "release", "syn", cwd=tmp_path, env=env)
    assert unforced.returncode == 2
    assert "add --force" in unforced.stderr
    assert bridge_cli("lock", "release", "nope", "--force", cwd=tmp_path, env=env).returncode == 2
    released = bridge_cli("--format", "json", "lock", "release", "syn", "--force", cwd=tmp_path, env=env)
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout) == {"source": "syn", "was_held": False, "holder": None}
    helped = bridge_cli("lock", "release", "--help", cwd=tmp_path, env=env)
    assert "ends the database session" in helped.stdout
    assert "end that process" in helped.stdout
