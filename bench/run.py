"""``make bench``: the pipeline through Airflow at scale, with a ceiling to compare against.

For each size it generates the sample sources (timed, not counted), runs every DAG of the main
job for the full history, then one incremental day on top, each DAG in its own process
(``python -m pipeline dag``) so its wall seconds, CPU seconds and peak memory are its own
(``os.wait4``). It then measures two ceilings on the same data:

- the warehouse: dbt's compiled SQL (models and tests) run directly in DuckDB, no dbt, no Airflow,
  each model as dbt materialises it and under the dbt profile's memory limit;
- the extract: each raw source read directly into Arrow by the fastest reader we have.

And one floor: each DAG of the incremental day again, as a stand-in with as many tasks that do
nothing, run the same way. It is what a day costs before any task does work.

With ``--spark`` (``make bench SPARK=1``) it also times the whole dbt build on DuckDB and on
local Spark, each in a fresh warehouse over the same lake (the warehouse stage on both engines;
the rest of the pipeline does not run on Spark yet).

It prints a table and writes the figures as JSON to ``bench/results/<members>-members.json``.
A benchmark, not a test: nothing here asserts a target; the figures say where we stand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from config.settings import DEFAULT_DBT_TASKS as WAREHOUSE_DBT_TASKS
from config.settings import REPO_ROOT

RESULTS_DIR = REPO_ROOT / "bench" / "results"
# The bench runs on DuckDB, with the warehouse DAG's default there (CX_DBT_TASKS); the other
# mode's figures get a suffix.
DEFAULT_DBT_TASKS = WAREHOUSE_DBT_TASKS["duckdb"]
# The main job's DAGs, in the order the Assets chain them.
INGEST_DAGS = ("ingest_loyalty", "ingest_surveys", "ingest_calls")
DOWNSTREAM_DAGS = ("build_warehouse", "train_models", "score_members", "run_programs")
# The full load covers the history up to FULL_END; the incremental day is the one after it.
SAMPLE_START = date(2024, 7, 1)
FULL_END = date(2026, 6, 30)


@dataclass
class Stage:
    name: str
    wall_seconds: float
    cpu_seconds: float
    peak_memory_mb: float
    rows: int | None = None
    counted: bool = True
    ok: bool = True
    tasks: dict[str, float] = field(default_factory=dict)
    # The machine's 1-minute load average when the stage ended: above the CPU count, other work
    # shared the cores and the stage's wall seconds overstate its cost.
    load_1m: float = field(default_factory=lambda: round(os.getloadavg()[0], 2))

    @property
    def rows_per_second(self) -> float | None:
        if not self.rows or not self.wall_seconds:
            return None
        return self.rows / self.wall_seconds


def run_measured(name: str, command: list[str], env: dict[str, str], log: Path) -> Stage:
    """Run ``command`` as a child process; its own wall, CPU and peak RSS (``os.wait4``)."""
    started = time.perf_counter()
    with log.open("ab") as out:
        out.write(f"\n==> {name}: {' '.join(command)}\n".encode())
        out.flush()
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    ok = os.waitstatus_to_exitcode(status) == 0
    return Stage(
        name=name,
        wall_seconds=round(wall, 2),
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 2),
        peak_memory_mb=round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        ok=ok,
    )


def bench_env(root: Path, members: int) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("CX_", "AIRFLOW"))
    }
    env.update(
        {
            "CX_DATA_DIR": str(root),
            "CX_SAMPLE_MEMBERS": str(members),
            "CX_SAMPLE_START": SAMPLE_START.isoformat(),
            "CX_SAMPLE_END": (FULL_END + timedelta(days=1)).isoformat(),
            "AIRFLOW_HOME": str(root / "airflow"),
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    return env


def task_seconds(airflow_home: Path, dag_id: str) -> dict[str, float]:
    """Seconds per task of the DAG's latest run, from Airflow's metadata database."""
    db = airflow_home / "airflow.db"
    if not db.exists():
        return {}
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "select task_id, (julianday(end_date) - julianday(start_date)) * 86400 "
            "from task_instance where dag_id = ? and run_id = ("
            "  select run_id from dag_run where dag_id = ? order by id desc limit 1)",
            (dag_id, dag_id),
        ).fetchall()
    return {task: round(seconds or 0.0, 2) for task, seconds in rows}


def landed_rows(lake: Path, interval_end: datetime) -> dict[str, int]:
    """Rows landed per source by the landings whose interval ends at ``interval_end``."""
    stamp = interval_end.strftime("%Y%m%dT%H%M%SZ")
    totals: dict[str, int] = {}
    for manifest in (lake / "manifests").glob(f"*/*/interval=*--{stamp}.json"):
        source = manifest.parent.parent.name
        totals[source] = totals.get(source, 0) + json.loads(manifest.read_text())["rows_landed"]
    return totals


def warehouse_rows(duckdb_path: Path) -> int:
    from warehouse.store import DuckDBStore

    store = DuckDBStore(duckdb_path)
    return sum(
        int(store.read(f"select count(*) as n from {table}")["n"].iloc[0])
        for table in ("fct_transactions", "fct_survey_responses", "fct_calls", "customer_360")
    )


def scored_members(duckdb_path: Path) -> int:
    from warehouse.store import DuckDBStore

    return int(
        DuckDBStore(duckdb_path)
        .read(
            "select count(*) as n from ml_scores where score_date = (select max(score_date) "
            "from ml_scores)"
        )["n"]
        .iloc[0]
    )


def run_dag_stage(
    name: str, dag_id: str, logical: date, env: dict[str, str], root: Path, log: Path
) -> Stage:
    """One DAG run in its own process (``python -m pipeline dag``), with its tasks' seconds."""
    command = [sys.executable, "-m", "pipeline", "dag", dag_id, "--skip-migrate"]
    command += ["--logical-date", logical.isoformat()]
    stage = run_measured(name, command, env, log)
    stage.tasks = task_seconds(root / "airflow", dag_id)
    print(f"  {stage.name:<32} {stage.wall_seconds:>8.1f}s", flush=True)
    return stage


