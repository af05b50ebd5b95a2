"""A buy-till-you-die model: BG/NBD (Fader, Hardie and Lee 2005), fitted by maximum likelihood.

Each member buys at a Poisson rate while alive, and after any purchase may drop out for good.
Rates vary across members as Gamma(r, alpha) and dropout probabilities as Beta(a, b). From a
member's repeat purchases ``x``, the time of the last one ``t_x`` and their age ``T`` (both
counted from the first purchase), the model gives the probability they are still alive and the
probability of no purchase in the next ``horizon`` days.

Why it is here: it is the textbook model of purchase behaviour, it needs nothing but purchase
dates, and its outputs are relative to each member's own history and age, so they hold when the
scored population is older or younger than the one trained on (one acquisition cohort ages
between training and scoring). It is a baseline every churn model must beat, a candidate in its
own right, and its outputs are features of the boosted model.

The fit is checked against the paper's published CDNOW parameters (tests/ml/test_btyd.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

# The point-in-time feature columns the model reads (member_features_pit and customer_360).
PURCHASE_DAYS = "purchase_days_total"
DAYS_SINCE_FIRST = "days_since_first_transaction"
DAYS_SINCE_LAST = "days_since_last_transaction"
TENURE = "tenure_days"
INPUT_COLUMNS: tuple[str, ...] = (PURCHASE_DAYS, DAYS_SINCE_FIRST, DAYS_SINCE_LAST, TENURE)
# What ``BTYDFeatures`` adds.
OUTPUT_COLUMNS: tuple[str, ...] = (
    "btyd_p_alive",
    "btyd_p_no_purchase",
    "btyd_expected_purchases",
    "btyd_recency_ratio",
)


class BTYDFitError(RuntimeError):
    """The likelihood could not be maximised (too few or degenerate purchase histories)."""


@dataclass(frozen=True)
class BGNBDParams:
    """Gamma(r, alpha) purchase rates and Beta(a, b) dropout probabilities."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def log_likelihood(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray
) -> float:
    """Sum of the BG/NBD log-likelihood (the paper's equation 6) over members."""
    r, alpha, a, b = params
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    beta_ab = special.betaln(a, b)
    alive_term = special.betaln(a, b + x) - beta_ab - (r + x) * np.log(alpha + T)
    repeat = x > 0
    dropout_term = np.full_like(alive_term, -np.inf)
    dropout_term[repeat] = (
        special.betaln(a + 1, b + x[repeat] - 1)
        - beta_ab
        - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    )
    return float(np.sum(weights * (common + np.logaddexp(alive_term, dropout_term))))


def _compress(x, t_x, T) -> tuple[np.ndarray, ...]:
    """Identical (x, t_x, T) triples as one row with a weight: whole-day histories repeat a lot."""
    frame = pd.DataFrame({"x": x, "t_x": t_x, "T": T})
    counts = frame.value_counts(sort=False).reset_index(name="weight")
    return (
        counts["x"].to_numpy(float),
        counts["t_x"].to_numpy(float),
        counts["T"].to_numpy(float),
        counts["weight"].to_numpy(float),
    )


