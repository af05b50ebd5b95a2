"""The promotion gate: better, worse, tie, no champion yet."""

from __future__ import annotations

from ml.registry import CHALLENGER, CHAMPION, decide_promotion


def test_better_than_champion_by_margin_is_promoted():
    assert decide_promotion(0.820, 0.810, 0.70, 0.005).alias == CHAMPION


def test_worse_than_champion_is_challenger():
    decision = decide_promotion(0.800, 0.810, 0.70, 0.005, "roc_auc")
    assert decision.alias == CHALLENGER
    assert "does not beat the champion" in decision.reason


def test_tie_or_gain_below_margin_keeps_the_champion():
    assert decide_promotion(0.810, 0.810, 0.70, 0.005).alias == CHALLENGER
    assert decide_promotion(0.814, 0.810, 0.70, 0.005).alias == CHALLENGER


def test_first_version_must_beat_the_baseline():
    assert decide_promotion(0.80, None, 0.70, 0.005).alias == CHAMPION
    assert decide_promotion(0.702, None, 0.70, 0.005).alias == CHALLENGER
    assert decide_promotion(0.60, None, 0.70, 0.005).alias == CHALLENGER


def test_first_version_baseline_margin_can_differ_from_the_champion_margin():
    """A candidate chosen for scoring above BG/NBD needs no extra margin over it."""
    assert decide_promotion(0.702, None, 0.70, 0.005, baseline_margin=0.0).alias == CHAMPION
    assert decide_promotion(0.699, None, 0.70, 0.005, baseline_margin=0.0).alias == CHALLENGER


def test_the_churn_candidate_is_the_best_on_the_holdout_and_bgnbd_wins_ties():
    from ml.train import choose_churn_candidate

    metrics = {"boosted_roc_auc": 0.72, "logistic_roc_auc": 0.73, "btyd_roc_auc": 0.71}
    assert choose_churn_candidate(metrics)[0] == "logistic"
    assert choose_churn_candidate({**metrics, "btyd_roc_auc": 0.73})[0] == "btyd"
