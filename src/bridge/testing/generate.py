"""The synthetic ground truth generator: deterministic from its parameters.

It draws municipalities, caseworkers (about 40 cases each on udsatte, 55 on handicap),
families whose children share guardians and one caseworker, score series that drift
over time, measures under Serviceloven before 2024 and Barnets lov after, and
milestones where most deadlines are kept and some are broken. ``invalid`` adds cases
that are broken on purpose (see :class:`bridge.testing.truth.Defect`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from bridge.model.records import Act, EventKind, TargetGroup, Theme
from bridge.testing.truth import (
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
BARNETS_LOV = date(2024, 1, 1)
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

_BAD_CPRS = ("321399-1234", "12345", "011399-4321", "abcdef-ghij")


def _cpr(born: date, seventh: int, rest: int) -> str:
    return f"{born:%d%m%y}-{seventh}{rest:03d}"


@dataclass
class _Draw:
    """All randomness of one generation, from one seeded generator."""

    rng: random.Random
    as_of: date
    used_cprs: set[str]

    def day_between(self, first: date, last: date) -> date:
        if last <= first:
            return first
        return first + timedelta(days=self.rng.randint(0, (last - first).days))

    def cpr(self, born: date) -> str:
        yy = born.year % 100
        # CPR-kontoret's table, read backwards: which 7th digits give this century.
        sevenths = ([5, 6, 7, 8] + ([4, 9] if yy <= 36 else [])) if born.year >= 2000 else [0, 1, 2, 3]
        while True:
            candidate = _cpr(born, self.rng.choice(sevenths), self.rng.randint(0, 999))
            if candidate not in self.used_cprs:
                self.used_cprs.add(candidate)
                return candidate

    def name(self) -> str:
        return f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"


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


def _family_sizes(draw: _Draw, load: int) -> Iterator[int]:
    while load > 0:
        size = min(load, draw.rng.choices((1, 2, 3, 4), weights=(60, 25, 12, 3))[0])
        load -= size
        yield size


def _series(draw: _Draw, first: date, last: date, assessor: str) -> list[TruthAssessment]:
    """Scores on all five themes at intervals of 3–6 months, drifting with a slight improvement."""
    scores: list[TruthAssessment] = []
    level = {theme: draw.rng.choices((2, 3, 4, 5), weights=(2, 4, 4, 2))[0] for theme in Theme}
    on = first
    while on <= last:
        for theme in Theme:
            value: int | None = level[theme]
            if draw.rng.random() < 0.05:
                value = None
            scores.append(TruthAssessment(theme=theme.value, value=value, assessed_on=on, assessor=assessor))
            step = draw.rng.choices((-1, 0, 1), weights=(30, 52, 18))[0]
            level[theme] = min(5, max(1, level[theme] + step))
        on += timedelta(days=draw.rng.randint(90, 180))
    return scores


def _measures(draw: _Draw, case_id: int, group: TargetGroup, opened: date, last: date) -> list[TruthMeasure]:
    measures = []
    for n in range(draw.rng.choices((1, 2, 3), weights=(55, 35, 10))[0]):
        start = draw.day_between(opened + timedelta(days=20), last)
        act = Act.SEL if start < BARNETS_LOV else Act.BL
        paragraph, account = draw.rng.choice(_MEASURES[group][act])
        end = None
        if draw.rng.random() < 0.4:
            end = draw.day_between(start + timedelta(days=30), last)
        measures.append(
            TruthMeasure(
                ref=f"{case_id}-m{n + 1}",
                act=act,
                paragraph=paragraph,
                start=start,
                end=end,
                has_grant=draw.rng.random() < 0.92,
                account_code=account if draw.rng.random() < 0.95 else "5.28.99.999",
                provider=draw.rng.choice(_PROVIDERS),
            )
        )
    return measures


def _events(draw: _Draw, case_id: int, opened: date, last: date, first_measure: date | None) -> list[TruthEvent]:
    """Milestones: most deadlines kept (investigation within 4 months, follow-up within 3, then every 6)."""
    rng = draw.rng
    dated: list[tuple[EventKind, date]] = [(EventKind.notification, opened - timedelta(days=rng.randint(0, 20)))]
    started = opened + timedelta(days=rng.randint(0, 14))
    dated.append((EventKind.investigation_started, started))
    completed = started + timedelta(days=rng.randint(30, 115) if rng.random() < 0.85 else rng.randint(125, 200))
    dated.append((EventKind.investigation_completed, completed))
    decision = completed + timedelta(days=rng.randint(1, 14))
    dated.append((EventKind.decision, decision))
    if decision < BARNETS_LOV:  # SEL §140: the plan comes before the decision
        plan = (
            decision - timedelta(days=rng.randint(1, 10))
            if rng.random() < 0.85
            else decision + timedelta(days=rng.randint(10, 60))
        )
    else:  # BL §91: the plan within 3 months
        plan = decision + timedelta(days=rng.randint(5, 85) if rng.random() < 0.85 else rng.randint(100, 160))
    dated.append((EventKind.plan_made, plan))
    if rng.random() < 0.85:
        dated.append((EventKind.child_conversation, started + timedelta(days=rng.randint(5, 60))))
    if rng.random() < 0.8:
        dated.append((EventKind.consent, opened + timedelta(days=rng.randint(0, 30))))
    if first_measure is not None:
        follow = first_measure + timedelta(days=rng.randint(40, 88) if rng.random() < 0.85 else rng.randint(100, 150))
        while follow <= last:
            dated.append((EventKind.follow_up, follow))
            follow += timedelta(days=rng.randint(120, 178) if rng.random() < 0.85 else rng.randint(190, 260))
    for _ in range(rng.randint(1, 4)):
        dated.append((EventKind.journal_note, draw.day_between(opened, last)))
    kept = [(kind, on) for kind, on in dated if on <= last]
    return [TruthEvent(kind=kind, occurred_on=on, ref=f"{case_id}-e{n + 1}") for n, (kind, on) in enumerate(kept)]


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
    moment = time(
        draw.rng.randint(7, 16), draw.rng.randint(0, 59), draw.rng.randint(0, 59), draw.rng.randint(0, 999) * 1000
    )
    return datetime.combine(day, moment, tzinfo=UTC)


def _case(
    draw: _Draw,
    case_id: int,
    code: str,
    worker: TruthCaseworker,
    *,
    child: TruthChild,
    opened: date,
    sequence: int,
    family_case_number: str | None,
) -> TruthCase:
    rng = draw.rng
    closed = None
    if rng.random() < 0.25 and (draw.as_of - opened).days > 200:
        closed = draw.day_between(opened + timedelta(days=180), draw.as_of)
    last = closed or draw.as_of
    case = TruthCase(
        id=case_id,
        municipality=code,
        child=child,
        caseworker_ref=worker.ref,
        case_number=f"27.24.00-G01-{sequence}-{opened.year % 100:02d}",
        family_case_number=family_case_number,
        kle="27.24.00",
        target_group=worker.target_group,
        opened=opened,
        closed=closed,
        modified=datetime.combine(opened, time(), tzinfo=UTC),
    )
    case.measures = _measures(draw, case_id, worker.target_group, opened, last)
    if rng.random() < 0.85:
        case.assessments = _series(draw, opened + timedelta(days=rng.randint(14, 120)), last, worker.name)
    first_measure = min((m.start for m in case.measures), default=None)
    case.events = _events(draw, case_id, opened, last, first_measure)
    case.modified = _modified(draw, case)
    return case


def _break(draw: _Draw, case: TruthCase, defect: Defect) -> None:
    case.defect = defect
    if defect is Defect.bad_cpr:
        case.child.cpr = draw.rng.choice(_BAD_CPRS)
    elif defect in (Defect.score_out_of_range, Defect.unknown_theme):
        if not case.assessments:
            case.assessments = [TruthAssessment(Theme.sundhed.value, 3, case.opened + timedelta(days=30), None)]
        if defect is Defect.score_out_of_range:
            case.assessments[0].value = 7
        else:
            case.assessments[0].theme = "humoer"
    elif defect is Defect.closed_before_opened:
        case.closed = case.opened - timedelta(days=draw.rng.randint(1, 60))


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
    """A ground truth drawn from ``seed``.

    ``caseworkers`` and ``cases`` are per municipality; without ``cases`` the count follows
    from the caseworkers' loads. ``municipality_codes`` picks the kommunekoder (default: the
    first ``municipalities`` of a fixed list). ``invalid`` adds that many broken cases,
    cycling through every :class:`Defect`.
    """
    codes = list(municipality_codes) if municipality_codes else list(MUNICIPALITIES)[:municipalities]
    draw = _Draw(random.Random(seed), as_of, set())
    truth = GroundTruth(
        seed=seed, municipalities={c: MUNICIPALITIES.get(c, f"Kommune {c}") for c in codes}, caseworkers={}, cases=[]
    )
    case_id = 1000
    sequences: dict[int, int] = {}
    first_opening = date(2019, 1, 1)
    for m, code in enumerate(codes):
        workers = _caseworkers(draw, code, caseworkers, first_number=m * 1000 + 1)
        truth.caseworkers.update((w.ref, w) for w in workers)
        for worker, load in zip(workers, _loads(draw, workers, cases), strict=True):
            for size in _family_sizes(draw, load):
                mother = draw.cpr(draw.day_between(date(1965, 1, 1), date(1995, 12, 31)))
                father = (
                    draw.cpr(draw.day_between(date(1960, 1, 1), date(1993, 12, 31)))
                    if draw.rng.random() < 0.8
                    else UNKNOWN_GUARDIAN
                )
                opened = draw.day_between(first_opening, as_of - timedelta(days=30))
                family_number = None
                if size > 1 and draw.rng.random() < 0.2:
                    sequences[opened.year] = sequences.get(opened.year, 0) + 1
                    family_number = f"27.24.00-G01-{sequences[opened.year]}-{opened.year % 100:02d}"
                for _ in range(size):
                    born = draw.day_between(opened - timedelta(days=17 * 365), opened - timedelta(days=30))
                    child = TruthChild(cpr=draw.cpr(born), name=draw.name(), guardians=[mother, father])
                    sequences[opened.year] = sequences.get(opened.year, 0) + 1
                    case_id += 1
                    truth.cases.append(
                        _case(
                            draw,
                            case_id,
                            code,
                            worker,
                            child=child,
                            opened=opened,
                            sequence=sequences[opened.year],
                            family_case_number=family_number,
                        )
                    )
    defects = list(Defect)
    worker_refs = sorted(truth.caseworkers)
    for n in range(invalid):
        worker = truth.caseworkers[worker_refs[n % len(worker_refs)]]
        born = draw.day_between(date(2008, 1, 1), date(2020, 12, 31))
        child = TruthChild(cpr=draw.cpr(born), name=draw.name(), guardians=[UNKNOWN_GUARDIAN])
        opened = draw.day_between(date(2021, 1, 1), as_of - timedelta(days=30))
        sequences[opened.year] = sequences.get(opened.year, 0) + 1
        case_id += 1
        case = _case(
            draw,
            case_id,
            worker.municipality,
            worker,
            child=child,
            opened=opened,
            sequence=sequences[opened.year],
            family_case_number=None,
        )
        _break(draw, case, defects[n % len(defects)])
        truth.cases.append(case)
    return truth


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
