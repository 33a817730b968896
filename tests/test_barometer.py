"""The barometer's shares equal a plain-Python recomputation over the synthetic ground truth.

The reference reads the truth's own course of each case (one notification, one investigation,
one decision granting measures that start together, a plan, follow-ups) and works each
indicator out with the law's plain words, without the rule engine: "completed no later than 4
months after the notification", "a conversation between the notification and the decision", and
so on. It then counts cases per period the way Børnesagsbarometret counts them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, timedelta

import pytest

from bridge.law import add_months
from bridge.model.records import Act, EventKind
from bridge.privacy import Pseudonymizer, parse_cpr
from bridge.services.barometer import ALL, barometer
from bridge.services.periods import Period
from bridge.store import Store
from bridge.sync.writer import store_records
from bridge.synthetic.generate import generate
from bridge.synthetic.truth import GroundTruth, TruthCase, TruthMeasure

AS_OF = date(2026, 11, 1)
PERIODS = [Period.parse(str(y)) for y in (2022, 2023, 2024, 2025, 2026)]
PASS, FAIL, NYD, NR = "pass", "fail", "not_yet_due", "not_relevant"


def _standard(due: date, done: date | None) -> str:
    if done is not None and done <= AS_OF:
        return PASS if done <= due else FAIL
    return FAIL if due < AS_OF else NYD


def _age(case: TruthCase, day: date) -> int:
    born = parse_cpr(case.child.cpr).birth_date
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _section(m: TruthMeasure) -> str:
    return m.paragraph.split()[0]


def reference_checks(case: TruthCase) -> list[tuple[str, date | None, str]]:
    """(rule, due, outcome) of every check of one case, worked out from its course."""
    on: dict[EventKind, list[date]] = defaultdict(list)
    for e in case.events:
        on[e.kind].append(e.occurred_on)
    for days in on.values():
        days.sort()

    def first(kind: EventKind, since: date) -> date | None:
        return next((d for d in on[kind] if d >= since), None)

    out: list[tuple[str, date | None, str]] = []
    notified = on[EventKind.notification][0]
    received = next(e.at for e in case.events if e.kind is EventKind.notification)
    assessed = next((e.at for e in case.events if e.kind is EventKind.notification_assessed), None)
    assert received is not None
    if assessed is None:
        out.append(
            ("underretning_24_timer", notified + timedelta(days=1), _standard(notified + timedelta(days=1), None))
        )
    else:
        in_time = assessed - received <= timedelta(hours=24)
        out.append(("underretning_24_timer", assessed.date(), PASS if in_time else FAIL))
    started = on[EventKind.investigation_started][0]
    completed = first(EventKind.investigation_completed, started)
    out.append(("undersoegelse_4_maaneder", add_months(notified, 4), _standard(add_months(notified, 4), completed)))
    decided = on[EventKind.decision][0] if on[EventKind.decision] else None
    if decided is not None and decided <= AS_OF:
        heard = any(notified <= c <= decided for c in on[EventKind.child_conversation])
        out.append(("boernesamtale_foer_afgoerelse", decided, PASS if heard else FAIL))
    notes = [n for n in on[EventKind.journal_note] if n <= AS_OF]
    out.append(
        ("journal", add_months(case.opened, 1), _standard(add_months(case.opened, 1), notes[0] if notes else None))
    )
    plan = first(EventKind.plan_made, notified)
    for m in case.measures:
        start, section = m.start, _section(m)
        assert decided is not None
        requires = (m.act is Act.SEL and section == "52") or (m.act is Act.BL and section in {"46", "47"})
        if not requires:
            out.append(("undersoegelse_foer_indsats", start, NR))
        elif completed is not None and completed <= start:
            out.append(("undersoegelse_foer_indsats", start, PASS))
        else:
            parallel = started <= start and completed is not None and completed <= AS_OF
            out.append(("undersoegelse_foer_indsats", start, PASS if parallel else FAIL))
        consented = any(c <= start for c in on[EventKind.consent])
        needs = (m.act is Act.SEL and section in {"52", "76"}) or (m.act is Act.BL and section in {"32", "46", "114"})
        out.append(("samtykke", start, (PASS if consented else FAIL) if needs else NR))
        if (m.act is Act.BL and section in {"86", "87", "114"}) or (m.act is Act.SEL and section in {"41", "42"}):
            out.append(("plan_rettidig", decided, NR))
        elif m.act is Act.SEL:
            out.append(("plan_rettidig", decided, PASS if plan is not None and plan <= decided else FAIL))
        elif section != "46" and (plan is None or plan > AS_OF):
            out.append(("plan_rettidig", decided, NR))
        else:
            out.append(("plan_rettidig", add_months(decided, 3), _standard(add_months(decided, 3), plan)))
        due = add_months(start, 3)
        if m.act is Act.BL and started <= start:
            later = first(EventKind.investigation_completed, start + timedelta(days=1))
            if later is not None and later < due:
                due = later
        follow = first(EventKind.follow_up, start)
        if m.end is not None and m.end < due and (follow is None or follow > m.end):
            out.append(("opfoelgning_3_maaneder", due, NR))
        else:
            out.append(("opfoelgning_3_maaneder", due, _standard(due, follow)))
        if m.act is Act.SEL and follow is not None:
            previous, end = follow, min(m.end or AS_OF, AS_OF)
            while True:
                due = add_months(previous, 6)
                if m.end is not None and due > m.end:
                    break
                following = first(EventKind.follow_up, previous + timedelta(days=1))
                out.append(("opfoelgning_6_maaneder", due, _standard(due, following)))
                if following is None or following > end:
                    break
                previous = following
        out.append(("bevilling", start, PASS if m.has_grant else FAIL))
        age = _age(case, start)
        after_care = section in {"76", "114"}
        out.append(("maalgruppe_alder", start, PASS if (18 <= age <= 22 if after_care else age <= 17) else FAIL))
        ok = m.account_code is not None and re.fullmatch(r"5\.28\.2\d\.\d{3}", m.account_code) is not None
        out.append(("kontering", start, PASS if ok else FAIL))
    return out


def reference_barometer(truth: GroundTruth) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    """(period, rule) -> cases (passed, failed, not yet due, not relevant)."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for case in truth.valid_cases():
        checks = reference_checks(case)
        for period in PERIODS:
            per_rule: dict[str, set[str]] = defaultdict(set)
            for rule, due, outcome in checks:
                if due is not None and period.start <= due <= period.end:
                    per_rule[rule].add(outcome)
            for rule, outcomes in per_rule.items():
                verdict = next(o for o in (FAIL, PASS, NYD, NR) if o in outcomes)
                counts[(period.label, rule)][(PASS, FAIL, NYD, NR).index(verdict)] += 1
    return {key: (v[0], v[1], v[2], v[3]) for key, v in counts.items()}


