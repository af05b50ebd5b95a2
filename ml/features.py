"""Training data: the point-in-time feature table at rolling-origin cutoffs, with labels.

The warehouse's ``member_features_pit`` holds one row per member per cutoff built only from data
dated before the cutoff. Training uses several cutoffs (a rolling origin, so the model sees more
than one season); the latest cutoff whose label window is complete is the temporal holdout, and a
training cutoff is used only when its own label window ends by the holdout cutoff, so no training
label peeks at the holdout period.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from ml import labels as labels_mod

if TYPE_CHECKING:
    from warehouse.store import Store

# Everything the models may see: the point-in-time features shared by member_features_pit and
# customer_360 (ids, dates and is_closed excluded: closed members are not scored).
FEATURE_COLUMNS: tuple[str, ...] = (
    "tenure_days",
    "days_since_last_transaction",
    "days_since_first_transaction",
    "purchase_days_total",
    "transactions_30d",
    "spend_30d",
    "transactions_90d",
    "spend_90d",
    "transactions_365d",
    "spend_365d",
    "transactions_30d_change",
    "spend_30d_change",
    "spend_90d_change",
    "points_balance",
    "store_share_365d",
    "online_share_365d",
    "app_share_365d",
    "survey_responses_total",
    "latest_nps_score",
    "nps_score_change",
    "latest_csat_score",
    "csat_score_change",
    "latest_ces_score",
    "ces_score_change",
    "latest_engagement_index",
    "engagement_index_change",
    "negative_moments_30d",
    "positive_moments_30d",
    "negative_moments_90d",
    "positive_moments_90d",
    "calls_90d",
    "unresolved_calls_90d",
    "escalated_calls_90d",
    "repeat_contacts_90d",
    "avg_queue_seconds_90d",
)
# Survey answers are what define the segment label, and most members never answer; the segment
# model predicts everyone's segment from behaviour and contacts alone.
SURVEY_COLUMNS: frozenset[str] = frozenset(
    c for c in FEATURE_COLUMNS if c.startswith(("latest_", "survey_")) or "score_change" in c
) | {"engagement_index_change"}
# Counts that a survey answer feeds: a detractor answer or a negative comment is a negative
# moment, a promoter answer or a positive comment a positive one (int_survey_responses_scored),
# beside the call-center moments. For a respondent they restate the answer the label is read
# from, so they leak it; the segment model sees the calls through the call counts instead.
SURVEY_DERIVED_COLUMNS: frozenset[str] = frozenset(
    c for c in FEATURE_COLUMNS if c.startswith(("negative_moments_", "positive_moments_"))
)
SEGMENT_FEATURE_COLUMNS: tuple[str, ...] = tuple(
    c for c in FEATURE_COLUMNS if c not in SURVEY_COLUMNS | SURVEY_DERIVED_COLUMNS
)


class InsufficientHistoryError(ValueError):
    """The warehouse holds too little history for a training cutoff plus a holdout cutoff."""


@dataclass(frozen=True)
class WarehouseData:
    """The warehouse tables training needs, read once and then handled as plain frames."""

    pit: pd.DataFrame
    purchases: pd.DataFrame
    members: pd.DataFrame
    responses: pd.DataFrame
    first_data_date: date
    last_data_date: date


@dataclass(frozen=True)
class TrainingData:
    """Frames for both models, split by time (churn) and by time and member (segment)."""

    churn_train: pd.DataFrame
    churn_holdout: pd.DataFrame
    segment_train: pd.DataFrame
    segment_test: pd.DataFrame
    train_cutoffs: tuple[date, ...]
    holdout_cutoff: date
    first_data_date: date
    last_data_date: date
    horizon_days: int
    # The windows the history allowed (plan_windows): activity window and why they were chosen.
    activity_days: int = 180
    plan_reason: str = ""
    # Rows before training was capped to a sample (train.cap_training_rows); None: not capped.
    churn_train_rows_available: int | None = None
    segment_train_rows_available: int | None = None


def read_warehouse(
    store: Store, horizon_days: int | None = None, n_train_cutoffs: int = 6
) -> WarehouseData:
    """Read the feature table and the facts behind the labels through ``store`` (a
    ``warehouse.store.Store``, DuckDB or PostgreSQL).

    With ``horizon_days``, only what one training run uses is read: the feature rows of the
    cutoffs ``choose_cutoffs`` picks, and the purchases inside their activity and label windows.
    The whole table is (cutoffs x members) rows, most of which a run never looks at.
    """
    from warehouse import tables

    # The build's bookkeeping columns (the registry's) are not features.
    bookkeeping = set(tables.table("member_features_pit").bookkeeping)
    pit_columns = [c for c in store.columns("member_features_pit") if c not in bookkeeping]
    if not pit_columns:
        raise FileNotFoundError(
            "no member_features_pit in the warehouse: build it first with "
            "`python -m warehouse build`"
        )
    span = store.read(
        "select min(activity_date) as first_date, max(activity_date) as last_date "
        "from fct_member_daily"
    )
    first, last = (_as_date(span.at[0, column]) for column in ("first_date", "last_date"))
    pit_sql = f"select {', '.join(pit_columns)} from member_features_pit"
    purchases_sql, params = "", []
    cutoffs: list[date] = []
    if horizon_days is not None and first is not None:
        available = store.read(
            "select distinct cast(cutoff_date as date) as cutoff_date from member_features_pit"
        )["cutoff_date"]
        plan = plan_windows(
            [_as_date(c) for c in available], first, last, horizon_days, n_train_cutoffs
        )
        cutoffs = [*plan.train_cutoffs, plan.holdout_cutoff]
        numbers = ", ".join(f"${i}" for i in range(1, len(cutoffs) + 1))
        pit_sql += f" where cutoff_date in ({numbers})"
        purchases_sql = " and occurred_date >= $1 and occurred_date < $2"
        params = [
            min(cutoffs) - timedelta(days=plan.activity_days),
            max(cutoffs) + timedelta(days=plan.horizon_days),
        ]
    pit = store.read(pit_sql, cutoffs)
    # One row per member and purchase day is all the labels look at.
    purchases = store.read(
        "select member_id, occurred_date, max(amount) as amount from fct_transactions "
        f"where amount > 0{purchases_sql} group by member_id, occurred_date",
        params,
    )
    members = store.read("select member_id, enrolled_at, closed_at from dim_members")
    items = ", ".join(labels_mod.EMOTION_ITEMS)
    responses = store.read(
        "select member_id, submitted_at, survey_type, nps_score, "
        f"{items} from fct_survey_responses where member_id is not null"
    )
    return WarehouseData(pit, _naive(purchases), _naive(members), _naive(responses), first, last)


def _naive(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as the marts declare them, naive UTC, whichever type the engine holds them
    in (a ``timestamptz`` column reads back zoned): the labels compare them with dates."""
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


