"""Compare municipalities without moving person data: indicators, extracts and their merge.

Every indicator is defined once (:data:`INDICATORS` and the barometer's rules), per municipality
and period, as a **numerator and a denominator** of counts; a share, a mean or a caseload is
computed from the two only when a report is drawn, so a merge of many municipalities'
extracts recomputes its figures instead of averaging them.

- ``children_open``: distinct children with an open case on the period's last day (or ``as_of``
  when earlier) — a count, no denominator.
- ``caseload_udsatte`` / ``caseload_handicap``: open cases of the target group / caseworkers
  holding at least one of them (cases without a caseworker count in the load), against KL's
  norms of 40 and 55 cases per caseworker.
- ``coverage``: open cases scored in the last 6 months / open cases
  (:func:`bridge.services.scoring.coverage`).
- ``improved_<theme>`` / ``unchanged_<theme>`` / ``worsened_<theme>``: children by reliable
  change / children with a progression in the period; ``mean_change_<theme>``: the sum of
  their changes / the same children (:func:`bridge.services.scoring.cohort_summary`). One
  yardstick for every municipality: reliable change with a fixed SD of 1 and r = 0.8, so a
  move of 2 steps is reliable wherever it happens.
- ``barometer_<rule>``: cases passing / cases judged on each automatic checklist rule due in the
  period (:func:`bridge.services.barometer.barometer`); ``barometer_underretning_24_timer`` is
  *notifications assessed within 24 hours*.
- ``audit_errors``: sampled cases with at least one error / sampled cases, over the samples of
  the ledelsestilsyn taken in the period; the report adds the Clopper–Pearson upper limit.

Workload (weighted caseload per caseworker, ``services/workload``) is built elsewhere; its
indicators join :func:`_measure` as one more group of numerators and denominators.

Suppression happens here, once, before a report or an extract sees a number: every count of
persons from 1 to 4 is ``"<5"``, and a count that would let one be worked out from a total
(the complement of a share, the other target group) is hidden as ``"–"``
(:func:`bridge.reports.suppression.protect`). A report over a store and the merge of extracts
are both drawn from these protected figures, so they agree figure by figure.

An extract (:func:`write_extract`) is JSON holding only those figures, the schema version, the
municipality code, the periods and bridge's version, with a SHA-256 over a canonical form of
the body. The checksum detects an edited or damaged file; it is not a signature, and anyone
can compute a new one for a forged file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import distinct, func, select

from bridge.errors import ConfigError
from bridge.law import Outcome
from bridge.model.records import Theme
from bridge.model.tables import CASES
from bridge.reports.suppression import HIDDEN, MIN_CHILDREN, WITHHELD, count_cell, protect, suppressed
from bridge.services import barometer, scoring
from bridge.services.audit import audit_rules
from bridge.services.findings import current_findings
from bridge.services.labels import municipality_names
from bridge.services.periods import Period
from bridge.services.population import live, open_on
from bridge.services.sampling import list_samples, sampled_cases
from bridge.store import Store

SCHEMA_VERSION = 1
FORMAT = "bridge-compare-extract"
CASELOAD_NORMS = {"udsatte": 40, "handicap": 55}
RELIABLE_CHANGE = scoring.ReliableChange(r=scoring.DEFAULT_RELIABILITY, reference_sd=1.0)
NOTIFICATIONS_24H = "barometer_underretning_24_timer"

Kind = Literal["count", "share", "ratio", "mean"]
Count = int | str
"""A protected count: a number, or a marker from :mod:`bridge.reports.suppression`."""


class ExtractError(ConfigError):
    """An extract cannot be merged; the message names the file (exit 2)."""


@dataclass(frozen=True)
class Indicator:
    """What one figure means: its numerator and denominator, and which end is better."""

    id: str
    label: str
    section: str
    kind: Kind
    numerator: str
    denominator: str = ""
    better: Literal["high", "low"] | None = None
    norm: float | None = None


@dataclass(frozen=True)
class Cell:
    """One indicator of one municipality in one period, protected: counts or markers."""

    numerator: Count
    denominator: Count | None = None

    def value(self, kind: Kind) -> float | str | None:
        """The figure: a share in per cent, a mean or a ratio; a marker when it rests on hidden counts."""
        if kind == "count":
            return self.numerator
        num, den = self.numerator, self.denominator
        if isinstance(den, str) or den is None:
            return WITHHELD
        if den == 0:
            return None
        if isinstance(num, str):
            return WITHHELD
        return 100.0 * num / den if kind == "share" else num / den


@dataclass(frozen=True)
class Method:
    """How the figures were made; extracts made with another method are not merged."""

    min_persons: int = MIN_CHILDREN
    coverage_months: int = scoring.COVERAGE_MONTHS
    reliability: float = RELIABLE_CHANGE.r
    reference_sd: float = 1.0


@dataclass(frozen=True)
class Municipality:
    """One municipality's protected figures: ``cells[(period label, indicator id)]``."""

    code: str
    name: str
    as_of: date
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """Municipalities side by side: the periods, the indicators and each municipality's figures."""

    periods: list[Period]
    indicators: list[Indicator]
    municipalities: list[Municipality]
    method: Method = Method()


