"""The tables programs own, their columns, and how a cycle writes them through the store.

Each write is one transaction of the ``programs`` writer (``warehouse/store.py``), on DuckDB or
PostgreSQL alike: it replaces its own rows and commits whole, or not at all. On DuckDB the analysts
read ``warehouse/published/cx.duckdb``, refreshed by the cycle's ``publish`` step after the writes.

- ``program_assignments``: one row per member, program and cycle date, with the group
  (``treatment`` or ``control``); a rerun of a cycle replaces that cycle's rows.
- ``program_cycles``: one row per program and cycle date: the program's rules in that cycle and
  its funnel (matched, left out and why, eligible, treatment, control), and why it was skipped
  when it was (``skipped_reason``, e.g. no segment model; null when it ran), and the global
  holdout (its share, its open members that cycle, the matched members it kept out).
- ``mart_program_lift``: one row per program, cycle and metric, re-measured every run as the
  response windows fill.
- ``mart_key_drivers``: one row per as-of date, outcome and experience; a rerun replaces its date.

Their keys, audience and owner are in the table registry (``warehouse/tables.yml``).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

OWNER = "programs"

ASSIGNMENT_COLUMNS: dict[str, str] = {
    "cycle_date": "date",
    "program": "varchar",
    "member_id": "varchar",
    "assignment_group": "varchar",
}

# What each program was in each cycle: its rules then, and where its matched members went.
CYCLE_COLUMNS: dict[str, str] = {
    "cycle_date": "date",
    "program": "varchar",
    "title": "varchar",
    "priority": "integer",
    "eligibility": "varchar",
    "control_share": "double",
    "response_window_days": "integer",
    "opt_in_required": "boolean",
    "exclude_contacted_within_days": "integer",
    "matched": "integer",
    "not_opted_in": "integer",
    "contacted_recently": "integer",
    "held_in_control": "integer",
    "taken_by_higher_priority": "integer",
    "eligible": "integer",
    "treatment": "integer",
    "control": "integer",
    "model_version": "varchar",
    "config_sha256": "varchar",
    # Last, so a table written before it existed gains it with ALTER TABLE ... ADD COLUMN.
    "skipped_reason": "varchar",
    # The persistent global holdout (programs.yml global_holdout), added after the columns above.
    "in_global_holdout": "integer",
    "global_holdout_share": "double",
    "global_holdout_members": "integer",
    "reasons": "varchar",
    "contact_within_days": "integer",
}

LIFT_COLUMNS: dict[str, str] = {
    "program": "varchar",
    "cycle_date": "date",
    "metric": "varchar",
    "status": "varchar",
    "response_window_days": "integer",
    "window_ends_on": "date",
    "measured_through": "date",
    "treatment_members": "integer",
    "control_members": "integer",
    "treatment_value": "double",
    "control_value": "double",
    "difference": "double",
    "ci_low": "double",
    "ci_high": "double",
    "confidence_level": "double",
    "relative_lift": "double",
    "p_value": "double",
    "incremental_total": "double",
    "method": "varchar",
}

DRIVER_COLUMNS: dict[str, str] = {
    "as_of_date": "date",
    "outcome": "varchar",
    "driver": "varchar",
    "driver_label": "varchar",
    "stated_performance": "double",
    "performance_base": "integer",
    "derived_importance": "double",
    "raw_weight": "double",
    "correlation": "double",
    "observed_members": "integer",
    "outcome_members": "integer",
    "r_squared": "double",
    "method": "varchar",
    "note": "varchar",
}


# Every table a program cycle writes, and so all a republish after it needs to replace.
PUBLISHED_TABLES = (
    "program_assignments",
    "program_cycles",
    "mart_program_lift",
    "mart_key_drivers",
)


def _frame(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    return frame[list(columns)]


def write_assignments(store, on: date, assignments: pd.DataFrame, cycles: pd.DataFrame) -> dict:
    """Replace cycle ``on`` in ``program_assignments`` and ``program_cycles``."""
    with store.writer(OWNER) as writer:
        writer.ensure("program_assignments", ASSIGNMENT_COLUMNS)
        # A table written before skipped_reason existed gains it here (null in its older rows).
        writer.ensure("program_cycles", CYCLE_COLUMNS)
        writer.replace(
            "program_assignments",
            _frame(assignments, ASSIGNMENT_COLUMNS),
            {"cycle_date": on},
        )
        writer.replace("program_cycles", _frame(cycles, CYCLE_COLUMNS), {"cycle_date": on})
    return {"assignments": len(assignments), "programs": len(cycles)}


def write_measurements(store, on: date, lift: pd.DataFrame, drivers: pd.DataFrame) -> dict:
    """Replace ``mart_program_lift`` whole and date ``on`` of ``mart_key_drivers``."""
    with store.writer(OWNER) as writer:
        writer.ensure("mart_program_lift", LIFT_COLUMNS)
        writer.replace("mart_program_lift", _frame(lift, LIFT_COLUMNS), {})
        writer.ensure("mart_key_drivers", DRIVER_COLUMNS)
        writer.replace("mart_key_drivers", _frame(drivers, DRIVER_COLUMNS), {"as_of_date": on})
    return {"lift_rows": len(lift), "driver_rows": len(drivers)}
