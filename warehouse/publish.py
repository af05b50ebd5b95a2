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
from pathlib import Path

# Schemas left out of the analysts' copy.
UNPUBLISHED_SCHEMAS = ("restricted",)


def published_path(duckdb_path: Path) -> Path:
    """``<data>/warehouse/published/cx.duckdb`` for ``<data>/warehouse/cx.duckdb``."""
    return duckdb_path.parent / "published" / duckdb_path.name


def publish_duckdb(duckdb_path: Path, target: Path | None = None) -> Path:
    """Copy the warehouse's analyst tables to ``target`` atomically; make the copy read-only.

    The copy is made through DuckDB from a read-only connection, so it holds every committed
    change even if some are still in the write-ahead log.
    """
    import duckdb

    target = target or published_path(duckdb_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-publish-"))
    staged = work / target.name
    try:
        with duckdb.connect() as connection:
            connection.execute(f"attach '{duckdb_path}' as cx_source (read_only)")
            connection.execute(f"attach '{staged}' as cx_published")
            _copy_tables(connection)
            connection.execute("detach cx_published")
            connection.execute("detach cx_source")
        os.chmod(staged, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(staged, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _copy_tables(connection) -> None:
    """Every table of ``cx_source`` outside ``UNPUBLISHED_SCHEMAS`` into ``cx_published``, with
    its definition (types, keys, constraints) and rows. Nothing else is written to the copy, so
    no byte of a left-out table is in the file."""
    tables = connection.execute(
        "select schema_name, table_name, sql from duckdb_tables() "
        "where database_name = 'cx_source' and not temporary "
        "and not list_contains(?, schema_name) order by schema_name, table_name",
        [list(UNPUBLISHED_SCHEMAS)],
    ).fetchall()
    connection.execute("use cx_published")
    try:
        for schema in sorted({schema for schema, _, _ in tables}):
            connection.execute(f'create schema if not exists "{schema}"')
        for schema, name, definition in tables:
            connection.execute(definition)
            connection.execute(
                f'insert into cx_published."{schema}"."{name}" '
                f'select * from cx_source."{schema}"."{name}"'
            )
    finally:
        connection.execute("use memory")
