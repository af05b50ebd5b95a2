"""Lift: what each program changed, treated members against their randomised control group.

For each program and cycle whose response window has passed (the warehouse holds data through
``cycle_date + response_window_days``), every assigned member gets two outcomes over the window
``(cycle_date, cycle_date + response_window_days]``:

- **retained**: made a purchase (amount > 0) in the window and did not close the account by its
  end;
- **spend**: net spend in the window (returns count negative), zero when nothing was bought.

Lift is treatment minus control, with a two-sided confidence interval (95% by default):

- retention: Newcombe's hybrid score interval for a difference of two proportions (from two
  Wilson intervals; it keeps its coverage for small groups and rates near 0 or 1, where the
  textbook Wald interval does not), with a two-proportion z-test's p-value;
- spend per member: Welch's t interval for a difference of means (no equal-variance assumption),
  with its p-value.

Each row also carries the relative lift (difference / control) and the incremental total
(difference x treated members: extra members retained, extra spend). A cycle whose window has
not passed is reported as ``window_open`` with the day it can be measured, never as a zero.
Randomisation makes the control the counterfactual, so no covariate adjustment is needed for an
unbiased estimate; it would only narrow the intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist

import numpy as np
import pandas as pd

CONFIDENCE = 0.95
METRICS: dict[str, str] = {
    "retention_rate": "share of members who bought in the window and kept their account open",
    "spend_per_member": "net spend per member in the window",
}
STATUSES = ("measured", "window_open", "too_small")


@dataclass(frozen=True)
class Estimate:
    """Treatment vs control for one metric."""

    treatment_value: float
    control_value: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str

    @property
    def relative_lift(self) -> float | None:
        return self.difference / self.control_value if self.control_value else None


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a proportion."""
    if n <= 0:
        raise ValueError("a proportion needs at least one member")
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_in_proportions(
    successes_t: int, n_t: int, successes_c: int, n_c: int, confidence: float = CONFIDENCE
) -> Estimate:
    """p_t - p_c with Newcombe's hybrid score interval (method 10) and a pooled z-test."""
    p_t, p_c = successes_t / n_t, successes_c / n_c
    low_t, high_t = wilson(successes_t, n_t, confidence)
    low_c, high_c = wilson(successes_c, n_c, confidence)
    difference = p_t - p_c
    ci_low = difference - math.sqrt((p_t - low_t) ** 2 + (high_c - p_c) ** 2)
    ci_high = difference + math.sqrt((high_t - p_t) ** 2 + (p_c - low_c) ** 2)
    pooled = (successes_t + successes_c) / (n_t + n_c)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    p_value = 2 * (1 - NormalDist().cdf(abs(difference) / se)) if se > 0 else float(difference == 0)
    return Estimate(p_t, p_c, difference, ci_low, ci_high, p_value, "newcombe_hybrid_score")


def difference_in_means(
    treated: Sequence[float], control: Sequence[float], confidence: float = CONFIDENCE
) -> Estimate:
    """mean_t - mean_c with Welch's t interval and test (``scipy.stats.ttest_ind``)."""
    from scipy.stats import ttest_ind  # not at import: scipy.stats takes about a second

    x = np.asarray(treated, dtype=float)
    y = np.asarray(control, dtype=float)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("a difference of means needs two members in each group")
    means = float(x.mean()), float(y.mean())
    difference = means[0] - means[1]
    if x.var() == 0 and y.var() == 0:
        # Two constant groups: no spread to test against (scipy would answer NaN). The
        # difference is exact.
        return Estimate(
            *means, difference, difference, difference, float(difference == 0), "welch_t"
        )
    result = ttest_ind(x, y, equal_var=False)
    interval = result.confidence_interval(confidence)
    return Estimate(
        *means,
        difference,
        float(interval.low),
        float(interval.high),
        float(result.pvalue),
        "welch_t",
    )


def _row(program: str, cycle: date, window: int, through: date, metric: str, **values) -> dict:
    return {
        "program": program,
        "cycle_date": cycle,
        "metric": metric,
        "response_window_days": window,
        "window_ends_on": cycle + timedelta(days=window),
        "measured_through": through,
        "confidence_level": CONFIDENCE,
        **values,
    }


