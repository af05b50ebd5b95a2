"""A small warehouse for the programs tests, on DuckDB or PostgreSQL (whichever store it is given):
the tables programs read, each created with the columns and types of its enforced dbt contract (so
a column the code reads that the warehouse does not have fails here too), filled from a seeded
simulation. It plays dbt and the models, each through its own store writer.

``build`` writes the warehouse as of a first date; ``advance`` moves it to a later date after a
programs cycle ran, adding purchases in which the treated members of ``boosted`` programs buy
again more often than everyone else (a planted effect the lift must recover). With
``surveys=False`` the warehouse is a loyalty-only deployment's: no survey table at all, and scores
without a segment model (``predicted_segment``, ``segment_probability`` and
``segment_model_version`` null, ``model_version`` naming the churn model alone).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import yaml

from config.settings import REPO_ROOT
from warehouse import tables

MARTS = REPO_ROOT / "dbt_project" / "models" / "marts"
SEGMENTS = ("Disengaged", "Swing", "Engaged")
REASONS = (
    "no purchase in 45 days",
    "1 unresolved call in the last 90 days",
    "last NPS answer was 4 (a detractor)",
    "quiet for longer than usual: about 2x the member's typical gap between purchases",
    None,
)
START = date(2025, 7, 1)
FIRST_CYCLE = date(2026, 4, 30)
SECOND_CYCLE = date(2026, 6, 30)


def contract_columns(model: str) -> dict[str, str]:
    for path in (MARTS / "_marts__models.yml", MARTS / "restricted" / "_restricted__models.yml"):
        for entry in yaml.safe_load(path.read_text())["models"]:
            if entry["name"] == model:
                return {c["name"]: c["data_type"] for c in entry["columns"]}
    raise KeyError(model)


# The contract's types as a store writer takes them: numeric as double (the PostgreSQL driver
# does not copy floats into numeric), timestamps without a time zone as dbt builds them.
_WRITABLE = {"numeric(18, 2)": "double", "timestamp": "timestamp without time zone"}

SCORE_COLUMNS = {
    "member_id": "varchar",
    "score_date": "date",
    "model_version": "varchar",
    "churn_model_version": "varchar",
    "segment_model_version": "varchar",
    "churn_probability": "double",
    "is_lapsed": "boolean",
    "risk_band": "varchar",
    "predicted_segment": "varchar",
    "segment_probability": "double",
    "reason_1": "varchar",
    "reason_2": "varchar",
    "reason_3": "varchar",
}


def create(store, table: str, frame: pd.DataFrame) -> None:
    """``table`` with its contract's columns (missing ones null), holding only ``frame``'s rows,
    written by the table's owner."""
    columns = {c: _WRITABLE.get(t, t) for c, t in contract_columns(table).items()}
    unknown = set(frame.columns) - set(columns)
    assert not unknown, f"{table}: not in the contract: {unknown}"
    with store.writer(tables.table(table).owner) as writer:
        writer.ensure(table, columns)
        writer.replace(table, frame, {})


def write_scores(store, scores: pd.DataFrame, on: date) -> None:
    """Replace the scores of ``on`` in ``ml_scores``, as the models write them."""
    with store.writer("models") as writer:
        writer.ensure("ml_scores", SCORE_COLUMNS)
        writer.replace("ml_scores", scores[list(SCORE_COLUMNS)], {"score_date": on})


def _members(n: int, rng) -> pd.DataFrame:
    ids = [f"M{i:05d}" for i in range(1, n + 1)]
    enrolled = [datetime(2024, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 500, n)]
    closed = rng.random(n) < 0.05
    return pd.DataFrame(
        {
            "member_id": ids,
            "enrolled_at": enrolled,
            "tier": rng.choice(
                ["bronze", "silver", "gold", "platinum"], n, p=[0.6, 0.25, 0.1, 0.05]
            ),
            "region": rng.choice(["north", "south"], n),
            "marketing_opt_in": rng.random(n) < 0.6,
            "closed_at": [datetime(2026, 1, 15) if c else None for c in closed],
            "is_closed": closed,
            "first_name": [f"Name{i}" for i in range(1, n + 1)],
            "email": [f"member{i}@example.com" for i in range(1, n + 1)],
            "engagement": rng.normal(0, 1, n),
        }
    )


