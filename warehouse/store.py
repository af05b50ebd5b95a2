"""The store: the one door to the warehouse, DuckDB or PostgreSQL (or Spark:
``warehouse.spark.SparkStore``, the same verbs).

Every step that reads or writes warehouse tables from Python is given a ``Store`` (the pipeline
opens one with ``open_store(settings)``; a test passes its own, the way Dagster resources are
swapped). It offers three verbs:

- ``read(sql, params)``: a query's rows as a DataFrame, the same dtypes on both engines
  (nullable integers as ``Int64``, booleans as ``boolean``, decimals as ``float64``, dates and
  timestamps as ``datetime64``);
- ``writer(owner)``: a transaction that writes only the tables the registry
  (``warehouse/tables.yml``) gives to ``owner``, committed whole at the end of the ``with``
  block, or not at all;
- ``publish()``: refresh what analysts read (the published DuckDB copy; on PostgreSQL the grants
  already do it).

SQL is written once, in DuckDB's dialect, with ``$1``-style parameters; the PostgreSQL store
translates it with sqlglot. Unqualified names are the marts' schema on both engines (``main`` on
DuckDB, ``CX_PG_SCHEMA`` on PostgreSQL).

Connections are short: each ``read`` and each ``writer`` opens and closes its own, since DuckDB
lets one process write a file at a time and the pipeline's steps run in separate processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import pandas as pd
import pyarrow as pa

from warehouse import tables

# Portable column types, as the Python-owned tables declare them, and their PostgreSQL names.
_PG_TYPES = {
    "varchar": "text",
    "double": "double precision",
    "integer": "integer",
    "bigint": "bigint",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
}
_ARROW_TYPES = {
    "varchar": pa.string(),
    "double": pa.float64(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


# Column types as the engines' information_schema names them, back to the portable names.
_PORTABLE = {
    "varchar": "varchar",
    "text": "varchar",
    "character varying": "varchar",
    "double": "double",
    "double precision": "double",
    "integer": "integer",
    "bigint": "bigint",
    "boolean": "boolean",
    "date": "date",
    "timestamp with time zone": "timestamp",
}


# Query parameters: positional for ``$1``, ``$2``..., or by name for ``$name``.
Params = Sequence | Mapping[str, object]


class StoreError(RuntimeError):
    """A write outside the writer's own tables, or a table the store cannot find."""


class Writer(Protocol):
    def ensure(self, table: str, columns: Mapping[str, str]) -> None: ...
    def insert(self, table: str, frame: pd.DataFrame) -> int: ...
    def delete(self, table: str, where: Mapping[str, object] | None = None) -> int: ...
    def delete_keys(self, table: str, column: str, values: Sequence[str]) -> int: ...
    def replace(self, table: str, frame: pd.DataFrame, where: Mapping[str, object]) -> int: ...
    def read(self, sql: str, params: Params = ()) -> pd.DataFrame: ...
    def columns(self, table: str) -> list[str]: ...


