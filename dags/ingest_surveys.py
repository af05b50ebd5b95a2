"""
### Ingest the survey platform's exports

Reads the JSON Lines exports under `CX_SURVEY_ROOT` (`<root>/<YYYY-MM-DD>/*.jsonl`, any fsspec
URL) whose export date falls in the run's data interval; the first run reads every folder before
the interval's end. Lines that are not JSON, values out of range and missing required fields go
to quarantine with the reason, the file and the line number; unknown fields are kept.

**extract** -> **validate** (Great Expectations) -> **publish** (the `raw.surveys.responses` Asset).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag

from ingestion.contract import TABLES_BY_SOURCE
from pipeline.landing_tasks import FULL_HISTORY_PARAM, landing_group


@dag(
    dag_id="ingest_surveys",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["ingestion", "surveys"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "owner": "data-engineering"},
    params={"full_history": FULL_HISTORY_PARAM},
    doc_md=__doc__,
)
def ingest_surveys():
    for table in TABLES_BY_SOURCE["surveys"]:
        landing_group(table)


ingest_surveys()
