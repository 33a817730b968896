"""The built-in checklist: what the data can show on every case, and what only a person can judge.

Where each requirement comes from (checked against the law text; SEL = lov om social service as
in force until 2023-12-31, BL = barnets lov, LBK nr. 282 af 17/03/2025):

- **Underretning vurderet inden 24 timer** — SEL § 155, stk. 2; BL § 136 (the provision the
  ministry's guidance, VEJ nr. 9471 af 21/06/2024 kapitel 2, places the municipality's handling of
  notifications in). The act is the one in force on the day the notification was received.
- **Børnefaglig undersøgelse inden 4 måneder** — SEL § 50, stk. 7; BL § 20, stk. 3: "skal
  afsluttes, senest 4 måneder efter at kommunalbestyrelsen bliver opmærksom på …". The day the
  municipality became aware is the latest notification on or before the investigation started,
  or the start itself when there was none.
- **Børnefaglig undersøgelse før indsatsen** — SEL § 50, stk. 1 (a § 52 measure rests on the
  investigation); BL § 20, stk. 1, nr. 1 (an investigation is decided when a placement under
  §§ 46–47 is considered). Under BL § 32, stk. 4 a support measure may rest on an *afdækning*,
  which the data do not show, so § 32 measures are not relevant here.
- **Børnesamtale før afgørelsen** — SEL § 48, stk. 1; BL § 5, stk. 3 ("… skal tilvejebringes og
  inddrages løbende ved samtaler … inden der træffes beslutninger eller afgørelser").
- **Handleplan / barnets plan** — SEL § 140, stk. 1: the plan before the decision (in acute
  cases a short statement of purpose and the plan within 4 months: a failed check says so, for
  the leader to judge). BL § 91, stk. 2: for a placement (§§ 46–47) the plan within 3 months of
  the decision, and before it under § 47; BL § 91, stk. 1: for § 32 only a decision *whether* to
  make one, so a § 32 measure is checked only when a plan was made.
- **Første opfølgning inden 3 måneder** — SEL § 70, stk. 1; BL § 95, stk. 2: at the earliest of
  3 months after the measure started and the end of an investigation running alongside it.
- **Opfølgning mindst hver 6. måned** — SEL § 70, stk. 1. BL § 95, stk. 3 leaves the later
  cadence to the municipality's own decision, which the data do not hold, so a BL measure is not
  relevant here. *Transition choice*: a measure started under SEL keeps the 6-month cadence after
  2024-01-01. BL's transition rules (§§ 212–214) do not carry a cadence over; BL § 95, stk. 3 says
  the cadence is decided at the first follow-up, which for such a measure took place under SEL
  with SEL's cadence, so that is the cadence the municipality decided. The evidence says so.
- **Bevilling for hver indsats** — the measure's own paragraph (SEL § 52, stk. 3; BL § 32,
  stk. 1; …): a measure is put in place by a decision.
- **Samtykke** — SEL § 52, stk. 2; BL § 32, stk. 2 ("træffes med samtykke fra
  forældremyndighedsindehaveren"); BL § 46 (placement with consent). Measures without consent
  (SEL § 58, BL § 47) and handicap compensation are not relevant.
- **Målgruppe efter alder** — under 18 at the start, except after-care (SEL § 76, BL § 114), which
  is for young people from 18 until their 23rd birthday.
- **Journal** — offentlighedsloven § 13, stk. 1 (notatpligt): a case holds at least one note.
- **Kontering** — the account code is in main function 5.28 (børn og unge med særlige behov) of
  the municipal chart of accounts (Budget- og regnskabssystem for kommuner).

Deadlines are calendar months, clamped to the month's end (:func:`bridge.law.add_months`); a
milestone on the deadline day is in time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta

from bridge.hookspecs import hookimpl
from bridge.law.calendar import BARNETS_LOV, act_in_force, add_months
from bridge.law.rule import (
    Area,
    AuditRule,
    Check,
    Citation,
    JudgementRule,
    Outcome,
    Step,
    dato,
)
from bridge.law.timeline import EventFact, MeasureFact, Timeline
from bridge.model.records import Act

NOTIFICATION = "notification"
NOTIFICATION_ASSESSED = "notification_assessed"
INVESTIGATION_STARTED = "investigation_started"
INVESTIGATION_COMPLETED = "investigation_completed"
PLAN_MADE = "plan_made"
FOLLOW_UP = "follow_up"
CHILD_CONVERSATION = "child_conversation"
CONSENT = "consent"
DECISION = "decision"
JOURNAL_NOTE = "journal_note"

AFTER_CARE = {Act.SEL: {"76"}, Act.BL: {"114"}}
HANDICAP_COMPENSATION = {Act.SEL: {"41", "42"}, Act.BL: {"86", "87"}}
WITHOUT_CONSENT = {Act.SEL: {"58"}, Act.BL: {"47"}}
PLACEMENT = {Act.BL: {"46", "47"}}
ACCOUNT_CODE = re.compile(r"^5\.28\.2\d\.\d{3}$")


def _sel_bl(act: Act, sel: str, bl: str) -> Citation:
    return Citation(act.value, sel if act is Act.SEL else bl)


def _first_on_or_after(events: Iterable[EventFact], day: date) -> EventFact | None:
    return next((e for e in events if e.on >= day), None)


def _last_on_or_before(events: Iterable[EventFact], day: date) -> EventFact | None:
    found = None
    for event in events:
        if event.on > day:
            break
        found = event
    return found


def decision_day(case: Timeline, measure: MeasureFact) -> date:
    """The decision a measure rests on: the latest decision on or before its start, else its start."""
    decision = _last_on_or_before(case.of(DECISION), measure.start)
    return decision.on if decision is not None else measure.start


def course_start(case: Timeline, day: date) -> date:
    """Where the course that led to ``day`` began: the latest notification on or before it, else the case's opening."""
    notification = _last_on_or_before(case.of(NOTIFICATION), day)
    return notification.on if notification is not None else min(case.opened, day)


