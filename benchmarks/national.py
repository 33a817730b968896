"""A national-scale store for the benchmarks: the synthetic truth with N cases in a new SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bridge.privacy import Pseudonymizer
from bridge.store import open_store
from bridge.sync.writer import store_records
from bridge.synthetic.generate import generate

AS_OF = date(2026, 11, 1)
BATCH = 5000


def store_synthetic(path: Path, cases: int, *, municipalities: int = 10) -> None:
    """Store ``cases`` synthetic cases (over ``municipalities``, 40 caseworkers each) in SQLite at ``path``."""
    truth = generate(seed=1, municipalities=municipalities, caseworkers=40, cases=cases // municipalities, as_of=AS_OF)
    persons = Pseudonymizer(SecretStr("benchmark-secret"))
    store = open_store(f"sqlite:///{path}")
    batch = []
    for case in truth.valid_cases():
        batch.append(truth.expected_record(case, persons))
        if len(batch) == BATCH:
            store_records(store, "synthetic", batch)
            batch = []
    store_records(store, "synthetic", batch)
    store.dispose()


def measure_against_baseline(
    cases: int, baseline: Callable[[Path], float], script: str
) -> tuple[dict[str, Any], float]:
    """Store ``cases`` synthetic cases, time ``baseline`` over the store, then run ``script`` on it.

    ``script`` runs in a process of its own (its peak memory is its own, not the generator's),
    gets the store's path as ``sys.argv[1]`` and prints its figures as JSON; they are returned
    with the baseline's seconds.
    """
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bridge.db"
        store_synthetic(path, cases)
        seconds = baseline(path)
        printed = subprocess.run(
            [sys.executable, "-c", script, str(path)], check=True, capture_output=True, text=True
        ).stdout
    return json.loads(printed), seconds
