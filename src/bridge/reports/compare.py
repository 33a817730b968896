"""The comparison report: municipalities side by side, from protected numerators and denominators.

The same function draws the report over one store (``bridge compare report``) and over merged
extracts (``bridge compare merge``), from a :class:`bridge.services.compare.Comparison` whose
figures are already suppressed, so the two agree figure by figure and neither can show a
count of fewer than five persons. Shares, means and caseloads are computed here from their
numerator and denominator; a share's uncertainty is its 95 % Wilson interval, and a rank is
given as the range of places the intervals allow (``1–3`` when three municipalities cannot
be told apart).
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.model.records import Theme
from bridge.reports import danish
from bridge.reports.charts import Bars, DivergingBars, StackedBars
from bridge.reports.formats import KeyFigure, Report, Table
from bridge.reports.suppression import WITHHELD, Cell
from bridge.services.assurance import upper_error_limit, wilson_interval
from bridge.services.compare import (
    CASELOAD_NORMS,
    CASES_SECTION,
    NOTIFICATIONS_24H,
    SCORES,
    Comparison,
    Indicator,
    Municipality,
)
from bridge.services.compare import Cell as Figure
from bridge.services.labels import municipality_label
from bridge.services.periods import Period

KIND = "compare"
CLASS_COLORS = ("#2e7d32", "#9aa5b1", "#c62828")
_CLASSES = (("improved", "Forbedret (%)"), ("unchanged", "Uændret (%)"), ("worsened", "Forværret (%)"))
SUPPRESSION_NOTE = (
    "Tal for færre end 5 personer er skjult som «<5»; «–» er skjult, så et skjult tal ikke kan regnes ud "
    "af en total; «skjult» er en andel eller et gennemsnit, der hviler på skjulte tal."
)
RANK_NOTE = (
    "Rang: den plads, kommunen kan have, når der tages højde for usikkerheden. To kommuner skilles kun ad, "
    "når deres 95 %-intervaller (Wilson) ikke overlapper; «1–3» betyder, at kommunen kan ligge på plads 1 til 3."
)


def _label(municipality: Municipality) -> str:
    return municipality_label(municipality.code, municipality.name)


def _value(figure: Figure | None, indicator: Indicator) -> Cell | None:
    """The figure as a table cell: per cent, mean or ratio rounded for reading; None when there are no cases."""
    if figure is None:
        return None
    value = figure.value(indicator.kind)
    if isinstance(value, float):
        return round(value, 2 if indicator.kind == "mean" else 1)
    return value


def _rows(comparison: Comparison) -> list[tuple[Period, Municipality]]:
    return [
        (p, m) for p in comparison.periods for m in comparison.municipalities if any(k[0] == p.label for k in m.cells)
    ]


def _lead(comparison: Comparison, period: Period, municipality: Municipality) -> list[Cell | None]:
    return [period.label, _label(municipality)] if len(comparison.periods) > 1 else [_label(municipality)]


def _lead_columns(comparison: Comparison) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if len(comparison.periods) > 1:
        return ("Periode", "Kommune"), ("period", "municipality")
    return ("Kommune",), ("municipality",)


def _label_columns(comparison: Comparison) -> str | tuple[str, ...]:
    return ("Periode", "Kommune") if len(comparison.periods) > 1 else "Kommune"


def _interval(figure: Figure | None) -> tuple[float, float] | None:
    if figure is None or not isinstance(figure.numerator, int) or not isinstance(figure.denominator, int):
        return None
    if figure.denominator == 0:
        return None
    low, high = wilson_interval(figure.numerator, figure.denominator)
    return 100 * low, 100 * high


def rank_ranges(intervals: Sequence[tuple[float, float] | None], better: str | None) -> list[str | None]:
    """For each share's interval: the places it may take, ``"2"`` or ``"1–3"`` (None: not ranked).

    One is surely ahead of another when its interval lies wholly on the better side of the other's.
    """
    ranked = [i for i in intervals if i is not None]
    found: list[str | None] = []
    for own in intervals:
        if own is None or better is None:
            found.append(None)
            continue
        low, high = own
        if better == "high":
            ahead = sum(1 for o in ranked if o[0] > high)
            behind = sum(1 for o in ranked if o[1] < low)
        else:
            ahead = sum(1 for o in ranked if o[1] < low)
            behind = sum(1 for o in ranked if o[0] > high)
        best, worst = 1 + ahead, len(ranked) - behind
        found.append(str(best) if best == worst else f"{best}–{worst}")
    return found


def _share_table(comparison: Comparison, indicator: Indicator) -> Table:
    """A share per municipality with its numerator, denominator, interval and rank."""
    lead, lead_keys = _lead_columns(comparison)
    audit = indicator.id == "audit_errors"
    rows: list[list[Cell | None]] = []
    by_period: dict[str, list[int]] = {}
    intervals: list[tuple[float, float] | None] = []
    for period, municipality in _rows(comparison):
        figure = municipality.cells.get((period.label, indicator.id))
        interval = _interval(figure)
        intervals.append(interval)
        by_period.setdefault(period.label, []).append(len(rows))
        row: list[Cell | None] = [
            *_lead(comparison, period, municipality),
            None if figure is None else figure.numerator,
            None if figure is None else figure.denominator,
            _value(figure, indicator),
            None if interval is None else round(interval[0], 1),
            None if interval is None else round(interval[1], 1),
        ]
        if audit:
            row.append(_upper_limit(figure))
        rows.append(row)
    ranks: list[str | None] = [None] * len(rows)
    for indexes in by_period.values():
        for index, rank in zip(indexes, rank_ranges([intervals[i] for i in indexes], indicator.better), strict=True):
            ranks[index] = rank
    for row, rank in zip(rows, ranks, strict=True):
        row.append(rank)
    value = "Fejlandel (%)" if audit else "Andel (%)"
    extra: tuple[str, ...] = ("Øvre fejlgrænse (%)",) if audit else ()
    extra_keys: tuple[str, ...] = ("upper_limit_pct",) if audit else ()
    better = {"high": "Højere er bedre.", "low": "Lavere er bedre."}.get(indicator.better or "", "")
    return Table(
        title=indicator.label,
        columns=(*lead, "Tæller", "Nævner", value, "95 %-interval fra (%)", "95 %-interval til (%)", *extra, "Rang"),
        keys=(
            *lead_keys,
            "numerator",
            "denominator",
            "share_pct",
            "interval_low_pct",
            "interval_high_pct",
            *extra_keys,
            "rank",
        ),
        rows=rows,
        section=indicator.section,
        charts=(
            Bars(
                label=_label_columns(comparison),
                value=value,
                color="#c62828" if indicator.better == "low" else "#1f6fb2",
                interval=("95 %-interval fra (%)", "95 %-interval til (%)"),
            ),
        ),
        note=f"Tæller: {indicator.numerator}. Nævner: {indicator.denominator}. {better}"
        + (" Øvre fejlgrænse: ensidet Clopper–Pearson, 95 %." if audit else ""),
    )


def _upper_limit(figure: Figure | None) -> Cell | None:
    if figure is None or figure.denominator in (None, 0):
        return None
    if not isinstance(figure.numerator, int) or not isinstance(figure.denominator, int):
        return WITHHELD
    return round(100 * upper_error_limit(figure.numerator, figure.denominator), 1)


def _cases_table(comparison: Comparison) -> Table:
    """Children with an open case, and open cases per caseworker in each target group against its norm."""
    lead, lead_keys = _lead_columns(comparison)
    defined = {i.id: i for i in comparison.indicators}
    groups = [defined[f"caseload_{g}"] for g in CASELOAD_NORMS if f"caseload_{g}" in defined]
    rows: list[list[Cell | None]] = []
    for period, municipality in _rows(comparison):
        children = municipality.cells.get((period.label, "children_open"))
        row: list[Cell | None] = [
            *_lead(comparison, period, municipality),
            None if children is None else children.numerator,
        ]
        for indicator in groups:
            figure = municipality.cells.get((period.label, indicator.id))
            row += [
                None if figure is None else figure.numerator,
                None if figure is None else figure.denominator,
                _value(figure, indicator),
            ]
        rows.append(row)
    columns, keys, charts = [*lead, "Børn med åben sag"], [*lead_keys, "children_open"], []
    values = [v for r in rows for v in r if isinstance(v, float)]
    for indicator in groups:
        group = indicator.id.removeprefix("caseload_")
        value = f"Sager pr. sagsbehandler, {group}"
        columns += [f"Åbne sager, {group}", f"Sagsbehandlere, {group}", value]
        keys += [f"open_cases_{group}", f"caseworkers_{group}", f"cases_per_caseworker_{group}"]
        norm = indicator.norm or 0.0
        top = max([norm * 1.5, *values])
        charts.append(
            Bars(
                label=_label_columns(comparison),
                value=value,
                maximum=float(int(top / 10 + 1) * 10),
                percent=False,
                reference=norm,
                reference_label=f"norm {danish.number(norm)} ({group})",
                persons="børn eller sagsbehandlere",
            )
        )
    norms = " og ".join(f"{danish.number(i.norm or 0)} ({i.id.removeprefix('caseload_')})" for i in groups)
    return Table(
        title="Børn og sager pr. sagsbehandler",
        columns=columns,
        keys=keys,
        rows=rows,
        section=CASES_SECTION,
        charts=tuple(charts),
        note="Børn og sager åbne på periodens sidste dag; sagsbehandlere med mindst én af målgruppens åbne sager, "
        f"og en sag uden sagsbehandler tæller med i sagerne. Den stiplede linje er normen: {norms} sager.",
    )


def _progression_table(comparison: Comparison, theme: Theme) -> Table:
    lead, lead_keys = _lead_columns(comparison)
    defined = {i.id: i for i in comparison.indicators}
    rows: list[list[Cell | None]] = []
    for period, municipality in _rows(comparison):
        cells = municipality.cells
        figures = [cells.get((period.label, f"{klass}_{theme.value}")) for klass, _ in _CLASSES]
        mean_id = f"mean_change_{theme.value}"
        first = figures[0]
        rows.append(
            [
                *_lead(comparison, period, municipality),
                None if first is None else first.denominator,
                *(
                    _value(f, defined[f"{klass}_{theme.value}"])
                    for f, (klass, _) in zip(figures, _CLASSES, strict=True)
                ),
                _value(cells.get((period.label, mean_id)), defined[mean_id]),
            ]
        )
    labels = _label_columns(comparison)
    return Table(
        title=f"Udvikling: {theme.label}",
        columns=(*lead, "Børn", *(label for _, label in _CLASSES), "Gns. ændring"),
        keys=(*lead_keys, "children", "improved_pct", "unchanged_pct", "worsened_pct", "mean_change"),
        rows=rows,
        section=SCORES,
        charts=(
            StackedBars(label=labels, parts=tuple(label for _, label in _CLASSES), colors=CLASS_COLORS),
            DivergingBars(label=labels, value="Gns. ændring", unit="trin"),
        ),
        note="Børn med mindst to scorede dage på temaet i perioden. Pålidelig ændring med samme mål for alle "
        "kommuner (SD = 1, r = 0,8): en ændring på 2 trin. Gns. ændring < 0 er en forbedring (mod i trivsel).",
    )


def _overview(comparison: Comparison) -> Table:
    """Every indicator in a row, the municipalities side by side."""
    municipalities = comparison.municipalities
    with_period = len(comparison.periods) > 1
    rows: list[list[Cell | None]] = []
    for period in comparison.periods:
        for indicator in comparison.indicators:
            if indicator.kind != "share" or indicator.id.startswith("unchanged_"):
                continue
            values = [_value(m.cells.get((period.label, indicator.id)), indicator) for m in municipalities]
            if all(v is None for v in values):
                continue
            rows.append([*([period.label] if with_period else []), f"{indicator.label} (%)", *values])
    lead: tuple[str, ...] = ("Periode", "Indikator") if with_period else ("Indikator",)
    lead_keys: tuple[str, ...] = ("period", "indicator") if with_period else ("indicator",)
    return Table(
        title="Kommunerne side om side",
        columns=(*lead, *(_label(m) for m in municipalities)),
        keys=(*lead_keys, *(f"m{m.code}" for m in municipalities)),
        rows=rows,
        section="Overblik",
        note="Andele i procent; tæller, nævner, usikkerhed og rang står i tabellerne nedenfor.",
    )


def _sum(counts: Sequence[int | str | None]) -> int | str | None:
    """A sum over municipalities; withheld when a part of it is hidden."""
    found = [c for c in counts if c is not None]
    if not found:
        return None
    numbers = [c for c in found if isinstance(c, int)]
    return sum(numbers) if len(numbers) == len(found) else WITHHELD


def _key_figures(comparison: Comparison) -> list[KeyFigure]:
    period = comparison.periods[-1]
    where = f" ({period.label})" if len(comparison.periods) > 1 else ""

    def figures(indicator_id: str) -> list[Figure | None]:
        return [m.cells.get((period.label, indicator_id)) for m in comparison.municipalities]

    def overall(indicator_id: str) -> Cell | None:
        parts = [f for f in figures(indicator_id) if f is not None]
        num, den = _sum([f.numerator for f in parts]), _sum([f.denominator for f in parts])
        if num is None or den is None:
            return None
        if isinstance(num, str) or isinstance(den, str):
            return WITHHELD
        return round(100 * num / den, 1) if den else None

    found = [
        KeyFigure("Kommuner", len(comparison.municipalities)),
        KeyFigure(f"Børn med åben sag{where}", _sum([f.numerator for f in figures("children_open") if f is not None])),
    ]
    for indicator_id, label in (
        (NOTIFICATIONS_24H, "Underretninger vurderet inden for 24 timer"),
        ("coverage", "Åbne sager scoret seneste 6 mdr."),
        ("audit_errors", "Sager med fejl i ledelsestilsyn"),
    ):
        value = overall(indicator_id)
        if value is not None:
            found.append(KeyFigure(f"{label}{where}", value, percent=True, note="alle kommuner under ét"))
    return found


def comparison_report(comparison: Comparison) -> Report:
    """``bridge compare report`` and ``bridge compare merge``: key figures, the overview, then each indicator."""
    defined = {i.id: i for i in comparison.indicators}
    tables = [_overview(comparison)]
    tables.append(_cases_table(comparison))
    if "coverage" in defined:
        tables.append(_share_table(comparison, defined["coverage"]))
    tables += [_progression_table(comparison, theme) for theme in Theme]
    # The notifications first: a child at risk waits on them. Then the other requirements, then the audit.
    shares = [i for i in comparison.indicators if i.kind == "share" and i.section != SCORES]
    shares.sort(key=lambda i: i.id != NOTIFICATIONS_24H)
    tables += [_share_table(comparison, i) for i in shares]
    spans = "; ".join(f"{p.label}: {danish.period(p.start, p.end)}" for p in comparison.periods)
    days = sorted({m.as_of for m in comparison.municipalities})
    return Report(
        kind=KIND,
        title="Kommuner side om side",
        tables=tables,
        period=spans,
        key_figures=_key_figures(comparison) if comparison.periods else [],
        notes=(
            "Hver indikator er tæller / nævner; et samlet tal for flere kommuner regnes af deres tællere og nævnere, "
            "aldrig som et gennemsnit af andele.",
            "Opgjort pr. " + ", ".join(danish.day(d) for d in days) + "; åbne sager tælles på periodens sidste dag.",
            RANK_NOTE,
            SUPPRESSION_NOTE,
        ),
    )


__all__ = ["KIND", "comparison_report", "rank_ranges"]
