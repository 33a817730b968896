"""Sync throughput of the synthetic source into SQLite and PostgreSQL, as ratios to baselines.

Every figure is compared with a baseline measured in the same run on the same machine:
- the source alone (fetching and validating records, storing nothing);
- a raw DB-API ``executemany`` of the same case rows (no children, no upsert), a floor
  for this machine class.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bridge.adapter import SourceContext
from bridge.config import BridgeConfig, parse_config
from bridge.privacy import Pseudonymizer
from bridge.store import open_store
from bridge.sync import run_sync
from bridge.synthetic.adapter import SyntheticAdapter, SyntheticConfig

MUNICIPALITY = "461"
SECRET = "benchmark-secret"


def _config(cases: int, **settings: Any) -> BridgeConfig:
    source = {
        "name": "bench",
        "adapter": "synthetic",
        "municipality": MUNICIPALITY,
        "settings": {"seed": 1, "caseworkers": max(1, cases // 45), "cases": cases, "page_size": 500, **settings},
    }
    return parse_config({"sources": [source]}, Path("."))


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def _source_only(cases: int) -> tuple[float, int]:
    """Seconds to fetch and validate every record from the synthetic source, storing nothing."""
    persons = Pseudonymizer(SecretStr(SECRET))
    config = SyntheticConfig(seed=1, caseworkers=max(1, cases // 45), cases=cases, page_size=500)
    adapter = SyntheticAdapter(config, SourceContext("bench", MUNICIPALITY, persons))
    seconds, rows = _timed(
        lambda: sum(
            1 + len(r.measures) + len(r.assessments) + len(r.events) for b in adapter.fetch(None) for r in b.records
        )
    )
    return seconds, rows


def _case_rows(cases: int) -> list[tuple[Any, ...]]:
    persons = Pseudonymizer(SecretStr(SECRET))
    config = SyntheticConfig(seed=1, caseworkers=max(1, cases // 45), cases=cases)
    adapter = SyntheticAdapter(config, SourceContext("bench", MUNICIPALITY, persons))
    return [
        (
            r.source_ref,
            r.municipality,
            r.child_key,
            r.case_number,
            r.kle,
            r.target_group.value,
            r.opened.isoformat(),
            r.status.value,
            r.content_hash(),
        )
        for b in adapter.fetch(None)
        for r in b.records
    ]


_BASELINE_DDL = (
    "CREATE TABLE baseline (source_ref TEXT PRIMARY KEY, municipality TEXT, child_key TEXT, case_number TEXT, "
    "kle TEXT, target_group TEXT, opened TEXT, status TEXT, content_hash TEXT)"
)


def _sqlite_executemany(rows: list[tuple[Any, ...]], directory: Path) -> float:
    conn = sqlite3.connect(directory / "baseline.db")
    conn.execute(_BASELINE_DDL)
    seconds, _ = _timed(
        lambda: (conn.executemany("INSERT INTO baseline VALUES (?,?,?,?,?,?,?,?,?)", rows), conn.commit())
    )
    conn.close()
    return seconds


def _postgres_executemany(rows: list[tuple[Any, ...]], url: str) -> float:
    import psycopg

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        conn.execute(_BASELINE_DDL)
        start = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO baseline VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)
        conn.commit()
        return time.perf_counter() - start


@contextmanager
def _postgres_database() -> Iterator[str | None]:
    base = os.environ.get("BRIDGE_TEST_POSTGRES_URL")
    if not base:
        yield None
        return
    name = f"bridge_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(base).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _store_figures(url: str, cases: int, rows: int, baseline_rows_per_s: float, source_s: float) -> dict[str, float]:
    """Sync timings; the store's part is the run's time less the source's time measured alone."""
    os.environ["BRIDGE_PERSON_KEY_SECRET"] = SECRET
    store = open_store(url)
    try:
        first_s, first = _timed(lambda: run_sync(store, _config(cases), "bench"))
        again_s, again = _timed(lambda: run_sync(store, _config(cases), "bench", full=True))
        touched = _config(cases, touched=1, touch_count=max(1, cases // 100))
        touch_s, touch = _timed(lambda: run_sync(store, touched, "bench"))
    finally:
        store.dispose()
    assert (first.inserted, again.unchanged) == (cases, cases), (first, again)
    assert touch.updated == max(1, cases // 100), touch
    store_first = first_s - source_s
    store_again = max(again_s - source_s, 1e-3)
    return {
        "first_sync_cases_per_s": cases / first_s,
        "store_rows_per_s_first_sync": rows / store_first,
        "store_vs_raw_executemany": rows / store_first / baseline_rows_per_s,
        "store_share_of_first_sync": store_first / first_s,
        "unchanged_resync_cases_per_s": cases / again_s,
        "store_unchanged_speedup_vs_first": store_first / store_again,
        "incremental_1pct_speedup_vs_full_resync": again_s / touch_s,
    }


def run(cases: int = 3000) -> dict[str, Any]:
    """Measure everything once; returns the figures (ratios, with the rates they come from)."""
    source_s, rows = _source_only(cases)
    case_rows = _case_rows(cases)
    results: dict[str, Any] = {
        "cases": cases,
        "rows_per_case": rows / cases,
        "source_alone_cases_per_s": cases / source_s,
    }
    with tempfile.TemporaryDirectory() as tmp:
        raw = cases / _sqlite_executemany(case_rows, Path(tmp))
        figures = _store_figures(f"sqlite:///{tmp}/bridge.db", cases, rows, raw, source_s)
        results["sqlite"] = {"raw_executemany_rows_per_s": raw, **figures}
    with _postgres_database() as url:
        if url is not None:
            raw = cases / _postgres_executemany(case_rows, url)
            figures = _store_figures(url, cases, rows, raw, source_s)
            results["postgresql"] = {"raw_executemany_rows_per_s": raw, **figures}
    return results
