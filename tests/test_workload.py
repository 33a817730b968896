"""Weighted caseload and who takes a new case, against a small team worked out by hand (SQLite and PostgreSQL).

The fixture, on ON = 2025-06-01, kommune 101, default ``[workload]`` weights (udsatte 40, handicap 55,
placement +0.5, +0.1 per open measure, +0.5 after a notification within 90 days)::

    case child family caseworker        group     open measures on ON          notified    weight
    A    a     f1     Anne Holm (Nord)  udsatte   SEL § 52 stk. 3 nr. 7 (placed) -           1 × (1 + 0.5 + 0.1) = 1.6
    B    b     f1     Anne Holm (Nord)  udsatte   -                            2025-04-15  1 × (1 + 0.5)       = 1.5
    C    c     -      Bo Lund (Nord)    udsatte   BL § 32 (§ 46 ended 24-12-31) 2025-02-01 1 × (1 + 0.1)       = 1.1
    D    d     -      Bo Lund (Nord)    udsatte   (case closed)                            -
    G    g     -      Bo Lund (Nord)    udsatte   (case deleted)                           -
    H1   x     -      Bo Lund (Nord)    udsatte   -                            -           1
    H2   x     -      Bo Lund (Nord)    udsatte   -                            2025-05-30  1 × (1 + 0.5)       = 1.5
    E    e     -      Carla Dahl (Syd)  handicap  BL § 86                      -           40/55 × 1.1         = 0.8
    F    f     -      Carla Dahl (Syd)  handicap  -                            -           40/55 = 0.727273

C's notification is 120 days before ON, so not recent; B's is 47 days before. Child x has two open
cases with Bo Lund: one child, counted once with the heavier weight 1.5.

    Anne Holm   children 2 (udsatte 2)   load 1.6 + 1.5 = 3.1        share 3.1/40 = 7.75 %
    Bo Lund     children 2 (udsatte 2)   load 1.1 + 1.5 = 2.6        share 6.5 %
    Carla Dahl  children 2 (handicap 2)  load 0.8 + 0.727273 = 1.527273   share 3.818 %
    Team Nord   2 caseworkers, 4 children, load 5.7, mean 2.85;  Team Syd 1, 2, 1.527273

Who takes a new case (N and M are new, open, without a caseworker; each weighs 1, nobody's load changes):
- N is a sibling of A and B (family f1): Anne Holm, because the siblings are hers.
- M (udsatte, no family) with no rule: the udsatte team is Nord (it holds the open udsatte cases),
  lowest load there Bo Lund (2.6 < 3.1).
- M with the birthday rule (days 1–15 → Anne Holm, 16–31 → Bo Lund; M's child born on the 5th):
  Anne Holm, by the rule, though her load is higher.
- M with the team rule (udsatte → Team Syd): Carla Dahl, the only caseworker there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import update
from typer.testing import CliRunner

from bridge.cli import app
from bridge.config import WorkloadSettings, parse_config
from bridge.errors import ConfigError, PluginError
from bridge.hookspecs import hookimpl
from bridge.model.records import (
    Act,
    CaseEventRecord,
    CaseRecord,
    CaseStatus,
    CaseworkerRecord,
    EventKind,
    MeasureRecord,
    TargetGroup,
)
from bridge.model.tables import CASES
from bridge.plugins import get_plugins, registered
from bridge.privacy import Pseudonymizer
from bridge.services.cases import CaseView
from bridge.services.workload import (
    AssignmentRule,
    CaseworkerLoad,
    RuleChoice,
    UnknownCase,
    WeightedCase,
    open_cases,
    suggest,
    workload,
)
from bridge.store import Store
from bridge.sync.writer import store_records
from bridge.synthetic.generate import generate

ON = date(2025, 6, 1)
ANNE = CaseworkerRecord(source_ref="w1", name="Anne Holm", unit="Team Nord")
BO = CaseworkerRecord(source_ref="w2", name="Bo Lund", unit="Team Nord")
CARLA = CaseworkerRecord(source_ref="w3", name="Carla Dahl", unit="Team Syd")


def case(
    ref: str,
    child: str,
    worker: CaseworkerRecord | None,
    group: str = "udsatte",
    *,
    family: str | None = None,
    closed: date | None = None,
    measures: Sequence[tuple[Act, str, date, date | None]] = (),
    notified: date | None = None,
    born: date = date(2015, 3, 20),
    opened: date = date(2024, 1, 1),
) -> CaseRecord:
    return CaseRecord(
        source_ref=ref,
        municipality="101",
        child_key=f"child-key-{child}",
        child_birth_date=born,
        child_sex="F",
        family_key=f"family-key-{family}" if family else None,
        caseworker=worker,
        case_number=f"27.24.00-G01-{ref}-24",
        kle="27.24.00",
        target_group=TargetGroup(group),
        opened=opened,
        closed=closed,
        status=CaseStatus.closed if closed else CaseStatus.open,
        source_modified=datetime(2025, 5, 31, tzinfo=UTC),
        measures=tuple(
            MeasureRecord(source_ref=f"{ref}-m{i}", act=act, paragraph=par, start=start, end=end, has_grant=True)
            for i, (act, par, start, end) in enumerate(measures)
        ),
        events=(CaseEventRecord(kind=EventKind.notification, occurred_on=notified, source_ref=f"{ref}-n"),)
        if notified
        else (),
    )


TEAM = (
    case("A", "a", ANNE, family="f1", measures=((Act.SEL, "52 stk. 3 nr. 7", date(2024, 1, 1), None),)),
    case("B", "b", ANNE, family="f1", notified=date(2025, 4, 15)),
    case("C", "c", BO, notified=date(2025, 2, 1),
         measures=((Act.BL, "32", date(2024, 2, 1), None), (Act.BL, "46", date(2024, 2, 1), date(2024, 12, 31)))),
    case("D", "d", BO, closed=date(2025, 1, 31)),
    case("G", "g", BO),
    case("H1", "x", BO),
    case("H2", "x", BO, notified=date(2025, 5, 30)),
    case("E", "e", CARLA, "handicap", measures=((Act.BL, "86", date(2024, 3, 1), None),)),
    case("F", "f", CARLA, "handicap"),
)  # fmt: skip


def load_team(store: Store, *extra: CaseRecord) -> None:
    store_records(store, "fixture", (*TEAM, *extra))
    with store.transaction() as conn:
        conn.execute(update(CASES).where(CASES.c.source_ref == "G").values(deleted_at=datetime(2025, 5, 1, tzinfo=UTC)))


def by_name(loads: Sequence[CaseworkerLoad]) -> dict[str, CaseworkerLoad]:
    return {w.name: w for w in loads}


def test_weights_of_each_case(store: Store) -> None:
    load_team(store)
    weights = {c.case.case_number.split("-")[2]: c.weight for c in open_cases(store, on=ON)}
    assert weights == pytest.approx({"A": 1.6, "B": 1.5, "C": 1.1, "H1": 1.0, "H2": 1.5, "E": 0.8, "F": 40 / 55})
    a = next(c.case for c in open_cases(store, on=ON) if c.case.case_number.startswith("27.24.00-G01-A-"))
    assert (a.placement, a.recent_notification, a.measures) == (True, False, ("SEL § 52 stk. 3 nr. 7",))


def test_loads_per_caseworker_and_team(store: Store) -> None:
    load_team(store)
    result = workload(store, on=ON)
    got = {w.name: (w.team, w.children, w.udsatte, w.handicap) for w in result.caseworkers}
    assert got == {
        "Anne Holm": ("Team Nord", 2, 2, 0),
        "Bo Lund": ("Team Nord", 2, 2, 0),
        "Carla Dahl": ("Team Syd", 2, 0, 2),
    }
    loads = by_name(result.caseworkers)
    assert loads["Anne Holm"].load == pytest.approx(3.1)
    assert loads["Bo Lund"].load == pytest.approx(2.6)
    assert loads["Carla Dahl"].load == pytest.approx(1.527273, abs=1e-6)
    assert loads["Anne Holm"].share == pytest.approx(7.75)
    teams = {t.team: (t.caseworkers, t.children, round(t.load, 6), round(t.mean, 6)) for t in result.teams()}
    assert teams == {"Team Nord": (2, 4, 5.7, 2.85), "Team Syd": (1, 2, 1.527273, 1.527273)}


def test_configured_weights_change_the_loads(store: Store) -> None:
    """Placement 2 and SEL § 52 stk. 3 weighing 1: A = 1 + 2 + 1 = 4; B 1.5; Anne 5.5.
    A notification window of 30 days leaves only H2's (2 days before ON): B = 1, Anne 5.0."""
    load_team(store)
    settings = WorkloadSettings(placement=2, measures={"SEL 52 stk. 3": 1.0}, notification_days=30)
    assert by_name(workload(store, on=ON, settings=settings).caseworkers)["Anne Holm"].load == pytest.approx(5.0)


