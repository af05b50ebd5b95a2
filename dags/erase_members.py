"""
### Erase members (the right to erasure)

Triggered by hand (UI or REST API) with `member_ids`, a list of loyalty member ids. Records the
members' ids, emails and phone numbers as keyed hashes in the suppression list, so no later
ingestion run brings them back (the sources keep them: we cannot delete there), then removes
them from the warehouse (every table, SCD2 history, scores, segment and program tables; the
analysts' copy is republished), PostgreSQL when it is the target, the program exports and the
raw lake, quarantine included. **verify** then searches every one of those places again and
fails if anything of theirs is left.

Same as `python -m privacy erase --member-id ...`. Safe to rerun. Logs hold counts only; note
that the run's `member_ids` param itself stays in Airflow's metadata as the request's record.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task


@dag(
    dag_id="erase_members",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["privacy"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2), "owner": "data-engineering"},
    params={
        "member_ids": Param(
            [],
            type="array",
            items={"type": "string", "minLength": 1},
            minItems=1,
            description="the loyalty member ids to erase",
        )
    },
    doc_md=__doc__,
)
def erase_members():
    # The one DuckDB writer at a time: erasure rewrites the live warehouse file.
    @task(pool="duckdb_writer")
    def erase(params=None) -> dict:
        from config import load_settings
        from privacy.erase import erase_members as erase_everywhere

        return erase_everywhere(load_settings(), params["member_ids"]).as_dict()

    @task
    def verify(erased: dict, params=None) -> dict:
        from config import load_settings
        from privacy.verify import assert_erased

        return assert_erased(load_settings(), params["member_ids"])

    verify(erase())


erase_members()
