"""Reproducible, verifiable samples for the ledelsestilsyn.

The population of a draw is every live case with a measure started in the review window
(``lookback_months`` back from ``as_of``, a year by default, as Social- og Boligstyrelsen
recommends), optionally limited to one municipality and to some paragraphs, less the cases drawn
in an earlier sample within ``exclude_months``. Each case falls in a stratum:

- ``per_caseworker`` — its caseworker; the first ``k`` of each caseworker are drawn;
- ``per_paragraph`` — the paragraph of its latest measure in the window; ``k`` per paragraph;
- ``proportional`` — ``stratify_by`` (caseworker, team or paragraph); ``n`` cases in all (or the
  sample size for ``confidence`` and ``tolerable``) shared out in proportion to the strata's
  sizes by the largest remainder, ties to the larger stratum, then by name.

Within a stratum the cases are ordered by SHA-256 of ``seed | case key`` (the case key is
``source:source_ref``, the same in every store), and the first ones are drawn. The sample stores
the seed, the strategy, its parameters and a fingerprint of the population (SHA-256 of its sorted
case keys and strata), and the population itself, so :func:`verify` can recompute the draw and
say whether it stands, or which cases came or went.

A tilsyn plan's cadence (quarterly, half-yearly, yearly) gives the period a draw belongs to and
its ``as_of``: the period's last day.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Literal

from sqlalchemy import and_, func, insert, select

from bridge.errors import BridgeError, ConfigError
from bridge.law import add_months
from bridge.model.audit import AuditSample, AuditSampleCase
from bridge.model.tables import CASES, CASEWORKERS, MEASURES, table_of
from bridge.services.assurance import sample_size
from bridge.services.periods import Period
from bridge.services.population import live
from bridge.store import Store

SAMPLES = table_of(AuditSample)
SAMPLE_CASES = table_of(AuditSampleCase)

StratifyBy = Literal["caseworker", "team", "paragraph"]


class Strategy(StrEnum):
    per_caseworker = "per_caseworker"
    per_paragraph = "per_paragraph"
    proportional = "proportional"


class Cadence(StrEnum):
    quarterly = "quarterly"
    half_yearly = "half_yearly"
    yearly = "yearly"

    def period(self, day: date) -> Period:
        """The period of this cadence that holds ``day``."""
        if self is Cadence.yearly:
            return Period.parse(str(day.year))
        if self is Cadence.half_yearly:
            return Period.parse(f"{day.year}H{1 if day.month <= 6 else 2}")
        return Period.parse(f"{day.year}Q{(day.month - 1) // 3 + 1}")


class UnknownSample(BridgeError):
    """No sample has that id (exit 1)."""


@dataclass(frozen=True)
class DrawSpec:
    """Everything that decides a draw; stored with the sample as its parameters."""

    strategy: Strategy
    as_of: date
    k: int | None = None
    n: int | None = None
    stratify_by: StratifyBy = "caseworker"
    confidence: float = 0.95
    tolerable: float = 0.05
    municipality: str | None = None
    paragraphs: tuple[str, ...] = ()
    lookback_months: int = 12
    exclude_months: int = 12
    label: str = ""

    def validated(self) -> DrawSpec:
        if self.strategy is Strategy.proportional:
            if self.n is None:
                return replace(self, n=sample_size(self.confidence, self.tolerable))
            if self.n < 1:
                raise ConfigError("n must be at least 1")
        elif self.k is None or self.k < 1:
            raise ConfigError(f"the strategy {self.strategy.value} needs k ≥ 1 (cases per stratum)")
        if self.lookback_months < 1:
            raise ConfigError("the review window must be at least one month")
        return self

    def window_start(self) -> date:
        return add_months(self.as_of, -self.lookback_months)

    def parameters(self) -> dict[str, object]:
        return {
            "strategy": self.strategy.value,
            "as_of": self.as_of.isoformat(),
            "k": self.k,
            "n": self.n,
            "stratify_by": self.stratify_by,
            "confidence": self.confidence,
            "tolerable": self.tolerable,
            "municipality": self.municipality,
            "paragraphs": list(self.paragraphs),
            "lookback_months": self.lookback_months,
            "exclude_months": self.exclude_months,
            "label": self.label,
        }

    @classmethod
    def from_parameters(cls, raw: dict[str, object]) -> DrawSpec:
        values = dict(raw)
        values["strategy"] = Strategy(str(values["strategy"]))
        values["as_of"] = date.fromisoformat(str(values["as_of"]))
        paragraphs = values.get("paragraphs") or []
        values["paragraphs"] = tuple(str(p) for p in paragraphs) if isinstance(paragraphs, list) else ()
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Member:
    """A case of the population: its key, row id, stratum and caseworker (for listing)."""

    key: str
    case_id: int
    case_number: str
    stratum: str


@dataclass
class Draw:
    """A computed draw: the population, the chosen keys and the rank of each case in its stratum."""

    spec: DrawSpec
    seed: str
    population: list[Member]
    excluded: int
    ranks: dict[str, int] = field(default_factory=dict)
    selected: set[str] = field(default_factory=set)

    @property
    def fingerprint(self) -> str:
        return population_fingerprint(self.population)


@dataclass(frozen=True)
class SampleSummary:
    id: int
    label: str
    strategy: str
    seed: str
    as_of: date
    window_start: date
    population_size: int
    sample_size: int
    fingerprint: str
    drawn_at: datetime
    drawn_by: str
    parameters: dict[str, object]


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify`: ``confirmed`` when the population and the draw are unchanged."""

    sample_id: int
    confirmed: bool
    fingerprint_then: str
    fingerprint_now: str
    added: list[str]
    removed: list[str]
    moved: list[str] = field(default_factory=list)
    selection_changed: bool = False

    def explain(self) -> str:
        if self.confirmed:
            return (
                f"Stikprøve {self.sample_id} er bekræftet: populationen er uændret "
                f"(fingeraftryk {self.fingerprint_now[:12]}…), og samme frø giver samme udtræk."
            )
        parts = [f"Stikprøve {self.sample_id}: populationen har ændret sig siden udtrækket."]
        if self.added:
            parts.append(f"Kommet til: {len(self.added)} sager ({', '.join(self.added[:10])}).")
        if self.removed:
            parts.append(f"Forsvundet: {len(self.removed)} sager ({', '.join(self.removed[:10])}).")
        if self.moved:
            parts.append(f"Skiftet stratum: {len(self.moved)} sager ({', '.join(self.moved[:10])}).")
        if self.selection_changed:
            parts.append("Et nyt udtræk med samme frø ville give andre sager.")
        return " ".join(parts)


