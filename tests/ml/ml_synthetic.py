"""A small simulated loyalty program for ML tests: purchases driven by a latent engagement,
churners who stop buying, surveys that follow engagement, and point-in-time features computed
from it the way the warehouse does (only data before each cutoff)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from ml import labels
from ml.features import FEATURE_COLUMNS, WarehouseData

START = date(2024, 1, 1)


def simulate(n_members: int = 300, days: int = 540, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Members, purchases and relationship-survey responses over ``days`` days from START."""
    rng = np.random.default_rng(seed)
    ids = [f"M{i:07d}" for i in range(1, n_members + 1)]
    engagement = rng.normal(0, 1, n_members)
    enrolled = rng.integers(0, 60, n_members)
    churn_day = enrolled + rng.exponential(400 * np.exp(1.5 * engagement))
    rate = 0.06 * np.exp(0.4 * engagement)
    day = np.arange(days)
    active = (day[None, :] >= enrolled[:, None]) & (day[None, :] < churn_day[:, None])
    counts = rng.poisson(rate[:, None] * active)
    member_idx, day_idx = np.nonzero(counts)
    purchases = pd.DataFrame(
        {
            "member_id": np.asarray(ids)[member_idx],
            "occurred_date": [START + timedelta(days=int(d)) for d in day_idx],
            "amount": np.round(
                rng.gamma(2.0, 20.0, len(member_idx)) * counts[member_idx, day_idx], 2
            ),
        }
    )
    closes = (churn_day < days) & (rng.random(n_members) < 0.3)
    members = pd.DataFrame(
        {
            "member_id": ids,
            "enrolled_at": [pd.Timestamp(START + timedelta(days=int(d))) for d in enrolled],
            "closed_at": [
                pd.Timestamp(START + timedelta(days=int(c) + 1)) if f else pd.NaT
                for c, f in zip(churn_day, closes, strict=True)
            ],
            "engagement": engagement,
        }
    )
    n_resp = n_members
    who = rng.integers(0, n_members, n_resp)
    when = rng.integers(30, days, n_resp)
    items = np.clip(
        np.round(3.2 + 0.9 * engagement[who][:, None] + rng.normal(0, 0.6, (n_resp, 5))), 1, 5
    )
    responses = pd.DataFrame(
        {
            "member_id": np.asarray(ids)[who],
            "submitted_at": [pd.Timestamp(START + timedelta(days=int(d), hours=10)) for d in when],
            "survey_type": "relationship",
            "nps_score": np.clip(
                np.round(7.5 + 1.6 * engagement[who] + rng.normal(0, 1, n_resp)), 0, 10
            ),
            **{item: items[:, i] for i, item in enumerate(labels.EMOTION_ITEMS)},
        }
    )
    return {
        "members": members,
        "purchases": purchases,
        "responses": responses,
        "engagement": pd.Series(engagement, index=ids),
    }