def _deadline_check(
    rule: str,
    citation: Citation,
    *,
    what: str,
    since: str,
    deadline: date,
    done: date | None,
    as_of: date,
    subject: str,
) -> Check:
    """The usual shape: a milestone ``what`` due by ``deadline``; ``done`` is when it happened, if it did."""
    frist = f"frist {dato(deadline)} ({citation}; {since})"
    if done is not None and done <= as_of:
        if done <= deadline:
            return Check(rule, Outcome.passed, citation, f"{what} {dato(done)}, inden for {frist}", deadline, subject)
        late = (done - deadline).days
        evidence = f"{what} {dato(done)}, {late} dage efter {frist}"
        return Check(rule, Outcome.failed, citation, evidence, deadline, subject)
    if as_of > deadline:
        evidence = f"{what} mangler; {frist} er overskredet pr. {dato(as_of)}"
        return Check(rule, Outcome.failed, citation, evidence, deadline, subject, open=True)
    evidence = f"{what} mangler endnu; {frist}"
    return Check(rule, Outcome.not_yet_due, citation, evidence, deadline, subject, open=True)


class NotificationAssessedIn24Hours(AuditRule):
    """A notification is assessed within 24 hours of its receipt (SEL § 155, stk. 2; BL § 136).

    With times for both the receipt and the assessment, the deadline is 24 hours after receipt.
    Where a source holds only dates, the rule gives the benefit of the doubt: an assessment on
    the day of receipt or the day after may be within 24 hours and passes; two days later cannot
    be and fails. The evidence says which of the two was used.
    """

    id = "underretning_24_timer"
    title = "Underretning vurderet inden 24 timer"
    description = (
        "Kommunen skal inden 24 timer efter modtagelsen vurdere, om barnets sundhed eller udvikling er i fare."
    )
    area = Area.underretninger
    step = Step.underretning
    sources = (Citation("SEL", "§ 155, stk. 2"), Citation("BL", "§ 136"))

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        notifications = case.of(NOTIFICATION)
        assessments = case.of(NOTIFICATION_ASSESSED)
        for i, received in enumerate(notifications):
            citation = _sel_bl(act_in_force(received.on), "§ 155, stk. 2", "§ 136")
            following = notifications[i + 1].on if i + 1 < len(notifications) else None
            assessed = next(
                (a for a in assessments if a.on >= received.on and (following is None or a.on <= following)), None
            )
            subject = received.ref or f"underretning {dato(received.on)}"
            yield self._one(received, assessed, citation, as_of, subject)

    def _one(
        self, received: EventFact, assessed: EventFact | None, citation: Citation, as_of: date, subject: str
    ) -> Check:
        if received.at is not None and assessed is not None and assessed.at is not None:
            hours = (assessed.at - received.at).total_seconds() / 3600
            stamp = f"modtaget {received.at:%d.%m.%Y %H:%M}, vurderet {assessed.at:%d.%m.%Y %H:%M} UTC"
            outcome = Outcome.passed if hours <= 24 else Outcome.failed
            evidence = f"{stamp}: {hours:.1f} timer (frist 24 timer, {citation})"
            return Check(self.id, outcome, citation, evidence, assessed.at.date(), subject)
        last_day = received.on + timedelta(days=1)
        return _deadline_check(
            self.id,
            citation,
            what="Vurdering af underretningen",
            since=f"modtaget {dato(received.on)}; kun datoer: senest dagen efter",
            deadline=last_day,
            done=assessed.on if assessed is not None else None,
            as_of=as_of,
            subject=subject,
        )


