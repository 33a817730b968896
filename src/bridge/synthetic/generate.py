"""The synthetic ground truth generator: deterministic from its parameters.

It draws municipalities, caseworkers (about 40 cases each on udsatte, 55 on handicap),
families whose children share guardians and one caseworker, score series that drift
over time, measures under Serviceloven before 2024 and Barnets lov after, and
milestones where most deadlines are kept and some are broken. ``invalid`` adds cases
that are broken on purpose (see :class:`bridge.synthetic.truth.Defect`).
"""

from __future__ import annotations

import gc
import random
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from bridge.law.calendar import BARNETS_LOV, add_months
from bridge.model.records import Act, EventKind, TargetGroup, Theme
from bridge.privacy import parse_cpr
from bridge.synthetic.truth import (
    Defect,
    GroundTruth,
    TruthAssessment,
    TruthCase,
    TruthCaseworker,
    TruthChild,
    TruthEvent,
    TruthMeasure,
)

DEFAULT_AS_OF = date(2026, 11, 1)
FIRST_OPENING = date(2019, 1, 1)
UNKNOWN_GUARDIAN = "000000-0000"

MUNICIPALITIES: dict[str, str] = {
    "461": "Odense",
    "751": "Aarhus",
    "101": "København",
    "851": "Aalborg",
    "730": "Randers",
    "561": "Esbjerg",
    "615": "Horsens",
    "630": "Vejle",
    "147": "Frederiksberg",
    "157": "Gentofte",
}

CASES_PER_CASEWORKER = {TargetGroup.udsatte: 40, TargetGroup.handicap: 55}

_FIRST = (
    "Anna",
    "Freja",
    "Ida",
    "Emma",
    "Alma",
    "Clara",
    "Karla",
    "Laura",
    "Ella",
    "Sofia",
    "William",
    "Noah",
    "Oscar",
    "Lucas",
    "Carl",
    "Victor",
    "Malthe",
    "Alfred",
    "Emil",
    "Aksel",
)
_LAST = (
    "Jensen",
    "Nielsen",
    "Hansen",
    "Pedersen",
    "Andersen",
    "Christensen",
    "Larsen",
    "Sørensen",
    "Rasmussen",
    "Jørgensen",
    "Petersen",
    "Madsen",
    "Kristensen",
    "Olsen",
    "Thomsen",
    "Poulsen",
)
_UNITS = {TargetGroup.udsatte: "Børn og Unge, Myndighed", TargetGroup.handicap: "Børn og Unge, Handicap"}
_PROVIDERS = (
    "Familiehuset",
    "Opholdsstedet Bakkely",
    "Plejefamilie",
    "Ungdomsbolig Havnen",
    "Aflastning Solsikken",
    "Familiebehandling Nord",
    None,
)

# (act, paragraph, account code) by target group; SEL before 2024, Barnets lov from 2024.
_MEASURES = {
    TargetGroup.udsatte: {
        Act.SEL: (("52 stk. 3 nr. 3", "5.28.23.003"), ("52 stk. 3 nr. 7", "5.28.21.002"), ("76", "5.28.24.001")),
        Act.BL: (("32", "5.28.23.003"), ("46", "5.28.21.002"), ("114", "5.28.24.001")),
    },
    TargetGroup.handicap: {
        Act.SEL: (("41", "5.28.20.001"), ("42", "5.28.20.002"), ("52 stk. 3 nr. 5", "5.28.23.004")),
        Act.BL: (("86", "5.28.20.001"), ("87", "5.28.20.002"), ("32", "5.28.23.004")),
    },
}

# CPR-shaped but impossible dates (day 32, month 13, 30 February, 31 April): shaped like a
# CPR number so that masking still covers them wherever a payload is shown.
_BAD_CPRS = ("321399-1234", "011399-4321", "300289-1234", "310490-2345")

_T = TypeVar("_T")


class _Odds(Generic[_T]):
    """Values with relative weights, drawn with one uniform number (much cheaper than ``Random.choices``)."""

    def __init__(self, *weighted: tuple[_T, int]) -> None:
        self._values = [value for value, _ in weighted]
        self._bounds = list(accumulate(weight for _, weight in weighted))

    def pick(self, uniform: float) -> _T:
        return self._values[bisect_right(self._bounds, uniform * self._bounds[-1])]


