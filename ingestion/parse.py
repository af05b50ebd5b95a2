"""Cast a reader's text columns to the contract's types and split good rows from bad ones.

All of it is one DuckDB statement per table: no Python row loops. A row goes to quarantine when a
required value is missing, a value does not parse as its type, or a number is out of range; the
reason names the column and the offending value.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from ingestion.contract import (
    BOOLEAN,
    DUCKDB_TYPES,
    INTEGER,
    LINEAGE_COLUMNS,
    TIMESTAMP,
    Column,
    Table,
)
from ingestion.lake import BEGINNING
from ingestion.readers import RawExtract, _literal, _quote

# The reasons of rows a database read cannot place in its interval by their watermark (the
# summary groups reasons by the words before the colon).
UNPARSEABLE_WATERMARK = "unparseable watermark"
FUTURE_WATERMARK = "watermark in the future"

_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


def _cast(column: Column, raw: str) -> str:
    if column.type == BOOLEAN:
        truthy = ", ".join(_literal(v) for v in _TRUE)
        falsy = ", ".join(_literal(v) for v in _FALSE)
        return (
            f"case when lower({raw}) in ({truthy}) then true "
            f"when lower({raw}) in ({falsy}) then false end"
        )
    if column.type == INTEGER:
        # Exports write whole numbers as "3" or "3.0"; anything with a fraction is not whole.
        return (
            f"coalesce(try_cast({raw} as BIGINT), case when try_cast({raw} as DOUBLE) "
            f"= floor(try_cast({raw} as DOUBLE)) then try_cast({raw} as DOUBLE)::BIGINT end)"
        )
    if column.type == TIMESTAMP:
        # A timestamp without an offset is UTC (the session time zone is UTC).
        return f"try_cast({raw} as TIMESTAMPTZ)"
    return f"try_cast({raw} as {DUCKDB_TYPES[column.type]})"


def _problem(column: Column, raw: str, typed: str, invalid: str | None = None) -> str:
    """SQL giving this column's reason for rejecting the row, or NULL; ``invalid`` is SQL for
    the words before the value when it does not parse (``'<column> is not a valid <type>: '``)."""
    checks = []
    if column.required:
        checks.append(f"when {raw} is null then 'missing required {column.name}'")
    invalid = invalid or _literal(f"{column.name} is not a valid {column.type}: ")
    checks.append(f"when {raw} is not null and {typed} is null then {invalid} || left({raw}, 60)")
    if column.min_value is not None:
        checks.append(
            f"when {typed} < {column.min_value} then "
            f"'{column.name} ' || {typed}::VARCHAR || ' is below {column.min_value:g}'"
        )
    if column.max_value is not None:
        checks.append(
            f"when {typed} > {column.max_value} then "
            f"'{column.name} ' || {typed}::VARCHAR || ' is above {column.max_value:g}'"
        )
    return "case " + " ".join(checks) + " end"


def _placement(column: str) -> str:
    """SQL for the instant a watermark column places its row at (on ``_checked``): its value, or,
    when that does not parse but begins with a date ('2026-06-15 4pm'), that date's midnight.
    A database read finds such a value by that date's window alone (``readers._in_window``):
    placed by a later column, it would be lost to that column's day."""
    raw = _quote("_raw_" + column)
    return (
        f"coalesce({_quote(column)}, case when regexp_matches({raw}, '^[0-9]{{4}}-[0-9]{{2}}-"
        f"[0-9]{{2}}') then try_cast(left({raw}, 10) as DATE)::TIMESTAMPTZ end)"
    )


