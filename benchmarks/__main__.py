"""Run the benchmarks: ``python -m benchmarks [--cases N] [--only sync|sbsys]``.

Prints the figures and writes them to benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks import bench_sbsys_concurrency, parallel_sources, sync_throughput

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
    parser.add_argument("--only", choices=("sync", "sbsys", "parallel"), help="run one benchmark")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.only in (None, "sync"):
        results["sync"] = sync_throughput.run(args.cases)
        _print("sync", results["sync"])
    if args.only in (None, "sbsys"):
        results["sbsys_concurrency"] = bench_sbsys_concurrency.run()
        _print("sbsys_concurrency", results["sbsys_concurrency"])
    if args.only in (None, "parallel"):
        results["parallel_sources"] = parallel_sources.run(args.cases)
        _print("parallel_sources", results["parallel_sources"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