def _purchases(
    members: pd.DataFrame, start: date, end: date, rate, rng, first_id: int
) -> pd.DataFrame:
    days = (end - start).days + 1
    rows = []
    for member, member_rate in zip(members["member_id"], rate, strict=True):
        count = rng.poisson(member_rate * days)
        for day in rng.integers(0, days, count):
            rows.append(
                (
                    member,
                    datetime.combine(start + timedelta(days=int(day)), datetime.min.time())
                    + timedelta(hours=12),
                )
            )
    frame = pd.DataFrame(rows, columns=["member_id", "occurred_at"])
    frame["amount"] = np.round(rng.gamma(2.0, 20.0, len(frame)), 2)
    frame["transaction_id"] = [f"T{first_id + i:07d}" for i in range(len(frame))]
    return frame


def _surveys_and_calls(members: pd.DataFrame, start: date, end: date, rng, offset: int):
    open_members = members[~members["is_closed"]]
    n = len(open_members)
    days = (end - start).days + 1
    who = rng.integers(0, n, n)
    engagement = open_members["engagement"].to_numpy()[who]
    items = np.clip(np.round(3 + 0.9 * engagement[:, None] + rng.normal(0, 0.7, (n, 5))), 1, 5)
    submitted = [
        datetime.combine(start + timedelta(days=int(d)), datetime.min.time()) + timedelta(hours=9)
        for d in rng.integers(0, days, n)
    ]
    nps = np.clip(
        np.round(7 + 1.5 * engagement + items.mean(axis=1) - 3 + rng.normal(0, 1, n)), 0, 10
    )
    responses = pd.DataFrame(
        {
            "response_id": [f"R{offset + i:06d}" for i in range(n)],
            "member_id": open_members["member_id"].to_numpy()[who],
            "submitted_at": submitted,
            "submitted_date": [s.date() for s in submitted],
            "survey_type": "relationship",
            "nps_score": nps.astype(int),
            "is_detractor": nps <= 6,
            "ces_score": np.clip(np.round(5 + engagement + rng.normal(0, 1, n)), 1, 7).astype(int),
            "comment_sentiment_label": rng.choice(
                ["negative", "positive", None], n, p=[0.2, 0.3, 0.5]
            ),
            **{
                f"{item}_score": items[:, i].astype(int)
                for i, item in enumerate(("valued", "confident", "informed", "protected", "helped"))
            },
        }
    )
    caller = rng.integers(0, n, n)
    started = [
        datetime.combine(start + timedelta(days=int(d)), datetime.min.time()) + timedelta(hours=14)
        for d in rng.integers(0, days, n)
    ]
    unresolved = rng.random(n) < 0.2
    calls = pd.DataFrame(
        {
            "call_id": [f"C{offset + i:06d}" for i in range(n)],
            "member_id": open_members["member_id"].to_numpy()[caller],
            "started_at": started,
            "started_date": [s.date() for s in started],
            "is_resolved": ~unresolved,
            "is_unresolved": unresolved,
            "is_escalated": unresolved & (rng.random(n) < 0.4),
            "is_long_wait": rng.random(n) < 0.1,
            "is_repeat_contact": rng.random(n) < 0.25,
        }
    )
    return responses, calls


def _customer_360(members: pd.DataFrame, purchases: pd.DataFrame, as_of: date) -> pd.DataFrame:
    last = purchases.groupby("member_id")["occurred_at"].max()
    cutoff = pd.Timestamp(as_of + timedelta(days=1))
    recent = purchases[purchases["occurred_at"] >= cutoff - pd.Timedelta(days=90)]
    return pd.DataFrame(
        {
            "member_id": members["member_id"],
            "as_of_date": as_of,
            "region": members["region"],
            "tier": members["tier"],
            "marketing_opt_in": members["marketing_opt_in"],
            "tenure_days": (cutoff - pd.to_datetime(members["enrolled_at"])).dt.days,
            "is_closed": members["is_closed"],
            "days_since_last_transaction": (cutoff - members["member_id"].map(last)).dt.days,
            "transactions_90d": members["member_id"]
            .map(recent.groupby("member_id").size())
            .fillna(0)
            .astype(int),
        }
    )


def _scores(
    members: pd.DataFrame, as_of: date, rng, version: str = "1", segments: bool = True
) -> pd.DataFrame:
    open_members = members[~members["is_closed"]]
    n = len(open_members)
    probability = np.clip(
        1 / (1 + np.exp(1.2 * open_members["engagement"].to_numpy() + rng.normal(0, 0.8, n))), 0, 1
    )
    drifted = open_members["engagement"].to_numpy() + rng.normal(0, 0.3, n)
    segment = np.where(drifted > 0.6, "Engaged", np.where(drifted > -0.3, "Swing", "Disengaged"))
    return pd.DataFrame(
        {
            "member_id": open_members["member_id"].to_numpy(),
            "score_date": as_of,
            "model_version": (
                f"cx_churn/{version}+cx_segment/{version}" if segments else f"cx_churn/{version}"
            ),
            "churn_model_version": version,
            "segment_model_version": version if segments else None,
            "churn_probability": probability,
            "is_lapsed": False,
            "risk_band": np.where(
                probability >= 0.5, "high", np.where(probability >= 0.25, "medium", "low")
            ),
            "predicted_segment": segment if segments else None,
            "segment_probability": 0.7 if segments else None,
            "reason_1": rng.choice(np.array(REASONS, dtype=object), n),
            "reason_2": None,
            "reason_3": None,
        }
    )