def measure_cycle(
    outcomes: pd.DataFrame, confidence: float = CONFIDENCE
) -> dict[str, tuple[str, int, int, Estimate | None]]:
    """``{metric: (status, treated, control, estimate)}`` for one program's cycle.

    ``outcomes`` has one row per assigned member: ``assignment_group``, ``retained``, ``spend``.
    """
    treated = outcomes[outcomes["assignment_group"] == "treatment"]
    control = outcomes[outcomes["assignment_group"] == "control"]
    n_t, n_c = len(treated), len(control)
    if n_t < 2 or n_c < 2:
        return {metric: ("too_small", n_t, n_c, None) for metric in METRICS}
    retention = difference_in_proportions(
        int(treated["retained"].sum()), n_t, int(control["retained"].sum()), n_c, confidence
    )
    spend = difference_in_means(treated["spend"], control["spend"], confidence)
    return {
        "retention_rate": ("measured", n_t, n_c, retention),
        "spend_per_member": ("measured", n_t, n_c, spend),
    }


def lift_table(
    cycles: pd.DataFrame, outcomes: pd.DataFrame, through: date, confidence: float = CONFIDENCE
) -> pd.DataFrame:
    """``mart_program_lift`` rows: every program and cycle in ``cycles``, each metric.

    ``cycles`` has ``program, cycle_date, response_window_days, treatment, control``; ``outcomes``
    has the member outcomes of the cycles whose window has passed (``program, cycle_date,
    assignment_group, retained, spend``).
    """
    rows = []
    grouped = {
        (str(program), pd.Timestamp(cycle).date()): frame
        for (program, cycle), frame in outcomes.groupby(["program", "cycle_date"])
    }
    for cycle in cycles.sort_values(["cycle_date", "program"]).itertuples(index=False):
        on = pd.Timestamp(cycle.cycle_date).date()
        window = int(cycle.response_window_days)
        if on + timedelta(days=window) > through:
            for metric in METRICS:
                rows.append(
                    _row(
                        cycle.program,
                        on,
                        window,
                        through,
                        metric,
                        status="window_open",
                        treatment_members=int(cycle.treatment),
                        control_members=int(cycle.control),
                    )
                )
            continue
        members = grouped.get((cycle.program, on), outcomes.iloc[0:0])
        for metric, (status, n_t, n_c, estimate) in measure_cycle(members, confidence).items():
            values = {"status": status, "treatment_members": n_t, "control_members": n_c}
            if estimate is not None:
                values |= {
                    "treatment_value": estimate.treatment_value,
                    "control_value": estimate.control_value,
                    "difference": estimate.difference,
                    "ci_low": estimate.ci_low,
                    "ci_high": estimate.ci_high,
                    "relative_lift": estimate.relative_lift,
                    "p_value": estimate.p_value,
                    "incremental_total": estimate.difference * n_t,
                    "method": estimate.method,
                }
            rows.append(_row(cycle.program, on, window, through, metric, **values))
    from programs.tables import LIFT_COLUMNS

    frame = pd.DataFrame(rows, columns=list(LIFT_COLUMNS))
    frame["confidence_level"] = confidence
    return frame


OUTCOMES_SQL = """
with

due as (
    select
        program,
        cycle_date,
        cast(cycle_date + response_window_days as date) as window_ends_on
    from program_cycles
    where cycle_date + response_window_days <= $through
),

assigned as (
    select
        assignments.program,
        assignments.cycle_date,
        assignments.member_id,
        assignments.assignment_group,
        due.window_ends_on
    from program_assignments as assignments
    inner join due
        on assignments.program = due.program and assignments.cycle_date = due.cycle_date
),

bought as (
    select
        assigned.program,
        assigned.cycle_date,
        assigned.member_id,
        count(transactions.transaction_id) filter (where transactions.amount > 0) as purchases,
        coalesce(sum(transactions.amount), 0) as spend
    from assigned
    left join fct_transactions as transactions
        on assigned.member_id = transactions.member_id
        and transactions.occurred_at >= assigned.cycle_date + 1
        and transactions.occurred_at < assigned.window_ends_on + 1
    group by assigned.program, assigned.cycle_date, assigned.member_id
)

select
    assigned.program,
    assigned.cycle_date,
    assigned.member_id,
    assigned.assignment_group,
    bought.purchases > 0
    and not coalesce(members.closed_at < assigned.window_ends_on + 1, false) as retained,
    cast(bought.spend as double) as spend
from assigned
inner join bought
    on assigned.program = bought.program
    and assigned.cycle_date = bought.cycle_date
    and assigned.member_id = bought.member_id
left join dim_members as members on assigned.member_id = members.member_id
order by assigned.program, assigned.cycle_date, assigned.member_id
"""


POWER = 0.8