def run_day(
    label: str, logical: date, env: dict[str, str], root: Path, log: Path, dags: tuple[str, ...]
) -> list[Stage]:
    stages = []
    for dag_id in dags:
        if not (REPO_ROOT / "dags" / f"{dag_id}.py").exists():
            continue
        stage = run_dag_stage(f"{label}:{dag_id}", dag_id, logical, env, root, log)
        stages.append(stage)
        if not stage.ok:
            print(f"  {dag_id} failed; see {log}", flush=True)
            break
    return stages


# A stand-in for one DAG of the day: as many tasks as the real one ran, chained, doing nothing.
FLOOR_DAG = '''"""{dag_id}: {tasks} tasks that do nothing, in place of {real} (the bench's floor)."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="{dag_id}", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def floor():
    @task
    def step():
        return None

    previous = None
    for number in range({tasks}):
        current = step.override(task_id=f"step_{{number}}")()
        if previous is not None:
            previous >> current
        previous = current


floor()
'''


def orchestration_floor(
    daily: list[Stage], logical: date, env: dict[str, str], root: Path, log: Path
) -> list[Stage]:
    """Each DAG of the day run again as a stand-in of as many tasks that do nothing, the way the
    day ran it: its own process, ``python -m pipeline dag``, ``dag.test()``.

    The day cannot cost less than this, however little data it brings. It is the process start,
    Airflow's start-up, parsing the DAG folder, and each task's hand-offs through Airflow's API.
    It is a lower bound: real tasks also import their libraries (Great Expectations, DuckDB,
    scikit-learn). Not measured after a day that failed."""
    if not daily or not all(stage.ok for stage in daily):
        return []
    # The stand-ins sit beside copies of the project's DAG files: ``dag.test()`` parses and
    # syncs the whole DAG folder, as it does for the real run.
    folder = root / "floor_dags"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(REPO_ROOT / "dags", folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}
    stages = []
    for stage in daily:
        real = stage.name.split(":", 1)[1]
        dag_id = f"floor_{real}"
        (folder / f"{dag_id}.py").write_text(
            FLOOR_DAG.format(dag_id=dag_id, real=real, tasks=max(len(stage.tasks), 1))
        )
        floor = run_dag_stage(f"floor:{real}", dag_id, logical, env, root, log)
        floor.counted = False
        stages.append(floor)
    return stages


