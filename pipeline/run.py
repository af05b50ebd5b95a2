"""The main job behind ``make run``: sample sources, then every DAG in order with ``dag.test()``.

On a real deployment the scheduler chains the DAGs through Assets; here the same DAGs run one
after another in this process, on the embedded defaults, with no server to start.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# uses_sample lives in config, where ml/ asks it too; pipeline.run.uses_sample is the same one.
from config import Settings, load_settings, sample_sources, uses_sample
from pipeline.airflow_env import apply_airflow_env

log = logging.getLogger(__name__)

INGESTION_DAGS = {"loyalty": "ingest_loyalty", "surveys": "ingest_surveys", "calls": "ingest_calls"}


class PipelineFailed(RuntimeError):
    pass


# Every task that writes the DuckDB file runs in this pool: DuckDB allows one writing process.
POOLS = {"duckdb_writer": (1, "one writer at a time on the DuckDB warehouse file")}


def _airflow_cli(*args: str) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PipelineFailed(
            f"`airflow {' '.join(args)}` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )


def migrate_airflow_db() -> None:
    """Create or upgrade Airflow's metadata database and its pools (idempotent)."""
    _airflow_cli("db", "migrate")
    for name, (slots, description) in POOLS.items():
        _airflow_cli("pools", "set", name, str(slots), description)


def load_dag(dag_id: str):
    """Parse ``<dags folder>/<dag_id>.py`` the way Airflow does and return its DAG.

    The folder is Airflow's ``[core] dags_folder``: the project's ``dags/`` unless the
    environment names another (the bench's stand-in DAGs). ``dag.test()`` syncs that folder to
    the metadata database, and a DAG outside it cannot run."""
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    path = Path(conf.get("core", "dags_folder")) / f"{dag_id}.py"
    bag = DagBag(dag_folder=str(path))
    if bag.import_errors:
        raise PipelineFailed(f"{path} does not import: {next(iter(bag.import_errors.values()))}")
    dag = bag.dags.get(dag_id)
    if dag is None:
        raise PipelineFailed(f"{path} defines no DAG with dag_id {dag_id!r}")
    return dag


def run_dag(
    dag_id: str, logical_date: datetime, conf: dict | None = None, retries: int = 0
) -> float:
    """Run one DAG to completion in this process; raise if any task failed. Returns seconds.

    A run in the foreground fails fast (``retries=0``): waiting out the scheduler's retry delays
    would only hide the error. The scheduler keeps the DAGs' own retries.
    """
    dag = load_dag(dag_id)
    for task in dag.tasks:
        task.retries = retries
    # A user's history may end before the DAGs' start_date (2024-01-01): a run for such a date
    # would schedule no task and still end "success". The foreground run is a manual one, so
    # the DAG starts at its logical date instead.
    if dag.start_date is not None and logical_date < dag.start_date:
        dag.start_date = logical_date
        for task in dag.tasks:
            task.start_date = logical_date
    # Nobody is waiting on a foreground run's deliveries, and Airflow 3.3's dag.test() fails
    # reading back a Deadline Alert it did not store ('dict' object has no attribute 'hex'):
    # the scheduler keeps the deadline, the foreground run goes without.
    dag.deadline = None
    conf = dict(conf or {})
    if dag_id == "train_models":
        # Nobody is watching a foreground run to approve a new champion: the gate decides.
        conf.setdefault("approval", "auto")
    started = time.perf_counter()
    dag_run = dag.test(logical_date=logical_date, run_conf=conf)
    seconds = time.perf_counter() - started
    state = str(getattr(dag_run, "state", "")).lower()
    instances = dag_run.get_task_instances()
    if not state.endswith("success"):
        failed = [ti.task_id for ti in instances if str(ti.state).endswith("failed")]
        raise PipelineFailed(
            f"DAG {dag_id} ended {state} (failed tasks: {failed}); see its log above"
        )
    if not any(str(ti.state).endswith("success") for ti in instances):
        raise PipelineFailed(
            f"DAG {dag_id} ran no task for {logical_date:%Y-%m-%d}: check the DAG's start_date "
            "and schedule against that date"
        )
    return seconds


def landing_report(settings: Settings, interval_end: datetime) -> list[dict]:
    """What the latest landings ending at ``interval_end`` read, landed, quarantined (and why)
    and left to other intervals, and the keys they delivered with conflicting values, per
    table."""
    from ingestion.contract import TABLES
    from ingestion.lake import Lake

    lake = Lake(settings.lake_dir)
    rows = []
    for table in TABLES:
        if table.source not in settings.enabled_sources:
            continue
        intervals = [i for i in lake.partitions(table) if i.end == interval_end]
        if not intervals:
            continue
        manifest = json.loads(lake.manifest_path(table, intervals[-1]).read_text())
        rows.append(
            {
                "table": table.qualified_name,
                "read": manifest.get("rows_read"),
                "landed": manifest["rows_landed"],
                "quarantined": manifest["rows_quarantined"],
                "outside": manifest.get("rows_outside_interval", 0),
                "conflicting": manifest.get("conflicting_duplicates", 0),
                "reasons": manifest.get("quarantine_reasons", []),
                "files": len(manifest["source_files"]),
                "raw": str(lake.raw_path(table, intervals[-1])),
                "quarantine": str(lake.quarantine_path(table, intervals[-1]))
                if manifest["rows_quarantined"]
                else "-",
            }
        )
    return rows


