"""The segment report: rendered in headless Chromium (Debian's package, driven by Playwright), every
chart must draw marks of real size; the page must hold for a first run with no program yet."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date

import pandas as pd
import pytest

from config.settings import REPO_ROOT
from ml.labels import EMOTION_ITEMS
from programs import report

EXPECTED_CHARTS = {
    "Predicted segment sizes per score date": 3,
    "Measured segments among survey respondents, by month": 30,
    "Predicted transitions": 9,
    "Measured transitions": 9,
    "Risk by segment": 6,
    "Risk by tier": 6,
    "Most common reasons": 3,
    "Program sizes": 6,
    "Retention lift (treated minus control, percentage points)": 8,
    "Spend lift per member (treated minus control)": 8,
    "Key drivers of NPS (0-10)": 8,
    "Key drivers of Churn in the next 90 days": 8,
}


def _chromium() -> str:
    path = (
        os.environ.get("CX_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing: `make test` installs it with scripts/chromium.sh install")
    pytest.skip("Chromium is missing (install it with `make chromium`)")


def test_reasons_are_counted_by_kind():
    assert report.reason_kind("no purchase in 211 days") == "Long time since the last purchase"
    assert report.reason_kind("no purchase in the last 90 days") == "Few purchases in 90 days"
    assert report.reason_kind("only 1 purchase in the last 90 days") == "Few purchases in 90 days"
    assert report.reason_kind("called back 2 times about the same issue in the last 90 days") == (
        "Called back about the same issue"
    )
    assert report.reason_kind("something new 12 times") == "something new # times"


def _scores_warehouse(store, rows):
    """A warehouse (``store``) with ``ml_scores`` rows (member, date, churn and segment model
    versions, segment, reason_1), every member in ``customer_360`` and no survey answer."""
    from program_warehouse import SCORE_COLUMNS, create

    scores = pd.DataFrame(
        [
            {
                "member_id": member,
                "score_date": day,
                "model_version": f"cx_churn/{churn}+cx_segment/{segment_version}",
                "churn_model_version": str(churn),
                "segment_model_version": str(segment_version),
                "churn_probability": 0.5,
                "is_lapsed": False,
                "risk_band": "medium",
                "predicted_segment": segment,
                "segment_probability": 0.6,
                "reason_1": reason,
                "reason_2": None,
                "reason_3": None,
            }
            for member, day, churn, segment_version, segment, reason in rows
        ],
        columns=list(SCORE_COLUMNS),
    )
    with store.writer("models") as writer:
        writer.ensure("ml_scores", SCORE_COLUMNS)
        writer.insert("ml_scores", scores)
    members = pd.DataFrame({"member_id": scores["member_id"].unique(), "tier": "gold"})
    create(store, "customer_360", members)
    create(store, "fct_survey_responses", pd.DataFrame(columns=["member_id", *EMOTION_ITEMS]))
    return store


def test_the_report_reads_the_latest_models_row_of_each_member_and_date(empty_store):
    """Counts per date, the latest date's members and the moves from the date before take one
    row per member and date, the latest models' when a date was scored twice."""
    may, june, july = date(2026, 5, 31), date(2026, 6, 30), date(2026, 7, 31)
    store = _scores_warehouse(
        empty_store,
        [
            ("A", may, 1, 1, "Engaged", None),
            ("B", may, 1, 1, "Engaged", None),
            ("A", june, 1, 1, "Engaged", None),
            ("B", june, 1, 1, "Swing", None),
            ("A", july, 1, 1, "Engaged", "no purchase in 211 days"),
            ("A", july, 2, 1, "Disengaged", "no purchase in 95 days"),  # rescored, churn v2
            ("B", july, 1, 2, "Swing", "NPS fell from 9 to 3"),
            ("B", july, 1, 1, "Disengaged", "no purchase in 40 days"),  # older segment model
            ("C", july, 1, 1, "Engaged", None),
        ],
    )
    data = report.gather(store)
    assert data.as_of == july and data.members_scored == 3
    assert data.transition_dates == (june.isoformat(), july.isoformat())
    counts = {
        (pd.Timestamp(row.score_date).date(), row.predicted_segment): row.members
        for row in data.predicted_segments.itertuples()
    }
    assert counts == {
        (may, "Engaged"): 2,
        (june, "Engaged"): 1,
        (june, "Swing"): 1,
        (july, "Disengaged"): 1,
        (july, "Swing"): 1,
        (july, "Engaged"): 1,
    }
    moves = {
        (row.from_segment, row.to_segment): row.members
        for row in data.predicted_transitions.itertuples()
    }
    assert moves == {("Engaged", "Disengaged"): 1, ("Swing", "Swing"): 1}
    assert dict(zip(data.reasons["reason"], data.reasons["members"], strict=True)) == {
        "Long time since the last purchase": 1,
        "NPS fell": 1,
    }
    assert set(data.risk["tier"]) == {"gold"}


