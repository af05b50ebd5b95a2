"""The Great Expectations suite on feature frames: passes clean frames, fails bad ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.features import FEATURE_COLUMNS, to_model_frame
from ml.validate import FeatureValidationError, validate_features


@pytest.fixture(scope="module")
def clean(synthetic):
    data, _ = synthetic
    return to_model_frame(data.pit, FEATURE_COLUMNS)


def test_clean_frame_passes(clean):
    summary = validate_features(clean, FEATURE_COLUMNS, "training")
    assert summary["evaluated"] == summary["passed"] > len(FEATURE_COLUMNS)


def test_out_of_range_all_null_and_missing_columns_fail(clean):
    bad = clean.copy()
    bad.loc[bad.index[0], "latest_nps_score"] = 14
    bad.loc[bad.index[1], "calls_90d"] = -1
    bad["escalated_calls_90d"] = np.nan
    bad = bad.drop(columns=["tenure_days"])
    with pytest.raises(FeatureValidationError) as failed:
        validate_features(bad, FEATURE_COLUMNS, "scoring")
    message = str(failed.value)
    for expected in (
        "latest_nps_score",
        "calls_90d",
        "escalated_calls_90d",
        "tenure_days",
        "before scoring",
    ):
        assert expected in message
    # The suite runs pass-or-fail; a failing expectation runs again for what it saw, so the
    # message shows the bad value and the all-null column's observed share.
    assert "'column': 'latest_nps_score', 'min_value': 0.0, 'max_value': 10.0}" in message
    assert "examples=[14.0]" in message
    assert "'column': 'escalated_calls_90d', 'min_value': 1e-09} observed=0.0" in message


def test_empty_frame_fails():
    with pytest.raises(FeatureValidationError, match="row_count"):
        validate_features(
            pd.DataFrame({c: pd.Series([], dtype=float) for c in FEATURE_COLUMNS}),
            FEATURE_COLUMNS,
            "training",
        )