def as_of_date(settings: Settings) -> tuple[date, str]:
    """The day the run is for, and where that came from: ``CX_AS_OF``; else, when every enabled
    source is the sample, its last day; else the latest day in the enabled sources (read from
    them, so it never depends on the wall clock)."""
    if settings.as_of is not None:
        return settings.as_of, "CX_AS_OF"
    if set(sample_sources(settings)) == set(settings.enabled_sources):
        return settings.sample_end, "the sample's last day (CX_SAMPLE_END)"
    from ingestion.data_day import latest_data_day
    from ingestion.errors import IngestionError

    try:
        found = latest_data_day(settings)
    except IngestionError as error:
        raise PipelineFailed(f"no as-of date: {error}") from error
    return found.day, found.describe() + "; CX_AS_OF=YYYY-MM-DD sets another"


def ensure_sample(settings: Settings) -> bool:
    """Generate the sample sources unless ones made with the same parameters are there."""
    if not uses_sample(settings):
        return False
    params = {
        "members": settings.sample_members,
        "seed": settings.sample_seed,
        "start": settings.sample_start.isoformat(),
        "end": settings.sample_end.isoformat(),
        "shape": ",".join(settings.sample_shape),
    }
    marker = settings.sample_dir.parent / f"{settings.sample_dir.name}.params.json"
    if (
        settings.sample_dir.is_dir()
        and marker.exists()
        and json.loads(marker.read_text()) == params
    ):
        return False
    from sample_data.generate import generate

    print(f"==> generating sample sources in {settings.sample_dir} ({params})", flush=True)
    summary = generate(
        settings.sample_dir,
        members=settings.sample_members,
        seed=settings.sample_seed,
        start=settings.sample_start,
        end=settings.sample_end,
        shape=settings.sample_shape,
    )
    print(f"    {summary}", flush=True)
    marker.write_text(json.dumps(params) + "\n")
    return True


def landed_until(settings: Settings, source: str, as_of: date) -> date | None:
    """The day a source's landings end, when some table of it landed before but not up to
    ``as_of``; else None. The day's run would skip the days between (own data moves on between
    two `make run`s), so the run reloads the whole history; the warehouse keeps records once."""
    from ingestion.contract import TABLES_BY_SOURCE
    from ingestion.lake import Lake

    lake = Lake(settings.lake_dir)
    ends = [
        max(interval.end for interval in intervals).date()
        for intervals in map(lake.partitions, TABLES_BY_SOURCE[source])
        if intervals
    ]
    short = [end for end in ends if end < as_of]
    return min(short) if short else None


def run(settings: Settings, only: str | None = None, retrain: bool = False) -> dict:
    """Generate the sample if a source needs it, then run the DAGs for the as-of date."""
    apply_airflow_env()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    ensure_sample(settings)
    timings["sample"] = time.perf_counter() - started
    as_of, origin = as_of_date(settings)
    print(f"==> as of {as_of}: {origin}", flush=True)

    migrate_airflow_db()
    if only != "ingest":
        from pipeline.dbt_tasks import ensure_manifest

        ensure_manifest(settings)  # the warehouse DAG renders its dbt tasks from it
    # The run for the as-of day (it covers the day before its logical date); each table's
    # first run loads its whole history.
    logical_date = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), UTC)
    for source in settings.enabled_sources:
        dag_id = INGESTION_DAGS[source]
        gap = landed_until(settings, source, as_of)
        if gap:
            print(f"==> {dag_id} (whole history: landed only before {gap})", flush=True)
            timings[dag_id] = run_dag(dag_id, logical_date, conf={"full_history": True})
            continue
        print(f"==> {dag_id}", flush=True)
        timings[dag_id] = run_dag(dag_id, logical_date)
    if only != "ingest":
        # The order the scheduler's Assets give: warehouse, then models, scores and programs.
        # Training runs when no champion exists yet; its weekly schedule covers the rest.
        stages = ["build_warehouse"]
        from pipeline.model_tasks import has_champions

        if retrain or not has_champions(settings.mlflow_tracking_uri):
            stages.append("train_models")
        stages += ["score_members", "run_programs"]
        for dag_id in stages:
            print(f"==> {dag_id}", flush=True)
            timings[dag_id] = run_dag(dag_id, logical_date)
    report = landing_report(settings, logical_date)
    result = {"timings": timings, "landings": report, "warehouse": None, "programs": None}
    if only != "ingest":
        from programs.cycle import outputs
        from warehouse.store import open_store

        result["warehouse"] = analysts_warehouse(settings)
        result["members_left_out"] = members_left_out(open_store(settings, snapshot=True))
        result["programs"] = outputs(settings)
        from programs.cases import latest_delivery

        result["cases"] = latest_delivery(settings.cases_dir)
    return result


