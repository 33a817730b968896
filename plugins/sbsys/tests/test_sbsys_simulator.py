"""The SBSIP simulator: payloads shaped like the reference, endpoints, faults, defects on the wire."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import typer
from plugins.sbsys.tests.fake_sbsip import REFERENCE
from pydantic import SecretStr
from typer.testing import CliRunner

from bridge.adapter import Adapter, Batch, SourceContext
from bridge.cli import simulate as simulate_module
from bridge.config import SourceSettings
from bridge.errors import AdapterError, ConfigError
from bridge.hookspecs import hookimpl
from bridge.plugins import registered
from bridge.privacy import Pseudonymizer
from bridge.simulation import SimulatorRequest, has_simulator, parse_options, simulated, simulator_for
from bridge.simulation.server import ServerTLS, serve
from bridge.synthetic.generate import generate
from bridge.synthetic.truth import BROKEN_DATE_TEXT, Defect, GroundTruth
from bridge_sbsys import wire
from bridge_sbsys.adapter import SbsysAdapter, SbsysConfig
from bridge_sbsys.simulator import OTHER_ID_BASE, SbsysSimulator, SimulatorSettings, connection_settings

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0[12]:00$")
TOKEN = wire.TOKEN_PATH
PERSONS = Pseudonymizer(SecretStr("test-secret-for-bridge"))


@pytest.fixture(scope="module")
def truth() -> GroundTruth:
    return generate(seed=21, municipalities=1, caseworkers=2, invalid=5, municipality_codes=["461"])


class Client:
    """A plain httpx client against the simulator (no retries), with a token."""

    def __init__(self, base_url: str, simulator: SbsysSimulator) -> None:
        self.http = httpx.Client(base_url=base_url)
        self.simulator = simulator
        s = simulator.settings
        form = {"grant_type": "client_credentials", "client_id": s.client_id, "client_secret": s.client_secret}
        self.token = self.http.post(TOKEN, data=form).json()["access_token"]

    def get(self, path: str) -> Any:
        response = self.http.get(path, headers={"Authorization": f"Bearer {self.token}"})
        response.raise_for_status()
        return response.json() if "json" in response.headers["content-type"] else response.text

    def search(self, body: dict[str, Any], *, parts: bool = False) -> dict[str, Any]:
        params = {"InkluderParterIResultat": "true"} if parts else None
        response = self.http.post(
            wire.SEARCH_PATH, json=body, params=params, headers={"Authorization": f"Bearer {self.token}"}
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
def client(truth: GroundTruth) -> Iterator[Client]:
    simulator = SbsysSimulator(truth, SimulatorSettings())
    with serve(simulator.app) as base_url:
        c = Client(base_url, simulator)
        yield c
        c.http.close()


def main_ids(client: Client) -> list[int]:
    body = {"NummerInterval": {"From": "27.24.00-G01", "To": "27.24.00-G02"}, "Limit": 1000}
    return [sag["Id"] for sag in client.search(body)["Results"]]


def key_types(value: Any) -> Any:
    """The shape of a JSON value: keys and types, not values."""
    if isinstance(value, dict):
        return {k: key_types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [key_types(v) for v in value[:1]]
    return type(value).__name__


def test_a_case_has_the_reference_shape(client: Client) -> None:
    sag = client.get(f"/api/sag/{main_ids(client)[0]}")
    reference = key_types(REFERENCE)
    rendered = key_types(sag)
    for key, shape in reference.items():
        if key in ("Personer", "Firmaer"):
            continue
        assert key in rendered, key
        if isinstance(shape, dict):
            assert shape.keys() <= rendered[key].keys(), key
    known_person_keys = set().union(*(p.keys() for p in REFERENCE["Personer"]))
    for person in sag["Personer"]:
        assert person.keys() <= known_person_keys
        assert "CprNummer" in person
    assert "CPRnummer" in sag["PrimaryPart"]
    assert "CprNummer" not in sag["PrimaryPart"]
    assert "<p>" in sag["Beskrivelse"]
    for key in ("Oprettet", "SenestAendret", "SenesteStatusAendring"):
        assert TIMESTAMP.match(sag[key]), key


def test_winter_and_summer_offsets_and_unknown_fathers_occur(client: Client, truth: GroundTruth) -> None:
    sager = [client.get(f"/api/sag/{i}") for i in main_ids(client)]
    offsets = {sag["Oprettet"][-6:] for sag in sager}
    assert offsets == {"+01:00", "+02:00"}
    fathers = [p.get("FarCPR") for sag in sager for p in sag["Personer"]]
    assert wire.UNKNOWN_PARENT in fathers


def test_the_number_interval_leaves_other_cases_out(client: Client, truth: GroundTruth) -> None:
    assert sorted(main_ids(client)) == sorted(c.id for c in truth.cases)
    everything = client.search({"Limit": 100_000})["Results"]
    assert {s["Id"] for s in everything if s["Id"] > OTHER_ID_BASE}
    assert all(s["Nummer"].startswith(("27.24.00-G01", "27.27.", "32.03.12")) for s in everything)


def test_paging_totals_and_the_modified_since_filter(client: Client, truth: GroundTruth) -> None:
    interval = {"From": "27.24.00-G01", "To": "27.24.00-G02"}
    first = client.search({"NummerInterval": interval, "Limit": 7, "Skip": 0})
    rest = client.search({"NummerInterval": interval, "Limit": 1000, "Skip": 7})
    ids = [s["Id"] for s in first["Results"] + rest["Results"]]
    assert first["TotalNumberOfResults"] == len(truth.cases) == len(ids)
    assert ids == sorted(ids)  # ascending Id: stable under edits while a client pages
    since = sorted(c.modified for c in truth.cases)[-5]
    recent = client.search({"NummerInterval": interval, wire.MODIFIED_SINCE: wire.format_timestamp(since)})
    assert {s["Id"] for s in recent["Results"]} == {c.id for c in truth.cases if c.modified >= since}
    assert "Personer" not in recent["Results"][0]


def test_grants_are_cases_of_their_own_linked_by_cpr(client: Client, truth: GroundTruth) -> None:
    case = next(c for c in truth.valid_cases() if len(c.measures) >= 1)
    body = {"NummerInterval": {"From": "27.27.00", "To": "27.28.00"}, "PrimaerPerson": {"CprNummer": case.child.cpr}}
    grants = client.search(body, parts=True)["Results"]
    assert len(grants) == len(case.measures)
    for grant in grants:
        assert re.match(r"^27\.27\.\d\d-G01-\d+-\d\d$", grant["Nummer"])
        assert grant["PrimaryPart"]["CPRnummer"] == case.child.cpr
        assert "Personer" in grant
        assert grant[wire.GRANT_DETAILS]["Lovgrundlag"].startswith(("SEL §", "BL §"))


def test_defects_go_on_the_wire_broken(client: Client, truth: GroundTruth) -> None:
    by_defect = {c.defect: c for c in truth.invalid_cases()}
    assert set(by_defect) == set(Defect)
    bad_cpr = client.get(f"/api/sag/{by_defect[Defect.bad_cpr].id}")
    assert bad_cpr["PrimaryPart"]["CPRnummer"] == by_defect[Defect.bad_cpr].child.cpr
    broken = client.get(f"/api/sag/{by_defect[Defect.broken_date].id}")
    assert broken["Oprettet"].startswith(BROKEN_DATE_TEXT + "T")
    backwards = client.get(f"/api/sag/{by_defect[Defect.closed_before_opened].id}")
    assert backwards["SenesteStatusAendring"][:10] < backwards["Oprettet"][:10]

    def form_xml(case_id: int) -> str:
        files = [f["Id"] for d in client.get(f"/api/sag/{case_id}/dokumenter") for f in d["Filer"]]
        return "".join(client.get(f"/api/fil/{i}") for i in files if i)

    assert ">7</trivsel_" in form_xml(by_defect[Defect.score_out_of_range].id)
    assert "<trivsel_humoer>" in form_xml(by_defect[Defect.unknown_theme].id)


def test_milestones_are_notes_and_completed_erindringer(client: Client, truth: GroundTruth) -> None:
    case = max(truth.valid_cases(), key=lambda c: len(c.events))
    notes = client.get(f"/api/sag/{case.id}/journalarknotes")
    reminders = client.get(f"/api/erindring/sag/{case.id}")
    completed = [r for r in reminders if r["ErAfsluttet"]]
    assert len(notes) + len(completed) == len(case.events)
    assert all(TIMESTAMP.match(n["KontaktTidspunkt"]) for n in notes)
    assert all(r["ErindringType"]["Navn"] in wire.REMINDER_TYPES.values() for r in completed)
    assert all(n["SagID"] == case.id for n in notes)
    assert all(r["SagId"] == case.id for r in reminders)


def test_tokens_grants_and_expiry(truth: GroundTruth) -> None:
    simulator = SbsysSimulator(truth, SimulatorSettings(token_lifetime=60))
    now = [0.0]
    simulator.monotonic = lambda: now[0]
    s = simulator.settings
    with serve(simulator.app) as base_url, httpx.Client(base_url=base_url) as http:
        password = {"grant_type": "password", "client_id": s.client_id, "client_secret": s.client_secret,
                    "username": s.username, "password": s.password}  # fmt: skip
        issued = http.post(TOKEN, data=password)
        assert issued.status_code == 200
        assert issued.json()["expires_in"] == 60
        assert http.post(TOKEN, data=password | {"password": "x"}).json()["error"] == "invalid_grant"
        assert http.post(TOKEN, data=password | {"client_secret": "x"}).status_code == 401
        assert http.post(TOKEN, data={"grant_type": "implicit"}).status_code == 400
        headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        assert http.post(wire.SEARCH_PATH, json={}, headers=headers).status_code == 200
        now[0] = 61.0
        assert http.post(wire.SEARCH_PATH, json={}, headers=headers).status_code == 401
        assert http.post(wire.SEARCH_PATH, json={}).status_code == 401


def test_a_proxy_prefix_moves_every_endpoint(truth: GroundTruth) -> None:
    prefix = "/convergens-sbsip-sbsys-webapi-proxy/proxy"
    simulator = SbsysSimulator(truth, SimulatorSettings(base_path=prefix))
    with serve(simulator.app) as origin:
        Client(origin + prefix, simulator).get("/api/sag/" + str(truth.cases[0].id))
        with httpx.Client(base_url=origin) as http:
            assert http.post(TOKEN, data={"grant_type": "client_credentials"}).status_code == 404


@pytest.mark.parametrize(
    ("knob", "status"), [("error_rate", {502, 503, 504}), ("rate_limit_rate", {429}), ("drop_rate", None)]
)
def test_fault_knobs(truth: GroundTruth, knob: str, status: set[int] | None) -> None:
    simulator = SbsysSimulator(truth, SimulatorSettings(retry_after=3, **{knob: 1.0}))
    with serve(simulator.app) as base_url, httpx.Client(base_url=base_url) as http:
        if status is None:
            with pytest.raises(httpx.RemoteProtocolError):
                http.post(TOKEN, data={})
            return
        answer = http.post(TOKEN, data={})
        assert answer.status_code in status
        if answer.status_code == 429:
            assert answer.headers["Retry-After"] == "3"


def test_modify_changes_cases_now_through_the_handle(truth: GroundTruth) -> None:
    fresh = generate(seed=21, municipalities=1, caseworkers=2, municipality_codes=["461"])
    simulator = SbsysSimulator(fresh, SimulatorSettings())
    before = simulator.now()
    with serve(simulator.app) as base_url:
        client = Client(base_url, simulator)
        changed = simulator.modify(3, seed=1)
        body = {"NummerInterval": {"From": "27.24.00-G01", "To": "27.24.00-G02"},
                wire.MODIFIED_SINCE: wire.format_timestamp(before)}  # fmt: skip
        assert sorted(s["Id"] for s in client.search(body)["Results"]) == sorted(changed)


def test_the_simulate_hook_serves_and_names_its_settings(truth: GroundTruth) -> None:
    factory = simulator_for("sbsys")
    with factory(SimulatorRequest(truth=truth, options={"latency": "0", "token_lifetime": "30"})) as running:
        assert running.location.startswith("http://127.0.0.1:")
        assert running.settings["base_url"] == running.location
        assert isinstance(running.handle, SbsysSimulator)
        assert running.handle.settings.token_lifetime == 30
        with httpx.Client() as http:
            form = {"grant_type": "password", **{k: running.settings[k] for k in ("client_id", "client_secret")},
                    "username": running.settings["username"], "password": running.settings["password"]}  # fmt: skip
            assert http.post(running.location + TOKEN, data=form).status_code == 200
    with pytest.raises(ConfigError, match="latency"), factory(SimulatorRequest(truth, options={"latency": "-1"})):
        pass


def test_a_simulated_source_reads_the_running_simulator(truth: GroundTruth) -> None:
    source = SourceSettings(name="demo", adapter="sbsys", municipality="461", settings={"seed": 3})
    assert has_simulator("sbsys")
    with simulated(source, truth) as running:
        assert source.settings == running.settings
        adapter = SbsysAdapter(SbsysConfig.model_validate(source.settings), SourceContext("demo", "461", PERSONS))
        adapter.check()
        adapter.close()
    assert source.settings == {"seed": 3}


def test_options_and_adapters_without_a_simulator() -> None:
    assert parse_options(["latency=0.02", "error_rate = 0.1"]) == {"latency": "0.02", "error_rate": "0.1"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_options(["latency"])

    class Plain(Adapter):
        name = "plain_test"

        def check(self) -> None:
            pass

        def fetch(self, cursor: str | None) -> Iterator[Batch]:
            yield Batch()

    class Plugin:
        @hookimpl
        def bridge_register_adapters(self, register: Callable[[type[Adapter]], None]) -> None:
            register(Plain)

    with registered(Plugin()), pytest.raises(ConfigError, match="ships no simulator"):
        simulator_for("plain_test")


def test_the_simulate_command_prints_a_source_block(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(simulate_module, "_wait_until_interrupted", interrupt)
    app = typer.Typer()
    app.command()(simulate_module.simulate)
    result = CliRunner().invoke(app, ["sbsys", "--port", "0", "--cases", "30", "--set", "latency=0"])
    assert result.exit_code == 0, result.output
    assert 'adapter = "sbsys"' in result.output
    assert 'base_url = "http://127.0.0.1:' in result.output
    assert "stopped" in result.output


def test_tls_with_an_on_premises_ca(truth: GroundTruth, tmp_path: Path) -> None:
    ca = trustme.CA()
    server_pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    simulator = SbsysSimulator(truth, SimulatorSettings())
    with serve(simulator.app, tls=ServerTLS(server_pem, server_pem)) as base_url:
        settings = connection_settings(base_url, simulator.settings) | {"max_attempts": 1}

        def check(**extra: Any) -> None:
            config = SbsysConfig.model_validate(settings | extra)
            adapter = SbsysAdapter(config, SourceContext("tls", "461", PERSONS))
            try:
                adapter.check()
            finally:
                adapter.close()

        assert base_url.startswith("https://")
        check(ca_bundle=str(ca_pem))
        with pytest.raises(AdapterError, match="could not be verified"):
            check()  # verification is on by default, and the system CAs do not know this one


# --- an installation unlike the model: each knob changes the wire as it says --------------------


@contextmanager
def _served(truth: GroundTruth, **knobs: Any) -> Iterator[Client]:
    simulator = SbsysSimulator(truth, SimulatorSettings(**knobs))
    with serve(simulator.app) as base_url:
        c = Client(base_url, simulator)
        try:
            yield c
        finally:
            c.http.close()


MAIN = {"NummerInterval": {"From": "27.24.00-G01", "To": "27.24.00-G02"}}


def test_pages_are_capped_and_the_total_can_be_wrong(truth: GroundTruth) -> None:
    with _served(truth, max_limit=3, total_skew=-2) as client:
        page = client.search({**MAIN, "Limit": 50, "Skip": 0})
    assert len(page["Results"]) == 3
    assert page["TotalNumberOfResults"] == len(list(truth.cases)) - 2


def test_ignored_filters_answer_every_case(truth: GroundTruth, client: Client) -> None:
    filtered = client.search({**MAIN, "Limit": 1000})["Results"]
    with _served(truth, ignore_filters=True) as ignoring:
        everything = ignoring.search({**MAIN, "Limit": 1000})["Results"]
    assert {s["Nummer"][:8] for s in filtered} == {"27.24.00"}
    assert {s["Nummer"][:8] for s in everything} >= {"27.24.00", "27.27.00", "32.03.12"}


def test_installation_templates_sparse_unknown_fields_and_casing(truth: GroundTruth, client: Client) -> None:
    sag_id = next(c.id for c in truth.valid_cases() if c.id % 2)
    modelled = client.get(f"/api/sag/{sag_id}")
    with _served(truth, template_names="installation", sparse=True, unknown_fields=True, casing=True) as other:
        shaped = other.get(f"/api/sag/{sag_id}")
        notes = other.get(f"/api/sag/{sag_id}/journalarknotes")
    assert modelled["SagSkabelon"]["Navn"] in {name for _, name in wire.TEMPLATES.values()}
    assert shaped["sagSkabelon"]["navn"] not in {name for _, name in wire.TEMPLATES.values()}
    assert "sagsStatus" in shaped
    assert "SagsStatus" not in shaped
    assert "udvidetFelt" in shaped
    assert all("udvidetFelt" in note for note in notes)
    assert "beskrivelse" not in shaped
    assert "Beskrivelse" in modelled
    assert None not in shaped.values()


def test_duplicates_keep_the_total_consistent(truth: GroundTruth) -> None:
    with _served(truth, duplicates=True) as client:
        page = client.search({**MAIN, "Limit": 1000})
    ids = [s["Id"] for s in page["Results"]]
    assert len(ids) > len(set(ids))
    assert page["TotalNumberOfResults"] == len(ids)


def test_cases_deleted_while_paging_shift_the_later_pages(truth: GroundTruth) -> None:
    fresh = generate(seed=21, municipalities=1, caseworkers=2, municipality_codes=["461"])
    with _served(fresh, delete_during_paging=2) as client:
        first = [s["Id"] for s in client.search({**MAIN, "Limit": 5, "Skip": 0})["Results"]]
        second = client.search({**MAIN, "Limit": 5, "Skip": 5})
    assert client.simulator.paging_deleted == first[:2]
    assert second["Results"][0]["Id"] not in first  # what was at offset 5 moved to offset 3


@pytest.mark.parametrize(
    ("knob", "answers"),
    [("not_found_rate", {404}), ("garbage_rate", {"not JSON"}), ("non_object_rate", {"null", "[]", "deep"})],
)
def test_fault_proxy_knobs_strike_requests_about_a_case(truth: GroundTruth, knob: str, answers: set[object]) -> None:
    with _served(truth, **{knob: 1.0}) as client:
        auth = {"Authorization": f"Bearer {client.token}"}
        response = client.http.get(f"/api/sag/{truth.cases[0].id}", headers=auth)
        searched = client.http.post(wire.SEARCH_PATH, json={**MAIN, "Limit": 1}, headers=auth)
    assert searched.status_code == 200
    assert searched.json()["Results"]
    if response.status_code == 404:
        seen: object = 404
    elif response.content in (b"null", b"[]"):
        seen = response.content.decode()
    elif response.content.startswith(b"[[["):
        seen = "deep"
    else:
        with pytest.raises(ValueError):
            response.json()
        seen = "not JSON"
    assert seen in answers