class InvestigationWithin4Months(AuditRule):
    """The børnefaglig undersøgelse ends within 4 months of the municipality becoming aware.

    SEL § 50, stk. 7; BL § 20, stk. 3. The act is the one in force on the day of awareness.
    """

    id = "undersoegelse_4_maaneder"
    title = "Børnefaglig undersøgelse afsluttet inden 4 måneder"
    description = "Undersøgelsen skal afsluttes senest 4 måneder efter, at kommunen blev opmærksom på barnets behov."
    area = Area.faglig_udredning
    step = Step.undersoegelse
    sources = (Citation("SEL", "§ 50, stk. 7"), Citation("BL", "§ 20, stk. 3"))

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        starts = case.of(INVESTIGATION_STARTED)
        completions = case.of(INVESTIGATION_COMPLETED)
        for i, started in enumerate(starts):
            aware = course_start(case, started.on) if case.of(NOTIFICATION) else started.on
            if i > 0 and aware < starts[i - 1].on:
                aware = started.on  # the notification belonged to the earlier investigation
            following = starts[i + 1].on if i + 1 < len(starts) else None
            completed = next(
                (c for c in completions if c.on >= started.on and (following is None or c.on < following)), None
            )
            citation = _sel_bl(act_in_force(aware), "§ 50, stk. 7", "§ 20, stk. 3")
            yield _deadline_check(
                self.id,
                citation,
                what="Undersøgelsen afsluttet",
                since=f"opmærksom {dato(aware)} + 4 mdr.",
                deadline=add_months(aware, 4),
                done=completed.on if completed is not None else None,
                as_of=as_of,
                subject=started.ref or f"undersøgelse {dato(started.on)}",
            )


