"""The Dagster definitions, materialised in-process against the demo's sources and simulators.

Each outcome of a run — succeeded, quarantined, lock held, failed — is checked against the
ground truth the source serves and against the run ledger, not only that Dagster ran.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from tests.conftest import TEST_SECRET
from tests.storecheck import dump

import bridge
from bridge.api import Bridge
from bridge.cli.demo import DEMO_CONFIG
from bridge.config import SourceSettings, load_config
from bridge.errors import ConfigError
from bridge.model.tables import SyncRun
from bridge.privacy import Pseudonymizer
from bridge.store import Store
from bridge.sync.lock import source_lock
from bridge.synthetic.adapter import SyntheticConfig
from bridge.synthetic.truth import GroundTruth
from bridge_dagster import (
    DEFAULT_RETRY_POLICY,
    JOB,
    QUARANTINE_CHECK,
    SCHEDULE,
    asset_key,
    definitions_from_config,
    op_name,
)

NO_RETRY = dg.RetryPolicy(max_retries=0)
CODES = ("461", "751")


def synthetic(name: str, municipality: str = "461", **settings: object) -> str:
    """A ``[[sources]]`` block of the built-in synthetic source."""
    lines = ["[[sources]]", f'name = "{name}"', 'adapter = "synthetic"', f'municipality = "{municipality}"']
    lines += ["[sources.settings]", *(f"{key} = {json.dumps(value)}" for key, value in settings.items())]
    return "\n".join(lines) + "\n"


def write_config(directory: Path, *sources: str) -> Path:
    path = directory / "bridge.toml"
    path.write_text("\n".join(sources), encoding="utf-8")
    return path


def materialise(
    path: Path,
    *,
    retry_policy: dg.RetryPolicy = NO_RETRY,
    full: tuple[str, ...] = (),
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Run the job the nightly schedule runs, in this process; ``full`` names the sources run with full = true."""
    job = definitions_from_config(path, retry_policy=retry_policy).resolve_job_def(JOB)
    run_config = {"ops": {op_name(name): {"config": {"full": True}} for name in full}}
    return job.execute_in_process(run_config=run_config, raise_on_error=False, instance=instance)


def metadata(result: dg.ExecuteInProcessResult, source: str) -> dict[str, Any]:
    [materialisation] = result.asset_materializations_for_node(op_name(source))
    return {key: value.value for key, value in materialisation.metadata.items()}


def check_of(result: dg.ExecuteInProcessResult, source: str) -> dg.AssetCheckEvaluation:
    [check] = [c for c in result.get_asset_check_evaluations() if c.asset_key == asset_key(source)]
    assert check.check_name == QUARANTINE_CHECK
    return check


def ledger(store: Store, source: str) -> list[SyncRun]:
    """The source's runs, newest first, read from the store."""
    return Bridge(store).runs(source=source)


def seconds(run: SyncRun) -> float:
    assert run.finished_at is not None
    return (run.finished_at - run.started_at).total_seconds()


def counted(run: SyncRun, outcome: str, **counts: int | bool) -> dict[str, Any]:
    """The metadata a run must carry: the given counters, the others zero, and the ledger's id and duration."""
    zero = {"full": False, "fetched": 0, "inserted": 0, "updated": 0, "unchanged": 0, "quarantined": 0, "deleted": 0}
    return {"outcome": outcome, "run_id": run.id, "status": run.status, **zero, **counts, "duration_s": seconds(run)}


def live_cases(store: Store, source: str) -> int:
    with store.engine.connect() as conn:
        query = text("SELECT count(*) FROM cases WHERE source = :s AND deleted_at IS NULL")
        return int(conn.execute(query, {"s": source}).scalar_one())


