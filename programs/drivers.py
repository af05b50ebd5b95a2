"""Key drivers: which experiences move NPS and churn, next to how well each is delivered today.

What customers say matters is not always what moves them, so importance is *derived* from
behaviour, not asked. Eleven experiences, each oriented so that higher is better:

- the five emotional items (feel valued, confident, informed, protected, helped; 1-5),
- effort (CES, 1-7, higher is easier),
- and four call-center experiences as shares of a member's calls: answered without a long wait,
  resolved, not escalated, not a repeat contact about the same issue.

Two outcomes:

- **NPS**: each member's latest NPS answer in the year to the as-of date, against the member's
  experiences in the year up to that answer (nothing after the answer can have moved it);
- **churn**: the churn label of ``ml/labels.py`` (active in the 180 days before a cutoff, then no
  purchase in the next 90 days or the account closed) at the latest cutoff whose 90 days are
  observed, against the experiences of the year before the cutoff.

**Derived importance** is Johnson's relative weights: each experience's share of the outcome
variance a linear model explains (R^2), split fairly among correlated experiences (the five
emotional items move together, so a plain regression would credit one and zero the rest). It is
computed from pairwise-complete correlations, because members answer different surveys and not
everyone calls; an experience observed for fewer than ``MIN_OBSERVED`` members is left out with a
note. For churn, a 0/1 outcome, the weights are those of the linear probability model: a ranking,
not odds.

**Stated performance** is how well each experience is delivered in the year to the as-of date:
the share of answers 4-5 (items), 5-7 (effort), or the share of calls without the problem.

A deployment without survey responses (no survey platform) has no NPS to explain and no survey
experiences: NPS is not derived and churn is explained by the call experiences alone, each with the
reason in ``note`` (``missing_data``). Without calls, the call experiences are left out likewise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from programs.members import has_rows, read

MIN_OBSERVED = 30
CHURN_HORIZON_DAYS = 90
CHURN_ACTIVITY_DAYS = 180
LOOKBACK_DAYS = 365
METHOD = "relative_weights_pairwise"


@dataclass(frozen=True)
class Driver:
    name: str
    label: str
    member_value: str  # SQL over responses (r) or calls (c) for a member's mean
    favourable: str  # SQL: 1.0 when favourable, 0.0 when not, null when not observed
    source: str  # "responses" or "calls"


# Booleans become 0.0/1.0 through an integer: PostgreSQL casts no boolean to double directly.
DRIVERS: tuple[Driver, ...] = (
    *(
        Driver(
            item,
            f"Feel {item}",
            f"avg(r.{item}_score)",
            f"cast(cast(r.{item}_score >= 4 as integer) as double)",
            "responses",
        )
        for item in ("valued", "confident", "informed", "protected", "helped")
    ),
    Driver(
        "effort",
        "Easy to get help (CES)",
        "avg(r.ces_score)",
        "cast(cast(r.ces_score >= 5 as integer) as double)",
        "responses",
    ),
    Driver(
        "wait",
        "Answered without a long wait",
        "avg(cast(cast(not c.is_long_wait as integer) as double))",
        "cast(cast(not c.is_long_wait as integer) as double)",
        "calls",
    ),
    Driver(
        "resolution",
        "Issue resolved",
        "avg(cast(cast(c.is_resolved as integer) as double))",
        "cast(cast(c.is_resolved as integer) as double)",
        "calls",
    ),
    Driver(
        "escalation",
        "Not escalated",
        "avg(cast(cast(not c.is_escalated as integer) as double))",
        "cast(cast(not c.is_escalated as integer) as double)",
        "calls",
    ),
    Driver(
        "repeat_contact",
        "Not a repeat contact",
        "avg(cast(cast(not c.is_repeat_contact as integer) as double))",
        "cast(cast(not c.is_repeat_contact as integer) as double)",
        "calls",
    ),
)
OUTCOMES = {"nps": "NPS (0-10)", "churn": "Churn in the next 90 days"}
# Why an outcome (first) or an experience (the others) has no data: notes marketers read.
NO_NPS_ANSWERS = (
    "no survey responses: the deployment has no survey platform, so there are no NPS answers to "
    "learn from"
)
NO_SURVEY_RESPONSES = "no survey responses (the deployment has no survey platform)"
NO_CALLS = "no call-center contacts (the deployment has no call-center data)"


def _driver_columns(source: str) -> str:
    return ",\n        ".join(
        f"{d.member_value} as {d.name}" for d in DRIVERS if d.source == source
    )


def _experience_sql(population: str, moment: str, inclusive: bool) -> str:
    """Member-level experiences in the year up to each member's ``moment`` column."""
    until = "<=" if inclusive else "<"
    return f"""
member_responses as (
    select
        p.member_id,
        {_driver_columns("responses")}
    from {population} as p
    inner join fct_survey_responses as r
        on p.member_id = r.member_id
        and r.submitted_at {until} p.{moment}
        and r.submitted_at > p.{moment} - interval {LOOKBACK_DAYS} day
    group by p.member_id
),

member_calls as (
    select
        p.member_id,
        {_driver_columns("calls")}
    from {population} as p
    inner join fct_calls as c
        on p.member_id = c.member_id
        and c.started_at {until} p.{moment}
        and c.started_at > p.{moment} - interval {LOOKBACK_DAYS} day
    group by p.member_id
)"""


