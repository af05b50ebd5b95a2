"""The Spark warehouse's session: one configuration for dbt (the profile's ``spark`` target) and
for the Python side, so that in one process both use the same local SparkSession.

Locally (and in the tests) Spark runs inside this process with ``local[2]``: the catalog is a
Derby metastore and the tables are Parquet folders, both under ``<data>/warehouse/``. Nothing is
fetched at run time (no ``spark.jars.packages``): PySpark's wheel carries every jar it needs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from config.settings import Settings

# Small on purpose: one machine with two cores, small partitions (Spark's default of 200 shuffle
# partitions spends most of a small build scheduling empty tasks).
DEFAULT_MASTER = "local[2]"
DEFAULT_SHUFFLE_PARTITIONS = "4"


def spark_dir(settings: Settings) -> Path:
    """Where the local Spark warehouse keeps its tables and its metastore."""
    return settings.duckdb_path.resolve().parent / "spark"


def spark_env(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``CX_SPARK_*`` variables the dbt profile's ``spark`` target reads."""
    env = os.environ if env is None else env
    root = spark_dir(settings)
    return {
        "CX_SPARK_METHOD": env.get("CX_SPARK_METHOD") or "session",
        "CX_SPARK_HOST": env.get("CX_SPARK_HOST") or "NA",
        "CX_SPARK_PORT": env.get("CX_SPARK_PORT") or "10000",
        "CX_SPARK_SCHEMA": env.get("CX_SPARK_SCHEMA") or "analytics",
        "CX_SPARK_MASTER": env.get("CX_SPARK_MASTER") or DEFAULT_MASTER,
        "CX_SPARK_SHUFFLE_PARTITIONS": env.get("CX_SPARK_SHUFFLE_PARTITIONS")
        or DEFAULT_SHUFFLE_PARTITIONS,
        "CX_SPARK_WAREHOUSE_DIR": str(root / "tables"),
        "CX_SPARK_METASTORE_URL": f"jdbc:derby:;databaseName={root / 'metastore'};create=true",
        # Derby writes its log in the working folder unless told where.
        "CX_SPARK_DRIVER_JAVA_OPTIONS": f"-Dderby.stream.error.file={root / 'derby.log'}",
    }


def session_conf(settings: Settings) -> dict[str, str]:
    """The session's configuration, as the profile's ``server_side_parameters`` give it."""
    env = spark_env(settings)
    return {
        "spark.master": env["CX_SPARK_MASTER"],
        "spark.sql.shuffle.partitions": env["CX_SPARK_SHUFFLE_PARTITIONS"],
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": env["CX_SPARK_WAREHOUSE_DIR"],
        "spark.hadoop.javax.jdo.option.ConnectionURL": env["CX_SPARK_METASTORE_URL"],
        "spark.driver.extraJavaOptions": env["CX_SPARK_DRIVER_JAVA_OPTIONS"],
        "spark.ui.enabled": "false",
        # `create table` without `using` makes a Parquet table, not a Hive text one.
        "spark.sql.legacy.createHiveTableByDefault": "false",
    }


def session(settings: Settings):
    """The process's SparkSession (made with ``session_conf`` if there is none yet; dbt-spark's
    session method then finds and reuses it)."""
    from pyspark.sql import SparkSession

    spark_dir(settings).mkdir(parents=True, exist_ok=True)
    # Python UDFs (MLflow's scoring UDF) run in this interpreter's environment, not in whatever
    # `python3` is first on PATH (the SparkContext reads the variable as it starts).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.enableHiveSupport()
    for name, value in session_conf(settings).items():
        builder = builder.config(name, value)
    return builder.getOrCreate()