def dbt_sql_ceiling(root: Path, env: dict[str, str], log: Path) -> Stage:
    """Compile the project (as a full refresh, against a copy of the built warehouse, whose
    facts some macros read, e.g. the feature table's cutoff dates), then run the compiled SQL of
    every model, snapshot (as a plain table) and test in a new, empty DuckDB file, in
    dependency order.

    The SQL runs as dbt runs it, less dbt: a view model as a view (its readers compute it, as
    they do in the warehouse), every other model as a table, under the DuckDB settings of the
    dbt profile (time zone, ``CX_DUCKDB_MEMORY_LIMIT``). Unbounded, DuckDB would take most of
    the machine and spill nothing, and the ratio would measure the memory limit, not dbt and
    Airflow."""
    import duckdb

    from config import load_settings

    work = root / "ceiling"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    compile_env = {**env, "CX_DUCKDB_PATH": str(work / "compile" / "cx.duckdb")}
    (work / "compile").mkdir()
    built = root / "warehouse" / "cx.duckdb"
    if built.exists():
        shutil.copyfile(built, work / "compile" / "cx.duckdb")
    target = work / "target"
    code = (
        "from config import load_settings; from warehouse import dbt_runner; "
        f"dbt_runner.invoke(['compile', '--full-refresh'], load_settings(), target_path=__import__('pathlib').Path('{target}'))"
    )
    compiled = run_measured("ceiling:dbt compile", [sys.executable, "-c", code], compile_env, log)
    if not compiled.ok:
        raise RuntimeError(f"dbt compile failed; see {log}")
    manifest = json.loads((target / "manifest.json").read_text())
    nodes = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "snapshot", "test")
    }
    order = _topological(nodes)
    database = work / "run" / "cx.duckdb"
    database.parent.mkdir()
    memory_limit = load_settings(env).duckdb_memory_limit
    started_cpu = time.process_time()
    started = time.perf_counter()
    with duckdb.connect(str(database)) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"set memory_limit = '{memory_limit}'")
        for uid in order:
            node = nodes[uid]
            sql = node.get("compiled_code")
            if not sql:
                continue
            if node["resource_type"] == "test":
                con.execute(f"select count(*) from ({sql}) as failures").fetchone()
                continue
            con.execute(f'create schema if not exists "{node["schema"]}"')
            table = f'"{node["schema"]}"."{node["alias"]}"'
            if node["config"].get("materialized") == "view":
                con.execute(f"create or replace view {table} as {sql}")
                continue
            if node["name"] == "member_features_pit":
                batches = pit_batches(sql, work / "compile" / "cx.duckdb")
            else:
                batches = [sql]
            con.execute(f"create or replace table {table} as {batches[0]}")
            for batch in batches[1:]:
                con.execute(f"insert into {table} {batch}")
    return Stage(
        name="ceiling:compiled SQL in DuckDB",
        wall_seconds=round(time.perf_counter() - started, 2),
        cpu_seconds=round(time.process_time() - started_cpu, 2),
        peak_memory_mb=0.0,
    )


PIT_CUTOFFS = re.compile(r"-- pit cutoffs: begin.*?-- pit cutoffs: end", re.S)


def pit_batches(sql: str, built: Path) -> list[str]:
    """member_features_pit's compiled SQL holds its first batch of cutoffs; dbt writes the rest
    in a post-hook, which compiling does not render. The same SQL for every batch, with the
    cutoffs of the built warehouse, batch sizes as dbt chose them."""
    from warehouse.store import DuckDBStore

    first = re.findall(r"cast\('(\d{4}-\d{2}-\d{2})' as date\)", PIT_CUTOFFS.search(sql).group(0))
    cutoffs = [
        str(day.date())
        for day in DuckDBStore(built).read(
            "select distinct cast(cutoff_date as date) as d from member_features_pit order by 1"
        )["d"]
    ]
    size = max(1, len(first))
    batches = []
    for start in range(0, len(cutoffs), size):
        union = " union all ".join(
            f"select cast('{c}' as date) as cutoff_date, '' as inputs_fingerprint"
            for c in cutoffs[start : start + size]
        )
        batches.append(PIT_CUTOFFS.sub(lambda _, union=union: union, sql, count=1))
    return batches or [sql]


def _topological(nodes: dict[str, dict]) -> list[str]:
    done: list[str] = []
    seen: set[str] = set()

    def visit(uid: str) -> None:
        if uid in seen or uid not in nodes:
            return
        seen.add(uid)
        for parent in nodes[uid]["depends_on"]["nodes"]:
            visit(parent)
        done.append(uid)

    for uid in sorted(nodes):
        visit(uid)
    return done