def _as_date(value) -> date | None:
    """A date as the store returns it (a ``datetime64`` cell), as ``datetime.date``."""
    return None if pd.isna(value) else pd.Timestamp(value).date()


def choose_cutoffs(
    available: Sequence[date],
    first_data_date: date,
    last_data_date: date,
    horizon_days: int = 90,
    activity_days: int = 180,
    n_train_cutoffs: int = 6,
) -> tuple[tuple[date, ...], date]:
    """Pick the training cutoffs and the temporal holdout cutoff.

    The holdout is the latest cutoff whose label window is complete. Training cutoffs need a full
    activity window before them (so "active" means the same thing everywhere) and a label window
    that ends by the holdout cutoff. Raises ``InsufficientHistoryError`` saying how much is needed.
    """
    needed = activity_days + 2 * horizon_days
    have = (last_data_date - first_data_date).days + 1
    complete = sorted(
        c
        for c in available
        if labels_mod.label_window_complete(c, last_data_date, horizon_days)
        and c >= first_data_date + timedelta(days=activity_days)
    )
    if not complete:
        raise InsufficientHistoryError(
            f"history of {have} days ({first_data_date} to {last_data_date}) is too short: a "
            f"{horizon_days}-day churn label needs at least {activity_days + horizon_days} days "
            f"(a {activity_days}-day activity window plus the label window), and training plus a "
            f"holdout need about {needed} days"
        )
    holdout = complete[-1]
    train = [c for c in complete if c + timedelta(days=horizon_days) <= holdout]
    if not train:
        raise InsufficientHistoryError(
            f"history of {have} days ({first_data_date} to {last_data_date}) leaves no training "
            f"cutoff before the holdout {holdout}: need at least {needed} days ({activity_days} "
            f"days of activity, a {horizon_days}-day training label window and a "
            f"{horizon_days}-day holdout window)"
        )
    return tuple(train[-n_train_cutoffs:]), holdout


