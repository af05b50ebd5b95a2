"""Issue 6, reruns: each DAG of the main chain re-run with ``dag.test()`` for a past interval
leaves the lake's partitions as they were and the marts as one straight run gives them.

``score_members`` and ``run_programs`` are not re-run here: they take no data interval (they
score and export the warehouse as it is), a model cannot be trained on a sample this small (its
feature checks fail for lack of history), and rerunning a programs cycle is shown to give the
same bytes in tests/programs/test_cycle_integration.py.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from mart_checksums import checksums, differences
from reliability_steps import (
    INGESTION_DAGS,
    START,
    WEEK,
    copy_state,
    data_interval,
    published_path,
    warehouse_path,
    working_on,
)

from ingestion.contract import TABLES
from ingestion.lake import Interval

pytestmark = pytest.mark.integration


def _lake(data_dir: Path) -> dict[str, tuple[str, int]]:
    """Every landed file (raw, quarantine, manifests): its checksum and inode."""
    lake = data_dir / "lake"
    return {
        str(path.relative_to(lake)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_ino,
        )
        for path in sorted(lake.rglob("*"))
        if path.is_file() and path.relative_to(lake).parts[0] in ("raw", "quarantine", "manifests")
    }


def test_rerunning_each_dag_for_past_intervals_gives_the_marts_of_one_straight_run(
    airflow_db, straight, week_forwards, states_root, sample_dir
):
    from pipeline.run import run_dag

    data_dir = copy_state(week_forwards.data_dir, states_root / "reruns")
    backfilled_day = WEEK[2]
    day_name = Interval(*data_interval(backfilled_day)).name
    in_first_load = START - timedelta(days=10)
    inside_name = Interval(*data_interval(in_first_load)).name
    with working_on(data_dir, sample_dir) as work:
        before = _lake(work)
        for dag_id in INGESTION_DAGS:
            run_dag(dag_id, backfilled_day)
        rerun = _lake(work)
        # Each table's partition of that day was written again (a new file), with the same bytes.
        rewritten = {path for path in before if rerun[path][1] != before[path][1]}
        assert {path for path in rewritten if path.startswith(("raw/", "manifests/"))} == {
            f"{kind}/{table.source}/{table.name}/{day_name}.{suffix}"
            for table in TABLES
            for kind, suffix in (("raw", "parquet"), ("manifests", "json"))
        }
        assert {path: sha for path, (sha, _) in rerun.items()} == {
            path: sha for path, (sha, _) in before.items()
        }

        # A day inside the first load (a manual run or a backfill) lands that day alone, beside
        # the first load's partition, not the whole history up to its end again.
        for dag_id in INGESTION_DAGS:
            run_dag(dag_id, in_first_load)
        added = set(_lake(work)) - set(rerun)
        assert {
            f"raw/{table.source}/{table.name}/{inside_name}.parquet" for table in TABLES
        } <= added
        assert all(Path(path).stem == inside_name for path in added), added

        run_dag("build_warehouse", backfilled_day)

    marts = checksums(warehouse_path(data_dir))
    assert marts == straight.marts, differences(straight.marts, marts)
    expected_copy = checksums(published_path(straight.data_dir))
    published = checksums(published_path(data_dir))
    assert published == expected_copy, differences(expected_copy, published)
