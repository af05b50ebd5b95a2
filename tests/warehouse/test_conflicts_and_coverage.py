"""What deduplication and the as-of date leave out is said in the build, as warnings: keys landed
twice with different values, and members of dim_members that customer_360 leaves out."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from warehouse_fixture_lake import (
    _members,
    _partition_name,
    _transactions,
    arrow_schema,
    fixture_settings,
    write_lake,
)

from ingestion.contract import MEMBERS, TRANSACTIONS

LATER = (datetime(2024, 4, 2, tzinfo=UTC), datetime(2024, 4, 3, tzinfo=UTC))


def _land(lake, table, rows: list[dict]) -> None:
    """A landing of ``rows`` for the interval ``LATER``, as ingestion writes it."""
    records = [
        {
            **{column.name: row.get(column.name) for column in table.columns},
            "_extra_fields": None,
            "_source_file": f"{table.name}-later.export",
            "_source_row": number,
            "_interval_start": LATER[0],
            "_interval_end": LATER[1],
        }
        for number, row in enumerate(rows, start=1)
    ]
    folder = lake / "raw" / table.source / table.name
    pq.write_table(
        pa.Table.from_pylist(records, schema=arrow_schema(table)), folder / _partition_name(LATER)
    )


def _test_results(target_path) -> dict[str, tuple[str, int]]:
    """Each test's status and number of rows found, from dbt's run_results.json."""
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    return {
        result["unique_id"].split(".")[2]: (result["status"], result["failures"])
        for result in results
        if result["unique_id"].startswith("test.")
    }


def test_keys_landed_again_with_other_values_are_a_warning(tmp_path):
    from warehouse import dbt_runner

    settings = fixture_settings(tmp_path, write_lake(tmp_path / "lake"))
    transactions = {row["transaction_id"]: row for row in _transactions()["A"]}
    members = {row["member_id"]: row for row in _members()["B"]}
    _land(
        settings.lake_dir,
        TRANSACTIONS,
        [
            {**transactions["T1"], "amount": Decimal("51.00")},  # corrected: a conflict
            # Delivered again as it was, recorded again: no conflict.
            {**transactions["T5"], "recorded_at": LATER[0]},
        ],
    )
    _land(
        settings.lake_dir,
        MEMBERS,
        [
            {**members["M2"], "tier": "silver"},  # same updated_at, other tier: a conflict
            # A later updated_at: a new version of the member, not a conflict.
            {**members["M1"], "tier": "platinum", "updated_at": datetime(2024, 4, 2, tzinfo=UTC)},
        ],
    )
    target_path = tmp_path / "dbt-target"
    result = dbt_runner.invoke(
        ["test", "--select", "source:loyalty"], settings, target="duckdb", target_path=target_path
    )
    assert result.success  # warnings do not fail the build
    found = {
        name.split("_")[5]: outcome  # the table's name
        for name, outcome in _test_results(target_path).items()
        if name.startswith("source_cx_conflicting_duplicates_loyalty_")
    }
    assert found == {"transactions": ("warn", 1), "members": ("warn", 1)}


def test_members_enrolled_after_the_as_of_date_are_counted_not_lost(tmp_path, duckdb_build):
    from warehouse import dbt_runner

    settings = fixture_settings(tmp_path)
    settings.duckdb_path.parent.mkdir(parents=True)
    shutil.copyfile(duckdb_build.settings.duckdb_path, settings.duckdb_path)
    target_path = tmp_path / "dbt-target"
    # M6 enrolled on 2024-03-05: after this as-of date.
    result = dbt_runner.invoke(
        ["build", "--select", "customer_360", "--vars", '{"as_of_date": "2024-03-01"}'],
        settings,
        target="duckdb",
        target_path=target_path,
    )
    assert result.success
    warned = {
        name: outcome
        for name, outcome in _test_results(target_path).items()
        if name.startswith("cx_missing_from_customer_360")
    }
    assert list(warned.values()) == [("warn", 1)]
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        assert con.execute(
            "select count(*) from customer_360 where member_id = 'M6'"
        ).fetchone() == (0,)
        assert con.execute(
            "select count(*) from dim_members where member_id = 'M6'"
        ).fetchone() == (1,)