def _write(store, state: dict, as_of: date) -> None:
    members, purchases = state["members"], state["purchases"]
    daily = purchases.assign(activity_date=purchases["occurred_at"].dt.date)[
        ["member_id", "activity_date"]
    ].drop_duplicates()
    daily = daily[daily["activity_date"] <= as_of]
    create(
        store,
        "dim_members",
        members[
            [
                "member_id",
                "enrolled_at",
                "region",
                "tier",
                "marketing_opt_in",
                "closed_at",
                "is_closed",
            ]
        ],
    )
    create(
        store,
        "member_contacts",
        members[["member_id", "first_name", "email", "marketing_opt_in"]],
    )
    create(store, "fct_transactions", purchases[purchases["occurred_at"].dt.date <= as_of])
    create(store, "fct_member_daily", daily)
    if state["responses"] is not None:
        create(store, "fct_survey_responses", state["responses"])
    create(store, "fct_calls", state["calls"])
    create(
        store,
        "customer_360",
        _customer_360(members, purchases[purchases["occurred_at"].dt.date <= as_of], as_of),
    )
    write_scores(store, state["scores"], as_of)


def build(store, as_of: date, n_members: int = 400, seed: int = 11, surveys: bool = True) -> dict:
    """The warehouse as of ``as_of``; returns the simulation state for ``advance``.

    ``surveys=False``: no survey platform, so no ``fct_survey_responses`` and no segment model.
    """
    rng = np.random.default_rng(seed)
    members = _members(n_members, rng)
    rate = 0.03 * np.exp(0.4 * members["engagement"].to_numpy())
    purchases = _purchases(members, START, as_of, rate, rng, 0)
    responses, calls = _surveys_and_calls(members, START, as_of, rng, 0)
    state = {
        "members": members,
        "purchases": purchases,
        "responses": responses if surveys else None,
        "calls": calls,
        "rng": rng,
        "surveys": surveys,
    }
    state["scores"] = _scores(members, as_of, rng, segments=surveys)
    _write(store, state, as_of)
    return state


def advance(
    store, state: dict, as_of: date, boosted: tuple[str, ...], retained=(0.35, 0.85)
) -> None:
    """Move the warehouse to ``as_of``: after the last cycle, treated members of ``boosted``
    programs buy again with probability ``retained[1]``, everyone else ``retained[0]``."""
    rng = state["rng"]
    last = store.read("select max(cycle_date) as last from program_cycles").iloc[0, 0].date()
    assigned = store.read(
        "select member_id, program from program_assignments where cycle_date = $1 and "
        "assignment_group = 'treatment'",
        [last],
    )
    treated = set(assigned.loc[assigned["program"].isin(boosted), "member_id"])
    members = state["members"]
    chance = np.where(members["member_id"].isin(treated), retained[1], retained[0])
    buys = rng.random(len(members)) < chance
    rows = []
    for member, bought in zip(members["member_id"], buys, strict=True):
        if bought:
            for _ in range(rng.integers(1, 4)):
                day = last + timedelta(days=int(rng.integers(1, (as_of - last).days + 1)))
                rows.append(
                    (member, datetime.combine(day, datetime.min.time()) + timedelta(hours=12))
                )
    extra = pd.DataFrame(rows, columns=["member_id", "occurred_at"])
    extra["amount"] = np.round(rng.gamma(2.0, 20.0, len(extra)), 2)
    extra["transaction_id"] = [f"T{len(state['purchases']) + i:07d}" for i in range(len(extra))]
    state["purchases"] = pd.concat([state["purchases"], extra], ignore_index=True)
    responses, calls = _surveys_and_calls(members, last + timedelta(days=1), as_of, rng, 100_000)
    if state["responses"] is not None:
        state["responses"] = pd.concat([state["responses"], responses], ignore_index=True)
    state["calls"] = pd.concat([state["calls"], calls], ignore_index=True)
    state["scores"] = _scores(members, as_of, rng, segments=state.get("surveys", True))
    _write(store, state, as_of)
