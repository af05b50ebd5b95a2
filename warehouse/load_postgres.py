"""Copy the raw lake into PostgreSQL schema ``raw`` for the dbt ``postgres`` target.

DuckDB reads the lake's Parquet files in place; PostgreSQL cannot, so each partition file is
copied into a table ``raw.<table>`` (``raw.members``, ``raw.transactions``, ``raw.responses``,
``raw.contacts``, and the enrichments ``raw.survey_sentiment``, ``raw.call_notes``, ``raw.member_hashes``,
``raw.response_hashes``, ``raw.call_hashes``) whose columns follow ``ingestion/contract.py`` and
``warehouse/``'s enrichment, plus ``_lake_file``, the partition file the row came from.

Incremental per partition file: ``raw._loaded_files`` records each loaded file and its SHA-256.
An unchanged file is skipped; a changed one has its rows replaced in one transaction; a file gone
from the lake has its rows removed. Rerunning the loader is therefore always safe.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.contract import LINEAGE_COLUMNS, TABLES

RAW_SCHEMA = "raw"
BOOKKEEPING = f"{RAW_SCHEMA}._loaded_files"

_PG_TYPES = {
    "text": "text",
    "timestamp": "timestamptz",
    "date": "date",
    "decimal": "numeric(18, 2)",
    "integer": "bigint",
    "boolean": "boolean",
}
_LINEAGE_PG = {"VARCHAR": "text", "BIGINT": "bigint", "TIMESTAMPTZ": "timestamptz"}
_ARROW_PG = {"string": "text", "int64": "bigint", "timestamp[us, tz=UTC]": "timestamptz"}


@dataclass(frozen=True)
class RawTable:
    """A raw table and the lake folder its partition files live in."""

    name: str
    folder: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]


def raw_tables() -> tuple[RawTable, ...]:
    from warehouse.identity_hashes import HASHED_TABLES

    tables = [
        RawTable(
            name=table.name,
            folder=("raw", table.source, table.name),
            columns=tuple((c.name, _PG_TYPES[c.type]) for c in table.columns)
            + tuple((name, _LINEAGE_PG[kind]) for name, kind in LINEAGE_COLUMNS),
        )
        for table in TABLES
    ]
    tables.append(
        RawTable(
            name="survey_sentiment",
            folder=("enriched", "survey_sentiment"),
            columns=(
                ("response_id", "text"),
                ("comment_sentiment", "double precision"),
                ("comment_sentiment_label", "text"),
                ("comment_topics", "text"),
                ("comment_effort_mentions", "bigint"),
                ("sentiment_model", "text"),
                ("_source_file", "text"),
                ("_interval_end", "timestamptz"),
            ),
        )
    )
    tables.append(
        RawTable(
            name="call_notes",
            folder=("enriched", "call_notes"),
            columns=(
                ("call_id", "text"),
                ("note_sentiment", "double precision"),
                ("note_sentiment_label", "text"),
                ("note_topics", "text"),
                ("note_effort_mentions", "bigint"),
                ("sentiment_model", "text"),
                ("_source_file", "text"),
                ("_interval_end", "timestamptz"),
            ),
        )
    )
    for hashed in HASHED_TABLES:
        tables.append(
            RawTable(
                name=hashed.name,
                folder=("enriched", hashed.name),
                columns=tuple((f.name, _ARROW_PG[str(f.type)]) for f in hashed.schema),
            )
        )
    return tuple(tables)


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def connection_params(env: Mapping[str, str] | None = None) -> dict[str, object]:
    from warehouse.dbt_runner import postgres_env

    values = postgres_env(env)
    return {
        "host": values["CX_PG_HOST"],
        "port": int(values["CX_PG_PORT"]),
        "user": values["CX_PG_USER"],
        "password": values["CX_PG_PASSWORD"],
        "dbname": values["CX_PG_DBNAME"],
    }


def connect(params: Mapping[str, object] | None = None):
    """The warehouse's PostgreSQL connection, from the store (the one door to the warehouse)."""
    from warehouse.store import postgres_connection

    return postgres_connection(params or connection_params())


