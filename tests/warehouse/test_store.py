"""The store on both warehouses: the same verbs give the same rows and dtypes, a writer writes
only its owner's tables, and a failed write leaves the previous rows in place."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from warehouse.store import DuckDBStore, PostgresStore, StoreError

SCORE_COLUMNS = {
    "member_id": "varchar",
    "score_date": "date",
    "model_version": "varchar",
    "churn_probability": "double",
    "is_lapsed": "boolean",
    "risk_band": "varchar",
}


@pytest.fixture(params=["duckdb", "postgres", pytest.param("spark", marks=pytest.mark.spark)])
def store(request, tmp_path):
    if request.param == "duckdb":
        return DuckDBStore(tmp_path / "cx.duckdb")
    import uuid

    if request.param == "spark":
        from warehouse.spark import SparkStore

        # The test session's one SparkSession (tests/warehouse/conftest.py), a schema per test.
        request.getfixturevalue("spark_session")
        settings = request.getfixturevalue("spark_settings")
        return SparkStore(settings, f"store_test_{uuid.uuid4().hex[:8]}")

    # The warehouse tests' session database (tests/warehouse/conftest.py), in a schema of its own.
    params = request.getfixturevalue("postgres_database")
    password = f":{params['password']}" if params.get("password") else ""
    uri = f"postgresql://{params['user']}{password}@{params['host']}:{params['port']}/{params['dbname']}"
    return PostgresStore(uri, f"store_test_{uuid.uuid4().hex[:8]}")


def _scores(day: date, members=("M1", "M2", "M3")) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member_id": list(members),
            "score_date": [pd.Timestamp(day)] * len(members),
            "model_version": ["cx_churn/1"] * len(members),
            "churn_probability": [0.1 * (i + 1) for i in range(len(members))],
            "is_lapsed": [False, None, True][: len(members)],
            "risk_band": ["low", "medium", "high"][: len(members)],
        }
    )


def test_replace_reads_back_with_the_same_dtypes(store):
    with store.writer("models") as writer:
        writer.ensure("ml_scores", SCORE_COLUMNS)
        writer.replace("ml_scores", _scores(date(2026, 6, 1)), {"score_date": date(2026, 6, 1)})
        writer.replace("ml_scores", _scores(date(2026, 6, 2)), {"score_date": date(2026, 6, 2)})
    with store.writer("models") as writer:
        # A rerun of a day replaces that day only.
        writer.replace(
            "ml_scores", _scores(date(2026, 6, 2), ("M1",)), {"score_date": date(2026, 6, 2)}
        )
    rows = store.read(
        "select member_id, score_date, churn_probability, is_lapsed from ml_scores "
        "where score_date = $1 order by member_id",
        [date(2026, 6, 1)],
    )
    assert rows["member_id"].tolist() == ["M1", "M2", "M3"]
    assert str(rows["score_date"].dtype).startswith("datetime64")
    assert str(rows["is_lapsed"].dtype) == "boolean" and rows["is_lapsed"].isna().sum() == 1
    counts = store.read("select score_date, count(*) as n from ml_scores group by 1 order by 1")
    assert counts["n"].tolist() == [3, 1]
    assert str(counts["n"].dtype) == "int64"
    assert store.columns("ml_scores") == list(SCORE_COLUMNS)


def test_decimals_read_as_floats_on_both(store):
    """The marts' money columns are NUMERIC(18, 2): DuckDB gives a decimal, PostgreSQL's driver
    the number's text; both read as float64, nulls as NaN (a comparison with a number works)."""
    with store.writer("models") as writer:
        writer.ensure("ml_scores", SCORE_COLUMNS)
    rows = store.read(
        "select cast(amount as decimal(18, 2)) as amount, sum(cast(amount as decimal(18, 2))) "
        "over () as total from (values (651.65), (null), (-2.5)) as t(amount)"
    )
    assert str(rows["amount"].dtype) == "float64" and str(rows["total"].dtype) == "float64"
    assert rows["amount"].isna().tolist() == [False, True, False]
    assert (rows["amount"] > 0).tolist() == [True, False, False]
    assert rows["total"].tolist() == pytest.approx([649.15] * 3)


def test_duckdb_sql_runs_on_both(store):
    """Queries are written once in DuckDB's dialect (QUALIFY here); PostgreSQL gets them
    translated."""
    with store.writer("models") as writer:
        writer.ensure("ml_scores", SCORE_COLUMNS)
        writer.insert("ml_scores", _scores(date(2026, 6, 1)))
        writer.insert("ml_scores", _scores(date(2026, 6, 2), ("M1", "M2")))
    latest = store.read(
        "select member_id, score_date from ml_scores qualify row_number() over "
        "(partition by member_id order by score_date desc) = 1 order by member_id"
    )
    assert latest["score_date"].dt.day.tolist() == [2, 2, 1]


