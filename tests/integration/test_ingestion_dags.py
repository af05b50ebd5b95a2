"""The three ingestion DAGs run for real with dag.test() on the tiny fixture sources."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from fixture_sources import write_calls, write_loyalty, write_surveys

pytestmark = pytest.mark.integration

LOGICAL = datetime(2026, 6, 3, tzinfo=UTC)  # the interval [2026-06-02, 2026-06-03)


@pytest.fixture
def fixture_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CX_LOYALTY_URL", write_loyalty(tmp_path / "loyalty.db"))
    monkeypatch.setenv("CX_SURVEY_ROOT", str(write_surveys(tmp_path / "surveys")))
    monkeypatch.setenv("CX_CALLS_ROOT", str(write_calls(tmp_path / "calls")))
    monkeypatch.setenv("CX_BAD_ROW_THRESHOLD", "0.6")
    return tmp_path / "data" / "lake"


def _count(path: Path) -> int:
    return duckdb.execute(f"select count(*) from read_parquet('{path}/*.parquet')").fetchone()[0]


def test_three_dags_land_every_source(airflow_db, fixture_env):
    from pipeline.run import run_dag

    for dag_id in ("ingest_loyalty", "ingest_surveys", "ingest_calls"):
        run_dag(dag_id, LOGICAL)
    raw = fixture_env / "raw"
    assert _count(raw / "loyalty" / "members") == 3
    assert _count(raw / "loyalty" / "transactions") == 4
    assert _count(raw / "surveys" / "responses") == 6
    assert _count(raw / "calls" / "contacts") == 2
    assert _count(fixture_env / "quarantine" / "calls" / "contacts") == 2
    manifest = next((fixture_env / "manifests" / "surveys" / "responses").glob("*.json"))
    landed = json.loads(manifest.read_text())
    assert landed["full_history"] is True
    assert landed["validation"]["success"] is True


def test_failed_validation_fails_the_dag_and_publishes_nothing(
    airflow_db, fixture_env, monkeypatch
):
    from pipeline.run import PipelineFailed, run_dag

    # Half the call rows are bad; a strict threshold must stop the landing before publishing.
    monkeypatch.setenv("CX_BAD_ROW_THRESHOLD", "0.1")
    with pytest.raises(PipelineFailed, match="ingest_calls"):
        run_dag("ingest_calls", LOGICAL)
    assert not (fixture_env / "raw" / "calls").exists()
