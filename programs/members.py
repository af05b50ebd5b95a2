"""The member frame that eligibility is written over: customer_360, the cycle's scores, and a few
columns derived for programs (the last 14 days' negative moments, a drop in segment).

One row per open, scored member on the cycle date (``customer_360.as_of_date``, which is also
``ml_scores.score_date``). The columns a program may use are declared here, typed, so a config can
be checked without a warehouse: customer_360's come from its enforced dbt contract, the scores'
from ``ml_scores``, the derived ones below.

A deployment may bring only a loyalty database. Without a survey platform there are no survey
responses, so no engagement segments to learn and no segment model: scoring then writes
``predicted_segment``, ``segment_probability`` and ``segment_model_version`` as null for every
member. ``segment_model_absence`` says so in plain words, the programs that need a segment are
skipped (``SEGMENT_COLUMNS``), and ``segment_dropped`` is false for everyone. A missing survey or
call table reads as an empty one (``stand_ins``).
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache

import pandas as pd
import yaml

from config.settings import REPO_ROOT
from ml.labels import SEGMENTS

MARTS_CONTRACT = REPO_ROOT / "dbt_project" / "models" / "marts" / "_marts__models.yml"

# What ml/score.py writes to ml_scores (ids and model versions excluded: not for eligibility).
SCORE_COLUMNS: dict[str, tuple[str, str]] = {
    "churn_probability": ("double", "calibrated probability of churning in the next 90 days"),
    "is_lapsed": ("boolean", "no purchase in 180 days (already lapsed: treat as win-back)"),
    "risk_band": ("text", "high (>= 0.5), medium (>= 0.25) or low churn risk"),
    "predicted_segment": (
        "text",
        "Engaged, Swing or Disengaged (predicted); null without a segment model, which skips "
        "the programs that use it",
    ),
    "segment_probability": (
        "double",
        "the model's probability of the predicted segment (null without a segment model)",
    ),
    "reason_1": ("text", "the strongest reason for the risk score, in plain words"),
    "reason_2": ("text", "the second reason"),
    "reason_3": ("text", "the third reason"),
}

NEGATIVE_MOMENT_DAYS = 14
DERIVED_COLUMNS: dict[str, tuple[str, str]] = {
    "unresolved_calls_14d": ("bigint", "call-center contacts left unresolved, last 14 days"),
    "escalated_calls_14d": ("bigint", "escalated call-center contacts, last 14 days"),
    "detractor_responses_14d": ("bigint", "survey answers with NPS 0-6, last 14 days"),
    "negative_comments_14d": ("bigint", "survey comments with negative sentiment, last 14 days"),
    "previous_segment": (
        "text",
        "predicted segment at the previous score date (null if none or without a segment model)",
    ),
    "segment_dropped": (
        "boolean",
        "predicted segment fell since the previous score date (Engaged > Swing > Disengaged); "
        "false without a segment model",
    ),
}

# Columns whose values are a known set: a literal outside it in an eligibility is a typo.
KNOWN_VALUES: dict[str, tuple[str, ...]] = {
    "risk_band": ("high", "medium", "low"),
    "predicted_segment": SEGMENTS,
    "previous_segment": SEGMENTS,
    "tier": ("bronze", "silver", "gold", "platinum"),
}


# The score columns only a segment model fills (and the derived one read from them): a program
# whose condition uses one of them is skipped in a cycle whose scores have no segment model.
SEGMENT_COLUMNS = ("predicted_segment", "segment_probability", "previous_segment")

# The marts of the optional sources (CX_SOURCES): a deployment without them may lack the tables.
OPTIONAL_TABLES = ("fct_survey_responses", "fct_calls")

NO_SURVEYS_FOR_SEGMENTS = "the deployment has no survey responses to learn engagement segments from"
NO_SEGMENTS_SCORED = (
    "the scores of this date carry no engagement segment (the segment model learns from "
    "relationship-survey answers; train it and score again to bring segments back)"
)


@cache
def contract_columns(model_name: str) -> dict[str, tuple[str, str]]:
    """``{column: (type, description)}`` from a mart's enforced dbt contract."""
    models = yaml.safe_load(MARTS_CONTRACT.read_text())["models"]
    model = next(m for m in models if m["name"] == model_name)
    return {c["name"]: (c["data_type"], c.get("description") or "") for c in model["columns"]}


