"""The dbt project as Airflow tasks, as ``CX_DBT_TASKS`` chooses.

``single`` (the default on DuckDB): one in-process ``dbt build`` task, about 2-3 s of dbt
overhead in all. dbt still runs each node's tests before its children and skips what follows a
failure; a retry runs the build again, which the incremental models make cheap.

``per_model`` (the default on PostgreSQL): astronomer-cosmos renders one task per model and
snapshot from the manifest (``python -m warehouse parse`` writes it; dbt never runs at parse
time). Each task runs ``dbt build`` on its node in-process (Cosmos' ``DBT_RUNNER`` invocation),
so the node's tests gate its children and a failure retries that node alone. Tests with several
parents run in a task of their own after all of them. On PostgreSQL independent models run in
parallel; on DuckDB the tasks take turns on the file, so a task each buys a log and a retry per
model for 3-4 s each (measured: at 100,000 members the daily build took 129 s per model against
63 s as one task).

The profile is ``dbt_project/profiles.yml``, fed the same environment as
``warehouse.dbt_runner``.
"""

from __future__ import annotations

from pathlib import Path

from config import Settings
from warehouse.dbt_runner import DBT_PROJECT_DIR, dbt_env

MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
DUCKDB_POOL = "duckdb_writer"


def writer_pool(settings: Settings) -> str | None:
    """The pool of the warehouse DAG's tasks that write the warehouse: one writer at a time on a
    DuckDB file; none on PostgreSQL, which takes concurrent writers."""
    return DUCKDB_POOL if settings.warehouse_target == "duckdb" else None


def dbt_vars(settings: Settings) -> dict[str, str] | None:
    """The dbt vars of the warehouse build: ``CX_AS_OF`` pins customer_360's as-of date.

    The ingestion interval alone does not: customer_360 otherwise takes the last activity date
    in the warehouse, which is earlier when the as-of day has no activity and later when an
    earlier run landed later data."""
    return {"as_of_date": settings.as_of.isoformat()} if settings.as_of else None


class ManifestMissing(FileNotFoundError):
    pass


def ensure_manifest(settings: Settings) -> Path:
    """Write the manifest the DAG renders from (``dbt parse``, a few seconds; no database)."""
    from warehouse.dbt_runner import parse

    return parse(settings)


def dbt_tasks(settings: Settings, group_id: str = "dbt"):
    """The dbt tasks of the warehouse DAG, as ``CX_DBT_TASKS`` chooses."""
    if settings.dbt_tasks == "single":
        return single_build_task(settings)
    return dbt_task_group(settings, group_id)


def single_build_task(settings: Settings):
    """Every model, snapshot and test in one in-process ``dbt build``."""
    from airflow.sdk import task

    @task(task_id="dbt_build", pool=writer_pool(settings))
    def dbt_build() -> dict:
        from config import load_settings
        from warehouse import dbt_runner

        current = load_settings()
        result = dbt_runner.build(
            current, target=current.warehouse_target, dbt_vars=dbt_vars(current)
        )
        return {"seconds": round(result.seconds, 1), "nodes": len(result.node_statuses)}

    return dbt_build()


def dbt_task_group(settings: Settings, group_id: str = "dbt"):
    """The Cosmos task group for the whole project, on the configured warehouse target."""
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    if not MANIFEST.exists():
        raise ManifestMissing(
            f"{MANIFEST} is missing: the warehouse DAG renders its tasks from dbt's manifest. "
            "Write it with `python -m warehouse parse` (make run and make up do this)."
        )
    operator_args = {"env": dbt_env(settings), "append_env": True, "install_deps": False}
    if pool := writer_pool(settings):
        operator_args["pool"] = pool
    # Each model's task runs dbt itself: it passes the registry's readers for the grants macro
    # (on-run-end), as warehouse/dbt_runner.py does for a single build.
    from warehouse import tables

    operator_args["vars"] = {**tables.grant_vars(), **(dbt_vars(settings) or {})}
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR, manifest_path=MANIFEST, install_dbt_deps=False
        ),
        profile_config=ProfileConfig(
            profile_name="cx",
            target_name=settings.warehouse_target,
            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER
        ),
        operator_args=operator_args,
    )
