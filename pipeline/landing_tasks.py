"""Task builders for the ingestion DAGs: extract -> validate -> publish, per source table.

Each task body is a few lines calling ``ingestion.land``; the staged folder's path is what passes
between them through XCom, never data. Heavy imports happen inside the tasks.
"""

from __future__ import annotations

from airflow.sdk import Param, task, task_group

from ingestion.contract import Table
from pipeline.assets import raw_asset

FULL_HISTORY_PARAM = Param(
    False,
    type="boolean",
    description=(
        "Load everything before the interval's end instead of the interval alone. A table's "
        "first run does this by itself."
    ),
)


def _enabled(source: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    from config import load_settings

    if source not in load_settings().enabled_sources:
        raise AirflowSkipException(f"source {source!r} is not in CX_SOURCES")


def landing_group(table: Table):
    """Add the extract/validate/publish tasks for ``table`` to the current DAG."""
    asset = raw_asset(table)

    @task_group(group_id=table.name)
    def land():
        @task(task_id="extract")
        def extract(data_interval_start=None, data_interval_end=None, params=None) -> str:
            from config import load_settings
            from ingestion.land import extract as extract_table

            _enabled(table.source)
            landing = extract_table(
                load_settings(),
                table,
                data_interval_start,
                data_interval_end,
                full_history=bool(params and params.get("full_history")),
            )
            return str(landing.staging)

        @task(task_id="validate")
        def validate(staging: str) -> str:
            from ingestion.land import landing_from_path
            from ingestion.land import validate as validate_landing

            validate_landing(landing_from_path(staging))
            return staging

        @task(task_id="publish", outlets=[asset])
        def publish(staging: str, outlet_events=None) -> dict:
            from config import load_settings
            from ingestion.land import landing_from_path
            from ingestion.land import publish as publish_landing

            manifest = publish_landing(load_settings(), landing_from_path(staging))
            summary = {
                key: manifest.get(key)
                for key in (
                    "interval_start",
                    "interval_end",
                    "rows_read",
                    "rows_landed",
                    "rows_quarantined",
                    "rows_outside_interval",
                    "conflicting_duplicates",
                )
            }
            outlet_events[asset].extra = summary
            return summary

        publish(validate(extract()))

    return land()
