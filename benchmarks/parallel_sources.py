"""Eight sources at once as separate ``bridge sync`` processes against one PostgreSQL database.

As DESIGN §8 plans a national nightly run: one process per source (as cron or an orchestrator
starts them), kept apart by the per-source lock. In the same run:
- one source alone, in a database of its own: the baseline rate;
- eight synthetic municipalities of the same size at once, in another new database: the total
  rate, as a ratio to the baseline (on 2 cores it cannot pass about 2×, and PostgreSQL shares them);
- while the first of the eight is running, a ninth process for that source: it must exit 3,
  add no run to the ledger, and leave the store as the eight make it.

Each process is the real command, ``python -m bridge sync NAME``, so the figures include its start-up.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from benchmarks.sync_throughput import SECRET, _postgres_database
from bridge.store import open_store
from bridge.synthetic.generate import MUNICIPALITIES

SOURCES = 8
REPEATS = 3
LOCK_HELD = 3
CODES = list(MUNICIPALITIES)[:SOURCES]
NAMES = [f"m{code}" for code in CODES]


def _config(directory: Path, cases: int) -> Path:
    """A bridge.toml with eight synthetic municipalities of ``cases`` cases each."""
    blocks = []
    for seed, (name, code) in enumerate(zip(NAMES, CODES, strict=True), start=1):
        blocks.append(
            f'[[sources]]\nname = "{name}"\nadapter = "synthetic"\nmunicipality = "{code}"\n'
            f"[sources.settings]\nseed = {seed}\ncaseworkers = {max(1, cases // 45)}\ncases = {cases}\n"
            "page_size = 500\n"
        )
    path = directory / "bridge.toml"
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def _sync(config: Path, url: str, source: str) -> subprocess.Popen[str]:
    env = {**os.environ, "BRIDGE_DATABASE_URL": url, "BRIDGE_PERSON_KEY_SECRET": SECRET}
    return subprocess.Popen(
        [sys.executable, "-m", "bridge", "--config", str(config), "sync", source],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], expected: int) -> None:
    out, err = process.communicate(timeout=1800)
    if process.returncode == expected:
        return
    hint = " (the source finished before it; give more --cases)" if expected == LOCK_HELD else ""
    raise RuntimeError(
        f"{process.args}: exit {process.returncode}, expected {expected}{hint}\n{out[-2000:]}{err[-2000:]}"
    )


def _runs(url: str, source: str) -> list[tuple[int, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = text("SELECT id, status FROM sync_runs WHERE source = :s ORDER BY id")
            return [(int(i), str(s)) for i, s in conn.execute(query, {"s": source})]
    finally:
        engine.dispose()


def _live_cases(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = text("SELECT source, count(*) FROM cases WHERE deleted_at IS NULL GROUP BY source")
            return {str(s): int(n) for s, n in conn.execute(query)}
    finally:
        engine.dispose()


def _children_cpu_s() -> float:
    """CPU seconds used so far by this process's finished children (the sync processes, not PostgreSQL)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _alone(config: Path, cases: int) -> float:
    """Seconds for one source's first sync, alone in a new database."""
    with _postgres_database() as url:
        assert url is not None
        open_store(url).dispose()  # migrated once, as `bridge db upgrade` does at deployment
        start = time.perf_counter()
        _finish(_sync(config, url, NAMES[0]), 0)
        seconds = time.perf_counter() - start
        if _live_cases(url) != {NAMES[0]: cases}:
            raise RuntimeError(f"the source alone stored {_live_cases(url)}, expected {cases} cases")
        return seconds


def _eight_and_a_ninth(config: Path, cases: int) -> dict[str, float]:
    """Seconds for eight first syncs at once, and how a ninth for a running source fared."""
    names = NAMES
    with _postgres_database() as url:
        assert url is not None
        open_store(url).dispose()
        start = time.perf_counter()
        processes = [_sync(config, url, name) for name in names]
        while not any(status == "running" for _, status in _runs(url, names[0])):
            if processes[0].poll() is not None:
                raise RuntimeError(f"{names[0]} finished before a ninth process could meet its lock")
            time.sleep(0.02)
        before = _runs(url, names[0])
        ninth_start = time.perf_counter()
        ninth = _sync(config, url, names[0])
        _finish(ninth, LOCK_HELD)
        ninth_s = time.perf_counter() - ninth_start
        during = _runs(url, names[0])
        for process in processes:
            _finish(process, 0)
        seconds = time.perf_counter() - start
        if [run_id for run_id, _ in during] != [run_id for run_id, _ in before]:
            raise RuntimeError(f"the ninth process added a run to the ledger of {names[0]}: {before} → {during}")
        runs = {name: _runs(url, name) for name in names}
        if any(len(r) != 1 or r[0][1] != "succeeded" for r in runs.values()):
            raise RuntimeError(f"expected one succeeded run per source, got {runs}")
        if _live_cases(url) != dict.fromkeys(names, cases):
            raise RuntimeError(f"the eight stored {_live_cases(url)}, expected {cases} cases each")
        return {"seconds": seconds, "ninth_exit_s": ninth_s}


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(cases: int = 3000) -> dict[str, Any]:
    """Measure ``REPEATS`` times; each figure is the median with its range."""
    if not os.environ.get("BRIDGE_TEST_POSTGRES_URL"):
        return {"skipped": "needs BRIDGE_TEST_POSTGRES_URL (a PostgreSQL server to create databases on)"}
    alone: list[float] = []
    together: list[float] = []
    ninth: list[float] = []
    cpu_alone: list[float] = []
    cpu_together: list[float] = []
    cores_alone: list[float] = []
    cores_together: list[float] = []
    load: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp), cases)
        for _ in range(REPEATS):  # interleaved, so a busy moment of the machine touches both
            cpu = _children_cpu_s()
            seconds = _alone(config, cases)
            used = _children_cpu_s() - cpu
            alone.append(cases / seconds)
            cpu_alone.append(used / cases * 1000)
            cores_alone.append(used / seconds)
            cpu = _children_cpu_s()
            figures = _eight_and_a_ninth(config, cases)
            used = _children_cpu_s() - cpu
            cpu_together.append(used / (SOURCES * cases) * 1000)
            cores_together.append(used / figures["seconds"])
            together.append(SOURCES * cases / figures["seconds"])
            ninth.append(figures["ninth_exit_s"])
            load.append(os.getloadavg()[0])
    return {
        "cases_per_source": cases,
        "sources": SOURCES,
        "repeats": REPEATS,
        "one_source_alone_cases_per_s": _summary(alone),
        "eight_at_once_total_cases_per_s": _summary(together),
        "eight_at_once_vs_one_alone": _summary([t / a for t, a in zip(together, alone, strict=True)]),
        "sync_process_cpu_s_per_1000_cases_alone": _summary(cpu_alone),
        "sync_process_cpu_s_per_1000_cases_at_once": _summary(cpu_together),
        "sync_process_cores_used_alone": _summary(cores_alone),
        "sync_process_cores_used_at_once": _summary(cores_together),
        "machine_load_average_1min_after_the_eight": _summary(load),
        "ninth_process_exit_3_seconds": _summary(ninth),
        "ninth_process_changed_nothing": True,
    }
