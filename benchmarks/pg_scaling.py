"""PostgreSQL's first-sync rate per case as its tables fill: at 12k cases against 120k.

One first sync of N cases (the synthetic source, ~30 rows a case) into a new PostgreSQL
database; the rate is measured over a window of cases ending at each mark (12k, 40k, N), from
the time each batch committed, so it is the rate while the tables hold that many cases. A
store whose lookups stop using the index as the tables fill (an ``IN`` list of hundreds of
parameters under a generic prepared plan did) falls away; the figure that must hold is
``rate_at_n_vs_12k`` of at least 0.8. With ``autovacuum=False`` the bench tables are never
vacuumed or analysed during the run, the harder case for the planner.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import text

from benchmarks.sync_throughput import SECRET, _config, _postgres_database
from bridge.store import open_store
from bridge.sync import BatchDone, run_sync

MARKS = (12_000, 40_000, 120_000)
WINDOW = 4_000
"""Cases per measuring window: eight batches of 500, enough to even out one slow commit."""


def _rate_before(marks: list[tuple[int, float]], at: int) -> float:
    """Cases per second over the batches that brought the count from ``at - WINDOW`` to ``at``."""
    start = max((m for m in marks if m[0] <= at - WINDOW), default=marks[0])
    end = min((m for m in marks if m[0] >= at), default=marks[-1])
    return (end[0] - start[0]) / (end[1] - start[1])


def run(cases: int = 120_000, *, autovacuum: bool = True) -> dict[str, Any]:
    with _postgres_database() as url:
        if url is None:
            return {"skipped": "set BRIDGE_TEST_POSTGRES_URL to measure PostgreSQL"}
        os.environ["BRIDGE_PERSON_KEY_SECRET"] = SECRET
        store = open_store(url)
        try:
            if not autovacuum:
                with store.transaction() as conn:
                    for table in ("cases", "measures", "assessments", "case_events", "caseworkers", "quarantine"):
                        conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
            marks: list[tuple[int, float]] = []

            def on_batch(done: BatchDone) -> None:
                marks.append((done.fetched, time.perf_counter()))

            began = time.perf_counter()
            run_ = run_sync(store, _config(cases), "bench", on_batch=on_batch)
            seconds = time.perf_counter() - began
        finally:
            store.dispose()
    assert run_.inserted == cases, run_
    rates = {f"cases_per_s_at_{at // 1000}k": _rate_before(marks, at) for at in MARKS if at <= cases}
    at_n = _rate_before(marks, cases)
    at_12k = _rate_before(marks, MARKS[0])
    return {
        "cases": cases,
        "autovacuum": autovacuum,
        "first_sync_s": seconds,
        **rates,
        f"cases_per_s_at_{cases // 1000}k": at_n,
        "rate_at_n_vs_12k": at_n / at_12k,
    }