# -- the indicators ------------------------------------------------------------------------

CASES_SECTION = "Sager og sagsbehandlere"
SCORES = "Scoringer"
_BAROMETER = "Børnesagsbarometer"
_AUDIT = "Ledelsestilsyn"
Better = Literal["high", "low"] | None
_CLASSES: tuple[tuple[str, str, Better], ...] = (
    ("improved", "Forbedret", "high"),
    ("unchanged", "Uændret", None),
    ("worsened", "Forværret", "low"),
)


def _fixed_indicators() -> list[Indicator]:
    found = [
        Indicator("children_open", "Børn med åben sag", CASES_SECTION, "count", "børn med en åben sag"),
        *(
            Indicator(
                f"caseload_{group}",
                f"Sager pr. sagsbehandler, {group}",
                CASES_SECTION,
                "ratio",
                f"åbne sager ({group})",
                "sagsbehandlere med sådanne sager",
                "low",
                norm,
            )
            for group, norm in CASELOAD_NORMS.items()
        ),
        Indicator(
            "coverage",
            f"Åbne sager scoret seneste {scoring.COVERAGE_MONTHS} mdr.",
            SCORES,
            "share",
            "åbne sager med en score i vinduet",
            "åbne sager",
            "high",
        ),
    ]
    for theme in Theme:
        for klass, label, better in _CLASSES:
            found.append(
                Indicator(
                    f"{klass}_{theme.value}",
                    f"{label}: {theme.label}",
                    SCORES,
                    "share",
                    f"børn {label.lower()}",
                    "børn med en udvikling på temaet",
                    better,
                )
            )
        found.append(
            Indicator(
                f"mean_change_{theme.value}",
                f"Gns. ændring: {theme.label}",
                SCORES,
                "mean",
                "summen af ændringerne (trin)",
                "børn med en udvikling på temaet",
                "low",
            )
        )
    return found


def indicators() -> list[Indicator]:
    """Every indicator, in report order: cases, scores, the installed barometer rules, the audit."""
    rules = [
        Indicator(
            f"barometer_{rule.id}",
            rule.title,
            _BAROMETER,
            "share",
            "sager der opfylder kravet",
            "sager hvor kravet faldt i perioden",
            "high",
        )
        for rule in audit_rules(automatic=True)
    ]
    audit = Indicator(
        "audit_errors",
        "Sager med fejl i ledelsestilsyn",
        _AUDIT,
        "share",
        "udtrukne sager med mindst én fejl",
        "udtrukne sager",
        "low",
    )
    return [*_fixed_indicators(), *rules, audit]


# -- measuring a store -----------------------------------------------------------------------


@dataclass
class RawFigures:
    """Unprotected counts of one municipality in one period, by indicator: (numerator, denominator)."""

    counts: dict[str, tuple[int, int | None]] = field(default_factory=dict)


def store_municipalities(store: Store) -> list[tuple[str, str]]:
    """The municipalities with a live case, as (code, name), by code."""
    names = municipality_names(store)
    with store.engine.connect() as conn:
        codes = list(conn.execute(select(CASES.c.municipality).where(live()).distinct().order_by(CASES.c.municipality)))
    return [(code, names.get(code, code)) for (code,) in codes]


