"""Fixtures for the programs tests: a programs file for small warehouses, and two real cycles
on a simulated warehouse (the first through ``cycle.run``, the second through the DAG's own task
bodies, called in the DAG's order)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from program_warehouse import FIRST_CYCLE, SECOND_CYCLE, advance, build

from config import load_settings
from config.settings import Settings

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
    first_run: dict
    second_run: dict[str, object]


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


@pytest.fixture(scope="session")
def two_cycles(tmp_path_factory) -> Cycles:
    """Cycle 1 on 2026-04-30 (``cycle.run``), then two months in which win-back's treated
    members buy again far more often, then cycle 2 on 2026-06-30 through ``run_programs``.

    The environment points at the fixture only while the cycles run (the DAG's tasks read their
    settings from it); tests then use ``Cycles.settings``, so no other test sees it.
    """
    from programs import cycle

    root = tmp_path_factory.mktemp("programs")
    config = root / "programs.yml"
    config.write_text(TEST_PROGRAMS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_DATA_DIR", str(root / "data"))
        patch.setenv("CX_PROGRAMS_CONFIG", str(config))
        for name in ("CX_DUCKDB_PATH", "CX_EXPORTS_DIR", "CX_REPORTS_DIR", "CX_WAREHOUSE_TARGET"):
            patch.delenv(name, raising=False)
        settings = load_settings()
        settings.duckdb_path.parent.mkdir(parents=True)
        state = build(settings.duckdb_path, FIRST_CYCLE)
        first = cycle.run(settings)
        advance(settings.duckdb_path, state, SECOND_CYCLE, boosted=("win_back",))
        second = run_dag_tasks("run_programs")
    return Cycles(settings, first, second)


@pytest.fixture
def exports_dir(two_cycles) -> Path:
    return two_cycles.settings.exports_dir
