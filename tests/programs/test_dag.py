"""The run_programs DAG: scheduled on the scores, emits the exports Asset from the export task,
and its graph is the cycle's order (tests/dags checks the house rules every DAG shares)."""

from __future__ import annotations

import pytest

from config.settings import REPO_ROOT


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "run_programs.py"))
    assert bag.import_errors == {}
    return bag.dags["run_programs"]


def test_scheduled_on_the_scores_and_emitting_the_exports(dag):
    from pipeline.assets import MODEL_ASSETS, PROGRAM_ASSETS

    assert list(dag.timetable.asset_condition.objects) == [MODEL_ASSETS["ml_scores"]]
    assert [o.name for o in dag.get_task("export").outlets] == [PROGRAM_ASSETS["exports"].name]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert all(task.retries >= 2 for task in dag.tasks)


def test_the_graph_is_the_cycle(dag):
    upstream = {task.task_id: task.upstream_task_ids for task in dag.tasks}
    assert upstream == {
        "assign": set(),
        "export": {"assign"},
        "measure": {"assign"},
        "cases": {"assign"},
        "post_cases": {"cases"},
        "publish_warehouse": {"measure", "cases"},
        "report": {"export", "publish_warehouse"},
    }