def compare(
    store: Store,
    *,
    periods: Sequence[Period] | None = None,
    municipalities: Sequence[str] | None = None,
    as_of: date | None = None,
) -> Comparison:
    """The protected figures of every municipality of the store (or those named), per period.

    ``periods`` default to the calendar year of ``as_of`` (today by default).
    """
    as_of = as_of or date.today()
    spans = list(periods) if periods else [Period.parse(str(as_of.year))]
    for span in spans:
        if span.start > as_of:
            raise ConfigError(f"period {span.label} starts after {as_of.isoformat()}: there is nothing to count yet")
    known = store_municipalities(store)
    if municipalities:
        wanted = set(municipalities)
        missing = sorted(wanted - {code for code, _ in known})
        if missing:
            raise ConfigError(f"no live case in municipality {', '.join(missing)} (kommunekode, 3 digits)")
        known = [(code, name) for code, name in known if code in wanted]
    defined = indicators()
    raw = _measure(store, spans, [code for code, _ in known], as_of)
    found = []
    for code, name in known:
        cells = {}
        for span in spans:
            cells.update({(span.label, k): v for k, v in protect_figures(raw[code, span.label]).items()})
        found.append(Municipality(code, name, as_of, cells))
    return Comparison(spans, defined, found)


def _measure(
    store: Store, spans: Sequence[Period], codes: Sequence[str], as_of: date
) -> dict[tuple[str, str], RawFigures]:
    raw = {(code, span.label): RawFigures() for code in codes for span in spans}
    for span in spans:
        day = min(span.end, as_of)
        _cases(store, day, span.label, raw)
        _coverage(store, day, span.label, raw)
        _progression(store, span, raw)
        _audit(store, span, raw)
    for code in codes:
        result = barometer.barometer(store, periods=spans, as_of=as_of, municipality=code)
        for rule in audit_rules(automatic=True):
            for span in spans:
                rows = [i for i in result.rows(period=span.label) if i.rule == rule.id]
                passed = sum(i.passed for i in rows)
                judged = sum(i.judged for i in rows)
                raw[code, span.label].counts[f"barometer_{rule.id}"] = (passed, judged)
    return raw


def _cases(store: Store, day: date, label: str, raw: dict[tuple[str, str], RawFigures]) -> None:
    c = CASES.c
    groups = (
        select(c.municipality, c.target_group, func.count(), func.count(distinct(c.caseworker_id)))
        .where(open_on(day))
        .group_by(c.municipality, c.target_group)
    )
    children = select(c.municipality, func.count(distinct(c.child_key))).where(open_on(day)).group_by(c.municipality)
    with store.engine.connect() as conn:
        for code, group, cases, caseworkers in conn.execute(groups):
            if (code, label) in raw:
                raw[code, label].counts[f"caseload_{group}"] = (int(cases), int(caseworkers))
        for code, n in conn.execute(children):
            if (code, label) in raw:
                raw[code, label].counts["children_open"] = (int(n), None)


def _coverage(store: Store, day: date, label: str, raw: dict[tuple[str, str], RawFigures]) -> None:
    for row in scoring.coverage(store, as_of=day).rows:
        if (row.municipality, label) in raw:
            raw[row.municipality, label].counts["coverage"] = (row.scored_recently, row.open_cases)


def _progression(store: Store, span: Period, raw: dict[tuple[str, str], RawFigures]) -> None:
    summary = scoring.cohort_summary(store, by="municipality", period=span, rc=RELIABLE_CHANGE)
    for row in summary.rows:
        if (row.group, span.label) not in raw:
            continue
        counts = raw[row.group, span.label].counts
        theme = row.theme.value
        counts[f"improved_{theme}"] = (row.improved, row.n)
        counts[f"unchanged_{theme}"] = (row.unchanged, row.n)
        counts[f"worsened_{theme}"] = (row.worsened, row.n)
        counts[f"mean_change_{theme}"] = (row.total_change, row.n)


def _audit(store: Store, span: Period, raw: dict[tuple[str, str], RawFigures]) -> None:
    """Sampled cases and those with an error, over the samples taken (``as_of``) in the period."""
    drawn: dict[str, int] = {}
    wrong: dict[str, int] = {}
    c = CASES.c
    for sample in list_samples(store):
        if not span.contains(sample.as_of):
            continue
        failed = {f.case_key for f in current_findings(store, sample.id) if f.outcome is Outcome.failed}
        cases = sampled_cases(store, sample.id)
        ids = [s.case_id for s in cases if s.case_id is not None]
        with store.engine.connect() as conn:
            where = dict(conn.execute(select(c.id, c.municipality).where(c.id.in_(ids))).all()) if ids else {}
        for case in cases:
            code = where.get(case.case_id) if case.case_id is not None else None
            if code is None:
                continue
            drawn[code] = drawn.get(code, 0) + 1
            wrong[code] = wrong.get(code, 0) + (case.key in failed)
    for code, n in drawn.items():
        if (code, span.label) in raw:
            raw[code, span.label].counts["audit_errors"] = (wrong[code], n)


