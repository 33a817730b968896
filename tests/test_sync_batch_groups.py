"""Batches that continue one another commit as one transaction; deletions and snapshots commit with them.

For sources whose unit of change is larger than a batch should be (an extract set): the engine
writes each batch as it comes, but commits only when a batch without ``continues`` ends the
group, with that batch's cursor, the group's deletions and, for a snapshot, every live case the
group did not hold marked deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import text

from bridge.adapter import Adapter, AdapterConfig, Batch, Rejection
from bridge.config import BridgeConfig, parse_config
from bridge.errors import BridgeError
from bridge.hookspecs import hookimpl
from bridge.model.records import CaseRecord
from bridge.plugins import registered
from bridge.privacy import Pseudonymizer
from bridge.store import Store
from bridge.sync import run_sync
from bridge.synthetic.generate import generate


class Scripted(Adapter):
    """Yields the batches of ``script``; an exception in it is raised where it stands."""

    name = "scripted"
    Config = AdapterConfig
    script: ClassVar[list[Batch | Exception]] = []

    def check(self) -> None:
        return None

    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        for item in self.script:
            if isinstance(item, Exception):
                raise item
            yield item


class _Plugin:
    @hookimpl
    def bridge_register_adapters(self, register: Callable[[type[Adapter]], None]) -> None:
        register(Scripted)


@pytest.fixture
def config(secret_env: str) -> Iterator[BridgeConfig]:
    with registered(_Plugin()):
        yield parse_config({"sources": [{"name": "s", "adapter": "scripted", "municipality": "461"}]}, Path("."))


@pytest.fixture
def records(persons: Pseudonymizer) -> list[CaseRecord]:
    truth = generate(seed=11, caseworkers=1, cases=9)
    return truth.expected_records(persons)


def _state(store: Store) -> tuple[dict[str, bool], str | None]:
    with store.engine.connect() as conn:
        cases = {r: bool(d) for r, d in conn.execute(text("SELECT source_ref, deleted_at IS NOT NULL FROM cases"))}
        cursor = conn.execute(text("SELECT cursor FROM sync_state WHERE source = 's'")).scalar()
    return cases, cursor


def test_a_group_commits_whole_or_not_at_all(store: Store, config: BridgeConfig, records: list[CaseRecord]) -> None:
    Scripted.script = [Batch(records[:3], continues=True), Batch(records[3:6], continues=True), RuntimeError("gone")]
    with pytest.raises(RuntimeError):
        run_sync(store, config, "s")
    assert _state(store) == ({}, None)
    Scripted.script = [*Scripted.script[:2], Batch(records[6:], cursor="set-1")]
    run = run_sync(store, config, "s")
    assert (run.status, run.inserted, run.cursor_after) == ("succeeded", 9, "set-1")
    assert _state(store) == ({r.source_ref: False for r in records}, "set-1")


def test_a_snapshot_marks_what_it_lacks_deleted_and_a_deletion_list_what_it_names(
    store: Store, config: BridgeConfig, records: list[CaseRecord]
) -> None:
    Scripted.script = [Batch(records, cursor="set-1")]
    run_sync(store, config, "s")
    broken = Rejection(records[5].source_ref, "invalid_cpr: …", "{}")
    Scripted.script = [Batch(records[:4], continues=True), Batch(records[4:5], [broken], cursor="set-2", snapshot=True)]
    run = run_sync(store, config, "s")
    gone = {r.source_ref for r in records[6:]}  # the rejected case is still the source's: not deleted
    assert run.deleted == 3
    assert _state(store) == ({r.source_ref: r.source_ref in gone for r in records}, "set-2")
    Scripted.script = [Batch(cursor="set-3", deleted=[records[0].source_ref, records[6].source_ref, "unknown"])]
    run = run_sync(store, config, "s")
    assert run.deleted == 1  # one was live; one was deleted already; an unknown one does nothing
    assert _state(store)[0][records[0].source_ref] is True


def test_a_source_that_ends_inside_a_group_stores_nothing_of_it(
    store: Store, config: BridgeConfig, records: list[CaseRecord]
) -> None:
    Scripted.script = [Batch(records, continues=True)]
    with pytest.raises(BridgeError, match="ended in the middle of a transaction; nothing of it is stored"):
        run_sync(store, config, "s")
    assert _state(store) == ({}, None)