def test_bad_weights_are_refused_naming_the_key(tmp_path: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"workload": {"handicap": 0, "measures": {"SEL52": 1}, "placment": 1}}, tmp_path)
    message = str(caught.value)
    assert "workload.handicap: Input should be greater than 0" in message
    assert "workload.measures: 'SEL52' is not an act and paragraph" in message
    assert "workload.placment: Extra inputs are not permitted" in message


class DoublePlacements:
    @hookimpl
    def bridge_case_weight(self, case: WeightedCase) -> float | None:
        return 2 * case.weight if case.placement else None


def test_a_plugin_weighs_cases_through_the_hook(store: Store) -> None:
    """A doubled to 3.2: Anne 3.2 + 1.5 = 4.7; everyone else as configured."""
    load_team(store)
    with registered(DoublePlacements()):
        result = workload(store, on=ON)
    loads = by_name(result.caseworkers)
    assert result.plugin_weights
    assert loads["Anne Holm"].load == pytest.approx(4.7)
    assert loads["Bo Lund"].load == pytest.approx(2.6)
    assert loads["Carla Dahl"].children == 2


class NegativeWeight:
    @hookimpl
    def bridge_case_weight(self, case: WeightedCase) -> float | None:
        return -1.0


def test_a_plugin_weight_below_zero_is_an_error_naming_the_case(store: Store) -> None:
    load_team(store)
    with registered(NegativeWeight()), pytest.raises(PluginError, match=r"returned -1.0 for case 27\.24\.00-G01-"):
        workload(store, on=ON)


