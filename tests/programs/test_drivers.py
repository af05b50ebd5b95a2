"""Key drivers: relative weights recover planted importance, handle missing answers, and the
churn rule in SQL is the one of ml/labels.py."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from program_warehouse import create

from ml.labels import churn_labels
from programs import drivers


def _planted(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strong = rng.normal(size=n)
    weak = rng.normal(size=n)
    echo = strong + rng.normal(scale=0.5, size=n)  # correlated with strong, no effect of its own
    noise = rng.normal(size=n)
    outcome = 2.0 * strong + 0.7 * weak + rng.normal(size=n)
    return pd.DataFrame(
        {"strong": strong, "weak": weak, "echo": echo, "noise": noise, "outcome": outcome}
    )


def test_relative_weights_sum_to_the_regression_r_squared_and_rank_the_planted_drivers():
    frame = _planted()
    names = ["strong", "weak", "echo", "noise"]
    weights = drivers.relative_weights(frame, "outcome", names).set_index("driver")
    design = np.column_stack([np.ones(len(frame)), frame[names].to_numpy()])
    coefficients, *_ = np.linalg.lstsq(design, frame["outcome"].to_numpy(), rcond=None)
    residual = frame["outcome"].to_numpy() - design @ coefficients
    r_squared = 1 - residual.var() / frame["outcome"].var(ddof=0)
    assert weights["raw_weight"].sum() == pytest.approx(r_squared)
    assert weights["share"].sum() == pytest.approx(1.0)
    order = weights["share"].sort_values(ascending=False).index.tolist()
    assert order[:2] == ["strong", "echo"]  # echo shares strong's credit: it tracks it
    assert weights.loc["weak", "share"] > weights.loc["noise", "share"]
    assert weights.loc["noise", "share"] < 0.01


def test_missing_answers_use_pairwise_correlations_and_rare_drivers_are_left_out_with_a_note():
    frame = _planted(seed=1)
    rng = np.random.default_rng(2)
    frame.loc[rng.random(len(frame)) < 0.5, "weak"] = np.nan  # half never asked
    frame.loc[frame.index[20:], "noise"] = np.nan  # asked of 20 members only
    weights = drivers.relative_weights(frame, "outcome", ["strong", "weak", "noise"]).set_index(
        "driver"
    )
    assert weights.loc["weak", "observed"] == frame["weak"].notna().sum()
    assert weights.loc["strong", "share"] > weights.loc["weak", "share"] > 0
    assert np.isnan(weights.loc["noise", "share"])
    assert "observed for 20 members" in weights.loc["noise", "note"]


def test_key_drivers_rows_carry_performance_and_importance_for_each_outcome():
    names = [d.name for d in drivers.DRIVERS]
    rng = np.random.default_rng(3)
    members = pd.DataFrame(rng.normal(size=(400, len(names))), columns=names)
    members["outcome"] = members["helped"] * 2 + rng.normal(size=400)
    performance = {n: (0.5, 100) for n in names}
    rows = drivers.key_drivers(
        {"nps": members, "churn": members.assign(outcome=members["outcome"] > 0)},
        performance,
        date(2026, 6, 30),
    )
    assert len(rows) == 2 * len(names)
    nps = rows[rows["outcome"] == "nps"].set_index("driver")
    assert nps["derived_importance"].idxmax() == "helped"
    assert set(rows["method"]) == {drivers.METHOD}


def test_churn_sql_matches_the_labels_of_ml(empty_store):
    rng = np.random.default_rng(5)
    members = pd.DataFrame(
        {
            "member_id": [f"M{i:03d}" for i in range(120)],
            "closed_at": [
                pd.Timestamp("2026-05-01") if i % 17 == 0 else pd.Timestamp("2026-01-10") if i % 23 == 0 else None
                for i in range(120)
            ],
        }
    )  # fmt: skip
    members["is_closed"] = members["closed_at"].notna()
    rows = []
    for member in members["member_id"]:
        for _ in range(rng.integers(0, 6)):
            day = datetime(2025, 9, 1) + timedelta(days=int(rng.integers(0, 300)))
            rows.append(
                (
                    member,
                    day + timedelta(hours=int(rng.integers(0, 24))),
                    float(rng.choice([-5.0, 20.0, 35.0])),
                )
            )
    purchases = pd.DataFrame(rows, columns=["member_id", "occurred_at", "amount"])
    purchases["transaction_id"] = [f"T{i}" for i in range(len(purchases))]
    as_of = date(2026, 6, 26)
    cutoff = drivers.churn_cutoff(as_of)
    expected = churn_labels(
        purchases.assign(occurred_date=purchases["occurred_at"].dt.date), members, [cutoff], as_of
    )
    create(empty_store, "dim_members", members)
    create(empty_store, "fct_transactions", purchases)
    create(empty_store, "fct_survey_responses", pd.DataFrame(columns=["member_id"]))
    create(empty_store, "fct_calls", pd.DataFrame(columns=["member_id"]))
    got = empty_store.read(drivers.CHURN_SQL, {"cutoff": cutoff})
    merged = expected.merge(got, on="member_id", how="outer")
    assert len(merged) == len(expected) == len(got) > 30
    assert (merged["churned"].astype(float) == merged["outcome"]).all()
