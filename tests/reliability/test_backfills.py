"""Issue 6, reruns and backfills: a week backfilled forwards or backwards gives the same marts,
compared by checksum, as one straight run (the states are built in conftest.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from mart_checksums import differences, mart_tables, table_checksum

pytestmark = pytest.mark.integration


def test_the_checksum_ignores_row_order_and_lineage_and_sees_any_other_change():
    with duckdb.connect() as con:
        con.execute(
            "create table t as select * from (values "
            "(1, 'a', 0.1::double, timestamp '2026-01-01'), (2, 'b', 0.2, timestamp '2026-01-02')"
            ") as v(id, code, share, source_interval_end_at)"
        )
        before = table_checksum(con, "main.t")
        con.execute("create table shuffled as select * from t order by id desc")
        con.execute("drop table t")
        con.execute("alter table shuffled rename to t")
        con.execute("update t set source_interval_end_at = timestamp '2030-01-01'")
        assert table_checksum(con, "main.t") == before  # order and lineage do not count
        changes = [
            "update t set code = 'c' where id = 2",
            "insert into t select * from t where id = 1",  # a duplicated row
            "update t set share = share + 1e-6 where id = 1",
            "alter table t alter id type bigint",
            "delete from t where id = 2",
        ]
        for change in changes:
            con.execute("begin")
            con.execute(change)
            after = table_checksum(con, "main.t")
            con.execute("rollback")
            assert after != before, change


def _lake_files(data_dir: Path) -> dict[str, str]:
    lake = data_dir / "lake"
    return {
        str(path.relative_to(lake)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(lake.rglob("*"))
        if path.is_file() and path.relative_to(lake).parts[0] in ("raw", "manifests")
    }


def _partitions(data_dir: Path) -> dict[str, int]:
    raw = data_dir / "lake" / "raw"
    return {
        f"{source.name}.{table.name}": len(list(table.glob("*.parquet")))
        for source in raw.iterdir()
        for table in source.iterdir()
    }


def test_the_straight_run_fills_every_mart_and_the_week_changes_them(straight, loaded_to_start):
    # Otherwise equal checksums below would prove nothing.
    assert set(straight.marts) == set(mart_tables())
    assert all(mart["rows"] > 0 for mart in straight.marts.values()), straight.marts
    changed = differences(loaded_to_start.marts, straight.marts)
    assert any(line.startswith("main.fct_transactions") for line in changed), changed


def test_a_week_backfilled_forwards_gives_the_marts_of_one_straight_run(straight, week_forwards):
    # One whole-history partition from the first load, then one per day of the week.
    assert set(_partitions(week_forwards.data_dir).values()) == {8}
    assert week_forwards.marts == straight.marts, differences(straight.marts, week_forwards.marts)


def test_a_week_backfilled_backwards_gives_the_marts_of_one_straight_run(
    straight, week_forwards, week_backwards
):
    # Newest day first lands the very same partitions, byte for byte ...
    assert _lake_files(week_backwards.data_dir) == _lake_files(week_forwards.data_dir)
    # ... and the warehouse, built while older days were still missing, ends up the same.
    assert week_backwards.marts == straight.marts, differences(straight.marts, week_backwards.marts)