class Store(Protocol):
    target: str

    def read(self, sql: str, params: Params = ()) -> pd.DataFrame: ...
    def exists(self, table: str) -> bool: ...
    def columns(self, table: str) -> list[str]: ...
    def writer(self, owner: str) -> Iterator[Writer]: ...
    def publish(self) -> str | None: ...
    def compact(self, tables: Sequence[str]) -> None: ...


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow rows as DuckDB's ``fetchdf`` gives them, whichever engine they came from: integers
    and booleans as numpy columns, or as pandas' nullable ``Int64``/``boolean`` when the column
    holds a null; decimals as ``float64``; dates and timestamps as ``datetime64[us]``."""
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if _is_pg_numeric(kind):
            # PostgreSQL's driver hands NUMERIC over as its text (an opaque extension type).
            storage = [chunk.storage for chunk in column.chunks]
            column = pa.chunked_array(storage, type=kind.storage_type).cast(pa.float64())
        elif pa.types.is_decimal(kind):
            column = column.cast(pa.float64())
        elif pa.types.is_date(kind):
            column = column.cast(pa.timestamp("us"))
        elif pa.types.is_timestamp(kind):
            column = column.cast(pa.timestamp("us", tz=kind.tz))
        series = column.to_pandas()
        if column.null_count and pa.types.is_integer(column.type):
            series = column.to_pandas(types_mapper={column.type: pd.Int64Dtype()}.get)
        elif column.null_count and pa.types.is_boolean(column.type):
            series = column.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
        columns[name] = series
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))


def _is_pg_numeric(kind: pa.DataType) -> bool:
    return isinstance(kind, pa.BaseExtensionType) and getattr(kind, "type_name", None) == "numeric"


def _arrow_for(frame: pd.DataFrame, columns: Mapping[str, str] | None) -> pa.Table:
    """``frame`` as Arrow, cast to the declared column types when they are known."""
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    if not columns:
        return arrow
    schema = pa.schema(
        [
            pa.field(c, _ARROW_TYPES.get(columns.get(c, ""), arrow.schema.field(c).type))
            for c in arrow.column_names
        ]
    )
    return arrow.cast(schema, safe=False)


def _check_owner(owner: str, table: str) -> tables.Table:
    entry = tables.table(table)
    if entry.owner != owner:
        raise StoreError(
            f"{owner} may not write {table}: the table registry gives it to {entry.owner} "
            f"({tables.REGISTRY_FILE})"
        )
    return entry


def _where(where: Mapping[str, object] | None, start: int = 1) -> tuple[str, list]:
    if not where:
        return "", []
    clauses = [f"{column} = ${i}" for i, column in enumerate(where, start)]
    return " where " + " and ".join(clauses), list(where.values())


class _WriterBase:
    """The verbs both engines share, over ``_execute``/``_fetch``/``_ingest``."""

    def __init__(self, owner: str):
        self.owner = owner
        self.declared: dict[str, Mapping[str, str]] = {}

    def _name(self, table: str) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def ensure(self, table: str, columns: Mapping[str, str]) -> None:
        """Create ``table`` with ``columns`` (portable types) if missing; add the columns that
        were declared after it was created (null in its earlier rows)."""
        entry = _check_owner(self.owner, table)
        self._execute(f"create schema if not exists {self._schema(entry)}")
        body = ", ".join(f"{c} {self._type(t)}" for c, t in columns.items())
        self._execute(f"create table if not exists {self._name(table)} ({body})")
        present = set(self._present_columns(entry))
        for column, kind in columns.items():
            if column not in present:
                self._execute(
                    f"alter table {self._name(table)} add column {column} {self._type(kind)}"
                )

    def delete(self, table: str, where: Mapping[str, object] | None = None) -> int:
        _check_owner(self.owner, table)
        clause, params = _where(where)
        return self._execute(f"delete from {self._name(table)}{clause}", params)

    def delete_keys(self, table: str, column: str, values: Sequence[str]) -> int:
        """Delete the rows whose ``column`` is one of ``values`` (erasure)."""
        _check_owner(self.owner, table)
        if not values:
            return 0
        self._ingest_temp("cx_erase_keys", pa.table({"key": pa.array([str(v) for v in values])}))
        return self._execute(
            f"delete from {self._name(table)} where cast({column} as varchar) in "
            "(select key from cx_erase_keys)"
        )

    def insert(self, table: str, frame: pd.DataFrame) -> int:
        _check_owner(self.owner, table)
        if frame.empty:
            return 0
        if table not in self.declared:
            present = self._present_columns(tables.table(table))
            self.declared[table] = {c: _PORTABLE.get(t, t) for c, t in present.items()}
        self._ingest(table, _arrow_for(frame, self.declared[table]))
        return len(frame)

    def replace(self, table: str, frame: pd.DataFrame, where: Mapping[str, object]) -> int:
        """Replace the rows matching ``where`` (all rows when empty) with ``frame``."""
        self.delete(table, where)
        return self.insert(table, frame)

    def columns(self, table: str) -> list[str]:
        """``table``'s columns as this transaction sees them; empty when it does not exist."""
        return list(self._present_columns(tables.table(table)))