# The windows a history can be planned with, longest first. The label window (horizon) is the
# question marketers ask ("no purchase in the next 90 days?"), so it shrinks last; the activity
# window (who counts as an active member at a cutoff) shrinks first.
ACTIVITY_DAYS_CHOICES: tuple[int, ...] = (180, 120, 90, 60)
HORIZON_DAYS_CHOICES: tuple[int, ...] = (90, 60, 45, 30)
# Fewer training cutoffs than this is accepted only when no longer window leaves more.
PREFERRED_MIN_TRAIN_CUTOFFS = 3
MIN_HISTORY_DAYS = min(ACTIVITY_DAYS_CHOICES) + 2 * min(HORIZON_DAYS_CHOICES)


@dataclass(frozen=True)
class WindowPlan:
    """The windows one training run uses, chosen from the history it has."""

    horizon_days: int
    activity_days: int
    train_cutoffs: tuple[date, ...]
    holdout_cutoff: date
    history_days: int
    cadence: str  # "weekly" or "monthly": the spacing of the warehouse's cutoffs
    reason: str

    def describe(self) -> dict[str, object]:
        return {
            "history_days": self.history_days,
            "horizon_days": self.horizon_days,
            "activity_days": self.activity_days,
            "cutoff_cadence": self.cadence,
            "n_train_cutoffs": len(self.train_cutoffs),
            "window_plan": self.reason,
        }


def _cadence(cutoffs: Sequence[date]) -> str:
    gaps = [(b - a).days for a, b in zip(cutoffs, cutoffs[1:], strict=False)]
    return "weekly" if gaps and max(gaps) <= 7 else "monthly"


def plan_windows(
    available: Sequence[date],
    first_data_date: date,
    last_data_date: date,
    horizon_days: int = 90,
    n_train_cutoffs: int = 6,
) -> WindowPlan:
    """The longest label and activity windows this history supports, and their cutoffs.

    Tries the configured horizon with a 180-day activity window first, then shorter activity
    windows (120, 90, 60 days), then shorter horizons (60, 45, 30 days; never longer than the
    one asked for), and takes the first that leaves ``PREFERRED_MIN_TRAIN_CUTOFFS`` training
    cutoffs (or ``n_train_cutoffs`` if fewer are asked for); failing that, the first that leaves
    any. The warehouse spaces its cutoffs weekly when the history is short, so a nine-month
    history still has several. Raises ``InsufficientHistoryError`` naming the days needed.
    """
    have = (last_data_date - first_data_date).days + 1
    horizons = [h for h in HORIZON_DAYS_CHOICES if h < horizon_days]
    horizons = [horizon_days, *horizons]
    combos = [(h, a) for h in horizons for a in ACTIVITY_DAYS_CHOICES]
    wanted = min(PREFERRED_MIN_TRAIN_CUTOFFS, n_train_cutoffs)
    found: dict[int, tuple] = {}
    for h, a in combos:
        try:
            train, holdout = choose_cutoffs(
                available, first_data_date, last_data_date, h, a, n_train_cutoffs
            )
        except InsufficientHistoryError:
            continue
        for need in (wanted, 1):
            if len(train) >= need and need not in found:
                found[need] = (h, a, train, holdout)
    if not found:
        floor_horizon = min(horizons)
        floor = min(ACTIVITY_DAYS_CHOICES) + 2 * floor_horizon
        raise InsufficientHistoryError(
            f"history of {have} days ({first_data_date} to {last_data_date}) is too short to "
            f"train a churn model: it needs at least about {floor} days ("
            f"{min(ACTIVITY_DAYS_CHOICES)} days of purchases before a training cutoff, then a "
            f"{floor_horizon}-day training label window and a {floor_horizon}-day holdout "
            "window), plus a cutoff of the warehouse's weekly or monthly grid inside that span; "
            "load more history or wait for it to accumulate"
        )
    h, a, train, holdout = found.get(wanted) or found[1]
    shortened = []
    if h < horizon_days:
        shortened.append(f"label window {h} days instead of {horizon_days}")
    if a < ACTIVITY_DAYS_CHOICES[0]:
        shortened.append(f"activity window {a} days instead of {ACTIVITY_DAYS_CHOICES[0]}")
    cadence = _cadence(train if len(train) > 1 else sorted(available))
    reason = (
        f"{have} days of history with {cadence} cutoffs: {len(train)} training cutoff(s) "
        f"({train[0]} to {train[-1]}) and the holdout {holdout}"
        + ("; shortened to fit: " + ", ".join(shortened) if shortened else "")
    )
    return WindowPlan(h, a, tuple(train), holdout, have, cadence, reason)


