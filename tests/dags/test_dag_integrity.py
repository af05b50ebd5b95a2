"""Every DAG imports cleanly and quickly, is wired as the style guide says, and parses light."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
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
WAREHOUSE_TASKS = ["prepare_sources", "dbt_build", "publish"]


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


def test_warehouse_graph_is_a_chain_emitting_the_marts(dagbag):
    dag = dagbag.dags["build_warehouse"]
    assert sorted(dag.task_ids) == sorted(WAREHOUSE_TASKS)
    for upstream, downstream in zip(WAREHOUSE_TASKS, WAREHOUSE_TASKS[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    outlets = {o.name for o in dag.get_task("publish").outlets}
    assert "warehouse.customer_360" in outlets


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_no_heavy_import_at_module_level(path):
    """Parsing a DAG file must not pull in pandas, dbt, mlflow and friends (checked for real)."""
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]); "
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]; print(','.join(heavy))"
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    elapsed = time.perf_counter() - started
    assert result.stdout.strip().splitlines()[-1:] in ([""], []), result.stdout
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
