"""Who each program targets this cycle: eligibility conditions, contact rules and priority.

An eligibility is one SQL boolean expression (DuckDB dialect) over the member frame's columns, for
example ``risk_band = 'high' and predicted_segment = 'Disengaged'``. It is parsed with sqlglot and
refused unless it is exactly one expression built from what a marketer needs: the member columns
(``members.member_columns``), literals, comparisons, ``and``/``or``/``not``, ``in``, ``between``,
``is null``, ``like`` and arithmetic; no second statement, comment, query, function or table. The
statement that selects members wraps the expression as sqlglot renders it, never the text as
written, so a condition cannot close the code's parenthesis and change the statement around it;
``python -m programs check`` and the cycle both build it with ``selection_statement``. It runs in
an in-memory DuckDB that holds only the member frame and cannot touch files. A comparison with a
missing value is not true (SQL's rule), so a member with no survey answer never matches
``latest_nps_score <= 6``.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from programs.members import member_columns

DIALECT = "duckdb"
TABLE = "members"

# What a condition may be built from. Functions are refused: no program or test uses one, and
# each would be a door (read_csv, getenv, current_date's wall clock) to vet before opening.
_LOGIC = (exp.And, exp.Or, exp.Not, exp.Paren)
_COMPARISONS = (
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.In, exp.Between, exp.Is, exp.Like, exp.ILike,
)  # fmt: skip
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg)
_VALUES = (exp.Literal, exp.Boolean, exp.Null)
_ALLOWED = _LOGIC + _COMPARISONS + _ARITHMETIC + _VALUES
_WHAT_IS_ALLOWED = (
    "a condition uses the member columns, values, comparisons, and/or/not, in, between, "
    "is null, like and arithmetic"
)


class ExpressionError(ValueError):
    """An eligibility expression that cannot be used; the message says why in plain words."""


def _invalid(why: str) -> ExpressionError:
    return ExpressionError(f"is not a valid condition: {why}")


def _snippet(node: exp.Expression) -> str:
    text = node.sql(dialect=DIALECT, comments=False)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _check_tokens(expression: str) -> None:
    """Refuse, before parsing, what would let the text reach past its own expression."""
    try:
        tokens = sqlglot.Dialect.get_or_raise(DIALECT).tokenize(expression)
    except TokenError:
        raise _invalid("a quote or a comment is never closed") from None
    if not tokens:  # nothing but a comment
        raise ExpressionError("is empty; write a condition such as risk_band = 'high'")
    if any(token.token_type == TokenType.SEMICOLON for token in tokens):
        raise ExpressionError("must be one condition, without ';' (it would start a second one)")
    depth = 0
    for token in tokens:
        depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(token.token_type, 0)
        if depth < 0:
            raise _invalid(
                f"unbalanced parentheses: the ')' at character {token.start + 1} closes a '(' "
                "the condition never opened"
            )
    if depth > 0:
        raise _invalid(f"unbalanced parentheses: {depth} '(' never closed")
    if any(token.comments for token in tokens):
        raise _invalid("it has a comment (-- or /* */), which would hide the text after it")


def _parse_one(expression: str) -> exp.Expression:
    try:
        statements = sqlglot.parse(expression, dialect=DIALECT)
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        where = first.get("highlight") or ""
        why = first.get("description", str(error))
        if why.startswith("Required keyword"):
            why = "something is missing"
        raise _invalid(
            f"cannot read it at {where!r} (character {first.get('col')}): {why}"
        ) from None
    if len(statements) != 1 or statements[0] is None:
        raise ExpressionError("must be one condition")
    return statements[0]


def _column_refusal(node: exp.Column, columns: Mapping[str, object]) -> str | None:
    if not isinstance(node.this, exp.Identifier) or node.args.get("db") or node.args.get("catalog"):
        return f"{_snippet(node)!r} is not allowed; {_WHAT_IS_ALLOWED}"
    if node.table and node.table.lower() != TABLE:
        return f"{_snippet(node)!r} names a table; write the member column alone, e.g. risk_band"
    if node.name.lower() not in columns:
        close = difflib.get_close_matches(node.name.lower(), list(columns), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        return f"unknown column {node.name!r}{hint}"
    return None


def _refusal(node: exp.Expression, columns: Mapping[str, object]) -> str | None:
    """Why ``node`` may not be part of a condition (None when it may), in a marketer's words."""
    if isinstance(node, _ALLOWED):
        return None
    if isinstance(node, exp.Identifier) and isinstance(node.parent, exp.Column):
        return None  # the column (or its ``members.`` prefix), checked as a whole
    if isinstance(node, exp.Column):
        return _column_refusal(node, columns)
    if isinstance(node, exp.Query | exp.Subquery | exp.Exists):
        return (
            f"it has a query ({_snippet(node)!r}); a condition reads the member's own columns, "
            "not other rows or tables"
        )
    if isinstance(node, exp.RawString | exp.ByteString):
        return f"{_snippet(node)!r}: write text in single quotes, as in risk_band = 'high'"
    if isinstance(node, exp.Func):
        name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
        return f"the function {name.lower()} is not allowed; {_WHAT_IS_ALLOWED}"
    return f"{_snippet(node)!r} is not allowed; {_WHAT_IS_ALLOWED}"


