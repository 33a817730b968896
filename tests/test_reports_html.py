"""The scoring report opens in headless Chromium, draws its charts, and holds no person data.

Locally the browser test is skipped when Chromium is not installed; under CI (``CI`` set) a
missing Chromium is a failure, not a skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from bridge.privacy import Pseudonymizer
from bridge.reports.charts import Heatmap
from bridge.reports.html import Html
from bridge.reports.scoring import CLASS_COLORS, write_scoring_report
from bridge.store import Store
from tests.test_scoring_synthetic import AS_OF, Loaded, load_synthetic

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("Chromium is not installed; CI must install it (apt-get install chromium)")
    pytest.skip("Chromium is not installed (install it with apt-get install chromium)")


def screenshot(html: Path, png: Path, profile: Path) -> None:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        "--window-size=1200,2000",
        "--hide-scrollbars",
        html.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert png.exists(), done.stderr.decode(errors="replace")[-2000:]


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = int(hex_colour.lstrip("#"), 16)
    return (value >> 16, (value >> 8) & 0xFF, value & 0xFF)


@pytest.fixture
def report(store: Store, persons: Pseudonymizer, tmp_path: Path) -> tuple[Path, Loaded]:
    loaded = load_synthetic(store, persons)
    return write_scoring_report(store, tmp_path / "out", Html(), as_of=AS_OF), loaded


def test_the_report_is_one_self_contained_file_without_person_data(report: tuple[Path, Loaded]) -> None:
    path, loaded = report
    assert path.name == "scores.html"
    html = path.read_text(encoding="utf-8")
    for forbidden in ("<script", "<link", "src=", "url(", "@import"):
        assert forbidden not in html
    assert re.findall(r"https?://[^\s\"'<>]+", html) == ["http://www.w3.org/2000/svg"] * html.count("<svg")
    loaded.assert_not_in(html)
    for section in ("Udvikling pr. tema", "Før og efter", "Sammenligning: kommune", "Dækning", "Metode"):
        assert f"<h2>{section}</h2>" in html
    assert "Udvikling og adfærd" in html


def test_the_report_opens_in_chromium_and_draws_its_charts(report: tuple[Path, Loaded], tmp_path: Path) -> None:
    path, _ = report
    png = tmp_path / "report.png"
    screenshot(path, png, tmp_path / "profile")
    with Image.open(png) as image:
        pixels = image.convert("RGB")
        width, height = pixels.size
        assert (width, height) == (1200, 2000)
        colours = _colour_counts(pixels)
    non_white = sum(n for rgb, n in colours.items() if min(rgb) < 235)
    assert non_white > 0.05 * width * height, "the page looks blank"
    assert len(colours) > 200
    improved, _, worsened = (_rgb(c) for c in CLASS_COLORS)
    assert colours.get(improved, 0) > 2000, "no 'forbedret' bars drawn"
    assert colours.get(worsened, 0) > 200, "no 'forværret' bars drawn"
    heat = Heatmap(row_axis="", column_axis="").color
    assert sum(n for rgb, n in colours.items() if _near(rgb, heat, 60) and rgb != (255, 255, 255)) > 2000


def _colour_counts(image: Image.Image) -> dict[tuple[int, int, int], int]:
    found = image.getcolors(maxcolors=1 << 24)
    assert found is not None
    counts: dict[tuple[int, int, int], int] = {}
    for n, colour in found:
        assert isinstance(colour, tuple)
        red, green, blue = colour[:3]
        counts[(red, green, blue)] = n
    return counts


def _near(rgb: tuple[int, int, int], target: tuple[int, int, int], distance: int) -> bool:
    return sum(abs(a - b) for a, b in zip(rgb, target, strict=True)) <= distance


def test_as_of_defaults_to_today(store: Store, tmp_path: Path) -> None:
    path = write_scoring_report(store, tmp_path / "empty.html", Html())
    html = path.read_text(encoding="utf-8")
    assert date.today().strftime("%d.%m.%Y") in html
    assert "Ingen data." in html
