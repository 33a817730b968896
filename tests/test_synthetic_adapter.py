"""The synthetic adapter's contract beyond tests/test_ground_truth.py: pages, cursors, failures, bad payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from bridge.adapter import Batch, SourceContext
from bridge.errors import AdapterError
from bridge.model.records import rejection_reason
from bridge.plugins import get_plugins
from bridge.privacy import Pseudonymizer
from bridge.synthetic import adapter as synthetic_adapter
from bridge.synthetic.adapter import SyntheticAdapter, SyntheticConfig, render
from bridge.synthetic.truth import GroundTruth

MUNICIPALITY = "751"


@pytest.fixture
def persons() -> Pseudonymizer:
    return Pseudonymizer(SecretStr("test-secret-123"))


def _adapter(persons: Pseudonymizer, **settings: Any) -> SyntheticAdapter:
    config = SyntheticConfig.model_validate({"seed": 3, "caseworkers": 2, "invalid": 5, **settings})
    return SyntheticAdapter(config, SourceContext(source="syn", municipality=MUNICIPALITY, persons=persons))


def _refs(batch: Batch) -> list[str | None]:
    return [r.source_ref for r in batch.records] + [r.source_ref for r in batch.rejections]


def _assert_no_cpr(text: str, truth: GroundTruth) -> None:
    for cpr in truth.cprs():
        assert cpr not in text
        assert cpr.replace("-", "") not in text


def test_the_adapter_is_registered_by_name_and_serves_the_context_municipality(persons: Pseudonymizer) -> None:
    assert get_plugins().adapter("synthetic") is SyntheticAdapter
    adapter = _adapter(persons)
    adapter.check()
    records = [r for b in adapter.fetch(None) for r in b.records]
    assert records
    assert {r.municipality for r in records} == {MUNICIPALITY}


def test_pages_are_full_but_the_last_and_each_cursor_is_its_last_case(persons: Pseudonymizer) -> None:
    adapter = _adapter(persons, page_size=13)
    truth = adapter.config.truth(MUNICIPALITY)
    by_id = {str(c.id): c for c in truth.cases}
    batches = list(adapter.fetch(None))
    sizes = [len(_refs(b)) for b in batches]
    assert sizes[:-1] == [13] * (len(batches) - 1)
    assert 1 <= sizes[-1] <= 13
    keys = []
    for batch in batches:
        # the last case of the page in (modified, id) order is the one named by the cursor
        last = max((by_id[ref] for ref in _refs(batch) if ref), key=lambda c: (c.modified, c.id))
        assert batch.cursor == f"{last.modified.isoformat()}|{last.id}"
        keys.append((last.modified, last.id))
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_a_cursor_past_the_end_yields_nothing(persons: Pseudonymizer) -> None:
    adapter = _adapter(persons)
    *_, last = adapter.fetch(None)
    assert list(adapter.fetch(last.cursor)) == []


def test_exactly_the_touched_cases_follow_the_old_cursor(persons: Pseudonymizer) -> None:
    *_, last = _adapter(persons).fetch(None)
    after = _adapter(persons, touched=3, touch_count=2)
    horizon = datetime.combine(after.config.as_of + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    touched = {str(c.id) for c in after.config.truth(MUNICIPALITY).cases if c.modified > horizon}
    assert 2 <= len(touched) <= 6
    resumed = list(after.fetch(last.cursor))
    refs = [ref for b in resumed for ref in _refs(b)]
    assert len(refs) == len(set(refs))
    assert set(refs) == touched
    changed = {r.source_ref: r for b in resumed for r in b.records}
    assert all(r.source_modified > horizon for r in changed.values())


@pytest.mark.parametrize("fail_after", [0, 2])
def test_fail_after_batches_raises_after_yielding_that_many(persons: Pseudonymizer, fail_after: int) -> None:
    normal = list(_adapter(persons, page_size=10).fetch(None))
    failing = _adapter(persons, page_size=10, fail_after_batches=fail_after).fetch(None)
    yielded: list[Batch] = []
    with pytest.raises(RuntimeError, match=f"after {fail_after} batches"):
        yielded.extend(failing)
    assert [b.cursor for b in yielded] == [b.cursor for b in normal[:fail_after]]


def test_fail_after_more_batches_than_there_are_never_fails(persons: Pseudonymizer) -> None:
    normal = list(_adapter(persons, page_size=50).fetch(None))
    assert len(list(_adapter(persons, page_size=50, fail_after_batches=len(normal)).fetch(None))) == len(normal)


@pytest.mark.parametrize("cursor", ["yesterday|12", "2026-11-01T10:00:00+00:00|x", "2026-11-01T10:00:00|1001"])
def test_a_foreign_cursor_is_an_adapter_error(persons: Pseudonymizer, cursor: str) -> None:
    with pytest.raises(AdapterError, match="cannot resume"):
        list(_adapter(persons).fetch(cursor))


def _valid_payload(adapter: SyntheticAdapter) -> tuple[dict[str, Any], GroundTruth]:
    truth = adapter.config.truth(MUNICIPALITY)
    case = next(truth.valid_cases())
    return json.loads(render(case, truth)), truth


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"municipality": "0101901234"}, "municipality: String should match pattern"),
        ({"modified": "0101901234"}, "######-####"),
        ({"closed": "2019-13-01"}, "closed: '2019-13-01' is not a date"),
        ({"assessments": [{"theme": "sundhed", "value": True, "on": "2024-01-01", "by": None}]}, "value True"),
        ({"caseworker": None}, "not a synthetic case payload"),
    ],
)
def test_a_broken_payload_gives_a_short_reason_without_the_cpr_shaped_input(
    persons: Pseudonymizer, change: dict[str, Any], reason: str
) -> None:
    adapter = _adapter(persons)
    payload, truth = _valid_payload(adapter)
    with pytest.raises(ValueError) as raised:
        adapter.parse_payload(json.dumps({**payload, **change}))
    text = rejection_reason(raised.value)
    assert reason in text
    assert "0101901234" not in text
    assert len(text) < 200
    _assert_no_cpr(text, truth)


def test_an_unknown_target_group_is_read_as_the_default_not_rejected(persons: Pseudonymizer) -> None:
    adapter = _adapter(persons)
    payload, _ = _valid_payload(adapter)
    assert adapter.parse_payload(json.dumps({**payload, "target_group": "0101901234"})).target_group == "udsatte"


@pytest.mark.parametrize("payload", ["", "[]", '{"id": 1}', "not json"])
def test_a_payload_that_is_no_case_at_all_is_a_value_error(persons: Pseudonymizer, payload: str) -> None:
    with pytest.raises(ValueError):  # and no KeyError or TypeError: the run would end instead of quarantining
        _adapter(persons).parse_payload(payload)


def test_guardian_cprs_are_validated_too(persons: Pseudonymizer) -> None:
    adapter = _adapter(persons)
    payload, truth = _valid_payload(adapter)
    payload["child"]["guardians"] = ["311399-1234"]
    with pytest.raises(ValueError, match="guardian CPR: CPR number holds an impossible birth date") as raised:
        adapter.parse_payload(json.dumps(payload))
    _assert_no_cpr(str(raised.value), truth)
    assert "311399" not in str(raised.value)


def test_the_rendered_payload_holds_the_cprs_as_a_source_would(persons: Pseudonymizer) -> None:
    """The raw payload is the one place a CPR may stay (the quarantine keeps it for replay)."""
    adapter = _adapter(persons)
    truth = adapter.config.truth(MUNICIPALITY)
    case = next(truth.valid_cases())
    payload = json.loads(render(case, truth))
    assert payload["child"]["cpr"] == case.child.cpr
    assert payload["child"]["guardians"] == case.child.guardians
    record = adapter.parse_payload(render(case, truth))
    assert record.child_cpr is None
    _assert_no_cpr(repr(record), truth)


def test_the_hostile_listing_knobs_do_what_they_say(persons: Pseudonymizer, caplog: pytest.LogCaptureFixture) -> None:
    plain = [r for b in _adapter(persons, invalid=0).fetch(None) for r in b.records]
    knobs = {"page_cap": 4, "unrelated": 2, "duplicates": True, "unknown": True, "casing": True, "sparse": True}
    adapter = _adapter(persons, invalid=0, page_size=10, **knobs)
    with caplog.at_level("WARNING", logger="bridge.synthetic"):
        batches = list(adapter.fetch(None))
    assert max(len(b.records) for b in batches) <= 4
    assert [r for b in batches for r in b.records] == plain  # the same records, whatever the listing did
    warning = caplog.records[-1].getMessage()
    for counted in ("cases of other municipalities", "repeated cases", "unknown target group"):
        assert counted in warning
    truth = adapter.config.truth(MUNICIPALITY)
    listed, _ = synthetic_adapter._Listing(truth, sorted(truth.cases, key=lambda c: c.id), adapter.config).page(0, 10)
    assert any('"Case_Number"' in p for p in listed)  # the other casing
    assert not any(": null" in p or ": []" in p for p in listed)  # optional fields left out
    assert all('"sagstype"' in p.casefold() for p in listed)  # a field bridge does not know
