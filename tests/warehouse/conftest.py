"""Session fixtures: one fixture lake, one DuckDB build and (when the server is up) one
PostgreSQL build per test session, shared by every warehouse test."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from warehouse_fixture_lake import FIXTURE_VARS, fixture_settings, write_lake

from config.settings import Settings


@dataclass(frozen=True)
class Build:
    settings: Settings
    result: object
    target_path: Path


@pytest.fixture(scope="session")
def fixture_lake(tmp_path_factory) -> Path:
    return write_lake(tmp_path_factory.mktemp("warehouse") / "lake")


@pytest.fixture(scope="session")
def duckdb_build(fixture_lake) -> Build:
    from warehouse import dbt_runner
    from warehouse.enrich import enrich_lake

    settings = fixture_settings(fixture_lake.parent, fixture_lake)
    enrich_lake(settings)
    target_path = fixture_lake.parent / "dbt-target-duckdb"
    # The fixture's history is two months: monthly cutoffs, as the tests name them, rather than
    # the weekly grid a short history gets by default (pit_weekly_below_days).
    result = dbt_runner.build(
        settings, target="duckdb", target_path=target_path, dbt_vars=FIXTURE_VARS
    )
    return Build(settings, result, target_path)


@pytest.fixture(scope="session")
def duckdb_connection(duckdb_build):
    import duckdb

    with duckdb.connect(str(duckdb_build.settings.duckdb_path), read_only=True) as connection:
        yield connection


def _postgres_is_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_database(monkeypatch_session) -> dict[str, object]:
    """A throwaway database on the local server (scripts/postgres.sh), dropped afterwards."""
    import psycopg2

    from warehouse.load_postgres import connection_params

    params = connection_params()
    if not _postgres_is_up(str(params["host"]), int(params["port"])):
        pytest.skip(
            f"no PostgreSQL server at {params['host']}:{params['port']} "
            "(start it with scripts/postgres.sh start)"
        )
    name = f"cx_wh_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(**params)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"create database {name}")
    monkeypatch_session.setenv("CX_PG_DBNAME", name)
    yield {**params, "dbname": name}
    with admin.cursor() as cursor:
        cursor.execute(f"drop database if exists {name} with (force)")
    admin.close()


@pytest.fixture(scope="session")
def monkeypatch_session():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="session")
def postgres_build(fixture_lake, duckdb_build, postgres_database) -> Build:
    import dataclasses

    from warehouse import dbt_runner
    from warehouse.load_postgres import load_lake

    # Enrichment already written by the DuckDB build; dbt reads the database from the settings.
    settings = dataclasses.replace(
        duckdb_build.settings,
        pg_host=str(postgres_database["host"]),
        pg_port=int(postgres_database["port"]),
        pg_user=str(postgres_database["user"]),
        pg_password=str(postgres_database.get("password") or ""),
        pg_dbname=str(postgres_database["dbname"]),
    )
    load_lake(settings.lake_dir, postgres_database)
    target_path = fixture_lake.parent / "dbt-target-postgres"
    result = dbt_runner.build(
        settings, target="postgres", target_path=target_path, dbt_vars=FIXTURE_VARS
    )
    return Build(settings, result, target_path)


@pytest.fixture(scope="session")
def postgres_connection(postgres_build, postgres_database):
    import psycopg2

    connection = psycopg2.connect(**postgres_database)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def spark_settings(fixture_lake) -> Settings:
    """The fixture warehouse's settings (duckdb_build's), without building DuckDB first."""
    return fixture_settings(fixture_lake.parent, fixture_lake)


@pytest.fixture(scope="session")
def spark_session(spark_settings):
    """The test session's one SparkSession (local[2], 4 shuffle partitions), its catalog and
    tables under the fixture warehouse's folder. A process has one SparkSession: the Spark build
    and every Spark store test share it (each store test in a schema of its own)."""
    pytest.importorskip(
        "pyspark", reason="make install-dev installs pyspark (requirements-spark.txt)"
    )
    from warehouse.spark import session

    spark = session(spark_settings)
    yield spark
    spark.stop()


@pytest.fixture(scope="session")
def spark_build(fixture_lake, duckdb_build, spark_session) -> Build:
    """The fixture lake built on Spark with ``dbt run``: the data tests run on DuckDB and
    PostgreSQL, and the marts are compared with DuckDB's row for row (test_spark_build.py)."""
    from warehouse import dbt_runner

    target_path = fixture_lake.parent / "dbt-target-spark"
    result = dbt_runner.run(
        duckdb_build.settings, target="spark", target_path=target_path, dbt_vars=FIXTURE_VARS
    )
    return Build(duckdb_build.settings, result, target_path)
