"""Fixtures for the ML tests: a small simulated program (see ml_synthetic.py), and a store on
each warehouse the models run on (DuckDB, and PostgreSQL when the local server is up)."""

from __future__ import annotations

import uuid

import pytest
from ml_synthetic import warehouse_data

ENGINES = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def synthetic():
    """(WarehouseData, customer_360 frame) for 400 simulated members; built once."""
    return warehouse_data(n_members=400, seed=0)


@pytest.fixture(scope="session")
def ml_postgres(postgres_url):
    """One database on the local test server for the session's ML tests (each test writes a
    schema of its own in it), dropped afterwards; yields its sqlalchemy URL."""
    import sqlalchemy as sa

    name = f"cx_ml_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'create database "{name}"')
    try:
        yield sa.engine.make_url(postgres_url).set(database=name)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'drop database if exists "{name}" with (force)')
        admin.dispose()


@pytest.fixture(params=ENGINES)
def warehouse_env(request, tmp_path, monkeypatch):
    """The environment of a deployment on one warehouse: ``CX_DATA_DIR`` and MLflow under
    ``tmp_path``, and on PostgreSQL ``CX_WAREHOUSE_TARGET=postgres`` with a fresh schema of the
    session's database. Returns the engine's name."""
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CX_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    if request.param == "postgres":
        url = request.getfixturevalue("ml_postgres")
        monkeypatch.setenv("CX_WAREHOUSE_TARGET", "postgres")
        monkeypatch.setenv("CX_PG_HOST", url.host)
        monkeypatch.setenv("CX_PG_PORT", str(url.port))
        monkeypatch.setenv("CX_PG_USER", url.username)
        monkeypatch.setenv("CX_PG_PASSWORD", url.password or "")
        monkeypatch.setenv("CX_PG_DBNAME", url.database)
        monkeypatch.setenv("CX_PG_SCHEMA", f"ml_test_{uuid.uuid4().hex[:8]}")
    else:
        monkeypatch.setenv("CX_WAREHOUSE_TARGET", "duckdb")
    return request.param


@pytest.fixture
def store(warehouse_env):
    """The store a deployment with ``warehouse_env`` opens."""
    from config import load_settings
    from warehouse.store import open_store

    return open_store(load_settings())
