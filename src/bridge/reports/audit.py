"""Reports of the ledelsestilsyn: the barometer over all cases, and a sample's results.

Both are for the leader inside the municipality: failing cases are listed by case number (never
by person key or CPR), so the leader can find them in the case system. Key figures come first,
then the detail by area in Børnesagsbarometret's order; shares are of the cases that were due
(pass or fail), and the report says how many were not yet due.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date

from bridge.law import Area, Outcome
from bridge.reports.charts import Bars, Lines, Scale
from bridge.reports.formats import Report, Table
from bridge.services.assurance import conclude
from bridge.services.audit import audit_rules, timelines
from bridge.services.barometer import ALL, Barometer, Indicator
from bridge.services.findings import Finding, FollowUpStatus, current_findings, follow_up_status
from bridge.services.sampling import get_sample, list_samples, sampled_cases
from bridge.store import Store

GROUP_TITLES = {"all": "Alle sager", "municipality": "Kommune", "team": "Team", "caseworker": "Sagsbehandler"}
SHARE_NOTE = (
    "Andel opfyldt = opfyldte / (opfyldte + ikke opfyldte) sager med en frist i perioden. "
    "Sager, hvor fristen endnu ikke er nået, eller kravet ikke er relevant, indgår ikke i andelen."
)
SHARE_SCALE = Scale(0, 100, better="high", low_label="0 % opfyldt", high_label="100 % opfyldt", step=20)
ERROR_SCALE = Scale(0, 100, better="low", low_label="ingen fejl", high_label="alle med fejl", step=20)
TREND_COLORS = ("#1f6fb2", "#2e7d32", "#c62828", "#8e44ad", "#e67e22", "#16a085", "#7f8c8d", "#d35400")


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _share(indicator: Indicator) -> float | str:
    share = indicator.share
    return "–" if share is None else round(100 * share, 1)


def barometer_report(result: Barometer) -> Report:
    """``bridge audit barometer``: key figures, each area's indicators per period, the trend, failing cases."""
    latest = result.periods[-1].label
    tables: list[Table] = [_key_figures(result, latest)]
    for area in Area:
        rows = [i for i in result.rows(period=latest) if i.area is area]
        if not rows:
            continue
        section = area.label
        tables.append(_area_table(rows, result.by, latest, section))
        if len(result.periods) > 1:
            tables.append(_trend_table(result, area, section))
    tables.append(_failing_table(result, latest))
    return Report(
        kind="audit-barometer",
        title=f"Børnesagsbarometer pr. {result.as_of.strftime('%d.%m.%Y')}",
        tables=tables,
        notes=(
            f"Alle {result.cases} levende sager er gennemgået automatisk; ikke en stikprøve.",
            SHARE_NOTE,
            "Områderne følger Ankestyrelsens Børnesagsbarometret; hjemlen for hvert krav står i tabellerne.",
        ),
    )


def _key_figures(result: Barometer, latest: str) -> Table:
    rows = []
    for area in Area:
        passed = failed = 0
        for i in result.rows(period=latest, group=ALL if result.by == "all" else None):
            if i.area is area:
                passed += i.passed
                failed += i.failed
        if passed + failed:
            rows.append([area.label, passed + failed, failed, _pct(passed, passed + failed)])
    return Table(
        title=f"Nøgletal {latest}: andel opfyldte krav pr. område",
        columns=("Område", "Vurderede krav", "Ikke opfyldt", "Andel opfyldt (%)"),
        keys=("area", "judged", "failed", "passed_pct"),
        rows=rows,
        section="Nøgletal",
        charts=(Bars(label="Område", value="Andel opfyldt (%)"),),
        note="Krav (en sag × et krav) med frist i perioden, summeret over områdets indikatorer.",
    )


def _area_table(rows: Sequence[Indicator], by: str, period: str, section: str) -> Table:
    rules = {r.id: r for r in audit_rules()}
    with_group = by != "all"
    lead = ("Indikator", GROUP_TITLES[by]) if with_group else ("Indikator",)
    body = []
    for i in rows:
        rule = rules.get(i.rule)
        sources = ", ".join(str(c) for c in rule.sources) if rule else ""
        first = [i.title, i.group] if with_group else [i.title]
        body.append([*first, sources, i.passed, i.failed, _share(i), i.not_yet_due])
    return Table(
        title=f"{section} {period}",
        columns=(*lead, "Hjemmel", "Opfyldt", "Ikke opfyldt", "Andel opfyldt (%)", "Ikke forfaldne"),
        keys=(
            *(("indicator", "group") if with_group else ("indicator",)),
            "sources",
            "passed",
            "failed",
            "passed_pct",
            "not_yet_due",
        ),
        rows=body,
        section=section,
        charts=() if with_group else (Bars(label="Indikator", value="Andel opfyldt (%)"),),
    )