def fit(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, start: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
) -> BGNBDParams:
    """Maximum-likelihood parameters for repeat purchases ``x``, recency ``t_x`` and age ``T``.

    Optimised over the logs of the parameters (all must be positive) with L-BFGS-B; the time
    unit is whatever ``t_x`` and ``T`` are in. Raises ``BTYDFitError`` when it cannot converge.
    """
    x = np.asarray(x, float)
    t_x = np.asarray(t_x, float)
    T = np.asarray(T, float)
    if len(x) == 0 or not np.any(x > 0):
        raise BTYDFitError("no member has a repeat purchase: the BG/NBD model cannot be fitted")
    if np.any((t_x < 0) | (t_x > T) | (x < 0)):
        raise BTYDFitError("purchase histories must have 0 <= t_x <= T and x >= 0")
    cx, ct, cT, weights = _compress(x, t_x, T)
    scale = float(np.mean(cT)) or 1.0  # alpha is in time units; start it at a sensible size

    def negative(log_params: np.ndarray) -> float:
        params = np.exp(log_params)
        value = log_likelihood(params, cx, ct, cT, weights)
        return -value if np.isfinite(value) else 1e300

    initial = np.log(np.array([start[0], start[1] * scale / 10, start[2], start[3]]))
    result = optimize.minimize(
        negative, initial, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 4, options={"maxiter": 500}
    )
    if not np.isfinite(result.fun) or result.fun >= 1e299:
        raise BTYDFitError(f"the BG/NBD likelihood did not converge: {result.message}")
    r, alpha, a, b = np.exp(result.x)
    return BGNBDParams(float(r), float(alpha), float(a), float(b), float(-result.fun))


def p_alive(params: BGNBDParams, x, t_x, T) -> np.ndarray:
    """Probability that a member with this history is still alive at ``T`` (paper's eq. 11)."""
    x = np.asarray(x, float)
    t_x = np.asarray(t_x, float)
    T = np.asarray(T, float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_ratio = np.log(params.a / (params.b + x - 1)) + (params.r + x) * (
            np.log(params.alpha + T) - np.log(params.alpha + t_x)
        )
        odds = np.where(x > 0, np.exp(np.minimum(log_ratio, 700.0)), 0.0)
    return 1.0 / (1.0 + odds)


def p_no_purchase(params: BGNBDParams, x, t_x, T, horizon: float) -> np.ndarray:
    """Probability of no purchase in ``(T, T + horizon]``.

    Dropout happens only just after a purchase, so a member makes no purchase in the window
    exactly when they are dead already or their next purchase falls after it; given alive, the
    rate's posterior is Gamma(r + x, alpha + T), whose chance of no event in ``horizon`` is
    ``((alpha + T) / (alpha + T + horizon)) ** (r + x)``.
    """
    x = np.asarray(x, float)
    T = np.asarray(T, float)
    alive = p_alive(params, x, t_x, T)
    quiet_if_alive = np.exp(
        (params.r + x) * (np.log(params.alpha + T) - np.log(params.alpha + T + horizon))
    )
    return (1.0 - alive) + alive * quiet_if_alive


def expected_purchases(params: BGNBDParams, x, t_x, T, horizon: float) -> np.ndarray:
    """Expected purchases in ``(T, T + horizon]`` (the paper's eq. 10), via the hypergeometric
    function; where that is not finite, the alive-rate approximation ``p_alive * (r + x) /
    (alpha + T) * horizon`` is used."""
    x = np.asarray(x, float)
    t_x = np.asarray(t_x, float)
    T = np.asarray(T, float)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    alive = p_alive(params, x, t_x, T)
    with np.errstate(all="ignore"):
        z = horizon / (alpha + T + horizon)
        hyper = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        factor = (a + b + x - 1) / (a - 1) if abs(a - 1) > 1e-9 else np.nan
        exact = (
            factor
            * (1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + horizon))) * hyper)
            * alive
        )
    approximate = alive * (r + x) / (alpha + T) * horizon
    return np.where(np.isfinite(exact) & (exact >= 0), exact, approximate)