def minimum_detectable_effect(
    sd: float, n_t: int, n_c: int, confidence: float = CONFIDENCE, power: float = POWER
) -> float | None:
    """The smallest true difference a two-sided test at ``1 - confidence`` finds with
    probability ``power``, for groups of ``n_t`` and ``n_c`` members whose outcome has standard
    deviation ``sd``: ``(z_(1-alpha/2) + z_power) * sd * sqrt(1/n_t + 1/n_c)``. None when a
    group is empty (nothing to compare)."""
    if n_t < 1 or n_c < 1 or sd is None or math.isnan(sd):
        return None
    z = _z(confidence) + NormalDist().inv_cdf(power)
    return z * sd * math.sqrt(1 / n_t + 1 / n_c)


BASELINE_SQL = """
with

cycle as (
    select program, cycle_date, response_window_days, treatment, control
    from program_cycles
    where cycle_date = $cycle_date and skipped_reason is null
),

assigned as (
    select
        assignments.program,
        assignments.member_id,
        cycle.response_window_days
    from program_assignments as assignments
    inner join cycle
        on assignments.program = cycle.program and assignments.cycle_date = cycle.cycle_date
),

before as (
    select
        assigned.program,
        assigned.member_id,
        count(transactions.transaction_id) filter (where transactions.amount > 0) as purchases,
        coalesce(sum(transactions.amount), 0) as spend
    from assigned
    left join fct_transactions as transactions
        on assigned.member_id = transactions.member_id
        and transactions.occurred_at >= $cycle_date + 1 - assigned.response_window_days
        and transactions.occurred_at < $cycle_date + 1
    group by assigned.program, assigned.member_id
)

select
    cycle.program,
    cycle.response_window_days,
    cycle.treatment,
    cycle.control,
    count(before.member_id) as members,
    avg(case when before.purchases > 0 then 1.0 else 0.0 end) as retention_rate,
    stddev_samp(cast(before.spend as double)) as spend_sd,
    avg(cast(before.spend as double)) as spend_mean
from cycle
left join before on cycle.program = before.program
group by cycle.program, cycle.response_window_days, cycle.treatment, cycle.control
order by cycle.program
"""


def detectable_effects(store, on: date) -> pd.DataFrame:
    """Each program's minimum detectable effect in cycle ``on`` (power 0.8, 95% two-sided), on
    retention (percentage points) and spend per member, before any outcome is in.

    The outcome's spread comes from history: the same members over the window of the same
    length just before the cycle (share who bought, and the spread of their net spend), the
    best guess of how the outcome varies without knowing the program's effect.
    """
    columns = [
        "program",
        "treatment",
        "control",
        "baseline_retention",
        "retention_mde",
        "spend_sd",
        "spend_mde",
    ]
    if not (store.exists("program_cycles") and store.exists("program_assignments")):
        return pd.DataFrame(columns=columns)
    rows = []
    for r in store.read(BASELINE_SQL, {"cycle_date": on}).itertuples(index=False):
        n_t, n_c = int(r.treatment), int(r.control)
        p = None if pd.isna(r.retention_rate) else float(r.retention_rate)
        sd = None if pd.isna(r.spend_sd) else float(r.spend_sd)
        rows.append(
            {
                "program": r.program,
                "treatment": n_t,
                "control": n_c,
                "baseline_retention": p,
                "retention_mde": (
                    minimum_detectable_effect(math.sqrt(p * (1 - p)), n_t, n_c)
                    if p is not None
                    else None
                ),
                "spend_sd": sd,
                "spend_mde": minimum_detectable_effect(sd, n_t, n_c) if sd is not None else None,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def measured_through(store) -> date:
    """The last day the warehouse holds activity for: outcomes are known up to it."""
    latest = store.read("select max(activity_date) as through from fct_member_daily").iloc[0, 0]
    return None if pd.isna(latest) else pd.Timestamp(latest).date()


def read_outcomes(store, through: date) -> pd.DataFrame:
    """Member outcomes for every program cycle whose response window ended by ``through``."""
    return store.read(OUTCOMES_SQL, {"through": through})


def read_cycles(store) -> pd.DataFrame:
    """The program cycles to measure: every one that ran (a skipped program, e.g. a segment
    program without a segment model, has no members and so no lift)."""
    cycles = store.read("select * from program_cycles order by cycle_date, program")
    if "skipped_reason" in cycles.columns:  # a table written before programs could be skipped
        cycles = cycles[cycles["skipped_reason"].isna()]
    columns = ["program", "cycle_date", "response_window_days", "treatment", "control"]
    return cycles[columns].reset_index(drop=True)