# CPR-kontoret's century table read backwards: the 7th digits that give a birth year's century.
_SEVENTHS_2000_TO_2036 = (4, 5, 6, 7, 8, 9)
_SEVENTHS_2037_TO_2057 = (5, 6, 7, 8)
_SEVENTHS_1900S = (0, 1, 2, 3)


class _Draw:
    """All randomness of one generation, from one seeded generator.

    Integers are drawn from ``random()`` directly: ``randint`` costs several calls per
    number, and generation draws millions of them at benchmark sizes.
    """

    def __init__(self, seed: int, as_of: date) -> None:
        self.rng = random.Random(seed)
        self.random = self.rng.random
        # Times of day come from a stream of their own, so adding them left every other draw as it was.
        self.clock = random.Random(seed + _CLOCK_STREAM).random
        self.as_of = as_of
        self.used_cprs: set[str] = set()

    def number(self, low: int, high: int) -> int:
        """A whole number from ``low`` to ``high``, both included."""
        return low + int(self.random() * (high - low + 1))

    def chance(self, probability: float) -> bool:
        return self.random() < probability

    def pick(self, odds: _Odds[_T]) -> _T:
        return odds.pick(self.random())

    def day_between(self, first: date, last: date) -> date:
        if last <= first:
            return first
        return first + timedelta(days=self.number(0, (last - first).days))

    def cpr(self, born: date) -> str:
        """A CPR number for ``born``, unique within this generation (modulus 11 is not required)."""
        sevenths: tuple[int, ...]
        if born.year < 2000:
            sevenths = _SEVENTHS_1900S
        else:
            sevenths = _SEVENTHS_2000_TO_2036 if born.year <= 2036 else _SEVENTHS_2037_TO_2057
        prefix = f"{born.day:02d}{born.month:02d}{born.year % 100:02d}-"
        while True:
            candidate = f"{prefix}{sevenths[int(self.random() * len(sevenths))]}{self.number(0, 999):03d}"
            if candidate not in self.used_cprs:
                self.used_cprs.add(candidate)
                return candidate

    def name(self) -> str:
        return f"{_FIRST[self.number(0, len(_FIRST) - 1)]} {_LAST[self.number(0, len(_LAST) - 1)]}"


def _caseworkers(draw: _Draw, code: str, count: int, first_number: int) -> list[TruthCaseworker]:
    workers = []
    for i in range(count):
        group = TargetGroup.handicap if i % 4 == 3 else TargetGroup.udsatte
        number = first_number + i
        name = draw.name()
        workers.append(
            TruthCaseworker(
                ref=f"cw-{number:04d}",
                logon=f"{name[:1].lower()}{name.split()[1][:1].lower()}{number:04d}",
                name=name,
                unit=_UNITS[group],
                municipality=code,
                target_group=group,
            )
        )
    return workers