def seed_order(seed: str, key: str) -> str:
    """The sort key of a case in a draw: SHA-256 of ``seed | case key``, hex."""
    return hashlib.sha256(f"{seed}|{key}".encode()).hexdigest()


def population_fingerprint(members: Iterable[Member]) -> str:
    lines = sorted(f"{m.key}\t{m.stratum}" for m in members)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def new_seed() -> str:
    return secrets.token_hex(8)


# -- the population -------------------------------------------------------------------------


def population(store: Store, spec: DrawSpec, *, before: datetime | None = None) -> tuple[list[Member], int]:
    """The eligible cases of ``spec`` and how many were left out as recently audited.

    ``before`` limits the exclusion to samples drawn before that moment (for verification).
    """
    c, m, w = CASES.c, MEASURES.c, CASEWORKERS.c
    start = spec.window_start()
    latest = (
        select(
            m.case_id,
            m.act,
            m.paragraph,
            func.row_number().over(partition_by=m.case_id, order_by=(m.start.desc(), m.source_ref.desc())).label("n"),
        )
        .where(m.start.between(start, spec.as_of))
        .subquery("latest")
    )
    query = (
        select(
            c.id, c.source, c.source_ref, c.case_number, latest.c.act, latest.c.paragraph, w.source_ref, w.name, w.unit
        )
        .select_from(
            CASES.join(latest, and_(latest.c.case_id == c.id, latest.c.n == 1)).outerjoin(
                CASEWORKERS, w.id == c.caseworker_id
            )
        )
        .where(live(), c.opened <= spec.as_of)
        .order_by(c.id)
    )
    if spec.municipality is not None:
        query = query.where(c.municipality == spec.municipality)
    recent = _recently_audited(store, spec, before)
    members, excluded = [], 0
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            key = f"{row[1]}:{row[2]}"
            paragraph = f"{row[4]} § {row[5]}"
            if spec.paragraphs and not any(_paragraph_matches(paragraph, p) for p in spec.paragraphs):
                continue
            if key in recent:
                excluded += 1
                continue
            members.append(Member(key, row[0], row[3], _stratum(spec, paragraph, row[6], row[7], row[8])))
    return members, excluded


def _paragraph_matches(paragraph: str, wanted: str) -> bool:
    """``BL § 32`` matches "BL 32", "BL§32" and "bl § 32"; a bare "32" matches any act's § 32."""
    act, _, number = paragraph.partition(" § ")
    text = wanted.replace("§", " ").split()
    if len(text) == 2:
        return text[0].upper() == act and number.split()[0] == text[1]
    return len(text) == 1 and number.split()[0] == text[0]


