"""Reports of the scoring service, with Danish labels and small numbers suppressed.

Aggregate reports (cohorts, transitions, coverage, the overview) hold no person key and no
CPR number, and every cell describing fewer than five children is suppressed here, before any
format sees it (see :mod:`bridge.reports.suppression`). The child report is about one child,
for the caseworker, and shows that child's person key and scores unsuppressed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

from bridge.model.records import Theme
from bridge.reports import danish
from bridge.reports.charts import Bars, DivergingBars, Heatmap, Lines, StackedBars
from bridge.reports.formats import KeyFigure, Report, ReportFormat, Table
from bridge.reports.suppression import (
    HIDDEN,
    SUPPRESSED,
    WITHHELD,
    Cell,
    count_cell,
    protect,
    protect_columns,
    share_cell,
    suppressed,
)
from bridge.services import scoring
from bridge.services.cases import CaseSummary
from bridge.services.labels import municipality_label
from bridge.services.scoring import (
    ChangeClass,
    ChildScores,
    CohortRow,
    CohortSummary,
    Coverage,
    GroupBy,
    Progression,
    ReliableChange,
    Threshold,
    Transition,
)
from bridge.store import Store

CLASS_LABELS = {
    ChangeClass.improved: "Forbedret",
    ChangeClass.unchanged: "Uændret",
    ChangeClass.worsened: "Forværret",
}
CLASS_COLORS = ("#2e7d32", "#9aa5b1", "#c62828")
GROUP_TITLES: dict[GroupBy, str] = {
    "all": "Alle børn",
    "municipality": "Kommune",
    "target_group": "Målgruppe",
    "paragraph": "Paragraf (foranstaltning)",
}
WHOLE_HISTORY = "Hele perioden"
SCALE_NOTE = "Trivselslinealen: 1 = i trivsel … 5 = truet trivsel; et fald er en forbedring."
SUPPRESSION_NOTE = (
    "Celler med færre end 5 børn er skjult som «<5»; «–» er skjult, så en skjult celle ikke kan regnes ud."
)
NOT_ASSESSED = "ikke vurderet"
END_LABELS = ("i trivsel", "truet trivsel")

_SHARES = ("Forbedret (%)", "Uændret (%)", "Forværret (%)")
_COHORT_COLUMNS = ("Børn", "Gns. ændring", *_SHARES, "Heraf bevægelse (%)")
_COHORT_KEYS = ("children", "mean_change", "improved_pct", "unchanged_pct", "worsened_pct", "movement_pct")


def _rc_note(limits: Sequence[Threshold]) -> str:
    r = limits[0].r if limits else scoring.DEFAULT_RELIABILITY
    return (
        f"Pålidelig ændring (Jacobson–Truax): |ændring| ≥ 1,96·√2·SD·√(1−r), r = {r:g}, SD = spredningen af "
        "børnenes første score (baseline) på temaet. Mindre ændringer tælles som uændret; "
        "en ændring under grænsen kaldes bevægelse."
    )


def threshold_table(limits: Sequence[Threshold], *, section: str = "") -> Table:
    """The RC threshold of each theme; an SD over fewer than five children is suppressed."""
    rows = []
    for t in limits:
        small = suppressed(t.n)
        sd: Cell | None = None if t.sd is None else (WITHHELD if small else round(t.sd, 3))
        value: Cell | None = None if t.value is None else (WITHHELD if small else round(t.value, 3))
        rows.append([t.theme.label, count_cell(t.n), sd, t.r, value])
    return Table(
        title="Grænse for pålidelig ændring pr. tema",
        columns=("Tema", "Børn med baseline", "SD (baseline)", "r", "RC-grænse"),
        keys=("theme", "children_with_baseline", "sd", "r", "rc_threshold"),
        rows=rows,
        section=section,
        note="Uden SD (færre end 2 børn med baseline) kan ingen ændring vises som pålidelig.",
    )


def _cohort_cells(row: CohortRow) -> list[Cell | None]:
    if suppressed(row.n):
        withheld: list[Cell | None] = [WITHHELD] * (len(_COHORT_COLUMNS) - 1)
        return [SUPPRESSED, *withheld]
    (improved, unchanged, worsened), _ = protect((row.improved, row.unchanged, row.worsened), row.n)
    movement: int | str = count_cell(row.movement)
    if unchanged == HIDDEN and not isinstance(movement, str):
        movement = HIDDEN  # the movers are some of the unchanged and would bound them
    mean = row.mean_change
    return [
        row.n,
        None if mean is None else round(mean, 2),
        share_cell(improved, row.improved, row.n),
        share_cell(unchanged, row.unchanged, row.n),
        share_cell(worsened, row.worsened, row.n),
        share_cell(movement, row.movement, row.n),
    ]


def _cohort_table(
    summaries: Sequence[CohortSummary], rows: list[tuple[CohortSummary, CohortRow]], label: tuple[str, str, str]
) -> Table:
    """Rows of (summary, row); a period column only when a period was asked for."""
    column, key, title = label
    with_period = len(summaries) > 1 or summaries[0].period is not None
    lead: tuple[str, ...] = ("Periode", column) if with_period else (column,)
    lead_keys: tuple[str, ...] = ("period", key) if with_period else (key,)

    def first_cells(summary: CohortSummary, row: CohortRow) -> list[Cell | None]:
        name = row.theme.label if key == "theme" else row.group_label
        period = summary.period.label if summary.period else WHOLE_HISTORY
        return [period, name] if with_period else [name]

    labels = lead if len(summaries) > 1 else (column,)
    return Table(
        title=title,
        columns=(*lead, *_COHORT_COLUMNS),
        keys=(*lead_keys, *_COHORT_KEYS),
        rows=[[*first_cells(s, r), *_cohort_cells(r)] for s, r in rows],
        charts=(
            StackedBars(label=labels, parts=_SHARES, colors=CLASS_COLORS),
            DivergingBars(label=labels, value="Gns. ændring", unit="trin"),
        ),
        note="Børn med mindst to scorede dage på temaet. Gns. ændring < 0 er en forbedring (mod i trivsel).",
    )


def cohort_tables(summaries: Sequence[CohortSummary], *, section: str = "") -> list[Table]:
    """Progression per theme for ``by="all"`` (one table); per group, one table per theme otherwise."""
    if not summaries:
        return []
    by = summaries[0].by
    if by == "all":
        everything = [(s, r) for s in summaries for r in s.rows]
        title = "Udvikling fra første til seneste score pr. tema"
        return [replace(_cohort_table(summaries, everything, ("Tema", "theme", title)), section=section)]
    tables = []
    for theme in Theme:
        rows = [(s, r) for s in summaries for r in s.rows if r.theme is theme]
        if rows:
            label = (GROUP_TITLES[by], "group", f"{GROUP_TITLES[by]}: {theme.label}")
            tables.append(replace(_cohort_table(summaries, rows, label), section=section))
    return tables


def transition_table(transition: Transition, *, period: str = "", section: str = "") -> Table:
    """The 5×5 before/after table; counts of 1–4 children are suppressed."""
    n = transition.n
    flat = [count for row in transition.counts for count in row]
    cells, total = protect(flat, n)
    rows = [[before + 1, *cells[before * 5 : before * 5 + 5]] for before in range(5)]
    where = f" ({period})" if period else ""
    return Table(
        title=f"Før/efter{where}: {transition.theme.label}",
        columns=("Første score", "1", "2", "3", "4", "5"),
        keys=("baseline", "latest_1", "latest_2", "latest_3", "latest_4", "latest_5"),
        rows=rows,
        section=section,
        charts=(Heatmap(row_axis="Første score", column_axis="Seneste score", end_labels=END_LABELS),),
        note=f"Rækker: første score; kolonner: seneste score. Børn i alt: {total}.",
    )


def _share_of(part_cell: int | str, part: int, base_cell: int | str, base: int) -> Cell:
    """A share is hidden with its count, and with its base (it would reveal the one from the other)."""
    if isinstance(base_cell, str):
        return WITHHELD
    return share_cell(part_cell, part, base)


def coverage_table(result: Coverage, *, section: str = "") -> Table:
    """Open cases scored in the window per municipality, with a protected total row."""
    counts = [[r.open_cases, r.scored_recently, r.never_scored] for r in result.rows]
    total = result.total
    rows_cells, total_cells = protect_columns(counts, [total.open_cases, total.scored_recently, total.never_scored])
    rows: list[list[Cell]] = []
    for row, cells in zip([*result.rows, total], [*rows_cells, total_cells], strict=True):
        open_cell, recent_cell, never_cell = cells
        label = row.name if row is total else municipality_label(row.municipality, row.name)
        rows.append(
            [
                label,
                open_cell,
                recent_cell,
                _share_of(recent_cell, row.scored_recently, open_cell, row.open_cases),
                never_cell,
                _share_of(never_cell, row.never_scored, open_cell, row.open_cases),
            ]
        )
    return Table(
        title=f"Dækning: åbne sager scoret {danish.period(result.since, result.as_of)}",
        columns=(
            "Kommune",
            "Åbne sager",
            f"Scoret seneste {result.months} mdr.",
            "Andel scoret (%)",
            "Aldrig scoret",
            "Andel aldrig scoret (%)",
        ),
        keys=(
            "municipality",
            "open_cases",
            "scored_recently",
            "scored_recently_pct",
            "never_scored",
            "never_scored_pct",
        ),
        rows=rows,
        section=section,
        charts=(Bars(label="Kommune", value="Andel scoret (%)"),),
        note="Åbne sager på opgørelsesdagen. «Ikke vurderet» tæller ikke som en score.",
    )


def progression_figures(summary: CohortSummary, *, label: str = "") -> list[KeyFigure]:
    """Key figures over every child and theme of ``summary``: courses followed and shares by class."""
    n = sum(r.n for r in summary.rows)
    counts = [sum(getattr(r, name) for r in summary.rows) for name in ("improved", "unchanged", "worsened")]
    cells, _ = protect(counts, n)
    where = f" ({label})" if label else ""
    figures = [
        KeyFigure(
            f"Forløb fulgt{where}",
            count_cell(n),
            note="Et forløb er ét barns udvikling på ét tema fra første til seneste score.",
        )
    ]
    for klass, cell, count in zip(ChangeClass, cells, counts, strict=True):
        figures.append(KeyFigure(f"{CLASS_LABELS[klass]}{where}", share_cell(cell, count, n), percent=True))
    return figures


def coverage_figures(result: Coverage) -> list[KeyFigure]:
    """Open cases and the share scored in the window, for the whole report."""
    total = result.total
    open_cell = count_cell(total.open_cases)
    recent = count_cell(total.scored_recently)
    return [
        KeyFigure(f"Åbne sager pr. {danish.day(result.as_of)}", open_cell),
        KeyFigure(
            f"Åbne sager scoret seneste {result.months} mdr.",
            _share_of(recent, total.scored_recently, open_cell, total.open_cases),
            percent=True,
        ),
    ]


def _period_text(summaries: Sequence[CohortSummary]) -> str:
    spans = [s.period for s in summaries if s.period is not None]
    if not spans:
        return "Alle scoringer i sagerne (hele perioden)"
    return "; ".join(f"{p.label}: {danish.period(p.start, p.end)}" for p in spans)


def cohort_report(summaries: Sequence[CohortSummary]) -> Report:
    """``bridge scores cohort``: the groups' progression, the transitions and the thresholds."""
    by = summaries[0].by if summaries else "all"
    tables = cohort_tables(summaries, section=f"Sammenligning: {GROUP_TITLES[by].lower()}")
    for summary in summaries:
        label = summary.period.label if summary.period else ""
        tables += [transition_table(t, period=label, section="Før og efter") for t in summary.transitions if t.n]
    limits = summaries[0].thresholds if summaries else []
    tables.append(threshold_table(limits, section="Metode"))
    return Report(
        kind="scores-cohort",
        title=f"Scoringer: udvikling pr. {GROUP_TITLES[by].lower()}",
        tables=tables,
        notes=(SCALE_NOTE, _rc_note(limits), SUPPRESSION_NOTE),
        period=_period_text(summaries),
        key_figures=[
            figure
            for s in summaries
            for figure in progression_figures(s, label=s.period.label if s.period and len(summaries) > 1 else "")
        ],
    )