@pytest.fixture
def to_store(store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Store:
    """Every bridge.toml written by a test syncs into the emptied test store (SQLite and PostgreSQL)."""
    monkeypatch.setenv("BRIDGE_DATABASE_URL", store_url)
    return store


def demo_truth(source: SourceSettings) -> GroundTruth:
    if source.simulator is not None:
        return source.simulator.truth(source.municipality)
    return SyntheticConfig.model_validate(source.settings).truth(source.municipality)


@pytest.mark.slow
def test_every_demo_source_materialises_with_its_quarantine_as_a_warning(tmp_path: Path, to_store: Store) -> None:
    """The demo's three sources (synthetic, SB-SYS and DUBU simulators) each quarantine their broken cases."""
    path = tmp_path / "bridge.toml"
    path.write_text(DEMO_CONFIG, encoding="utf-8")
    (tmp_path / "person-key.secret").write_text("a-demo-secret-for-the-dagster-tests", encoding="utf-8")
    config = load_config(path)
    instance = dg.DagsterInstance.ephemeral()
    result = materialise(path, instance=instance)
    assert result.success
    materialised = {event.asset_key for event in result.get_asset_materialization_events()}
    assert materialised == {asset_key(s.name) for s in config.sources}
    assert {s.adapter for s in config.sources} == {"synthetic", "sbsys", "dubu"}
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    for source in config.sources:
        truth = demo_truth(source)
        broken = sum(1 for _ in truth.invalid_cases())
        assert broken > 0
        [run] = ledger(to_store, source.name)
        assert metadata(result, source.name) == counted(
            run, "quarantined", fetched=len(truth.cases), inserted=len(truth.cases) - broken, quarantined=broken
        )
        check = check_of(result, source.name)
        assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.WARN)
        assert check.metadata["quarantined"].value == broken
        assert live_cases(to_store, source.name) == len(truth.cases) - broken
        assert any(f"{source.name}: run {run.id} quarantined {broken} records" in w for w in warnings)
    # The quarantine holds CPR numbers in its payloads; none of them reaches Dagster's event log.
    logged = "\n".join(repr(entry) for entry in instance.all_logs(result.run_id))
    cprs = set().union(*(demo_truth(s).cprs() for s in config.sources))
    assert len(cprs) > 500
    assert not [cpr for cpr in cprs if cpr in logged or cpr.replace("-", "") in logged]
    assert "a-demo-secret-for-the-dagster-tests" not in logged


