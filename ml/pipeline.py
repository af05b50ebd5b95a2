"""Unfitted model pipelines, so training, tests and experiments build exactly the same thing.

Churn: gradient boosting (handles missing survey answers natively and learns interactions such
as "recent negative moment *and* falling spend") wrapped in isotonic calibration, because
marketers read the output as a probability and risk bands cut it at fixed thresholds. A logistic
regression and a recency-only rule are the baselines it must beat.

Segment: multiclass gradient boosting over behaviour and contact features only, trained on survey
respondents and applied to everyone; the majority class is its baseline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def build_churn_model(seed: int = 42) -> Pipeline:
    """Calibrated gradient boosting; three-fold isotonic calibration on the training rows."""
    boosted = HistGradientBoostingClassifier(
        learning_rate=0.03,
        max_iter=300,
        max_depth=3,
        min_samples_leaf=100,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )
    return Pipeline(
        [("model", CalibratedClassifierCV(boosted, method="isotonic", cv=3, ensemble=True))]
    )


def build_logistic_baseline(seed: int = 42) -> Pipeline:
    """Logistic regression with median imputation plus missingness flags, scaled."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(max_iter=2000, C=0.5, random_state=seed)),
        ]
    )


def recency_rule_scores(frame: pd.DataFrame) -> np.ndarray:
    """The rule a marketer would use without a model: the longer since a purchase, the riskier.

    Members with no purchase on record rank as riskiest.
    """
    days = pd.to_numeric(frame["days_since_last_transaction"], errors="coerce").astype(float)
    fallback = (days.max() if days.notna().any() else 0.0) + 1.0
    return days.fillna(fallback).to_numpy()


def build_segment_model(seed: int = 42) -> Pipeline:
    """Multiclass gradient boosting with balanced class weights (segments are uneven)."""
    return Pipeline(
        [
            (
                "model",
                HistGradientBoostingClassifier(
                    learning_rate=0.05,
                    max_iter=200,
                    max_leaf_nodes=15,
                    min_samples_leaf=30,
                    l2_regularization=1.0,
                    class_weight="balanced",
                    early_stopping=False,
                    random_state=seed,
                ),
            )
        ]
    )


def build_majority_baseline() -> DummyClassifier:
    """Predict the most frequent training segment for everyone."""
    return DummyClassifier(strategy="most_frequent")
