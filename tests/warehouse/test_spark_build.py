"""The warehouse built on Spark (local PySpark, dbt-spark's session method) over the fixture
lake: every model builds, and every table it makes holds the same rows as DuckDB's.

The fixture lake has the cases that are easy to get wrong on another engine: versions landed
twice (deduplication), a late transaction that must stay out of an earlier point-in-time cutoff,
members linked by email and phone in other formats (the normalisation macros), and a late call
that makes an earlier one a repeat.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest
from warehouse_fixture_lake import LEAK_AMOUNT, LEAK_MEMBER_ID, LEAK_TRANSACTION_ID, PIT_CUTOFF

pytestmark = pytest.mark.spark

# Each engine's own hash of a row (change detection): equal within an engine, not across.
ENGINE_HASHES = {"member_inputs_hash", "input_row_hash", "inputs_hash", "inputs_fingerprint"}


def _tables(build) -> list[tuple[str, str]]:
    """(schema, name) of every model the Spark build made a table of."""
    manifest = json.loads((build.target_path / "manifest.json").read_text())
    return sorted(
        (node["schema"], node["alias"])
        for unique_id, node in manifest["nodes"].items()
        if build.result.node_statuses.get(unique_id) == "success"
        and node["resource_type"] == "model"
        and node["config"]["materialized"] in ("table", "incremental")
    )


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in one order with values as both engines give them: decimals and floats rounded
    (an engine's average may differ in the last bits), timestamps without a zone."""
    frame = frame.drop(columns=[c for c in frame.columns if c in ENGINE_HASHES])
    for column in frame.columns:
        series = frame[column]
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            frame[column] = series.dt.tz_convert("UTC").dt.tz_localize(None)
        elif pd.api.types.is_datetime64_any_dtype(series):
            frame[column] = series.astype("datetime64[us]")
        elif pd.api.types.is_float_dtype(series) or pd.api.types.is_integer_dtype(series):
            frame[column] = series.astype("float64").round(9)
        elif pd.api.types.is_bool_dtype(series):
            frame[column] = series.astype("boolean")
        else:
            frame[column] = series.map(lambda value: None if pd.isna(value) else str(value))
    ordered = frame.sort_values(list(frame.columns), na_position="first", kind="stable")
    return ordered.reset_index(drop=True)


def test_every_model_builds_on_spark(spark_build):
    result = spark_build.result
    assert result.success, result.failures
    manifest = json.loads((spark_build.target_path / "manifest.json").read_text())
    models = {uid for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"}
    assert len(models) >= 20
    assert {result.node_statuses.get(uid) for uid in models} == {"success"}


def test_the_marts_equal_duckdbs_row_for_row(spark_build, spark_session, duckdb_connection):
    from warehouse.store import arrow_to_frame

    compared = []
    for schema, name in _tables(spark_build):
        duckdb_schema = "main" if schema == "analytics" else schema
        expected = duckdb_connection.execute(f"select * from {duckdb_schema}.{name}").fetchdf()
        got = arrow_to_frame(spark_session.table(f"{schema}.{name}").toArrow())
        assert list(got.columns) == list(expected.columns), name
        assert len(got) == len(expected), name
        pd.testing.assert_frame_equal(
            _comparable(got), _comparable(expected), check_dtype=False, obj=name
        )
        compared.append(name)
    assert {"customer_360", "member_features_pit", "fct_transactions", "dim_members"} <= set(
        compared
    )


def test_the_late_transaction_stays_out_of_the_earlier_cutoff_on_spark(spark_build, spark_session):
    """The point-in-time features on Spark: the late transaction is in the facts, and counts at
    the cutoff after it landed, not at the one before."""
    facts = spark_session.sql(
        "select count(*) from analytics.fct_transactions "
        f"where transaction_id = '{LEAK_TRANSACTION_ID}'"
    ).collect()[0][0]
    assert facts == 1
    by_cutoff = dict(
        spark_session.sql(
            "select cutoff_date, spend_365d from analytics.member_features_pit "
            f"where member_id = '{LEAK_MEMBER_ID}'"
        ).collect()
    )
    # As on DuckDB (test_duckdb_build.py): T1, T2, T3 and the late-landed T9 precede the cutoff.
    assert by_cutoff[PIT_CUTOFF] == Decimal("105.00")
    assert by_cutoff[date(2024, 3, 1)] == Decimal("145.00") + LEAK_AMOUNT
