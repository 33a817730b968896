"""The ground-truth generator: shapes and rules that tests/test_ground_truth.py leaves out.

Expectations are written from the domain (CPR rules, Danish case numbering, the acts in
force, the national scale of ~120,000 cases), not read back from the generator's constants.
"""

from __future__ import annotations

import gc
import re
import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest

from bridge.model.records import Act, EventKind, TargetGroup, Theme
from bridge.privacy import Pseudonymizer, is_unknown_cpr, parse_cpr
from bridge.synthetic import generate, touch
from bridge.synthetic.truth import Defect, GroundTruth, TruthCase

AS_OF = date(2026, 11, 1)


@pytest.fixture(scope="module")
def truth() -> GroundTruth:
    return generate(5, municipalities=2, caseworkers=8, invalid=5)


def _valid(truth: GroundTruth) -> list[TruthCase]:
    return list(truth.valid_cases())


def test_every_cpr_is_unique_and_guardians_are_born_1960_to_1995(truth: GroundTruth) -> None:
    guardians = {g for c in truth.valid_cases() for g in c.child.guardians if not is_unknown_cpr(g)}
    children = [c.child.cpr for c in truth.valid_cases()]
    assert len(set(children)) == len(children)
    assert not guardians & set(children)
    for cpr in guardians:
        assert 1960 <= parse_cpr(cpr).birth_date.year <= 1995
    assert {parse_cpr(cpr).sex for cpr in children} == {"F", "M"}


def test_the_seventh_digit_gives_the_birth_century(truth: GroundTruth) -> None:
    """Children born from 2000 carry a 7th digit of 4–9 (2000s up to year 36), earlier ones 0–3."""
    for case in truth.valid_cases():
        cpr = case.child.cpr
        assert re.fullmatch(r"\d{6}-\d{4}", cpr)
        seventh, born = int(cpr[7]), parse_cpr(cpr).birth_date
        assert cpr[:6] == born.strftime("%d%m%y")
        assert (seventh >= 4) == (born.year >= 2000)


def test_siblings_are_born_at_least_eleven_months_apart(truth: GroundTruth, persons: Pseudonymizer) -> None:
    births: dict[str | None, list[date]] = defaultdict(list)
    for case in truth.valid_cases():
        births[persons.family_key(case.child.guardians)].append(parse_cpr(case.child.cpr).birth_date)
    gaps = [(b - a).days for days in births.values() for a, b in pairwise(sorted(days))]
    assert gaps
    assert min(gaps) >= 330


def test_case_numbers_are_unique_and_numbered_by_the_opening_year(truth: GroundTruth) -> None:
    numbers = [c.case_number for c in truth.cases]
    assert len(set(numbers)) == len(numbers)
    for case in truth.cases:
        match = re.fullmatch(r"27\.24\.00-G01-(\d+)-(\d{2})", case.case_number)
        assert match, case.case_number
        assert int(match.group(2)) == case.opened.year % 100
        assert case.kle == "27.24.00"
    family_numbers = {c.family_case_number for c in truth.cases if c.family_case_number}
    assert family_numbers
    assert not family_numbers & set(numbers)