class InvestigationBeforeMeasure(AuditRule):
    """A measure under SEL § 52 or a placement under BL §§ 46–47 rests on a børnefaglig undersøgelse.

    An investigation completed on or before the start passes; one started before the start and
    completed later ran alongside the measure (allowed in urgent cases) and passes with a note.
    """

    id = "undersoegelse_foer_indsats"
    title = "Børnefaglig undersøgelse ligger til grund for indsatsen"
    description = (
        "Foranstaltninger efter SEL § 52 og anbringelser efter BL §§ 46-47 skal bygge på en børnefaglig undersøgelse."
    )
    area = Area.faglig_udredning
    step = Step.undersoegelse
    sources = (Citation("SEL", "§ 50, stk. 1"), Citation("BL", "§ 20, stk. 1, nr. 1"))

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        for measure in case.measures:
            if measure.start > as_of:
                continue
            subject = f"{measure.ref} ({measure.label})"
            requires = (measure.act is Act.SEL and measure.section == "52") or measure.section in PLACEMENT.get(
                measure.act, set()
            )
            citation = _sel_bl(measure.act, "§ 50, stk. 1", "§ 20, stk. 1, nr. 1")
            if not requires:
                evidence = f"{measure.label} kræver ikke en børnefaglig undersøgelse (fx afdækning, BL § 32, stk. 4)"
                yield Check(self.id, Outcome.not_relevant, citation, evidence, measure.start, subject)
                continue
            completed = _last_on_or_before(case.of(INVESTIGATION_COMPLETED), measure.start)
            if completed is not None:
                evidence = f"undersøgelse afsluttet {dato(completed.on)}, før indsatsen {dato(measure.start)}"
                yield Check(self.id, Outcome.passed, citation, evidence, measure.start, subject)
                continue
            started = _last_on_or_before(case.of(INVESTIGATION_STARTED), measure.start)
            later = _first_on_or_after(case.of(INVESTIGATION_COMPLETED), measure.start)
            if started is not None and later is not None and later.on <= as_of:
                evidence = (
                    f"undersøgelse påbegyndt {dato(started.on)} og afsluttet {dato(later.on)}, "
                    f"sideløbende med indsatsen fra {dato(measure.start)}"
                )
                yield Check(self.id, Outcome.passed, citation, evidence, measure.start, subject)
                continue
            what = "påbegyndt, ikke afsluttet" if started is not None else "ingen registreret"
            evidence = f"indsatsen {measure.label} fra {dato(measure.start)}: børnefaglig undersøgelse {what}"
            yield Check(self.id, Outcome.failed, citation, evidence, measure.start, subject, open=started is None)


class ChildConversationBeforeDecision(AuditRule):
    """A conversation with the child before each decision (SEL § 48, stk. 1; BL § 5, stk. 3).

    The data do not say which paragraph a decision is under, so every recorded decision is
    checked. A conversation counts when it is from the same course: on or after the latest
    notification before the decision (or the case's opening) and on or before the decision.
    """

    id = "boernesamtale_foer_afgoerelse"
    title = "Børnesamtale før afgørelsen"
    description = "Barnets synspunkter skal tilvejebringes ved samtale, inden der træffes afgørelse."
    area = Area.inddragelse
    step = Step.afgoerelse
    sources = (Citation("SEL", "§ 48, stk. 1"), Citation("BL", "§ 5, stk. 3"))

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        for decision in case.of(DECISION):
            if decision.on > as_of:
                continue
            since = course_start(case, decision.on)
            talks = [c for c in case.of(CHILD_CONVERSATION) if since <= c.on <= decision.on]
            citation = _sel_bl(act_in_force(decision.on), "§ 48, stk. 1", "§ 5, stk. 3")
            subject = decision.ref or f"afgørelse {dato(decision.on)}"
            if talks:
                evidence = f"samtale {dato(talks[-1].on)} før afgørelsen {dato(decision.on)} ({citation})"
                yield Check(self.id, Outcome.passed, citation, evidence, decision.on, subject)
            else:
                evidence = f"ingen samtale med barnet {dato(since)}–{dato(decision.on)} før afgørelsen ({citation})"
                yield Check(self.id, Outcome.failed, citation, evidence, decision.on, subject)