def split_rows(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    extract: RawExtract,
    interval_start: datetime,
    interval_end: datetime,
    watermark: tuple[str, ...] = (),
    window: tuple[datetime, datetime] | None = None,
) -> tuple[str, str]:
    """Create DuckDB relations ``good_<table>`` (typed, contract order) and ``bad_<table>``.

    ``good_<table>`` is a view over the checked rows when the extract is already in source
    order, else a table sorted into it; either reads in (_source_file, _source_row) order.

    ``watermark`` and ``window`` place each row by its first watermark column that parses, or
    that begins with a date (``_placement``); the database reader over-fetches. A day keeps the
    rows placed in its window and quarantines those no column places ("unparseable watermark"
    when one does not parse); the other rows are another interval's, and go to the temp table
    ``outside_<table>`` (lineage only), so that every row read is counted. A full load
    (``interval_start`` is ``BEGINNING``) keeps every row, and quarantines those placed at or
    after ``interval_end`` ("watermark in the future").
    """
    raw = extract.relation
    full_history = interval_start == BEGINNING
    placing = watermark if window else ()
    placing_typed = [_cast(table.column(c), _quote(c)) for c in placing]
    start, end = (_literal(b.isoformat()) + "::TIMESTAMPTZ" for b in (interval_start, interval_end))
    typed_columns = []
    problems = []
    if placing and full_history:
        mark = "coalesce(" + ", ".join(placing_typed) + ")"
        which = " ".join(
            f"when {typed} is not null then {_literal(name + ' ')}"
            for name, typed in zip(placing, placing_typed, strict=True)
        )
        problems.append(
            f"case when {mark} >= {end} then '{FUTURE_WATERMARK}: ' || case {which} end "
            f"|| {mark}::VARCHAR || ' is not before the interval end ' || {end}::VARCHAR end"
        )
    for column in table.columns:
        if column.name in extract.columns:
            source = _quote(column.name)
            typed = _cast(column, source)
            invalid = None
            if column.name in placing:
                # A watermark that does not parse where no earlier one did: the row was to be
                # placed by it, and falls back to the next one (or to none).
                earlier = placing_typed[: placing.index(column.name)]
                undated = " and ".join(f"{t} is null" for t in earlier) or "true"
                invalid = (
                    f"case when {undated} then '{UNPARSEABLE_WATERMARK}: {column.name} ' "
                    f"else '{column.name} is not a valid {column.type}: ' end"
                )
            problems.append(_problem(column, source, typed, invalid))
        else:
            typed = f"NULL::{DUCKDB_TYPES[column.type]}"
        typed_columns.append(f"{typed} as {_quote(column.name)}")

    reason = "concat_ws('; ', " + ", ".join(problems) + ")" if problems else "''"
    raw_columns = {
        r[0] for r in con.execute(f"select column_name from (describe {raw})").fetchall()
    }
    has_line = "_line" in raw_columns
    if has_line:
        # A reader says why a line could not be split when it knows (not UTF-8, say).
        why = "'unparseable line'"
        if "_line_reason" in raw_columns:
            why = f"coalesce(_line_reason, {why})"
        reason = f"case when _line is not null then {why} else {reason} end"

    lineage = [
        "_extra_fields",
        "_source_file",
        "_source_row",
        f"{start} as _interval_start",
        f"{end} as _interval_end",
    ]
    # The delivered text is kept only where the row is rejected (for the quarantine): a good
    # row's copy would double what is held, and spilled, for nothing.
    raw_text = ", ".join(
        f"case when _reject_reason is not null then {_quote('_raw_' + c)} end "
        f"as {_quote('_raw_' + c)}"
        for c in extract.columns
    )
    con.execute(
        f"""
        create or replace temp table _checked as
        select * {f"replace ({raw_text})" if raw_text else ""}
        from (
            select {", ".join(typed_columns)}, {", ".join(lineage)},
                nullif({reason}, '') as _reject_reason,
                {"_line" if has_line else "NULL::VARCHAR as _line"}
                {"".join(f", {_quote(c)} as {_quote('_raw_' + c)}" for c in extract.columns)}
            from {raw}
        ) as checked
        """
    )
    keep = "true"
    if placing and not full_history:
        low, high = (_literal(b.isoformat()) + "::TIMESTAMPTZ" for b in window)
        mark = "coalesce(" + ", ".join(_placement(c) for c in placing) + ")"
        # Rows placed outside the window are another interval's, bad or not; a row no watermark
        # places can be no interval's, so every day that reads it quarantines it.
        keep = (
            f"(coalesce({mark} >= {low} and {mark} < {high}, false) "
            f"or ({mark} is null and _reject_reason is not null))"
        )

    good, bad = f"good_{table.name}", f"bad_{table.name}"
    contract_order = ", ".join(_quote(c.name) for c in table.columns)
    lineage_order = ", ".join(name for name, _ in LINEAGE_COLUMNS)
    select_good = f"""
        select {contract_order}, {lineage_order} from _checked
        where _reject_reason is null and {keep}
        """
    if extract.in_source_order:
        # Already in source order: a view, which the caller counts and writes without another
        # copy of every good row.
        con.execute(f"create or replace temp view {good} as {select_good}")
    else:
        con.execute(
            f"create or replace temp table {good} as {select_good} "
            "order by _source_file, _source_row"
        )
    # Quarantined values keep their source names and text, exactly as delivered.
    raw_order = ", ".join(f"{_quote('_raw_' + c)} as {_quote(c)}" for c in extract.columns)
    con.execute(
        f"""
        create or replace temp table {bad} as
        select _reject_reason, _source_file, _source_row, _line,
            {raw_order + "," if raw_order else ""} _extra_fields, _interval_start, _interval_end
        from _checked
        where _reject_reason is not null and {keep}
        order by _source_file, _source_row
        """
    )
    con.execute(
        f"create or replace temp table outside_{table.name} as "
        f"select _source_file, _source_row from _checked where not {keep}"
    )
    if not extract.in_source_order:
        con.execute("drop table _checked")
    return good, bad


