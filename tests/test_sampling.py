"""Sampling: strata, quotas, SHA-256 order, exclusion, fingerprints and verification, on both stores.

The reference draws below are computed here from the ground truth records, independently of the
store: the population is every valid case with a measure started in the window, and the order
is SHA-256 of "seed|synthetic:<id>".
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from bridge.errors import ConfigError
from bridge.law import add_months
from bridge.model.records import CaseRecord
from bridge.model.tables import CASES
from bridge.privacy import Pseudonymizer
from bridge.services import sampling
from bridge.services.sampling import Cadence, DrawSpec, Member, Strategy, select_cases
from bridge.store import Store
from bridge.sync.writer import store_records
from bridge.synthetic.generate import generate
from tests.conftest import TEST_SECRET
from tests.storecheck import bridge_cli

AS_OF = date(2025, 12, 31)
SEED = "tilsyn-2025"


def records(persons: Pseudonymizer) -> list[CaseRecord]:
    return generate(seed=5, municipalities=1, caseworkers=4, as_of=date(2026, 3, 1)).expected_records(persons)


def in_window(record: CaseRecord, as_of: date = AS_OF, months: int = 12) -> bool:
    start = add_months(as_of, -months)
    return record.opened <= as_of and any(start <= m.start <= as_of for m in record.measures)


def reference_per_caseworker(recs: list[CaseRecord], k: int, seed: str) -> set[str]:
    strata: dict[str, list[str]] = defaultdict(list)
    for r in recs:
        if in_window(r):
            assert r.caseworker is not None
            strata[r.caseworker.source_ref].append(f"synthetic:{r.source_ref}")
    chosen = set()
    for keys in strata.values():
        keys.sort(key=lambda key: hashlib.sha256(f"{seed}|{key}".encode()).hexdigest())
        chosen.update(keys[:k])
    return chosen


@pytest.fixture
def loaded(store: Store, persons: Pseudonymizer) -> list[CaseRecord]:
    recs = records(persons)
    store_records(store, "synthetic", recs)
    return recs


def keys(store: Store, sample_id: int) -> set[str]:
    return {c.key for c in sampling.sampled_cases(store, sample_id)}


def test_per_caseworker_draws_the_first_k_of_each_caseworker_in_seed_order(
    store: Store, loaded: list[CaseRecord]
) -> None:
    spec = DrawSpec(Strategy.per_caseworker, AS_OF, k=3, exclude_months=0)
    summary = sampling.draw_sample(store, spec, seed=SEED, drawn_by="leder")
    assert keys(store, summary.id) == reference_per_caseworker(loaded, 3, SEED)
    assert summary.population_size == sum(1 for r in loaded if in_window(r))
    assert summary.sample_size == 12  # four caseworkers, each with more than three cases
    assert summary.seed == SEED
    assert summary.parameters["k"] == 3
    assert summary.window_start == date(2024, 12, 31)


def test_another_seed_draws_other_cases(store: Store, loaded: list[CaseRecord]) -> None:
    spec = DrawSpec(Strategy.per_caseworker, AS_OF, k=3, exclude_months=0)
    one = sampling.draw_sample(store, spec, seed="a")
    two = sampling.draw_sample(store, spec, seed="b")
    assert keys(store, one.id) != keys(store, two.id)
    assert one.fingerprint == two.fingerprint  # the same population


def test_per_paragraph_strata_are_the_latest_measures_paragraph(store: Store, loaded: list[CaseRecord]) -> None:
    spec = DrawSpec(Strategy.per_paragraph, AS_OF, k=2, exclude_months=0)
    summary = sampling.draw_sample(store, spec, seed=SEED)
    expected: dict[str, int] = defaultdict(int)
    start = add_months(AS_OF, -12)
    for r in loaded:
        inside = [m for m in r.measures if start <= m.start <= AS_OF]
        if r.opened <= AS_OF and inside:
            latest = max(inside, key=lambda m: (m.start, m.source_ref))
            expected[f"{latest.act.value} § {latest.paragraph}"] += 1
    counts = {s: (n, drawn) for s, n, drawn in sampling.stratum_counts(store, summary.id)}
    assert {s: n for s, (n, _) in counts.items()} == dict(expected)
    assert all(drawn == min(2, n) for n, drawn in counts.values())


def test_proportional_uses_the_sample_size_and_largest_remainders() -> None:
    members = [Member(f"s:{i}", i, f"c{i}", "A" if i < 60 else ("B" if i < 90 else "C")) for i in range(100)]
    spec = DrawSpec(Strategy.proportional, AS_OF, confidence=0.95, tolerable=0.10).validated()
    assert spec.n == 29
    draw = select_cases(spec, "x", members)
    per_stratum = defaultdict(int)
    for key in draw.selected:
        per_stratum[next(m.stratum for m in members if m.key == key)] += 1
    # 29 × 60/100 = 17.4, × 30/100 = 8.7, × 10/100 = 2.9: floors 17, 8, 2 and the two largest remainders (C, B) get one
    assert dict(per_stratum) == {"A": 17, "B": 9, "C": 3}


def test_recently_audited_cases_are_left_out(store: Store, loaded: list[CaseRecord]) -> None:
    spec = DrawSpec(Strategy.per_caseworker, AS_OF, k=3, exclude_months=12)
    first = sampling.draw_sample(store, spec, seed=SEED)
    later = DrawSpec(Strategy.per_caseworker, date(2026, 2, 28), k=3, exclude_months=12)
    second = sampling.draw_sample(store, later, seed=SEED)
    assert not keys(store, first.id) & keys(store, second.id)
    assert second.parameters["excluded"] == len(keys(store, first.id) & {m.key for m in _population(store, later)})


def _population(store: Store, spec: DrawSpec) -> list[Member]:
    members, _ = sampling.population(store, DrawSpec(spec.strategy, spec.as_of, k=spec.k, exclude_months=0))
    return members


def test_verify_confirms_an_unchanged_population(store: Store, loaded: list[CaseRecord]) -> None:
    summary = sampling.draw_sample(store, DrawSpec(Strategy.per_caseworker, AS_OF, k=2), seed=SEED)
    result = sampling.verify(store, summary.id)
    assert result.confirmed
    assert "bekræftet" in result.explain()


def test_verify_detects_an_added_and_a_removed_case(
    store: Store, loaded: list[CaseRecord], persons: Pseudonymizer
) -> None:
    summary = sampling.draw_sample(store, DrawSpec(Strategy.per_caseworker, AS_OF, k=2), seed=SEED)
    drawn = sorted(keys(store, summary.id))
    gone = drawn[0].split(":")[1]
    with store.transaction() as conn:
        deleted = datetime(2026, 1, 5, tzinfo=UTC)
        conn.execute(update(CASES).where(CASES.c.source_ref == gone).values(deleted_at=deleted))
    newcomer = next(r for r in loaded if in_window(r)).model_copy(update={"source_ref": "new-1"})
    store_records(store, "synthetic", [newcomer])
    result = sampling.verify(store, summary.id)
    assert not result.confirmed
    assert result.added == ["synthetic:new-1"]
    assert result.removed == [f"synthetic:{gone}"]
    assert result.selection_changed  # a drawn case is gone
    text = result.explain()
    assert "Kommet til: 1" in text
    assert "Forsvundet: 1" in text


def test_nothing_to_draw_says_why(store: Store, loaded: list[CaseRecord]) -> None:
    with pytest.raises(ConfigError, match="no cases to draw from"):
        sampling.draw_sample(store, DrawSpec(Strategy.per_caseworker, date(2019, 1, 2), k=2))
    with pytest.raises(ConfigError, match="needs k"):
        sampling.draw_sample(store, DrawSpec(Strategy.per_caseworker, AS_OF))


def test_the_cadence_gives_the_period() -> None:
    assert Cadence.quarterly.period(date(2025, 5, 3)).label == "2025Q2"
    assert Cadence.half_yearly.period(date(2025, 7, 1)).label == "2025H2"
    assert Cadence.yearly.period(date(2025, 7, 1)).end == date(2025, 12, 31)


@pytest.mark.slow
def test_the_same_seed_and_population_draw_the_same_sample_in_two_processes(
    store: Store, store_url: str, loaded: list[CaseRecord], tmp_path: Path
) -> None:
    env = {"BRIDGE_DATABASE_URL": store_url, "BRIDGE_PERSON_KEY_SECRET": TEST_SECRET}
    (tmp_path / "bridge.toml").write_text("# the store comes from BRIDGE_DATABASE_URL\n", encoding="utf-8")
    drawn = []
    for _ in range(2):
        result = bridge_cli(
            "sample", "draw", "--strategy", "per-caseworker", "--k", "3", "--as-of", AS_OF.isoformat(),
            "--seed", SEED, "--exclude-months", "0", "--format", "json", cwd=tmp_path, env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        drawn.append(result.stdout)
    ids = sorted(s.id for s in sampling.list_samples(store))
    assert len(ids) == 2
    assert keys(store, ids[0]) == keys(store, ids[1]) == reference_per_caseworker(loaded, 3, SEED)
    verified = bridge_cli("sample", "verify", str(ids[0]), cwd=tmp_path, env=env)
    assert verified.returncode == 0, verified.stderr
    assert "bekræftet" in verified.stdout
