"""Weighted caseload at national scale: every open case weighed and summed per caseworker, in SQL.

The synthetic truth with N cases (10 municipalities) is stored in a new SQLite file; then
:func:`bridge.services.workload.workload` is timed over all of it, in a process of its own. The
baseline, in the same run, is a plain count of the open cases per caseworker with a DB-API cursor
(``SELECT caseworker_id, count(*) … GROUP BY``): ``workload_vs_plain_count`` is how many times
longer the weighted load takes than that count. The target is under 5 s at 120,000 cases.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from benchmarks.national import measure_against_baseline


def _plain_count(path: Path) -> float:
    started = time.perf_counter()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "SELECT caseworker_id, count(*) FROM cases WHERE deleted_at IS NULL AND status = 'open' "
            "GROUP BY caseworker_id"
        ).fetchall()
    return time.perf_counter() - started


def run(cases: int = 120_000) -> dict[str, Any]:
    figures, plain = measure_against_baseline(cases, _plain_count, _MEASURE)
    return {
        "cases": figures["cases"],
        "open_cases": figures["open_cases"],
        "caseworkers": figures["caseworkers"],
        "workload_seconds": figures["seconds"],
        "plain_count_seconds": round(plain, 3),
        "workload_vs_plain_count": round(figures["seconds"] / plain, 1),
    }


_MEASURE = """
import json, sqlite3, sys, time
from datetime import date
from bridge.services.workload import workload
from bridge.store import open_store
store = open_store(f"sqlite:///{sys.argv[1]}")
started = time.perf_counter()
result = workload(store, on=date(2026, 11, 1))
seconds = time.perf_counter() - started
with sqlite3.connect(sys.argv[1]) as conn:
    cases, open_cases = conn.execute("SELECT count(*), sum(status = 'open') FROM cases").fetchone()
print(json.dumps({"cases": cases, "open_cases": open_cases, "caseworkers": len(result.caseworkers),
                  "seconds": round(seconds, 2)}))
"""
