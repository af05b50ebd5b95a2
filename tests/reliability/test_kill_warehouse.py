"""Issue 6, faults: the warehouse's steps, SIGKILLed in the middle of a write (``python -m
warehouse enrich`` / ``build`` / ``publish`` in a child process stopped at a known point, see
kill_points.py), leave the analysts' copy byte for byte as it was; every table of the live file
is whole, old or new; and the next build publishes the new state.

The old state is the warehouse loaded a week before the sample's end; the new one is what a
build on the whole week's lake gives, which is the straight run's marts (test_backfills.py).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from kill_points import run_until_killed
from mart_checksums import checksums, differences
from reliability_steps import (
    build_warehouse,
    copy_state,
    environment_for,
    published_path,
    warehouse_path,
    working_on,
)

pytestmark = pytest.mark.integration

# (what is half done when the process dies, the hook, the command, the table being written)
KILLS = [
    (
        "a survey partition's comment sentiment half written into the lake",
        ["--after-call", "pyarrow.parquet:ParquetWriter.write_table"],
        ["warehouse", "enrich"],
        None,
    ),
    (
        "fct_transactions' delete+insert ran, its commit not yet",
        ["--after-sql", r'insert into "cx"\."main"\."fct_transactions"'],
        ["warehouse", "build"],
        "main.fct_transactions",
    ),
    (
        "customer_360 renamed away, its new table not yet in place",
        ["--after-sql", r'alter table "cx"\."main"\."customer_360" rename to'],
        ["warehouse", "build"],
        "main.customer_360",
    ),
    (
        "the analysts' copy written in part",
        ["--after-duckdb", r"insert into cx_published|copy from database"],
        ["warehouse", "publish"],
        None,
    ),
]


def _published_files(data_dir: Path) -> dict[str, str]:
    """What analysts see in the published folder (temporary work folders are hidden)."""
    folder = published_path(data_dir).parent
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
        if not path.name.startswith(".")
    }


def _tables(duckdb_path: Path) -> set[str]:
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        return {
            f"{schema}.{name}"
            for schema, name in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }


def test_builds_killed_mid_write_keep_the_published_copy_and_the_retry_publishes(
    straight, loaded_to_start, week_forwards, states_root, sample_dir
):
    data_dir = copy_state(loaded_to_start.data_dir, states_root / "killed-builds")
    for area in ("raw", "quarantine", "manifests"):  # the whole week landed, not yet enriched
        shutil.rmtree(data_dir / "lake" / area, ignore_errors=True)
        if (week_forwards.data_dir / "lake" / area).is_dir():
            shutil.copytree(week_forwards.data_dir / "lake" / area, data_dir / "lake" / area)
    old, new = loaded_to_start.marts, straight.marts
    assert old != new  # else nothing would be half-written
    published = _published_files(data_dir)

    with working_on(data_dir, sample_dir) as work:
        env = environment_for(work, sample_dir)
        for number, (moment, hook, command, table) in enumerate(KILLS):
            run_until_killed(hook, command, env, states_root / f"killed-build-{number}.log")
            assert _published_files(work) == published, moment
            live = checksums(warehouse_path(work))
            torn = [t for t in new if live.get(t) not in (old[t], new[t])]
            assert not torn, f"{moment}: neither old nor new: {differences(new, live)}"
            if table:
                assert live[table] == old[table], moment
            if command == ["warehouse", "enrich"]:
                assert live == old
                # The dead writer's file is left in the lake beside the finished partitions.
                enriched = (work / "lake" / "enriched").rglob("*.parquet")
                assert any(not path.name.startswith("interval=") for path in enriched)
            if table == "main.customer_360":
                # This build got past the facts before it died: the live file holds both states.
                assert live["main.fct_transactions"] == new["main.fct_transactions"]

        build_warehouse()  # the retry
    live = checksums(warehouse_path(data_dir))
    assert live == new, differences(new, live)
    copy = published_path(data_dir)
    assert _published_files(data_dir) != published
    assert checksums(copy) == checksums(published_path(straight.data_dir))
    # Nothing a dead build left behind (dbt's __dbt_tmp or __dbt_backup tables) is published.
    assert _tables(copy) == _tables(published_path(straight.data_dir))
