"""Fixtures for the privacy tests: the sources where member M1 is everywhere, landed, and (once
per module) a warehouse built from them."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass

import pytest
from privacy_fixtures import land_everything, settings_for

from config.settings import Settings


@pytest.fixture(scope="session")
def landed_template(tmp_path_factory) -> Settings:
    """The sources, and the lake after landing June 1 (a full first load) and June 2."""
    root = tmp_path_factory.mktemp("privacy-landed")
    settings = settings_for(root)
    land_everything(settings)
    return settings


@pytest.fixture
def landed(landed_template, tmp_path) -> Settings:
    """A private copy of the landed lake, reading the shared (never modified) sources."""
    shutil.copytree(landed_template.data_dir, tmp_path / "data")
    return settings_for(tmp_path, sources=landed_template.data_dir.parent)


@dataclass(frozen=True)
class PostgresTarget:
    settings: Settings
    dbname: str


@pytest.fixture(scope="module")
def postgres_target(postgres_url, tmp_path_factory):
    """A throwaway database on the test server with the sources landed, loaded into ``raw`` and
    built by dbt (whose on-run-end hook applies the access grants)."""
    import sqlalchemy as sa

    from warehouse import dbt_runner
    from warehouse.enrich import enrich_lake
    from warehouse.load_postgres import load_lake

    url = sa.engine.make_url(postgres_url)
    name = f"cx_test_privacy_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'create database "{name}"')
    root = tmp_path_factory.mktemp("privacy-postgres")
    settings = settings_for(
        root,
        CX_WAREHOUSE_TARGET="postgres",
        CX_PG_HOST=url.host or "127.0.0.1",
        CX_PG_PORT=str(url.port or 5432),
        CX_PG_USER=url.username or "cx",
        CX_PG_DBNAME=name,
    )
    try:
        land_everything(settings)
        enrich_lake(settings)
        load_lake(
            settings.lake_dir,
            {
                "host": settings.pg_host,
                "port": settings.pg_port,
                "user": settings.pg_user,
                "password": settings.pg_password,
                "dbname": name,
            },
        )
        dbt_runner.build(
            settings,
            target="postgres",
            exclude=["test_type:data", "test_type:unit"],
            target_path=root / "dbt-target",
        )
        yield PostgresTarget(settings, name)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'drop database if exists "{name}" with (force)')
        admin.dispose()
        shutil.rmtree(root, ignore_errors=True)