def _trend_table(result: Barometer, area: Area, section: str) -> Table:
    group = ALL if result.by == "all" else None
    titles: dict[str, str] = {}
    shares: dict[tuple[str, str], tuple[int, int]] = defaultdict(lambda: (0, 0))
    for i in result.indicators:
        if i.area is area and (group is None or i.group == group):
            titles[i.rule] = i.title
            passed, judged = shares[(i.period, i.rule)]
            shares[(i.period, i.rule)] = (passed + i.passed, judged + i.judged)
    rules = list(titles)
    rows = []
    for period in result.periods:
        cells: list[float | str] = []
        for rule in rules:
            passed, judged = shares[(period.label, rule)]
            share = _pct(passed, judged)
            cells.append("–" if share is None else share)
        rows.append([period.label, *cells])
    series = [titles[r] for r in rules]
    return Table(
        title=f"Udvikling: {section.lower()}",
        columns=("Periode", *series),
        keys=("period", *rules),
        rows=rows,
        section=section,
        charts=(Lines(x="Periode", series=series, colors=TREND_COLORS[: len(series)], scale=SHARE_SCALE),),
        note="Andel opfyldt pr. periode; «–» = ingen sager med frist i perioden.",
    )


def _failing_table(result: Barometer, latest: str) -> Table:
    rows = []
    for i in result.rows(period=latest):
        for number in i.failing:
            rows.append([i.area.label, i.title, i.group, number])
    return Table(
        title=f"Sager med ikke opfyldte krav {latest}",
        columns=("Område", "Indikator", GROUP_TITLES[result.by], "Sagsnummer"),
        keys=("area", "indicator", "group", "case_number"),
        rows=rows,
        section="Sager til opfølgning",
        note="Sagsnummeret findes i fagsystemet; rapporten indeholder ingen personoplysninger.",
    )


# -- a sample's results ----------------------------------------------------------------------


def sample_report(store: Store, sample_id: int, *, confidence: float = 0.95, today: date | None = None) -> Report:
    """``bridge audit report SAMPLE_ID``: what the sample shows, error rates, refusion, follow-up, the trend."""
    sample = get_sample(store, sample_id)
    today = today or date.today()
    findings = current_findings(store, sample_id)
    drawn = sampled_cases(store, sample_id)
    teams = {info.key: info.team for info, _ in timelines(store, case_ids=[c.case_id for c in drawn if c.case_id])}
    errors_by_case: dict[str, int] = Counter(f.case_key for f in findings if f.outcome is Outcome.failed)
    n = len(drawn)
    erroneous = len(errors_by_case)
    tolerable = float(str(sample.parameters.get("tolerable", 0.05)))
    conclusion = conclude(erroneous, n, confidence=confidence, tolerable=tolerable) if n else None
    status = follow_up_status(findings, today)
    unanswered = sum(1 for f in findings if not f.automatic and f.outcome is None)
    key_rows: list[list[object]] = [
        ["Sager i stikprøven", n],
        ["Sager i populationen", sample.population_size],
        ["Sager med mindst én fejl", erroneous],
        ["Fejlandel i stikprøven (%)", _pct(erroneous, n)],
        ["Øvre fejlgrænse (%)", round(100 * conclusion.upper_limit, 2) if conclusion else None],
        ["Fejl med refusionsmæssig betydning", sum(1 for f in findings if f.refusion and f.outcome is Outcome.failed)],
        ["Fejl fulgt op til tiden (%)", None if status.share_in_time is None else round(100 * status.share_in_time, 1)],
        ["Ubesvarede vurderingspunkter", unanswered],
    ]
    tables = [
        Table(
            title=f"Nøgletal: {sample.label}",
            columns=("Nøgletal", "Værdi"),
            keys=("figure", "value"),
            rows=key_rows,
            section="Nøgletal",
            note=conclusion.statement() if conclusion else "",
        ),
        _per_rule(findings),
        _per_team(findings, teams),
        _follow_up(status),
        _refusion(findings),
        _errors(findings),
        _sample_trend(store),
    ]
    return Report(
        kind="audit-sample",
        title=f"Ledelsestilsyn: {sample.label}",
        tables=tables,
        notes=(
            f"Udtrukket {sample.drawn_at:%d.%m.%Y} af {sample.drawn_by}: strategi {sample.strategy}, "
            f"frø {sample.seed}, gennemgangsperiode {sample.window_start:%d.%m.%Y}–{sample.as_of:%d.%m.%Y}.",
            f"Populationens fingeraftryk {sample.fingerprint[:16]}… — `bridge sample verify {sample.id}` "
            "genberegner udtrækket.",
        ),
    )


