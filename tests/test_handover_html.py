"""The handover report with its dossiers opens in headless Chromium, prints one case per page, and holds no
person data; the workload report renders in every format. Over the synthetic ground truth, on SQLite and PostgreSQL.

Locally the browser tests are skipped when Chromium is not installed; under CI a missing Chromium fails.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import openpyxl
import pytest
from PIL import Image
from typer.testing import CliRunner

from bridge.cli import app
from bridge.privacy import Pseudonymizer
from bridge.reports.html import Html
from bridge.reports.workload import LOAD_COLOR, handover_report
from bridge.services.handover import dossiers, plan_handover
from bridge.services.workload import workload
from bridge.store import Store
from tests.test_reports_html import _colour_counts, _rgb, chromium, screenshot
from tests.test_scoring_synthetic import AS_OF, Loaded, load_synthetic


@pytest.fixture
def written(store: Store, persons: Pseudonymizer, tmp_path: Path) -> tuple[Path, Loaded, int]:
    loaded = load_synthetic(store, persons)
    workers = workload(store, on=AS_OF).caseworkers
    leaving = max(workers, key=lambda w: (w.children, w.name))
    other = next(w for w in workers if w.municipality == leaving.municipality and w.id != leaving.id)
    plan = plan_handover(store, leaving.name, to=[other.name], on=AS_OF, municipality=leaving.municipality)
    path = tmp_path / "handover.html"
    path.write_bytes(Html().render(handover_report(plan, dossiers(store, plan))))
    return path, loaded, len(plan.moves)


def test_the_dossiers_hold_no_person_data(written: tuple[Path, Loaded, int]) -> None:
    path, loaded, moved = written
    html = path.read_text(encoding="utf-8")
    loaded.assert_not_in(html)
    assert len(re.findall(r"<h2>Sag 27\.24\.00-G01-[0-9-]+, \d+ år</h2>", html)) == moved
    for heading in ("Sagen", "Seneste score pr. tema"):
        assert html.count(f"<h3>{heading}</h3>") == moved
    assert html.count('<section id="afsnit-') == moved + 1  # the plan, then one section per case
    assert "section + section { break-before: page;" in html


def test_the_handover_report_opens_in_chromium_and_prints_one_case_per_page(
    written: tuple[Path, Loaded, int], tmp_path: Path
) -> None:
    path, _, moved = written
    png = tmp_path / "handover.png"
    screenshot(path, png, tmp_path / "profile")
    with Image.open(png) as image:
        colours = _colour_counts(image.convert("RGB"))
    assert colours.get(_rgb(LOAD_COLOR), 0) > 2000, "no load bars drawn for the receivers"
    pdf = tmp_path / "handover.pdf"
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile-pdf'}", "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
               path.resolve().as_uri()]  # fmt: skip
    done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert pdf.exists(), done.stderr.decode(errors="replace")[-2000:]
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes()))
    # The plan, each dossier and the notes each start a page of their own: at least moved + 2 pages.
    assert pages >= moved + 2, f"{pages} pages for the plan, {moved} dossiers and the notes"


runner = CliRunner()


def test_the_workload_report_in_every_format(
    store: Store, store_url: str, persons: Pseudonymizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_synthetic(store, persons)
    monkeypatch.delenv("BRIDGE_DATABASE_URL", raising=False)
    (tmp_path / "bridge.toml").write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    on = AS_OF.isoformat()
    done = runner.invoke(app, ["workload", "--on", on, "-f", "json"])
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    workers = workload(store, on=AS_OF).caseworkers
    assert document["key_figures"][0]["value"] == len(workers)
    assert document["key_figures"][1]["value"] == sum(w.children for w in workers)
    [people] = [t for t in document["tables"] if t["title"] == "Sagsbehandlere"]
    assert sorted(r["caseworker"] for r in people["rows"]) == sorted(w.name for w in workers)
    for fmt, out in (("html", "workload.html"), ("xlsx", "workload.xlsx"), ("csv", "workload-csv")):
        done = runner.invoke(app, ["workload", "--on", on, "-f", fmt, "-o", out])
        assert done.exit_code == 0, done.output
    html = (tmp_path / "workload.html").read_text(encoding="utf-8")
    assert "<h1>Sagsbelastning pr. 30.06.2026</h1>" in html
    assert html.count("<svg") == 3  # the distribution, the teams, the caseworkers
    assert html.count('<line class="reference"') == 2  # the normtal across the teams' and the caseworkers' bars
    loaded.assert_not_in(html)
    assert openpyxl.load_workbook(tmp_path / "workload.xlsx").sheetnames[0] == "Indhold"
    assert len(list((tmp_path / "workload-csv").glob("*.csv"))) == 4  # key figures and three tables