@pytest.mark.slow
def test_the_job_runs_each_source_in_a_process_of_its_own(
    tmp_path: Path, to_store: Store, store_url: str, secret_env: str
) -> None:
    """As deployed: `dagster job execute` on a code location, Dagster's multiprocess executor, one store.

    PostgreSQL takes the sources at once; SQLite, one writer at a time, one after another (as the README says).
    """
    path = write_config(
        tmp_path, *(synthetic(f"m{code}", code, seed=n, caseworkers=1, cases=20) for n, code in enumerate(CODES))
    )
    (tmp_path / "location.py").write_text(
        f"from bridge_dagster import definitions_from_config\ndefs = definitions_from_config({str(path)!r})\n",
        encoding="utf-8",
    )
    at_once = 1 if store_url.startswith("sqlite") else len(CODES)
    (tmp_path / "run.yaml").write_text(
        f"execution: {{config: {{multiprocess: {{max_concurrent: {at_once}}}}}}}\n", encoding="utf-8"
    )
    (tmp_path / "home").mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    command = [str(Path(sys.executable).parent / "dagster"), "job", "execute", "-f", "location.py", "-j", JOB]
    done = subprocess.run(
        [*command, "-c", "run.yaml"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    starts = re.findall(r" - (\d+) - (sync_m\d+) - STEP_START", done.stderr)
    assert sorted(step for _, step in starts) == sorted(op_name(f"m{code}") for code in CODES)
    assert len({pid for pid, _ in starts}) == len(CODES)
    assert sorted((r.source, r.status, r.inserted) for r in Bridge(to_store).runs()) == [
        (f"m{code}", "succeeded", 20) for code in sorted(CODES)
    ]


def test_a_succeeding_source_materialises_with_the_ledger_counters(
    tmp_path: Path, to_store: Store, secret_env: str
) -> None:
    first_truth = SyntheticConfig(seed=3, caseworkers=2, cases=40).truth("461")
    path = write_config(tmp_path, synthetic("odense", seed=3, caseworkers=2, cases=40))
    first = materialise(path)
    assert first.success
    [run] = ledger(to_store, "odense")
    assert metadata(first, "odense") == counted(run, "succeeded", fetched=40, inserted=40)
    check = check_of(first, "odense")
    assert check.passed
    assert check.metadata["quarantined"].value == 0

    # The source now serves 35 cases drawn anew: a full run inserts, updates, keeps and deletes.
    second_truth = SyntheticConfig(seed=3, caseworkers=2, cases=35).truth("461")
    persons = Pseudonymizer(SecretStr(TEST_SECRET))
    before = {r.source_ref: r.content_hash() for r in first_truth.expected_records(persons)}
    after = {r.source_ref: r.content_hash() for r in second_truth.expected_records(persons)}
    expected = {
        "inserted": sum(ref not in before for ref in after),
        "updated": sum(ref in before and before[ref] != digest for ref, digest in after.items()),
        "unchanged": sum(before.get(ref) == digest for ref, digest in after.items()),
        "deleted": len(before.keys() - after.keys()),
    }
    assert expected["updated"] > 0
    assert expected["unchanged"] > 0
    assert expected["deleted"] == 5
    path = write_config(tmp_path, synthetic("odense", seed=3, caseworkers=2, cases=35))
    second = materialise(path, full=("odense",))
    assert second.success
    run, _ = ledger(to_store, "odense")
    assert metadata(second, "odense") == counted(run, "succeeded", full=True, fetched=35, **expected)
    assert live_cases(to_store, "odense") == 35


def test_a_source_whose_lock_is_held_is_skipped_and_changes_nothing(
    tmp_path: Path, to_store: Store, secret_env: str
) -> None:
    path = write_config(tmp_path, synthetic("odense", seed=3, caseworkers=2, cases=40))
    untouched = dump(to_store)
    with source_lock(to_store, "odense"):  # as another run of the source would hold it
        held = materialise(path)
    assert held.success
    assert held.asset_materializations_for_node(op_name("odense")) == []
    assert held.get_asset_check_evaluations() == []
    [observation] = held.asset_observations_for_node(op_name("odense"))
    assert observation.metadata["outcome"].value == "skipped"
    reason = str(observation.metadata["reason"].value)
    assert re.fullmatch(r"another sync of 'odense' is running( \(.+:\d+\))?; this run changed nothing", reason)
    assert ledger(to_store, "odense") == []
    assert dump(to_store) == untouched

    freed = materialise(path)
    [run] = ledger(to_store, "odense")
    assert metadata(freed, "odense") == counted(run, "succeeded", fetched=40, inserted=40)


def test_a_failing_source_fails_and_is_retried_from_its_last_committed_batch(
    tmp_path: Path, to_store: Store, secret_env: str
) -> None:
    source = synthetic("odense", seed=3, caseworkers=2, cases=40, page_size=15, fail_after_batches=1)
    result = materialise(write_config(tmp_path, source), retry_policy=dg.RetryPolicy(max_retries=1))
    assert not result.success
    assert result.retry_attempts_for_node(op_name("odense")) == 1
    retried, first = ledger(to_store, "odense")
    # Each attempt commits one batch of 15 before the source breaks; the retry resumes after the first.
    assert [(r.status, r.fetched, r.inserted) for r in (first, retried)] == [("failed", 15, 15), ("failed", 15, 15)]
    assert retried.cursor_before == first.cursor_after
    assert live_cases(to_store, "odense") == 30
    [failure] = result.get_step_failure_events()
    assert failure.step_failure_data.user_failure_data is not None
    data = failure.step_failure_data.user_failure_data
    assert data.description == f"sync of odense failed: {retried.error}"
    assert "synthetic source failed after 1 batches" in data.description
    assert {k: v.value for k, v in data.metadata.items()} == counted(retried, "failed", fetched=15, inserted=15)


def test_a_configuration_error_fails_without_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret_env: str
) -> None:
    monkeypatch.delenv("BRIDGE_DATABASE_URL", raising=False)
    monkeypatch.delenv("BRIDGE_DAGSTER_TEST_UNSET", raising=False)
    source = "\n".join(
        [
            '[[sources]]\nname = "aarhus-sbsys"\nadapter = "sbsys"\nmunicipality = "751"\n[sources.settings]',
            'base_url = "http://127.0.0.1:9/proxy"\ngrant_type = "client_credentials"\nclient_id = "bridge"',
            'client_secret_env = "BRIDGE_DAGSTER_TEST_UNSET"\n',
        ]
    )
    result = materialise(write_config(tmp_path, source), retry_policy=dg.RetryPolicy(max_retries=2))
    assert not result.success
    assert result.retry_attempts_for_node(op_name("aarhus-sbsys")) == 0
    [failure] = result.get_step_failure_events()
    assert failure.step_failure_data.user_failure_data is not None
    assert failure.step_failure_data.user_failure_data.description == (
        "sync of aarhus-sbsys cannot start: sources.aarhus-sbsys.settings.client_secret_env: "
        "the environment variable 'BRIDGE_DAGSTER_TEST_UNSET' is not set"
    )
    with bridge.open(f"sqlite:///{tmp_path / 'bridge.db'}") as b:
        assert b.runs() == []


def test_a_store_that_cannot_be_opened_fails_and_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret_env: str
) -> None:
    """A database outage may pass, unlike a configuration error: the retry policy applies."""
    monkeypatch.setenv("BRIDGE_DATABASE_URL", "postgresql+psycopg://bridge@127.0.0.1:9/bridge")  # nothing listens
    path = write_config(tmp_path, synthetic("odense", seed=3, caseworkers=2, cases=40))
    result = materialise(path, retry_policy=dg.RetryPolicy(max_retries=1))
    assert not result.success
    assert result.retry_attempts_for_node(op_name("odense")) == 1
    [failure] = result.get_step_failure_events()
    assert failure.step_failure_data.user_failure_data is not None
    description = failure.step_failure_data.user_failure_data.description
    assert description is not None
    assert description.startswith(
        "sync of odense: cannot open the store postgresql+psycopg://bridge@127.0.0.1:9/bridge"
    )


