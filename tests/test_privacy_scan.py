"""No ground-truth CPR number in the store, the logs or exception text (issue: core, Must hold)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bridge import hookimpl
from bridge.adapter import Adapter, AdapterConfig, Batch
from bridge.config import BridgeConfig, parse_config
from bridge.plugins import registered
from bridge.privacy import CprRedactingFilter
from bridge.store import Store
from bridge.sync import run_sync
from bridge.synthetic.adapter import SyntheticConfig
from bridge.synthetic.truth import GroundTruth
from tests.storecheck import CONTENT_TABLES

MUNICIPALITY = "461"


def config(**extra: Any) -> BridgeConfig:
    source = {
        "name": "syn",
        "adapter": "synthetic",
        "municipality": MUNICIPALITY,
        "settings": {"seed": 3, "caseworkers": 2, "invalid": 5, "page_size": 50},
    }
    return parse_config({"sources": [source], **extra}, Path("."))


def truth() -> GroundTruth:
    return SyntheticConfig(seed=3, caseworkers=2, invalid=5).truth(MUNICIPALITY)


def forms(cpr: str) -> set[str]:
    return {cpr, cpr.replace("-", "")}


def store_text(store: Store, *, skip: set[tuple[str, str]]) -> str:
    """Every value of every content and ledger table, as one string."""
    chunks = []
    with store.engine.connect() as conn:
        for table in (*CONTENT_TABLES, "sync_runs", "sync_state"):
            result = conn.execute(text(f"SELECT * FROM {table}"))
            columns = list(result.keys())
            for row in result:
                chunks.extend(str(v) for c, v in zip(columns, row, strict=True) if (table, c) not in skip)
    return "\n".join(chunks)


def test_no_cpr_in_the_store_or_the_logs(
    store: Store, secret_env: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    run = run_sync(store, config(), "syn")
    assert run.quarantined == 5
    everything = store_text(store, skip={("quarantine", "payload")})
    logged = caplog.text
    cprs = truth().cprs()
    assert len(cprs) > 100
    for cpr in cprs:
        for form in forms(cpr):
            assert form not in everything
            assert form not in logged


def test_store_cpr_is_an_explicit_opt_in(store: Store, secret_env: str) -> None:
    run_sync(store, config(privacy={"store_cpr": True}), "syn")
    with store.engine.connect() as conn:
        stored = set(conn.execute(text("SELECT child_cpr FROM cases")).scalars())
    children = {c.child.cpr.replace("-", "") for c in truth().valid_cases()}
    assert stored == children


class Leaky(Adapter):
    """A broken adapter whose error message carries a CPR number, as careless code might."""

    name = "leaky"
    Config = AdapterConfig

    def check(self) -> None:
        raise AssertionError("not used")

    def fetch(self, cursor: str | None) -> Iterator[Batch]:
        yield Batch()
        raise RuntimeError("lookup failed for child 010490-9989 (mother 0108629996)")


class LeakyPlugin:
    @hookimpl
    def bridge_register_adapters(self, register: Any) -> None:
        register(Leaky)


def test_a_failed_run_keeps_no_cpr_in_the_ledger_or_the_formatted_log(
    store: Store, secret_env: str, caplog: pytest.LogCaptureFixture
) -> None:
    leaky = parse_config({"sources": [{"name": "leaky", "adapter": "leaky", "municipality": "461"}]}, Path("."))
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.addFilter(CprRedactingFilter())
    logging.getLogger("bridge").addHandler(handler)
    try:
        with registered(LeakyPlugin()), pytest.raises(RuntimeError):
            run_sync(store, leaky, "leaky")
    finally:
        logging.getLogger("bridge").removeHandler(handler)
    ledger_text = store_text(store, skip=set())
    assert "lookup failed" in ledger_text
    for leaked in ("010490-9989", "0104909989", "0108629996"):
        assert leaked not in ledger_text
        assert all(leaked not in line for line in records)
    assert any("lookup failed" in line for line in records)