def parse_condition(expression: str, columns: Mapping[str, object]) -> exp.Expression:
    """``expression`` parsed as exactly one SQL expression over ``columns``, each column named
    alone, in lower case and quoted; raise ``ExpressionError`` saying why it is refused."""
    if not isinstance(expression, str):
        raise ExpressionError(f"must be a condition such as risk_band = 'high', not {expression!r}")
    if not expression.strip():
        raise ExpressionError("is empty; write a condition such as risk_band = 'high'")
    _check_tokens(expression)
    tree = _parse_one(expression)
    columns = {name.lower(): kind for name, kind in columns.items()}
    for node in tree.walk(bfs=False):
        why = _refusal(node, columns)
        if why is None:
            continue
        if why.startswith("unknown column"):
            raise ExpressionError(why)
        raise _invalid(why)
    return tree.transform(
        lambda node: (
            exp.column(node.name.lower(), quoted=True) if isinstance(node, exp.Column) else node
        )
    )


def selection_statement(expression: str, columns: Mapping[str, object]) -> str:
    """The one statement that selects members: the parsed condition, as sqlglot renders it,
    wrapped by this code. The check describes it on an empty table; the cycle runs it."""
    condition = parse_condition(expression, columns).sql(dialect=DIALECT, comments=False)
    return f"select ({condition}) as selected from {TABLE}"


def _connection():
    import duckdb

    return duckdb.connect(config={"enable_external_access": False})


def _selection(con, statement: str):
    """The DuckDB relation of ``statement``, refused unless it gives true or false per member."""
    import duckdb

    try:
        relation = con.sql(statement)
    except duckdb.Error as error:
        text = str(error)
        first_line = text.splitlines()[0] if text else type(error).__name__
        raise _invalid(first_line) from None
    kind = str(relation.types[0]).strip('"')
    if kind.upper() != "BOOLEAN":
        raise ExpressionError(f"must be true or false for each member, but gives {kind.lower()}")
    return relation


def _empty_table(con, columns: Mapping[str, tuple[str, str]]) -> None:
    body = ", ".join(f'"{name}" {kind}' for name, (kind, _) in columns.items())
    con.execute(f"create or replace table {TABLE} ({body})")


