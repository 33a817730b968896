"""Run the benchmarks: ``python -m benchmarks [--cases N] [--only NAME] [--scaling-cases N] [--workload-cases N]``.

Prints the figures and writes them to benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks import (
    bench_sbsys_concurrency,
    csc_extract_memory,
    parallel_sources,
    pg_scaling,
    sync_throughput,
    workload,
)

RESULTS = Path(__file__).parent / "results"


def _print(name: str, figures: dict[str, Any], indent: str = "") -> None:
    print(f"{indent}{name}:")
    for key, value in figures.items():
        if isinstance(value, dict):
            _print(key, value, indent + "  ")
        elif isinstance(value, float):
            print(f"{indent}  {key:<44} {value:>12,.2f}")
        else:
            print(f"{indent}  {key:<44} {value!s:>12}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=3000, help="cases in the synthetic source (sync benchmark)")
    parser.add_argument(
        "--only", choices=("sync", "sbsys", "csc", "pg-scaling", "workload", "parallel"), help="run one benchmark"
    )
    parser.add_argument(
        "--scaling-cases", type=int, default=120_000, help="cases in PostgreSQL's first sync (pg-scaling benchmark)"
    )
    parser.add_argument(
        "--no-autovacuum", action="store_true", help="pg-scaling: never vacuum or analyse the tables during the run"
    )
    parser.add_argument(
        "--workload-cases", type=int, default=120_000, help="cases in the store for the workload benchmark"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.only in (None, "sync"):
        results["sync"] = sync_throughput.run(args.cases)
        _print("sync", results["sync"])
    if args.only in (None, "sbsys"):
        results["sbsys_concurrency"] = bench_sbsys_concurrency.run()
        _print("sbsys_concurrency", results["sbsys_concurrency"])
    if args.only in (None, "csc"):
        results["csc_extract_memory"] = csc_extract_memory.run(args.cases)
        _print("csc_extract_memory", results["csc_extract_memory"])
    if args.only in (None, "pg-scaling"):
        results["pg_scaling"] = pg_scaling.run(args.scaling_cases, autovacuum=not args.no_autovacuum)
        _print("pg_scaling", results["pg_scaling"])
    if args.only in (None, "workload"):
        results["workload"] = workload.run(args.workload_cases)
        _print("workload", results["workload"])
    if args.only in (None, "parallel"):
        results["parallel_sources"] = parallel_sources.run(args.cases)
        _print("parallel_sources", results["parallel_sources"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