def extract_ceiling(root: Path) -> list[Stage]:
    """Each source read straight into Arrow: ADBC for the SQLite database, Arrow's own JSON and
    CSV readers for the exports (no casting, checking or writing)."""
    import adbc_driver_sqlite.dbapi as adbc
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson

    sample = root / "sample"
    stages = []
    started = time.perf_counter()
    rows = 0
    with adbc.connect(str(sample / "loyalty.db")) as con, con.cursor() as cursor:
        for table in ("members", "transactions"):
            cursor.execute(f"select * from {table}")
            rows += cursor.fetch_arrow_table().num_rows
    stages.append(_ceiling_stage("ceiling:read loyalty", started, rows))
    started = time.perf_counter()
    rows = 0
    for path in (sample / "surveys").rglob("*.jsonl"):
        try:
            rows += pajson.read_json(path).num_rows
        except Exception:  # a planted malformed file (a number written as text, a cut line)
            continue
    stages.append(_ceiling_stage("ceiling:read surveys", started, rows))
    started = time.perf_counter()
    rows = 0
    for path in (sample / "calls").rglob("*.csv"):
        try:
            rows += pacsv.read_csv(path).num_rows
        except Exception:  # the sample's planted malformed files; the pipeline quarantines them
            continue
    stages.append(_ceiling_stage("ceiling:read calls", started, rows))
    return stages


def _ceiling_stage(name: str, started: float, rows: int) -> Stage:
    return Stage(name, round(time.perf_counter() - started, 2), 0.0, 0.0, rows=rows)


def engine_builds(
    root: Path, env: dict[str, str], log: Path, targets: tuple[str, ...] = ("duckdb", "spark")
) -> list[Stage]:
    """The same whole dbt build (models and tests) of the lake the run left, on DuckDB and on
    local Spark (``local[2]``), each in a fresh warehouse of its own under ``<root>/engines`` and
    in its own process: the warehouse stage on both engines. References, like the ceilings: the
    pipeline's own stages run on DuckDB. Spark's CPU seconds and peak memory are the Python
    driver's only: its JVM is not reaped as the child's child, so ``os.wait4`` does not see it
    (on the 5,000-member sample: 136 s wall, 10 s CPU counted)."""
    stages = []
    for target in targets:
        work = root / "engines" / target
        shutil.rmtree(work, ignore_errors=True)
        code = (
            "import pathlib; from config import load_settings; from warehouse import dbt_runner; "
            f"dbt_runner.build(load_settings(), target='{target}', "
            f"target_path=pathlib.Path('{work / 'dbt-target'}'))"
        )
        stage_env = {**env, "CX_DUCKDB_PATH": str(work / "cx.duckdb")}
        stage = run_measured(
            f"engine:{target} dbt build", [sys.executable, "-c", code], stage_env, log
        )
        stage.counted = False
        stages.append(stage)
        print(f"  {stage.name:<32} {stage.wall_seconds:>8.1f}s", flush=True)
    return stages


