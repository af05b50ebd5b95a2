"""The Great Expectations suite on a staged file: each kind of expectation fails when it should.

The suite runs chunk by chunk on large files; the counts over the chunks must give the verdict
of one run on the whole file.

Integer columns arrive with nulls (NumPy floats with NaN once in pandas): the range check must
still see an out-of-range value, and a null must not count against the range.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion import contract
from ingestion.quality import validate_parquet

ROWS = 40


def _responses(**overrides) -> pa.Table:
    columns = {
        "response_id": [f"R{i}" for i in range(ROWS)],
        "submitted_at": pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * ROWS),
        "survey_type": ["relationship"] * ROWS,
        "channel": ["email"] * ROWS,
        "nps": pa.array([None if i % 4 == 0 else i % 11 for i in range(ROWS)], pa.int64()),
    }
    columns.update(overrides)
    table = pa.table(columns)
    for column in contract.SURVEY_RESPONSES.columns:
        if column.name not in table.column_names:
            table = table.append_column(column.name, pa.nulls(ROWS, pa.string()))
    return table


def _failed(tmp_path, table: pa.Table, chunk_rows: int = 1_000) -> dict[tuple[str, str], int]:
    path = tmp_path / "staged.parquet"
    pq.write_table(table, path)
    summary = validate_parquet(
        path, contract.SURVEY_RESPONSES, expect_rows=True, chunk_rows=chunk_rows
    )
    assert summary.success == (not summary.failed)
    return {(f["expectation"], f["column"]): f["unexpected_count"] for f in summary.failed}


def test_a_clean_file_passes_with_nulls_in_ranged_columns(tmp_path):
    assert _failed(tmp_path, _responses()) == {}


@pytest.mark.parametrize("bad", [11, -1])
def test_an_out_of_range_integer_fails_the_range_check(tmp_path, bad):
    nps = pa.array(
        [None if i % 4 == 0 else (bad if i == 5 else 3) for i in range(ROWS)], pa.int64()
    )
    assert _failed(tmp_path, _responses(nps=nps)) == {
        ("expect_column_values_to_be_between", "nps"): 1
    }


def test_a_missing_required_value_fails_the_null_check(tmp_path):
    ids = [None if i < 2 else f"R{i}" for i in range(ROWS)]
    assert _failed(tmp_path, _responses(response_id=ids)) == {
        ("expect_column_values_to_not_be_null", "response_id"): 2
    }


def test_unknown_enum_values_fail_only_above_the_tolerated_share(tmp_path):
    one_unknown = ["kiosk"] + ["email"] * (ROWS - 1)  # 2.5%: tolerated
    assert _failed(tmp_path, _responses(channel=one_unknown)) == {}
    many_unknown = ["kiosk"] * 4 + ["email"] * (ROWS - 4)  # 10%: not
    assert _failed(tmp_path, _responses(channel=many_unknown)) == {
        ("expect_column_values_to_be_in_set", "channel"): 4
    }


def test_chunks_add_up_to_the_verdict_on_the_whole_file(tmp_path):
    # One unknown channel in the first 10 rows is 10% of that chunk but 2.5% of the file:
    # tolerated, as on the whole file.
    one_unknown = ["kiosk"] + ["email"] * (ROWS - 1)
    assert _failed(tmp_path, _responses(channel=one_unknown), chunk_rows=10) == {}
    # Spread over chunks, the counts add up.
    ids = [None if i % 10 == 0 else f"R{i}" for i in range(ROWS)]
    many_unknown = ["kiosk" if i % 10 == 1 else "email" for i in range(ROWS)]
    for chunk_rows in (7, ROWS):
        assert _failed(
            tmp_path, _responses(response_id=ids, channel=many_unknown), chunk_rows=chunk_rows
        ) == {
            ("expect_column_values_to_not_be_null", "response_id"): 4,
            ("expect_column_values_to_be_in_set", "channel"): 4,
        }


def test_an_empty_file_fails_only_the_row_count(tmp_path):
    empty = _responses().slice(0, 0)
    assert _failed(tmp_path, empty) == {("expect_table_row_count_to_be_between", None): None}


def test_the_suite_does_not_hash_every_row_of_its_frames(tmp_path, monkeypatch):
    """GX fingerprints each pandas batch under 1 GB by hashing all its rows, metadata nothing
    reads (most of the landing's validation time at 1M members); the context turns it off."""
    from great_expectations.execution_engine import pandas_execution_engine

    def hashed(frame):
        raise AssertionError(f"GX hashed a frame of {len(frame)} rows")

    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe", hashed)
    monkeypatch.setattr(pandas_execution_engine, "HASH_THRESHOLD", 1e9)  # GX's own default
    nps = pa.array([None if i % 4 == 0 else (11 if i == 5 else 3) for i in range(ROWS)])
    assert _failed(tmp_path, _responses(nps=nps), chunk_rows=7) == {
        ("expect_column_values_to_be_between", "nps"): 1
    }