def _unknown_literals(condition: exp.Expression, known: Mapping[str, Sequence[str]]) -> list[str]:
    """Text values compared with (``=``, ``<>``, ``in``) a column that never takes them."""
    problems = []
    for node in condition.walk(bfs=False):
        if isinstance(node, exp.EQ | exp.NEQ | exp.NullSafeEQ | exp.NullSafeNEQ):
            pairs = [(node.this, node.expression), (node.expression, node.this)]
        elif isinstance(node, exp.In):
            pairs = [(node.this, item) for item in node.expressions]
        else:
            continue
        for column, value in pairs:
            if not (isinstance(column, exp.Column) and column.name in known):
                continue
            if isinstance(value, exp.Literal) and value.is_string:
                values = known[column.name]
                if value.this not in values:
                    problems.append(
                        f"{column.name} is never {value.this!r} (its values: {', '.join(values)})"
                    )
    return problems


def check_expression(
    expression: str,
    columns: Mapping[str, tuple[str, str]],
    known_values: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Raise ``ExpressionError`` unless ``expression`` is a true/false condition over ``columns``.

    The statement checked is the one a cycle runs (``selection_statement``), bound by DuckDB on an
    empty members table. Unknown columns are named with the closest known ones; a literal that a
    column with a known set of values never takes (``risk_band = 'hgh'``) is an error, since it
    would silently match nobody.
    """
    statement = selection_statement(expression, columns)
    with _connection() as con:
        _empty_table(con, columns)
        _selection(con, statement)
    problems = _unknown_literals(parse_condition(expression, columns), known_values or {})
    if problems:
        raise ExpressionError("; ".join(problems))


def referenced_columns(expression: str, columns: Mapping[str, object] | None = None) -> set[str]:
    """The member columns ``expression`` reads (lower case), from the same parse that builds the
    statement (``parse_condition``), so a column name inside a text literal does not count."""
    condition = parse_condition(expression, member_columns() if columns is None else columns)
    return {column.name for column in condition.find_all(exp.Column)}


def evaluate(
    expression: str, members: pd.DataFrame, columns: Mapping[str, object] | None = None
) -> pd.Series:
    """A boolean Series over ``members``' index: where the expression is true (null is false).

    ``columns`` (default: the member columns) are those the condition may use, as in the check.
    """
    statement = selection_statement(expression, member_columns() if columns is None else columns)
    with _connection() as con:
        con.register(TABLE, members.reset_index(drop=True))
        selected = _selection(con, statement).fetchnumpy()["selected"]
    return pd.Series(np.ma.filled(selected, False).astype(bool), index=members.index)


@dataclass(frozen=True)
class Rules:
    """What selection needs to know about one program (a view of ``config.Program``)."""

    name: str
    priority: int
    eligibility: str
    opt_in_required: bool
    exclude_contacted_within_days: int


def _refused(program: Rules, error: ExpressionError) -> ExpressionError:
    """The error naming the program and the field, as the programs file check names them."""
    return ExpressionError(f"program {program.name!r}, field 'eligibility': {error}")


def _program_columns(program: Rules) -> set[str]:
    try:
        return referenced_columns(program.eligibility)
    except ExpressionError as error:
        raise _refused(program, error) from None


def _program_matches(program: Rules, members: pd.DataFrame) -> pd.Series:
    try:
        return evaluate(program.eligibility, members)
    except ExpressionError as error:
        raise _refused(program, error) from None


FUNNEL_STEPS = (
    "matched",
    "in_global_holdout",
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
        used = sorted(_program_columns(program) & set(unavailable))
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
    global_holdout: set[str] | frozenset[str] = frozenset(),
) -> tuple[pd.DataFrame, dict[str, dict[str, int]]]:
    """``(member_id, program, priority)`` for the members each program keeps, and the funnel.

    The funnel counts, per program, the members its condition matched and where they went (not
    opted in, contacted recently, held in an open control group, taken by a program of higher
    priority), ending with the eligible count that the control draw splits. Members in
    ``global_holdout`` (the persistent holdout no program contacts) are left out first. Programs
    named in
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
        matched = _program_matches(program, open_members)
        counts = {"matched": int(matched.sum())}
        keep = matched.copy()
        held_out = ids.isin(global_holdout)
        counts["in_global_holdout"] = int((keep & held_out).sum())
        keep &= ~held_out
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