class PlanInTime(AuditRule):
    """A handleplan before the decision (SEL § 140, stk. 1); barnets plan within 3 months (BL § 91).

    Which decision: the latest decision on or before the measure's start, else the start. Which
    plan: the first plan of the course that led to the decision.
    """

    id = "plan_rettidig"
    title = "Handleplan / barnets plan rettidig"
    description = "Handleplanen skal foreligge før afgørelsen (SEL); barnets plan senest 3 måneder efter (BL)."
    area = Area.valg_af_indsats
    step = Step.plan
    sources = (Citation("SEL", "§ 140, stk. 1"), Citation("BL", "§ 91, stk. 1-2"))

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        for measure in case.measures:
            if measure.start > as_of:
                continue
            yield self._one(case, measure, as_of)

    def _one(self, case: Timeline, measure: MeasureFact, as_of: date) -> Check:
        subject = f"{measure.ref} ({measure.label})"
        decided = decision_day(case, measure)
        since = course_start(case, decided)
        plan = _first_on_or_after(case.of(PLAN_MADE), since)
        if measure.section in HANDICAP_COMPENSATION[measure.act] | AFTER_CARE[measure.act] and measure.act is Act.BL:
            citation = Citation("BL", "§ 91")
            evidence = f"{measure.label}: barnets plan kræves ikke efter BL § 91"
            return Check(self.id, Outcome.not_relevant, citation, evidence, decided, subject)
        if measure.act is Act.SEL:
            citation = Citation("SEL", "§ 140, stk. 1")
            if measure.section in HANDICAP_COMPENSATION[Act.SEL]:
                evidence = f"{measure.label}: handleplan efter § 140 kræves ikke"
                return Check(self.id, Outcome.not_relevant, citation, evidence, decided, subject)
            if plan is not None and plan.on <= decided:
                evidence = f"handleplan {dato(plan.on)} før afgørelsen {dato(decided)}"
                return Check(self.id, Outcome.passed, citation, evidence, decided, subject)
            if plan is not None and plan.on <= as_of:
                evidence = (
                    f"handleplan {dato(plan.on)}, efter afgørelsen {dato(decided)}; kun lovligt i akutte sager "
                    "(kortfattet formål, plan inden 4 mdr.) — kræver vurdering"
                )
                return Check(self.id, Outcome.failed, citation, evidence, decided, subject)
            evidence = f"ingen handleplan til afgørelsen {dato(decided)}"
            return Check(self.id, Outcome.failed, citation, evidence, decided, subject, open=True)
        if measure.section == "47":
            return _deadline_check(
                self.id,
                Citation("BL", "§ 91, stk. 2"),
                what="Barnets plan",
                since="anbringelse uden samtykke: før afgørelsen",
                deadline=decided,
                done=plan.on if plan is not None else None,
                as_of=as_of,
                subject=subject,
            )
        required = measure.section in PLACEMENT[Act.BL]
        if not required and (plan is None or plan.on > as_of):
            citation = Citation("BL", "§ 91, stk. 1")
            evidence = f"{measure.label}: kommunen tager stilling til, om der skal være en plan; ingen plan registreret"
            return Check(self.id, Outcome.not_relevant, citation, evidence, decided, subject)
        return _deadline_check(
            self.id,
            Citation("BL", "§ 91, stk. 2" if required else "§ 91, stk. 1"),
            what="Barnets plan",
            since=f"afgørelse {dato(decided)} + 3 mdr.",
            deadline=add_months(decided, 3),
            done=plan.on if plan is not None else None,
            as_of=as_of,
            subject=subject,
        )


class FirstFollowUpIn3Months(AuditRule):
    """The first follow-up on a measure within 3 months of its start (SEL § 70, stk. 1; BL § 95, stk. 2).

    Under BL the deadline is the earlier of 3 months and the end of an investigation running
    alongside the measure. A measure that ended before its deadline without a follow-up is not
    relevant.
    """

    id = "opfoelgning_3_maaneder"
    title = "Første opfølgning inden 3 måneder"
    description = "Kommunen skal følge op første gang senest 3 måneder efter, at indsatsen er iværksat."
    area = Area.opfoelgning
    step = Step.opfoelgning
    sources = (Citation("SEL", "§ 70, stk. 1"), Citation("BL", "§ 95, stk. 2"))

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        for measure in case.measures:
            if measure.start > as_of:
                continue
            citation = _sel_bl(measure.act, "§ 70, stk. 1", "§ 95, stk. 2")
            deadline = add_months(measure.start, 3)
            since = f"iværksat {dato(measure.start)} + 3 mdr."
            if measure.act is Act.BL:
                parallel = _first_on_or_after(case.of(INVESTIGATION_COMPLETED), measure.start + timedelta(days=1))
                started = _last_on_or_before(case.of(INVESTIGATION_STARTED), measure.start)
                if parallel is not None and started is not None and parallel.on < deadline:
                    deadline = parallel.on
                    since = f"sideløbende undersøgelse afsluttet {dato(parallel.on)}"
            first = _first_on_or_after(case.of(FOLLOW_UP), measure.start)
            subject = f"{measure.ref} ({measure.label})"
            if measure.end is not None and measure.end < deadline and (first is None or first.on > measure.end):
                evidence = f"indsatsen ophørte {dato(measure.end)}, før fristen {dato(deadline)}"
                yield Check(self.id, Outcome.not_relevant, citation, evidence, deadline, subject)
                continue
            yield _deadline_check(
                self.id,
                citation,
                what="Første opfølgning",
                since=since,
                deadline=deadline,
                done=first.on if first is not None else None,
                as_of=as_of,
                subject=subject,
            )


