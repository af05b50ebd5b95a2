"""Publish a read-only copy of the DuckDB warehouse for analysts.

DuckDB lets one process write a file; analysts reading the live file would block the pipeline
(or be blocked). After a successful build the file is copied next to a temporary name and moved
into place with ``os.replace``, so a reader opens either the old copy or the new one, whole.

The copy holds the warehouse's tables except the ``restricted`` schema (contact details, which
only the program exports read, from the live file) and the ``cx_state`` schema (the dbt models'
bookkeeping, such as which lake files they have read), no bookkeeping column
(``BOOKKEEPING_COLUMNS``: the hashes incremental runs compare), and no views: the views are dbt's
staging layer, which reads the raw lake, identifiers included, rather than a snapshot.

The copy reads the warehouse only, with one exception: after a publish that brought every table
up to date, the analysts' copy records in the warehouse how far into the models' publish log it
has come (``_take_log``), so the next publish compares only the rows logged since.

Why not simpler (``python -m bench.publish``, at 1M members): copying every table whole at each
publish cost 3 times the daily sync by rows or more (36.7 s against 12.1 s in one bench run); a
file copy of the live file is fast, but the schemas it drops stay in its free blocks, contact
details included; and files the analysts attach read-only would lock out their writers.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Schemas left out of the analysts' copy.
UNPUBLISHED_SCHEMAS = ("restricted", "cx_state")

# Columns the build keeps for itself, left out of the analysts' copy wherever a table has them:
# hashes of what a row was computed from, which incremental runs compare (fct_member_daily's
# inputs_hash, member_features_pit's member_inputs_hash and inputs_fingerprint). They mean
# nothing to an analyst and change whenever the SQL does.
BOOKKEEPING_COLUMNS = ("inputs_hash", "member_inputs_hash", "inputs_fingerprint")


def published_path(duckdb_path: Path) -> Path:
    """``<data>/warehouse/published/cx.duckdb`` for ``<data>/warehouse/cx.duckdb``."""
    return duckdb_path.parent / "published" / duckdb_path.name


def publish_duckdb(
    duckdb_path: Path,
    target: Path | None = None,
    tables: Sequence[str] | None = None,
    by_rows: bool = False,
    memory_limit: str | None = None,
    *,
    skip: Sequence[str] = (),
    changed_rows: str | None = None,
) -> Path:
    """Copy the warehouse's analyst tables to ``target`` atomically; make the copy read-only.

    The copy is made through DuckDB from a read-only connection, so it holds every committed
    change even if some are still in the write-ahead log.

    ``tables`` names the only tables that changed since the last publish (scoring and the
    program cycle write a few tables): the previous copy is then copied as a file and just
    those tables are replaced in it, so the cost follows what changed rather than the whole
    warehouse.

    ``by_rows`` (the daily build, which changes a little of many large tables) also starts from
    the previous copy, and brings every table (or those named in ``tables``) up to date by rows
    (``_sync_rows``). A table that is new, whose definition changed, or whose rows do not match
    after the sync is copied whole, as is everything when the copy has too much free space left
    by deleted rows. Two narrow the sync further, each to what its caller wrote:

    - ``skip`` names tables that other steps write and republish themselves (scoring, the
      program cycle): the build's sync leaves them in the copy as they are, rather than hashing
      every day of scores it did not touch;
    - ``changed_rows`` is an SQL condition every synced table can evaluate (scoring's
      ``score_date = date '...'``): only the rows matching it are compared, the others are taken
      as they are in the copy, so a day's scores cost that day's rows, not every day kept.

    Without either, or with no previous copy, every table is copied: the file then holds no
    byte of a row the warehouse no longer has, which is why erasure publishes this way.

    The analysts' copy (``published_path``) also uses the log the largest tables' models keep
    of the rows they rewrite (``LOGGED_TABLES``, ``dbt_project/macros/publish_log.sql``): a
    sync by rows compares only the logged rows of those tables, and a publish that brought every
    table up to date records how far into the log the copy has come (``_take_log``).

    ``memory_limit`` (DuckDB's notation, ``4GB``; by default the setting
    ``CX_DUCKDB_MEMORY_LIMIT``) bounds the copy's memory; past it DuckDB spills to the staging
    folder. Unbounded, DuckDB may take 80% of the machine: the sync by rows took 7.6 GB at 1M
    members.
    """
    if memory_limit is None:
        from config import load_settings

        memory_limit = load_settings().duckdb_memory_limit
    # Only the analysts' copy follows the log: the log records one copy's position.
    follows_log = target is None or Path(target) == published_path(duckdb_path)
    target = target or published_path(duckdb_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    log = None
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-publish-"))
    staged = work / target.name
    try:
        if (tables is not None or by_rows) and target.exists():
            shutil.copyfile(target, staged)
            os.chmod(staged, stat.S_IRUSR | stat.S_IWUSR)
        else:
            tables, by_rows = None, False
        with _connect(memory_limit, work / "spill") as connection:
            connection.execute(f"attach '{duckdb_path}' as cx_source (read_only)")
            connection.execute(f"attach '{staged}' as cx_published")
            log = _read_log(connection) if follows_log else None
            logged = _logged_rows(connection, log) if by_rows and log else {}
            if by_rows and not _sync_tables(connection, tables, skip, changed_rows, logged):
                # Too much of the file is free space: start a fresh copy.
                connection.execute("detach cx_published")
                staged.unlink()
                connection.execute(f"attach '{staged}' as cx_published")
                _copy_tables(connection)
            elif not by_rows:
                _copy_tables(connection, tables)
            connection.execute("detach cx_published")
            connection.execute("detach cx_source")
        os.chmod(staged, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(staged, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if log and tables is None and not (by_rows and set(skip) & set(LOGGED_TABLES)):
        _take_log(duckdb_path, log.last_id)
    return target


def _connect(memory_limit: str | None, spill_dir: Path):
    """An in-memory DuckDB connection for the copy, held to ``memory_limit`` (spilling to
    ``spill_dir`` past it) when one is given."""
    import duckdb

    connection = duckdb.connect()
    if memory_limit:
        connection.execute(f"set memory_limit = '{memory_limit}'")
        connection.execute(f"set temp_directory = '{spill_dir}'")
    return connection


def _tables(connection, database: str = "cx_source") -> list[tuple[str, str, str]]:
    """(schema, table, definition) of every table of ``database`` outside
    ``UNPUBLISHED_SCHEMAS``: the source's tables to publish, or the copy's published ones."""
    return connection.execute(
        "select schema_name, table_name, sql from duckdb_tables() "
        "where database_name = ? and not temporary "
        "and not list_contains(?, schema_name) order by schema_name, table_name",
        [database, list(UNPUBLISHED_SCHEMAS)],
    ).fetchall()


def _copy_table(connection, schema: str, name: str, definition: str) -> None:
    """Create ``schema.name`` in ``cx_published`` (current database) from its definition, less
    its ``BOOKKEEPING_COLUMNS``, and copy every row from ``cx_source``."""
    connection.execute(f'create schema if not exists "{schema}"')
    connection.execute(definition)
    _drop_bookkeeping(connection, "cx_published", schema, name)
    columns = _column_list(connection, "cx_published", schema, name)
    connection.execute(
        f'insert into cx_published."{schema}"."{name}" '
        f'select {columns} from cx_source."{schema}"."{name}"'
    )


def _drop_bookkeeping(connection, database: str, schema: str, name: str) -> None:
    """Drop the ``BOOKKEEPING_COLUMNS`` of an empty table just created from its definition."""
    for (column,) in connection.execute(
        "select column_name from duckdb_columns() where database_name = ? and schema_name = ? "
        "and table_name = ? and list_contains(?, column_name)",
        [database, schema, name, list(BOOKKEEPING_COLUMNS)],
    ).fetchall():
        connection.execute(f'alter table {database}."{schema}"."{name}" drop column "{column}"')


def _column_list(connection, database: str, schema: str, name: str) -> str:
    """The quoted columns of ``database.schema.name`` in order, joined by commas."""
    return ", ".join(
        f'"{column}"'
        for (column,) in connection.execute(
            "select column_name from duckdb_columns() where database_name = ? "
            "and schema_name = ? and table_name = ? order by column_index",
            [database, schema, name],
        ).fetchall()
    )


def _published_definition(connection, schema: str, name: str, definition: str) -> str:
    """The definition ``_copy_table`` gives the copy of ``schema.name``: its own, unless it has
    ``BOOKKEEPING_COLUMNS``, when it is read back from an empty table made the same way in a
    scratch database."""
    bookkeeping = connection.execute(
        "select count(*) from duckdb_columns() where database_name = 'cx_source' "
        "and schema_name = ? and table_name = ? and list_contains(?, column_name)",
        [schema, name, list(BOOKKEEPING_COLUMNS)],
    ).fetchone()[0]
    if not bookkeeping:
        return definition
    connection.execute("attach if not exists ':memory:' as cx_scratch")
    connection.execute("use cx_scratch")
    try:
        connection.execute(f'create schema if not exists "{schema}"')
        connection.execute(f'drop table if exists "{schema}"."{name}"')
        connection.execute(definition)
        _drop_bookkeeping(connection, "cx_scratch", schema, name)
        return connection.execute(
            "select sql from duckdb_tables() where database_name = 'cx_scratch' "
            "and schema_name = ? and table_name = ?",
            [schema, name],
        ).fetchone()[0]
    finally:
        connection.execute("use cx_published")


# A copy brought up to date by rows is started afresh when more than this share of its blocks
# is free space (DuckDB reuses free blocks but never shrinks the file).
MAX_FREE_SHARE = 0.35


def _sync_tables(
    connection,
    only: Sequence[str] | None = None,
    skip: Sequence[str] = (),
    changed_rows: str | None = None,
    logged: dict[str, str] | None = None,
) -> bool:
    """Bring ``cx_published`` (a previous copy) up to ``cx_source``, table by table (just the
    tables named in ``only``, none of those in ``skip``; rows as ``_sync_rows`` compares them,
    those of a table in ``logged`` only where its condition holds); returns False when the copy
    should be made afresh."""
    logged = logged or {}
    source = {(schema, name): definition for schema, name, definition in _tables(connection)}
    published = {
        (schema, name): definition
        for schema, name, definition in _tables(connection, "cx_published")
    }
    if only is not None:
        source = {key: value for key, value in source.items() if key[1] in only}
        published = {key: value for key, value in published.items() if key[1] in only}
    source = {key: value for key, value in source.items() if key[1] not in skip}
    published = {key: value for key, value in published.items() if key[1] not in skip}
    connection.execute("use cx_published")
    try:
        for schema, name in sorted(set(published) - set(source)):
            connection.execute(f'drop table cx_published."{schema}"."{name}"')
        for (schema, name), definition in sorted(source.items()):
            expected = _published_definition(connection, schema, name, definition)
            if published.get((schema, name)) == expected and _sync_rows(
                connection,
                f'"{schema}"."{name}"',
                logged.get(name, changed_rows) if schema == "main" else changed_rows,
            ):
                continue
            connection.execute(f'drop table if exists cx_published."{schema}"."{name}"')
            _copy_table(connection, schema, name, definition)
    finally:
        connection.execute("use memory")
    connection.execute("checkpoint cx_published")
    free, total = connection.execute(
        "select free_blocks, total_blocks from pragma_database_size() "
        "where database_name = 'cx_published'"
    ).fetchone()
    return not total or free / total <= MAX_FREE_SHARE


def _sync_rows(connection, table: str, changed_rows: str | None = None) -> bool:
    """Delete from the copy of ``table`` the rows the warehouse no longer holds and insert those
    it holds anew, rows compared by a 64-bit hash of the copy's columns (the whole row, less
    ``BOOKKEEPING_COLUMNS``): what is written follows the rows that changed, not the table. With
    ``changed_rows`` (an SQL condition) only the rows matching it are compared, on both sides;
    the others stay in the copy as they are.

    Returns False when more than half the table's rows changed (a table rebuilt with new
    values, e.g. today's features: copying it whole is cheaper and leaves no free space), or
    when the copy does not end with as many rows as the warehouse (identical rows in different
    numbers, which a hash set cannot tell apart); the caller then copies the table whole."""
    source, copy = f"cx_source.{table}", f"cx_published.{table}"
    schema, name = (part.strip('"') for part in table.split(".", 1))
    columns = _column_list(connection, "cx_published", schema, name)
    where = f" where {changed_rows}" if changed_rows else ""
    for temp, relation in (("publish_source", source), ("publish_copy", copy)):
        connection.execute(
            f"create or replace temp table {temp} as "
            f"select rowid as row_number, hash({columns}) as row_hash from {relation}{where}"
        )
    try:
        connection.execute(
            "create or replace temp table publish_stale as "
            "select row_number from publish_copy anti join publish_source using (row_hash)"
        )
        stale, rows = connection.execute(
            f"select (select count(*) from publish_stale), (select count(*) from {copy})"
        ).fetchone()
        if stale * 2 > rows:
            return False
        connection.execute(
            f"delete from {copy} where rowid in (select row_number from publish_stale)"
        )
        connection.execute(
            f"insert into {copy} select {columns} from {source} where rowid in ("
            "select row_number from publish_source anti join publish_copy using (row_hash))"
        )
        counts = connection.execute(
            f"select (select count(*) from {source}), (select count(*) from {copy})"
        ).fetchone()
    finally:
        for name in ("publish_source", "publish_copy", "publish_stale"):
            connection.execute(f"drop table if exists {name}")
    return counts[0] == counts[1]


def _copy_tables(connection, only: Sequence[str] | None = None) -> None:
    """Every table of ``cx_source`` outside ``UNPUBLISHED_SCHEMAS`` (or just those named in
    ``only``, replacing their old copies) into ``cx_published``, with its definition (types,
    keys, constraints) and rows. Nothing else is written to the copy, so no byte of a left-out
    table is in the file."""
    tables = _tables(connection)
    connection.execute("use cx_published")
    try:
        if only is not None:
            # A named table the warehouse no longer has leaves the copy too.
            for name in set(only) - {name for _, name, _ in tables}:
                connection.execute(f'drop table if exists cx_published.main."{name}"')
            tables = [table for table in tables if table[1] in only]
        for schema, name, definition in tables:
            if only is not None:
                connection.execute(f'drop table if exists cx_published."{schema}"."{name}"')
            _copy_table(connection, schema, name, definition)
    finally:
        connection.execute("use memory")


# The tables whose dbt models log the keys of the rows they rewrite in cx_state.publish_log
# (dbt_project/macros/publish_log.sql). Written by anything else, a change to one of their rows
# in place would not reach the analysts' copy; erasure, which deletes from them, forgets the log
# (``forget_log_position``) so the next publish compares every row.
LOGGED_TABLES = ("fct_member_daily", "fct_transactions", "member_features_pit")


@dataclass(frozen=True)
class LogState:
    """How far into the warehouse's publish log the analysts' copy has come (None: unknown,
    so every row is compared), and the last entry there is now."""

    position: int | None
    last_id: int


def _read_log(connection) -> LogState | None:
    """The log's state in ``cx_source``, or None when the warehouse keeps no log (a build on
    PostgreSQL, or before the log existed)."""
    names = {
        name
        for (name,) in connection.execute(
            "select table_name from duckdb_tables() where database_name = 'cx_source' "
            "and schema_name = 'cx_state' "
            "and table_name in ('publish_log', 'publish_log_position')"
        ).fetchall()
    }
    if "publish_log" not in names:
        return None
    last_id = connection.execute(
        "select coalesce(max(log_id), 0) from cx_source.cx_state.publish_log"
    ).fetchone()[0]
    position = None
    if "publish_log_position" in names:
        position = connection.execute(
            "select max(log_id) from cx_source.cx_state.publish_log_position"
        ).fetchone()[0]
    return LogState(position, max(last_id, position or 0))


def _logged_rows(connection, log: LogState) -> dict[str, str]:
    """For each of ``LOGGED_TABLES`` the copy can follow by the log, the SQL condition that
    holds for the rows its model rewrote since the copy's position (``false`` when none). A
    table logged as rewritten whole, or whose log names a column it lacks, is left out: every
    row of it is compared."""
    if log.position is None:
        return {}
    conditions = {}
    for name in LOGGED_TABLES:
        entries = (
            "from cx_source.cx_state.publish_log "
            f"where table_name = '{name}' and log_id > {int(log.position)}"
        )
        keyed = dict(
            connection.execute(
                f"select coalesce(key_column, ''), count(*) {entries} group by all"
            ).fetchall()
        )
        columns = {
            column
            for (column,) in connection.execute(
                "select column_name from duckdb_columns() where database_name = 'cx_source' "
                "and schema_name = 'main' and table_name = ?",
                [name],
            ).fetchall()
        }
        if "" in keyed or not columns or not set(keyed) <= columns:
            continue
        conditions[name] = (
            " or ".join(
                f'cast("{column}" as varchar) in '
                f"(select key_value {entries} and key_column = '{column}')"
                for column in sorted(keyed)
            )
            or "false"
        )
    return conditions


def _take_log(duckdb_path: Path, last_id: int) -> None:
    """Record in the warehouse that the analysts' copy holds every change logged up to
    ``last_id``, and drop those entries. Best effort: while another process writes the file the
    position stays where it was, and the next publish compares more rows than it needs to."""
    import duckdb

    try:
        with duckdb.connect(str(duckdb_path)) as connection:
            connection.execute("begin transaction")
            connection.execute(
                "create table if not exists cx_state.publish_log_position (log_id bigint)"
            )
            connection.execute("delete from cx_state.publish_log_position")
            connection.execute("insert into cx_state.publish_log_position values (?)", [last_id])
            connection.execute("delete from cx_state.publish_log where log_id <= ?", [last_id])
            connection.execute("commit")
    except duckdb.Error as error:
        warnings.warn(
            f"the analysts' copy is published, but its position in {duckdb_path}'s publish log "
            f"was not recorded ({error}); the next publish compares more rows",
            stacklevel=2,
        )


def forget_log_position(connection) -> None:
    """On a connection writing the warehouse: drop the publish log and the analysts' copy's
    position in it, so the next publish compares every row (erasure deletes from the logged
    tables outside the log, and the log holds member ids)."""
    connection.execute("drop table if exists cx_state.publish_log_position")
    connection.execute("drop table if exists cx_state.publish_log")