def coverage_report(result: Coverage) -> Report:
    """``bridge scores coverage``."""
    return Report(
        kind="scores-coverage",
        title="Scoringer: dækning",
        tables=[coverage_table(result, section="Dækning")],
        notes=(SUPPRESSION_NOTE,),
        period=f"Scoringer {danish.period(result.since, result.as_of)}; åbne sager pr. {danish.day(result.as_of)}",
        key_figures=coverage_figures(result),
    )


def _verdict(p: Progression) -> str:
    if p.movement:
        return "Uændret (bevægelse)"
    return CLASS_LABELS[p.change_class]


def child_label(cases: Sequence[CaseSummary]) -> str:
    """A child as reports name it: by case number(s) and age, never by person key."""
    if not cases:
        return "barn uden levende sag"
    numbers = sorted({c.case_number for c in cases})
    which = f"sag {numbers[0]}" if len(numbers) == 1 else "sager " + ", ".join(numbers)
    return f"{which}, {cases[0].child_age} år"


def child_report(result: ChildScores, cases: Sequence[CaseSummary] = ()) -> Report:
    """``bridge scores child``: one child's series and progression (for the caseworker).

    ``cases`` are the child's live cases (:func:`bridge.services.cases.find_cases`); the report
    names the child by their case numbers and age, never by person key.
    """
    progression = Table(
        title="Udvikling fra første til seneste score",
        columns=(
            "Tema",
            "Første dato",
            "Første score",
            "Seneste dato",
            "Seneste score",
            "Scoringer",
            "Ændring",
            "Vurdering",
        ),
        keys=("theme", "baseline_on", "baseline", "latest_on", "latest", "scores", "change", "verdict"),
        rows=[
            [p.theme.label, p.baseline_on, p.baseline, p.latest_on, p.latest, p.scores, p.change, _verdict(p)]
            for p in result.progressions
        ],
        section="Udvikling",
    )
    series = [
        Table(
            title=s.theme.label,
            columns=("Dato", "Score"),
            keys=("date", "score"),
            rows=[[p.assessed_on, NOT_ASSESSED if p.value is None else p.value] for p in s.points],
            section="Scoringer over tid",
            charts=(Lines(x="Dato", series=("Score",), colors=("#1f6fb2",)),),
        )
        for s in result.series
    ]
    days = [p.assessed_on for s in result.series for p in s.points]
    limits = Table(
        title="Grænse for pålidelig ændring pr. tema",
        columns=("Tema", "RC-grænse"),
        keys=("theme", "rc_threshold"),
        rows=[[t.theme.label, None if t.value is None else round(t.value, 3)] for t in result.thresholds],
        section="Metode",
    )
    return Report(
        kind="scores-child",
        title=f"Scoringer for barnet i {child_label(cases)}",
        tables=[progression, *series, limits],
        notes=(SCALE_NOTE, _rc_note(result.thresholds)),
        period=danish.period(min(days), max(days)) if days else "ingen scoringer",
        key_figures=[
            KeyFigure("Temaer scoret", len(result.series)),
            *(
                KeyFigure(
                    f"{p.theme.label}: seneste score", p.latest, note=f"første {p.baseline}, {_verdict(p).lower()}"
                )
                for p in result.progressions
            ),
        ],
    )


