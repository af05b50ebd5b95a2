"""The key-driver scatter's labels, laid out by Chromium: none covers a point or another label.

The points are the churn drivers of the sample's report, where labels used to run into the
neighbouring points (issue 24)."""

from __future__ import annotations

import pytest
from test_report import _chromium

from programs import charts

CROWDED = [
    ("Feel confident", 0.5, 0.21),
    ("Easy to get help (CES)", 0.82, 0.01),
    ("Not escalated", 0.91, 0.0),
    ("Feel helped", 0.54, 0.24),
    ("Feel informed", 0.5, 0.26),
    ("Feel protected", 0.52, 0.13),
    ("Not a repeat contact", 0.72, 0.01),
    ("Issue resolved", 0.81, 0.0),
    ("Feel valued", 0.51, 0.12),
    ("Answered without a long wait", 0.94, 0.02),
]


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


@pytest.mark.parametrize("points", [CROWDED, [(n, x, y * 0.5) for n, x, y in CROWDED]])
def test_scatter_labels_cover_no_point_and_no_other_label(points, tmp_path):
    from playwright.sync_api import sync_playwright

    svg = charts.scatter_quadrants(points, "Key drivers", "performance", "importance")
    page_path = tmp_path / "scatter.html"
    page_path.write_text(f"<!doctype html><body style='width:700px'>{svg}</body>")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 800, "height": 600})
            page.goto(page_path.as_uri())
            boxes = page.evaluate(
                """() => {
                    const box = e => { const b = e.getBBox();
                        return {text: e.textContent, x: b.x, y: b.y, width: b.width,
                                height: b.height}; };
                    const svg = document.querySelector('svg.chart');
                    const names = new Set(%s);
                    return {
                        labels: Array.from(svg.querySelectorAll('text'))
                            .filter(t => names.has(t.textContent)).map(box),
                        dots: Array.from(svg.querySelectorAll('circle.mark')).map(box),
                        view: svg.viewBox.baseVal.width,
                    };
                }"""
                % [name for name, _, _ in points]
            )
        finally:
            browser.close()
    labels, dots = boxes["labels"], boxes["dots"]
    assert len(labels) == len(dots) == len(points)
    for i, label in enumerate(labels):
        assert 0 <= label["x"] and label["x"] + label["width"] <= boxes["view"], label
        covered = [d for d in dots if _overlap(label, d)]
        assert not covered, (label, covered)
        crossed = [other["text"] for other in labels[i + 1 :] if _overlap(label, other)]
        assert not crossed, (label["text"], crossed)
