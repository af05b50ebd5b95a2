"""
### Ingest the loyalty platform

Reads `members` and `transactions` from the loyalty database (`CX_LOYALTY_URL`, any SQLAlchemy
URL; SQLite and PostgreSQL are read natively as Arrow) for the run's data interval, by watermark:
`updated_at` / `recorded_at` when the table has them, else occurrence time re-read over a lookback
of `CX_LATE_LOOKBACK_DAYS` for late rows. A table's first run loads its whole history.

Per table: **extract** (bad rows to quarantine) -> **validate** (Great Expectations) ->
**publish** (atomic Parquet partition in the raw lake, and the `raw.loyalty.<table>` Asset).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag

from ingestion.contract import TABLES_BY_SOURCE
from pipeline.landing_tasks import FULL_HISTORY_PARAM, landing_group


@dag(
    dag_id="ingest_loyalty",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["ingestion", "loyalty"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "owner": "data-engineering"},
    params={"full_history": FULL_HISTORY_PARAM},
    doc_md=__doc__,
)
def ingest_loyalty():
    for table in TABLES_BY_SOURCE["loyalty"]:
        landing_group(table)


ingest_loyalty()