def _per_rule(findings: Sequence[Finding]) -> Table:
    rows = []
    waiting = []
    for rule in audit_rules():
        mine = [f for f in findings if f.rule == rule.id]
        failed = sum(1 for f in mine if f.outcome is Outcome.failed)
        judged = sum(1 for f in mine if f.outcome in (Outcome.passed, Outcome.failed))
        if judged:
            kind = "automatisk" if rule.automatic else "vurdering"
            rows.append([rule.area.label, rule.title, kind, judged, failed, _pct(failed, judged)])
        elif mine:
            waiting.append(rule.title)
    note = "Kun krav, der er vurderet (opfyldt eller ikke opfyldt) i mindst én sag."
    if waiting:
        note += f" Endnu uden svar: {', '.join(waiting)}."
    return Table(
        title="Fejlandel pr. krav",
        columns=("Område", "Krav", "Type", "Vurderet", "Ikke opfyldt", "Fejlandel (%)"),
        keys=("area", "rule", "kind", "judged", "failed", "error_pct"),
        rows=rows,
        section="Fejl pr. krav og team",
        charts=(Bars(label="Krav", value="Fejlandel (%)", color="#c62828"),),
        note=note,
    )


def _per_team(findings: Sequence[Finding], teams: dict[str, str]) -> Table:
    cases: dict[str, set[str]] = defaultdict(set)
    wrong: dict[str, set[str]] = defaultdict(set)
    for f in findings:
        team = teams.get(f.case_key, "(ukendt)")
        cases[team].add(f.case_key)
        if f.outcome is Outcome.failed:
            wrong[team].add(f.case_key)
    rows = [
        [team, len(keys), len(wrong[team]), _pct(len(wrong[team]), len(keys))] for team, keys in sorted(cases.items())
    ]
    return Table(
        title="Sager med fejl pr. team",
        columns=("Team", "Sager", "Med fejl", "Andel med fejl (%)"),
        keys=("team", "cases", "with_errors", "error_pct"),
        rows=rows,
        section="Fejl pr. krav og team",
    )


def _follow_up(status: FollowUpStatus) -> Table:
    return Table(
        title="Opfølgning på fejl",
        columns=("Fejl", "Rettet til tiden", "Rettet for sent", "Overskredet", "Frist ikke nået"),
        keys=("errors", "closed_in_time", "closed_late", "overdue", "pending"),
        rows=[[status.errors, status.closed_in_time, status.closed_late, status.overdue, status.pending]],
        section="Opfølgning",
        note=(
            "En fejl er rettet, når det manglende er registreret (næste synkronisering), "
            "eller lederen har svaret «Opfyldt»."
        ),
    )


def _rule_titles() -> dict[str, str]:
    """A leader reads a requirement's Danish title; a rule no longer installed keeps its id."""
    return {r.id: r.title for r in audit_rules()}


def _refusion(findings: Sequence[Finding]) -> Table:
    titles = _rule_titles()
    rows = [
        [f.case_number, titles.get(f.rule, f.rule), f.note]
        for f in findings
        if f.refusion and f.outcome is Outcome.failed
    ]
    return Table(
        title="Fejl med refusionsmæssig betydning",
        columns=("Sagsnummer", "Krav", "Bemærkning"),
        keys=("case_number", "rule", "note"),
        rows=rows,
        section="Opfølgning",
    )


def _errors(findings: Sequence[Finding]) -> Table:
    titles = _rule_titles()
    rows = [
        [f.case_number, titles.get(f.rule, f.rule), f.evidence, f.follow_up_due, f.closed_on, f.recorded_by]
        for f in findings
        if f.outcome is Outcome.failed
    ]
    return Table(
        title="Alle fejl",
        columns=("Sagsnummer", "Krav", "Dokumentation", "Opfølgningsfrist", "Rettet", "Registreret af"),
        keys=("case_number", "rule", "evidence", "follow_up_due", "closed_on", "recorded_by"),
        rows=rows,
        section="Detaljer",
    )


def _sample_trend(store: Store) -> Table:
    rows = []
    for sample in list_samples(store):
        findings = current_findings(store, sample.id)
        if not findings:
            continue
        wrong = len({f.case_key for f in findings if f.outcome is Outcome.failed})
        rows.append([sample.label, sample.as_of, sample.sample_size, wrong, _pct(wrong, sample.sample_size)])
    return Table(
        title="Udvikling over tilsyn",
        columns=("Tilsyn", "Dato", "Sager", "Med fejl", "Andel med fejl (%)"),
        keys=("sample", "as_of", "cases", "with_errors", "error_pct"),
        rows=rows,
        section="Udvikling",
        charts=(Lines(x="Tilsyn", series=("Andel med fejl (%)",), colors=("#c62828",), scale=ERROR_SCALE),)
        if len(rows) > 1
        else (),
    )


__all__ = ["barometer_report", "sample_report"]