def pit_features(sim: dict[str, pd.DataFrame], cutoffs: list[date], seed: int = 1) -> pd.DataFrame:
    """Point-in-time features at each cutoff from data strictly before it."""
    rng = np.random.default_rng(seed)
    members = sim["members"]
    purchases = sim["purchases"].assign(occurred_date=lambda f: pd.to_datetime(f["occurred_date"]))
    responses = sim["responses"]
    engagement = sim["engagement"]
    rows = []
    for cutoff in cutoffs:
        start = pd.Timestamp(cutoff)
        frame = members[members["enrolled_at"] < start][["member_id", "enrolled_at", "closed_at"]]
        frame = frame.assign(cutoff_date=cutoff)
        frame["tenure_days"] = (start - frame["enrolled_at"]).dt.days
        frame["is_closed"] = frame["closed_at"].notna() & (frame["closed_at"] < start)
        before = purchases[purchases["occurred_date"] < start]
        age = (start - before["occurred_date"]).dt.days
        last = before.groupby("member_id")["occurred_date"].max()
        frame["days_since_last_transaction"] = (start - frame["member_id"].map(last)).dt.days
        first = before.groupby("member_id")["occurred_date"].min()
        frame["days_since_first_transaction"] = (start - frame["member_id"].map(first)).dt.days
        frame["purchase_days_total"] = (
            frame["member_id"].map(before.groupby("member_id")["occurred_date"].nunique()).fillna(0)
        )
        for window in (30, 90, 365):
            inside = before[age <= window]
            frame[f"transactions_{window}d"] = (
                frame["member_id"].map(inside.groupby("member_id").size()).fillna(0)
            )
            frame[f"spend_{window}d"] = (
                frame["member_id"].map(inside.groupby("member_id")["amount"].sum()).fillna(0.0)
            )
        prev = before[(age > 30) & (age <= 60)]
        frame["transactions_30d_change"] = frame["transactions_30d"] - frame["member_id"].map(
            prev.groupby("member_id").size()
        ).fillna(0)
        frame["spend_30d_change"] = frame["spend_30d"] - frame["member_id"].map(
            prev.groupby("member_id")["amount"].sum()
        ).fillna(0)
        frame["spend_90d_change"] = frame["spend_30d_change"] * 2
        frame["points_balance"] = frame["spend_365d"].round()
        frame["store_share_365d"] = np.where(frame["transactions_365d"] > 0, 0.6, np.nan)
        frame["online_share_365d"] = np.where(frame["transactions_365d"] > 0, 0.3, np.nan)
        frame["app_share_365d"] = np.where(frame["transactions_365d"] > 0, 0.1, np.nan)
        seen = responses[responses["submitted_at"] < start].sort_values("submitted_at")
        latest = seen.groupby("member_id")["nps_score"].last()
        frame["survey_responses_total"] = (
            frame["member_id"].map(seen.groupby("member_id").size()).fillna(0)
        )
        frame["latest_nps_score"] = frame["member_id"].map(latest)
        frame["nps_score_change"] = np.where(frame["latest_nps_score"].notna(), -1.0, np.nan)
        for name, low, high in (("csat", 1, 5), ("ces", 1, 7)):
            frame[f"latest_{name}_score"] = np.where(
                frame["latest_nps_score"].notna(), rng.integers(low, high + 1, len(frame)), np.nan
            )
            frame[f"{name}_score_change"] = np.where(frame["latest_nps_score"].notna(), 0.0, np.nan)
        frame["latest_engagement_index"] = frame["latest_nps_score"] * 10
        frame["engagement_index_change"] = np.where(frame["latest_nps_score"].notna(), 0.0, np.nan)
        e = frame["member_id"].map(engagement).to_numpy()
        for window, scale in ((30, 0.6), (90, 1.8)):
            frame[f"negative_moments_{window}d"] = rng.poisson(scale * np.exp(-1.2 * e))
            frame[f"positive_moments_{window}d"] = rng.poisson(scale * np.exp(0.5 * e))
        frame["calls_90d"] = rng.poisson(0.8 * np.exp(-0.5 * e))
        frame["unresolved_calls_90d"] = rng.binomial(frame["calls_90d"], 0.25)
        frame["escalated_calls_90d"] = rng.binomial(frame["unresolved_calls_90d"], 0.4)
        frame["repeat_contacts_90d"] = rng.binomial(frame["calls_90d"], 0.2)
        frame["avg_queue_seconds_90d"] = np.where(
            frame["calls_90d"] > 0, rng.gamma(2, 150, len(frame)), np.nan
        )
        rows.append(frame)
    out = pd.concat(rows, ignore_index=True)
    return out[["member_id", "cutoff_date", "is_closed", *FEATURE_COLUMNS]]


def warehouse_data(n_members: int = 300, seed: int = 0) -> tuple[WarehouseData, pd.DataFrame]:
    """Training inputs plus a customer_360 frame as of the last simulated day."""
    days = 540
    sim = simulate(n_members, days, seed)
    last = START + timedelta(days=days - 1)
    cutoffs = [
        date(y, m, 1) for y in (2024, 2025) for m in range(1, 13) if START < date(y, m, 1) <= last
    ]
    pit = pit_features(sim, cutoffs, seed)
    current = pit_features(sim, [last + timedelta(days=1)], seed + 1)
    current = current.assign(as_of_date=last, region="north", tier="silver", marketing_opt_in=True)
    data = WarehouseData(
        pit=pit,
        purchases=sim["purchases"],
        members=sim["members"],
        responses=sim["responses"],
        first_data_date=START,
        last_data_date=last,
    )
    return data, current.drop(columns=["cutoff_date"])


def portable_types(frame: pd.DataFrame) -> dict[str, str]:
    """The store's portable column types for ``frame``'s columns (dates held as objects)."""
    types = {}
    for column, dtype in frame.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype):
            types[column] = "boolean"
        elif pd.api.types.is_integer_dtype(dtype):
            types[column] = "bigint"
        elif pd.api.types.is_float_dtype(dtype):
            types[column] = "double"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            types[column] = "timestamp"
        elif isinstance(frame[column].dropna().iloc[0], date):
            types[column] = "date"
        else:
            types[column] = "varchar"
    return types


def write_warehouse(store, data: WarehouseData, current: pd.DataFrame) -> None:
    """The marts the models read, written through ``store`` as dbt would leave them: the
    point-in-time features, the facts behind the labels, the span of the daily activity and
    today's customer_360 (this test plays the dbt build, the tables' owner)."""
    daily = pd.DataFrame(
        {
            "member_id": ["M0000001"] * 2,
            "activity_date": [data.first_data_date, data.last_data_date],
        }
    )
    tables = {
        "member_features_pit": data.pit.assign(inputs_fingerprint="not a feature"),
        "fct_member_daily": daily,
        "fct_transactions": data.purchases,
        "dim_members": data.members,
        "fct_survey_responses": data.responses,
        "customer_360": current,
    }
    with store.writer("dbt") as writer:
        for name, frame in tables.items():
            writer.ensure(name, portable_types(frame))
            writer.replace(name, frame, {})