def test_about_a_quarter_of_the_cases_are_closed_and_dates_are_in_order(truth: GroundTruth) -> None:
    cases = _valid(truth)
    closed = [c for c in cases if c.closed is not None]
    assert 0.12 < len(closed) / len(cases) < 0.38
    end_of_as_of = datetime.combine(AS_OF + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    for case in cases:
        assert date(2019, 1, 1) <= case.opened <= AS_OF
        assert case.closed is None or case.opened <= case.closed <= AS_OF
        assert case.modified.utcoffset() == timedelta(0)
        assert datetime.combine(case.opened, datetime.min.time(), tzinfo=UTC) <= case.modified < end_of_as_of


def test_measures_name_paragraphs_of_the_act_in_force(truth: GroundTruth) -> None:
    measures = [m for c in truth.valid_cases() for m in c.measures]
    sel = {m.paragraph for m in measures if m.act is Act.SEL}
    bl = {m.paragraph for m in measures if m.act is Act.BL}
    assert "52 stk. 3 nr. 7" in sel
    assert {"32", "46"} <= bl
    assert not any("stk." in p for p in bl)  # Barnets lov paragraphs are cited bare here
    for case in truth.valid_cases():
        for m in case.measures:
            assert case.opened <= m.start <= (case.closed or AS_OF)
            assert m.end is None or m.start <= m.end
            assert m.account_code is None or re.fullmatch(r"\d\.\d{2}\.\d{2}\.\d{3}", m.account_code)
    grants = [m.has_grant for m in measures]
    assert 0.8 < sum(grants) / len(grants) < 1
    assert len({m.provider for m in measures if m.provider}) >= 3


def test_score_rounds_cover_every_theme_three_to_six_months_apart(truth: GroundTruth) -> None:
    for case in truth.valid_cases():
        rounds: dict[date, set[str]] = defaultdict(set)
        for a in case.assessments:
            rounds[a.assessed_on].add(a.theme)
        assert all(themes == {t.value for t in Theme} for themes in rounds.values())
        assert all(90 <= (b - a).days <= 180 for a, b in pairwise(sorted(rounds)))
        assert all(a.assessor for a in case.assessments)


def test_assessments_per_case_are_near_the_national_scale() -> None:
    """National scale: ~120,000 cases hold ~1.5 million assessments, about 12 per case."""
    cases = _valid(generate(8, caseworkers=30))
    per_case = statistics.mean(len(c.assessments) for c in cases)
    assert 8 <= per_case <= 18


def test_follow_ups_start_after_the_first_measure(truth: GroundTruth) -> None:
    for case in truth.valid_cases():
        follow_ups = [e.occurred_on for e in case.events if e.kind is EventKind.follow_up]
        if follow_ups:
            assert min(follow_ups) > min(m.start for m in case.measures)
        kinds = [e.kind for e in case.events]
        assert kinds.count(EventKind.notification) == 1
        assert len({e.ref for e in case.events}) == len(case.events)


def test_a_given_case_count_is_shared_by_caseload_in_every_municipality() -> None:
    truth = generate(2, municipalities=3, caseworkers=4, cases=190)
    per_municipality: dict[str, int] = defaultdict(int)
    loads: dict[str, int] = defaultdict(int)
    for case in truth.cases:
        per_municipality[case.municipality] += 1
        loads[case.caseworker_ref] += 1
    assert per_municipality == dict.fromkeys(["461", "751", "101"], 190)
    assert truth.municipalities == {"461": "Odense", "751": "Aarhus", "101": "København"}
    by_group: dict[TargetGroup, list[int]] = defaultdict(list)
    for ref, worker in truth.caseworkers.items():
        by_group[worker.target_group].append(loads[ref])
    ratio = statistics.mean(by_group[TargetGroup.handicap]) / statistics.mean(by_group[TargetGroup.udsatte])
    assert 55 / 40 - 0.1 < ratio < 55 / 40 + 0.1


def test_caseworkers_are_distinct_across_municipalities_however_many() -> None:
    truth = generate(3, municipalities=2, caseworkers=1001, cases=2)
    assert len(truth.caseworkers) == 2002
    assert {w.municipality for w in truth.caseworkers.values()} == {"461", "751"}
    assert all(truth.caseworkers[c.caseworker_ref].municipality == c.municipality for c in truth.cases)


def test_explicit_kommunekoder_and_their_limits() -> None:
    truth = generate(4, caseworkers=2, municipality_codes=["851", "999"])
    assert truth.municipalities == {"851": "Aalborg", "999": "Kommune 999"}
    assert {c.municipality for c in truth.cases} == {"851", "999"}
    with pytest.raises(ValueError, match="municipalities"):
        generate(4, municipalities=99)
    with pytest.raises(ValueError, match="as_of"):
        generate(4, as_of=date(2019, 1, 15))


def test_bad_cprs_are_shaped_like_cprs_so_masking_still_covers_them() -> None:
    truth = generate(6, caseworkers=2, invalid=20)
    bad = [c.child.cpr for c in truth.invalid_cases() if c.defect is Defect.bad_cpr]
    assert len(bad) == 4
    assert all(re.fullmatch(r"\d{6}-\d{4}", cpr) for cpr in bad)


@pytest.fixture
def collector_state() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.usefixtures("collector_state")
def test_generation_leaves_the_garbage_collector_as_it_found_it() -> None:
    gc.enable()
    generate(1, caseworkers=1)
    assert gc.isenabled()
    gc.disable()
    generate(1, caseworkers=1)
    assert not gc.isenabled()


def test_touch_adds_a_scored_round_on_the_day_and_is_deterministic() -> None:
    at = datetime(2026, 11, 3, 14, 30, tzinfo=UTC)
    first, second = generate(7, caseworkers=3, invalid=5), generate(7, caseworkers=3, invalid=5)
    before = {c.id: len(c.assessments) for c in first.cases}
    changed = touch(first, 6, 42, at)
    assert changed == touch(second, 6, 42, at)
    assert changed == sorted(changed)
    by_id = {c.id: c for c in first.cases}
    for ident in changed:
        case = by_id[ident]
        assert case.defect is None
        assert case.modified == at
        new = case.assessments[before[ident] :]
        assert sorted(a.theme for a in new) == sorted(t.value for t in Theme)
        assert {a.assessed_on for a in new} == {at.date()}
        assert all(a.value is not None and 1 <= a.value <= 5 for a in new)
    everything = touch(first, 10_000, 1, at)
    assert everything == sorted(c.id for c in first.valid_cases())
