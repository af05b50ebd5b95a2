"""What programs write to the DuckDB warehouse, each in one short write transaction.

DuckDB lets one process write a file at a time, so every write here opens the live file, replaces
its own rows in a transaction and closes it at once (as ``ml/score.py`` writes ``ml_scores``);
readers use ``warehouse/published/cx.duckdb``, refreshed by ``publish`` after the writes.

- ``program_assignments``: one row per member, program and cycle date, with the group
  (``treatment`` or ``control``); a rerun of a cycle replaces that cycle's rows.
- ``program_cycles``: one row per program and cycle date: the program's rules in that cycle and
  its funnel (matched, left out and why, eligible, treatment, control), and why it was skipped
  when it was (``skipped_reason``, e.g. no segment model; null when it ran).
- ``mart_program_lift``: one row per program, cycle and metric, re-measured every run as the
  response windows fill.
- ``mart_key_drivers``: one row per as-of date, outcome and experience; a rerun replaces its date.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

ASSIGNMENTS_DDL = """
create table if not exists program_assignments (
    cycle_date date not null,
    program varchar not null,
    member_id varchar not null,
    assignment_group varchar not null,
    primary key (cycle_date, program, member_id)
)
"""
ASSIGNMENT_COLUMNS = ("cycle_date", "program", "member_id", "assignment_group")

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


def _ddl(table: str, columns: dict[str, str]) -> str:
    return (
        f"create table if not exists {table} ({', '.join(f'{c} {t}' for c, t in columns.items())})"
    )


def _add_missing_columns(con, table: str, columns: dict[str, str]) -> None:
    """Columns added to ``columns`` since ``table`` was created (null in its earlier rows)."""
    present = {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns where table_schema = 'main' "
            "and table_name = ?",
            [table],
        ).fetchall()
    }
    for column, kind in columns.items():
        if column not in present:
            con.execute(f"alter table {table} add column {column} {kind}")


def _insert(con, table: str, frame: pd.DataFrame, columns) -> None:
    con.register("incoming_rows", frame[list(columns)])
    names = ", ".join(columns)
    con.execute(f"insert into {table} ({names}) select {names} from incoming_rows")
    con.unregister("incoming_rows")


def write_assignments(
    duckdb_path: Path, on: date, assignments: pd.DataFrame, cycles: pd.DataFrame
) -> dict[str, int]:
    """Replace cycle ``on`` in ``program_assignments`` and ``program_cycles``."""
    import duckdb

    with duckdb.connect(str(duckdb_path)) as con:
        con.execute("begin transaction")
        con.execute(ASSIGNMENTS_DDL)
        con.execute(_ddl("program_cycles", CYCLE_COLUMNS))
        _add_missing_columns(con, "program_cycles", CYCLE_COLUMNS)
        for table in ("program_assignments", "program_cycles"):
            con.execute(f"delete from {table} where cycle_date = ?", [on])
        if len(assignments):
            _insert(con, "program_assignments", assignments, ASSIGNMENT_COLUMNS)
        _insert(con, "program_cycles", cycles, CYCLE_COLUMNS)
        con.execute("commit")
    return {"assignments": len(assignments), "programs": len(cycles)}


def write_measurements(
    duckdb_path: Path, on: date, lift: pd.DataFrame, drivers: pd.DataFrame
) -> dict[str, int]:
    """Replace ``mart_program_lift`` whole and date ``on`` of ``mart_key_drivers``."""
    import duckdb

    with duckdb.connect(str(duckdb_path)) as con:
        con.execute("begin transaction")
        con.execute(_ddl("mart_program_lift", LIFT_COLUMNS))
        con.execute("delete from mart_program_lift")
        if len(lift):
            _insert(con, "mart_program_lift", lift, LIFT_COLUMNS)
        con.execute(_ddl("mart_key_drivers", DRIVER_COLUMNS))
        con.execute("delete from mart_key_drivers where as_of_date = ?", [on])
        if len(drivers):
            _insert(con, "mart_key_drivers", drivers, DRIVER_COLUMNS)
        con.execute("commit")
    return {"lift_rows": len(lift), "driver_rows": len(drivers)}
