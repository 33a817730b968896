"""Handover: the plan's properties (hypothesis), one dossier worked out by hand, the decision and its check.

The dossier fixture, on ON = 2025-06-01 (Barnets lov), kommune 101. Dorte Friis (Team Øst) leaves; her
open cases are P and P2, siblings (family f9). Erik Møller (Team Øst) holds Q; Finn Berg is in Team Vest.

Case P, udsatte, opened 2025-03-20, the child born 2014-09-10 (10 years old on ON):
    events     notification 03-20; investigation started 03-21 (not completed); journal notes 03-25, 05-28;
               child conversation 05-10; consent 05-12; decision 05-15
    measures   m0 BL § 32  05-15..11-30, granted;  m1 BL § 32  04-01..04-30, granted;
               m2 BL § 46  05-15.. (a placement), granted
    scores     udvikling 03-25: 4, 05-20: ikke vurderet, 05-25: 3;  familieforhold 05-25: 2;
               sundhed 03-25: 2, 05-25: 4

Deadlines on ON, by the audit rules:
    underretning_24_timer     due 03-21 (received 03-20, dates only: the day after); no assessment recorded
                              → overdue, 72 days (Mar 21 → Jun 1: 10 + 30 + 31 + 1)
    samtykke (m1)             due 04-01; the only consent (05-12) came after m1 started → overdue, 61 days
    undersoegelse_4_maaneder  due 03-20 + 4 months = 07-20, not completed → 49 days left (29 + 20)
    opfoelgning_3_maaneder    m0 and m2: due 05-15 + 3 months = 08-15 → 75 days left (29 + 31 + 15)
    plan_rettidig (m2)        BL § 91, stk. 2 for a placement: 08-15 → 75 days left
    (m0's and m2's consent, the grants, the conversation before the decision, the first journal
    note by 04-20, the account codes and the age are kept; m1 ended before its follow-up was due;
    § 32 needs no investigation before it and no plan unless one is made.)
Open measures on ON: m0 (182 days to its end: 29 + 31 + 31 + 30 + 31 + 30) and m2 (no end); m1 has ended.
Latest scores: udvikling 3 (05-25) after 4 → forbedret ("ikke vurderet" skipped); familieforhold 2,
første score; sundhed 4 after 2 → forværret.
Audit findings of P: samtykke failed, to be corrected by 05-15, still open → listed, and overdue;
journal failed and closed 04-01 in a later version → not listed.
Last journal note: 05-28.

Weights on ON: P = 1 × (1 + 0.5 placement + 0.1 + 0.1 for two open measures + 0.5 for the notification
73 days before) = 2.2; P2 = 1; Q = 1. Erik, the only other caseworker in Team Øst, takes both:
before 1.0, after 4.2.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from typer.testing import CliRunner

import bridge
from bridge.cli import app
from bridge.model.audit import AuditFinding, AuditSample
from bridge.model.records import (
    Act,
    AssessmentRecord,
    CaseEventRecord,
    CaseRecord,
    CaseworkerRecord,
    EventKind,
    MeasureRecord,
    Theme,
)
from bridge.model.tables import table_of
from bridge.services import handover
from bridge.services.handover import HandoverError, assign_cases, choose_receivers, plan_handover
from bridge.services.workload import CaseworkerLoad, OpenCase, WeightedCase
from bridge.store import Store
from bridge.sync.writer import store_records
from tests.test_workload import case

ON = date(2025, 6, 1)
DORTE = CaseworkerRecord(source_ref="w4", name="Dorte Friis", unit="Team Øst")
ERIK = CaseworkerRecord(source_ref="w5", name="Erik Møller", unit="Team Øst")
FINN = CaseworkerRecord(source_ref="w6", name="Finn Berg", unit="Team Vest")
U, F, S = Theme.udvikling_adfaerd, Theme.familieforhold, Theme.sundhed


def _d(text: str) -> date:
    return date.fromisoformat("2025-" + text)


def case_p() -> CaseRecord:
    events = [
        ("notification", "03-20"), ("investigation_started", "03-21"), ("journal_note", "03-25"),
        ("child_conversation", "05-10"), ("consent", "05-12"), ("decision", "05-15"), ("journal_note", "05-28"),
    ]  # fmt: skip
    measures = [("m0", "32", "05-15", "11-30"), ("m1", "32", "04-01", "04-30"), ("m2", "46", "05-15", None)]
    scores = [(U, "03-25", 4), (U, "05-20", None), (U, "05-25", 3), (F, "05-25", 2), (S, "03-25", 2), (S, "05-25", 4)]
    base = case("P", "p", DORTE, family="f9", born=date(2014, 9, 10), opened=_d("03-20"))
    return base.model_copy(
        update={
            "events": tuple(
                CaseEventRecord(kind=EventKind(k), occurred_on=_d(on), source_ref=f"P-e{i}")
                for i, (k, on) in enumerate(events)
            ),
            "measures": tuple(
                MeasureRecord(
                    source_ref=f"P-{ref}",
                    act=Act.BL,
                    paragraph=par,
                    start=_d(start),
                    end=_d(end) if end else None,
                    has_grant=True,
                    account_code="5.28.23.003",
                )
                for ref, par, start, end in measures
            ),
            "assessments": tuple(AssessmentRecord(theme=t, value=v, assessed_on=_d(on)) for t, on, v in scores),
        }
    )


def load_handover(store: Store) -> None:
    store_records(
        store,
        "fixture",
        [case_p(), case("P2", "p2", DORTE, family="f9"), case("Q", "q", ERIK), case("R", "r", FINN)],
    )
    samples, findings = table_of(AuditSample), table_of(AuditFinding)
    at = datetime(2025, 4, 1, tzinfo=UTC)
    common = {"sample_id": 1, "case_key": "fixture:P", "case_number": "27.24.00-G01-P-24", "automatic": True,
              "recorded_by": "leder", "recorded_at": at, "evidence": "", "note": "", "refusion": False,
              "closed_on": None}  # fmt: skip
    with store.transaction() as conn:
        conn.execute(
            insert(samples).values(
                id=1, label="Tilsyn 2025", strategy="per_caseworker", parameters="{}", seed="s", as_of=_d("03-31"),
                window_start=date(2024, 4, 1), population_size=4, population_fingerprint="0" * 64, drawn_at=at,
                drawn_by="leder",
            )
        )  # fmt: skip
        conn.execute(
            insert(findings),
            [
                common | {"rule": "samtykke", "version": 1, "outcome": "fail", "follow_up_due": _d("05-15")},
                common | {"rule": "journal", "version": 1, "outcome": "fail", "follow_up_due": _d("05-01")},
                common
                | {
                    "rule": "journal",
                    "version": 2,
                    "outcome": "fail",
                    "follow_up_due": _d("05-01"),
                    "closed_on": _d("04-01"),
                },
            ],
        )


def test_one_dossier_field_by_field(store: Store) -> None:
    load_handover(store)
    plan = plan_handover(store, "Dorte Friis", on=ON)
    dossier = next(d for d in handover.dossiers(store, plan) if d.case_number == "27.24.00-G01-P-24")
    assert (dossier.age, dossier.target_group, dossier.opened) == (10, "udsatte", _d("03-20"))
    assert (dossier.receiver, dossier.family, dossier.siblings) == ("Erik Møller", "F1", ("27.24.00-G01-P2-24",))
    assert [(m.label, m.start, m.end) for m in dossier.measures] == [
        ("BL § 32", _d("05-15"), _d("11-30")),
        ("BL § 46", _d("05-15"), None),
    ]
    assert [(d.rule, d.due, dossier.days_left(d), d.overdue) for d in dossier.deadlines] == [
        ("underretning_24_timer", _d("03-21"), -72, True),
        ("samtykke", _d("04-01"), -61, True),
        ("undersoegelse_4_maaneder", _d("07-20"), 49, False),
        ("opfoelgning_3_maaneder", _d("08-15"), 75, False),
        ("opfoelgning_3_maaneder", _d("08-15"), 75, False),
        ("plan_rettidig", _d("08-15"), 75, False),
    ]
    assert str(dossier.deadlines[-1].citation) == "BL § 91, stk. 2"
    assert [(s.theme, s.value, s.on, s.previous, s.direction) for s in dossier.scores] == [
        (U, 3, _d("05-25"), 4, "forbedret"),
        (F, 2, _d("05-25"), None, "første score"),
        (S, 4, _d("05-25"), 2, "forværret"),
    ]
    assert [(f.rule, f.follow_up_due) for f in dossier.findings] == [("samtykke", _d("05-15"))]
    assert dossier.last_journal_note == _d("05-28")
    assert dossier.overdue == (
        "Underretning vurderet inden 24 timer: frist 21.03.2025, 72 dage over",
        "Samtykke til indsatsen: frist 01.04.2025, 61 dage over",
        "Fund fra ledelsestilsyn, Samtykke til indsatsen: skulle være rettet 15.05.2025",
    )


def test_the_plan_keeps_the_family_and_gives_each_load_before_and_after(store: Store) -> None:
    load_handover(store)
    plan = plan_handover(store, "dorte friis", on=ON)
    assert [(m.case_number, m.family, round(m.weight, 6), m.receiver.name) for m in plan.moves] == [
        ("27.24.00-G01-P-24", "F1", 2.2, "Erik Møller"),
        ("27.24.00-G01-P2-24", "F1", 1.0, "Erik Møller"),
    ]
    [erik] = plan.receivers
    assert (erik.caseworker.name, erik.before, round(erik.after, 6), erik.children) == ("Erik Møller", 1.0, 4.2, 2)


def test_receivers_named_with_to_must_exist_and_may_be_from_another_team(store: Store) -> None:
    load_handover(store)
    plan = plan_handover(store, "Dorte Friis", to=["Finn Berg"], on=ON)
    assert {m.receiver.name for m in plan.moves} == {"Finn Berg"}
    with pytest.raises(HandoverError, match="--to 'Dorte Friis': that is the caseworker who leaves"):
        plan_handover(store, "Dorte Friis", to=["Dorte Friis"], on=ON)
    with pytest.raises(HandoverError, match=r"--to 'Nobody': no caseworker of that name .* Erik Møller, Finn Berg"):
        plan_handover(store, "Dorte Friis", to=["Nobody"], on=ON)
    with pytest.raises(HandoverError, match="Finn Berg is the only caseworker with open cases in team Team Vest"):
        plan_handover(store, "Finn", on=ON)


def test_an_accepted_plan_is_checked_against_the_next_sync(store: Store) -> None:
    """Accepted: both moves wait. Then a sync brings P with Erik as caseworker: P moved, P2 still waits."""
    load_handover(store)
    plan = plan_handover(store, "Dorte Friis", on=ON)
    decision = handover.accept(store, plan, decided_by="leder")
    [before] = handover.progress(store, decision)
    assert (before.caseworker, before.effective_on, before.decided_by) == ("Dorte Friis", ON, "leder")
    assert [(m.case_number, m.status) for m in before.moves] == [
        ("27.24.00-G01-P-24", "venter"),
        ("27.24.00-G01-P2-24", "venter"),
    ]
    store_records(store, "fixture", [case_p().model_copy(update={"caseworker": ERIK})])
    [after] = handover.progress(store)
    assert [(m.case_number, m.status, m.now_with) for m in after.moves] == [
        ("27.24.00-G01-P-24", "flyttet", "Erik Møller"),
        ("27.24.00-G01-P2-24", "venter", "Dorte Friis"),
    ]
    assert (after.count("flyttet"), after.count("venter")) == (1, 1)


# -- properties of the distribution ----------------------------------------------------------------


def _open_case(number: int, family: str | None, child: str, weight: float) -> OpenCase:
    weighted = WeightedCase(number, f"27.24.00-G01-{number:03d}-24", "101", "Team", "Leaver", "udsatte", (), False,
                            False, weight)  # fmt: skip
    return OpenCase(weighted, 99, child, family)


@st.composite
def handovers(draw: st.DrawFn) -> tuple[list[OpenCase], list[CaseworkerLoad]]:
    """A leaving caseworker's cases (some siblings, a few children with two cases) and receivers with loads."""
    n = draw(st.integers(1, 14))
    cases = []
    for i in range(n):
        family = draw(st.sampled_from([None, "f1", "f2", "f3", "f4"]))
        child = draw(st.sampled_from([f"c{i}", f"c{i}", "twin"]))  # now and then one child with two cases
        if child == "twin":  # one child in two systems: one case has the family key, the other may not
            family = draw(st.sampled_from([None, "f1"]))
        weight = draw(st.sampled_from([0.727273, 0.8, 1.0, 1.1, 1.5, 1.6, 2.2, 3.0]))
        cases.append(_open_case(i, family, child, weight))
    receivers = [
        CaseworkerLoad(100 + j, f"R{j}", "Team", "101", 0, 0, 0, draw(st.floats(0, 45, allow_nan=False)), 40)
        for j in range(draw(st.integers(1, 5)))
    ]
    return cases, receivers