class DuckDBStore:
    """The DuckDB warehouse file; reads may come from the analysts' published copy."""

    target = "duckdb"

    def __init__(self, path: Path, read_path: Path | None = None, memory_limit: str | None = None):
        self.path = Path(path)
        self.read_path = Path(read_path) if read_path else self.path
        self.memory_limit = memory_limit

    def _connect(self, path: Path, read_only: bool):
        import duckdb

        if read_only and not path.exists():
            raise FileNotFoundError(
                f"no warehouse at {path}: build it first (`make run`, or `python -m warehouse build`)"
            )
        config = {"memory_limit": self.memory_limit} if self.memory_limit else {}
        return duckdb.connect(str(path), read_only=read_only, config=config)

    def read(self, sql: str, params: Params = ()) -> pd.DataFrame:
        with self._connect(self.read_path, read_only=True) as con:
            return con.execute(sql, _duckdb_params(params)).fetchdf()

    def exists(self, table: str) -> bool:
        return bool(self.columns(table))

    def columns(self, table: str) -> list[str]:
        if not self.read_path.exists():
            return []
        entry = tables.registry().get(table)
        schema = entry.schema if entry else "main"
        with self._connect(self.read_path, read_only=True) as con:
            return [
                row[0]
                for row in con.execute(
                    "select column_name from information_schema.columns where table_schema = $1 "
                    "and table_name = $2 order by ordinal_position",
                    [schema, table],
                ).fetchall()
            ]

    @contextmanager
    def writer(self, owner: str) -> Iterator[Writer]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect(self.path, read_only=False) as con:
            con.execute("begin transaction")
            try:
                yield _DuckDBWriter(owner, con)
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")

    def publish(self, **options) -> str | None:
        from warehouse.publish import publish_duckdb

        return str(publish_duckdb(self.path, **options))

    def compact(self, tables: Sequence[str] = ()) -> None:
        """Leave no bytes of deleted rows in the file (erasure): DuckDB keeps a deleted row's
        bytes in its row group until the group is rewritten, so the whole file is copied with
        only its live rows and renamed over the old one. ``tables`` is not needed here."""
        import os
        import shutil
        import stat
        import tempfile

        import duckdb

        if not self.path.exists():
            return
        work = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=".tmp-compact-"))
        fresh = work / self.path.name
        try:
            with duckdb.connect() as con:
                con.execute(f"attach '{self.path}' as cx_old (read_only)")
                con.execute(f"attach '{fresh}' as cx_new")
                con.execute("copy from database cx_old to cx_new")
                con.execute("detach cx_new")
                con.execute("detach cx_old")
            os.chmod(fresh, stat.S_IMODE(os.stat(self.path).st_mode))
            os.replace(fresh, self.path)
            Path(f"{self.path}.wal").unlink(missing_ok=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


class _DuckDBWriter(_WriterBase):
    def __init__(self, owner: str, con):
        super().__init__(owner)
        self.con = con

    def _schema(self, entry: tables.Table) -> str:
        return entry.schema

    def _name(self, table: str) -> str:
        entry = tables.table(table)
        return table if entry.schema == "main" else f"{entry.schema}.{table}"

    def _type(self, kind: str) -> str:
        return kind

    def _present_columns(self, entry: tables.Table) -> dict[str, str]:
        rows = self.con.execute(
            "select column_name, lower(data_type) from information_schema.columns "
            "where table_schema = $1 and table_name = $2 order by ordinal_position",
            [entry.schema, entry.name],
        ).fetchall()
        return dict(rows)

    def _execute(self, sql: str, params: Sequence = ()) -> int:
        """Run one statement; a ``delete`` returns how many rows it removed."""
        cursor = self.con.execute(sql, list(params))
        return int(cursor.fetchone()[0]) if sql.startswith("delete") else 0

    def _ingest(self, table: str, rows: pa.Table) -> None:
        self.con.register("cx_incoming_rows", rows)
        names = ", ".join(rows.column_names)
        self.con.execute(
            f"insert into {self._name(table)} ({names}) select {names} from cx_incoming_rows"
        )
        self.con.unregister("cx_incoming_rows")

    def _ingest_temp(self, name: str, rows: pa.Table) -> None:
        self.con.register(f"{name}_rows", rows)
        self.con.execute(f"create or replace temp table {name} as select * from {name}_rows")
        self.con.unregister(f"{name}_rows")

    def read(self, sql: str, params: Params = ()) -> pd.DataFrame:
        return self.con.execute(sql, _duckdb_params(params)).fetchdf()


def _duckdb_params(params: Params):
    return dict(params) if isinstance(params, Mapping) else list(params)


def _postgres_sql(sql: str, params: Params = ()) -> tuple[str, list | None]:
    """DuckDB-dialect SQL as PostgreSQL runs it, with its parameters as a ``$1``-style list."""
    import re

    import sqlglot

    translated = ";\n".join(sqlglot.transpile(sql, read="duckdb", write="postgres"))
    # sqlglot writes $1 and $name as psycopg's %(1)s and %(name)s; the ADBC driver takes $1.
    if isinstance(params, Mapping):
        names: list[str] = []

        def number(match: re.Match) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        translated = re.sub(r"%\((\w+)\)s", number, translated)
        return translated, [params[name] for name in names] or None
    return re.sub(r"%\((\d+)\)s", r"$\1", translated), list(params) or None


class PostgresStore:
    """The PostgreSQL warehouse: the marts' schema first on the search path."""

    target = "postgres"

    def __init__(self, uri: str, schema: str):
        self.uri = uri
        self.schema = schema

    @contextmanager
    def _connect(self):
        from adbc_driver_postgresql import dbapi

        with dbapi.connect(self.uri) as con:
            with con.cursor() as cursor:
                cursor.execute(f'set search_path to "{self.schema}", public')
            yield con

    def read(self, sql: str, params: Params = ()) -> pd.DataFrame:
        with self._connect() as con, con.cursor() as cursor:
            cursor.execute(*_postgres_sql(sql, params))
            return arrow_to_frame(cursor.fetch_arrow_table())

    def exists(self, table: str) -> bool:
        return bool(self.columns(table))

    def _schema_of(self, table: str) -> str:
        entry = tables.registry().get(table)
        return self.schema if entry is None or entry.schema == "main" else entry.schema

    def columns(self, table: str) -> list[str]:
        with self._connect() as con, con.cursor() as cursor:
            cursor.execute(
                "select column_name from information_schema.columns where table_schema = $1 "
                "and table_name = $2 order by ordinal_position",
                [self._schema_of(table), table],
            )
            return [row[0] for row in cursor.fetchall()]

    @contextmanager
    def writer(self, owner: str) -> Iterator[Writer]:
        with self._connect() as con:
            writer = _PostgresWriter(owner, con, self)
            try:
                yield writer
            except BaseException:
                con.rollback()
                raise
            writer.analyze()
            writer.grant()
            con.commit()

    def publish(self, **options) -> str | None:
        """Nothing to copy: analysts read PostgreSQL itself, as the grants allow."""
        return None

    def compact(self, tables: Sequence[str] = ()) -> None:
        """``VACUUM`` the named tables (outside a transaction, as it must run), so the space of
        their deleted rows is reclaimed rather than left until autovacuum comes by."""
        from adbc_driver_postgresql import dbapi

        with dbapi.connect(self.uri, autocommit=True) as con, con.cursor() as cursor:
            for table in tables:
                cursor.execute(f'vacuum "{self._schema_of(table)}".{table}')


class _PostgresWriter(_WriterBase):
    def __init__(self, owner: str, con, store: PostgresStore):
        super().__init__(owner)
        self.con = con
        self.store = store
        self.ingested: set[str] = set()

    def _schema(self, entry: tables.Table) -> str:
        return f'"{self.store.schema}"' if entry.schema == "main" else entry.schema

    def _name(self, table: str) -> str:
        return f'"{self.store._schema_of(table)}".{table}'

    def _type(self, kind: str) -> str:
        return _PG_TYPES.get(kind, kind)

    def _present_columns(self, entry: tables.Table) -> dict[str, str]:
        with self.con.cursor() as cursor:
            cursor.execute(
                "select column_name, lower(data_type) from information_schema.columns "
                "where table_schema = $1 and table_name = $2 order by ordinal_position",
                [self.store._schema_of(entry.name), entry.name],
            )
            return dict(cursor.fetchall())

    def _execute(self, sql: str, params: Sequence = ()) -> int:
        """Run one statement; a ``delete`` returns how many rows it removed."""
        with self.con.cursor() as cursor:
            cursor.execute(sql, list(params) or None)
            return max(cursor.rowcount, 0)

    def _ingest(self, table: str, rows: pa.Table) -> None:
        with self.con.cursor() as cursor:
            cursor.adbc_ingest(
                table, rows, mode="append", db_schema_name=self.store._schema_of(table)
            )
        self.ingested.add(table)

    def analyze(self) -> None:
        """Statistics for the tables this writer filled, before the next step reads them: a
        table never analysed is planned blind (the programs' member query on fresh scores took
        two minutes at 20,000 members instead of one second) until autovacuum comes by."""
        with self.con.cursor() as cursor:
            for table in sorted(self.ingested):
                cursor.execute(f"analyze {self._name(table)}")

    def _ingest_temp(self, name: str, rows: pa.Table) -> None:
        with self.con.cursor() as cursor:
            cursor.execute(f"drop table if exists {name}")
            cursor.adbc_ingest(name, rows, mode="create", temporary=True)

    def read(self, sql: str, params: Params = ()) -> pd.DataFrame:
        with self.con.cursor() as cursor:
            cursor.execute(*_postgres_sql(sql, params))
            return arrow_to_frame(cursor.fetch_arrow_table())

    def grant(self) -> None:
        """Give the tables this writer declared to the roles the registry names, when those
        roles exist (dbt's ``apply_access_grants`` creates them)."""
        with self.con.cursor() as cursor:
            cursor.execute("select rolname from pg_roles")
            existing = {row[0] for row in cursor.fetchall()}
            for table in self.declared:
                for reader in tables.table(table).readers:
                    role = tables.ACCESS_ROLES[reader]
                    if role in existing:
                        cursor.execute(f"grant select on {self._name(table)} to {role}")


@contextmanager
def postgres_connection(params: Mapping[str, object]) -> Iterator[object]:
    """A plain psycopg2 connection to the PostgreSQL warehouse, for dbt's bulk loader of the raw
    lake copy (``warehouse/load_postgres.py``: ``COPY`` from files), which the store's verbs do
    not cover. Closed at the end of the block."""
    import psycopg2

    connection = psycopg2.connect(**params)
    try:
        yield connection
    finally:
        connection.close()


def postgres_uri(settings) -> str:
    from urllib.parse import quote

    password = f":{quote(settings.pg_password, safe='')}" if settings.pg_password else ""
    return (
        f"postgresql://{quote(settings.pg_user, safe='')}{password}@{settings.pg_host}:"
        f"{settings.pg_port}/{settings.pg_dbname}"
    )


def open_store(settings, snapshot: bool = False) -> Store:
    """The store for ``settings.warehouse_target``. ``snapshot`` reads the analysts' published
    copy on DuckDB when there is one, so a long read (training) never holds the live file that
    a build may be writing."""
    if settings.warehouse_target == "postgres":
        return PostgresStore(postgres_uri(settings), settings.pg_schema)
    if settings.warehouse_target == "spark":
        from warehouse.spark import SparkStore

        return SparkStore(settings)
    read_path = None
    if snapshot:
        from warehouse.publish import published_path

        copy = published_path(settings.duckdb_path)
        read_path = copy if copy.exists() else None
    return DuckDBStore(settings.duckdb_path, read_path, settings.duckdb_memory_limit)