def new_cases() -> tuple[CaseRecord, CaseRecord]:
    return (
        case("N", "n", None, family="f1", opened=date(2025, 5, 30)),
        case("M", "m", None, born=date(2016, 8, 5), opened=date(2025, 5, 30)),
    )


def test_a_sibling_goes_to_the_familys_caseworker(store: Store) -> None:
    load_team(store, *new_cases())
    found = suggest(store, "27.24.00-G01-N-24", on=ON)
    assert (found.caseworker.name, found.step) == ("Anne Holm", "family")
    assert found.reasons == ["Søskende holdes sammen: Anne Holm har søskendes sag 27.24.00-G01-A-24, 27.24.00-G01-B-24"]


def test_without_a_rule_the_lowest_load_in_the_team_takes_it(store: Store) -> None:
    load_team(store, *new_cases())
    found = suggest(store, "27.24.00-G01-M-24", on=ON)
    assert (found.caseworker.name, found.step) == ("Bo Lund", "load")
    assert found.reasons == ["Laveste vægtede sagstal i team Team Nord: Bo Lund med 2,6 (6,5 % af normtallet)"]
    assert [w.name for w in found.alternatives] == ["Bo Lund", "Anne Holm"]


def test_the_birthday_rule_decides_before_the_load(store: Store) -> None:
    load_team(store, *new_cases())
    settings = WorkloadSettings.model_validate(
        {
            "assignment": {
                "rule": "birthday",
                "settings": {
                    "ranges": [
                        {"first": 1, "last": 15, "caseworker": "Anne Holm"},
                        {"first": 16, "last": 31, "caseworker": "Bo Lund"},
                    ]
                },
            }
        }
    )
    found = suggest(store, "27.24.00-G01-M-24", on=ON, settings=settings)
    assert (found.caseworker.name, found.step) == ("Anne Holm", "rule")
    assert found.reasons == ["Kommunens fordeling efter fødselsdag: dag 1.–15. i måneden hører til Anne Holm"]


def test_the_team_rule_sends_the_case_to_the_team(store: Store) -> None:
    load_team(store, *new_cases())
    settings = WorkloadSettings.model_validate({"assignment": {"rule": "team", "settings": {"udsatte": "Team Syd"}}})
    found = suggest(store, "27.24.00-G01-M-24", on=ON, settings=settings)
    assert (found.caseworker.name, found.step) == ("Carla Dahl", "rule")
    assert found.reasons[0] == "Kommunens fordeling: målgruppen udsatte hører til team Team Syd"


def test_a_bad_rule_setting_names_the_key(store: Store) -> None:
    load_team(store, *new_cases())
    settings = WorkloadSettings.model_validate(
        {"assignment": {"rule": "birthday", "settings": {"ranges": [{"first": 20, "last": 3, "caseworker": "Bo"}]}}}
    )
    with pytest.raises(ConfigError, match=r"workload\.assignment\.settings\.ranges\.0: last \(3\) is before first"):
        suggest(store, "27.24.00-G01-M-24", on=ON, settings=settings)
    unknown = WorkloadSettings.model_validate({"assignment": {"rule": "lottery"}})
    with pytest.raises(ConfigError, match=r"workload\.assignment\.rule: no assignment rule named 'lottery'"):
        suggest(store, "27.24.00-G01-M-24", on=ON, settings=unknown)


class DistrictConfig(BaseModel):
    caseworker_by_case: dict[str, str]