def _units(cases: Sequence[OpenCase]) -> list[tuple[str, list[OpenCase]]]:
    """Families, by first case number — written apart from the service. A child's cases are in its family
    when any of them has the family key; a child with none is on its own."""
    family_of = {c.child_key: c.family_key for c in cases if c.family_key}
    groups: dict[str, list[OpenCase]] = defaultdict(list)
    for c in cases:
        groups[c.family_key or family_of.get(c.child_key) or f"child {c.child_key}"].append(c)
    return sorted(groups.items(), key=lambda kv: min(c.case.case_number for c in kv[1]))


def _weight(cases: Sequence[OpenCase]) -> float:
    per_child: dict[str, float] = {}
    for c in cases:
        per_child[c.child_key] = max(per_child.get(c.child_key, 0), c.weight)
    return sum(per_child.values())


def _greedy_highest(cases: Sequence[OpenCase], receivers: Sequence[CaseworkerLoad]) -> float:
    loads = [r.load for r in receivers]
    for _, members in _units(cases):
        least = loads.index(min(loads))
        loads[least] += _weight(members)
    return max(loads)


def _highest(cases: Sequence[OpenCase], receivers: Sequence[CaseworkerLoad], plan: dict[int, int]) -> float:
    return max(r.load + _weight([c for c in cases if plan[c.case.id] == r.id]) for r in receivers)