def customer_360_columns() -> dict[str, tuple[str, str]]:
    """``{column: (type, description)}`` from customer_360's enforced dbt contract."""
    return contract_columns("customer_360")


def member_columns() -> dict[str, tuple[str, str]]:
    """Every column eligibility may use: ``{column: (DuckDB type, description)}``."""
    return {**customer_360_columns(), **SCORE_COLUMNS, **DERIVED_COLUMNS}


class WarehouseNotReady(RuntimeError):
    """The warehouse lacks what a programs cycle needs (scores, or scores for today's as-of)."""


def stand_ins(store, sql: str, tables=OPTIONAL_TABLES) -> str:
    """``sql`` with an empty stand-in, typed by the dbt contract, for each of ``tables`` it names
    that the warehouse lacks.

    A loyalty-only deployment may have no survey (or call) table at all. Read as empty, they leave
    the 14-day counts at zero and the key drivers without those experiences, which is what they
    are. Each stand-in is a leading CTE of the same name, so the query runs unchanged, on either
    engine, and nothing is created in the warehouse.
    """
    missing = [name for name in tables if re.search(rf"\b{name}\b", sql) and not store.exists(name)]
    if not missing:
        return sql
    empty = ", ".join(
        f"{name} as (select "
        + ", ".join(
            f"cast(null as {kind}) as {column}"
            for column, (kind, _) in contract_columns(name).items()
        )
        + " where false)"
        for name in missing
    )
    text = sql.lstrip()
    if re.match(r"with\b", text, flags=re.IGNORECASE):
        return f"with {empty}, {text[4:].lstrip()}"
    return f"with {empty} {text}"


def read(store, sql: str, params=()) -> pd.DataFrame:
    """``store.read``, with an empty stand-in for each optional table the warehouse lacks."""
    return store.read(stand_ins(store, sql), params)


def has_rows(store, table: str) -> bool:
    """Whether ``table`` exists and holds any row (one row read, not a count)."""
    if not store.exists(table):
        return False
    return bool(store.read(f"select exists (select 1 from {table}) as found").iloc[0, 0])


def segment_model_absence(store, frame: pd.DataFrame) -> str | None:
    """Why the cycle's scores have no segments (``"no segment model: ..."``), or None when they do.

    Scoring without a segment model leaves ``segment_model_version`` null for every member.
    """
    if frame.empty or frame["segment_model_version"].notna().any():
        return None
    why = NO_SEGMENTS_SCORED if has_rows(store, "fct_survey_responses") else NO_SURVEYS_FOR_SEGMENTS
    return f"no segment model: {why}"


def _day(value) -> date | None:
    """A date read through the store (a ``datetime64`` value, or null) as a ``date``."""
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def cycle_date(store) -> date:
    """The cycle date: customer_360's as-of date, which the latest scores must match."""
    if not store.exists("ml_scores"):
        raise WarehouseNotReady("the warehouse has no ml_scores yet: run `python -m ml score`")
    latest = store.read(
        "select (select max(as_of_date) from customer_360) as as_of, "
        "(select max(score_date) from ml_scores) as scored"
    ).iloc[0]
    as_of, scored = _day(latest["as_of"]), _day(latest["scored"])
    if as_of is None or scored is None:
        raise WarehouseNotReady("customer_360 or ml_scores is empty")
    if scored != as_of:
        raise WarehouseNotReady(
            f"the latest scores are for {scored} but customer_360 is as of {as_of}: "
            "run `python -m ml score` so programs target today's members"
        )
    return as_of


