"""The report's top negative topics and their trend (programs/topics.py), on both warehouses."""

from __future__ import annotations

from datetime import date

import pandas as pd

from programs import topics


def _mart(store, rows):
    from program_warehouse import create

    frame = pd.DataFrame(
        rows,
        columns=["topic_month", "text_source", "topic", "mentions", "negative_mentions"],
    )
    create(store, "mart_topics_monthly", frame)


def test_top_negative_topics_with_their_monthly_trend(empty_store):
    may, june, july, august = (date(2026, m, 1) for m in (5, 6, 7, 8))
    _mart(
        empty_store,
        [
            (may, "survey_comment", "billing", 10, 9),  # outside the last three months
            (june, "survey_comment", "billing", 4, 1),
            (july, "survey_comment", "billing", 5, 2),
            (july, "call_note", "billing", 3, 3),
            (june, "survey_comment", "wait_time", 6, 4),
            (july, "call_note", "wait_time", 2, 1),
            (july, "survey_comment", "staff", 9, 0),  # no negative mention: not shown
            (july, "survey_comment", "none", 30, 20),  # no topic: not a topic
            (august, "survey_comment", "delivery", 50, 50),  # after the report's date
        ],
    )
    summary = topics.summary(empty_store, date(2026, 7, 31), months=3)
    assert summary["months"] == ["2026-05", "2026-06", "2026-07"][-3:]
    by_topic = {row["topic"]: row for row in summary["topics"]}
    assert [row["topic"] for row in summary["topics"]] == ["billing", "wait_time"]
    assert by_topic["billing"]["negative_mentions"] == 9 + 1 + 5
    assert by_topic["billing"]["trend"] == [9, 1, 5]
    assert by_topic["wait_time"]["trend"] == [0, 4, 1]
    assert by_topic["billing"]["label"] == "Billing and payments"
    html = topics.report_section(summary)
    assert "Billing and payments" in html and "rising" in html and "falling" in html


def test_a_warehouse_without_the_mart_shows_no_section(empty_store):
    assert topics.summary(empty_store, date(2026, 7, 31)) is None
    assert topics.report_section(None) == ""
