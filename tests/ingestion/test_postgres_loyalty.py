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


def test_text_watermarks_on_postgres_are_placed_after_parsing(postgres_database, tmp_path):
    from datetime import UTC, datetime

    """A source whose watermark columns are text, not timestamps: the server cannot compare them
    with the day's bounds (it refused to: text >= timestamptz), so the read takes every row and
    each is landed, quarantined or counted outside by the time it parses to."""
    transactions = [
        # id, occurred_at, recorded_at (both text)
        ("T1", "2026-05-31 18:00:00", "2026-05-31 18:00:05"),
        ("T2", "2026-06-01 20:00:00", "2026-06-02 07:00:00"),  # late: recorded on June 2
        ("T3", "2026-05-20 10:00:00", "2026/6/2 10:00"),  # June 2 to the parser
        ("T4", "2026-06-02 11:00:00", "1900000000"),  # no time: placed by occurred_at
        ("T5", "2026-06-02 12:00:00", "June 15 2026"),
        ("T6", "2026-05-20 13:00:00", "2026-06-02 4pm"),  # placed by its date
        ("T7", "not a time", "15-06-2026"),  # placed by nothing
        ("T8", "2026-06-02 14:00:00", None),
        ("T9", "2026-06-09 15:00:00", "2026-06-09 15:00:00"),  # after the day
    ]
    members = [
        # member_id, enrolled_at (varchar), updated_at (timestamptz)
        ("M1", "2025-01-05 10:00:00", "2026-05-31 09:00:00"),
        ("M2", "2026/6/2 09:00", None),  # enrolled on June 2, never updated
        ("M3", "1900000000", None),
        ("M4", "2026-06-05 09:00:00", None),
    ]
    engine = sa.create_engine(postgres_database)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "create table transactions (transaction_id text primary key, member_id text, "
            "occurred_at text, amount numeric(12, 2), recorded_at text)"
        )
        connection.exec_driver_sql(
            "create table members (member_id text primary key, enrolled_at varchar(40), "
            "updated_at timestamptz)"
        )
        connection.execute(
            sa.text("insert into transactions values (:id, 'M1', :occurred, 1.5, :recorded)"),
            [dict(id=t[0], occurred=t[1], recorded=t[2]) for t in transactions],
        )
        connection.execute(
            sa.text(
                "insert into members values (:id, :enrolled, cast(:updated || '+00' as timestamptz))"
            ),
            [dict(id=m[0], enrolled=m[1], updated=m[2]) for m in members],
        )
    engine.dispose()
    settings = load_settings(
        {
            "CX_DATA_DIR": str(tmp_path),
            "CX_LOYALTY_URL": postgres_database,
            "CX_BAD_ROW_THRESHOLD": "1.0",
        }
    )
    lake = Lake(settings.lake_dir)

    first = land(settings, contract.TRANSACTIONS, DAY1, DAY2)
    assert first["full_history"] is True
    day = land(settings, contract.TRANSACTIONS, DAY2, DAY3)
    for manifest in (first, day):
        assert manifest["rows_read"] == (
            manifest["rows_landed"]
            + manifest["rows_quarantined"]
            + manifest["rows_outside_interval"]
            + manifest["rows_suppressed"]
        ), manifest
    assert day["rows_read"] == len(transactions)
    interval = Interval(DAY2, DAY3)
    landed = duckdb.execute(
        f"select transaction_id from read_parquet('{lake.raw_path(contract.TRANSACTIONS, interval)}') "
        "order by 1"
    ).fetchall()
    assert [row[0] for row in landed] == ["T2", "T3", "T8"]
    quarantined = dict(
        duckdb.execute(
            "select transaction_id, _reject_reason from "
            f"read_parquet('{lake.quarantine_path(contract.TRANSACTIONS, interval)}')"
        ).fetchall()
    )
    assert quarantined == {
        "T4": "unparseable watermark: recorded_at 1900000000",
        "T5": "unparseable watermark: recorded_at June 15 2026",
        "T6": "unparseable watermark: recorded_at 2026-06-02 4pm",
        "T7": "unparseable watermark: occurred_at not a time; "
        "unparseable watermark: recorded_at 15-06-2026",
    }
    # T1 (May 31) and T9 (June 9) are other days'.
    assert day["rows_outside_interval"] == 2

    # The first load of members, to June 3; then June 5, when M4 enrolled. enrolled_at (text)
    # bounds nothing, so June 5 reads every member never updated, and places each.
    first = land(settings, contract.MEMBERS, DAY2, DAY3)
    assert first["full_history"] is True and first["rows_read"] == len(members)
    june_5 = Interval(datetime(2026, 6, 5, tzinfo=UTC), datetime(2026, 6, 6, tzinfo=UTC))
    day = land(settings, contract.MEMBERS, june_5.start, june_5.end)
    assert (day["rows_read"], day["rows_landed"], day["rows_outside_interval"]) == (3, 1, 1)
    assert duckdb.execute(
        f"select member_id from read_parquet('{lake.raw_path(contract.MEMBERS, june_5)}')"
    ).fetchall() == [("M4",)]
    assert duckdb.execute(
        "select member_id, _reject_reason from "
        f"read_parquet('{lake.quarantine_path(contract.MEMBERS, june_5)}')"
    ).fetchall() == [("M3", "unparseable watermark: enrolled_at 1900000000")]