def _loads(draw: _Draw, workers: Sequence[TruthCaseworker], cases: int | None) -> list[int]:
    if cases is None:
        return [max(1, round(draw.rng.gauss(CASES_PER_CASEWORKER[w.target_group], 4))) for w in workers]
    weights = [CASES_PER_CASEWORKER[w.target_group] for w in workers]
    total = sum(weights)
    loads = [cases * w // total for w in weights]
    for i in range(cases - sum(loads)):
        loads[i % len(loads)] += 1
    return loads


_FAMILY_SIZE = _Odds((1, 60), (2, 25), (3, 12), (4, 3))
_MEASURE_COUNT = _Odds((1, 55), (2, 35), (3, 10))
_FIRST_LEVEL = _Odds((2, 2), (3, 4), (4, 4), (5, 2))
_THEMES = tuple(theme.value for theme in Theme)
_NOT_ASSESSED = 0.05  # per theme and round: "ikke vurderet"
# A child's course on a theme: the chance per round of one step better (down) and worse (up).
# Most children improve, some stay put, a few deteriorate: a slight improvement overall.
_COURSE = _Odds(((0.40, 0.10), 55), ((0.20, 0.20), 30), ((0.10, 0.40), 15))
_JUMP = 0.25  # the chance that a move is two steps (a breakthrough, a crisis)
# The chance of a first, second, third ... round: the investigation is scored, its follow-up
# nearly always, later rounds less and less (national scale: ~120,000 cases hold ~1.5
# million assessments).
_GO_ON = (1.0, 0.95, 0.65)


def _family_sizes(draw: _Draw, load: int) -> Iterator[int]:
    while load > 0:
        size = min(load, draw.pick(_FAMILY_SIZE))
        load -= size
        yield size


def _births(draw: _Draw, opened: date, size: int) -> list[date]:
    """Birth dates of ``size`` siblings, each 0–17 years old at ``opened`` and 11 months to 4 years apart."""
    gap = timedelta(days=400)
    latest = opened - timedelta(days=30)
    born = draw.day_between(opened - timedelta(days=17 * 365), latest - gap * (size - 1))
    births = [born]
    for younger in range(size - 2, -1, -1):  # how many are born after the next one
        limit = min(born + timedelta(days=1460), latest - gap * younger)
        born = draw.day_between(born + timedelta(days=330), limit)
        births.append(born)
    return births


def _series(draw: _Draw, first: date, last: date, assessor: str) -> list[TruthAssessment]:
    """Rounds of scores on all five themes 3–6 months apart, each theme following its own course."""
    random = draw.random
    levels = [draw.pick(_FIRST_LEVEL) for _ in _THEMES]
    courses = [draw.pick(_COURSE) for _ in _THEMES]
    scores: list[TruthAssessment] = []
    on = first
    rounds = 0
    while on <= last and random() < _GO_ON[min(rounds, len(_GO_ON) - 1)]:
        rounds += 1
        for i, theme in enumerate(_THEMES):
            level = levels[i]
            scores.append(TruthAssessment(theme, None if random() < _NOT_ASSESSED else level, on, assessor))
            better, worse = courses[i]
            step = random()
            if step < better:
                levels[i] = max(1, level - (2 if random() < _JUMP else 1))
            elif step >= 1 - worse:
                levels[i] = min(5, level + (2 if random() < _JUMP else 1))
        on += timedelta(days=draw.number(90, 180))
    return scores


# The chance that a deadline is kept, near Ankestyrelsen's Børnesagsbarometret (2019-2024): the
# investigation within 4 months in 50-60 % of cases, the child heard before the decision in
# 56-65 %, a plan in 77-79 %, the first follow-up within 3 months in 44-75 %.
_CLOCK_STREAM = 1_000_003
DANISH_TIME = ZoneInfo("Europe/Copenhagen")
KEEP_INVESTIGATION = 0.58
KEEP_CONVERSATION = 0.62
KEEP_CONSENT = 0.92
KEEP_PLAN = 0.78
KEEP_FIRST_FOLLOW_UP = 0.72
KEEP_CADENCE = 0.8
URGENT = 0.1  # measures put in place while the investigation still runs
NO_JOURNAL = 0.03
KEEP_NOTIFICATION_ASSESSMENT = 0.87  # underretninger assessed within 24 hours (Børnesagsbarometret)


def _within(draw: _Draw, earliest: date, deadline: date) -> date:
    """A day from ``earliest`` to ``deadline`` (the deadline itself is in time)."""
    return draw.day_between(earliest, max(earliest, deadline))


def _late(draw: _Draw, deadline: date, most: int) -> date:
    return deadline + timedelta(days=draw.number(1, most))


def _measures(draw: _Draw, case: TruthCase, start: date, last: date) -> list[TruthMeasure]:
    """1-3 measures granted by one decision, all starting on ``start``; after-care once the child is 18."""
    measures = []
    act = Act.SEL if start < BARNETS_LOV else Act.BL
    age = _age(case.child.cpr, start)
    for n in range(draw.pick(_MEASURE_COUNT)):
        choices = _MEASURES[case.target_group][act]
        if age >= 18 and case.target_group is TargetGroup.udsatte:
            paragraph, account = choices[2]  # after-care: SEL § 76, BL § 114
        else:
            paragraph, account = (
                choices[draw.number(0, 1)]
                if case.target_group is TargetGroup.udsatte
                else choices[draw.number(0, len(choices) - 1)]
            )
        end = draw.day_between(start + timedelta(days=200), last) if draw.chance(0.4) else None
        measures.append(
            TruthMeasure(
                ref=f"{case.id}-m{n + 1}",
                act=act,
                paragraph=paragraph,
                start=start,
                end=end if end is not None and end >= start + timedelta(days=200) else None,
                has_grant=draw.chance(0.92),
                account_code=account if draw.chance(0.95) else "5.28.99.999",
                provider=_PROVIDERS[draw.number(0, len(_PROVIDERS) - 1)],
            )
        )
    return measures


def _age(cpr: str, day: date) -> int:
    born = _birth_date(cpr)
    return day.year - born.year - (0 if (day.month, day.day) >= (born.month, born.day) else 1)


def _birth_date(cpr: str) -> date:
    return parse_cpr(cpr).birth_date


def _course(draw: _Draw, case: TruthCase, last: date) -> None:
    """One course of a case: notification, investigation, decision, measures, plan, follow-ups.

    Each deadline is kept or broken by a draw at the national rates above, and what was drawn
    broken is recorded in ``case.broken`` (the indicator's rule id), so tests know it.
    """
    opened = case.opened
    dated: list[tuple[EventKind, date]] = []
    broken: set[str] = set()
    notified = opened - timedelta(days=draw.number(0, 20))
    dated.append((EventKind.notification, notified))
    started = opened + timedelta(days=draw.number(0, 14))
    dated.append((EventKind.investigation_started, started))
    investigation_due = add_months(notified, 4)
    if draw.chance(KEEP_INVESTIGATION):
        completed = _within(draw, started + timedelta(days=20), investigation_due)
    else:
        completed = _late(draw, investigation_due, 90)
        broken.add("undersoegelse_4_maaneder")
    dated.append((EventKind.investigation_completed, completed))
    if draw.chance(URGENT):
        decided = started + timedelta(days=draw.number(5, 20))
    else:
        decided = completed + timedelta(days=draw.number(1, 14))
    dated.append((EventKind.decision, decided))
    start = decided + timedelta(days=draw.number(0, 7))
    if start <= last:
        case.measures = _measures(draw, case, start, last)
    if draw.chance(KEEP_CONVERSATION):
        dated.append(
            (EventKind.child_conversation, draw.day_between(max(notified, decided - timedelta(days=40)), decided))
        )
    else:
        broken.add("boernesamtale_foer_afgoerelse")
        if draw.chance(0.3):
            dated.append((EventKind.child_conversation, decided + timedelta(days=draw.number(1, 30))))
    if draw.chance(KEEP_CONSENT):
        dated.append((EventKind.consent, draw.day_between(notified, min(start, decided))))
    else:
        broken.add("samtykke")
    act = Act.SEL if start < BARNETS_LOV else Act.BL
    plan_due = decided if act is Act.SEL else add_months(decided, 3)
    if draw.chance(KEEP_PLAN):
        earliest = max(notified, decided - timedelta(days=10)) if act is Act.SEL else decided
        dated.append(
            (EventKind.plan_made, _within(draw, earliest, plan_due - timedelta(days=1 if act is Act.SEL else 0)))
        )
    else:
        broken.add("plan_rettidig")
        dated.append((EventKind.plan_made, _late(draw, plan_due, 70)))
    if case.measures:
        follow_due = add_months(start, 3)
        if draw.chance(KEEP_FIRST_FOLLOW_UP):
            follow = _within(draw, start + timedelta(days=30), follow_due)
        else:
            follow = _late(draw, follow_due, 60)
            broken.add("opfoelgning_3_maaneder")
        while follow <= last:
            dated.append((EventKind.follow_up, follow))
            due = add_months(follow, 6)
            if draw.chance(KEEP_CADENCE):
                follow = _within(draw, follow + timedelta(days=120), due)
            else:
                follow = _late(draw, due, 80)
                if act is Act.SEL:
                    broken.add("opfoelgning_6_maaneder")
    if not draw.chance(NO_JOURNAL):
        # The first note is written while the case is new (notatpligt); a few only months later.
        first_note = opened + timedelta(days=draw.number(0, 25) if draw.chance(0.92) else draw.number(40, 120))
        dated.append((EventKind.journal_note, first_note))
        for _ in range(draw.number(0, 3)):
            dated.append((EventKind.journal_note, draw.day_between(opened, last)))
    kept = [(kind, on) for kind, on in dated if on <= last]
    case.events = [
        TruthEvent(kind=kind, occurred_on=on, ref=f"{case.id}-e{n + 1}") for n, (kind, on) in enumerate(kept)
    ]
    received, assessed, late = _notification_times(draw, notified)
    next(e for e in case.events if e.kind is EventKind.notification).at = received
    if late:
        broken.add("underretning_24_timer")
    if assessed.astimezone(DANISH_TIME).date() <= last:
        day = assessed.astimezone(DANISH_TIME).date()
        ref = f"{case.id}-e{len(case.events) + 1}"
        case.events.append(TruthEvent(EventKind.notification_assessed, day, ref, assessed))
    case.broken = frozenset(broken)


def _notification_times(draw: _Draw, notified: date) -> tuple[datetime, datetime, bool]:
    """When the notification came in (office hours, Danish time) and when it was assessed, in UTC."""
    clock = draw.clock
    received = datetime.combine(notified, time(8), tzinfo=DANISH_TIME) + timedelta(minutes=int(clock() * 480))
    late = clock() >= KEEP_NOTIFICATION_ASSESSMENT
    hours = 25 + clock() * 95 if late else 0.5 + clock() * 23
    return received.astimezone(UTC), (received + timedelta(hours=hours)).astimezone(UTC), late


def _modified(draw: _Draw, case: TruthCase) -> datetime:
    activity = [
        case.opened,
        *(a.assessed_on for a in case.assessments),
        *(e.occurred_on for e in case.events),
        *(m.start for m in case.measures),
    ]
    if case.closed is not None:
        activity.append(case.closed)
    day = draw.day_between(max(activity), draw.as_of)
    moment = time(draw.number(7, 16), draw.number(0, 59), draw.number(0, 59), draw.number(0, 999) * 1000)
    return datetime.combine(day, moment, tzinfo=UTC)


def _case(
    draw: _Draw,
    case_id: int,
    worker: TruthCaseworker,
    *,
    child: TruthChild,
    opened: date,
    case_number: str,
    family_case_number: str | None,
) -> TruthCase:
    closed = None
    if draw.chance(0.25) and (draw.as_of - opened).days > 200:
        closed = draw.day_between(opened + timedelta(days=180), draw.as_of)
    last = closed or draw.as_of
    case = TruthCase(
        id=case_id,
        municipality=worker.municipality,
        child=child,
        caseworker_ref=worker.ref,
        case_number=case_number,
        family_case_number=family_case_number,
        kle="27.24.00",
        target_group=worker.target_group,
        opened=opened,
        closed=closed,
        modified=datetime.combine(opened, time(), tzinfo=UTC),
    )
    _course(draw, case, last)
    if draw.chance(0.85):
        case.assessments = _series(draw, opened + timedelta(days=draw.number(14, 120)), last, worker.name)
    case.modified = _modified(draw, case)
    return case


def _break(draw: _Draw, case: TruthCase, defect: Defect) -> None:
    case.defect = defect
    if defect is Defect.bad_cpr:
        case.child.cpr = _BAD_CPRS[draw.number(0, len(_BAD_CPRS) - 1)]
    elif defect in (Defect.score_out_of_range, Defect.unknown_theme):
        if not case.assessments:
            case.assessments = [TruthAssessment(Theme.sundhed.value, 3, case.opened + timedelta(days=30), None)]
        if defect is Defect.score_out_of_range:
            case.assessments[0].value = 7
        else:
            case.assessments[0].theme = "humoer"
    elif defect is Defect.closed_before_opened:
        case.closed = case.opened - timedelta(days=draw.number(1, 60))


def generate(
    seed: int = 1,
    *,
    municipalities: int = 1,
    caseworkers: int = 10,
    cases: int | None = None,
    invalid: int = 0,
    as_of: date = DEFAULT_AS_OF,
    municipality_codes: Sequence[str] | None = None,
) -> GroundTruth:
    """A ground truth drawn from ``seed``: the same parameters give an equal truth.

    ``caseworkers`` and ``cases`` are per municipality; without ``cases`` the count follows
    from the caseworkers' loads. ``municipality_codes`` picks the kommunekoder (default: the
    first ``municipalities`` of a fixed list of real ones). ``invalid`` adds that many
    broken cases after the valid ones, cycling through every :class:`Defect`. Nothing is
    dated after ``as_of`` except what :func:`touch` adds later. Case ids start at 1001.
    """
    codes = list(municipality_codes) if municipality_codes else list(MUNICIPALITIES)[:municipalities]
    if len(codes) < municipalities:
        raise ValueError(f"at most {len(MUNICIPALITIES)} municipalities without explicit municipality_codes")
    if as_of < FIRST_OPENING + timedelta(days=60):
        raise ValueError(f"as_of must be after {FIRST_OPENING + timedelta(days=60)}: cases open from {FIRST_OPENING}")
    truth = GroundTruth(
        seed=seed, municipalities={c: MUNICIPALITIES.get(c, f"Kommune {c}") for c in codes}, caseworkers={}, cases=[]
    )
    with _cyclic_gc_paused():
        _Generation(_Draw(seed, as_of), truth).fill(caseworkers, cases, invalid)
    return truth


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the truth is built.

    The truth is hundreds of thousands of acyclic objects at benchmark sizes; the collector
    would scan them again and again, which doubles the generation time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Generation:
    """Numbering state of one generation: case ids and case-number sequences per year."""

    def __init__(self, draw: _Draw, truth: GroundTruth) -> None:
        self.draw = draw
        self.truth = truth
        self.last_id = 1000
        self.sequences: dict[int, int] = {}

    def case_number(self, opened: date) -> str:
        self.sequences[opened.year] = sequence = self.sequences.get(opened.year, 0) + 1
        return f"27.24.00-G01-{sequence}-{opened.year % 100:02d}"

    def add(
        self, worker: TruthCaseworker, child: TruthChild, opened: date, family_case_number: str | None
    ) -> TruthCase:
        self.last_id += 1
        case = _case(
            self.draw,
            self.last_id,
            worker,
            child=child,
            opened=opened,
            case_number=self.case_number(opened),
            family_case_number=family_case_number,
        )
        self.truth.cases.append(case)
        return case

    def fill(self, caseworkers: int, cases: int | None, invalid: int) -> None:
        draw = self.draw
        for m, code in enumerate(self.truth.municipalities):
            workers = _caseworkers(draw, code, caseworkers, first_number=m * caseworkers + 1)
            self.truth.caseworkers.update((w.ref, w) for w in workers)
            for worker, load in zip(workers, _loads(draw, workers, cases), strict=True):
                for size in _family_sizes(draw, load):
                    self.family(worker, size)
        defects = list(Defect)
        worker_refs = sorted(self.truth.caseworkers)
        for n in range(invalid):
            worker = self.truth.caseworkers[worker_refs[n % len(worker_refs)]]
            born = draw.day_between(date(2008, 1, 1), date(2020, 12, 31))
            child = TruthChild(cpr=draw.cpr(born), name=draw.name(), guardians=[UNKNOWN_GUARDIAN])
            opened = draw.day_between(date(2021, 1, 1), draw.as_of - timedelta(days=30))
            _break(draw, self.add(worker, child, opened, None), defects[n % len(defects)])

    def family(self, worker: TruthCaseworker, size: int) -> None:
        """``size`` siblings with the same guardians and caseworker, opened together.

        Some multi-child families are kept the old way, as one family case: their
        children's cases then share its case number as ``family_case_number``.
        """
        draw = self.draw
        mother = draw.cpr(draw.day_between(date(1965, 1, 1), date(1995, 12, 31)))
        father = (
            draw.cpr(draw.day_between(date(1960, 1, 1), date(1993, 12, 31))) if draw.chance(0.8) else UNKNOWN_GUARDIAN
        )
        opened = draw.day_between(FIRST_OPENING, draw.as_of - timedelta(days=30))
        family_case_number = self.case_number(opened) if size > 1 and draw.chance(0.2) else None
        for born in _births(draw, opened, size):
            child = TruthChild(cpr=draw.cpr(born), name=draw.name(), guardians=[mother, father])
            self.add(worker, child, opened, family_case_number)


def touch(truth: GroundTruth, n: int, seed: int, at: datetime) -> list[int]:
    """Change ``n`` valid cases as a caseworker would (a new score round and a journal note) at ``at``.

    Returns the ids of the changed cases, in id order.
    """
    rng = random.Random(seed)
    valid = list(truth.valid_cases())
    chosen = sorted(rng.sample(valid, min(n, len(valid))), key=lambda c: c.id)
    for case in chosen:
        on = at.date()
        for theme in Theme:
            earlier = [a.value for a in case.assessments if a.theme == theme.value and a.value is not None]
            value = min(5, max(1, (earlier[-1] if earlier else 3) + rng.choice((-1, 0, 0, 1))))
            case.assessments.append(TruthAssessment(theme.value, value, on, None))
        case.events.append(TruthEvent(EventKind.journal_note, on, f"{case.id}-e{len(case.events) + 1}"))
        case.modified = at.astimezone(UTC)
    return [c.id for c in chosen]
