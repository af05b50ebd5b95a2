"""Cutoff choice, the leakage guard, and the model-frame conversion."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pandas as pd
import pytest

from ml.features import (
    FEATURE_COLUMNS,
    SEGMENT_FEATURE_COLUMNS,
    FeatureColumnError,
    InsufficientHistoryError,
    build_training_data,
    choose_cutoffs,
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
