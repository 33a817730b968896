"""The SB-SYS simulator serves any seed and size, and every birth date, 29 February included."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.simulation.server import serve
from bridge.synthetic.generate import generate
from bridge.synthetic.truth import GroundTruth
from bridge_sbsys import wire
from bridge_sbsys.simulator import SbsysSimulator, SimulatorSettings

LEAP_DAYS = st.sampled_from([date(2008, 2, 29), date(2012, 2, 29), date(2016, 2, 29), date(2020, 2, 29)])
BIRTH_DATES = st.one_of(LEAP_DAYS, st.dates(min_value=date(2000, 1, 1), max_value=date(2024, 12, 31)))


def _born_on(truth: GroundTruth, born: date) -> GroundTruth:
    """``truth`` with one more case: a child born on ``born`` whose id makes the simulator
    write a FoedeDato that disagrees with the CPR (every 17th case), as real data does."""
    model = next(c for c in truth.cases if c.defect is None)
    cpr = f"{born:%d%m%y}-4{born.day:02d}{born.month % 10}"  # 7th digit 4: 2000–2036
    child = replace(model.child, cpr=cpr)
    case_id = 17 * (max(c.id for c in truth.cases) // 17 + 1)
    number = f"27.24.00-G01-{case_id}-{model.opened:%y}"
    extra = replace(model, id=case_id, child=child, case_number=number, family_case_number=None)
    return replace(truth, cases=[*truth.cases, extra])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cases=st.integers(1, 40), born=BIRTH_DATES)
def test_every_case_is_served_whatever_the_seed_size_and_birth_date(seed: int, cases: int, born: date) -> None:
    truth = _born_on(generate(seed=seed, municipalities=1, caseworkers=2, cases=cases), born)
    simulator = SbsysSimulator(truth, SimulatorSettings())
    with serve(simulator.app) as base_url, httpx.Client(base_url=base_url) as http:
        s = simulator.settings
        form = {"grant_type": "client_credentials", "client_id": s.client_id, "client_secret": s.client_secret}
        headers = {"Authorization": f"Bearer {http.post(wire.TOKEN_PATH, data=form).json()['access_token']}"}
        body = {"NummerInterval": {"From": "27.24.00-G01", "To": "27.24.00-G02"}, "Limit": 1000}
        found = http.post(wire.SEARCH_PATH, json=body, headers=headers)
        assert found.status_code == 200
        ids = [sag["Id"] for sag in found.json()["Results"]]
        assert len(ids) == len(truth.cases)
        for sag_id in ids:
            answer = http.get(f"/api/sag/{sag_id}", headers=headers)
            assert answer.status_code == 200, (sag_id, answer.text[:200])
