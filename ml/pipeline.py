"""Unfitted model pipelines, so training, tests and experiments build exactly the same thing.

Every model is one scikit-learn pipeline from warehouse columns as they are (``customer_360`` or
``member_features_pit`` rows) to a probability: its first step (``features.ModelInput``) picks
and converts the columns this deployment has data for, so the logged model scores warehouse rows
with nothing but MLflow.

Churn candidates, of which the temporal holdout picks one:
- **boosted**: gradient boosting (handles missing survey answers natively and learns
  interactions such as "recent negative moment *and* falling spend") over the features plus the
  BG/NBD outputs, wrapped in sigmoid calibration, because marketers read the output as a
  probability and risk bands cut it at fixed thresholds;
- **logistic**: a logistic regression over the same inputs;
- **btyd**: the BG/NBD buy-till-you-die model alone (``ml/btyd.py``), from purchase dates only.
The recency rule and BG/NBD are the baselines they are judged against.

Segment: multiclass gradient boosting over behaviour and contact features only, trained on survey
respondents and applied to everyone; the majority class and a stratified random guess are its
baselines.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml import btyd
from ml.features import FEATURE_COLUMNS, SEGMENT_FEATURE_COLUMNS, ModelInput


def build_churn_model(
    seed: int = 42, columns: Sequence[str] = FEATURE_COLUMNS, horizon_days: int = 90
) -> Pipeline:
    """Calibrated gradient boosting over ``columns`` plus the BG/NBD outputs; sigmoid (Platt)
    calibration fitted on three-fold out-of-fold predictions, then one booster refitted on every
    training row.

    Sigmoid, not isotonic: a sigmoid keeps the booster's ranking, where isotonic regression maps
    ranges of scores to one step. On a real single-cohort history (CDNOW, 18 months) the holdout
    cohort was older than the training cutoffs' and its scores fell on a few steps: ROC AUC 0.682
    isotonic against 0.726 for the same booster uncalibrated. On the default sample the two were
    within 0.001.

    One booster of 150 trees rather than three of 300 (``ensemble=True``): scoring walks 150
    trees per member instead of 900, six times less work at a million members, for the same
    holdout ROC AUC (0.8207 against 0.8210 on the 100k benchmark sample).
    """
    boosted = HistGradientBoostingClassifier(
        learning_rate=0.06,
        max_iter=150,
        max_depth=3,
        min_samples_leaf=100,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )
    return Pipeline(
        [
            ("input", ModelInput(tuple(columns))),
            ("btyd", btyd.BTYDFeatures(horizon_days, seed=seed)),
            ("model", CalibratedClassifierCV(boosted, method="sigmoid", cv=3, ensemble=False)),
        ]
    )


def build_logistic_baseline(
    seed: int = 42, columns: Sequence[str] = FEATURE_COLUMNS, horizon_days: int = 90
) -> Pipeline:
    """Logistic regression over the same inputs as the booster: median imputation plus
    missingness flags, scaled."""
    return Pipeline(
        [
            ("input", ModelInput(tuple(columns))),
            ("btyd", btyd.BTYDFeatures(horizon_days, seed=seed)),
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(max_iter=2000, C=0.5, random_state=seed)),
        ]
    )


def build_btyd_model(seed: int = 42, horizon_days: int = 90) -> Pipeline:
    """The BG/NBD model alone: P(no purchase in the horizon) from purchase dates."""
    return Pipeline(
        [
            ("input", ModelInput(btyd.INPUT_COLUMNS, derived=False)),
            ("model", btyd.BGNBDChurnClassifier(horizon_days, seed=seed)),
        ]
    )


def input_columns(model: Pipeline) -> tuple[str, ...]:
    """The warehouse columns a pipeline built here reads."""
    return tuple(model.named_steps["input"].columns)


def model_frame(model: Pipeline, rows: pd.DataFrame) -> pd.DataFrame:
    """The pipeline's input step applied to ``rows``: the feature columns it reads as float64
    plus the derived ones. Importances, reasons and drift are about these columns, so they speak
    of what a member did, whatever the later steps compute from it."""
    return model[:1].transform(rows)


def after_input(model: Pipeline) -> Pipeline:
    """The rest of the pipeline: what turns ``model_frame`` output into probabilities."""
    return model[1:]


def recency_rule_scores(frame: pd.DataFrame) -> np.ndarray:
    """The rule a marketer would use without a model: the longer since a purchase, the riskier.

    Members with no purchase on record rank as riskiest.
    """
    days = pd.to_numeric(frame["days_since_last_transaction"], errors="coerce").astype(float)
    fallback = (days.max() if days.notna().any() else 0.0) + 1.0
    return days.fillna(fallback).to_numpy()


def build_segment_model(
    seed: int = 42, columns: Sequence[str] = SEGMENT_FEATURE_COLUMNS
) -> Pipeline:
    """Multiclass gradient boosting with balanced class weights (segments are uneven).

    100 rounds at rate 0.1 (300 trees for three classes) rather than 200 at 0.05: macro-F1
    0.525 against 0.527 on the 100k benchmark sample, for half the scoring time.
    """
    return Pipeline(
        [
            ("input", ModelInput(tuple(columns))),
            (
                "model",
                HistGradientBoostingClassifier(
                    learning_rate=0.1,
                    max_iter=100,
                    max_leaf_nodes=15,
                    min_samples_leaf=30,
                    l2_regularization=1.0,
                    class_weight="balanced",
                    early_stopping=False,
                    random_state=seed,
                ),
            ),
        ]
    )


def build_majority_baseline() -> DummyClassifier:
    """Predict the most frequent training segment for everyone."""
    return DummyClassifier(strategy="most_frequent")


def build_stratified_baseline(seed: int = 42) -> DummyClassifier:
    """A random guess in the training segments' proportions."""
    return DummyClassifier(strategy="stratified", random_state=seed)