def histories(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x, t_x, T`` in days from the point-in-time columns.

    A member with no purchase yet has ``x = 0`` and is aged from enrolment (``tenure_days``):
    the model then gives them the population's chance of a first purchase.
    """
    days = pd.to_numeric(frame[PURCHASE_DAYS], errors="coerce").astype(float).fillna(0.0)
    since_first = pd.to_numeric(frame[DAYS_SINCE_FIRST], errors="coerce").astype(float)
    since_last = pd.to_numeric(frame[DAYS_SINCE_LAST], errors="coerce").astype(float)
    tenure = pd.to_numeric(frame[TENURE], errors="coerce").astype(float)
    bought = (days > 0) & since_first.notna() & since_last.notna()
    x = np.where(bought, days - 1, 0.0)
    T = np.where(bought, since_first, tenure.fillna(0.0)).clip(min=0.0)
    t_x = np.where(bought, (since_first - since_last).clip(lower=0.0), 0.0)
    return x, np.minimum(t_x, T), T


class BTYDFeatures(TransformerMixin, BaseEstimator):
    """Adds the BG/NBD outputs (``OUTPUT_COLUMNS``) to a frame of point-in-time features.

    ``fit`` estimates the population parameters on (at most ``max_fit_rows`` of) the rows it is
    given; ``transform`` keeps every input column and appends:
    - ``btyd_p_alive``: probability the member is still alive;
    - ``btyd_p_no_purchase``: probability of no purchase in the next ``horizon_days``;
    - ``btyd_expected_purchases``: expected purchases in the next ``horizon_days``;
    - ``btyd_recency_ratio``: days since the last purchase over the member's mean gap between
      purchases, a scale-free recency (NaN before a second purchase).
    Rows missing the inputs get NaN, which the boosted model handles.
    """

    def __init__(self, horizon_days: int = 90, max_fit_rows: int = 100_000, seed: int = 42):
        self.horizon_days = horizon_days
        self.max_fit_rows = max_fit_rows
        self.seed = seed

    def fit(self, X: pd.DataFrame, y=None):
        x, t_x, T = histories(X)
        usable = np.flatnonzero(T > 0)
        if len(usable) > self.max_fit_rows:
            usable = np.random.default_rng(self.seed).choice(
                usable, self.max_fit_rows, replace=False
            )
        params = fit(x[usable], t_x[usable], T[usable])
        self.params_ = params.as_dict()
        self.log_likelihood_ = params.log_likelihood
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        params = BGNBDParams(**self.params_)
        x, t_x, T = histories(X)
        known = pd.to_numeric(X[DAYS_SINCE_FIRST], errors="coerce").notna().to_numpy() | (
            pd.to_numeric(X[TENURE], errors="coerce").notna().to_numpy()
        )
        out = X.copy()
        horizon = float(self.horizon_days)
        out["btyd_p_alive"] = np.where(known, p_alive(params, x, t_x, T), np.nan)
        out["btyd_p_no_purchase"] = np.where(
            known, p_no_purchase(params, x, t_x, T, horizon), np.nan
        )
        out["btyd_expected_purchases"] = np.where(
            known, expected_purchases(params, x, t_x, T, horizon), np.nan
        )
        mean_gap = np.where(x > 0, t_x / np.maximum(x, 1.0), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["btyd_recency_ratio"] = (T - t_x) / np.maximum(mean_gap, 1.0)
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray([*self.feature_names_in_, *OUTPUT_COLUMNS], dtype=object)


class BGNBDChurnClassifier(ClassifierMixin, BaseEstimator):
    """The BG/NBD model as a churn classifier: P(no purchase in the horizon) is P(churn).

    A candidate beside the boosted model and the logistic regression, and the textbook baseline
    every champion must beat. ``fit`` ignores the labels: the model learns purchase behaviour,
    not the label.
    """

    def __init__(self, horizon_days: int = 90, max_fit_rows: int = 100_000, seed: int = 42):
        self.horizon_days = horizon_days
        self.max_fit_rows = max_fit_rows
        self.seed = seed

    def fit(self, X: pd.DataFrame, y=None):
        self.features_ = BTYDFeatures(self.horizon_days, self.max_fit_rows, self.seed).fit(X)
        self.classes_ = np.array([False, True])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        churn = self.features_.transform(X)["btyd_p_no_purchase"].to_numpy(float)
        churn = np.where(np.isfinite(churn), churn, 1.0)
        return np.column_stack([1.0 - churn, churn])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(X)[:, 1] >= 0.5
