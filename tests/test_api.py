"""The library API: bridge.open(...) and the typed reads, sync and scoring methods of Bridge."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

import bridge
from bridge.errors import ConfigError
from bridge.privacy import Pseudonymizer
from bridge.services import scoring
from bridge.services.periods import Period
from bridge.store import Store
from bridge.synthetic.adapter import SyntheticConfig

TOML = """
[[sources]]
name = "syn"
adapter = "synthetic"
municipality = "461"
[sources.settings]
seed = 5
caseworkers = 2
invalid = 2
"""


@pytest.fixture
def opened(
    tmp_path: Path, store: Store, store_url: str, secret_env: str, monkeypatch: pytest.MonkeyPatch
) -> bridge.Bridge:
    (tmp_path / "bridge.toml").write_text(TOML, encoding="utf-8")
    monkeypatch.setenv("BRIDGE_DATABASE_URL", store_url)
    return bridge.open(tmp_path / "bridge.toml")


def test_sync_and_typed_reads_match_the_ground_truth(opened: bridge.Bridge, persons: Pseudonymizer) -> None:
    truth = SyntheticConfig(seed=5, caseworkers=2, invalid=2).truth("461")
    [run] = opened.sync().runs
    assert (run.source, run.status, run.quarantined) == ("syn", "quarantined", 2)
    assert opened.runs()[0].id == run.id

    cases = opened.cases()
    expected = {r.source_ref: r for r in truth.expected_records(persons)}
    assert {c.source_ref for c in cases} == set(expected)
    assert opened.cases(status="closed") == [c for c in cases if c.status == "closed"]

    one = cases[0]
    record = expected[one.source_ref]
    assert one.child_key == record.child_key
    assessments = opened.assessments(case_id=one.id)
    assert sorted((a.assessed_on, a.theme, repr(a.value)) for a in assessments) == sorted(
        (a.assessed_on, a.theme.value, repr(a.value)) for a in record.assessments
    )
    assert len(opened.events(case_id=one.id)) == len(record.events)
    assert {q.source_ref for q in opened.quarantined()} == {str(c.id) for c in truth.invalid_cases()}


def test_scoring_methods_are_the_service_results(opened: bridge.Bridge) -> None:
    opened.sync()
    key = next(c.child_key for c in opened.cases() if opened.assessments(case_id=c.id))
    assert opened.child_scores(key) == scoring.child_scores(opened.store, key)
    assert opened.score_thresholds(r=0.5) == scoring.thresholds(opened.store, scoring.ReliableChange(r=0.5))
    assert opened.score_cohorts(by="municipality", period="2024") == scoring.cohort_summary(
        opened.store, by="municipality", period=Period.parse("2024")
    )
    as_of = date(2026, 11, 1)
    assert opened.score_coverage(as_of=as_of) == scoring.coverage(opened.store, as_of=as_of)


def test_a_bridge_opened_from_a_url_reads_but_cannot_sync(store: Store, store_url: str) -> None:
    with bridge.open(store_url) as from_url:
        assert from_url.cases() == []
        with pytest.raises(ConfigError, match=r"open it from bridge\.toml"):
            from_url.sync()