# What became of every row read, per source file and in total: the manifest's accounting.
ROW_COUNTS = (
    "rows_read",
    "rows_landed",
    "rows_quarantined",
    "rows_outside_interval",
    "rows_suppressed",
)


def account_files(
    con: duckdb.DuckDBPyConnection, table: Table, read: str, kept: str, source_files: list[dict]
) -> dict[str, int]:
    """Count, per source file, the rows read (``read``) and what became of each: landed
    (``good_<table>``), quarantined (``bad_<table>``), outside the interval
    (``outside_<table>``, when the split made one) or suppressed (read but not ``kept``: an
    erased member's). Sets the counts on each file's entry of ``source_files`` and returns the
    totals.

    Raises ``IngestionError`` naming the file whose rows do not add up, so that a row lost
    between reading and writing stops the landing rather than vanish.
    """
    from ingestion.errors import IngestionError

    def by_file(relation: str) -> dict[str, int]:
        return dict(
            con.execute(f"select _source_file, count(*) from {relation} group by all").fetchall()
        )

    read_rows = by_file(read)
    kept_rows = read_rows if kept == read else by_file(kept)
    landed, quarantined = by_file(f"good_{table.name}"), by_file(f"bad_{table.name}")
    has_outside = con.execute(
        "select count(*) from duckdb_tables() where table_name = ?", [f"outside_{table.name}"]
    ).fetchone()[0]
    outside = by_file(f"outside_{table.name}") if has_outside else {}
    unlisted = sorted(set(read_rows) - {fact["path"] for fact in source_files})
    if unlisted:
        raise IngestionError(f"{table.qualified_name}: rows read from unlisted file(s) {unlisted}")
    totals = dict.fromkeys(ROW_COUNTS, 0)
    for fact in source_files:
        path = fact["path"]
        counts = {
            "rows_read": read_rows.get(path, 0),
            "rows_landed": landed.get(path, 0),
            "rows_quarantined": quarantined.get(path, 0),
            "rows_outside_interval": outside.get(path, 0),
            "rows_suppressed": read_rows.get(path, 0) - kept_rows.get(path, 0),
        }
        placed = sum(counts[key] for key in ROW_COUNTS[1:])
        if placed != counts["rows_read"]:
            raise IngestionError(
                f"{table.qualified_name}: {path}: {counts['rows_read']} rows read, but "
                f"{placed} landed, quarantined, outside the interval or suppressed ({counts})"
            )
        fact.update(counts)
        for key, count in counts.items():
            totals[key] += count
    return totals
