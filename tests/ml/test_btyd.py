"""The BG/NBD fit against the paper's published CDNOW estimates, and its predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml import btyd

CDNOW = Path(__file__).with_name("fixtures") / "cdnow_customers_summary.csv"
# Fader, Hardie and Lee (2005), section 5: the maximum-likelihood estimates on the CDNOW sample.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW)


def test_fit_recovers_the_papers_cdnow_estimates(cdnow):
    params = btyd.fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    for name, value in PUBLISHED.items():
        assert getattr(params, name) == pytest.approx(value, abs=0.002), name
    assert params.log_likelihood == pytest.approx(-9582.4, abs=0.1)


def test_the_papers_worked_example(cdnow):
    """The paper's customer with x = 2, t_x = 30.43, T = 38.86 weeks: 1.226 expected purchases
    in the next 39 weeks."""
    params = btyd.BGNBDParams(**PUBLISHED)
    expected = btyd.expected_purchases(params, [2], [30.43], [38.86], 39)
    assert expected[0] == pytest.approx(1.226, abs=0.002)


def test_no_purchase_probability_matches_a_simulation():
    """P(no purchase in the horizon) agrees with the model's own generative story."""
    params = btyd.BGNBDParams(r=0.8, alpha=20.0, a=0.6, b=2.5)
    rng = np.random.default_rng(0)
    n, age, horizon = 60_000, 120.0, 60.0
    rate = rng.gamma(params.r, 1 / params.alpha, n)
    drop = rng.beta(params.a, params.b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    dead_at = np.full(n, np.inf)
    clock = np.zeros(n)
    alive = np.ones(n, bool)
    bought_after = np.zeros(n, bool)
    while alive.any():  # purchases after a first one at time 0; dropout right after each
        clock = clock + rng.exponential(1 / rate)
        in_window = alive & (clock <= age)
        x[in_window] += 1
        t_x[in_window] = clock[in_window]
        bought_after |= alive & (clock > age) & (clock <= age + horizon)
        alive &= clock <= age + horizon
        dies = alive & (rng.random(n) < drop)
        dead_at[dies] = clock[dies]
        alive &= ~dies
    predicted = btyd.p_no_purchase(params, x, t_x, np.full(n, age), horizon)
    for repeat in (0, 1, 3):
        group = x == repeat
        assert predicted[group].mean() == pytest.approx(1 - bought_after[group].mean(), abs=0.02)


def test_p_alive_is_one_without_repeat_purchases_and_falls_with_silence():
    params = btyd.BGNBDParams(**PUBLISHED)
    assert btyd.p_alive(params, [0], [0], [30])[0] == 1.0
    recent, quiet = btyd.p_alive(params, [4, 4], [29, 5], [30, 30])
    assert recent > quiet


def test_a_history_without_repeat_purchases_cannot_be_fitted():
    with pytest.raises(btyd.BTYDFitError, match="no member has a repeat purchase"):
        btyd.fit([0, 0], [0, 0], [10, 20])


def test_features_from_point_in_time_columns(cdnow):
    """Days-based columns as the warehouse has them; a member with no purchase gets the
    population's chance of a first purchase, and nothing is NaN where the inputs are known."""
    frame = pd.DataFrame(
        {
            "purchase_days_total": cdnow["frequency"] + 1,
            "days_since_first_transaction": (cdnow["T"] * 7).round(),
            "days_since_last_transaction": ((cdnow["T"] - cdnow["recency"]) * 7).round(),
            "tenure_days": (cdnow["T"] * 7).round(),
        }
    )
    frame.loc[0, ["purchase_days_total", "days_since_first_transaction"]] = [0, np.nan]
    frame.loc[0, "days_since_last_transaction"] = np.nan
    features = btyd.BTYDFeatures(horizon_days=90).fit(frame).transform(frame)
    assert features[list(btyd.OUTPUT_COLUMNS[:3])].notna().all().all()
    assert features["btyd_p_no_purchase"].between(0, 1).all()
    model = btyd.BGNBDChurnClassifier(horizon_days=90).fit(frame)
    assert np.allclose(model.predict_proba(frame)[:, 1], features["btyd_p_no_purchase"])
