"""The answer-file ceiling: the same rows as the holdout, and what it knows that the data does not."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from ml import evaluate

CUTOFF = date(2026, 4, 1)


@pytest.fixture
def answers(tmp_path):
    """Six holdout members: two the simulation had already ended (probability 1), four active."""
    frame = pd.DataFrame(
        {
            "member_id": ["M1", "M2", "M3", "M4", "M5", "M6", "M7"],
            "cutoff_date": [CUTOFF] * 6 + [date(2026, 3, 1)],
            "true_churn_probability": [1.0, 1.0, 0.7, 0.2, 0.4, 0.1, 0.9],
            "churned": [True, True, True, False, True, False, True],
        }
    )
    path = tmp_path / "churn.parquet"
    frame.to_parquet(path)
    return path


def test_ceiling_splits_off_churners_the_simulation_had_already_ended(answers):
    holdout = pd.DataFrame(
        {
            "member_id": ["M1", "M2", "M3", "M4", "M5", "M6"],
            "cutoff_date": [CUTOFF] * 6,
            "churned": [True, True, True, False, True, False],
        }
    )
    # The model ranks M5 below M4 among the still-active members; the ceiling does not.
    scores = [0.9, 0.3, 0.8, 0.5, 0.45, 0.1]
    out = evaluate.churn_ceiling(answers, holdout, scores=scores)
    assert out["ceiling_coverage"] == 1.0
    assert out["ceiling_already_left_share"] == pytest.approx(2 / 4)
    assert out["ceiling_still_active_roc_auc"] == 1.0
    assert out["still_active_roc_auc"] == pytest.approx(3 / 4)
    assert out["ceiling_roc_auc"] == 1.0


def test_ceiling_without_scores_or_answers(answers, tmp_path):
    holdout = pd.DataFrame(
        {"member_id": ["M3", "M4"], "cutoff_date": [CUTOFF] * 2, "churned": [True, False]}
    )
    out = evaluate.churn_ceiling(answers, holdout)
    assert out["ceiling_already_left_share"] == 0.0
    assert "still_active_roc_auc" not in out
    assert evaluate.churn_ceiling(tmp_path / "missing.parquet", holdout) is None