@settings(max_examples=300, deadline=None)
@given(handovers())
def test_a_plan_moves_every_case_keeps_families_and_is_no_worse_than_greedy(
    drawn: tuple[list[OpenCase], list[CaseworkerLoad]],
) -> None:
    cases, receivers = drawn
    plan = assign_cases(cases, receivers)
    assert set(plan) == {c.case.id for c in cases}, "every open case moves"
    assert set(plan.values()) <= {r.id for r in receivers}
    for key, members in _units(cases):
        assert len({plan[c.case.id] for c in members}) == 1, f"{key} was split"
    by_child: dict[str, set[int]] = defaultdict(set)
    for c in cases:
        by_child[c.child_key].add(plan[c.case.id])
    assert all(len(r) == 1 for r in by_child.values()), "one child's cases were split"
    assert _highest(cases, receivers, plan) <= _greedy_highest(cases, receivers) + 1e-9


@settings(max_examples=200, deadline=None)
@given(handovers(), st.data())
def test_with_to_only_the_named_receivers_get_cases(
    drawn: tuple[list[OpenCase], list[CaseworkerLoad]], data: st.DataObject
) -> None:
    cases, team = drawn
    leaving = CaseworkerLoad(99, "Leaver", "Team", "101", len(cases), len(cases), 0, 30.0, 40)
    elsewhere = [CaseworkerLoad(200 + i, f"V{i}", "Vest", "101", 0, 0, 0, 0.0, 40) for i in range(3)]
    everyone = [leaving, *team, *elsewhere]
    named = data.draw(st.lists(st.sampled_from([w.name for w in team + elsewhere]), min_size=1, unique=True))
    receivers = choose_receivers(everyone, leaving, [n.lower() for n in named])
    plan = assign_cases(cases, receivers)
    ids = {w.id for w in everyone if w.name in named}
    assert set(plan.values()) <= ids
    assert {r.id for r in receivers} == ids
    assert {r.name for r in choose_receivers(everyone, leaving, None)} == {w.name for w in team}


