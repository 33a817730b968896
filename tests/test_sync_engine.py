"""The sync engine against the synthetic source, on SQLite and PostgreSQL (issue: core, Must hold)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bridge.adapter import Adapter, Batch, Rejection
from bridge.config import BridgeConfig, parse_config
from bridge.errors import LockHeld
from bridge.hookspecs import hookimpl
from bridge.model.records import CaseRecord
from bridge.plugins import registered
from bridge.privacy import Pseudonymizer
from bridge.store import Store
from bridge.sync import BatchDone, exit_code, run_sync
from bridge.sync import ledger as ledger_module
from bridge.sync.lock import source_lock
from bridge.sync.replay import replay_quarantined
from bridge.synthetic.adapter import SyntheticAdapter, SyntheticConfig
from bridge.synthetic.truth import GroundTruth
from tests.leakscan import LeakScan
from tests.storecheck import dump, hashes, stored_records

MUNICIPALITY = "461"
SETTINGS: dict[str, Any] = {"seed": 7, "caseworkers": 3, "page_size": 25}


def make_config(**settings: Any) -> BridgeConfig:
    source = {
        "name": "syn",
        "adapter": "synthetic",
        "municipality": MUNICIPALITY,
        "municipality_name": "Odense",
        "settings": {**SETTINGS, **settings},
    }
    return parse_config({"sources": [source]}, Path("."))


def truth_for(**settings: Any) -> GroundTruth:
    return SyntheticConfig(**{**SETTINGS, **settings}).truth(MUNICIPALITY)


def assert_equals_truth(store: Store, truth: GroundTruth, persons: Pseudonymizer) -> None:
    expected = hashes(truth.expected_records(persons))
    assert hashes(stored_records(store, "syn")) == expected


def test_full_sync_equals_ground_truth_and_second_sync_changes_nothing(
    store: Store, persons: Pseudonymizer, secret_env: str
) -> None:
    config = make_config()
    truth = truth_for()
    n = sum(1 for _ in truth.valid_cases())
    assert n > 100

    first = run_sync(store, config, "syn")
    assert (first.status, first.inserted, first.updated, first.unchanged) == ("succeeded", n, 0, 0)
    assert_equals_truth(store, truth, persons)
    before = dump(store)

    second = run_sync(store, config, "syn", full=True)
    assert (second.fetched, second.inserted, second.updated, second.unchanged, second.deleted) == (n, 0, 0, n, 0)
    assert dump(store) == before
    assert exit_code(second) == 0


def test_incremental_sync_fetches_only_what_changed(store: Store, persons: Pseudonymizer, secret_env: str) -> None:
    run_sync(store, make_config(), "syn")
    after_touch = run_sync(store, make_config(touched=1, touch_count=6), "syn")
    assert (after_touch.fetched, after_touch.updated, after_touch.inserted) == (6, 6, 0)
    assert_equals_truth(store, truth_for(touched=1, touch_count=6), persons)


class Crash(RuntimeError):
    pass


@pytest.mark.parametrize("crash_after", [1, 3])
def test_crash_after_batch_k_then_rerun_gives_exactly_the_truth(
    store: Store, persons: Pseudonymizer, secret_env: str, crash_after: int, leak_scan: LeakScan
) -> None:
    leak_scan.forbid_truth(truth_for(), persons)
    leak_scan.watch(store)
    config = make_config()

    def crash(done: BatchDone) -> None:
        if done.number == crash_after:
            raise Crash(f"injected after batch {done.number}")

    with pytest.raises(Crash):
        run_sync(store, config, "syn", on_batch=crash)
    crashed = ledger_module.get_run(store, 1)
    assert crashed.status == "failed"
    assert crashed.inserted == crash_after * SETTINGS["page_size"]
    assert "injected after batch" in (crashed.error or "")

    rerun = run_sync(store, config, "syn")
    assert rerun.cursor_before == crashed.cursor_after
    assert rerun.inserted == sum(1 for _ in truth_for().valid_cases()) - crashed.inserted
    assert_equals_truth(store, truth_for(), persons)


def test_crash_inside_a_batch_transaction_rolls_the_whole_batch_back(
    store: Store, persons: Pseudonymizer, secret_env: str, monkeypatch: pytest.MonkeyPatch, leak_scan: LeakScan
) -> None:
    """A failure between writing the cases and writing the cursor leaves neither."""
    leak_scan.forbid_truth(truth_for(), persons)
    leak_scan.watch(store)
    calls = {"n": 0}
    real_set_cursor = ledger_module.set_cursor

    def failing_set_cursor(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Crash("injected before the cursor of batch 3")
        real_set_cursor(*args, **kwargs)

    monkeypatch.setattr(ledger_module, "set_cursor", failing_set_cursor)
    with pytest.raises(Crash):
        run_sync(store, make_config(), "syn")
    assert len(stored_records(store, "syn")) == 2 * SETTINGS["page_size"]
    monkeypatch.setattr(ledger_module, "set_cursor", real_set_cursor)
    run_sync(store, make_config(), "syn")
    assert_equals_truth(store, truth_for(), persons)


def test_bad_records_are_quarantined_with_reasons_and_good_ones_land(
    store: Store, persons: Pseudonymizer, secret_env: str, leak_scan: LeakScan
) -> None:
    config = make_config(invalid=5)
    truth = truth_for(invalid=5)
    leak_scan.forbid_truth(truth, persons)
    leak_scan.watch(store)
    run = run_sync(store, config, "syn")
    assert run.status == "quarantined"
    assert exit_code(run) == 4
    assert run.quarantined == 5
    assert_equals_truth(store, truth, persons)
    from bridge.api import Bridge

    rows = Bridge(store).quarantined(source="syn")
    assert sorted(r.source_ref or "" for r in rows) == sorted(str(c.id) for c in truth.invalid_cases())
    reasons = " | ".join(r.reason for r in rows)
    for fragment in ("CPR", "7", "humoer", "closed before", "2023-02-30"):
        assert fragment in reasons
    # Running again does not pile up copies of the same rejected payloads.
    run_sync(store, config, "syn", full=True)
    assert len(Bridge(store).quarantined(source="syn")) == 5


def test_replay_stores_what_now_passes_and_keeps_the_rest(
    store: Store, persons: Pseudonymizer, secret_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(invalid=5)
    run_sync(store, config, "syn")
    from bridge.api import Bridge

    [broken_date] = [q for q in Bridge(store).quarantined() if "2023-02-30" in q.reason]
    # The cause is fixed: the adapter now reads the impossible date as the month's last day.
    parse = SyntheticAdapter.parse_payload

    def fixed(self: SyntheticAdapter, payload: str) -> CaseRecord:
        return parse(self, payload.replace("2023-02-30", "2023-02-28"))

    monkeypatch.setattr(SyntheticAdapter, "parse_payload", fixed)
    result = replay_quarantined(store, config, "syn")
    assert (result.accepted, result.still_rejected) == (1, 4)
    stored = stored_records(store, "syn")[broken_date.source_ref or ""]
    assert stored.opened.isoformat() == "2023-02-28"
    replay = ledger_module.get_run(store, result.run_id)
    assert (replay.status, replay.fetched, replay.inserted, replay.quarantined) == ("quarantined", 5, 1, 4)
    left = Bridge(store).quarantined()
    assert broken_date.id not in {q.id for q in left}
    assert len(left) == 4
    [resolved] = [q for q in Bridge(store).quarantined(include_resolved=True) if q.id == broken_date.id]
    assert resolved.resolved_run_id == result.run_id


def test_replay_has_the_lifecycle_of_a_sync(
    store: Store, persons: Pseudonymizer, secret_env: str, monkeypatch: pytest.MonkeyPatch, leak_scan: LeakScan
) -> None:
    leak_scan.forbid_truth(truth_for(invalid=5), persons)
    leak_scan.watch(store)
    config = make_config(invalid=5)
    run_sync(store, config, "syn")
    with source_lock(store, "syn"), pytest.raises(LockHeld):
        replay_quarantined(store, config, "syn")
    stale = ledger_module.start_run(store, "syn", full=False, cursor=None)  # a run whose process died

    def crash(self: SyntheticAdapter, payload: str) -> None:
        raise RuntimeError("parser crashed")

    monkeypatch.setattr(SyntheticAdapter, "parse_payload", crash)
    with pytest.raises(RuntimeError):
        replay_quarantined(store, config, "syn")
    assert ledger_module.get_run(store, stale).status == "abandoned"
    failed = ledger_module.get_run(store, stale + 1)
    assert (failed.status, failed.error) == ("failed", "RuntimeError: parser crashed")


def test_a_full_run_killed_midway_leaves_the_incremental_cursor_where_it_was(
    store: Store, persons: Pseudonymizer, secret_env: str
) -> None:
    first = run_sync(store, make_config(), "syn")
    with store.transaction() as conn:
        before = ledger_module.get_cursor(conn, "syn")
    assert before == first.cursor_after
    with pytest.raises(RuntimeError):
        run_sync(store, make_config(fail_after_batches=2), "syn", full=True)
    with store.transaction() as conn:
        assert ledger_module.get_cursor(conn, "syn") == before
    full = run_sync(store, make_config(), "syn", full=True)
    with store.transaction() as conn:
        assert ledger_module.get_cursor(conn, "syn") == full.cursor_after == before


def test_full_sync_marks_vanished_cases_deleted_and_never_removes_them(
    store: Store, persons: Pseudonymizer, secret_env: str
) -> None:
    run_sync(store, make_config(caseworkers=3), "syn")
    everything = stored_records(store, "syn")
    smaller = make_config(caseworkers=2)
    kept = {str(c.id) for c in truth_for(caseworkers=2).valid_cases()}
    run = run_sync(store, smaller, "syn", full=True)
    vanished = set(everything) - kept
    assert vanished
    assert run.deleted == len(vanished)
    from bridge.api import Bridge

    live = {c.source_ref for c in Bridge(store).cases(source="syn")}
    with_deleted = {c.source_ref for c in Bridge(store).cases(source="syn", include_deleted=True)}
    assert live == set(everything) - vanished
    assert with_deleted == set(everything)


def test_a_second_run_of_the_same_source_is_refused_while_one_holds_the_lock(store: Store, secret_env: str) -> None:
    config = make_config()
    with source_lock(store, "syn"):
        before = dump(store)
        with pytest.raises(LockHeld) as refused:
            run_sync(store, config, "syn")
        assert refused.value.exit_code == 3
        assert dump(store) == before
        from bridge.api import Bridge

        assert Bridge(store).runs() == []
    assert run_sync(store, config, "syn").status == "succeeded"


class _Flaky(SyntheticAdapter):
    """The synthetic source, except that it delivers two cases incomplete until they are fetched again."""

    name = "flaky"
    refetched: ClassVar[list[list[str]]] = []

    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        for batch in super().fetch(cursor):
            kept = [r for r in batch.records if r.source_ref not in INCOMPLETE_REFS]
            batch.rejections += [
                Rejection.incomplete(r.source_ref, "its documents answered 404", f'{{"id": {r.source_ref}}}')
                for r in batch.records
                if r.source_ref in INCOMPLETE_REFS
            ]
            batch.records = kept
            yield batch

    def refetch(self, source_refs: Sequence[str]) -> Iterator[Batch]:
        type(self).refetched.append(list(source_refs))
        by_ref = {r.source_ref: r for b in super().fetch(None) for r in b.records}
        # The second case is gone from the source by now: a refetch leaves it out.
        yield Batch(records=[by_ref[ref] for ref in source_refs if ref == INCOMPLETE_REFS[0]])


class _FlakyPlugin:
    @hookimpl
    def bridge_register_adapters(self, register: Callable[[type[Adapter]], None]) -> None:
        register(_Flaky)


INCOMPLETE_REFS = ["1003", "1007"]


def test_cases_quarantined_as_incomplete_are_fetched_again_by_the_next_sync(
    store: Store, persons: Pseudonymizer, secret_env: str
) -> None:
    config = parse_config(
        {"sources": [{"name": "syn", "adapter": "flaky", "municipality": MUNICIPALITY, "settings": SETTINGS}]},
        Path("."),
    )
    _Flaky.refetched.clear()
    with registered(_FlakyPlugin()):
        first = run_sync(store, config, "syn")
        assert first.quarantined == 2
        assert _Flaky.refetched == []  # nothing was incomplete before the first run
        cursor = ledger_module.get_run(store, first.id or 0).cursor_after
        second = run_sync(store, config, "syn")
    assert _Flaky.refetched == [INCOMPLETE_REFS]
    assert second.cursor_after == cursor  # a refetch never moves the cursor
    stored = stored_records(store, "syn")
    expected = {r.source_ref: r for r in truth_for().expected_records(persons)}
    assert stored[INCOMPLETE_REFS[0]] == expected[INCOMPLETE_REFS[0]]
    assert INCOMPLETE_REFS[1] not in stored
    from bridge.api import Bridge

    assert not Bridge(store).quarantined(source="syn")  # one recovered, one gone: both resolved


def test_alike_payloads_of_two_cases_are_two_quarantined_records_and_one_case_again_is_kept_once(store: Store) -> None:
    """An error page two cases both answered with is no reason to lose one of them; the same case's
    same payload again (the next night) is not a second record."""
    from sqlalchemy import text

    from bridge.sync.writer import quarantine, utcnow

    page = "<html>Service Unavailable</html>"
    alike = [Rejection("1001", "the answer is not JSON", page), Rejection("1002", "the answer is not JSON", page)]
    run_id = ledger_module.start_run(store, "syn", full=False, cursor=None)
    with store.transaction() as conn:
        assert quarantine(conn, "syn", alike, run_id=run_id, now=utcnow()) == 2
    with store.transaction() as conn:
        quarantine(conn, "syn", alike[:1], run_id=run_id, now=utcnow())
    with store.engine.connect() as conn:
        refs = sorted(conn.execute(text("SELECT source_ref FROM quarantine")).scalars())
    assert refs == ["1001", "1002"]