def available_features(
    frame: pd.DataFrame, columns: Sequence[str]
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The columns with data in ``frame``, and the others with the reason each is left out.

    A column with no value, or one value for every row, tells a model nothing: it is the mark
    of a source or an optional column this deployment does not have (no call center: every
    call count is 0 and the queue time null). Such a column is left out of the run rather than
    failing it or crashing the booster on an all-null column.
    """
    kept, dropped = [], {}
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce") if column in frame else None
        if values is None:
            dropped[column] = "not in the feature table"
        elif values.notna().sum() == 0:
            dropped[column] = "no value in any training row"
        elif values.nunique(dropna=True) <= 1:
            dropped[column] = f"the same value ({values.dropna().iloc[0]:g}) in every training row"
        else:
            kept.append(column)
    return tuple(kept), dropped


class FeatureColumnError(KeyError):
    """A feature column is missing or not numeric; the message names it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def to_model_frame(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The model input: the named columns as float64 (nulls as NaN), in a fixed order.

    One numeric type keeps the MLflow signature simple and makes DECIMAL/BIGINT/NULL mixes from
    the warehouse behave the same at training and scoring. A missing or non-numeric column raises
    ``FeatureColumnError`` naming it, rather than a shape error deep inside the model.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FeatureColumnError(f"feature frame is missing column(s): {', '.join(missing)}")
    out = {}
    for column in columns:
        values = frame[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            converted = pd.to_numeric(values, errors="coerce")
            if converted.notna().sum() < values.notna().sum():
                raise FeatureColumnError(
                    f"feature column {column!r} has type {values.dtype}, expected a number"
                )
            values = converted
        out[column] = values.astype("float64")
    return pd.DataFrame(out, index=frame.index)


# Derived from the point-in-time columns (so customer_360 yields them too): recency only means
# something relative to how often a member usually buys.
DERIVED_COLUMNS: tuple[str, ...] = ("purchase_rate_per_day", "recency_x_rate", "rate_90_vs_365")


DERIVED_INPUTS: tuple[str, ...] = (
    "tenure_days",
    "transactions_365d",
    "days_since_last_transaction",
    "transactions_90d",
)


def add_derived(features: pd.DataFrame) -> pd.DataFrame:
    """Add purchase rate and rate-relative recency to a ``to_model_frame`` output (when the
    columns they are computed from are there)."""
    out = features.copy()
    if not set(DERIVED_INPUTS) <= set(out.columns):
        return out
    observed_days = np.clip(out["tenure_days"], 30, 365)
    rate = out["transactions_365d"] / observed_days
    out["purchase_rate_per_day"] = rate
    out["recency_x_rate"] = out["days_since_last_transaction"] * rate
    out["rate_90_vs_365"] = (out["transactions_90d"] / 90.0) / (rate + 1e-3)
    return out


class ModelInput(TransformerMixin, BaseEstimator):
    """The first step of every logged model: ``customer_360`` (or ``member_features_pit``)
    columns as they are in the warehouse -> the named feature columns as float64, plus the
    derived ones. Extra columns (ids, dates, attributes) are ignored, so a logged model scores
    warehouse rows as they come."""

    def __init__(self, columns: Sequence[str] = FEATURE_COLUMNS, derived: bool = True):
        self.columns = columns
        self.derived = derived

    def fit(self, X: pd.DataFrame, y=None):
        self.columns_ = tuple(self.columns)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        frame = to_model_frame(X, list(self.columns))
        return add_derived(frame) if self.derived else frame


def churn_model_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The churn model's input columns: every feature plus the derived ones."""
    return add_derived(to_model_frame(frame, FEATURE_COLUMNS))


def segment_model_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The segment model's input: behaviour and contact features plus the derived ones."""
    return add_derived(to_model_frame(frame, SEGMENT_FEATURE_COLUMNS))


def holdout_members(member_ids: pd.Series, share: float, seed: int) -> pd.Series:
    """A stable, seeded ``share`` of members held out of segment training (hash, not order)."""

    def bucket(member_id: str) -> float:
        digest = hashlib.sha256(f"{seed}:{member_id}".encode()).hexdigest()
        return int(digest[:8], 16) / 0xFFFFFFFF

    return member_ids.map(bucket) < share


def build_training_data(
    data: WarehouseData,
    horizon_days: int = 90,
    n_train_cutoffs: int = 6,
    activity_days: int | None = None,
    segment_test_share: float = 0.3,
    seed: int = 42,
) -> TrainingData:
    """Join labels to point-in-time features at the chosen cutoffs."""
    # A new frame sharing the feature columns (copy-on-write), not a copy of the whole table:
    # at a million members a copy held 1.9 GB more at the peak of training.
    pit = data.pit.assign(cutoff_date=pd.to_datetime(data.pit["cutoff_date"]).dt.date)
    available = sorted(pit["cutoff_date"].unique())
    if activity_days is None:
        plan = plan_windows(
            available, data.first_data_date, data.last_data_date, horizon_days, n_train_cutoffs
        )
    else:  # windows fixed by the caller (tests, experiments)
        train, holdout = choose_cutoffs(
            available,
            data.first_data_date,
            data.last_data_date,
            horizon_days,
            activity_days,
            n_train_cutoffs,
        )
        plan = WindowPlan(
            horizon_days,
            activity_days,
            train,
            holdout,
            (data.last_data_date - data.first_data_date).days + 1,
            _cadence(available),
            "windows fixed by the caller",
        )
    horizon_days, activity_days = plan.horizon_days, plan.activity_days
    train_cutoffs, holdout = plan.train_cutoffs, plan.holdout_cutoff
    cutoffs = [*train_cutoffs, holdout]
    churn = labels_mod.churn_labels(
        data.purchases, data.members, cutoffs, data.last_data_date, horizon_days, activity_days
    )
    churn = churn.merge(pit, on=["member_id", "cutoff_date"], how="inner")
    churn = churn[~churn["is_closed"].fillna(False).astype(bool)]
    segments = labels_mod.segment_labels(data.responses, cutoffs)
    segments = segments.merge(pit, on=["member_id", "cutoff_date"], how="inner")
    segments = segments[~segments["is_closed"].fillna(False).astype(bool)]
    held = holdout_members(segments["member_id"], segment_test_share, seed)
    in_train = segments["cutoff_date"].isin(train_cutoffs)
    return TrainingData(
        churn_train=churn[churn["cutoff_date"].isin(train_cutoffs)].reset_index(drop=True),
        churn_holdout=churn[churn["cutoff_date"] == holdout].reset_index(drop=True),
        segment_train=segments[in_train & ~held].reset_index(drop=True),
        segment_test=segments[(segments["cutoff_date"] == holdout) & held].reset_index(drop=True),
        train_cutoffs=tuple(train_cutoffs),
        holdout_cutoff=holdout,
        first_data_date=data.first_data_date,
        last_data_date=data.last_data_date,
        horizon_days=horizon_days,
        activity_days=activity_days,
        plan_reason=plan.reason,
    )


def describe(training: TrainingData) -> dict[str, object]:
    """Sizes and dates, for logs and the model card."""
    return {
        "train_cutoffs": [str(c) for c in training.train_cutoffs],
        "holdout_cutoff": str(training.holdout_cutoff),
        "data_range": f"{training.first_data_date} to {training.last_data_date}",
        "horizon_days": training.horizon_days,
        "activity_days": training.activity_days,
        "window_plan": training.plan_reason,
        "churn_train_rows": len(training.churn_train),
        "churn_holdout_rows": len(training.churn_holdout),
        "churn_train_rate": float(np.mean(training.churn_train["churned"]))
        if len(training.churn_train)
        else float("nan"),
        "segment_train_rows": len(training.segment_train),
        "segment_test_rows": len(training.segment_test),
        "churn_train_rows_available": training.churn_train_rows_available
        or len(training.churn_train),
        "segment_train_rows_available": training.segment_train_rows_available
        or len(training.segment_train),
    }


def main(argv: list[str] | None = None) -> int:
    """Print what training would use: ``python -m ml.features``."""
    from config import load_settings

    parser = argparse.ArgumentParser(prog="python -m ml.features", description=__doc__)
    parser.add_argument("--horizon-days", type=int, default=90)
    args = parser.parse_args(argv)
    from warehouse.store import open_store

    store = open_store(load_settings(), snapshot=True)
    training = build_training_data(read_warehouse(store), args.horizon_days)
    for key, value in describe(training).items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