def _checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_schema(connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"create schema if not exists {RAW_SCHEMA}")
        cursor.execute(
            f"""create table if not exists {BOOKKEEPING} (
                table_name text not null,
                file_name text not null,
                checksum text not null,
                row_count bigint not null,
                loaded_at timestamptz not null default now(),
                primary key (table_name, file_name)
            )"""
        )
        for table in raw_tables():
            columns = ", ".join(f"{name} {kind}" for name, kind in table.columns)
            cursor.execute(
                f"create table if not exists {RAW_SCHEMA}.{table.name} "
                f"({columns}, _lake_file text not null)"
            )
            cursor.execute(
                f"create index if not exists {table.name}__lake_file "
                f"on {RAW_SCHEMA}.{table.name} (_lake_file)"
            )
    connection.commit()


def _parquet_to_csv(path: Path, columns: tuple[tuple[str, str], ...], target: Path) -> int:
    """Write the file's rows as CSV in ``columns`` order (nulls as \\N); return the row count."""
    import duckdb

    with duckdb.connect() as duck:
        duck.execute("set TimeZone = 'UTC'")
        present = {
            row[0]
            for row in duck.execute("select name from parquet_schema(?)", [str(path)]).fetchall()
        }
        select = ", ".join(
            name if name in present else f"cast(null as varchar) as {name}" for name, _ in columns
        )
        duck.execute(
            f"copy (select {select} from read_parquet(?)) to '{target}' "
            "(format csv, header false, nullstr '\\N')",
            [str(path)],
        )
        return duck.execute("select count(*) from read_parquet(?)", [str(path)]).fetchone()[0]


def _load_file(connection, table: RawTable, path: Path, checksum: str) -> None:
    column_list = ", ".join(name for name, _ in table.columns)
    with tempfile.TemporaryDirectory(prefix="cx-load-") as work:
        csv_path = Path(work) / "rows.csv"
        row_count = _parquet_to_csv(path, table.columns, csv_path)
        with connection.cursor() as cursor:
            cursor.execute(
                f"delete from {RAW_SCHEMA}.{table.name} where _lake_file = %s", [path.name]
            )
            # The partition file name is filled in after COPY (COPY cannot set a constant).
            cursor.execute(
                f"alter table {RAW_SCHEMA}.{table.name} alter column _lake_file set default %s",
                [path.name],
            )
            with csv_path.open("r", encoding="utf-8") as handle:
                cursor.copy_expert(
                    f"copy {RAW_SCHEMA}.{table.name} ({column_list}) from stdin "
                    "with (format csv, null '\\N')",
                    handle,
                )
            cursor.execute(
                f"alter table {RAW_SCHEMA}.{table.name} alter column _lake_file drop default"
            )
            cursor.execute(
                f"""insert into {BOOKKEEPING} (table_name, file_name, checksum, row_count)
                    values (%s, %s, %s, %s)
                    on conflict (table_name, file_name) do update
                    set checksum = excluded.checksum, row_count = excluded.row_count,
                        loaded_at = now()""",
                [table.name, path.name, checksum, row_count],
            )
    connection.commit()


def load_lake(lake_dir: Path, params: Mapping[str, object] | None = None) -> LoadReport:
    """Bring schema ``raw`` in step with the lake's partition files; see the module docstring."""
    report = LoadReport()
    with connect(params) as connection:
        ensure_schema(connection)
        for table in raw_tables():
            folder = lake_dir.joinpath(*table.folder)
            files = sorted(folder.glob("interval=*.parquet")) if folder.is_dir() else []
            with connection.cursor() as cursor:
                cursor.execute(
                    f"select file_name, checksum from {BOOKKEEPING} where table_name = %s",
                    [table.name],
                )
                known = dict(cursor.fetchall())
            for path in files:
                checksum = _checksum(path)
                label = f"{table.name}/{path.name}"
                if known.get(path.name) == checksum:
                    report.unchanged.append(label)
                    continue
                _load_file(connection, table, path, checksum)
                report.loaded.append(label)
            gone = set(known) - {path.name for path in files}
            for name in sorted(gone):
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"delete from {RAW_SCHEMA}.{table.name} where _lake_file = %s", [name]
                    )
                    cursor.execute(
                        f"delete from {BOOKKEEPING} where table_name = %s and file_name = %s",
                        [table.name, name],
                    )
                connection.commit()
                report.removed.append(f"{table.name}/{name}")
    return report


def main() -> int:
    from config import load_settings

    report = load_lake(load_settings().lake_dir)
    print(
        f"loaded {len(report.loaded)}, unchanged {len(report.unchanged)}, "
        f"removed {len(report.removed)} partition files"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