# -- the command --------------------------------------------------------------------------------


runner = CliRunner()


@pytest.fixture
def project(store: Store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    load_handover(store)
    monkeypatch.delenv("BRIDGE_DATABASE_URL", raising=False)
    (tmp_path / "bridge.toml").write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_handover_writes_the_plan_as_xlsx_and_json_and_accepts_it(project: Path) -> None:
    done = runner.invoke(app, ["handover", "Dorte Friis", "--on", "2025-06-01", "-f", "xlsx", "-o", "plan.xlsx"])
    assert done.exit_code == 0, done.output
    book = openpyxl.load_workbook(project / "plan.xlsx")
    assert len(book.sheetnames) == 3  # contents, receivers, cases: the dossiers are for HTML and JSON
    done = runner.invoke(app, ["handover", "Dorte Friis", "--to", "Finn Berg", "--on", "2025-06-01", "-f", "json",
                               "--accept"])  # fmt: skip
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    titles = [t["title"] for t in document["tables"]]
    assert "Kommende frister" in titles
    assert "accepted as handover 1" in done.output
    listing = runner.invoke(app, ["handovers", "1", "--format", "json"])
    assert listing.exit_code == 0, listing.output
    assert [(m["sagsnummer"], m["modtager"], m["status"]) for m in json.loads(listing.stdout)] == [
        ("27.24.00-G01-P-24", "Finn Berg", "venter"),
        ("27.24.00-G01-P2-24", "Finn Berg", "venter"),
    ]


def test_an_unknown_caseworker_is_a_clear_error(project: Path) -> None:
    done = runner.invoke(app, ["handover", "Zelda"])
    assert isinstance(done.exception, HandoverError)
    assert str(done.exception) == "no caseworker called 'Zelda' has open cases (bridge workload lists them)"


def test_the_library_uses_the_configured_weights(
    store: Store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With placement = 2: P = 1 × (1 + 2 + 0.1 + 0.1 + 0.5) = 3.7, so Erik goes from 1 to 5.7."""
    load_handover(store)
    (tmp_path / "bridge.toml").write_text("[workload]\nplacement = 2\n", encoding="utf-8")
    monkeypatch.setenv("BRIDGE_DATABASE_URL", store_url)
    with bridge.open(tmp_path / "bridge.toml") as b:
        loads = {w.name: round(w.load, 6) for w in b.workload(on=ON).caseworkers}
        assert loads == {"Dorte Friis": 4.7, "Erik Møller": 1.0, "Finn Berg": 1.0}
        plan = b.plan_handover("Dorte Friis", on=ON)
        assert round(plan.receivers[0].after, 6) == 5.7
        assert [d.case_number for d in b.handover_dossiers(plan)] == ["27.24.00-G01-P-24", "27.24.00-G01-P2-24"]
        suggestion = b.suggest_caseworker("27.24.00-G01-P2-24", on=ON)
        assert (suggestion.caseworker.name, suggestion.step) == ("Dorte Friis", "family")
        decision = b.accept_handover(plan, decided_by="leder")
        assert b.handover_progress(decision)[0].count("venter") == 2
