"""Peak memory of importing a CSC Social extract: a 10× larger full set against the 1× one.

The extract simulator writes one full set of N and of 10·N synthetic cases into drop folders;
each is then imported by ``bridge``'s library sync into a new SQLite store, in a fresh process
of its own, whose high-water mark (``VmHWM``) is the figure. The baseline is the same
process importing nothing (an empty drop folder): interpreter, bridge and SQLAlchemy loaded.
The adapter streams every file and stages rows on disk, so the 10× import should stay within
1.5× of the 1× import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from bridge.config import parse_config
from bridge.store import open_store
from bridge.sync import run_sync
from bridge.synthetic.generate import generate
from bridge_csc_social.simulator import CscSimulator, source_settings

MUNICIPALITY = "561"
SECRET = "benchmark-secret"
AS_OF = date(2026, 11, 1)


def _write(drop: Path, cases: int) -> int:
    workers = max(1, cases // 45)
    truth = generate(seed=7, caseworkers=workers, cases=cases, as_of=AS_OF, municipality_codes=[MUNICIPALITY])
    CscSimulator(truth, drop).night()
    return sum(path.stat().st_size for path in drop.rglob("*.csv"))


def import_once(drop: Path, database: Path) -> dict[str, Any]:
    """Import every set in ``drop`` into a new SQLite store; the peak RSS of this process."""
    source = {"name": "bench-csc", "adapter": "csc_social", "municipality": MUNICIPALITY}
    config = parse_config(
        {"privacy": {"secret_env": "BENCH_SECRET"}, "sources": [{**source, "settings": source_settings(drop)}]},
        Path("."),
    )
    store = open_store(f"sqlite:///{database}")
    started = time.perf_counter()
    run = run_sync(store, config, "bench-csc")
    seconds = time.perf_counter() - started
    store.dispose()
    return {
        "cases": run.inserted,
        "rows_quarantined": run.quarantined,
        "seconds": round(seconds, 2),
        "peak_rss_mb": _high_water_mark_mb(),
    }


def _high_water_mark_mb() -> float:
    """This process's peak resident memory (``VmHWM``).

    Not ``ru_maxrss``: Linux keeps that across ``fork`` and ``exec``, so a child started by a parent
    holding a large ground truth would report the parent's size.
    """
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark measures memory on Linux)")


def _measure(drop: Path, database: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.csc_extract_memory", str(drop), str(database)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_SECRET": SECRET},
        cwd=Path(__file__).resolve().parents[1],
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def run(cases: int = 3000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "empty").mkdir()
        results: dict[str, Any] = {"baseline_empty_drop": _measure(root / "empty", root / "empty.db")}
        for scale in (1, 10):
            drop = root / f"drop-{scale}x"
            size = _write(drop, cases * scale)
            figures = _measure(drop, root / f"{scale}x.db")
            results[f"import_{scale}x"] = {"csv_mb": round(size / 1e6, 1), **figures}
    one, ten = results["import_1x"], results["import_10x"]
    results["peak_rss_10x_vs_1x"] = round(ten["peak_rss_mb"] / one["peak_rss_mb"], 2)
    base = results["baseline_empty_drop"]["peak_rss_mb"]
    results["above_baseline_mb_1x"] = round(one["peak_rss_mb"] - base, 1)
    results["above_baseline_mb_10x"] = round(ten["peak_rss_mb"] - base, 1)
    results["cases_per_s_10x"] = round(ten["cases"] / ten["seconds"])
    return results


if __name__ == "__main__":
    print(json.dumps(import_once(Path(sys.argv[1]), Path(sys.argv[2]))))