def analysts_warehouse(settings: Settings) -> str:
    """What analysts query: the read-only DuckDB copy, or the PostgreSQL schema itself."""
    if settings.warehouse_target == "postgres":
        return (
            f"PostgreSQL schema {settings.pg_schema} of {settings.pg_dbname} on "
            f"{settings.pg_host}:{settings.pg_port}"
        )
    from warehouse.publish import published_path

    return f"{published_path(settings.duckdb_path)} (read-only copy)"


def members_left_out(store) -> int | None:
    """Members of ``dim_members`` that ``customer_360`` leaves out: those enrolled after its
    as-of date (the warning test on customer_360 names them); None before the warehouse is
    built."""
    if not (store.exists("dim_members") and store.exists("customer_360")):
        return None
    return int(
        store.read(
            "select count(*) as members from dim_members where member_id not in "
            "(select member_id from customer_360)"
        ).iloc[0, 0]
    )


def print_report(result: dict) -> None:
    print("\nRead, landed (raw lake), quarantined and left to other intervals, per source table:")
    print(
        f"  {'table':<24}{'read':>10}{'landed':>10}{'quarantined':>13}{'outside':>9}"
        f"{'conflicting':>13}{'files':>7}"
    )
    for row in result["landings"]:
        read = "-" if row.get("read") is None else f"{row['read']:,}"
        print(
            f"  {row['table']:<24}{read:>10}{row['landed']:>10,}{row['quarantined']:>13,}"
            f"{row.get('outside', 0):>9,}{row.get('conflicting', 0):>13,}{row['files']:>7}"
        )
    for row in result["landings"]:
        if row["quarantine"] != "-":
            why = ", ".join(f"{r['reason']}: {r['rows']:,}" for r in row.get("reasons", []))
            print(f"  quarantine: {row['quarantine']} ({why})")
    if any(row.get("conflicting") for row in result["landings"]):
        print(
            "  conflicting: keys landed again with other values; the warehouse keeps the latest "
            "landing's (dbt_project/README.md, Deduplication)"
        )
    if result.get("warehouse"):
        print(f"\nWarehouse for analysts: {result['warehouse']}")
        if result.get("members_left_out"):
            print(
                f"customer_360 leaves out {result['members_left_out']:,} member(s) of dim_members "
                "enrolled after its as-of date (the build's warning names them)"
            )
    programs = result.get("programs") or {}
    if programs.get("exports"):
        print(f"Program exports (cycle {programs['cycle_date']}): {programs['exports']}")
    if programs.get("report"):
        print(f"Segment report (open in a browser): {programs['report']}")
    if result.get("cases"):
        cases = result["cases"]
        print(
            f"Case file for the CX team: {cases['path']} ({cases['new']} new, "
            f"{cases['overdue']} overdue, {cases['open']} open)"
        )
    print("\nSeconds per step: " + ", ".join(f"{k} {v:.1f}" for k, v in result["timings"].items()))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run the main job on the configured sources")
    run_parser.add_argument("--only", choices=["ingest"], help="stop after this stage")
    run_parser.add_argument(
        "--retrain", action="store_true", help="train the models even if champions exist"
    )
    run_parser.add_argument(
        "--verbose", action="store_true", help="show every task's log, not only warnings"
    )
    sub.add_parser("settings", help="print the effective settings (passwords masked)")
    dag_parser = sub.add_parser("dag", help="run one DAG with dag.test() for one logical date")
    dag_parser.add_argument("dag_id")
    dag_parser.add_argument(
        "--logical-date",
        type=date.fromisoformat,
        required=True,
        help="YYYY-MM-DD (UTC midnight); the run covers the day before",
    )
    dag_parser.add_argument("--verbose", action="store_true")
    dag_parser.add_argument(
        "--skip-migrate", action="store_true", help="the Airflow database is known to be current"
    )
    args = parser.parse_args(argv)

    verbose = getattr(args, "verbose", False)
    if not verbose:
        # Task logs stay in full in the Airflow home; the console shows warnings and the summary.
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from config import SettingsError

    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    if args.command == "settings":
        for key, value in settings.describe().items():
            print(f"{key:<22} {value}")
        return 0
    if args.command == "dag":
        apply_airflow_env()
        if not args.skip_migrate:
            migrate_airflow_db()
        logical = datetime.combine(args.logical_date, datetime.min.time(), UTC)
        try:
            seconds = run_dag(args.dag_id, logical)
        except PipelineFailed as error:
            print(f"\n{args.dag_id} failed: {error}", file=sys.stderr)
            return 1
        print(f"{args.dag_id} for {args.logical_date}: ok in {seconds:.1f}s")
        return 0
    try:
        result = run(settings, only=args.only, retrain=args.retrain)
    except PipelineFailed as error:
        print(f"\npipeline failed: {error}", file=sys.stderr)
        return 1
    print_report(result)
    return 0
