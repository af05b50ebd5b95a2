"""
### Build the customer warehouse

Runs when the raw tables of the enabled sources have landed (Asset schedule), not by the clock:

1. **prepare_sources**: scores survey comments' sentiment (VADER) and writes the keyed hashes
   (HMAC under `CX_HASH_KEY`) of the emails and phones records are linked by into the lake; on
   PostgreSQL, copies new lake partitions into the `raw` schema.
2. **dbt**: on DuckDB, one `dbt build` task (`dbt_build`) in the one-slot `duckdb_writer` pool
   (one writing process per file); each model's tests still run before what follows it. On
   PostgreSQL, a task group rendered by astronomer-cosmos from `dbt_project/target/manifest.json`
   (dbt never runs at parse time): one task per model and snapshot, each running `dbt build` on
   its node, in parallel, a failed model retried on its own. `CX_DBT_TASKS=per_model|single`
   chooses either way on either warehouse.
3. **publish**: a read-only copy of the DuckDB file for analysts (`data/warehouse/published/`),
   emitting the mart Assets that scoring and exports are scheduled on. On DuckDB it is in the
   `duckdb_writer` pool too: it records in the warehouse how far the copy has come in the
   models' publish log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import AssetAll, dag, task

from config import load_settings
from ingestion.contract import TABLES
from pipeline.assets import MART_ASSETS, RAW_ASSETS
from pipeline.dbt_tasks import dbt_tasks, writer_pool

SETTINGS = load_settings()


@dag(
    dag_id="build_warehouse",
    schedule=AssetAll(
        *(RAW_ASSETS[t.qualified_name] for t in TABLES if t.source in SETTINGS.enabled_sources)
    ),
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

    @task(outlets=list(MART_ASSETS.values()), pool=writer_pool(SETTINGS))
    def publish() -> str:
        from pipeline.warehouse_tasks import publish as publish_copy

        return publish_copy()

    prepare_sources() >> dbt_tasks(SETTINGS) >> publish()


build_warehouse()
