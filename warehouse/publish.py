"""Publish a read-only copy of the DuckDB warehouse for analysts.

DuckDB lets one process write a file; analysts reading the live file would block the pipeline
(or be blocked). After a successful build the file is copied next to a temporary name and moved
into place with ``os.replace``, so a reader opens either the old copy or the new one, whole.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path


def published_path(duckdb_path: Path) -> Path:
    """``<data>/warehouse/published/cx.duckdb`` for ``<data>/warehouse/cx.duckdb``."""
    return duckdb_path.parent / "published" / duckdb_path.name


def publish_duckdb(duckdb_path: Path, target: Path | None = None) -> Path:
    """Copy the warehouse to ``target`` atomically and make the copy read-only.

    The copy is made through DuckDB (``COPY FROM DATABASE``) from a read-only connection, so it
    holds every committed change even if some are still in the write-ahead log.
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
            connection.execute("copy from database cx_source to cx_published")
            connection.execute("detach cx_published")
            connection.execute("detach cx_source")
        os.chmod(staged, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(staged, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