# The newest model versions scored on a date (a rerun with a new champion adds a version).
_LATEST_SCORES = """
    select *
    from ml_scores
    where score_date = {date_expression}
    qualify row_number() over (
        partition by member_id
        order by try_cast(churn_model_version as integer) desc nulls last,
            try_cast(segment_model_version as integer) desc nulls last,
            model_version desc
    ) = 1
"""

MEMBERS_SQL = f"""
with

scores as ({_LATEST_SCORES.format(date_expression="$cycle_date")}),

previous_scores as ({
    _LATEST_SCORES.format(
        date_expression="(select max(score_date) from ml_scores where score_date < $cycle_date)"
    )
}),

calls_recent as (
    select
        member_id,
        count(*) filter (where is_unresolved) as unresolved_calls,
        count(*) filter (where is_escalated) as escalated_calls
    from fct_calls
    where member_id is not null
        and started_date between $cycle_date - {NEGATIVE_MOMENT_DAYS - 1} and $cycle_date
    group by member_id
),

responses_recent as (
    select
        member_id,
        count(*) filter (where is_detractor) as detractor_responses,
        count(*) filter (where comment_sentiment_label = 'negative') as negative_comments
    from fct_survey_responses
    where member_id is not null
        and submitted_date between $cycle_date - {NEGATIVE_MOMENT_DAYS - 1} and $cycle_date
    group by member_id
)

select
    customer_360.*,
    scores.model_version,
    scores.churn_model_version,
    scores.segment_model_version,
    {", ".join(f"scores.{name}" for name in SCORE_COLUMNS)},
    coalesce(calls_recent.unresolved_calls, 0) as unresolved_calls_14d,
    coalesce(calls_recent.escalated_calls, 0) as escalated_calls_14d,
    coalesce(responses_recent.detractor_responses, 0) as detractor_responses_14d,
    coalesce(responses_recent.negative_comments, 0) as negative_comments_14d,
    previous_scores.predicted_segment as previous_segment
from customer_360
inner join scores on customer_360.member_id = scores.member_id
left join previous_scores on customer_360.member_id = previous_scores.member_id
left join calls_recent on customer_360.member_id = calls_recent.member_id
left join responses_recent on customer_360.member_id = responses_recent.member_id
where customer_360.as_of_date = $cycle_date
    and not coalesce(customer_360.is_closed, false)
order by customer_360.member_id
"""


def segment_dropped(previous: pd.Series, current: pd.Series) -> pd.Series:
    """True where the segment fell (Engaged > Swing > Disengaged); False without a previous or a
    current segment (so False for everyone when there is no segment model)."""
    rank = {segment: position for position, segment in enumerate(SEGMENTS)}
    before = previous.map(rank)
    after = current.map(rank)
    return (before.notna() & after.notna() & (after < before)).astype(bool)


def read_members(store, on: date) -> pd.DataFrame:
    """The member frame for cycle date ``on`` (one row per open, scored member, by member_id)."""
    frame = read(store, MEMBERS_SQL, {"cycle_date": on})
    frame["segment_dropped"] = segment_dropped(
        frame["previous_segment"], frame["predicted_segment"]
    )
    missing = [c for c in member_columns() if c not in frame.columns]
    if missing:
        raise WarehouseNotReady(f"the member frame lacks declared columns {missing}")
    return frame


def read_history(store, before: date) -> pd.DataFrame:
    """Assignments of cycles before ``before``, with each program's response window then."""
    columns = ["member_id", "program", "cycle_date", "assignment_group", "response_window_days"]
    if not (store.exists("program_assignments") and store.exists("program_cycles")):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return store.read(
        "select assignments.member_id, assignments.program, assignments.cycle_date, "
        "assignments.assignment_group, cycles.response_window_days "
        "from program_assignments as assignments "
        "inner join program_cycles as cycles "
        "on assignments.program = cycles.program and assignments.cycle_date = cycles.cycle_date "
        "where assignments.cycle_date < $1 "
        "order by assignments.cycle_date, assignments.program, assignments.member_id",
        [before],
    )
