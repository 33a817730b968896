"""``bridge cases``: finding a child by status, caseworker, municipality, case number or CPR, on both stores."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.cli.output import mode
from bridge.errors import BridgeError, ConfigError
from bridge.privacy import Pseudonymizer
from bridge.services.cases import age, find_cases
from bridge.store import Store
from bridge.synthetic.generate import generate
from tests.conftest import TEST_SECRET
from tests.test_scoring_synthetic import AS_OF, SEED, Loaded, load_synthetic

runner = CliRunner()


@pytest.fixture
def project(
    store: Store, store_url: str, persons: Pseudonymizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Loaded:
    loaded = load_synthetic(store, persons)
    monkeypatch.setenv("BRIDGE_PERSON_KEY_SECRET", TEST_SECRET)
    monkeypatch.delenv("BRIDGE_DATABASE_URL", raising=False)
    (tmp_path / "bridge.toml").write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mode, "json_result", False)
    return loaded


def _json(*args: str, prompt: str | None = None) -> list[dict[str, object]]:
    result = runner.invoke(app, ["--format", "json", "cases", *args], input=prompt)
    assert result.exit_code == 0, result.output
    found: list[dict[str, object]] = json.loads(result.stdout[result.stdout.index("[") :])
    return found


def test_lists_open_cases_of_a_caseworker_with_age_never_the_key(project: Loaded) -> None:
    named = [r for _, r in project.live() if r.caseworker]
    part = named[0].caseworker.name.split()[-1] if named[0].caseworker else ""
    expected = sorted(
        r.case_number for r in named if r.status == "open" and r.caseworker and part in r.caseworker.name
    )
    found = _json("--open", "--caseworker", part.upper())
    assert sorted(str(c["case"]) for c in found) == expected
    assert {c["status"] for c in found} == {"open"}
    assert all(part in str(c["caseworker"]) for c in found)
    text = json.dumps(found)
    for record in project.records:
        assert record.child_key not in text


def test_lookup_by_case_number_shows_the_childs_age(project: Loaded) -> None:
    _, record = project.live()[5]
    [case] = [c for c in _json(record.case_number) if c["source"] == "synthetic"]
    assert case["age"] == age(record.child_birth_date, date.today())
    assert case["opened"] == record.opened.isoformat()


def test_lookup_by_cpr_at_a_hidden_prompt_finds_the_childs_cases_and_shows_no_cpr(
    project: Loaded, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    truth = generate(seed=SEED, municipalities=2, caseworkers=3, as_of=AS_OF)
    live = {r.source_ref: r for s, r in project.live() if s == "synthetic"}
    child = next(c for c in truth.cases if c.defect is None and str(c.id) in live)
    caplog.set_level(logging.DEBUG)
    result = runner.invoke(app, ["cases", "--cpr"], input=child.child.cpr + "\n")
    assert result.exit_code == 0, result.output
    digits = child.child.cpr.replace("-", "")
    for shown in (result.output, caplog.text):
        assert child.child.cpr not in shown
        assert digits not in shown
        assert digits[:6] not in shown
    assert live[str(child.id)].case_number in result.output


def test_an_invalid_cpr_is_a_usage_error_that_repeats_nothing(project: Loaded) -> None:
    result = runner.invoke(app, ["cases", "--cpr"], input="3213991234\n")
    assert isinstance(result.exception, ConfigError)
    assert result.exception.exit_code == 2
    assert "3213991234" not in result.output + str(result.exception)


def test_an_unknown_case_number_exits_1(project: Loaded) -> None:
    result = runner.invoke(app, ["cases", "99.99.99-X"])
    assert isinstance(result.exception, BridgeError)
    assert result.exception.exit_code == 1


def test_filters_combine_in_the_service(project: Loaded, store: Store) -> None:
    municipality = project.records[0].municipality
    found = find_cases(store, municipality=municipality, open_only=True, on=AS_OF)
    expected = [r for s, r in project.live() if r.municipality == municipality and r.status == "open"]
    assert sorted(c.case_number for c in found) == sorted(r.case_number for r in expected)
    assert all(c.label().startswith(f"sag {c.case_number}, ") for c in found)


@pytest.mark.parametrize(
    ("born", "on", "years"),
    [(date(2016, 2, 29), date(2024, 2, 28), 7), (date(2016, 2, 29), date(2024, 2, 29), 8),
     (date(2016, 2, 29), date(2023, 3, 1), 7), (date(2010, 12, 31), date(2024, 1, 1), 13)],
)  # fmt: skip
def test_age_in_whole_years(born: date, on: date, years: int) -> None:
    assert age(born, on) == years
