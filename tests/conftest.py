"""Test-wide setup: Airflow gets a throwaway home on SQLite before anything imports it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from pipeline.airflow_env import apply_airflow_env

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="cx-airflow-test-"))
for _key in [k for k in os.environ if k.startswith("AIRFLOW")]:
    del os.environ[_key]
apply_airflow_env(_AIRFLOW_HOME)


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> Path:
    """The warehouse DAG renders its dbt tasks from the manifest, as on a deployment: write a
    fresh one for this checkout (``dbt parse``, no database) before any DAG is parsed."""
    from config import load_settings
    from pipeline.dbt_tasks import ensure_manifest

    return ensure_manifest(load_settings())


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's metadata database (SQLite in the throwaway home) and pools, made once for every
    test that runs a DAG with dag.test() (about 20 s: two `airflow` commands)."""
    from pipeline.run import migrate_airflow_db

    migrate_airflow_db()


def _postgres_url() -> str | None:
    import subprocess

    from config.settings import REPO_ROOT

    if os.environ.get("CX_TEST_POSTGRES_URL"):
        return os.environ["CX_TEST_POSTGRES_URL"]
    script = REPO_ROOT / "scripts" / "postgres.sh"
    if subprocess.run([str(script), "status"], capture_output=True, check=False).returncode != 0:
        return None
    return subprocess.run(
        [str(script), "url"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The local test server's URL. Under `make test` or CI a missing server is a failure."""
    url = _postgres_url()
    if url is None:
        if os.environ.get("CI") or os.environ.get("CX_TEST_POSTGRES_URL"):
            pytest.fail("PostgreSQL is not running; `make test` starts it with scripts/postgres.sh")
        pytest.skip("PostgreSQL is not running (start it with `make postgres`)")
    return url


@pytest.fixture
def postgres_database(postgres_url):
    """A throwaway database on the test server, dropped afterwards; yields its URL."""
    import uuid

    import sqlalchemy as sa

    name = f"cx_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'create database "{name}"')
    url = sa.engine.make_url(postgres_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'drop database if exists "{name}" with (force)')
        admin.dispose()
