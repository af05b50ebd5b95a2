"""
### Ingest the call-center platform's exports

Reads the CSV exports under `CX_CALLS_ROOT` (`<root>/<YYYY-MM-DD>/*.csv`, UTF-8 with a header,
any fsspec URL) whose export date falls in the run's data interval; the first run reads every
folder before the interval's end. Each file's header is checked against the contract; rows that
cannot be parsed go to quarantine with the reason, the file and the row.

**extract** -> **validate** (Great Expectations) -> **publish** (the `raw.calls.contacts` Asset).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag

from ingestion.contract import TABLES_BY_SOURCE
from pipeline.landing_tasks import FULL_HISTORY_PARAM, landing_group


@dag(
    dag_id="ingest_calls",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["ingestion", "calls"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "owner": "data-engineering"},
    params={"full_history": FULL_HISTORY_PARAM},
    doc_md=__doc__,
)
def ingest_calls():
    for table in TABLES_BY_SOURCE["calls"]:
        landing_group(table)


ingest_calls()