def overview_report(store: Store, *, as_of: date | None = None, rc: ReliableChange | None = None) -> Report:
    """The whole scoring picture for leaders: progression, transitions, cohorts and coverage."""
    overall = scoring.cohort_summary(store, by="all", rc=rc)
    tables = cohort_tables([overall], section="Udvikling pr. tema")
    tables += [transition_table(t, section="Før og efter") for t in overall.transitions if t.n]
    for by in ("municipality", "target_group", "paragraph"):
        summary = scoring.cohort_summary(store, by=by, rc=rc)
        tables += cohort_tables([summary], section=f"Sammenligning: {GROUP_TITLES[by].lower()}")
    result = scoring.coverage(store, as_of=as_of)
    tables.append(coverage_table(result, section="Dækning"))
    tables.append(threshold_table(overall.thresholds, section="Metode"))
    return Report(
        kind="scores-overview",
        title="Resultatdokumentation: scoringer",
        tables=tables,
        notes=(SCALE_NOTE, _rc_note(overall.thresholds), SUPPRESSION_NOTE),
        period=f"Alle scoringer i sagerne; dækning {danish.period(result.since, result.as_of)}",
        key_figures=[*progression_figures(overall), *coverage_figures(result)],
    )


def write_scoring_report(store: Store, path: Path, html: ReportFormat, *, as_of: date | None = None) -> Path:
    """Write the overview with ``html`` (the caller's HTML format) as one file and return its path.

    ``path`` is the file to write, or a directory (an existing one, or a path without a
    suffix, which is created) to write ``scores.html`` into.
    """
    target = path / "scores.html" if path.is_dir() or not path.suffix else path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(html.render(overview_report(store, as_of=as_of)))
    return target
