"""The synthetic ground truth and the synthetic adapter that serves it."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest

from bridge.adapter import SourceContext
from bridge.law import add_months
from bridge.model.records import Act, EventKind, TargetGroup
from bridge.privacy import InvalidCPR, Pseudonymizer, is_unknown_cpr, parse_cpr
from bridge.synthetic.adapter import SyntheticAdapter, SyntheticConfig
from bridge.synthetic.generate import generate, touch
from bridge.synthetic.truth import BROKEN_DATE_TEXT, Defect, GroundTruth


@pytest.fixture(scope="module")
def truth() -> GroundTruth:
    return generate(11, municipalities=2, caseworkers=16, invalid=10)


def test_the_same_parameters_give_the_same_truth_and_another_seed_another() -> None:
    assert generate(3, caseworkers=4) == generate(3, caseworkers=4)
    assert generate(3, caseworkers=4) != generate(4, caseworkers=4)


def test_caseloads_are_about_40_on_udsatte_and_55_on_handicap(truth: GroundTruth) -> None:
    loads: dict[str, int] = defaultdict(int)
    for case in truth.cases:
        if case.defect is None:
            loads[case.caseworker_ref] += 1
    by_group: dict[TargetGroup, list[int]] = defaultdict(list)
    for ref, load in loads.items():
        by_group[truth.caseworkers[ref].target_group].append(load)
    assert 36 <= statistics.mean(by_group[TargetGroup.udsatte]) <= 44
    assert 50 <= statistics.mean(by_group[TargetGroup.handicap]) <= 60
    assert len(truth.municipalities) == 2
    assert {c.municipality for c in truth.cases} == set(truth.municipalities)


def test_a_requested_case_count_is_met_exactly() -> None:
    assert len(generate(2, caseworkers=5, cases=333).cases) == 333


def test_siblings_share_guardians_and_one_caseworker(truth: GroundTruth, persons: Pseudonymizer) -> None:
    families: dict[str, set[str]] = defaultdict(set)
    for case in truth.valid_cases():
        key = persons.family_key(case.child.guardians)
        assert key is not None
        families[key].add(case.caseworker_ref)
    assert all(len(workers) == 1 for workers in families.values())
    sizes = defaultdict(int)
    for case in truth.valid_cases():
        sizes[persons.family_key(case.child.guardians)] += 1
    assert max(sizes.values()) >= 3
    assert any(is_unknown_cpr(g) for c in truth.cases for g in c.child.guardians)
    family_cases = [c for c in truth.cases if c.family_case_number]
    assert family_cases
    numbers = defaultdict(set)
    for case in family_cases:
        numbers[case.family_case_number].add(persons.family_key(case.child.guardians))
    assert all(len(keys) == 1 for keys in numbers.values())


def test_every_cpr_is_valid_and_unique_except_the_broken_ones(truth: GroundTruth) -> None:
    children = [c.child.cpr for c in truth.valid_cases()]
    assert len(set(children)) == len(children)
    for cpr in truth.cprs() - {c.child.cpr for c in truth.invalid_cases() if c.defect is Defect.bad_cpr}:
        parse_cpr(cpr)
    for case in truth.invalid_cases():
        if case.defect is Defect.bad_cpr:
            with pytest.raises(InvalidCPR):
                parse_cpr(case.child.cpr)
    for case in truth.valid_cases():
        born = parse_cpr(case.child.cpr).birth_date
        assert born < case.opened <= born + timedelta(days=18 * 366)


def test_measures_follow_the_act_in_force_and_scores_drift(truth: GroundTruth) -> None:
    measures = [m for c in truth.valid_cases() for m in c.measures]
    assert {m.act for m in measures if m.start < date(2024, 1, 1)} == {Act.SEL}
    assert {m.act for m in measures if m.start >= date(2024, 1, 1)} == {Act.BL}
    assert any(not m.has_grant for m in measures)
    scores = [a for c in truth.valid_cases() for a in c.assessments]
    assert any(a.value is None for a in scores)
    assert {a.value for a in scores} == {None, 1, 2, 3, 4, 5}
    assert any(not c.assessments for c in truth.valid_cases())
    changes = []
    for case in truth.valid_cases():
        series = defaultdict(list)
        for a in case.assessments:
            if a.value is not None:
                series[a.theme].append(a.value)
        changes += [s[-1] - s[0] for s in series.values() if len(s) > 1]
    assert statistics.mean(changes) < 0  # a slight improvement (1 = i trivsel)
    assert any(change > 0 for change in changes)


def test_deadlines_are_broken_at_national_rates_and_the_truth_knows_which(truth: GroundTruth) -> None:
    """Børnesagsbarometret 2019-2024: investigation within 4 months in 50-60 % of cases, the child heard
    before the decision in 56-65 %, a plan in 77-79 %, the first follow-up within 3 months in 44-75 %."""
    cases = list(truth.valid_cases())
    kept = {rule: 1 - sum(rule in c.broken for c in cases) / len(cases) for rule in (
        "undersoegelse_4_maaneder", "boernesamtale_foer_afgoerelse", "plan_rettidig"
    )}  # fmt: skip
    assert 0.45 < kept["undersoegelse_4_maaneder"] < 0.72
    assert 0.5 < kept["boernesamtale_foer_afgoerelse"] < 0.75
    assert 0.68 < kept["plan_rettidig"] < 0.88
    for case in cases:
        when = {e.kind: e.occurred_on for e in case.events}
        due = add_months(when[EventKind.notification], 4)
        completed = when.get(EventKind.investigation_completed)
        if "undersoegelse_4_maaneder" in case.broken:
            assert completed is None or completed > due
        else:
            assert completed is None or completed <= due
    gaps = []
    for case in cases:
        follow_ups = sorted(e.occurred_on for e in case.events if e.kind is EventKind.follow_up)
        gaps += [b <= add_months(a, 6) for a, b in pairwise(follow_ups)]
    assert 0.7 < sum(gaps) / len(gaps) < 0.9


def test_every_date_is_within_the_case_and_before_as_of(truth: GroundTruth) -> None:
    for case in truth.valid_cases():
        last = case.closed or date(2026, 11, 1)
        assert case.opened <= last
        assert all(case.opened <= a.assessed_on <= last for a in case.assessments)
        assert all(e.occurred_on <= last for e in case.events)
        assert case.modified <= datetime(2026, 11, 2, tzinfo=UTC)


def test_invalid_cases_cycle_through_every_defect(truth: GroundTruth) -> None:
    defects = [c.defect for c in truth.invalid_cases()]
    assert len(defects) == 10
    assert set(defects) == set(Defect)


def test_touch_changes_exactly_n_cases_and_moves_them_past_every_other(truth: GroundTruth) -> None:
    copy = generate(11, municipalities=2, caseworkers=16, invalid=10)
    at = datetime(2026, 11, 5, 9, tzinfo=UTC)
    changed = touch(copy, 7, 1, at)
    assert len(changed) == 7
    before = {c.id: c for c in truth.cases}
    differing = {c.id for c in copy.cases if c != before[c.id]}
    assert differing == set(changed)
    assert all(c.modified == at for c in copy.cases if c.id in changed)


def _adapter(persons: Pseudonymizer, **settings: object) -> SyntheticAdapter:
    config = SyntheticConfig.model_validate({"seed": 9, "caseworkers": 3, "invalid": 5, **settings})
    return SyntheticAdapter(config, SourceContext(source="syn", municipality="461", persons=persons))


def test_the_adapter_yields_the_expected_records_and_rejects_each_defect(persons: Pseudonymizer) -> None:
    adapter = _adapter(persons, page_size=40)
    truth = adapter.config.truth("461")
    batches = list(adapter.fetch(None))
    records = [r for b in batches for r in b.records]
    assert len(records) == len({r.source_ref for r in records})
    assert {r.source_ref: r.content_hash() for r in records} == {
        r.source_ref: r.content_hash() for r in truth.expected_records(persons)
    }
    rejections = {r.source_ref: r for b in batches for r in b.rejections}
    reasons = {c.defect: rejections[str(c.id)].reason for c in truth.invalid_cases()}
    assert reasons[Defect.bad_cpr].startswith("child CPR: CPR number")
    assert reasons[Defect.score_out_of_range] == "assessment 1: value 7 is outside 1–5"
    assert reasons[Defect.unknown_theme] == "assessment 1: unknown theme 'humoer'"
    assert "case closed before it was opened" in reasons[Defect.closed_before_opened]
    assert reasons[Defect.broken_date] == f"opened: '{BROKEN_DATE_TEXT}' is not a date"
    for rejection in rejections.values():
        for cpr in truth.cprs():
            assert cpr not in rejection.reason
            assert cpr.replace("-", "") not in rejection.reason
        assert json.loads(rejection.payload)["id"] == int(rejection.source_ref or 0)


def test_paging_from_any_cursor_gives_no_gap_and_no_duplicate(persons: Pseudonymizer) -> None:
    adapter = _adapter(persons, page_size=17)
    everything = list(adapter.fetch(None))
    per_batch = [[r.source_ref for r in (*b.records, *b.rejections)] for b in everything]
    refs = [ref for batch in per_batch for ref in batch]
    assert len(refs) == len(set(refs)) == len(adapter.config.truth("461").cases)
    for k in (1, 4, len(everything) - 1):
        resumed = list(adapter.fetch(everything[k - 1].cursor))
        later = [r.source_ref for b in resumed for r in (*b.records, *b.rejections)]
        assert len(later) == len(set(later))
        assert set(later) == {ref for batch in per_batch[k:] for ref in batch}


def test_touched_cases_come_after_the_old_cursor(persons: Pseudonymizer) -> None:
    before = _adapter(persons)
    last_cursor = list(before.fetch(None))[-1].cursor
    after = _adapter(persons, touched=2, touch_count=4)
    changed = [r.source_ref for b in after.fetch(last_cursor) for r in b.records]
    assert 4 <= len(changed) <= 8
    assert len(set(changed)) == len(changed)


def test_a_replayed_payload_parses_to_the_same_record(persons: Pseudonymizer) -> None:
    adapter = _adapter(persons)
    [first, *_] = adapter.fetch(None)
    from bridge.synthetic.adapter import render

    truth = adapter.config.truth("461")
    by_id = {str(c.id): c for c in truth.cases}
    record = first.records[0]
    assert adapter.parse_payload(render(by_id[record.source_ref], truth)) == record
