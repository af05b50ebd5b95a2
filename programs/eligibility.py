"""Who each program targets this cycle: eligibility expressions, contact rules and priority.

An eligibility is a SQL condition (DuckDB dialect) over the member frame's columns, for example
``risk_band = 'high' and predicted_segment = 'Disengaged'``. It is evaluated in an in-memory
DuckDB that holds only the member frame and cannot touch files, so a config can select members
and nothing else. A comparison with a missing value is not true (SQL's rule), so a member with no
survey answer never matches ``latest_nps_score <= 6``.

Then, in priority order (1 first), each program keeps the members its condition selects that
- have an open account;
- opted in to marketing, when the program's contact rules require it (an email program);
- were not contacted (treated by any program) in the program's ``exclude_contacted_within_days``;
- are not in a control group whose response window is still open, so no program contaminates an
  earlier program's comparison;
- are not already taken by a program of higher priority (one program per member per cycle).

A program whose condition uses a column the cycle cannot fill (a segment, when there is no
segment model) is skipped with the reason, rather than run as if nobody matched (``skipped``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd


class ExpressionError(ValueError):
    """An eligibility expression that cannot be used; the message says why in plain words."""


def _connection():
    import duckdb

    return duckdb.connect(config={"enable_external_access": False})


def _empty_table(con, columns: Mapping[str, tuple[str, str]]) -> None:
    body = ", ".join(f'"{name}" {kind}' for name, (kind, _) in columns.items())
    con.execute(f"create or replace table members ({body})")


_UNKNOWN_COLUMN = re.compile(r'Referenced column "([^"]+)" not found')
_LITERAL_COMPARISON = r"\b{column}\s*(?:=|!=|<>)\s*'([^']*)'"
_LITERAL_LIST = r"\b{column}\s+(?:not\s+)?in\s*\(([^)]*)\)"


def _unknown_literals(expression: str, known: Mapping[str, Sequence[str]]) -> list[str]:
    problems = []
    for column, values in known.items():
        found = re.findall(_LITERAL_COMPARISON.format(column=column), expression, re.IGNORECASE)
        for items in re.findall(_LITERAL_LIST.format(column=column), expression, re.IGNORECASE):
            found += re.findall(r"'([^']*)'", items)
        problems += [
            f"{column} is never {value!r} (its values: {', '.join(values)})"
            for value in found
            if value not in values
        ]
    return problems


def check_expression(
    expression: str,
    columns: Mapping[str, tuple[str, str]],
    known_values: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Raise ``ExpressionError`` unless ``expression`` is a true/false condition over ``columns``.

    Unknown columns are named with the closest known ones; a literal that a column with a known set
    of values never takes (``risk_band = 'hgh'``) is an error, since it would silently match nobody.
    """
    if not isinstance(expression, str):
        raise ExpressionError(f"must be a condition such as risk_band = 'high', not {expression!r}")
    if not expression.strip():
        raise ExpressionError("is empty; write a condition such as risk_band = 'high'")
    if ";" in expression:
        raise ExpressionError("must be one condition, without ';'")
    import duckdb

    with _connection() as con:
        _empty_table(con, columns)
        try:
            kind = con.execute(
                f"describe select ({expression}) as selected from members"
            ).fetchone()[1]
        except duckdb.Error as error:
            text = str(error)
            unknown = _UNKNOWN_COLUMN.search(text)
            if unknown:
                close = difflib.get_close_matches(unknown.group(1), list(columns), n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise ExpressionError(f"unknown column {unknown.group(1)!r}{hint}") from None
            first_line = text.splitlines()[0] if text else type(error).__name__
            raise ExpressionError(f"is not a valid condition: {first_line}") from None
    if kind.upper() != "BOOLEAN":
        raise ExpressionError(f"must be true or false for each member, but gives {kind.lower()}")
    problems = _unknown_literals(expression, known_values or {})
    if problems:
        raise ExpressionError("; ".join(problems))


def _column_references(node) -> set[str]:
    if isinstance(node, dict):
        found = set()
        if node.get("class") == "COLUMN_REF":
            found.add(node["column_names"][-1].lower())
        for value in node.values():
            found |= _column_references(value)
        return found
    if isinstance(node, list):
        return set().union(*(_column_references(item) for item in node))
    return set()


def referenced_columns(expression: str) -> set[str]:
    """The member columns ``expression`` reads (lower case), from DuckDB's own parse of it, so a
    column name inside a text literal does not count."""
    import json

    with _connection() as con:
        parsed = json.loads(
            con.execute(
                "select json_serialize_sql(?)", [f"select ({expression}) as selected from members"]
            ).fetchone()[0]
        )
    if parsed.get("error"):
        raise ExpressionError(f"is not a valid condition: {parsed.get('error_message', '')}")
    return _column_references([s["node"]["select_list"] for s in parsed["statements"]])


def evaluate(expression: str, members: pd.DataFrame) -> pd.Series:
    """A boolean Series over ``members``' index: where the expression is true (null is false)."""
    with _connection() as con:
        con.register("members", members.reset_index(drop=True))
        selected = con.execute(
            f"select coalesce(({expression}), false) as selected from members"
        ).fetchnumpy()["selected"]
    return pd.Series(selected.astype(bool), index=members.index)


@dataclass(frozen=True)
class Rules:
    """What selection needs to know about one program (a view of ``config.Program``)."""

    name: str
    priority: int
    eligibility: str
    opt_in_required: bool
    exclude_contacted_within_days: int


FUNNEL_STEPS = (
    "matched",
    "not_opted_in",
    "contacted_recently",
    "held_in_control",
    "taken_by_higher_priority",
    "eligible",
)


def skipped(programs: Sequence[Rules], unavailable: Mapping[str, str]) -> dict[str, str]:
    """``{program: reason}`` for the programs whose condition uses a column in ``unavailable``
    (``{column: why it is empty this cycle}``), e.g. ``predicted_segment`` without a segment
    model. Such a program would select nobody, or select on its other conditions alone: either
    would be a different program from the one configured."""
    out = {}
    for program in programs:
        used = sorted(referenced_columns(program.eligibility) & set(unavailable))
        if used:
            reasons = list(dict.fromkeys(unavailable[c] for c in used))
            out[program.name] = f"{'; '.join(reasons)} (its condition uses {', '.join(used)})"
    return out


def recently_contacted(history: pd.DataFrame, on: date, days: int) -> set[str]:
    """Members treated by any program in a cycle within ``days`` before ``on``."""
    if days <= 0 or history.empty:
        return set()
    dates = pd.to_datetime(history["cycle_date"]).dt.date
    since = on - timedelta(days=days)
    treated = history[(history["assignment_group"] == "treatment") & (dates > since) & (dates < on)]
    return set(treated["member_id"].to_numpy(dtype=object))


def held_controls(history: pd.DataFrame, on: date) -> set[str]:
    """Members in a control group whose response window (cycle, cycle + window] covers ``on``."""
    if history.empty:
        return set()
    dates = pd.to_datetime(history["cycle_date"])
    ends = dates + pd.to_timedelta(history["response_window_days"].astype(int), unit="D")
    open_ = (history["assignment_group"] == "control") & (dates.dt.date < on) & (ends.dt.date >= on)
    return set(history.loc[open_, "member_id"].to_numpy(dtype=object))


def select(
    members: pd.DataFrame,
    programs: Sequence[Rules],
    history: pd.DataFrame,
    on: date,
    skip: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, int]]]:
    """``(member_id, program, priority)`` for the members each program keeps, and the funnel.

    The funnel counts, per program, the members its condition matched and where they went (not
    opted in, contacted recently, held in an open control group, taken by a program of higher
    priority), ending with the eligible count that the control draw splits. Programs named in
    ``skip`` (see ``skipped``) are not evaluated: no members, a funnel of zeros, and they take
    nobody from the programs after them.
    """
    skip = skip or {}
    open_members = members[~members["is_closed"].fillna(False).astype(bool)]
    opted_in = open_members["marketing_opt_in"].fillna(False).astype(bool)
    held = held_controls(history, on)
    taken: set[str] = set()
    # As Python objects: an Arrow-backed string column's isin turns every value of the set into
    # an Arrow scalar first, 1.1 s a call at a million members with a year of history.
    ids = open_members["member_id"].astype(object)
    rows: list[pd.DataFrame] = []
    funnel: dict[str, dict[str, int]] = {}
    for program in sorted(programs, key=lambda p: p.priority):
        if program.name in skip:
            funnel[program.name] = dict.fromkeys(FUNNEL_STEPS, 0)
            continue
        matched = evaluate(program.eligibility, open_members)
        counts = {"matched": int(matched.sum())}
        keep = matched.copy()
        if program.opt_in_required:
            counts["not_opted_in"] = int((keep & ~opted_in).sum())
            keep &= opted_in
        else:
            counts["not_opted_in"] = 0
        contacted = ids.isin(recently_contacted(history, on, program.exclude_contacted_within_days))
        counts["contacted_recently"] = int((keep & contacted).sum())
        keep &= ~contacted
        in_control = ids.isin(held)
        counts["held_in_control"] = int((keep & in_control).sum())
        keep &= ~in_control
        already = ids.isin(taken)
        counts["taken_by_higher_priority"] = int((keep & already).sum())
        keep &= ~already
        counts["eligible"] = int(keep.sum())
        chosen = ids[keep].tolist()
        taken.update(chosen)
        rows.append(
            pd.DataFrame(
                {"member_id": chosen, "program": program.name, "priority": program.priority}
            )
        )
        funnel[program.name] = counts
    selected = (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame({"member_id": [], "program": [], "priority": []})
    )
    return selected.sort_values(["priority", "member_id"], ignore_index=True), funnel
