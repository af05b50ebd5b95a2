"""The loyalty extract against a real PostgreSQL server: same contract, same results as SQLite."""

from __future__ import annotations

import duckdb
import pytest
import sqlalchemy as sa
from fixture_sources import DAY1, DAY2, DAY3, MEMBERS, TRANSACTIONS

from config import load_settings
from ingestion import contract
from ingestion.lake import Interval, Lake
from ingestion.land import land

pytestmark = pytest.mark.postgres


def load_loyalty(url: str) -> None:
    """The fixture loyalty tables with PostgreSQL's own types (timestamptz, numeric, boolean)."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "create table members (member_id text primary key, enrolled_at timestamptz not null, "
            "updated_at timestamptz, email text, phone text, tier text, marketing_opt_in boolean, "
            "closed_at timestamptz, favourite_colour text)"
        )
        connection.exec_driver_sql(
            "create table transactions (transaction_id text primary key, member_id text, "
            "occurred_at timestamptz, amount numeric(12, 2), recorded_at timestamptz, "
            "channel text, points_earned integer)"
        )
        connection.execute(
            sa.text(
                "insert into members values (:id, cast(:enrolled || '+00' as timestamptz), cast(:updated || '+00' as timestamptz), :email, "
                ":phone, :tier, :opt_in, null, 'teal')"
            ),
            [
                dict(
                    id=m[0],
                    enrolled=m[1],
                    updated=m[2],
                    email=m[3],
                    phone=m[4],
                    tier=m[5],
                    opt_in=None if m[6] is None else bool(m[6]),
                )
                for m in MEMBERS
            ],
        )
        connection.execute(
            sa.text(
                "insert into transactions values (:id, :member, cast(:occurred || '+00' as timestamptz), :amount, "
                "cast(:recorded || '+00' as timestamptz), :channel, :points)"
            ),
            [
                dict(
                    id=t[0],
                    member=t[1],
                    occurred=t[2],
                    amount=float(t[3]),
                    recorded=t[4],
                    channel=t[5],
                    points=t[6],
                )
                for t in TRANSACTIONS
                if t[3] != "twelve"  # PostgreSQL enforces numeric: that row cannot exist there
            ],
        )
    engine.dispose()


def test_loyalty_extract_on_postgres_matches_the_contract(postgres_database, tmp_path):
    load_loyalty(postgres_database)
    settings = load_settings({"CX_DATA_DIR": str(tmp_path), "CX_LOYALTY_URL": postgres_database})
    lake = Lake(settings.lake_dir)

    members = land(settings, contract.MEMBERS, DAY2, DAY3)
    assert (members["rows_landed"], members["rows_quarantined"]) == (3, 0)
    assert members["extra_columns"] == ["favourite_colour"]

    first = land(settings, contract.TRANSACTIONS, DAY1, DAY2)
    assert first["full_history"] is True and first["rows_landed"] == 2
    second = land(settings, contract.TRANSACTIONS, DAY2, DAY3)
    landed = duckdb.execute(
        f"select transaction_id, amount, occurred_at from "
        f"read_parquet('{lake.raw_path(contract.TRANSACTIONS, Interval(DAY2, DAY3))}') order by 1"
    ).fetchall()
    assert second["watermark"] == ["recorded_at", "occurred_at"]
    assert [row[0] for row in landed] == ["T3", "T4"]
    assert float(landed[0][1]) == 40.0
    assert landed[0][2].utcoffset().total_seconds() == 0


def test_ingestion_dag_runs_on_postgres(postgres_database, tmp_path, monkeypatch):
    from datetime import UTC, datetime

    from pipeline.run import migrate_airflow_db, run_dag

    load_loyalty(postgres_database)
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CX_LOYALTY_URL", postgres_database)
    migrate_airflow_db()
    run_dag("ingest_loyalty", datetime(2026, 6, 3, tzinfo=UTC))
    lake = Lake(tmp_path / "lake")
    assert [p.end for p in lake.partitions(contract.MEMBERS)] == [DAY3]
    assert [p.end for p in lake.partitions(contract.TRANSACTIONS)] == [DAY3]