class FollowUpEvery6Months(AuditRule):
    """After the first, a follow-up at most every 6 months while the measure runs (SEL § 70, stk. 1).

    One check per interval, due 6 months after the previous follow-up. A BL measure is not
    relevant (BL § 95, stk. 3: the municipality decides the cadence). A measure started under SEL
    keeps this cadence after 2024-01-01 (the transition choice in this module's documentation).
    """

    id = "opfoelgning_6_maaneder"
    title = "Opfølgning mindst hver 6. måned"
    description = "Efter første opfølgning skal der følges op mindst hver 6. måned, så længe indsatsen varer."
    area = Area.opfoelgning
    step = Step.opfoelgning
    sources = (Citation("SEL", "§ 70, stk. 1"), Citation("BL", "§ 95, stk. 3"))

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        follow_ups = case.of(FOLLOW_UP)
        for measure in case.measures:
            if measure.start > as_of:
                continue
            subject = f"{measure.ref} ({measure.label})"
            if measure.act is Act.BL:
                evidence = "BL § 95, stk. 3: kommunen fastlægger selv den videre opfølgning ved første opfølgning"
                yield Check(self.id, Outcome.not_relevant, Citation("BL", "§ 95, stk. 3"), evidence, None, subject)
                continue
            first = _first_on_or_after(follow_ups, measure.start)
            if first is None:
                evidence = "ingen første opfølgning at regne kadencen fra (se første opfølgning)"
                yield Check(self.id, Outcome.not_relevant, Citation("SEL", "§ 70, stk. 1"), evidence, None, subject)
                continue
            yield from self._intervals(measure, first, follow_ups, as_of, subject)

    def _intervals(
        self, measure: MeasureFact, first: EventFact, follow_ups: tuple[EventFact, ...], as_of: date, subject: str
    ) -> Iterator[Check]:
        end = min(measure.end or as_of, as_of)
        previous = first.on
        number = 1
        while True:
            deadline = add_months(previous, 6)
            if measure.end is not None and deadline > measure.end:
                return
            citation = Citation("SEL", "§ 70, stk. 1" if deadline < BARNETS_LOV else "§ 70, stk. 1, videreført")
            carried = "" if deadline < BARNETS_LOV else "; indsats efter SEL, kadencen videreført under BL"
            following = _first_on_or_after(follow_ups, previous + timedelta(days=1))
            check = _deadline_check(
                self.id,
                citation,
                what=f"Opfølgning nr. {number + 1}",
                since=f"forrige {dato(previous)} + 6 mdr.{carried}",
                deadline=deadline,
                done=following.on if following is not None else None,
                as_of=as_of,
                subject=f"{subject} #{number + 1}",
            )
            yield check
            if following is None or following.on > end:
                return
            previous = following.on
            number += 1


class GrantForEachMeasure(AuditRule):
    """Each measure rests on a decision, recorded as a grant (bevilling)."""

    id = "bevilling"
    title = "Bevilling for hver indsats"
    description = "Hver indsats skal være bevilget ved en afgørelse efter den paragraf, den gives efter."
    area = Area.formelle_krav
    step = Step.afgoerelse
    sources = (Citation("SEL", "§ 52, stk. 3"), Citation("BL", "§ 32, stk. 1"))

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        for measure in case.measures:
            if measure.start > as_of:
                continue
            citation = Citation(measure.act.value, f"§ {measure.paragraph}")
            subject = f"{measure.ref} ({measure.label})"
            if measure.has_grant:
                yield Check(
                    self.id,
                    Outcome.passed,
                    citation,
                    f"bevilling registreret for {measure.label}",
                    measure.start,
                    subject,
                )
            else:
                evidence = f"ingen bevilling for {measure.label} fra {dato(measure.start)}"
                yield Check(self.id, Outcome.failed, citation, evidence, measure.start, subject, open=True)


