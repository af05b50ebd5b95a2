"""Fixtures for the programs tests: a programs file for small warehouses, and two real cycles
on a simulated warehouse (the first through ``cycle.run``, the second through the DAG's own task
bodies, called in the DAG's order), on each warehouse: DuckDB and PostgreSQL (the local server of
scripts/postgres.sh; its runs are skipped when it is down, and fail under CI)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from program_warehouse import FIRST_CYCLE, SECOND_CYCLE, advance, build

from config import load_settings
from config.settings import Settings

ENGINES = ("duckdb", "postgres")
_PG_VARIABLES = ("CX_PG_HOST", "CX_PG_PORT", "CX_PG_USER", "CX_PG_PASSWORD", "CX_PG_DBNAME")

# The shipped programs, with a larger control share and one response window, so a warehouse of
# 400 members has control groups big enough to measure and the first cycle's window passes.
TEST_PROGRAMS = """
defaults:
  control_share: 0.3
  response_window_days: 60
  contact:
    opt_in_required: true
    exclude_contacted_within_days: 30
programs:
  - name: service_recovery
    priority: 1
    eligibility: >
      unresolved_calls_14d > 0 or escalated_calls_14d > 0 or detractor_responses_14d > 0
      or negative_comments_14d > 0 or segment_dropped
    contact: {opt_in_required: false, exclude_contacted_within_days: 14}
  - name: win_back
    priority: 2
    eligibility: risk_band in ('high', 'medium') and predicted_segment = 'Disengaged'
  - name: nurture
    priority: 3
    eligibility: predicted_segment = 'Swing'
  - name: advocates
    priority: 4
    eligibility: predicted_segment = 'Engaged' and risk_band = 'low'
"""


@dataclass
class Cycles:
    settings: Settings
    store: object
    first_run: dict
    second_run: dict[str, object]
    env: dict[str, str]  # the variables the cycles ran with (for the CLI)


@pytest.fixture(scope="session")
def postgres_databases(postgres_url):
    """Makes throwaway databases on the local server (one per warehouse the tests build),
    dropped at the end of the session: ``new()`` returns the ``CX_PG_*`` variables of one."""
    import sqlalchemy as sa

    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def new() -> dict[str, str]:
        name = f"cx_programs_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'create database "{name}"')
        made.append(name)
        url = sa.engine.make_url(postgres_url)
        return {
            "CX_WAREHOUSE_TARGET": "postgres",
            "CX_PG_HOST": url.host or "127.0.0.1",
            "CX_PG_PORT": str(url.port or 5432),
            "CX_PG_USER": url.username or "",
            "CX_PG_PASSWORD": url.password or "",
            "CX_PG_DBNAME": name,
        }

    yield new
    with admin.connect() as connection:
        for name in made:
            connection.exec_driver_sql(f'drop database if exists "{name}" with (force)')
    admin.dispose()


def warehouse_env(request, engine: str) -> dict[str, str]:
    """The variables that point a test's settings at a new warehouse on ``engine`` (DuckDB: the
    default file under ``CX_DATA_DIR``)."""
    if engine == "duckdb":
        return {}
    return request.getfixturevalue("postgres_databases")()


def patch_warehouse(patch: pytest.MonkeyPatch, root: Path, env: dict[str, str]) -> None:
    """Point the environment at ``root`` and the warehouse of ``env``, and nowhere else."""
    patch.setenv("CX_DATA_DIR", str(root / "data"))
    for name in ("CX_DUCKDB_PATH", "CX_EXPORTS_DIR", "CX_REPORTS_DIR", "CX_WAREHOUSE_TARGET"):
        patch.delenv(name, raising=False)
    for name in _PG_VARIABLES:
        patch.delenv(name, raising=False)
    for name, value in env.items():
        if value:
            patch.setenv(name, value)


@pytest.fixture(scope="session")
def scratch_postgres(postgres_databases) -> dict[str, str]:
    """One database for the small tests: each empties it first (dropping a schema is much
    quicker than making a database)."""
    return postgres_databases()


@pytest.fixture(params=ENGINES)
def empty_store(request, tmp_path):
    """An empty warehouse on each engine, for tests that write a few rows of their own."""
    from warehouse.store import open_store

    env = request.getfixturevalue("scratch_postgres") if request.param == "postgres" else {}
    with pytest.MonkeyPatch.context() as patch:
        patch_warehouse(patch, tmp_path, env)
        settings = load_settings()
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    if request.param == "postgres":
        _empty_postgres(settings)
    return open_store(settings)


def _empty_postgres(settings) -> None:
    import psycopg2

    with (
        psycopg2.connect(
            host=settings.pg_host,
            port=settings.pg_port,
            user=settings.pg_user,
            password=settings.pg_password or None,
            dbname=settings.pg_dbname,
        ) as connection,
        connection.cursor() as cursor,
    ):
        for schema in (settings.pg_schema, "restricted"):
            cursor.execute(f'drop schema if exists "{schema}" cascade')


def run_dag_tasks(dag_id: str) -> dict[str, object]:
    """Call each task's Python body in dependency order, handing return values on as XCom does.

    ``dag.test()`` would add about a minute of Airflow start-up on this machine (the metadata
    database migration and per-task runtime); the DAG's wiring is checked in test_dag.py.
    """
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import XComArg

    from config.settings import REPO_ROOT

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[dag_id]
    results: dict[str, object] = {}
    pending = list(dag.topological_sort())
    for task in pending:
        args = [
            results[arg.operator.task_id] if isinstance(arg, XComArg) else arg
            for arg in task.op_args
        ]
        results[task.task_id] = task.python_callable(*args)
    return results


@pytest.fixture(scope="session", params=ENGINES)
def two_cycles(request, tmp_path_factory) -> Cycles:
    """Cycle 1 on 2026-04-30 (``cycle.run``), then two months in which win-back's treated
    members buy again far more often, then cycle 2 on 2026-06-30 through ``run_programs``.

    The environment points at the fixture only while the cycles run (the DAG's tasks read their
    settings from it); tests then use ``Cycles.settings``, so no other test sees it.
    """
    from programs import cycle
    from warehouse.store import open_store

    root = tmp_path_factory.mktemp(f"programs-{request.param}")
    config = root / "programs.yml"
    config.write_text(TEST_PROGRAMS)
    env = warehouse_env(request, request.param)
    with pytest.MonkeyPatch.context() as patch:
        patch_warehouse(patch, root, env)
        patch.setenv("CX_PROGRAMS_CONFIG", str(config))
        settings = load_settings()
        settings.duckdb_path.parent.mkdir(parents=True)
        store = open_store(settings)
        state = build(store, FIRST_CYCLE)
        first = cycle.run(store, settings)
        advance(store, state, SECOND_CYCLE, boosted=("win_back",))
        second = run_dag_tasks("run_programs")
    env = {**env, "CX_DATA_DIR": str(root / "data"), "CX_PROGRAMS_CONFIG": str(config)}
    return Cycles(settings, store, first, second, env)


@pytest.fixture
def exports_dir(two_cycles) -> Path:
    return two_cycles.settings.exports_dir
