"""
### Build the customer warehouse

Runs when the raw tables of the enabled sources have landed (Asset schedule), not by the clock:

1. **prepare_sources**: scores survey comments' sentiment (VADER) into the lake; on PostgreSQL,
   copies new lake partitions into the `raw` schema.
2. **dbt_build**: every model, snapshot and test of `dbt_project/` in one in-process
   `dbt build` (DuckDB allows one writer per file; about 2-3 s of overhead in all). Per-model
   tasks with astronomer-cosmos are not wired yet: its watcher mode hung under `dag.test()`.
3. **publish**: a read-only copy of the DuckDB file for analysts (`data/warehouse/published/`),
   emitting the mart Assets that scoring and exports are scheduled on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import AssetAll, dag, task

from config import load_settings
from ingestion.contract import TABLES
from pipeline.assets import MART_ASSETS, RAW_ASSETS

ENABLED = load_settings().enabled_sources


@dag(
    dag_id="build_warehouse",
    schedule=AssetAll(*(RAW_ASSETS[t.qualified_name] for t in TABLES if t.source in ENABLED)),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["warehouse", "dbt"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2), "owner": "data-engineering"},
    doc_md=__doc__,
)
def build_warehouse():
    @task
    def prepare_sources() -> dict:
        from pipeline.warehouse_tasks import prepare_sources as prepare

        return prepare()

    @task(outlets=list(MART_ASSETS.values()))
    def publish() -> str:
        from pipeline.warehouse_tasks import publish as publish_copy

        return publish_copy()

    @task
    def dbt_build() -> dict:
        from config import load_settings
        from warehouse import dbt_runner

        settings = load_settings()
        result = dbt_runner.build(settings, target=settings.warehouse_target)
        return {"seconds": round(result.seconds, 1), "nodes": len(result.node_statuses)}

    prepare_sources() >> dbt_build() >> publish()


build_warehouse()
