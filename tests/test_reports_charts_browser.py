"""The charts as a leader sees them, measured in headless Chromium.

The report is rendered, a copy gets a measuring script (the report itself allows none), and
Chromium lays it out: the bounding boxes of the drawn points, the scale's ends, the "ikke
vurderet" lane and the date labels come from the page, and a screenshot of the same page
shows the points in their colour where the boxes say they are.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bridge.model.records import Theme
from bridge.plugins import get_plugins
from bridge.reports.charts import Lines, Scale
from bridge.reports.formats import Report, Table
from bridge.reports.scoring import CLASS_COLORS, child_report, cohort_report
from bridge.services.scoring import (
    ChangeClass,
    ChildScores,
    CohortRow,
    CohortSummary,
    Progression,
    ScorePoint,
    ThemeSeries,
    Threshold,
)
from tests.test_reports_html import chromium, screenshot

MEASURE = """
<script>
addEventListener("load", () => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return {x: r.left, y: r.top, right: r.right, bottom: r.bottom, cx: (r.left + r.right) / 2,
            cy: (r.top + r.bottom) / 2, text: e.textContent, value: e.dataset.value || null}; };
  const all = (css) => [...document.querySelectorAll(css)].map(box);
  const out = {points: all(".chart-lines .point"), missing: all(".chart-lines .not-assessed"),
    ticks: all(".chart-lines .tick-x"), ends: all(".chart-lines .scale-end"), grid: all(".chart-lines line"),
    changes: all(".chart-diverging rect.change"), better: all(".chart-diverging .better-end"),
    worse: all(".chart-diverging .worse-end"), withheld: all(".chart-stacked .withheld"),
    rowLabels: all(".chart-diverging .row-label"), texts: all(".chart-lines text"),
    svg: all(".chart-lines")};
  const pre = document.createElement("pre"); pre.id = "measured"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def measure(report: Report, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """Lay ``report`` out in Chromium: the measured boxes, and the page's screenshot."""
    html = get_plugins().report_formats()["html"].render(report).decode()
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    png = tmp_path / "report.png"
    screenshot(page, png, tmp_path / "profile-shot")
    probe = tmp_path / "measure.html"
    probe.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace(
        "</body>", MEASURE + "</body>"), encoding="utf-8")  # fmt: skip
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'profile-dom'}", "--window-size=1200,2000", "--hide-scrollbars",
        "--virtual-time-budget=5000",
        "--dump-dom", probe.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, timeout=120, check=False, text=True)
    found = re.search(r'<pre id="measured">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-2000:]
    return json.loads(found[1].replace("&quot;", '"').replace("&amp;", "&")), png


U = Theme.udvikling_adfaerd
SHARE = Scale(0, 100, better="high", low_label="0 % opfyldt", high_label="100 % opfyldt", step=20)
LIMIT = Threshold(theme=U, n=40, sd=1.0, r=0.8, value=1.24)
# Monthly-ish scores over three years, falling from 5 (truet trivsel) to 1 (i trivsel), with
# one "ikke vurderet" in the middle: many dates, so the date axis must thin its labels.
DAYS = [date(2021 + m // 12, m % 12 + 1, 15) for m in range(0, 36, 2)]
VALUES: list[int | None] = [5, 5, 5, 4, 4, 4, 4, None, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1]


def falling_child() -> ChildScores:
    points = [ScorePoint(assessed_on=d, value=v) for d, v in zip(DAYS, VALUES, strict=True)]
    progression = Progression(
        theme=U, baseline_on=DAYS[0], baseline=5, latest_on=DAYS[-1], latest=1, scores=17, change=-4,
        change_class=ChangeClass.improved, movement=False,
    )  # fmt: skip
    return ChildScores(
        child_key="k" * 32, series=[ThemeSeries(theme=U, points=points)], progressions=[progression],
        thresholds=[LIMIT],
    )  # fmt: skip


def test_a_child_whose_scores_fall_from_5_to_1_is_drawn_rising(tmp_path: Path) -> None:
    boxes, png = measure(child_report(falling_child()), tmp_path)
    points = boxes["points"]
    assert [float(p["value"]) for p in points] == [v for v in VALUES if v is not None]
    heights = [p["cy"] for p in points]
    # Screen y grows downwards: an improvement (5 → 1) must move every point up, never down.
    assert all(later <= earlier for earlier, later in itertools.pairwise(heights))
    assert heights[-1] < heights[0] - 100
    ends = {e["text"]: e for e in boxes["ends"]}
    assert abs(ends["i trivsel"]["cy"] - heights[-1]) < 8, "'i trivsel' must label the top, where 1 is drawn"
    assert abs(ends["truet trivsel"]["cy"] - heights[0]) < 8
    with Image.open(png) as image:
        top = points[-1]
        assert (0x1F, 0x6F, 0xB2) in _around(image, top), "the screenshot shows no point where the top point is"
        assert (0x1F, 0x6F, 0xB2) not in _around(image, {"cx": top["cx"], "cy": top["cy"] + 140})


def test_ikke_vurderet_is_drawn_apart_from_the_scale(tmp_path: Path) -> None:
    boxes, _ = measure(child_report(falling_child()), tmp_path)
    [missing] = boxes["missing"]
    lowest_on_scale = max(p["bottom"] for p in boxes["points"])
    truet = next(e for e in boxes["ends"] if e["text"] == "truet trivsel")
    assert missing["y"] > lowest_on_scale + 12, "'ikke vurderet' must not sit on the scale"
    assert missing["y"] > truet["bottom"] + 12
    assert missing["cx"] == pytest.approx(
        sorted(p["cx"] for p in boxes["points"])[6] + (boxes["points"][7]["cx"] - boxes["points"][6]["cx"]) / 2, abs=2
    ), "the ring sits at its own date"


def test_date_labels_do_not_overlap(tmp_path: Path) -> None:
    boxes, _ = measure(child_report(falling_child()), tmp_path)
    ticks = sorted(boxes["ticks"], key=lambda t: t["x"])
    assert len(ticks) >= 3, "a three-year axis needs more than its ends"
    for left, right in itertools.pairwise(ticks):
        assert left["right"] + 4 <= right["x"], f"{left['text']!r} overprints {right['text']!r}"
    assert all(re.fullmatch(r"(\d{4}|[a-zæøå]+\.? \d{4})", t["text"]) for t in ticks), [t["text"] for t in ticks]


def _row(group: str, n: int, total: int, classes: tuple[int, int, int]) -> CohortRow:
    improved, unchanged, worsened = classes
    return CohortRow(
        group=group, group_label=group, theme=U, n=n, total_change=total, improved=improved, unchanged=unchanged,
        worsened=worsened, movement=0,
    )  # fmt: skip


def test_the_cohort_report_draws_improvement_to_the_right_and_charts_what_suppression_leaves(tmp_path: Path) -> None:
    summary = CohortSummary(
        by="municipality",
        period=None,
        rows=[
            _row("Bedre kommune", 40, -30, (20, 15, 5)),
            _row("Værre kommune", 30, 15, (5, 10, 15)),
            # 3 improved: the shares are withheld, but the mean change of 12 children is shown and drawn.
            _row("Lille kommune", 12, -6, (3, 7, 2)),
        ],
        thresholds=[LIMIT],
        transitions=[],
    )
    boxes, png = measure(cohort_report([summary]), tmp_path)
    labels = [label["text"] for label in boxes["rowLabels"]]
    assert labels == ["Bedre kommune", "Værre kommune", "Lille kommune"]
    better, worse, small = boxes["changes"]
    [better_end], [worse_end] = boxes["better"], boxes["worse"]
    middle = better["x"]
    assert better_end["x"] >= middle - 1, "'forbedring' names the right side"
    assert worse_end["right"] <= middle + 1
    assert better["right"] > middle + 50, "an improvement (mean change < 0) is drawn to the right"
    assert worse["right"] == pytest.approx(middle, abs=1)
    assert worse["x"] < middle - 20
    assert small["right"] > middle + 20, "the unsuppressed mean change of a small group is charted"
    [withheld] = boxes["withheld"]
    assert withheld["right"] - withheld["x"] > 300, "withheld shares are a band that says so, not a zero"
    with Image.open(png) as image:
        improved_colour = tuple(int(CLASS_COLORS[0][i : i + 2], 16) for i in (1, 3, 5))
        assert improved_colour in _around(image, better)


def _around(image: Image.Image, box: dict[str, Any], reach: int = 3) -> set[tuple[int, int, int]]:
    """The colours of the screenshot within ``reach`` pixels of a measured box's centre."""
    pixels = image.convert("RGB")
    x, y = round(box["cx"]), round(box["cy"])
    found = set()
    for dx in range(-reach, reach + 1):
        for dy in range(-reach, reach + 1):
            red, green, blue = pixels.getpixel((x + dx, y + dy))[:3]  # type: ignore[index]
            found.add((red, green, blue))
    return found


def test_no_text_of_a_line_chart_overprints_another_or_leaves_it(tmp_path: Path) -> None:
    """Long series names wrap their legend onto more lines, and a scale's words sit beside its numbers."""
    series = (
        "Børnefaglig undersøgelse afsluttet inden 4 måneder",
        "Børnefaglig undersøgelse ligger til grund for indsatsen",
        "Barnets plan udarbejdet rettidigt",
    )
    table = Table(
        title="Udvikling",
        columns=("Periode", *series),
        rows=[["2024", 53.3, 100.0, 70.0], ["2025", 61.5, 100.0, 75.0], ["2026", 57.6, 100.0, 80.0]],
        charts=(Lines(x="Periode", series=series, colors=("#1f6fb2", "#2e7d32", "#8e24aa"), scale=SHARE),),
    )
    boxes, _ = measure(Report(kind="barometer", title="Barometer", tables=[table]), tmp_path)
    [svg] = boxes["svg"]
    texts = [t for t in boxes["texts"] if t["text"].strip()]
    assert {t["text"] for t in texts} >= {*series, "100 % opfyldt", "0 % opfyldt"}
    for t in texts:
        assert svg["x"] <= t["x"], f"{t['text']!r} leaves the chart on the left"
        assert t["right"] <= svg["right"] + 1, f"{t['text']!r} leaves the chart on the right"
    for a, b in itertools.combinations(texts, 2):
        apart = a["right"] <= b["x"] or b["right"] <= a["x"] or a["bottom"] <= b["y"] or b["bottom"] <= a["y"]
        assert apart, f"{a['text']!r} overprints {b['text']!r}"
