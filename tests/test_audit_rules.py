"""Every built-in audit rule at its edges, on hand-made timelines.

Each case is worked out by hand from the law: the deadline day is in time and the day after is
not; months are calendar months clamped to the month's end; a missing milestone is "not yet
due" up to its deadline and a fail after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

import pytest

from bridge.errors import PluginError
from bridge.hookspecs import hookimpl
from bridge.law import (
    Area,
    AuditRule,
    Check,
    Citation,
    EventFact,
    MeasureFact,
    Outcome,
    Step,
    Timeline,
    act_in_force,
    add_months,
)
from bridge.law.rules import (
    AccountCode,
    ChildConversationBeforeDecision,
    ConsentOnFile,
    FirstFollowUpIn3Months,
    FollowUpEvery6Months,
    GrantForEachMeasure,
    InvestigationBeforeMeasure,
    InvestigationWithin4Months,
    JournalKept,
    NotificationAssessedIn24Hours,
    PlanInTime,
    TargetGroupByAge,
)
from bridge.model.records import Act
from bridge.plugins import registered
from bridge.services.audit import AuditError, audit_rules, check_case, rule_outcome, upcoming_deadlines

D = date
BORN = D(2012, 5, 1)
OPENED = D(2023, 1, 1)


def timeline(
    *events: tuple[str, date] | tuple[str, date, datetime],
    measures: Iterable[MeasureFact] = (),
    born: date = BORN,
    opened: date = OPENED,
) -> Timeline:
    facts = tuple(EventFact(e[0], e[1], e[2] if len(e) == 3 else None, f"e{i}") for i, e in enumerate(events))  # type: ignore[misc]
    return Timeline(
        key="test:1",
        case_number="27.24.00-G01-1-23",
        birth_date=born,
        target_group="udsatte",
        opened=opened,
        measures=tuple(measures),
        events=facts,
    )


def measure(
    start: date,
    act: Act | None = None,
    paragraph: str | None = None,
    *,
    end: date | None = None,
    grant: bool = True,
    account: str | None = "5.28.21.002",
) -> MeasureFact:
    act = act or act_in_force(start)
    paragraph = paragraph or ("52 stk. 3 nr. 3" if act is Act.SEL else "32")
    return MeasureFact("m1", act, paragraph, start, end, grant, account)


def only(checks: list[Check]) -> Check:
    assert len(checks) == 1, checks
    return checks[0]


# --- calendar -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (D(2023, 10, 31), 4, D(2024, 2, 29)),  # leap year: 29 February
        (D(2022, 10, 31), 4, D(2023, 2, 28)),
        (D(2024, 1, 31), 3, D(2024, 4, 30)),
        (D(2024, 8, 31), -6, D(2024, 2, 29)),
        (D(2023, 12, 15), 1, D(2024, 1, 15)),
        (D(2024, 2, 29), 12, D(2025, 2, 28)),
    ],
)
def test_add_months_clamps_to_the_end_of_the_month(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_the_act_follows_the_date() -> None:
    assert act_in_force(D(2023, 12, 31)) is Act.SEL
    assert act_in_force(D(2024, 1, 1)) is Act.BL


# --- børnefaglig undersøgelse within 4 months --------------------------------------------------

_AWARE = D(2023, 10, 31)  # → deadline 2024-02-29


def _investigation(completed: date | None) -> Timeline:
    events: list[tuple[str, date]] = [("notification", _AWARE), ("investigation_started", D(2023, 11, 6))]
    if completed is not None:
        events.append(("investigation_completed", completed))
    return timeline(*events)


def test_investigation_on_the_clamped_deadline_day_passes() -> None:
    check = only(list(InvestigationWithin4Months().check(_investigation(D(2024, 2, 29)), D(2024, 6, 1))))
    assert check.outcome is Outcome.passed
    assert check.due == D(2024, 2, 29)
    assert check.citation == Citation("SEL", "§ 50, stk. 7")  # aware in 2023: Serviceloven
    assert "29.02.2024" in check.evidence


def test_investigation_a_day_late_fails_with_the_days_late() -> None:
    check = only(list(InvestigationWithin4Months().check(_investigation(D(2024, 3, 1)), D(2024, 6, 1))))
    assert check.outcome is Outcome.failed
    assert not check.open
    assert "1 dage efter" in check.evidence


def test_missing_investigation_is_not_yet_due_until_the_deadline_then_fails() -> None:
    rule = InvestigationWithin4Months()
    before = only(list(rule.check(_investigation(None), D(2024, 2, 29))))
    assert before.outcome is Outcome.not_yet_due
    assert before.open
    after = only(list(rule.check(_investigation(None), D(2024, 3, 1))))
    assert after.outcome is Outcome.failed
    assert after.open
    assert "mangler" in after.evidence
    assert "29.02.2024" in after.evidence


def test_investigation_after_barnets_lov_cites_bl_20() -> None:
    case = timeline(
        ("notification", D(2024, 3, 31)),
        ("investigation_started", D(2024, 4, 2)),
        ("investigation_completed", D(2024, 7, 31)),
    )
    check = only(list(InvestigationWithin4Months().check(case, D(2024, 12, 1))))
    assert check.citation == Citation("BL", "§ 20, stk. 3")
    assert check.due == D(2024, 7, 31)
    assert check.outcome is Outcome.passed


def test_an_investigation_without_a_notification_counts_from_its_start() -> None:
    case = timeline(("investigation_started", D(2024, 1, 10)), ("investigation_completed", D(2024, 5, 11)))
    check = only(list(InvestigationWithin4Months().check(case, D(2024, 12, 1))))
    assert check.due == D(2024, 5, 10)
    assert check.outcome is Outcome.failed


# --- underretning within 24 hours ---------------------------------------------------------------

_RECEIVED = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("after", "outcome"),
    [
        (timedelta(hours=23, minutes=59), Outcome.passed),
        (timedelta(hours=24), Outcome.passed),
        (timedelta(hours=24, minutes=1), Outcome.failed),
    ],
)
def test_notification_with_times_is_judged_in_hours(after: timedelta, outcome: Outcome) -> None:
    assessed = _RECEIVED + after
    case = timeline(("notification", _RECEIVED.date(), _RECEIVED), ("notification_assessed", assessed.date(), assessed))
    check = only(list(NotificationAssessedIn24Hours().check(case, D(2024, 6, 1))))
    assert check.outcome is outcome
    assert check.citation == Citation("BL", "§ 136")
    assert "timer" in check.evidence


@pytest.mark.parametrize(("days", "outcome"), [(0, Outcome.passed), (1, Outcome.passed), (2, Outcome.failed)])
def test_notification_with_dates_only_gets_the_benefit_of_the_doubt(days: int, outcome: Outcome) -> None:
    received = D(2023, 6, 30)
    case = timeline(("notification", received), ("notification_assessed", received + timedelta(days=days)))
    check = only(list(NotificationAssessedIn24Hours().check(case, D(2023, 9, 1))))
    assert check.outcome is outcome
    assert check.citation == Citation("SEL", "§ 155, stk. 2")
    assert "kun datoer" in check.evidence


def test_unassessed_notification_is_not_yet_due_on_the_next_day_and_fails_after() -> None:
    case = timeline(("notification", D(2024, 5, 1)))
    rule = NotificationAssessedIn24Hours()
    assert only(list(rule.check(case, D(2024, 5, 2)))).outcome is Outcome.not_yet_due
    late = only(list(rule.check(case, D(2024, 5, 3))))
    assert late.outcome is Outcome.failed
    assert late.open


def test_each_notification_is_paired_with_its_own_assessment() -> None:
    case = timeline(
        ("notification", D(2024, 1, 10)),
        ("notification", D(2024, 2, 10)),
        ("notification_assessed", D(2024, 2, 11)),
    )
    first, second = NotificationAssessedIn24Hours().check(case, D(2024, 3, 1))
    assert first.outcome is Outcome.failed  # the February assessment is not the January one's
    assert second.outcome is Outcome.passed


# --- first follow-up within 3 months ------------------------------------------------------------


@pytest.mark.parametrize(("follow_up", "outcome"), [(D(2024, 4, 30), Outcome.passed), (D(2024, 5, 1), Outcome.failed)])
def test_first_follow_up_deadline_is_clamped(follow_up: date, outcome: Outcome) -> None:
    case = timeline(("follow_up", follow_up), measures=[measure(D(2024, 1, 31), Act.BL, "46")])
    check = only(list(FirstFollowUpIn3Months().check(case, D(2024, 12, 1))))
    assert check.due == D(2024, 4, 30)
    assert check.outcome is outcome
    assert check.citation == Citation("BL", "§ 95, stk. 2")


def test_bl_first_follow_up_is_due_when_a_parallel_investigation_ends_earlier() -> None:
    case = timeline(
        ("investigation_started", D(2024, 2, 1)),
        ("investigation_completed", D(2024, 3, 15)),
        ("follow_up", D(2024, 4, 1)),
        measures=[measure(D(2024, 2, 10), Act.BL, "32")],
    )
    check = only(list(FirstFollowUpIn3Months().check(case, D(2024, 12, 1))))
    assert check.due == D(2024, 3, 15)
    assert check.outcome is Outcome.failed


def test_a_measure_that_ended_before_its_first_follow_up_was_due_is_not_relevant() -> None:
    case = timeline(measures=[measure(D(2024, 2, 1), end=D(2024, 3, 1))])
    assert only(list(FirstFollowUpIn3Months().check(case, D(2024, 12, 1)))).outcome is Outcome.not_relevant


def test_missing_first_follow_up_before_and_after_its_deadline() -> None:
    case = timeline(measures=[measure(D(2024, 2, 29))])
    rule = FirstFollowUpIn3Months()
    assert only(list(rule.check(case, D(2024, 5, 29)))).outcome is Outcome.not_yet_due
    assert only(list(rule.check(case, D(2024, 5, 30)))).outcome is Outcome.failed


# --- follow-up every 6 months; a SEL measure followed up after 2024-01-01 ------------------------


def test_sel_measure_keeps_its_6_month_cadence_under_barnets_lov() -> None:
    case = timeline(
        ("follow_up", D(2023, 12, 10)),  # first, within 3 months of 15.09.2023
        ("follow_up", D(2024, 6, 10)),  # the last day of 6 months: in time
        ("follow_up", D(2024, 12, 11)),  # one day after 10.12.2024: late
        measures=[measure(D(2023, 9, 15), Act.SEL, "52 stk. 3 nr. 7")],
    )
    first = only(list(FirstFollowUpIn3Months().check(case, D(2025, 3, 1))))
    assert first.outcome is Outcome.passed
    assert first.citation == Citation("SEL", "§ 70, stk. 1")
    second, third, fourth = FollowUpEvery6Months().check(case, D(2025, 3, 1))
    assert (second.due, second.outcome) == (D(2024, 6, 10), Outcome.passed)
    assert "videreført" in second.evidence
    assert (third.due, third.outcome) == (D(2024, 12, 10), Outcome.failed)
    assert (fourth.due, fourth.outcome) == (D(2025, 6, 11), Outcome.not_yet_due)


def test_sel_cadence_missing_follow_up_fails_once_and_stops() -> None:
    case = timeline(("follow_up", D(2023, 3, 1)), measures=[measure(D(2023, 1, 10), Act.SEL)])
    checks = list(FollowUpEvery6Months().check(case, D(2024, 1, 1)))
    assert [(c.due, c.outcome, c.open) for c in checks] == [(D(2023, 9, 1), Outcome.failed, True)]


def test_bl_measure_cadence_is_left_to_the_municipality() -> None:
    case = timeline(("follow_up", D(2024, 4, 1)), measures=[measure(D(2024, 2, 1), Act.BL, "32")])
    check = only(list(FollowUpEvery6Months().check(case, D(2025, 6, 1))))
    assert check.outcome is Outcome.not_relevant
    assert check.citation == Citation("BL", "§ 95, stk. 3")


def test_cadence_stops_at_the_measure_end() -> None:
    case = timeline(
        ("follow_up", D(2023, 3, 1)),
        measures=[measure(D(2023, 1, 10), Act.SEL, end=D(2023, 8, 31))],
    )
    assert list(FollowUpEvery6Months().check(case, D(2024, 1, 1))) == []


# --- plan ----------------------------------------------------------------------------------------


def test_sel_plan_before_the_decision_passes_and_after_fails() -> None:
    start = D(2023, 5, 1)
    kept = timeline(("plan_made", D(2023, 4, 20)), ("decision", D(2023, 4, 25)), measures=[measure(start, Act.SEL)])
    late = timeline(("decision", D(2023, 4, 25)), ("plan_made", D(2023, 4, 26)), measures=[measure(start, Act.SEL)])
    rule = PlanInTime()
    assert only(list(rule.check(kept, D(2024, 1, 1)))).outcome is Outcome.passed
    failed = only(list(rule.check(late, D(2024, 1, 1))))
    assert failed.outcome is Outcome.failed
    assert failed.citation == Citation("SEL", "§ 140, stk. 1")
    assert "akutte" in failed.evidence


@pytest.mark.parametrize(("plan", "outcome"), [(D(2024, 5, 29), Outcome.passed), (D(2024, 5, 30), Outcome.failed)])
def test_bl_placement_plan_within_3_months_of_the_decision(plan: date, outcome: Outcome) -> None:
    case = timeline(("decision", D(2024, 2, 29)), ("plan_made", plan), measures=[measure(D(2024, 3, 1), Act.BL, "46")])
    check = only(list(PlanInTime().check(case, D(2024, 12, 1))))
    assert check.due == D(2024, 5, 29)  # 29.02 + 3 months
    assert check.outcome is outcome


def test_bl_placement_without_consent_needs_the_plan_before_the_decision() -> None:
    case = timeline(
        ("decision", D(2024, 3, 1)), ("plan_made", D(2024, 3, 5)), measures=[measure(D(2024, 3, 1), Act.BL, "47")]
    )
    check = only(list(PlanInTime().check(case, D(2024, 12, 1))))
    assert check.outcome is Outcome.failed
    assert check.citation == Citation("BL", "§ 91, stk. 2")


def test_bl_32_without_a_plan_is_not_relevant() -> None:
    case = timeline(("decision", D(2024, 3, 1)), measures=[measure(D(2024, 3, 1), Act.BL, "32")])
    assert only(list(PlanInTime().check(case, D(2024, 12, 1)))).outcome is Outcome.not_relevant


# --- inddragelse, investigation before measure, formal requirements -----------------------------


def test_child_conversation_must_come_before_the_decision_in_the_same_course() -> None:
    rule = ChildConversationBeforeDecision()
    on_the_day = timeline(
        ("notification", D(2024, 1, 5)), ("child_conversation", D(2024, 2, 1)), ("decision", D(2024, 2, 1))
    )
    assert only(list(rule.check(on_the_day, D(2024, 6, 1)))).outcome is Outcome.passed
    old_talk = timeline(
        ("child_conversation", D(2023, 3, 1)), ("notification", D(2024, 1, 5)), ("decision", D(2024, 2, 1))
    )
    failed = only(list(rule.check(old_talk, D(2024, 6, 1))))
    assert failed.outcome is Outcome.failed
    assert failed.citation == Citation("BL", "§ 5, stk. 3")


def test_investigation_before_a_sel_52_measure() -> None:
    rule = InvestigationBeforeMeasure()
    done = timeline(("investigation_completed", D(2023, 4, 1)), measures=[measure(D(2023, 4, 1), Act.SEL)])
    assert only(list(rule.check(done, D(2024, 1, 1)))).outcome is Outcome.passed
    none = timeline(measures=[measure(D(2023, 4, 1), Act.SEL)])
    assert only(list(rule.check(none, D(2024, 1, 1)))).outcome is Outcome.failed
    bl32 = timeline(measures=[measure(D(2024, 4, 1), Act.BL, "32")])
    assert only(list(rule.check(bl32, D(2025, 1, 1)))).outcome is Outcome.not_relevant


def test_consent_is_needed_for_a_measure_with_consent_only() -> None:
    rule = ConsentOnFile()
    with_consent = timeline(("consent", D(2024, 3, 1)), measures=[measure(D(2024, 3, 1), Act.BL, "32")])
    assert only(list(rule.check(with_consent, D(2024, 6, 1)))).outcome is Outcome.passed
    late = timeline(("consent", D(2024, 3, 2)), measures=[measure(D(2024, 3, 1), Act.BL, "46")])
    assert only(list(rule.check(late, D(2024, 6, 1)))).outcome is Outcome.failed
    forced = timeline(measures=[measure(D(2024, 3, 1), Act.BL, "47")])
    assert only(list(rule.check(forced, D(2024, 6, 1)))).outcome is Outcome.not_relevant


@pytest.mark.parametrize(
    ("paragraph", "start", "outcome"),
    [
        ("32", D(2030, 4, 30), Outcome.passed),  # 17 the day before the 18th birthday
        ("32", D(2030, 5, 1), Outcome.failed),  # 18 on the birthday
        ("114", D(2030, 5, 1), Outcome.passed),  # after-care from 18
        ("114", D(2035, 4, 30), Outcome.passed),  # 22
        ("114", D(2035, 5, 1), Outcome.failed),  # 23
        ("114", D(2029, 5, 1), Outcome.failed),  # 17: not after-care
    ],
)
def test_target_group_by_age_at_the_start(paragraph: str, start: date, outcome: Outcome) -> None:
    case = timeline(measures=[measure(start, Act.BL, paragraph)], born=D(2012, 5, 1))
    assert only(list(TargetGroupByAge().check(case, D(2036, 1, 1)))).outcome is outcome


def test_grant_account_code_and_journal() -> None:
    no_grant = timeline(measures=[measure(D(2024, 2, 1), grant=False, account="5.28.99.999")])
    assert only(list(GrantForEachMeasure().check(no_grant, D(2024, 6, 1)))).outcome is Outcome.failed
    assert only(list(AccountCode().check(no_grant, D(2024, 6, 1)))).outcome is Outcome.failed
    missing = timeline(measures=[measure(D(2024, 2, 1), account=None)])
    assert "mangler" in only(list(AccountCode().check(missing, D(2024, 6, 1)))).evidence
    good = timeline(measures=[measure(D(2024, 2, 1))])
    assert only(list(AccountCode().check(good, D(2024, 6, 1)))).outcome is Outcome.passed
    journal = JournalKept()
    fresh = timeline(opened=D(2024, 1, 31))
    assert only(list(journal.check(fresh, D(2024, 2, 29)))).outcome is Outcome.not_yet_due
    assert only(list(journal.check(fresh, D(2024, 3, 1)))).outcome is Outcome.failed
    noted = timeline(("journal_note", D(2024, 2, 2)), opened=D(2024, 1, 31))
    assert only(list(journal.check(noted, D(2024, 3, 1)))).outcome is Outcome.passed


def test_a_source_that_delivers_no_journal_notes_is_not_judged_on_them() -> None:
    """DUBU's contract has no journal notes: a missing note there is missing data, not a missing note."""
    from dataclasses import replace

    journal = JournalKept()
    fresh = timeline(opened=D(2024, 1, 31))
    without = replace(fresh, recorded=frozenset({"notification", "decision"}))
    check = only(list(journal.check(without, D(2024, 6, 1))))
    assert check.outcome is Outcome.not_relevant
    assert "leverer ingen journalnotater" in check.evidence
    delivering = replace(fresh, recorded=frozenset({"notification", "journal_note"}))
    assert only(list(journal.check(delivering, D(2024, 6, 1)))).outcome is Outcome.failed


