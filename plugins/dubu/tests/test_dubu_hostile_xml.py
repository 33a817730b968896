"""Answers carrying a DOCTYPE, an external entity that points at a local file, or an entity bomb.

Each is refused before anything is expanded: nothing of the file appears in the store, the
logs, the quarantine or a report; memory stays small; the case is quarantined with a reason and
the run goes on with the other cases.
"""

from __future__ import annotations

import json
import logging
import tracemalloc
from datetime import date
from pathlib import Path

import pytest
from plugins.dubu.tests.test_dubu_e2e import SOURCE, Serve, serve_truth  # noqa: F401 - the fixture
from sqlalchemy import text
from tests.storecheck import dump, stored_records

from bridge.privacy import Pseudonymizer
from bridge.reports.html import Html
from bridge.reports.scoring import write_scoring_report
from bridge.store import Store
from bridge_dubu import wire
from bridge_dubu.simulator import Poison, poisoned_answer

pytestmark = pytest.mark.slow

SECRET = "LOCAL-FILE-CONTENT-7c1e-must-never-leave-the-file"


@pytest.fixture
def local_file(tmp_path: Path) -> Path:
    path = tmp_path / "passwd"
    path.write_text(f"root:x:0:0:{SECRET}:/root:/bin/bash\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", list(Poison))
def test_the_reader_refuses_before_expanding_in_little_memory(kind: Poison, local_file: Path) -> None:
    answer = poisoned_answer(kind, local_file)
    tracemalloc.start()
    try:
        with pytest.raises(wire.WireError, match="DOCTYPE") as refused:
            wire.read_case_bytes(answer)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert SECRET not in str(refused.value)
    # A billion laughs expands to ~3 GB; the refusal happens with the prolog, in far under a megabyte.
    assert peak < 1_000_000


def test_hostile_answers_are_quarantined_and_the_run_goes_on(  # noqa: PLR0917 - pytest fixtures
    store: Store,
    serve_truth: Serve,  # noqa: F811 - the fixture
    persons: Pseudonymizer,
    local_file: Path,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    served = serve_truth()
    simulator = served.simulator
    victims = [c.id for c in simulator.truth.valid_cases()][:3]
    poisoned = {
        simulator.poison(case_id, kind, local_file): kind for case_id, kind in zip(victims, Poison, strict=True)
    }
    caplog.set_level(logging.DEBUG)

    run = served.sync(store)

    assert run.status == "quarantined"  # the run went on
    expected = {ref: r for ref, r in served.expected(persons).items() if ref not in poisoned}
    assert stored_records(store, SOURCE) == expected
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT source_ref, reason FROM quarantine")).all()
    assert {ref for ref, _ in rows} == set(poisoned)
    for _, reason in rows:
        assert "DOCTYPE" in reason
    report = write_scoring_report(store, tmp_path / "scores.html", Html(), as_of=date(2026, 11, 1))
    everywhere = (
        json.dumps(dump(store), default=str)  # every table, the quarantine's payloads too
        + caplog.text
        + run.model_dump_json()
        + report.read_text(encoding="utf-8")
    )
    assert SECRET not in everywhere
    assert "root:x:0:0" not in everywhere
