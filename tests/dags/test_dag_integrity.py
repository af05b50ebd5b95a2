"""Every DAG imports cleanly and quickly, is wired as the style guide says, and parses light."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from config.settings import REPO_ROOT

DAG_FILES = sorted(p for p in (REPO_ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
HEAVY = ("pandas", "sklearn", "mlflow", "great_expectations", "dbt", "duckdb")
EXPECTED_TASKS = {
    "ingest_loyalty": {
        "members.extract",
        "members.validate",
        "members.publish",
        "transactions.extract",
        "transactions.validate",
        "transactions.publish",
    },
    "ingest_surveys": {"responses.extract", "responses.validate", "responses.publish"},
    "ingest_calls": {"contacts.extract", "contacts.validate", "contacts.publish"},
}
MODEL_DAGS = {
    "train_models": ({"train", "ask", "approve_champion", "publish"}, "models.champions"),
    "score_members": ({"score"}, "warehouse.ml_scores"),
}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {Path(d.fileloc).stem for d in dagbag.dags.values()} == {p.stem for p in DAG_FILES}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_dag_id_matches_file_and_is_documented(dagbag, path):
    dag = dagbag.dags[path.stem]
    assert dag.doc_md and dag.doc_md.strip()
    assert dag.tags
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    for task in dag.tasks:
        assert task.retries >= 2, task.task_id
        assert task.retry_delay.total_seconds() > 0


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_TASKS))
def test_expected_graph(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert set(dag.task_ids) == EXPECTED_TASKS[dag_id]
    for group in {t.split(".")[0] for t in dag.task_ids}:
        assert dag.get_task(f"{group}.validate").upstream_task_ids == {f"{group}.extract"}
        publish = dag.get_task(f"{group}.publish")
        assert publish.upstream_task_ids == {f"{group}.validate"}
        assert [o.name for o in publish.outlets] == [
            f"raw.{dag_id.removeprefix('ingest_')}.{group}"
        ]


def _manifest_nodes() -> dict[str, dict]:
    from pipeline.dbt_tasks import MANIFEST

    nodes = json.loads(MANIFEST.read_text())["nodes"]
    return {n["name"]: n for n in nodes.values() if n["resource_type"] in ("model", "snapshot")}


def test_warehouse_renders_a_task_per_dbt_model_between_prepare_and_publish(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("CX_DBT_TASKS", "per_model")
    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "build_warehouse.py"))
    dag = bag.dags["build_warehouse"]
    nodes = _manifest_nodes()
    assert len(nodes) >= 15
    for name, node in nodes.items():
        kind = node["resource_type"]
        task = dag.get_task(f"dbt.{name}_{kind}_build")
        assert task.pool == "duckdb_writer", name  # one writer at a time on the DuckDB file
        assert task.retries >= 2
        parents = {
            f"dbt.{nodes[p.split('.')[-1]]['name']}_{nodes[p.split('.')[-1]]['resource_type']}_build"
            for p in node["depends_on"]["nodes"]
            if p.startswith(("model.", "snapshot."))
        }
        expected = parents or {"prepare_sources"}
        assert task.upstream_task_ids >= expected, name
    publish = dag.get_task("publish")
    dbt_leaves = {
        t.task_id
        for t in dag.tasks
        if t.task_id.startswith("dbt.") and not t.downstream_task_ids - {"publish"}
    }
    assert publish.upstream_task_ids == dbt_leaves
    assert {o.name for o in publish.outlets} >= {
        "warehouse.customer_360",
        "warehouse.member_features_pit",
    }


def test_warehouse_on_duckdb_is_one_build_task_by_default(dagbag):
    dag = dagbag.dags["build_warehouse"]
    assert sorted(dag.task_ids) == ["dbt_build", "prepare_sources", "publish"]
    assert dag.get_task("dbt_build").upstream_task_ids == {"prepare_sources"}
    assert dag.get_task("dbt_build").pool == "duckdb_writer"
    assert dag.get_task("publish").upstream_task_ids == {"dbt_build"}
    # The publish records the copy's position in the warehouse's publish log: a writer too.
    assert dag.get_task("publish").pool == "duckdb_writer"


def test_warehouse_on_postgres_runs_models_in_parallel(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("CX_WAREHOUSE_TARGET", "postgres")
    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "build_warehouse.py"))
    pools = {t.pool for t in bag.dags["build_warehouse"].tasks}
    assert "duckdb_writer" not in pools


@pytest.mark.parametrize("dag_id", sorted(MODEL_DAGS))
def test_model_dags_emit_their_assets(dagbag, dag_id):
    tasks, asset = MODEL_DAGS[dag_id]
    dag = dagbag.dags[dag_id]
    assert set(dag.task_ids) == tasks
    emitting = [t.task_id for t in dag.tasks if t.outlets]
    assert len(emitting) == 1, emitting
    assert [o.name for o in dag.get_task(emitting[0]).outlets] == [asset]


def test_a_new_champion_waits_for_a_person_then_publish_settles_it(dagbag):
    """train -> ask (branch) -> approve_champion (HITL) -> publish, and ask -> publish, so a run
    with nothing to approve skips the question; a timeout answers Reject (keep the champion)."""
    from airflow.providers.standard.operators.hitl import HITLOperator

    from config import load_settings

    dag = dagbag.dags["train_models"]
    approve = dag.get_task("approve_champion")
    assert isinstance(approve, HITLOperator)
    assert approve.options == ["Approve", "Reject"]
    assert approve.defaults == ["Reject"]
    assert approve.response_timeout == timedelta(hours=load_settings().model_approval_hours)
    assert "approval" in approve.body and "approval" in approve.subject  # rendered from train
    assert dag.get_task("ask").downstream_task_ids == {"approve_champion", "publish"}
    assert approve.downstream_task_ids == {"publish"}
    assert dag.get_task("publish").trigger_rule == "none_failed_min_one_success"
    assert dag.get_task("train").outlets == []  # scoring waits for the answer


def test_late_exports_and_cases_raise_a_deadline_alert(dagbag):
    from airflow.sdk import AsyncCallback, DeadlineReference

    from config import load_settings

    dag = dagbag.dags["run_programs"]
    alerts = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval == timedelta(minutes=load_settings().delivery_deadline_minutes)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "pipeline.deadlines.delivery_late"


def test_scoring_waits_for_the_marts_or_new_champions(dagbag):
    dag = dagbag.dags["score_members"]
    assert dag.get_task("score").pool == "duckdb_writer"
    for name in ("warehouse.customer_360", "warehouse.member_features_pit", "models.champions"):
        assert name in repr(dag.timetable.asset_condition), name


def test_training_is_weekly_and_takes_params(dagbag):
    dag = dagbag.dags["train_models"]
    assert dag.timetable.expression == "0 3 * * 1"
    assert set(dag.params.keys()) == {"horizon_days", "train_cutoffs", "margin", "approval"}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_no_heavy_import_at_module_level(path):
    """Parsing a DAG file must not pull in pandas, dbt, mlflow and friends (checked for real)."""
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]); "
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]; print('HEAVY=' + ','.join(heavy))"
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    elapsed = time.perf_counter() - started
    heavy = [line for line in result.stdout.splitlines() if line.startswith("HEAVY=")]
    assert heavy == ["HEAVY="], result.stdout[-2000:]
    # A generous parse-time budget (interpreter and Airflow start-up included).
    assert elapsed < 30, f"{path.name} took {elapsed:.1f}s to import"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_no_heavy_import_statement_at_module_level(path):
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
            )
            for name in names:
                assert name.split(".")[0] not in HEAVY, (
                    f"{path.name} imports {name} at module level"
                )