class ByDistrict(AssignmentRule):
    name = "school_district"
    description = "Fordeling efter skoledistrikt"
    Config = DistrictConfig

    def choose(
        self, case: CaseView, candidates: Sequence[CaseworkerLoad], settings: DistrictConfig
    ) -> RuleChoice | None:
        worker = settings.caseworker_by_case.get(case.case_number)
        return RuleChoice((worker,), "Skoledistrikt Vest") if worker else None


class DistrictPlugin:
    @hookimpl
    def bridge_register_assignment_rules(self, register: Callable[[AssignmentRule], None]) -> None:
        register(ByDistrict())


def test_a_plugin_adds_an_assignment_rule(store: Store) -> None:
    load_team(store, *new_cases())
    districts = {"caseworker_by_case": {"27.24.00-G01-M-24": "carla dahl"}}
    settings = WorkloadSettings.model_validate({"assignment": {"rule": "school_district", "settings": districts}})
    with registered(DistrictPlugin()):
        found = suggest(store, "27.24.00-G01-M-24", on=ON, settings=settings)
    assert (found.caseworker.name, found.step, found.reasons) == ("Carla Dahl", "rule", ["Skoledistrikt Vest"])


def test_an_unknown_case_number_says_how_to_find_one(store: Store) -> None:
    load_team(store)
    with pytest.raises(UnknownCase, match=r"no open case has the case number 'X-1' \(bridge cases --open"):
        suggest(store, "X-1", on=ON)


def test_a_case_number_open_in_two_municipalities_asks_which(store: Store) -> None:
    load_team(
        store, case("M", "m2", None).model_copy(update={"municipality": "202", "source_ref": "M-202"}), *new_cases()
    )
    with pytest.raises(
        UnknownCase, match=r"'27\.24\.00-G01-M-24' is open in municipalities 101, 202: give --municipality"
    ):
        suggest(store, "27.24.00-G01-M-24", on=ON)
    assert suggest(store, "27.24.00-G01-M-24", on=ON, municipality="101").caseworker.name == "Bo Lund"


def test_assign_on_the_command_line(
    store: Store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_team(store, *new_cases())
    monkeypatch.delenv("BRIDGE_DATABASE_URL", raising=False)
    (tmp_path / "bridge.toml").write_text(
        f'[store]\nurl = "{store_url}"\n[workload.assignment]\nrule = "team"\nsettings = {{ udsatte = "Team Syd" }}\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["workload", "assign", "27.24.00-G01-M-24", "--on", "2025-06-01", "-f", "json"])
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert (answer["caseworker"], answer["team"], answer["step"]) == ("Carla Dahl", "Team Syd", "rule")


class Registers:
    def __init__(self, *things: object) -> None:
        self.things = things

    @hookimpl
    def bridge_register_assignment_rules(self, register: Callable[[Any], None]) -> None:
        for thing in self.things:
            register(thing)


def test_what_is_not_an_assignment_rule_is_refused_naming_it() -> None:
    with registered(Registers(object())) as plugins, pytest.raises(PluginError, match="is not an instance of"):
        plugins.assignment_rules()
    with registered(Registers(ByDistrict(), ByDistrict())) as plugins, pytest.raises(PluginError, match="twice"):
        plugins.assignment_rules()
    assert sorted(get_plugins().assignment_rules()) == ["birthday", "team"]


class KeepsConfigured:
    """A plugin that weighs nothing itself: the loads are then summed in Python, case by case."""

    @hookimpl
    def bridge_case_weight(self, case: WeightedCase) -> float | None:
        return None


def test_the_sums_in_sql_equal_the_sums_case_by_case(store: Store, persons: Pseudonymizer) -> None:
    truth = generate(seed=21, municipalities=2, caseworkers=4, as_of=date(2026, 3, 1))
    store_records(store, "synthetic", truth.expected_records(persons))
    on = date(2026, 3, 1)
    in_sql = workload(store, on=on)
    with registered(KeepsConfigured()):
        by_case = workload(store, on=on)
    assert not in_sql.plugin_weights
    assert by_case.plugin_weights
    assert len(in_sql.caseworkers) == 8
    for a, b in zip(in_sql.caseworkers, by_case.caseworkers, strict=True):
        assert (a.name, a.children, a.udsatte, a.handicap) == (b.name, b.children, b.udsatte, b.handicap)
        assert a.load == pytest.approx(b.load)
    open_children = {(r.caseworker.source_ref, r.child_key) for r in truth.expected_records(persons)
                     if r.status == "open" and r.caseworker}  # fmt: skip
    assert sum(w.children for w in in_sql.caseworkers) == len(open_children)