def _driver_names() -> str:
    return ", ".join(f"{d.name}" for d in DRIVERS)


NPS_SQL = f"""
with

latest_nps as (
    select member_id, submitted_at, nps_score
    from fct_survey_responses
    where member_id is not null
        and nps_score is not null
        and submitted_date > $as_of - {LOOKBACK_DAYS}
        and submitted_date <= $as_of
    qualify row_number() over (
        partition by member_id order by submitted_at desc, response_id desc
    ) = 1
),

{_experience_sql("latest_nps", "submitted_at", inclusive=True)}

select
    latest_nps.member_id,
    cast(latest_nps.nps_score as double) as outcome,
    {_driver_names()}
from latest_nps
left join member_responses using (member_id)
left join member_calls using (member_id)
order by latest_nps.member_id
"""

# The churn rule of ml/labels.py (churn_labels), in SQL so it scales with the warehouse.
CHURN_SQL = f"""
with

at_risk as (
    select member_id, cast($cutoff as timestamp) as cutoff_at
    from fct_transactions
    where amount > 0
        and occurred_at >= cast($cutoff as timestamp) - interval {CHURN_ACTIVITY_DAYS} day
        and occurred_at < cast($cutoff as timestamp)
    group by member_id
),

open_at_risk as (
    select at_risk.*
    from at_risk
    left join dim_members as members on at_risk.member_id = members.member_id
    where not coalesce(members.closed_at < at_risk.cutoff_at, false)
),

-- A join and a count rather than "not exists (...) or ...": PostgreSQL runs such a subquery once
-- per member over every transaction, where it runs a join once.
bought_later as (
    select
        open_at_risk.member_id,
        count(later.member_id) as purchases
    from open_at_risk
    left join fct_transactions as later
        on open_at_risk.member_id = later.member_id
        and later.amount > 0
        and later.occurred_at >= open_at_risk.cutoff_at
        and later.occurred_at < open_at_risk.cutoff_at + interval {CHURN_HORIZON_DAYS} day
    group by open_at_risk.member_id
),

labelled as (
    select
        open_at_risk.member_id,
        open_at_risk.cutoff_at,
        bought_later.purchases = 0
        or coalesce(
            members.closed_at >= open_at_risk.cutoff_at
            and members.closed_at < open_at_risk.cutoff_at + interval {CHURN_HORIZON_DAYS} day,
            false
        ) as churned
    from open_at_risk
    inner join bought_later on open_at_risk.member_id = bought_later.member_id
    left join dim_members as members on open_at_risk.member_id = members.member_id
),

{_experience_sql("labelled", "cutoff_at", inclusive=False)}

select
    labelled.member_id,
    cast(cast(labelled.churned as integer) as double) as outcome,
    {_driver_names()}
from labelled
left join member_responses using (member_id)
left join member_calls using (member_id)
order by labelled.member_id
"""