def _stratum(spec: DrawSpec, paragraph: str, worker_ref: str | None, worker: str | None, team: str | None) -> str:
    by = "paragraph" if spec.strategy is Strategy.per_paragraph else spec.stratify_by
    if spec.strategy is Strategy.per_caseworker:
        by = "caseworker"
    if by == "paragraph":
        return paragraph
    if by == "team":
        return team or "(intet team)"
    return f"{worker} ({worker_ref})" if worker_ref else "(ingen sagsbehandler)"


def _recently_audited(store: Store, spec: DrawSpec, before: datetime | None) -> set[str]:
    if spec.exclude_months <= 0:
        return set()
    since = add_months(spec.as_of, -spec.exclude_months)
    s, sc = SAMPLES.c, SAMPLE_CASES.c
    query = (
        select(sc.case_key)
        .join_from(SAMPLE_CASES, SAMPLES, s.id == sc.sample_id)
        .where(sc.selected.is_(True), s.as_of > since, s.as_of <= spec.as_of)
    )
    if before is not None:
        query = query.where(s.drawn_at < before)
    with store.engine.connect() as conn:
        return {key for (key,) in conn.execute(query)}


# -- the draw -------------------------------------------------------------------------------


def select_cases(spec: DrawSpec, seed: str, members: Sequence[Member]) -> Draw:
    """Order each stratum by SHA-256(seed | key) and take its share."""
    strata: dict[str, list[Member]] = {}
    for member in members:
        strata.setdefault(member.stratum, []).append(member)
    draw = Draw(spec, seed, list(members), excluded=0)
    quota = _quotas(spec, {name: len(cases) for name, cases in strata.items()})
    for name, cases in strata.items():
        ordered = sorted(cases, key=lambda mb: seed_order(seed, mb.key))
        for rank, member in enumerate(ordered, start=1):
            draw.ranks[member.key] = rank
            if rank <= quota[name]:
                draw.selected.add(member.key)
    return draw


def _quotas(spec: DrawSpec, sizes: dict[str, int]) -> dict[str, int]:
    if spec.strategy is not Strategy.proportional:
        k = spec.k or 0
        return {name: min(k, size) for name, size in sizes.items()}
    total = sum(sizes.values())
    n = min(spec.n or 0, total)
    if total == 0:
        return {}
    exact = {name: n * size / total for name, size in sizes.items()}
    quota = {name: int(value) for name, value in exact.items()}
    rest = n - sum(quota.values())
    order = sorted(sizes, key=lambda name: (-(exact[name] - quota[name]), -sizes[name], name))
    for name in order[:rest]:
        quota[name] += 1
    return quota


def draw_sample(store: Store, spec: DrawSpec, *, seed: str | None = None, drawn_by: str = "bridge") -> SampleSummary:
    """Draw a sample and store it with its seed, parameters, population and fingerprint."""
    spec = spec.validated()
    seed = seed or new_seed()
    members, excluded = population(store, spec)
    if not members:
        raise ConfigError(
            f"no cases to draw from: no live case has a measure started {spec.window_start()}..{spec.as_of}"
            + (f" in municipality {spec.municipality}" if spec.municipality else "")
            + (f" ({excluded} left out as audited within {spec.exclude_months} months)" if excluded else "")
        )
    draw = select_cases(spec, seed, members)
    drawn_at = datetime.now(UTC)
    label = spec.label or f"Ledelsestilsyn {spec.as_of.isoformat()}"
    parameters = {**spec.parameters(), "excluded": excluded}
    with store.transaction() as conn:
        sample_id = conn.execute(
            insert(SAMPLES).values(
                label=label,
                strategy=spec.strategy.value,
                parameters=json.dumps(parameters, sort_keys=True),
                seed=seed,
                as_of=spec.as_of,
                window_start=spec.window_start(),
                population_size=len(members),
                population_fingerprint=draw.fingerprint,
                drawn_at=drawn_at,
                drawn_by=drawn_by,
            )
        ).inserted_primary_key
        if sample_id is None:
            raise BridgeError("the store did not return the new sample's id")
        sample_id = sample_id[0]
        conn.execute(
            insert(SAMPLE_CASES),
            [
                {
                    "sample_id": sample_id,
                    "case_key": m.key,
                    "case_id": m.case_id,
                    "stratum": m.stratum,
                    "rank": draw.ranks[m.key],
                    "selected": m.key in draw.selected,
                }
                for m in members
            ],
        )
    return get_sample(store, int(sample_id))


