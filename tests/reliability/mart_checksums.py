"""Order-independent checksums of the marts, computed in DuckDB.

A mart's checksum is its column names and types, its row count, and the sum of a 64-bit hash of
every row (summed as a 128-bit integer, so the order rows are stored in does not matter and a
duplicated row counts twice). Two warehouses with equal checksums hold the same marts.

Left out, because they say how the data was landed rather than what it is:

- ``source_interval_end_at`` (the facts): the end of the lake partition a kept row was read
  from. One straight run lands the whole history in one partition; daily runs land a record in
  the partition of its day. The record is the same either way.

Doubles are rounded to 9 decimal places: a sum or average of doubles may differ in its last bits
with the order DuckDB's threads add them in, run to run, on the same data.
"""

from __future__ import annotations

from pathlib import Path

from config.settings import REPO_ROOT

MARTS_DIR = REPO_ROOT / "dbt_project" / "models" / "marts"
RUN_DEPENDENT_COLUMNS = frozenset({"source_interval_end_at"})
_FLOATING = {"DOUBLE", "FLOAT", "REAL"}


def mart_tables() -> list[str]:
    """``schema.table`` of every dbt mart (``models/marts``; ``restricted/`` in its schema)."""
    names = []
    for path in sorted(MARTS_DIR.rglob("*.sql")):
        schema = "restricted" if "restricted" in path.relative_to(MARTS_DIR).parts else "main"
        names.append(f"{schema}.{path.stem}")
    return names


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_checksum(con, table: str, exclude: frozenset[str] = RUN_DEPENDENT_COLUMNS) -> dict:
    """``{"columns": "name type, ...", "rows": n, "hash": "..."}`` for ``schema.table``."""
    schema, name = table.split(".")
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    ).fetchall()
    kept = [(column, kind) for column, kind in columns if column not in exclude]
    if not kept:
        raise LookupError(f"{table}: no such table (or no column left to compare)")
    fields = ", ".join(
        f"{_quote(column)} := "
        + (f"round({_quote(column)}, 9)" if kind in _FLOATING else _quote(column))
        for column, kind in kept
    )
    rows, total = con.execute(
        f"select count(*), coalesce(sum(hash(struct_pack({fields}))::hugeint), 0) "
        f"from {_quote(schema)}.{_quote(name)}"
    ).fetchone()
    return {
        "columns": ", ".join(f"{column} {kind}" for column, kind in kept),
        "rows": int(rows),
        "hash": format(int(total), "x"),
    }


def checksums(duckdb_path: Path, tables: list[str] | None = None) -> dict[str, dict]:
    """The checksum of each mart in the DuckDB file (read-only); a missing mart is left out."""
    import duckdb

    out = {}
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        present = {
            f"{schema}.{name}"
            for schema, name in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        for table in tables or mart_tables():
            if table in present:
                out[table] = table_checksum(con, table)
    return out


def differences(expected: dict[str, dict], actual: dict[str, dict]) -> list[str]:
    """One line per mart whose checksum differs (or that only one side has), for messages."""
    lines = []
    for table in sorted(set(expected) | set(actual)):
        before, after = expected.get(table), actual.get(table)
        if before == after:
            continue
        if before is None or after is None:
            lines.append(f"{table}: only in {'actual' if before is None else 'expected'}")
        elif before["columns"] != after["columns"]:
            lines.append(f"{table}: columns {before['columns']!r} != {after['columns']!r}")
        else:
            lines.append(f"{table}: {before['rows']} rows -> {after['rows']} rows, hash differs")
    return lines