def bench_size(
    members: int,
    root: Path,
    skip_generate: bool,
    dbt_tasks: str = DEFAULT_DBT_TASKS,
    spark: bool = False,
) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    env = {**bench_env(root, members), "CX_DBT_TASKS": dbt_tasks}
    log = root / "bench.log"
    log.write_text("")
    print(f"\n== {members:,} members in {root} (log: {log})", flush=True)
    calibration = {"before": calibrate()}
    print(f"  host calibration before: {calibration['before']}", flush=True)
    stages: list[Stage] = []
    if not (skip_generate and (root / "sample" / "loyalty.db").exists()):
        command = [sys.executable, "-m", "sample_data.generate", "--out", str(root / "sample")]
        for key, flag in (("CX_SAMPLE_MEMBERS", "--members"), ("CX_SAMPLE_START", "--start")):
            command += [flag, env[key]]
        command += ["--end", env["CX_SAMPLE_END"]]
        generated = run_measured("generate sample", command, env, log)
        generated.counted = False
        stages.append(generated)
        print(f"  {generated.name:<32} {generated.wall_seconds:>8.1f}s", flush=True)
    for state in ("lake", "warehouse", "mlflow", "exports", "reports", "airflow", "ceiling"):
        shutil.rmtree(root / state, ignore_errors=True)
    # Airflow's metadata database, pools and dbt's manifest: set-up, not counted.
    setup_code = (
        "from config import load_settings; from pipeline.airflow_env import apply_airflow_env; "
        "apply_airflow_env(); from pipeline.run import migrate_airflow_db; migrate_airflow_db(); "
        "from pipeline.dbt_tasks import ensure_manifest; ensure_manifest(load_settings())"
    )
    setup = run_measured("set up Airflow and dbt", [sys.executable, "-c", setup_code], env, log)
    setup.counted = False
    stages.append(setup)
    full_day = FULL_END + timedelta(days=1)
    incremental_day = full_day + timedelta(days=1)
    full = run_day("full", full_day, env, root, log, INGEST_DAGS + DOWNSTREAM_DAGS)
    full_end = datetime.combine(full_day, datetime.min.time(), UTC)
    landed = landed_rows(root / "lake", full_end)
    duckdb_path = root / "warehouse" / "cx.duckdb"
    for stage in full:
        dag_id = stage.name.split(":", 1)[1]
        if dag_id.startswith("ingest_"):
            stage.rows = landed.get(dag_id.removeprefix("ingest_"), 0)
        elif dag_id == "build_warehouse" and stage.ok:
            stage.rows = warehouse_rows(duckdb_path)
        elif dag_id == "score_members" and stage.ok:
            stage.rows = scored_members(duckdb_path)
    stages += full
    # One more day on top of the full load: ingestion, warehouse, scoring, programs (the weekly
    # training does not run on an ordinary day).
    daily_dags = INGEST_DAGS + tuple(d for d in DOWNSTREAM_DAGS if d != "train_models")
    daily = run_day("incremental", incremental_day, env, root, log, daily_dags)
    daily_landed = landed_rows(
        root / "lake", datetime.combine(incremental_day, datetime.min.time(), UTC)
    )
    for stage in daily:
        dag_id = stage.name.split(":", 1)[1]
        if dag_id.startswith("ingest_"):
            stage.rows = daily_landed.get(dag_id.removeprefix("ingest_"), 0)
    stages += daily
    stages += orchestration_floor(daily, incremental_day, env, root, log)
    ceilings = []
    for measure in (lambda: [dbt_sql_ceiling(root, env, log)], lambda: extract_ceiling(root)):
        try:
            ceilings += measure()
        except Exception as error:  # a failed ceiling must not lose the pipeline's figures
            print(f"  a ceiling failed: {error}", flush=True)
            ceilings.append(Stage("ceiling (failed)", 0.0, 0.0, 0.0, ok=False))
    ceilings += engine_builds(root, env, log, ("duckdb", "spark") if spark else ())
    calibration["after"] = calibrate()
    return summarise(members, stages, ceilings, dbt_tasks, calibration)


def summarise(
    members: int,
    stages: list[Stage],
    ceilings: list[Stage],
    dbt_tasks: str = DEFAULT_DBT_TASKS,
    calibration: dict | None = None,
) -> dict:
    full = [s for s in stages if s.name.startswith("full:")]
    daily = [s for s in stages if s.name.startswith("incremental:")]
    floor = [s for s in stages if s.name.startswith("floor:")]
    full_total = sum(s.wall_seconds for s in full)
    daily_total = sum(s.wall_seconds for s in daily)
    floor_total = sum(s.wall_seconds for s in floor)
    by_name = {s.name: s for s in stages + ceilings}
    ratios = {}
    warehouse = by_name.get("full:build_warehouse")
    sql = by_name.get("ceiling:compiled SQL in DuckDB")
    if warehouse and sql and sql.wall_seconds:
        ratios["warehouse_build_vs_compiled_sql"] = round(
            warehouse.wall_seconds / sql.wall_seconds, 2
        )
    on_duckdb = by_name.get("engine:duckdb dbt build")
    on_spark = by_name.get("engine:spark dbt build")
    if on_duckdb and on_spark and on_duckdb.ok and on_spark.ok and on_duckdb.wall_seconds:
        ratios["spark_vs_duckdb_dbt_build"] = round(
            on_spark.wall_seconds / on_duckdb.wall_seconds, 2
        )
    for source in ("loyalty", "surveys", "calls"):
        ingest = by_name.get(f"full:ingest_{source}")
        read = by_name.get(f"ceiling:read {source}")
        if ingest and read and read.wall_seconds:
            ratios[f"ingest_{source}_vs_raw_read"] = round(
                ingest.wall_seconds / read.wall_seconds, 1
            )
    validation = sum(
        seconds
        for s in full
        if s.name.startswith("full:ingest_")
        for task, seconds in s.tasks.items()
        if task.endswith(".validate")
    )
    ingestion = sum(s.wall_seconds for s in full if s.name.startswith("full:ingest_"))
    return {
        "members": members,
        "dbt_tasks": dbt_tasks,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine(), "calibration": calibration},
        "stages": [
            {**asdict(s), "rows_per_second": s.rows_per_second and round(s.rows_per_second)}
            for s in stages
        ],
        "ceilings": [
            {**asdict(s), "rows_per_second": s.rows_per_second and round(s.rows_per_second)}
            for s in ceilings
        ],
        "totals": {
            "full_wall_seconds": round(full_total, 1),
            "full_peak_memory_mb": max((s.peak_memory_mb for s in full), default=0.0),
            "incremental_wall_seconds": round(daily_total, 1),
            "incremental_share_of_full": round(daily_total / full_total, 3) if full_total else None,
            # The day's DAGs with tasks that do nothing (orchestration_floor); None: not measured.
            "incremental_orchestration_floor_seconds": round(floor_total, 1) if floor else None,
            "incremental_floor_share_of_full": round(floor_total / full_total, 3)
            if floor and full_total
            else None,
            "validation_share_of_ingestion": round(validation / ingestion, 3)
            if ingestion
            else None,
            # The floor is a reference, like the ceilings: its failure is printed, not the run's.
            "all_ok": all(s.ok for s in stages if s not in floor),
        },
        "ratios_to_ceiling": ratios,
    }