def test_a_report_without_scores_says_what_to_run(empty_store):
    store = _scores_warehouse(empty_store, [])
    with pytest.raises(ValueError, match="ml_scores holds no scores"):
        report.gather(store)


def test_a_first_run_renders_with_empty_sections():
    data = report.ReportData(
        as_of=date(2026, 6, 30),
        model_version="cx_churn/1+cx_segment/1",
        members_scored=2,
        predicted_segments=pd.DataFrame(
            {"score_date": [date(2026, 6, 30)] * 2, "predicted_segment": ["Swing", "Engaged"], "members": [1, 1]}
        ),
        measured_segments=pd.DataFrame(columns=["month", "segment", "responses"]),
        predicted_transitions=pd.DataFrame(columns=["from_segment", "to_segment", "members"]),
        measured_transitions=pd.DataFrame(columns=["from_segment", "to_segment", "members"]),
        transition_dates=None,
        risk=pd.DataFrame(
            {"predicted_segment": ["Swing", "Engaged"], "tier": ["gold", "bronze"], "risk_band": ["low", "high"],
             "members": [1, 1], "churn_probability_sum": [0.1, 0.7]}
        ),
        reasons=pd.DataFrame(columns=["reason", "members"]),
        cycles=pd.DataFrame(),
        lift=pd.DataFrame(),
        key_drivers=pd.DataFrame(),
    )  # fmt: skip
    html = report.render(data)
    assert "No program cycle has run yet" in html
    assert "Predicted transitions appear from the second score date" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")


def test_the_report_draws_every_chart_in_headless_chromium(two_cycles, tmp_path):
    from playwright.sync_api import sync_playwright

    page_path = two_cycles.settings.reports_dir / "segment-report.html"
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(page_path.as_uri())
            drawn = page.evaluate(
                """() => Array.from(document.querySelectorAll('svg.chart')).map(svg => {
                    const box = svg.getBoundingClientRect();
                    const marks = Array.from(svg.querySelectorAll('.mark')).map(m => {
                        const r = m.getBoundingClientRect();
                        return r.width * r.height > 1 || (r.width > 1 && m.tagName === 'line');
                    });
                    return {label: svg.getAttribute('aria-label'), width: box.width,
                            height: box.height, marks: marks.length,
                            sized: marks.filter(Boolean).length};
                })"""
            )
            titles = page.eval_on_selector_all(
                "svg[aria-label='Program sizes'] .mark title", "ts => ts.map(t => t.textContent)"
            )
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    charts = {chart["label"]: chart for chart in drawn}
    for label, minimum in EXPECTED_CHARTS.items():
        chart = charts.get(label)
        assert chart is not None, f"chart {label!r} is missing; drawn: {sorted(charts)}"
        assert chart["width"] > 200 and chart["height"] > 50, chart
        assert chart["sized"] >= minimum, chart  # marks that the browser laid out with a size
    assert any(t.startswith("Win back · control:") for t in titles), titles


def test_chromium_script_reports_the_browser():
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "chromium.sh"), "path"], capture_output=True, text=True
    )
    if result.returncode == 3:
        pytest.skip("no Chromium on PATH")
    assert result.returncode == 0 and result.stdout.strip().endswith(
        ("chromium", "chromium-browser")
    )
