"""The simulator's knobs for the conformance kit: each changes the wire as it says."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
from plugins.dubu.tests.harness import small_truth

from bridge.simulation.server import serve
from bridge_dubu import wire
from bridge_dubu.simulator import TEST_CONTEXT, DubuSimulator, SimulatorSettings

UPPER_UUID = re.compile(rb">[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}<")


def simulator(**knobs: Any) -> DubuSimulator:
    return DubuSimulator(small_truth(), SimulatorSettings(fault_seed=3, **knobs))


def call(sim: DubuSimulator, operation: wire.Operation, body: bytes) -> httpx.Response:
    headers = {"SOAPAction": operation.soap_action, "Content-Type": wire.CONTENT_TYPE}
    with serve(sim.app) as origin:
        return httpx.post(origin + wire.SERVICE_PATH, content=body, headers=headers)


def listing(
    sim: DubuSimulator, token: str | None = None, since: datetime = wire.FULL_SYNC_FROM, count: int = 7
) -> httpx.Response:
    return call(sim, wire.Operation.list_changed, wire.render_listing_request(TEST_CONTEXT, since, token, count))


def page(response: httpx.Response) -> wire.ListingPage:
    assert response.status_code == 200, response.text
    return wire.read_listing(io.BytesIO(response.content))


def test_capped_pages_are_shorter_than_asked_some_empty_and_go_on() -> None:
    sim = simulator(max_page=3, short_pages=True)
    sizes, token = [], None
    while True:
        answer = page(listing(sim, token))
        sizes.append(len(answer.references))
        if answer.token is None:
            break
        token = answer.token
    assert max(sizes) <= 3
    assert 0 in sizes[:-1]  # an empty page that still says there is more
    assert sum(sizes) == len(sim.truth.cases)
    assert len(page(listing(simulator())).references) == 7


def test_an_ignored_filter_lists_cases_older_than_asked_for() -> None:
    now = datetime.now(UTC)
    assert page(listing(simulator(), since=now)).references == ()
    older = page(listing(simulator(ignore_filter=True), since=now)).references
    assert len(older) == 7
    assert all(r.modified < now for r in older)


def test_foreign_cases_are_listed_and_delivered_with_another_kommunekode() -> None:
    sim = simulator(foreign_cases=2)
    listed = {r.uuid for r in page(listing(sim, count=500)).references}
    own = {sim.case_uuid(c) for c in sim.truth.cases}
    foreign = listed - own
    assert len(foreign) == 2
    assert own <= listed
    for uuid in foreign:
        case = call(sim, wire.Operation.fetch_case, wire.render_case_request(TEST_CONTEXT, uuid))
        sag = wire.read_case_bytes(case.content)
        assert (sag.uuid, sag.municipality) == (uuid, "101")


def test_upper_case_uuids_reach_the_wire_and_read_as_the_same_uuids() -> None:
    sim = simulator(upper_case_uuids=True)
    answer = listing(sim)
    assert UPPER_UUID.search(answer.content)
    assert page(answer).references == page(listing(simulator())).references
    odd = next(c for c in sim.truth.cases if c.id % 2)
    uuid = sim.case_uuid(odd)
    case = call(sim, wire.Operation.fetch_case, wire.render_case_request(TEST_CONTEXT, uuid))
    assert uuid.upper().encode() in case.content
    assert wire.read_case_bytes(case.content).uuid == uuid


def test_expiring_tokens_answer_fault_2002() -> None:
    sim = simulator(token_expiry_rate=1.0)
    token = page(listing(sim)).token
    assert token is not None
    again = listing(sim, token)
    assert again.status_code == 500
    fault = wire.parse_fault(again.content)
    assert fault is not None
    assert fault.code == wire.FaultCode.token_expired


def test_a_repeated_token_comes_back_on_the_second_page() -> None:
    sim = simulator(repeat_token=True)
    token = page(listing(sim)).token
    assert token is not None
    assert page(listing(sim, token)).token == token
    assert page(listing(simulator(), token)).token != token


def test_value_variants_write_cprs_booleans_and_whitespace_otherwise_and_read_the_same() -> None:
    sim, plain = simulator(value_variants=True), simulator()
    odd = next(c for c in sim.truth.cases if c.id % 2 and c.measures)
    request = wire.render_case_request(TEST_CONTEXT, sim.case_uuid(odd))
    varied = call(sim, wire.Operation.fetch_case, request).content
    assert odd.child.cpr.replace("-", "").encode() in varied
    assert odd.child.cpr.encode() not in varied
    assert re.search(rb"Bevilget>\n    [01] <", varied)
    read, expected = (
        wire.read_case_bytes(data) for data in (varied, call(plain, wire.Operation.fetch_case, request).content)
    )
    undashed = replace(
        expected,
        child_cpr=expected.child_cpr.replace("-", ""),
        custody_holders=[replace(h, cpr=h.cpr.replace("-", "")) for h in expected.custody_holders],
    )
    same = read == undashed  # compared apart from the assert, so a failure prints no CPR
    assert same
