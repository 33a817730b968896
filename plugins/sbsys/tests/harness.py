"""The conformance kit's harness for SB-SYS: the simulator over loopback HTTP, its knobs per behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bridge.config import BridgeConfig, parse_config
from bridge.model.records import CaseRecord
from bridge.simulation.server import serve
from bridge.synthetic.generate import generate
from bridge.synthetic.truth import GroundTruth
from bridge.testing import Behaviour, Harness, Served
from bridge_sbsys.simulator import SbsysSimulator, SimulatorSettings, connection_settings

MUNICIPALITY = "461"
PROXY = "/convergens-sbsip-sbsys-webapi-proxy/proxy"

KNOBS: dict[Behaviour, dict[str, Any]] = {
    Behaviour.capped_pages: {"max_limit": 3},
    Behaviour.wrong_total: {"total_skew": 2},
    Behaviour.ignored_filters: {"ignore_filters": True},
    Behaviour.optional_fields_absent: {"sparse": True},
    Behaviour.unknown_fields_and_values: {"unknown_fields": True, "template_names": "installation"},
    Behaviour.field_casing: {"casing": True},
    Behaviour.changes_between_pages: {"modify_during_paging": 3},
    Behaviour.duplicates_across_pages: {"duplicates": True},
    Behaviour.transient_faults: {
        "error_rate": 0.08,
        "rate_limit_rate": 0.04,
        "retry_after": 0,
        "drop_rate": 0.03,
        "token_lifetime": 2,
    },
}


def small_truth(invalid: int = 0, seed: int = 5) -> GroundTruth:
    """About twenty cases: enough for several pages, few enough for the kit's many syncs."""
    return generate(
        seed=seed, municipalities=1, caseworkers=1, cases=20, invalid=invalid, municipality_codes=[MUNICIPALITY]
    )


class SbsysServed(Served):
    source = "sbsys"

    def __init__(self, simulator: SbsysSimulator, base_url: str, **adapter: Any) -> None:
        self.simulator = simulator
        self.settings = connection_settings(base_url, simulator.settings) | {
            "page_size": 7,
            "concurrency": 4,
            "retry_base_delay": 0.001,
            **adapter,
        }

    def config(self) -> BridgeConfig:
        source = {"name": self.source, "adapter": "sbsys", "municipality": MUNICIPALITY, "settings": self.settings}
        return parse_config({"sources": [source]}, Path("."))

    def expected(self) -> dict[str, CaseRecord]:
        return {r.source_ref: r for r in self.simulator.expected_records(self.config().pseudonymizer())}

    def expected_quarantined(self) -> set[str]:
        return {str(c.id) for c in self.simulator.truth.invalid_cases()}

    def cprs(self) -> set[str]:
        return self.simulator.truth.cprs()

    def change(self, n: int) -> None:
        self.simulator.modify(n, seed=n)


class SbsysHarness(Harness):
    behaviours = frozenset(KNOBS)

    def __init__(self, **knobs: Any) -> None:
        self.knobs = knobs
        """Simulator settings on top of the behaviours' (a fault proxy's, say)."""

    @contextmanager
    def serve(self, behaviours: frozenset[Behaviour], *, invalid: int = 0) -> Iterator[Served]:
        knobs: dict[str, Any] = {"base_path": PROXY, "fault_seed": 3, **self.knobs}
        for behaviour in behaviours:
            knobs |= KNOBS[behaviour]
        simulator = SbsysSimulator(small_truth(invalid), SimulatorSettings(**knobs))
        adapter = {"max_attempts": 10} if Behaviour.transient_faults in behaviours else {}
        with serve(simulator.app) as origin:
            yield SbsysServed(simulator, origin + PROXY, **adapter)