def test_a_writer_writes_only_its_owners_tables(store):
    with pytest.raises(StoreError, match="programs may not write ml_scores"):
        with store.writer("programs") as writer:
            writer.ensure("ml_scores", SCORE_COLUMNS)
    assert not store.exists("ml_scores")


def test_a_failed_write_keeps_the_last_good_rows(store):
    with store.writer("models") as writer:
        writer.ensure("ml_scores", SCORE_COLUMNS)
        writer.insert("ml_scores", _scores(date(2026, 6, 1)))
    with pytest.raises(RuntimeError, match="scoring died"):
        with store.writer("models") as writer:
            writer.delete("ml_scores")
            raise RuntimeError("scoring died")
    assert len(store.read("select * from ml_scores")) == 3


def test_delete_keys_and_new_columns(store):
    with store.writer("models") as writer:
        writer.ensure("ml_scores", SCORE_COLUMNS)
        writer.insert("ml_scores", _scores(date(2026, 6, 1)))
    with store.writer("models") as writer:
        writer.ensure("ml_scores", {**SCORE_COLUMNS, "reason_1": "varchar"})
        assert writer.delete_keys("ml_scores", "member_id", ["M1", "M3", "M9"]) == 2
    rows = store.read("select member_id, reason_1 from ml_scores")
    assert rows["member_id"].tolist() == ["M2"] and rows["reason_1"].isna().all()


def test_named_parameters(store):
    with store.writer("models") as writer:
        writer.ensure("ml_scores", SCORE_COLUMNS)
        writer.insert("ml_scores", _scores(date(2026, 6, 1)))
    rows = store.read(
        "select member_id from ml_scores where score_date = $day and risk_band <> $band "
        "and churn_probability >= $floor order by member_id",
        {"floor": 0.15, "day": date(2026, 6, 1), "band": "high"},
    )
    assert rows["member_id"].tolist() == ["M2"]


def test_a_writer_sees_its_own_columns_and_compaction_leaves_no_deleted_bytes(store):
    """Erasure deletes through a writer, then compacts: DuckDB rewrites the file without the
    deleted rows' bytes, PostgreSQL vacuums the table."""
    marker = "erased-member-7f3c9a1be24d"
    with store.writer("models") as writer:
        assert writer.columns("ml_scores") == []
        writer.ensure("ml_scores", SCORE_COLUMNS)
        assert writer.columns("ml_scores") == list(SCORE_COLUMNS)
        writer.insert("ml_scores", _scores(date(2026, 6, 1), (marker, "M2")))
    if store.target == "duckdb":
        assert marker.encode() in store.path.read_bytes()
    elif store.target == "spark":
        assert marker.encode() in _spark_table_bytes(store, "ml_scores")
    with store.writer("models") as writer:
        assert writer.delete_keys("ml_scores", "member_id", [marker]) == 1
    store.compact(["ml_scores"])
    assert store.read("select member_id from ml_scores")["member_id"].tolist() == ["M2"]
    if store.target == "duckdb":
        assert marker.encode() not in store.path.read_bytes()
    elif store.target == "spark":
        # Each write rewrites the table's files whole: the old files are gone.
        assert marker.encode() not in _spark_table_bytes(store, "ml_scores")
    else:
        vacuumed = store.read(
            "select last_vacuum from pg_stat_user_tables where schemaname = $1 "
            "and relname = 'ml_scores'",
            [store.schema],
        )
        assert vacuumed["last_vacuum"].notna().all() and len(vacuumed) == 1


def _spark_table_bytes(store, table: str) -> bytes:
    """The bytes of every file in the Spark table's folder."""
    from pathlib import Path

    spark = store._spark()
    location = (
        spark.sql(f"describe table extended {store._name(table)}")
        .where("col_name = 'Location'")
        .collect()[0]["data_type"]
    )
    folder = Path(location.removeprefix("file:"))
    return b"".join(path.read_bytes() for path in folder.rglob("*") if path.is_file())


def test_a_postgres_writer_leaves_statistics_for_the_rows_it_wrote(store):
    if store.target != "postgres":
        pytest.skip("PostgreSQL only: DuckDB keeps its statistics as it writes, Spark has none")
    with store.writer("models") as writer:
        writer.ensure("ml_scores", SCORE_COLUMNS)
        writer.insert("ml_scores", _scores(date(2026, 6, 1)))
    # A table never analysed has reltuples -1 (PostgreSQL 14 and later): the planner guesses.
    analysed = store.read(
        "select reltuples from pg_class where relname = 'ml_scores' and relnamespace = "
        "(select oid from pg_namespace where nspname = $1)",
        [store.schema],
    )
    assert analysed["reltuples"].tolist() == [3.0]
