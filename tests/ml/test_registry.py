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