class ConsentOnFile(AuditRule):
    """Consent on file by the start of a measure that needs it (SEL § 52, stk. 2; BL § 32, stk. 2; BL § 46)."""

    id = "samtykke"
    title = "Samtykke til indsatsen"
    description = "Indsatser med samtykke kræver forældremyndighedsindehaverens (og den 15-åriges) samtykke."
    area = Area.inddragelse
    step = Step.afgoerelse
    sources = (Citation("SEL", "§ 52, stk. 2"), Citation("BL", "§ 32, stk. 2"), Citation("BL", "§ 46"))

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        for measure in case.measures:
            if measure.start > as_of:
                continue
            subject = f"{measure.ref} ({measure.label})"
            citation = self._citation(measure)
            if citation is None:
                evidence = f"{measure.label} gives uden samtykke eller efter ansøgning"
                yield Check(
                    self.id,
                    Outcome.not_relevant,
                    Citation(measure.act.value, f"§ {measure.paragraph}"),
                    evidence,
                    measure.start,
                    subject,
                )
                continue
            consent = _last_on_or_before(case.of(CONSENT), measure.start)
            if consent is not None:
                evidence = f"samtykke {dato(consent.on)} før indsatsen {dato(measure.start)}"
                yield Check(self.id, Outcome.passed, citation, evidence, measure.start, subject)
            else:
                evidence = f"intet samtykke registreret før indsatsen {measure.label} {dato(measure.start)}"
                yield Check(self.id, Outcome.failed, citation, evidence, measure.start, subject, open=True)

    @staticmethod
    def _citation(measure: MeasureFact) -> Citation | None:
        if measure.act is Act.SEL and measure.section in {"52", "76"}:
            return Citation("SEL", "§ 52, stk. 2" if measure.section == "52" else "§ 76")
        if measure.act is Act.BL and measure.section in {"32", "46", "114"}:
            return Citation("BL", "§ 32, stk. 2" if measure.section == "32" else f"§ {measure.section}")
        return None


class TargetGroupByAge(AuditRule):
    """The child is within the measure's target group by age at its start: under 18, after-care 18–22."""

    id = "maalgruppe_alder"
    title = "Barnet i målgruppen efter alder"
    description = "Indsatser til børn og unge gives under 18 år; efterværn fra 18 år til det fyldte 23. år."
    area = Area.formelle_krav
    step = Step.afgoerelse
    sources = (Citation("SEL", "§ 76"), Citation("BL", "§ 114"))

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        for measure in case.measures:
            if measure.start > as_of:
                continue
            age = case.age_on(measure.start)
            after_care = measure.section in AFTER_CARE[measure.act]
            low, high = (18, 22) if after_care else (0, 17)
            citation = Citation(measure.act.value, f"§ {measure.paragraph}")
            group = "efterværn 18-22 år" if after_care else "under 18 år"
            outcome = Outcome.passed if low <= age <= high else Outcome.failed
            evidence = f"{age} år ved start {dato(measure.start)}; {measure.label} er for {group}"
            yield Check(self.id, outcome, citation, evidence, measure.start, f"{measure.ref} ({measure.label})")


class JournalKept(AuditRule):
    """The case holds journal notes (offentlighedsloven § 13, stk. 1, notatpligt); one month's grace after opening."""

    id = "journal"
    title = "Journal ført"
    description = "Oplysninger af betydning for sagen skal noteres; sagen skal have journalnotater."
    area = Area.formelle_krav
    step = Step.dokumentation
    sources = (Citation("OFFL", "§ 13, stk. 1"),)

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        deadline = add_months(case.opened, 1)
        if case.recorded is not None and JOURNAL_NOTE not in case.recorded:
            evidence = "kilden leverer ingen journalnotater til bridge; journalen må ses i fagsystemet"
            yield Check(self.id, Outcome.not_relevant, self.sources[0], evidence, deadline, "sagen")
            return
        notes = [n for n in case.of(JOURNAL_NOTE) if n.on <= as_of]
        yield _deadline_check(
            self.id,
            self.sources[0],
            what="Første journalnotat",
            since=f"sagen oprettet {dato(case.opened)} + 1 md.",
            deadline=deadline,
            done=notes[0].on if notes else None,
            as_of=as_of,
            subject="sagen",
        )