def test_definitions_hold_an_asset_per_source_a_job_and_a_nightly_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, synthetic("odense-synthetic"), synthetic("aarhus", municipality="751"))
    monkeypatch.setenv("BRIDGE_CONFIG", str(path))
    defs = definitions_from_config()
    keys = {asset_key("odense-synthetic"), asset_key("aarhus")}
    assert {spec.key for spec in defs.resolve_all_asset_specs()} == keys
    assert defs.resolve_job_def(JOB).asset_layer.executable_asset_keys == keys
    for key in keys:
        assert defs.resolve_assets_def(key).op.retry_policy == DEFAULT_RETRY_POLICY
    schedule = defs.resolve_schedule_def(SCHEDULE)
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "0 2 * * *",
        "Europe/Copenhagen",
        JOB,
    )
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED

    policy = dg.RetryPolicy(max_retries=5, delay=60)
    custom = definitions_from_config(
        path, cron="30 1 * * 1-5", timezone="UTC", retry_policy=policy, schedule_status=dg.DefaultScheduleStatus.RUNNING
    )
    schedule = custom.resolve_schedule_def(SCHEDULE)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 1 * * 1-5", "UTC")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert custom.resolve_assets_def(asset_key("aarhus")).op.retry_policy == policy


def test_a_configuration_that_cannot_run_is_refused_when_the_definitions_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file"):
        definitions_from_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"no \[\[sources\]\] configured"):
        definitions_from_config(write_config(tmp_path, '[store]\nurl = "sqlite:///x.db"\n'))
    twins = write_config(tmp_path, synthetic("odense-x"), synthetic("odense_x"))
    shared = r"sources 'odense-x' and 'odense_x' would share the Dagster step 'sync_odense_x'"
    with pytest.raises(ConfigError, match=shared):
        definitions_from_config(twins)