@pytest.fixture(scope="module")
def truth() -> GroundTruth:
    return generate(seed=21, municipalities=2, caseworkers=4, as_of=AS_OF)


def test_the_barometer_equals_the_reference_over_the_ground_truth(
    store: Store, truth: GroundTruth, persons: Pseudonymizer
) -> None:
    store_records(store, "synthetic", truth.expected_records(persons))
    result = barometer(store, periods=PERIODS, as_of=AS_OF)
    assert result.cases == sum(1 for _ in truth.valid_cases())
    got = {(i.period, i.rule): (i.passed, i.failed, i.not_yet_due, i.not_relevant) for i in result.rows(group=ALL)}
    expected = reference_barometer(truth)
    assert got == expected
    shares = {key: p / (p + f) for key, (p, f, _, _) in expected.items() if p + f}
    for indicator in result.rows(group=ALL):
        if indicator.judged:
            assert indicator.share == pytest.approx(shares[(indicator.period, indicator.rule)])
    # the data exercise the indicators: each area has passing and failing cases somewhere
    for rule in (
        "undersoegelse_4_maaneder",
        "boernesamtale_foer_afgoerelse",
        "plan_rettidig",
        "opfoelgning_3_maaneder",
    ):
        assert sum(got[k][0] for k in got if k[1] == rule) > 0
        assert sum(got[k][1] for k in got if k[1] == rule) > 0


def test_failing_cases_are_listed_by_case_number_and_groups_add_up(
    store: Store, truth: GroundTruth, persons: Pseudonymizer
) -> None:
    records = truth.expected_records(persons)
    store_records(store, "synthetic", records)
    overall = barometer(store, periods=PERIODS[-2:], as_of=AS_OF)
    per_worker = barometer(store, periods=PERIODS[-2:], by="caseworker", as_of=AS_OF)
    numbers = {r.case_number for r in records}
    keys = {r.child_key for r in records}
    for indicator in overall.rows():
        assert set(indicator.failing) <= numbers
        assert not set(indicator.failing) & keys
        assert len(indicator.failing) == indicator.failed
        parts = [i for i in per_worker.rows(period=indicator.period) if i.rule == indicator.rule]
        assert sum(i.passed for i in parts) == indicator.passed
        assert sum(i.failed for i in parts) == indicator.failed
    assert {i.group for i in per_worker.indicators} <= {w.name for w in truth.caseworkers.values()}


def test_a_source_without_journal_notes_is_not_counted_as_failing_the_journal_rule(
    store: Store, truth: GroundTruth, persons: Pseudonymizer
) -> None:
    """The same cases from a source that delivers no journal notes (as DUBU) and from one that does:
    the first source's cases are judged as before, every case of the second is not relevant."""
    records = truth.expected_records(persons)
    store_records(store, "synthetic", records)
    bare = [
        r.model_copy(update={"events": tuple(e for e in r.events if e.kind != EventKind.journal_note)}) for r in records
    ]
    store_records(store, "no-journal", bare)
    expected = reference_barometer(truth)
    judged = 0
    for i in barometer(store, periods=PERIODS, as_of=AS_OF).rows(group=ALL):
        if i.rule != "journal":
            continue
        p, f, nyd, nr = expected[(i.period, "journal")]
        assert (i.passed, i.failed, i.not_yet_due) == (p, f, nyd)
        assert i.not_relevant == nr + (p + f + nyd + nr)
        judged += p + f
    assert judged > 0