# -- protecting ------------------------------------------------------------------------------


def _pair(counts: dict[str, tuple[int, int | None]], key: str) -> tuple[int, int]:
    num, den = counts.get(key, (0, 0))
    return num, den or 0


def protect_figures(raw: RawFigures) -> dict[str, Cell]:
    """Suppress every count of 1–4 persons, and every count a shown total would reveal."""
    counts = raw.counts
    cells: dict[str, Cell] = {}
    # Open cases by target group add up to the open cases of the coverage: one protected set.
    udsatte, handicap = (_pair(counts, f"caseload_{g}") for g in ("udsatte", "handicap"))
    scored, open_cases = _pair(counts, "coverage")
    (u_cell, h_cell), open_cell = protect([udsatte[0], handicap[0]], open_cases)
    assert open_cell is not None
    (scored_cell, _), open_cell = _protect_share(scored, open_cases)
    cells["caseload_udsatte"] = Cell(u_cell, count_cell(udsatte[1]))
    cells["caseload_handicap"] = Cell(h_cell, count_cell(handicap[1]))
    cells["coverage"] = Cell(scored_cell, open_cell)
    children = counts.get("children_open", (0, None))[0]
    children_cell = count_cell(children)
    # Children and open cases differ by the children holding two open cases: a small difference is a cell.
    if isinstance(open_cell, int) and suppressed(open_cases - children):
        children_cell = HIDDEN
    cells["children_open"] = Cell(children_cell)
    for theme in Theme:
        t = theme.value
        n = _pair(counts, f"improved_{t}")[1]
        parts = [_pair(counts, f"{klass}_{t}")[0] for klass, _, _ in _CLASSES]
        shown, n_cell = protect(parts, n)
        assert n_cell is not None
        for (klass, _, _), cell in zip(_CLASSES, shown, strict=True):
            cells[f"{klass}_{t}"] = Cell(cell, n_cell)
        total_change = _pair(counts, f"mean_change_{t}")[0]
        cells[f"mean_change_{t}"] = Cell(WITHHELD if isinstance(n_cell, str) else total_change, n_cell)
    for key, (num, den) in counts.items():
        if key.startswith("barometer_") or key == "audit_errors":
            (num_cell, _), den_cell = _protect_share(num, den or 0)
            cells[key] = Cell(num_cell, den_cell)
    return cells


def _protect_share(part: int, whole: int) -> tuple[tuple[Count, Count], Count]:
    """A share's count and its complement (``whole - part``, as many persons), protected against their total."""
    cells, total = protect([part, whole - part], whole)
    assert total is not None
    return (cells[0], cells[1]), total


# -- extracts --------------------------------------------------------------------------------


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def checksum(body: dict[str, Any]) -> str:
    """``sha256:`` and the hex digest of the canonical JSON of ``body`` (sorted keys, no spaces, UTF-8)."""
    return "sha256:" + hashlib.sha256(_canonical(body)).hexdigest()


def extract_body(comparison: Comparison, code: str) -> dict[str, Any]:
    """One municipality's figures as an extract's body: aggregates only."""
    found = [m for m in comparison.municipalities if m.code == code]
    if not found:
        raise ConfigError(f"municipality {code} is not in the comparison")
    municipality = found[0]
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "bridge_version": version("bridge"),
        "municipality": {"code": municipality.code, "name": municipality.name},
        "as_of": municipality.as_of.isoformat(),
        "method": {
            "min_persons": comparison.method.min_persons,
            "coverage_months": comparison.method.coverage_months,
            "reliability": comparison.method.reliability,
            "reference_sd": comparison.method.reference_sd,
        },
        "periods": [
            {"label": p.label, "start": p.start.isoformat(), "end": p.end.isoformat()} for p in comparison.periods
        ],
        "indicators": [
            {
                "id": i.id,
                "label": i.label,
                "section": i.section,
                "kind": i.kind,
                "numerator": i.numerator,
                "denominator": i.denominator,
                "better": i.better,
                "norm": i.norm,
            }
            for i in comparison.indicators
        ],
        "figures": [
            {"period": period, "indicator": key, "numerator": cell.numerator, "denominator": cell.denominator}
            for (period, key), cell in sorted(municipality.cells.items())
        ],
    }


