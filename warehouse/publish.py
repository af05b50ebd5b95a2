"""Publish a read-only copy of the DuckDB warehouse for analysts.

DuckDB lets one process write a file; analysts reading the live file would block the pipeline
(or be blocked). After a successful build the file is copied next to a temporary name and moved
into place with ``os.replace``, so a reader opens either the old copy or the new one, whole.

The copy holds the warehouse's tables except the ``restricted`` schema (contact details, which
only the program exports read, from the live file), and no views: the views are dbt's staging
layer, which reads the raw lake, identifiers included, rather than a snapshot.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

# Schemas left out of the analysts' copy.
UNPUBLISHED_SCHEMAS = ("restricted",)


def published_path(duckdb_path: Path) -> Path:
    """``<data>/warehouse/published/cx.duckdb`` for ``<data>/warehouse/cx.duckdb``."""
    return duckdb_path.parent / "published" / duckdb_path.name


def publish_duckdb(
    duckdb_path: Path, target: Path | None = None, tables: Sequence[str] | None = None
) -> Path:
    """Copy the warehouse's analyst tables to ``target`` atomically; make the copy read-only.

    The copy is made through DuckDB from a read-only connection, so it holds every committed
    change even if some are still in the write-ahead log.

    ``tables`` names the only tables that changed since the last publish (scoring and the
    program cycle write a few tables): the previous copy is then copied as a file and just
    those tables are replaced in it, so the cost follows what changed rather than the whole
    warehouse. Without ``tables``, or with no previous copy, every table is copied.
    """
    import duckdb

    target = target or published_path(duckdb_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-publish-"))
    staged = work / target.name
    try:
        if tables is not None and target.exists():
            shutil.copyfile(target, staged)
            os.chmod(staged, stat.S_IRUSR | stat.S_IWUSR)
        else:
            tables = None
        with duckdb.connect() as connection:
            connection.execute(f"attach '{duckdb_path}' as cx_source (read_only)")
            connection.execute(f"attach '{staged}' as cx_published")
            _copy_tables(connection, tables)
            connection.execute("detach cx_published")
            connection.execute("detach cx_source")
        os.chmod(staged, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(staged, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _copy_tables(connection, only: Sequence[str] | None = None) -> None:
    """Every table of ``cx_source`` outside ``UNPUBLISHED_SCHEMAS`` (or just those named in
    ``only``, replacing their old copies) into ``cx_published``, with its definition (types,
    keys, constraints) and rows. Nothing else is written to the copy, so no byte of a left-out
    table is in the file."""
    tables = connection.execute(
        "select schema_name, table_name, sql from duckdb_tables() "
        "where database_name = 'cx_source' and not temporary "
        "and not list_contains(?, schema_name) order by schema_name, table_name",
        [list(UNPUBLISHED_SCHEMAS)],
    ).fetchall()
    connection.execute("use cx_published")
    try:
        if only is not None:
            # A named table the warehouse no longer has leaves the copy too.
            for name in set(only) - {name for _, name, _ in tables}:
                connection.execute(f'drop table if exists cx_published.main."{name}"')
            tables = [table for table in tables if table[1] in only]
        for schema in sorted({schema for schema, _, _ in tables}):
            connection.execute(f'create schema if not exists "{schema}"')
        for schema, name, definition in tables:
            if only is not None:
                connection.execute(f'drop table if exists cx_published."{schema}"."{name}"')
            connection.execute(definition)
            connection.execute(
                f'insert into cx_published."{schema}"."{name}" '
                f'select * from cx_source."{schema}"."{name}"'
            )
    finally:
        connection.execute("use memory")