def get_sample(store: Store, sample_id: int) -> SampleSummary:
    s, sc = SAMPLES.c, SAMPLE_CASES.c
    with store.engine.connect() as conn:
        row = conn.execute(select(SAMPLES).where(s.id == sample_id)).mappings().first()
        if row is None:
            raise UnknownSample(f"there is no sample {sample_id} (bridge sample list shows them)")
        chosen = conn.execute(select(func.count()).where(sc.sample_id == sample_id, sc.selected.is_(True))).scalar_one()
    return SampleSummary(
        id=row["id"],
        label=row["label"],
        strategy=row["strategy"],
        seed=row["seed"],
        as_of=row["as_of"],
        window_start=row["window_start"],
        population_size=row["population_size"],
        sample_size=int(chosen),
        fingerprint=row["population_fingerprint"],
        drawn_at=row["drawn_at"],
        drawn_by=row["drawn_by"],
        parameters=json.loads(row["parameters"]),
    )


def list_samples(store: Store) -> list[SampleSummary]:
    with store.engine.connect() as conn:
        ids = [i for (i,) in conn.execute(select(SAMPLES.c.id).order_by(SAMPLES.c.id))]
    return [get_sample(store, i) for i in ids]


@dataclass(frozen=True)
class SampledCase:
    key: str
    case_id: int | None
    case_number: str
    stratum: str
    rank: int


def sampled_cases(store: Store, sample_id: int) -> list[SampledCase]:
    """The drawn cases of a sample, by stratum and rank."""
    get_sample(store, sample_id)
    sc, c = SAMPLE_CASES.c, CASES.c
    query = (
        select(sc.case_key, sc.case_id, c.case_number, sc.stratum, sc.rank)
        .select_from(SAMPLE_CASES.outerjoin(CASES, c.id == sc.case_id))
        .where(sc.sample_id == sample_id, sc.selected.is_(True))
        .order_by(sc.stratum, sc.rank)
    )
    with store.engine.connect() as conn:
        return [SampledCase(k, i, n or "(slettet)", s, r) for k, i, n, s, r in conn.execute(query)]


def verify(store: Store, sample_id: int) -> Verification:
    """Recompute the population and the draw of a sample; confirm it or list what changed."""
    summary = get_sample(store, sample_id)
    raw = {k: v for k, v in summary.parameters.items() if k != "excluded"}
    spec = DrawSpec.from_parameters(raw)
    members, _ = population(store, spec, before=summary.drawn_at)
    sc = SAMPLE_CASES.c
    with store.engine.connect() as conn:
        stored = {
            key: (stratum, bool(chosen))
            for key, stratum, chosen in conn.execute(
                select(sc.case_key, sc.stratum, sc.selected).where(sc.sample_id == sample_id)
            )
        }
    now = {m.key: m.stratum for m in members}
    added = sorted(set(now) - set(stored))
    removed = sorted(set(stored) - set(now))
    moved = sorted(k for k in set(now) & set(stored) if now[k] != stored[k][0])
    redraw = select_cases(spec, summary.seed, members)
    then_selected = {k for k, (_, chosen) in stored.items() if chosen}
    fingerprint_now = population_fingerprint(members)
    # The stored population must itself reproduce the stored selection: the draw was not hand-picked.
    replay = select_cases(spec, summary.seed, [Member(k, 0, "", s) for k, (s, _) in stored.items()])
    honest = replay.selected == then_selected
    confirmed = fingerprint_now == summary.fingerprint and honest and redraw.selected == then_selected
    return Verification(
        sample_id,
        confirmed,
        summary.fingerprint,
        fingerprint_now,
        added,
        removed,
        moved,
        selection_changed=redraw.selected != then_selected or not honest,
    )


def stratum_counts(store: Store, sample_id: int) -> list[tuple[str, int, int]]:
    """Per stratum: cases in the population and cases drawn."""
    sc = SAMPLE_CASES.c
    with store.engine.connect() as conn:
        rows = list(conn.execute(select(sc.stratum, sc.selected).where(sc.sample_id == sample_id)))
    population_count = Counter(s for s, _ in rows)
    drawn = Counter(s for s, chosen in rows if chosen)
    return [(s, population_count[s], drawn[s]) for s in sorted(population_count)]


__all__ = [
    "Cadence",
    "Draw",
    "DrawSpec",
    "Member",
    "SampleSummary",
    "SampledCase",
    "Strategy",
    "UnknownSample",
    "Verification",
    "draw_sample",
    "get_sample",
    "list_samples",
    "population",
    "population_fingerprint",
    "sampled_cases",
    "seed_order",
    "select_cases",
    "stratum_counts",
    "verify",
]
