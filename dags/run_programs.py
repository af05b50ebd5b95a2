"""
### Run the targeted programs

Runs when new scores land (the `warehouse.ml_scores` Asset), not by the clock. One cycle per
score date, set in `programs/programs.yml`:

1. **assign**: each member joins at most one program (by priority); each program holds out a
   randomised control group; writes `program_assignments` and `program_cycles`.
2. **export**: one CSV and one Parquet file per program (treated members only, email only for
   opted-in members) and `manifest.json`, published atomically under
   `exports/<cycle_date>/` with a `latest` pointer; emits the `exports.programs` Asset.
3. **measure**: lift (treated vs control retention and spend, with confidence intervals) of every
   cycle whose response window has passed, and the key drivers, into `mart_program_lift` and
   `mart_key_drivers`.
4. **cases**: the CX team's closed loop (`programs/cases.yml`): detractor answers, negative
   comments, unresolved, escalated and repeat contacts open cases; promoter answers, resolved
   contacts and the team's update files close them; the day's new and overdue cases are
   published under `cases/deliveries/<date>/`; **post_cases** POSTs them to the
   `cx_cases_webhook` connection, with retries (none configured: nothing is posted).
5. **publish_warehouse**: refreshes the analysts' read-only copy of the warehouse.
6. **report**: the segment report, `reports/segment-report.html`.

**Deadline**: if the run has not finished `CX_DELIVERY_DEADLINE_MINUTES` after it was queued,
a Deadline Alert logs it, writes `alerts/deadline-run_programs-<run>.json` under the data folder
and POSTs it to the `cx_cases_webhook` connection (`pipeline/deadlines.py`).

Each step reads and writes the warehouse (DuckDB or PostgreSQL, `CX_WAREHOUSE_TARGET`) through
its store, in one short transaction. A rerun of a cycle replaces its rows and reproduces the same
export files.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task

from config import load_settings
from pipeline.assets import MODEL_ASSETS, PROGRAM_ASSETS
from pipeline.deadlines import delivery_deadline

SETTINGS = load_settings()

DUCKDB_POOL = "duckdb_writer"


@dag(
    dag_id="run_programs",
    schedule=[MODEL_ASSETS["ml_scores"]],
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["programs", "exports", "marketing"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "owner": "marketing-analytics",
    },
    # The day's exports and cases are due CX_DELIVERY_DEADLINE_MINUTES after the run is queued.
    deadline=delivery_deadline(SETTINGS.delivery_deadline_minutes),
    doc_md=__doc__,
)
def run_programs():
    # Every task opens the warehouse; on DuckDB one process at a time may hold the file.
    @task(pool=DUCKDB_POOL)
    def assign() -> dict:
        from config import load_settings
        from programs import cycle
        from warehouse.store import open_store

        settings = load_settings()
        return cycle.assign(open_store(settings), settings)

    @task(outlets=[PROGRAM_ASSETS["exports"]], pool=DUCKDB_POOL)
    def export(assigned: dict) -> dict:
        from config import load_settings
        from programs import cycle
        from warehouse.store import open_store

        settings = load_settings()
        return cycle.export(open_store(settings), settings, assigned["cycle_date"])

    @task(pool=DUCKDB_POOL)
    def measure(assigned: dict) -> dict:
        from config import load_settings
        from programs import cycle
        from warehouse.store import open_store

        settings = load_settings()
        return cycle.measure(open_store(settings), settings, assigned["cycle_date"])

    @task(pool=DUCKDB_POOL)
    def publish_warehouse() -> str:
        from config import load_settings
        from programs import cycle
        from warehouse.store import open_store

        settings = load_settings()
        return cycle.publish(open_store(settings), settings)

    @task(pool=DUCKDB_POOL)
    def report() -> dict:
        from config import load_settings
        from programs import cycle
        from warehouse.store import open_store

        settings = load_settings()
        return cycle.report(open_store(settings), settings)

    @task(pool=DUCKDB_POOL)
    def cases(assigned: dict) -> dict:
        from config import load_settings
        from programs import cases as case_loop
        from warehouse.store import open_store

        settings = load_settings()
        return case_loop.run(open_store(settings), settings, assigned["cycle_date"])

    @task
    def post_cases(handled: dict) -> dict:
        from config import load_settings
        from programs import cases as case_loop

        webhook = case_loop.webhook_from_airflow()
        return case_loop.deliver_to_webhook(load_settings(), handled["delivery"], webhook)

    assigned = assign()
    exported = export(assigned)
    published = publish_warehouse()
    measure(assigned) >> published
    handled = cases(assigned)
    handled >> published
    post_cases(handled)
    [exported, published] >> report()


run_programs()