def write_extract(comparison: Comparison, code: str, path: Path) -> Path:
    """Write one municipality's extract (JSON with its checksum) and return the path."""
    body = extract_body(comparison, code)
    document = {**body, "checksum": checksum(body)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def read_extract(path: Path) -> Comparison:
    """One extract as a comparison of one municipality; refuses what cannot be trusted, naming the file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExtractError(f"{path}: not a readable compare extract ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ExtractError(f'{path}: not a bridge compare extract (no "format": "{FORMAT}")')
    found_version = document.get("schema_version")
    if found_version != SCHEMA_VERSION:
        raise ExtractError(
            f"{path}: schema version {found_version!r} is not one this bridge reads (it reads {SCHEMA_VERSION}); "
            "write the extract again with the same bridge version as the merge"
        )
    stated = document.pop("checksum", None)
    if stated != checksum(document):
        raise ExtractError(
            f"{path}: the checksum does not match the contents — the file was changed after it was written; "
            "ask the municipality for a new extract"
        )
    try:
        return _comparison(document)
    except (KeyError, TypeError, ValueError) as exc:
        raise ExtractError(f"{path}: the extract is malformed ({type(exc).__name__}: {exc})") from None


def _comparison(document: dict[str, Any]) -> Comparison:
    municipality = document["municipality"]
    defined = [Indicator(**i) for i in document["indicators"]]
    kinds = {i.id: i.kind for i in defined}
    cells = {}
    for figure in document["figures"]:
        numerator, denominator = figure["numerator"], figure["denominator"]
        persons = [denominator] if kinds[figure["indicator"]] == "mean" else [numerator, denominator]
        if any(isinstance(count, int) and suppressed(count) for count in persons):
            raise ValueError(f"{figure['indicator']} in {figure['period']} shows a count of fewer than 5 persons")
        cells[figure["period"], figure["indicator"]] = Cell(numerator, denominator)
    return Comparison(
        periods=[
            Period(label=p["label"], start=date.fromisoformat(p["start"]), end=date.fromisoformat(p["end"]))
            for p in document["periods"]
        ],
        indicators=defined,
        municipalities=[
            Municipality(municipality["code"], municipality["name"], date.fromisoformat(document["as_of"]), cells)
        ],
        method=Method(**document["method"]),
    )


def merge(paths: Iterable[Path]) -> Comparison:
    """Many municipalities' extracts as one comparison; refuses a municipality twice for one period,
    or extracts made with another method, naming the files."""
    seen: dict[tuple[str, str], Path] = {}
    periods: dict[str, Period] = {}
    defined: dict[str, Indicator] = {}
    by_code: dict[str, Municipality] = {}
    method: tuple[Method, Path] | None = None
    for path in paths:
        extract = read_extract(path)
        if method is None:
            method = (extract.method, path)
        elif extract.method != method[0]:
            raise ExtractError(f"{path}: made with {extract.method}, but {method[1]} with {method[0]}; not comparable")
        (municipality,) = extract.municipalities
        for span in extract.periods:
            key = (municipality.code, span.label)
            if key in seen:
                raise ExtractError(
                    f"{path}: municipality {municipality.code} for period {span.label} is already in {seen[key]}"
                )
            seen[key] = path
            periods.setdefault(span.label, span)
        for indicator in extract.indicators:
            defined.setdefault(indicator.id, indicator)
        if municipality.code in by_code:
            earlier = by_code[municipality.code]
            by_code[municipality.code] = Municipality(
                earlier.code,
                earlier.name,
                max(earlier.as_of, municipality.as_of),
                {**earlier.cells, **municipality.cells},
            )
        else:
            by_code[municipality.code] = municipality
    if method is None:
        raise ConfigError("no extracts to merge: name one or more files")
    return Comparison(
        periods=sorted(periods.values(), key=lambda p: (p.start, p.end)),
        indicators=list(defined.values()),
        municipalities=[by_code[code] for code in sorted(by_code)],
        method=method[0],
    )


__all__ = [
    "CASELOAD_NORMS",
    "CASES_SECTION",
    "FORMAT",
    "NOTIFICATIONS_24H",
    "SCHEMA_VERSION",
    "SCORES",
    "Cell",
    "Comparison",
    "ExtractError",
    "Indicator",
    "Method",
    "Municipality",
    "RawFigures",
    "checksum",
    "compare",
    "extract_body",
    "indicators",
    "merge",
    "protect_figures",
    "read_extract",
    "store_municipalities",
    "write_extract",
]