# --- the engine ---------------------------------------------------------------------------------


def test_an_empty_timeline_never_crashes_and_yields_no_false_fails() -> None:
    checks = check_case(timeline(opened=D(2024, 5, 1)), D(2024, 5, 10))
    assert [c.rule for c in checks] == ["journal"]
    assert checks[0].outcome is Outcome.not_yet_due


def test_rule_outcome_fail_beats_pass_beats_not_yet_due() -> None:
    def c(outcome: Outcome) -> Check:
        return Check("r", outcome, Citation("BL", "§ 1"), "")

    assert rule_outcome([c(Outcome.passed), c(Outcome.failed)]) is Outcome.failed
    assert rule_outcome([c(Outcome.not_yet_due), c(Outcome.passed)]) is Outcome.passed
    assert rule_outcome([c(Outcome.not_relevant), c(Outcome.not_yet_due)]) is Outcome.not_yet_due
    assert rule_outcome([]) is Outcome.not_relevant


def test_upcoming_deadlines_lists_overdue_and_coming_with_rule_and_act() -> None:
    case = timeline(
        ("notification", D(2024, 3, 1)),
        ("investigation_started", D(2024, 3, 5)),
        ("journal_note", D(2024, 3, 2)),
        measures=[measure(D(2024, 3, 10), Act.BL, "46")],
    )
    deadlines = upcoming_deadlines(case, D(2024, 5, 1))
    by_rule = {d.rule: d for d in deadlines}
    assert by_rule["underretning_24_timer"].overdue  # no assessment recorded
    assert by_rule["undersoegelse_4_maaneder"].due == D(2024, 7, 1)
    assert not by_rule["undersoegelse_4_maaneder"].overdue
    assert by_rule["undersoegelse_4_maaneder"].citation == Citation("BL", "§ 20, stk. 3")
    assert by_rule["opfoelgning_3_maaneder"].due == D(2024, 6, 10)
    assert [d.due for d in deadlines] == sorted(d.due for d in deadlines)
    soon = upcoming_deadlines(case, D(2024, 5, 1), within_days=45)
    assert "undersoegelse_4_maaneder" not in {d.rule for d in soon}
    assert "opfoelgning_3_maaneder" in {d.rule for d in soon}


