"""``bridge audit …`` end to end over the synthetic truth, on SQLite and PostgreSQL: the rules listing, the
barometer in every format, a sample's sheet, import, single findings, follow-up and the report."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.privacy import Pseudonymizer
from bridge.services import sampling
from bridge.services.audit import audit_rules
from bridge.services.sampling import DrawSpec, Strategy
from bridge.services.sheet import COL, SHEET
from bridge.store import Store
from bridge.sync.writer import store_records
from bridge.synthetic.generate import generate

runner = CliRunner()
AS_OF = date(2025, 12, 31)


@pytest.fixture
def project(
    store: Store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, persons: Pseudonymizer
) -> Path:
    truth = generate(seed=9, municipalities=1, caseworkers=3, as_of=date(2026, 3, 1))
    store_records(store, "synthetic", truth.expected_records(persons))
    monkeypatch.delenv("BRIDGE_DATABASE_URL", raising=False)
    (tmp_path / "bridge.toml").write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_rules_lists_every_item_with_its_provisions(project: Path) -> None:
    result = runner.invoke(app, ["audit", "rules", "--format", "json"])
    assert result.exit_code == 0, result.output
    rules = {r["id"]: r for r in json.loads(result.stdout)}
    assert rules["undersoegelse_4_maaneder"]["hjemmel"] == "SEL § 50, stk. 7, BL § 20, stk. 3"
    assert rules["plan_maal"]["type"] == "vurdering"


def test_barometer_as_json_html_and_xlsx(project: Path) -> None:
    result = runner.invoke(app, ["audit", "barometer", "--period", "2025", "--as-of", "2025-12-31", "-f", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["kind"] == "audit-barometer"
    key_figures = document["tables"][0]["rows"]
    assert [r["area"] for r in key_figures][:4] == ["Faglig udredning", "Inddragelse", "Valg af indsats", "Opfølgning"]
    html = runner.invoke(
        app, ["audit", "barometer", "-p", "2024", "-p", "2025", "--by", "team", "--as-of", "2025-12-31", "-f", "html"]
    )
    assert html.exit_code == 0, html.output
    assert "Andel opfyldt" in html.stdout
    assert "<svg" in html.stdout
    out = project / "barometer.xlsx"
    xlsx = runner.invoke(
        app, ["audit", "barometer", "-p", "2025", "--as-of", "2025-12-31", "-f", "xlsx", "-o", str(out)]
    )
    assert xlsx.exit_code == 0, xlsx.output
    assert openpyxl.load_workbook(out).sheetnames


def test_a_tilsyn_round_from_sheet_to_report(project: Path, store: Store) -> None:
    summary = sampling.draw_sample(store, DrawSpec(Strategy.per_caseworker, AS_OF, k=2), seed="cli")
    sheet = project / "ark.xlsx"
    result = runner.invoke(app, ["audit", "sheet", str(summary.id), "--out", str(sheet)])
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(sheet)
    rows = list(book[SHEET].iter_rows(min_row=2))
    judgement = [r for r in rows if r[COL["Automatisk"] - 1].value == "nej"]
    for row in judgement:
        row[COL["Resultat"] - 1].value = "Opfyldt"
    judgement[0][COL["Resultat"] - 1].value = "Ikke opfyldt"
    book.save(sheet)
    imported = runner.invoke(app, ["audit", "import", str(sheet)])
    assert imported.exit_code == 0, imported.output
    assert f"{len(judgement)} findings changed" in imported.stdout
    case_number = judgement[0][COL["Sagsnummer"] - 1].value
    rule = judgement[0][COL["Punkt"] - 1].value
    recorded = runner.invoke(
        app, ["audit", "record", str(summary.id), str(case_number), str(rule), "--refusion", "--note", "Se notat"]
    )
    assert recorded.exit_code == 0, recorded.output
    assert "version 3" in recorded.stdout
    assert runner.invoke(app, ["audit", "follow-up"]).exit_code == 0
    report = runner.invoke(app, ["audit", "report", str(summary.id), "-f", "json"])
    assert report.exit_code == 0, report.output
    document = json.loads(report.stdout)
    figures = {r["figure"]: r["value"] for r in document["tables"][0]["rows"]}
    assert figures["Sager i stikprøven"] == summary.sample_size
    assert figures["Fejl med refusionsmæssig betydning"] == 1
    assert "Med 95 % sikkerhed er fejlandelen" in document["tables"][0]["note"]
    refusion = next(t for t in document["tables"] if t["title"] == "Fejl med refusionsmæssig betydning")
    title = next(r.title for r in audit_rules() if r.id == rule)
    assert refusion["rows"] == [{"case_number": case_number, "rule": title, "note": "Se notat"}]


def test_a_bad_sheet_exits_with_the_cells_named(project: Path, store: Store) -> None:
    summary = sampling.draw_sample(store, DrawSpec(Strategy.per_caseworker, AS_OF, k=1), seed="cli")
    sheet = project / "ark.xlsx"
    assert runner.invoke(app, ["audit", "sheet", str(summary.id), "--out", str(sheet)]).exit_code == 0
    book = openpyxl.load_workbook(sheet)
    book[SHEET].cell(2, COL["Resultat"]).value = "Nok"
    book.save(sheet)
    result = runner.invoke(app, ["audit", "import", str(sheet)])
    assert result.exit_code != 0
    assert f"{SHEET}!I2" in str(result.exception)
