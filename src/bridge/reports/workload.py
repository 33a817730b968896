"""Reports of caseload and handover: the workload across teams, and a handover plan with its dossiers.

Both are for the leader inside the municipality. Caseworkers are named (they are the subject of
the report); children are named by case number and age only, never by person key or CPR.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.config import WorkloadSettings
from bridge.reports import danish
from bridge.reports.charts import Bars
from bridge.reports.formats import KeyFigure, Report, Table
from bridge.services.audit import audit_rules
from bridge.services.handover import Dossier, HandoverPlan
from bridge.services.workload import Workload

BANDS = ((0, 80, "under 80 %"), (80, 100, "80–100 %"), (100, 120, "100–120 %"), (120, float("inf"), "over 120 %"))
"""Load in per cent of the benchmark; a band holds its lower end, not its upper."""
LOAD_COLOR = "#1f6fb2"
MOST_BARS = 60
"""A chart per caseworker only up to this many rows; above it the table and the distribution say it."""


def _one(value: float) -> float:
    return round(value, 1)


def _bar_scale(shares: Sequence[float]) -> float:
    """The bars' maximum: 150 %, or more when someone is above it, in steps of 50."""
    highest = max(shares, default=0.0)
    return max(150.0, 50.0 * -(-highest // 50))


def _load_bars(label: str, maximum: float, value: str = "Belastning (%)") -> Bars:
    return Bars(label=label, value=value, maximum=maximum, color=LOAD_COLOR, reference=100, reference_label="normtal")


def weights_note(settings: WorkloadSettings) -> str:
    ratio = danish.number(round(settings.udsatte / settings.handicap, 3))
    return (
        f"Vægt = {ratio} for en handicapsag ({danish.number(settings.udsatte)}/{danish.number(settings.handicap)}), "
        f"1 for en udsattesag, gange (1 + {danish.number(settings.placement)} ved anbringelse "
        f"+ {danish.number(settings.measure)} pr. åben indsats "
        f"+ {danish.number(settings.notification)} ved underretning inden for {settings.notification_days} dage)."
    )


def workload_report(result: Workload) -> Report:
    """``bridge workload``: key figures, the distribution, each team and each caseworker against the benchmark."""
    workers = result.caseworkers
    norm = result.norm
    shares = [w.share for w in workers]
    scale = _bar_scale(shares)
    over = sum(1 for s in shares if s > 100)
    children = sum(w.children for w in workers)
    total = sum(w.load for w in workers)
    key_figures = [
        KeyFigure("Sagsbehandlere med åbne sager", len(workers)),
        KeyFigure("Børn i åbne sager", children),
        KeyFigure("Vægtet sagstal pr. sagsbehandler", _one(total / len(workers)) if workers else None),
        KeyFigure("Over normtallet", over, note=f"Vægtet sagstal over {danish.number(norm)}"),
        KeyFigure("Højeste belastning", _one(max(shares)) if shares else None, percent=True),
    ]
    counts = [sum(1 for s in shares if low <= s < high) for low, high, _ in BANDS]
    band_rows = [[label, n] for (_, _, label), n in zip(BANDS, counts, strict=True)]
    tables = [
        Table(
            title="Sagsbehandlere efter belastning",
            columns=("Belastning i forhold til normtal", "Sagsbehandlere"),
            keys=("band", "caseworkers"),
            rows=band_rows,
            section="Fordeling",
            charts=(
                Bars(
                    label="Belastning i forhold til normtal",
                    value="Sagsbehandlere",
                    maximum=max([1, *counts]),
                    percent=False,
                ),
            ),
            note=f"Belastning = vægtet sagstal i procent af normtallet {danish.number(norm)} (100 % = normtal).",
        ),
        Table(
            title="Teams",
            columns=("Team", "Sagsbehandlere", "Børn", "Vægtet sagstal", "Gns. pr. sagsbehandler", "Belastning (%)"),
            keys=("team", "caseworkers", "children", "load", "mean_load", "load_pct"),
            rows=[
                [
                    f"{result.place(t.municipality)}: {t.team}",
                    t.caseworkers,
                    t.children,
                    _one(t.load),
                    _one(t.mean),
                    _one(t.share),
                ]
                for t in result.teams()
            ],
            section="Teams",
            charts=(_load_bars("Team", scale),),
            note="Belastning = gennemsnitligt vægtet sagstal pr. sagsbehandler i procent af normtallet.",
        ),
        Table(
            title="Sagsbehandlere",
            columns=(
                "Kommune",
                "Team",
                "Sagsbehandler",
                "Børn",
                "Heraf udsatte",
                "Heraf handicap",
                "Vægtet sagstal",
                "Belastning (%)",
            ),
            keys=("municipality", "team", "caseworker", "children", "udsatte", "handicap", "load", "load_pct"),
            rows=[
                [
                    result.place(w.municipality),
                    w.team,
                    w.name,
                    w.children,
                    w.udsatte,
                    w.handicap,
                    _one(w.load),
                    _one(w.share),
                ]
                for w in workers
            ],
            section="Sagsbehandlere",
            charts=(_load_bars("Sagsbehandler", scale),) if len(workers) <= MOST_BARS else (),
            note="Børn tælles, ikke mapper: et barn med to åbne sager hos samme sagsbehandler tæller én gang.",
        ),
    ]
    source = "et plugins vægte (bridge_case_weight)" if result.plugin_weights else "vægtene i bridge.toml [workload]"
    return Report(
        kind="workload",
        title=f"Sagsbelastning pr. {danish.day(result.on)}",
        tables=tables,
        key_figures=key_figures,
        notes=(
            f"Normtal: {danish.number(result.settings.udsatte)} sager pr. sagsbehandler på udsatteområdet og "
            f"{danish.number(result.settings.handicap)} på handicapområdet; i vægtet sagstal er normtallet "
            f"{danish.number(norm)} for begge.",
            f"Sagerne er vægtet efter {source}. {weights_note(result.settings)}",
            "Kun åbne sager; en sagsbehandler uden åbne sager er ikke med.",
        ),
    )


# -- handover -------------------------------------------------------------------------------------


def handover_report(plan: HandoverPlan, dossiers: Sequence[Dossier] = ()) -> Report:
    """``bridge handover``: the plan (receivers before and after, the cases), then one dossier per case."""
    leaving = plan.leaving
    families = {m.family for m in plan.moves if m.family}
    scale = _bar_scale([r.share_after for r in plan.receivers])
    greedy_share = 100 * plan.greedy_highest / leaving.norm
    tables = [
        Table(
            title="Modtagere: belastning før og efter",
            columns=("Modtager", "Team", "Vægtet før", "Nye børn", "Vægtet efter", "Belastning efter (%)"),
            keys=("receiver", "team", "load_before", "new_children", "load_after", "load_after_pct"),
            rows=[
                [r.caseworker.name, r.caseworker.team, _one(r.before), r.children, _one(r.after), _one(r.share_after)]
                for r in plan.receivers
            ],
            section="Fordeling",
            charts=(_load_bars("Modtager", scale, "Belastning efter (%)"),),
            note=(
                "Søskende følges ad. Fordelingen gør den højeste belastning efter overdragelsen så lav som muligt; "
                "at give familierne én ad gangen til den mindst belastede ville give et højeste vægtet sagstal på "
                f"{danish.number(_one(plan.greedy_highest))} ({danish.percent(greedy_share)})."
            ),
        ),
        Table(
            title="Sager og modtagere",
            columns=("Sagsnummer", "Familie", "Vægt", "Modtager"),
            keys=("case_number", "family", "weight", "receiver"),
            rows=[[m.case_number, m.family or None, round(m.weight, 2), m.receiver.name] for m in plan.moves],
            section="Fordeling",
            note="Sager med samme familie (F1, F2 …) er søskende og går til samme modtager.",
        ),
    ]
    titles = {r.id: r.title for r in audit_rules()}
    for dossier in dossiers:
        tables.extend(_dossier(dossier, titles))
    return Report(
        kind="handover",
        title=f"Overdragelse af {leaving.name}s sager pr. {danish.day(plan.on)}",
        tables=tables,
        key_figures=[
            KeyFigure("Sager der overdrages", len(plan.moves)),
            KeyFigure("Søskendegrupper holdt samlet", len(families)),
            KeyFigure("Modtagere", len(plan.receivers)),
            KeyFigure("Højeste belastning efter", _one(100 * plan.highest / leaving.norm), percent=True),
        ],
        notes=(
            f"{leaving.name} ({leaving.team}) har {leaving.children} børn i åbne sager, "
            f"vægtet {danish.number(_one(leaving.load))}.",
            "Frister og overskredne krav er beregnet med tjekskemaets automatiske regler pr. overdragelsesdagen.",
            "Retning for en score er ændringen siden forrige score på Trivselslinealen (1 = i trivsel, 5 = truet "
            "trivsel); et fald er en forbedring. Det er ikke en vurdering af pålidelig ændring.",
            "Ingen personoplysninger: børn nævnes ved sagsnummer og alder.",
        ),
    )


def _count(n: int, none: str) -> str:
    """A count in the summary's text column: "2", or "ingen" (left-aligned with the other values)."""
    return str(n) if n else none


GROUPS = {"udsatte": "udsatte børn og unge", "handicap": "børn og unge med handicap"}


def _dossier(d: Dossier, titles: dict[str, str]) -> list[Table]:
    """One case's dossier: a summary first, then only the lists that hold something."""
    section = f"Sag {d.case_number}, {d.age} år"
    coming = [f for f in d.deadlines if not f.overdue]
    facts: list[list[object]] = [
        ["Sagsnummer", d.case_number],
        ["Barnets alder", f"{d.age} år"],
        ["Målgruppe", GROUPS.get(d.target_group, d.target_group)],
        ["Sagen oprettet", d.opened],
        ["Overdrages til", d.receiver],
        ["Søskende (følger med)", ", ".join(d.siblings) or "ingen"],
        ["Seneste journalnotat", d.last_journal_note or "intet"],
        ["Overskredet", _count(len(d.overdue), "intet")],
        ["Kommende frister", _count(len(coming), "ingen")],
        ["Åbne indsatser", _count(len(d.measures), "ingen")],
        ["Åbne fund fra ledelsestilsyn", _count(len(d.findings), "ingen")],
    ]
    tables = [Table(title="Sagen", columns=("Felt", "Værdi"), keys=("field", "value"), rows=facts, section=section)]
    if d.overdue:
        tables.append(
            Table(
                title="Overskredet", columns=("Hvad",), keys=("what",), rows=[[x] for x in d.overdue], section=section
            )
        )
    if coming:
        tables.append(
            Table(
                title="Kommende frister",
                columns=("Krav", "Frist", "Dage tilbage", "Hjemmel"),
                keys=("requirement", "due", "days_left", "provision"),
                rows=[[f.title, f.due, d.days_left(f), str(f.citation)] for f in coming],
                section=section,
                note="Dage tilbage regnes fra overdragelsesdagen.",
            )
        )
    if d.measures:
        tables.append(
            Table(
                title="Åbne indsatser",
                columns=("Indsats (hjemmel)", "Start", "Slut", "Dage til slut"),
                keys=("measure", "start", "end", "days_to_end"),
                rows=[[m.label, m.start, m.end or "ingen slutdato", (m.end - d.on).days if m.end else None]
                      for m in d.measures],
                section=section,
            )
        )  # fmt: skip
    tables.append(
        Table(
            title="Seneste score pr. tema",
            columns=("Tema", "Score", "Dato", "Forrige", "Retning"),
            keys=("theme", "score", "date", "previous", "direction"),
            rows=[[s.theme.label, s.value, s.on, s.previous, s.direction] for s in d.scores],
            section=section,
            note="Trivselslinealen: 1 = i trivsel … 5 = truet trivsel; et fald er en forbedring.",
        )
    )
    if d.findings:
        tables.append(
            Table(
                title="Åbne fund fra ledelsestilsyn",
                columns=("Krav", "Dokumentation", "Rettes senest"),
                keys=("requirement", "evidence", "follow_up_due"),
                rows=[[titles.get(f.rule, f.rule), f.evidence, f.follow_up_due] for f in d.findings],
                section=section,
            )
        )
    return tables


__all__ = ["handover_report", "weights_note", "workload_report"]