# --- a municipality's own rule, through the hook ------------------------------------------------


class SafetyPlanRule(AuditRule):
    """A municipality's own item: a journal note within 7 days of every notification."""

    id = "odense_notat_7_dage"
    title = "Notat inden 7 dage efter underretning"
    description = "Odense: der skal være et journalnotat senest 7 dage efter hver underretning."
    area = Area.underretninger
    step = Step.underretning
    sources: ClassVar[tuple[Citation, ...]] = (Citation("Odense", "kvalitetsstandard 4.2"),)

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        for n in case.of("notification"):
            ok = any(n.on <= j.on <= n.on + timedelta(days=7) for j in case.of("journal_note"))
            yield Check(self.id, Outcome.passed if ok else Outcome.failed, self.sources[0], "", n.on)


class OdenseRules:
    @hookimpl
    def bridge_register_audit_rules(self, register: Callable[[AuditRule], None]) -> None:
        register(SafetyPlanRule())


def test_a_municipality_rule_registers_like_the_built_in_ones() -> None:
    with registered(OdenseRules()):
        ids = [r.id for r in audit_rules()]
        assert "odense_notat_7_dage" in ids
        # in the underretninger area, after core's rule of that area
        assert ids.index("odense_notat_7_dage") == ids.index("underretning_24_timer") + 1
        case = timeline(("notification", D(2024, 1, 1)), ("journal_note", D(2024, 1, 9)))
        assert any(
            c.rule == "odense_notat_7_dage" and c.outcome is Outcome.failed for c in check_case(case, D(2024, 2, 1))
        )
    assert "odense_notat_7_dage" not in [r.id for r in audit_rules()]


class Duplicate:
    @hookimpl
    def bridge_register_audit_rules(self, register: Callable[[AuditRule], None]) -> None:
        register(JournalKept())


class NotARule:
    @hookimpl
    def bridge_register_audit_rules(self, register: Callable[[object], None]) -> None:
        register({"id": "x"})


def test_a_duplicate_rule_id_names_both_sides() -> None:
    with registered(Duplicate()), pytest.raises(PluginError, match=r"'journal' is registered twice"):
        audit_rules()


def test_something_that_is_not_a_rule_is_refused() -> None:
    with registered(NotARule()), pytest.raises(PluginError, match=r"not an instance of bridge\.law\.AuditRule"):
        audit_rules()


class Broken(AuditRule):
    id = "broken"
    title = "Går i stykker"
    description = "En regel med en fejl."
    area = Area.formelle_krav
    step = Step.dokumentation
    sources: ClassVar[tuple[Citation, ...]] = (Citation("X", "§ 1"),)

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        raise ZeroDivisionError("oops")


def test_a_rule_that_raises_is_named_with_the_case_number() -> None:
    with pytest.raises(AuditError, match=r"'broken' failed on case 27.24.00-G01-1-23"):
        check_case(timeline(), D(2024, 1, 1), [Broken()])