PERFORMANCE_SQL = f"""
select
    {", ".join(f"avg({d.favourable}) as {d.name}" for d in DRIVERS if d.source == "responses")},
    {", ".join(f"count({d.favourable}) as {d.name}_base" for d in DRIVERS if d.source == "responses")}
from fct_survey_responses as r
where r.submitted_date > $as_of - {LOOKBACK_DAYS} and r.submitted_date <= $as_of
"""
CALL_PERFORMANCE_SQL = f"""
select
    {", ".join(f"avg({d.favourable}) as {d.name}" for d in DRIVERS if d.source == "calls")},
    {", ".join(f"count({d.favourable}) as {d.name}_base" for d in DRIVERS if d.source == "calls")}
from fct_calls as c
where c.started_date > $as_of - {LOOKBACK_DAYS} and c.started_date <= $as_of
"""


def churn_cutoff(as_of: date) -> date:
    """The latest cutoff whose 90-day churn window is observed through ``as_of``."""
    return as_of + timedelta(days=1) - timedelta(days=CHURN_HORIZON_DAYS)


def _nearest_correlation(matrix: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Clip negative eigenvalues (pairwise correlations need not be positive definite)."""
    values, vectors = np.linalg.eigh(matrix)
    fixed = vectors @ np.diag(np.clip(values, floor, None)) @ vectors.T
    scale = np.sqrt(np.diag(fixed))
    return fixed / np.outer(scale, scale)


def relative_weights(
    frame: pd.DataFrame, outcome: str, drivers: list[str], min_observed: int = MIN_OBSERVED
) -> pd.DataFrame:
    """Johnson's relative weights of ``drivers`` for ``outcome`` from pairwise correlations.

    Returns one row per driver: ``observed`` (rows with both the driver and the outcome),
    ``correlation`` with the outcome, ``raw_weight`` (sums to the model's R^2 over the drivers
    used), ``share`` (raw weight / R^2) and ``note`` (why a driver was left out).
    """
    observed = {d: int((frame[d].notna() & frame[outcome].notna()).sum()) for d in drivers}
    notes: dict[str, str] = {}
    for d in drivers:
        if observed[d] < min_observed:
            notes[d] = f"observed for {observed[d]} members (< {min_observed})"
        elif frame.loc[frame[outcome].notna(), d].nunique(dropna=True) < 2:
            notes[d] = "the same for every member observed"
    used = [d for d in drivers if d not in notes]
    correlations = frame[[*drivers, outcome]].astype(float).corr(min_periods=min_observed)
    if frame[outcome].nunique(dropna=True) < 2:
        used, notes = [], {d: "the outcome does not vary" for d in drivers}
    for d in list(used):  # two drivers never observed together leave a hole in the matrix
        if correlations.loc[used, d].isna().any():
            used.remove(d)
            notes[d] = "too rarely observed together with the other experiences"
    raw = pd.Series(np.nan, index=drivers)
    if used:
        r_xx = _nearest_correlation(correlations.loc[used, used].to_numpy())
        r_xy = correlations.loc[used, outcome].to_numpy()
        values, vectors = np.linalg.eigh(r_xx)
        lam = vectors @ np.diag(np.sqrt(values)) @ vectors.T
        beta = np.linalg.solve(lam, r_xy)
        raw.loc[used] = (lam**2) @ (beta**2)
    r_squared = float(raw.sum()) if used else np.nan
    return pd.DataFrame(
        {
            "driver": drivers,
            "observed": [observed[d] for d in drivers],
            "correlation": [correlations.loc[d, outcome] for d in drivers],
            "raw_weight": raw.to_numpy(),
            "share": (raw / r_squared).to_numpy() if used else np.nan,
            "r_squared": r_squared,
            "note": [notes.get(d) for d in drivers],
        }
    )


def _left_out(names: list[str], reasons: Mapping[str, str]) -> pd.DataFrame:
    """``relative_weights`` rows for drivers without data: no weight, the reason as the note."""
    return pd.DataFrame(
        {
            "driver": names,
            "observed": 0,
            "correlation": np.nan,
            "raw_weight": np.nan,
            "share": np.nan,
            "r_squared": np.nan,
            "note": [reasons[n] for n in names],
        }
    )


def key_drivers(
    outcomes: dict[str, pd.DataFrame],
    performance: dict[str, tuple[float, int]],
    as_of: date,
    not_derived: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """``mart_key_drivers`` rows: per outcome and driver, importance next to performance.

    ``outcomes`` maps ``nps``/``churn`` to member frames (``outcome`` and one column per driver);
    ``performance`` maps a driver to (share favourable, answers or calls it is based on).
    ``not_derived`` maps an outcome or a driver that has no data this time to the reason: the
    outcome's rows carry the reason and no importance; the driver is left out of every outcome's
    weights with the reason as its note.
    """
    not_derived = not_derived or {}
    names = [d.name for d in DRIVERS]
    labels = {d.name: d.label for d in DRIVERS}
    usable = [n for n in names if n not in not_derived]
    order = [*outcomes, *(o for o in OUTCOMES if o in not_derived and o not in outcomes)]
    frames = []
    for outcome in order:
        if outcome in not_derived:
            members = pd.DataFrame()
            weights = _left_out(names, dict.fromkeys(names, not_derived[outcome]))
        else:
            members = outcomes[outcome]
            used = relative_weights(members, "outcome", usable)
            left_out = _left_out([n for n in names if n not in usable], not_derived)
            weights = pd.concat([used, left_out] if len(left_out) else [used])
            weights = weights.set_index("driver").reindex(names).reset_index()
            weights["r_squared"] = used["r_squared"].iloc[0] if len(used) else np.nan
        frames.append(
            pd.DataFrame(
                {
                    "as_of_date": as_of,
                    "outcome": outcome,
                    "driver": names,
                    "driver_label": [labels[n] for n in names],
                    "stated_performance": [performance[n][0] for n in names],
                    "performance_base": [performance[n][1] for n in names],
                    "derived_importance": weights["share"].to_numpy(),
                    "raw_weight": weights["raw_weight"].to_numpy(),
                    "correlation": weights["correlation"].to_numpy(),
                    "observed_members": weights["observed"].to_numpy(),
                    "outcome_members": len(members),
                    "r_squared": weights["r_squared"].to_numpy(),
                    "method": METHOD,
                    "note": weights["note"].to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def missing_data(store) -> dict[str, str]:
    """``{outcome or driver: reason}`` for what the warehouse has no data for at all: NPS and the
    survey experiences without survey responses, the call experiences without calls."""
    out: dict[str, str] = {}
    if not has_rows(store, "fct_survey_responses"):
        out["nps"] = NO_NPS_ANSWERS
        out |= {d.name: NO_SURVEY_RESPONSES for d in DRIVERS if d.source == "responses"}
    if not has_rows(store, "fct_calls"):
        out |= {d.name: NO_CALLS for d in DRIVERS if d.source == "calls"}
    return out


def read_inputs(
    store, as_of: date
) -> tuple[dict[str, pd.DataFrame], dict[str, tuple[float, int]], dict[str, str]]:
    """The NPS and churn member frames, the performance of each experience, and what cannot be
    derived and why (``missing_data``), from the warehouse."""
    missing = missing_data(store)
    outcomes = {}
    if "nps" not in missing:
        outcomes["nps"] = read(store, NPS_SQL, {"as_of": as_of})
    outcomes["churn"] = read(store, CHURN_SQL, {"cutoff": churn_cutoff(as_of)})
    performance: dict[str, tuple[float, int]] = {}
    for sql in (PERFORMANCE_SQL, CALL_PERFORMANCE_SQL):
        row = read(store, sql, {"as_of": as_of}).iloc[0]
        for d in DRIVERS:
            if d.name in row.index:
                value = row[d.name]
                performance[d.name] = (
                    None if pd.isna(value) else float(value),
                    int(row[f"{d.name}_base"]),
                )
    return outcomes, performance, missing