# Portable column types (the Python-owned tables' declarations) in Spark's words, and back.
_SPARK_TYPES = {
    "varchar": "string",
    "double": "double",
    "integer": "int",
    "bigint": "bigint",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
_PORTABLE = {spark: portable for portable, spark in _SPARK_TYPES.items()}


def spark_sql(sql: str, params=()) -> tuple[str, dict[str, object]]:
    """DuckDB-dialect SQL as Spark runs it, with its ``$1``/``$name`` parameters as Spark's
    named markers (``:p1``, ``:name``) and their values."""
    import re
    from collections.abc import Mapping

    import sqlglot

    translated = ";\n".join(sqlglot.transpile(sql, read="duckdb", write="spark"))
    if isinstance(params, Mapping):
        return translated, dict(params)
    translated = re.sub(r":(\d+)\b", r":p\1", translated)
    return translated, {f"p{i}": value for i, value in enumerate(params, 1)}


class SparkStore:
    """The Spark warehouse: the marts' schema (``CX_SPARK_SCHEMA``) is the current database, so
    unqualified names are the marts', as on the other engines.

    Spark's Parquet tables have no transactions and no row-level delete. A writer therefore
    keeps each table it touches as a DataFrame of the table's new state (deletes are filters,
    inserts unions) and changes nothing until the ``with`` block ends without an error: then
    each table's new state is written whole to ``<table>__cx_next`` and swapped in by two
    renames (``<table>`` to ``<table>__cx_last``, ``__cx_next`` to ``<table>``), and the last
    state is dropped. An error in the block, or in writing a new state, leaves every table as it
    was. A crash between the two renames leaves the last good rows in ``<table>__cx_last``, and
    the next writer or read puts them back. Tables are swapped one after another: a writer that
    fails while swapping its second table has already swapped the first.
    """

    target = "spark"

    def __init__(self, settings: Settings, schema: str | None = None):
        self.settings = settings
        self.schema = schema or spark_env(settings)["CX_SPARK_SCHEMA"]

    def _spark(self):
        spark = session(self.settings)
        spark.sql(f"create database if not exists {self.schema}")
        spark.catalog.setCurrentDatabase(self.schema)
        return spark

    def _name(self, table: str) -> str:
        from warehouse import tables

        entry = tables.registry().get(table)
        schema = self.schema if entry is None or entry.schema == "main" else entry.schema
        return f"{schema}.{table}"

    def read(self, sql: str, params=()):
        from warehouse.store import arrow_to_frame

        spark = self._spark()
        text, args = spark_sql(sql, params)
        return arrow_to_frame(spark.sql(text, args=args or None).toArrow())

    def exists(self, table: str) -> bool:
        return bool(self.columns(table))

    def columns(self, table: str) -> list[str]:
        spark = self._spark()
        name = self._name(table)
        _recover(spark, name)
        if not spark.catalog.tableExists(name):
            return []
        return [field.name for field in spark.table(name).schema.fields]

    def writer(self, owner: str):
        from contextlib import contextmanager

        @contextmanager
        def transaction():
            writer = _SparkWriter(owner, self._spark(), self)
            try:
                yield writer
            finally:
                writer.drop_views()
            writer.commit()

        return transaction()

    def publish(self, **options) -> str | None:
        """Nothing to copy: analysts read the Spark catalog itself (the Thrift server)."""
        return None

    def compact(self, tables=()) -> None:
        """Nothing to do: every write rewrites a table's files whole, so no deleted row's bytes
        stay behind."""


def _recover(spark, name: str) -> None:
    """Put back a table whose swap was cut between its two renames (``SparkStore``)."""
    last = f"{name}__cx_last"
    if not spark.catalog.tableExists(name) and spark.catalog.tableExists(last):
        spark.sql(f"alter table {last} rename to {name}")


def _writer_base():
    from warehouse.store import _WriterBase

    return _WriterBase


class _SparkWriter(_writer_base()):
    def __init__(self, owner: str, spark, store: SparkStore):
        super().__init__(owner)
        self.spark = spark
        self.store = store
        self.pending: dict[str, object] = {}  # table -> DataFrame of its new state
        self.views: set[str] = set()

    def _schema(self, entry) -> str:
        return self.store.schema if entry.schema == "main" else entry.schema

    def _name(self, table: str) -> str:
        return self.store._name(table)

    def _type(self, kind: str) -> str:
        return _SPARK_TYPES.get(kind, kind)

    def _present_columns(self, entry) -> dict[str, str]:
        name = self._name(entry.name)
        if entry.name in self.pending:
            schema = self.pending[entry.name].schema
        else:
            _recover(self.spark, name)
            if not self.spark.catalog.tableExists(name):
                return {}
            schema = self.spark.table(name).schema
        return {
            field.name: _PORTABLE.get(field.dataType.simpleString(), field.dataType.simpleString())
            for field in schema.fields
        }

    def _execute(self, sql: str, params=()) -> int:
        """Statements that change no rows (create, alter); rows change through ``pending``."""
        from warehouse.store import StoreError

        if sql.lstrip().lower().startswith("delete"):
            raise StoreError("the Spark writer deletes through filters, not statements")
        self.spark.sql(sql)
        return 0

    def ensure(self, table: str, columns) -> None:
        from pyspark.sql import functions as F

        super().ensure(table, columns)
        frame = self.pending.get(table)
        if frame is not None:
            for column, kind in columns.items():
                if column not in frame.columns:
                    frame = frame.withColumn(column, F.lit(None).cast(self._type(kind)))
            self.pending[table] = frame

    def _state(self, table: str):
        if table not in self.pending:
            self.pending[table] = self.spark.table(self._name(table))
        return self.pending[table]

    def _remove(self, table: str, condition) -> int:
        """Filter out the rows where ``condition`` is true (a null is not a match, as in SQL)."""
        from pyspark.sql import functions as F

        state = self._state(table)
        matched = F.coalesce(condition, F.lit(False))
        removed = state.filter(matched).count()
        if removed:
            self.pending[table] = state.filter(~matched)
        return removed

    def delete(self, table: str, where=None) -> int:
        from functools import reduce

        from pyspark.sql import functions as F

        from warehouse.store import _check_owner

        _check_owner(self.owner, table)
        if not where:
            condition = F.lit(True)
        else:
            condition = reduce(
                lambda left, right: left & right,
                [F.col(column) == F.lit(value) for column, value in where.items()],
            )
        return self._remove(table, condition)

    def delete_keys(self, table: str, column: str, values) -> int:
        from pyspark.sql import functions as F

        from warehouse.store import _check_owner

        _check_owner(self.owner, table)
        if not values:
            return 0
        return self._remove(table, F.col(column).cast("string").isin([str(v) for v in values]))

    def _ingest(self, table: str, rows) -> None:
        from pyspark.sql import functions as F

        state = self._state(table)
        incoming = self.spark.createDataFrame(rows)
        incoming = incoming.select(
            *[
                (
                    F.col(field.name).cast(field.dataType)
                    if field.name in incoming.columns
                    else F.lit(None).cast(field.dataType)
                ).alias(field.name)
                for field in state.schema.fields
            ]
        )
        self.pending[table] = state.unionByName(incoming)

    def _ingest_temp(self, name: str, rows) -> None:  # pragma: no cover - delete_keys filters
        self.spark.createDataFrame(rows).createOrReplaceTempView(name)

    def read(self, sql: str, params=()):
        """A query that sees this writer's own changes: each table it changed is, for the query,
        a temporary view of its new state under the table's name."""
        from warehouse.store import arrow_to_frame

        for table, frame in self.pending.items():
            frame.createOrReplaceTempView(table)
            self.views.add(table)
        text, args = spark_sql(sql, params)
        return arrow_to_frame(self.spark.sql(text, args=args or None).toArrow())

    def drop_views(self) -> None:
        for view in self.views:
            self.spark.catalog.dropTempView(view)
        self.views.clear()

    def commit(self) -> None:
        for table, frame in self.pending.items():
            name = self._name(table)
            staged, last = f"{name}__cx_next", f"{name}__cx_last"
            self.spark.sql(f"drop table if exists {staged}")
            frame.write.format("parquet").saveAsTable(staged)
            self.spark.sql(f"drop table if exists {last}")
            self.spark.sql(f"alter table {name} rename to {last}")
            self.spark.sql(f"alter table {staged} rename to {name}")
            self.spark.sql(f"drop table {last}")
        self.pending.clear()
