"""Cutoff choice, the leakage guard, and the model-frame conversion."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from ml.features import (
    FEATURE_COLUMNS,
    SEGMENT_FEATURE_COLUMNS,
    FeatureColumnError,
    InsufficientHistoryError,
    available_features,
    build_training_data,
    choose_cutoffs,
    plan_windows,
    to_model_frame,
)

MONTHS = [date(2025, m, 1) for m in range(1, 13)]


def test_holdout_is_latest_complete_and_training_windows_end_before_it():
    train, holdout = choose_cutoffs(MONTHS, date(2024, 1, 1), date(2025, 12, 31), 90, 180, 4)
    assert holdout == date(2025, 10, 1)  # 2025-10-01 + 89 days = 2025-12-29
    assert train == (date(2025, 4, 1), date(2025, 5, 1), date(2025, 6, 1), date(2025, 7, 1))
    assert all(c + timedelta(days=90) <= holdout for c in train)


def test_short_history_says_how_much_is_needed():
    with pytest.raises(InsufficientHistoryError, match="need at least 360 days"):
        choose_cutoffs(MONTHS, date(2025, 1, 1), date(2025, 9, 30), 90, 180, 6)
    with pytest.raises(InsufficientHistoryError, match="too short"):
        choose_cutoffs(MONTHS, date(2025, 6, 1), date(2025, 8, 1), 90, 180, 6)


def test_survey_answers_are_not_segment_features():
    assert "latest_nps_score" not in SEGMENT_FEATURE_COLUMNS
    assert "engagement_index_change" not in SEGMENT_FEATURE_COLUMNS
    assert "unresolved_calls_90d" in SEGMENT_FEATURE_COLUMNS


def test_counts_a_survey_answer_feeds_are_not_segment_features():
    """Promoter and detractor answers are positive and negative moments
    (int_survey_responses_scored), so the moment counts restate the label for a respondent."""
    survey_words = ("nps", "csat", "ces_", "emotion", "engagement", "moment", "survey")
    leaking = [c for c in SEGMENT_FEATURE_COLUMNS if any(w in c for w in survey_words)]
    assert leaking == []
    sql = (
        Path(__file__).resolve().parents[2]
        / "dbt_project/models/intermediate/int_survey_responses_scored.sql"
    ).read_text()
    assert "is_negative_moment" in sql  # the reason the counts are left out still holds
    assert {"calls_90d", "escalated_calls_90d", "repeat_contacts_90d"} <= set(
        SEGMENT_FEATURE_COLUMNS
    )


def test_leakage_guard_future_data_cannot_change_training_rows(synthetic):
    """Data after the holdout cutoff must not move any training label or feature."""
    data, _ = synthetic
    base = build_training_data(data, n_train_cutoffs=3)
    cut = pd.Timestamp(base.holdout_cutoff)
    purchases = data.purchases[pd.to_datetime(data.purchases["occurred_date"]) < cut]
    responses = data.responses[data.responses["submitted_at"] < cut]
    members = data.members.assign(
        closed_at=data.members["closed_at"].where(data.members["closed_at"] < cut)
    )
    # Only the holdout's label window needs the future, so keep the last-data date.
    trimmed = replace(data, purchases=purchases, responses=responses, members=members)
    again = build_training_data(trimmed, n_train_cutoffs=3)
    pd.testing.assert_frame_equal(base.churn_train, again.churn_train)
    pd.testing.assert_frame_equal(base.segment_train, again.segment_train)
    assert not base.churn_holdout["churned"].equals(again.churn_holdout["churned"])


def test_model_frame_names_missing_and_mistyped_columns():
    frame = pd.DataFrame({c: [1] for c in FEATURE_COLUMNS})
    assert (to_model_frame(frame, FEATURE_COLUMNS).dtypes == "float64").all()
    with pytest.raises(FeatureColumnError, match="calls_90d"):
        to_model_frame(frame.drop(columns=["calls_90d"]), FEATURE_COLUMNS)
    with pytest.raises(FeatureColumnError, match="'tenure_days' has type"):
        to_model_frame(frame.assign(tenure_days=["long"]), FEATURE_COLUMNS)


WEEKS = [date(2025, 1, 6) + timedelta(days=7 * k) for k in range(40)]


def test_a_nine_month_history_shortens_the_activity_window_and_keeps_the_horizon():
    plan = plan_windows(WEEKS, date(2025, 1, 1), date(2025, 9, 30), 90, 6)
    assert plan.horizon_days == 90
    assert plan.activity_days == 60
    assert plan.cadence == "weekly"
    assert len(plan.train_cutoffs) >= 3
    assert plan.holdout_cutoff + timedelta(days=89) <= date(2025, 9, 30)
    assert all(c + timedelta(days=90) <= plan.holdout_cutoff for c in plan.train_cutoffs)
    assert all(c >= date(2025, 1, 1) + timedelta(days=60) for c in plan.train_cutoffs)
    assert "activity window 60 days instead of 180" in plan.reason


def test_four_months_shorten_the_horizon_and_less_says_how_much_is_needed():
    plan = plan_windows(WEEKS, date(2025, 1, 1), date(2025, 5, 10), 90, 6)
    assert plan.horizon_days < 90 and plan.activity_days == 60
    assert "label window" in plan.reason
    with pytest.raises(InsufficientHistoryError, match="at least about 120 days"):
        plan_windows(WEEKS, date(2025, 1, 1), date(2025, 3, 31), 90, 6)


def test_a_two_year_history_keeps_the_full_windows():
    plan = plan_windows(MONTHS, date(2024, 1, 1), date(2025, 12, 31), 90, 4)
    assert (plan.horizon_days, plan.activity_days) == (90, 180)
    assert plan.reason.endswith("2025-10-01")  # nothing shortened


def test_features_without_data_are_left_out_with_the_reason():
    frame = pd.DataFrame(
        {"calls_90d": [0, 0, 0], "avg_queue_seconds_90d": [None] * 3, "spend_30d": [1.0, 2, 3]}
    )
    kept, dropped = available_features(frame, ["calls_90d", "avg_queue_seconds_90d", "spend_30d"])
    assert kept == ("spend_30d",)
    assert dropped == {
        "calls_90d": "the same value (0) in every training row",
        "avg_queue_seconds_90d": "no value in any training row",
    }
