"""SB-SYS adapter throughput against the simulator, by concurrency setting.

With a fixed latency per request (20 ms by default, like an SBSIP behind a municipal
proxy) a case costs several sequential requests, so throughput should rise with the
number of cases fetched in parallel. Every setting reads the same simulated municipality
in the same run; ratios are against concurrency 1 of this run.

    .venv/bin/python benchmarks/bench_sbsys_concurrency.py [--cases 80] [--latency-ms 20]

``run(...)`` returns the figures as a dict for the benchmark runner.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr

from bridge.adapter import SourceContext
from bridge.privacy import Pseudonymizer
from bridge.simulation.server import serve
from bridge.synthetic.generate import generate
from bridge_sbsys.adapter import SbsysAdapter, SbsysConfig
from bridge_sbsys.simulator import SbsysSimulator, SimulatorSettings, connection_settings

MUNICIPALITY = "461"


def _measure(base_url: str, settings: SimulatorSettings, concurrency: int, page_size: int) -> dict[str, float]:
    config = SbsysConfig.model_validate(
        connection_settings(base_url, settings) | {"concurrency": concurrency, "page_size": page_size}
    )
    context = SourceContext("bench", MUNICIPALITY, Pseudonymizer(SecretStr("benchmark-secret")))
    adapter = SbsysAdapter(config, context)
    try:
        adapter.check()  # the token is not part of the measurement
        started = time.perf_counter()
        cases = sum(len(b.records) + len(b.rejections) for b in adapter.fetch(None))
        seconds = time.perf_counter() - started
    finally:
        adapter.close()
    return {"cases": cases, "seconds": round(seconds, 3), "cases_per_second": round(cases / seconds, 2)}


def run(
    *,
    cases: int = 80,
    latency_ms: float = 20.0,
    concurrencies: Sequence[int] = (1, 2, 4, 8),
    page_size: int = 50,
    seed: int = 7,
) -> dict[str, Any]:
    """Fetch the same simulated municipality at each concurrency; figures and ratios vs the first."""
    truth = generate(
        seed=seed, municipalities=1, caseworkers=max(1, cases // 40), cases=cases, municipality_codes=[MUNICIPALITY]
    )
    settings = SimulatorSettings(latency=latency_ms / 1000)
    simulator = SbsysSimulator(truth, settings)
    results: dict[int, dict[str, float]] = {}
    with serve(simulator.app) as base_url:
        for concurrency in concurrencies:
            before = sum(simulator.requests.values())
            results[concurrency] = _measure(base_url, settings, concurrency, page_size)
            results[concurrency]["requests"] = sum(simulator.requests.values()) - before
    baseline = results[concurrencies[0]]["cases_per_second"]
    return {
        "benchmark": "sbsys_concurrency",
        "latency_ms": latency_ms,
        "cases": len(truth.cases),
        "page_size": page_size,
        "by_concurrency": {str(c): r for c, r in results.items()},
        "ratio_vs_first": {str(c): round(r["cases_per_second"] / baseline, 2) for c, r in results.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=80)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run(cases=args.cases, latency_ms=args.latency_ms)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"SB-SYS adapter vs simulator: {result['cases']} cases, {result['latency_ms']:.0f} ms per request")
    print(f"{'concurrency':>11} {'cases/s':>9} {'seconds':>8} {'requests':>9} {'vs 1':>6}")
    for concurrency, figures in result["by_concurrency"].items():
        ratio = result["ratio_vs_first"][concurrency]
        print(
            f"{concurrency:>11} {figures['cases_per_second']:>9.1f} {figures['seconds']:>8.2f} "
            f"{figures['requests']:>9.0f} {ratio:>5.2f}x"
        )


if __name__ == "__main__":
    main()
