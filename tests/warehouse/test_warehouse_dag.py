"""The warehouse DAG itself, run with ``dag.test()``: a Cosmos task per dbt model on a fresh
data folder, then the published copy analysts read."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import duckdb
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def restored_environment():
    """Cosmos copies each task's dbt environment into os.environ (for OpenLineage, in
    cosmos/operators/local.py) and leaves it there. A task runs in a process of its own in
    Airflow; in this test's process, later tests would read this test's warehouse path."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_per_model_tasks_build_and_publish_the_warehouse(
    fixture_lake, tmp_path, monkeypatch, restored_environment
):
    from pipeline.run import load_dag, migrate_airflow_db, run_dag

    data = tmp_path / "data"
    monkeypatch.setenv("CX_DATA_DIR", str(data))
    monkeypatch.setenv("CX_LAKE_DIR", str(fixture_lake))
    monkeypatch.setenv("CX_DBT_TASKS", "per_model")
    migrate_airflow_db()
    dag = load_dag("build_warehouse")
    model_tasks = [t for t in dag.task_ids if t.endswith("_model_build")]
    assert len(model_tasks) >= 15
    # Each task runs dbt on its own, grants included (on PostgreSQL the on-run-end macro fails
    # without the registry's readers): every one carries them.
    from warehouse import tables

    readers = tables.grant_vars()
    for task_id in model_tasks:
        assert dag.get_task(task_id).vars["analyst_tables"] == readers["analyst_tables"]
        assert dag.get_task(task_id).vars["marketer_tables"] == readers["marketer_tables"]

    run_dag("build_warehouse", datetime(2026, 7, 1, tzinfo=UTC))

    published = data / "warehouse" / "published" / "cx.duckdb"
    with duckdb.connect(str(published), read_only=True) as con:
        members = con.execute("select count(*) from dim_members").fetchone()[0]
        rows, distinct = con.execute(
            "select count(*), count(distinct member_id) from customer_360"
        ).fetchone()
    assert members > 0
    assert rows == distinct == members
