"""The pipeline's steps on a small generated sample, for the rerun, backfill and fault tests.

Each step calls what the DAG's tasks call (``ingestion.land`` for a landing; the single-task
warehouse DAG's ``prepare_sources``, ``dbt build`` and ``publish``), on settings taken from the
environment as the tasks take them. A logical date's data interval comes from the ingestion
DAG's own timetable, so it is the interval a scheduled or backfilled run would get.

The sample: 400 members over a year, seed 3. Smaller samples, and most other seeds at this size,
put a survey line without ``response_id`` alone in a day's file, which the reader cannot tell
from a file that lost a required field, so the landing fails (the sample's dirt is sized for
thousands of members).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

SAMPLE = {
    "CX_SAMPLE_MEMBERS": "400",
    "CX_SAMPLE_SEED": "3",
    "CX_SAMPLE_START": "2025-07-01",
    "CX_SAMPLE_END": "2026-06-30",
}
# The straight run's logical date (the day after the sample's last day, as `make run` uses), and
# the logical date a week before it: backfills load everything to START, then a week of days.
LAST = datetime(2026, 7, 1, tzinfo=UTC)
START = LAST - timedelta(days=7)
WEEK = [START + timedelta(days=n) for n in range(1, 8)]
INGESTION_DAGS = ("ingest_loyalty", "ingest_surveys", "ingest_calls")


def environment_for(data_dir: Path, sample_dir: Path) -> dict[str, str]:
    """The variables a run of the pipeline on ``data_dir`` needs, nothing from the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CX_")}
    env.update(SAMPLE)
    env.update(
        {
            "CX_DATA_DIR": str(data_dir),
            # The sources are the generated sample (its public hash key applies), shared.
            "CX_SAMPLE_DIR": str(sample_dir),
            # One dbt build task; the per-model DAG is tested in tests/warehouse.
            "CX_DBT_TASKS": "single",
            # dbt's target folder beside the states, not the checkout's (another run may be
            # using that); shared by the states, so dbt parses the project once.
            "DBT_TARGET_PATH": str(data_dir.parent / "dbt-target"),
        }
    )
    return env


@contextmanager
def environment(data_dir: Path, sample_dir: Path) -> Iterator[None]:
    """Point this process's settings at ``data_dir`` while the block runs."""
    wanted = environment_for(data_dir, sample_dir)
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("CX_")]:
            patch.delenv(key)
        for key, value in wanted.items():
            if os.environ.get(key) != value:
                patch.setenv(key, value)
        yield


@contextmanager
def working_on(state_dir: Path, sample_dir: Path) -> Iterator[Path]:
    """Run the pipeline on the state in ``state_dir`` (made if new), moved for the block to one
    fixed folder beside it, whose path the block gets; the settings point there.

    Every state then has the same paths, so dbt's profile does not change between them and dbt
    re-parses only what changed (a full parse costs several seconds per build). The lake does
    not record the data folder's path; the warehouse's staging views do, and it is theirs again
    whenever the state is worked on.
    """
    work = state_dir.parent / "work"
    state_dir.mkdir(parents=True, exist_ok=True)
    os.rename(state_dir, work)  # fails if another state is being worked on
    try:
        with environment(work, sample_dir):
            yield work
    finally:
        os.rename(work, state_dir)


def generate_sample(sample_dir: Path) -> Path:
    from sample_data.generate import generate

    generate(
        sample_dir,
        members=int(SAMPLE["CX_SAMPLE_MEMBERS"]),
        seed=int(SAMPLE["CX_SAMPLE_SEED"]),
        start=date.fromisoformat(SAMPLE["CX_SAMPLE_START"]),
        end=date.fromisoformat(SAMPLE["CX_SAMPLE_END"]),
    )
    return sample_dir


@cache
def _timetable():
    from airflow.serialization.encoders import coerce_to_core_timetable

    from pipeline.run import load_dag

    # The scheduler's form of the DAG's timetable, as dag.test() and the scheduler use it.
    return coerce_to_core_timetable(load_dag("ingest_loyalty").timetable)


def data_interval(logical: datetime) -> tuple[datetime, datetime]:
    """The data interval of the ingestion DAGs' run for ``logical`` (the day before it)."""
    interval = _timetable().infer_manual_data_interval(run_after=logical)
    return interval.start, interval.end


def land_day(logical: datetime) -> None:
    """What the three ingestion DAGs' runs for ``logical`` do: every enabled table, landed."""
    from config import load_settings
    from ingestion.contract import TABLES
    from ingestion.land import land

    settings = load_settings()
    start, end = data_interval(logical)
    for table in TABLES:
        if table.source in settings.enabled_sources:
            land(settings, table, start, end)


def build_warehouse() -> None:
    """What the warehouse DAG's tasks do: enrich the lake, ``dbt build``, publish the copy."""
    from config import load_settings
    from pipeline.warehouse_tasks import prepare_sources, publish
    from warehouse import dbt_runner

    prepare_sources()
    dbt_runner.build(load_settings())
    publish()


def copy_state(source: Path, target: Path) -> Path:
    """A copy of a data folder (lake, warehouse, published copy) to continue from."""
    shutil.copytree(source, target, symlinks=True)
    return target


def warehouse_path(data_dir: Path) -> Path:
    return data_dir / "warehouse" / "cx.duckdb"


def published_path(data_dir: Path) -> Path:
    return data_dir / "warehouse" / "published" / "cx.duckdb"