def machine() -> dict:
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def calibrate(rows: int = 40_000_000) -> dict[str, float]:
    """Seconds for two fixed workloads, so runs on hosts of different speed can be compared:
    a DuckDB group-by over ``rows`` generated rows on the machine's cores (the shape of the
    warehouse's work), and a pure-Python loop of ``rows // 4`` steps on one core (the shape of
    the glue). Three calls in a row on an idle host: 0.77-0.90 s and 0.44-0.49 s, so only
    differences well past a tenth say something. This host's speed moved 2.4x between two
    sessions, which only such a yardstick in the run shows."""
    import duckdb

    with duckdb.connect() as con:
        started = time.perf_counter()
        con.execute(
            f"select count(*), sum(total) from (select i % 1000003 as key, sum(i) as total "
            f"from range({rows}) as numbers(i) group by key)"
        ).fetchone()
        duckdb_seconds = time.perf_counter() - started
    started = time.perf_counter()
    total = 0
    for number in range(rows // 4):
        total += number * number % 7
    python_seconds = time.perf_counter() - started
    return {"duckdb_seconds": round(duckdb_seconds, 2), "python_seconds": round(python_seconds, 2)}


def print_table(result: dict) -> None:
    print(
        f"\n{result['members']:,} members, dbt as {result.get('dbt_tasks', 'per_model')} "
        f"({result['machine']['cpus']} CPUs, "
        f"{result['machine']['memory_gb']} GB)"
    )
    print(f"  {'stage':<34}{'wall s':>9}{'cpu s':>9}{'peak MB':>9}{'rows/s':>12}{'load':>7}")
    for row in result["stages"] + result["ceilings"]:
        rate = f"{row['rows_per_second']:,}" if row["rows_per_second"] else "-"
        flag = "" if row["ok"] else "  FAILED"
        print(
            f"  {row['name']:<34}{row['wall_seconds']:>9.1f}{row['cpu_seconds']:>9.1f}"
            f"{row['peak_memory_mb']:>9.0f}{rate:>12}{row['load_1m']:>7.1f}{flag}"
        )
    for key, value in {**result["totals"], **result["ratios_to_ceiling"]}.items():
        print(f"  {key:<40} {value}")
    for moment, figures in (result["machine"].get("calibration") or {}).items():
        print(f"  {'host calibration ' + moment:<40} {figures}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated member counts")
    parser.add_argument("--root", type=Path, default=REPO_ROOT / "data" / "bench")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--reuse-sample", action="store_true", help="keep a sample already generated at a size"
    )
    parser.add_argument(
        "--dbt-tasks",
        choices=("per_model", "single"),
        default=DEFAULT_DBT_TASKS,
        help="the warehouse DAG's dbt tasks (CX_DBT_TASKS): one dbt build (the default on "
        "DuckDB), or a task per model, whose figures go to <members>-members-per_model.json",
    )
    parser.add_argument(
        "--spark",
        action="store_true",
        help="also time the whole dbt build on DuckDB and on local Spark, each in a fresh "
        "warehouse, on the same lake (needs `make install-spark`)",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    for members in (int(size) for size in args.sizes.split(",")):
        result = bench_size(
            members, args.root / f"{members}", args.reuse_sample, args.dbt_tasks, args.spark
        )
        suffix = "" if args.dbt_tasks == DEFAULT_DBT_TASKS else f"-{args.dbt_tasks}"
        path = args.out / f"{members}-members{suffix}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        print_table(result)
        print(f"  figures written to {path}")
        failed = failed or not result["totals"]["all_ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