class AccountCode(AuditRule):
    """Each measure is booked on an account in main function 5.28 (børn og unge med særlige behov)."""

    id = "kontering"
    title = "Korrekt kontering"
    description = "Udgiften skal konteres på en funktion under 5.28 Børn og unge med særlige behov."
    area = Area.formelle_krav
    step = Step.dokumentation
    sources = (Citation("Kontoplan", "hovedfunktion 5.28"),)

    def check(self, case: Timeline, as_of: date) -> Iterator[Check]:
        for measure in case.measures:
            if measure.start > as_of:
                continue
            code = measure.account_code
            ok = code is not None and ACCOUNT_CODE.match(code) is not None
            evidence = f"kontering {code or 'mangler'} for {measure.label}" + ("" if ok else " (ikke under 5.28.2x)")
            yield Check(
                self.id,
                Outcome.passed if ok else Outcome.failed,
                self.sources[0],
                evidence,
                measure.start,
                f"{measure.ref} ({measure.label})",
                open=not ok,
            )


class ViewsDescribed(JudgementRule):
    """Whether the child's views are described and weighed is a judgement (BL § 5, stk. 3)."""

    id = "synspunkter_beskrevet"
    title = "Barnets synspunkter beskrevet og inddraget"
    description = "Er barnets eller den unges synspunkter beskrevet og tillagt vægt i afgørelsen?"
    area = Area.inddragelse
    step = Step.afgoerelse
    sources = (Citation("BL", "§ 5, stk. 3"), Citation("SEL", "§ 46, stk. 3"))


class DecisionReasoned(JudgementRule):
    """Whether the decision states its purpose and expected duration is a reading (BL § 32, stk. 3)."""

    id = "afgoerelse_formaal"
    title = "Afgørelsen angiver formål og varighed"
    description = "Angiver afgørelsen formålet med indsatsen og den forventede varighed?"
    area = Area.valg_af_indsats
    step = Step.afgoerelse
    sources = (Citation("BL", "§ 32, stk. 3"),)


class PlanHasGoals(JudgementRule):
    """Whether the plan sets concrete goals for the child's well-being is a reading (BL § 92, stk. 1)."""

    id = "plan_maal"
    title = "Planen har konkrete mål"
    description = "Indeholder barnets plan / handleplanen konkrete mål for barnets trivsel og udvikling?"
    area = Area.valg_af_indsats
    step = Step.plan
    sources = (Citation("BL", "§ 92, stk. 1"), Citation("SEL", "§ 140, stk. 2"))


class FollowUpAssessed(JudgementRule):
    """Whether the follow-up weighed adjusting the measure is a reading (BL § 95, stk. 4)."""

    id = "opfoelgning_vurdering"
    title = "Opfølgningen vurderer indsatsen"
    description = "Er det ved opfølgningen vurderet, om indsatsen skal justeres, og om planen skal revideres?"
    area = Area.opfoelgning
    step = Step.opfoelgning
    sources = (Citation("BL", "§ 95, stk. 4"),)


BUILTIN_RULES: tuple[type[AuditRule], ...] = (
    InvestigationWithin4Months,
    InvestigationBeforeMeasure,
    ChildConversationBeforeDecision,
    ConsentOnFile,
    ViewsDescribed,
    PlanInTime,
    DecisionReasoned,
    PlanHasGoals,
    FirstFollowUpIn3Months,
    FollowUpEvery6Months,
    FollowUpAssessed,
    NotificationAssessedIn24Hours,
    GrantForEachMeasure,
    TargetGroupByAge,
    JournalKept,
    AccountCode,
)


@hookimpl
def bridge_register_audit_rules(register: Callable[[AuditRule], None]) -> None:
    """Register core's checklist, in Børnesagsbarometret's order of areas."""
    for rule in BUILTIN_RULES:
        register(rule())


__all__ = ["BUILTIN_RULES", "course_start", "decision_day"]
