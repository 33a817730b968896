"""The barometer over a national-scale store: every rule on every case, in bounded memory.

The synthetic truth with N cases is stored in a new SQLite file; then the barometer for three
years is computed over all of them. The baseline is a plain read of the same rows the barometer
reads (cases, measures, events) with a DB-API cursor, in the same run: the figure
``barometer_vs_plain_read`` is how many times longer the whole barometer takes than only reading
its input. Peak memory is taken from the process's high-water mark.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from benchmarks.national import measure_against_baseline


def _plain_read(path: Path) -> float:
    started = time.perf_counter()
    with sqlite3.connect(path) as conn:
        for query in (
            "SELECT id, source, source_ref, case_number, municipality, child_birth_date, target_group, opened, closed "
            "FROM cases WHERE deleted_at IS NULL",
            'SELECT case_id, source_ref, act, paragraph, start, "end", has_grant, account_code FROM measures',
            "SELECT case_id, kind, occurred_on, source_ref FROM case_events",
        ):
            for _ in conn.execute(query):
                pass
    return time.perf_counter() - started


def run(cases: int = 120_000) -> dict[str, Any]:
    figures, plain = measure_against_baseline(cases, _plain_read, _MEASURE)
    return {
        "cases": figures["cases"],
        "barometer_seconds": figures["seconds"],
        "plain_read_seconds": round(plain, 1),
        "barometer_vs_plain_read": round(figures["seconds"] / plain, 1),
        "barometer_peak_rss_mb": figures["peak_rss_mb"],
    }


_MEASURE = """
import json, resource, sys, time
from datetime import date
from bridge.services.barometer import barometer, default_periods
from bridge.store import open_store
store = open_store(f"sqlite:///{sys.argv[1]}")
as_of = date(2026, 11, 1)
started = time.perf_counter()
result = barometer(store, periods=default_periods(as_of), as_of=as_of)
seconds = time.perf_counter() - started
print(json.dumps({"cases": result.cases, "seconds": round(seconds, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""
