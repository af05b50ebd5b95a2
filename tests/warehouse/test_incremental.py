"""A chain of incremental runs over a growing lake gives the same facts as a full refresh."""

from __future__ import annotations

import hashlib

import pytest
from warehouse_fixture_lake import FIXTURE_VARS, fixture_settings, write_lake

FACTS = {
    "fct_transactions": "transaction_id",
    "fct_survey_responses": "response_id",
    "fct_calls": "call_id",
}
SELECT = ["+fct_transactions", "+fct_survey_responses", "+fct_calls"]


def fact_checksums(duckdb_path) -> dict[str, str]:
    import duckdb

    out = {}
    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        for table, key in FACTS.items():
            data = connection.execute(f"select * from {table} order by {key}").fetchall()
            out[table] = hashlib.sha256(repr(data).encode()).hexdigest()
    return out


@pytest.fixture(scope="module")
def incremental_chain(tmp_path_factory, duckdb_build):
    """Three runs as the lake grows: landing A without any call file (a source with no
    partition yet), then A+B, then A+B+C; returns the settings and checksums after the chain."""
    from warehouse import dbt_runner
    from warehouse.enrich import enrich_lake

    root = tmp_path_factory.mktemp("incremental")
    settings = fixture_settings(root)
    target_path = root / "dbt-target"
    stages = [(("A",), ("calls/contacts",)), (("A", "B"), ()), (("A", "B", "C"), ())]
    for landings, skip in stages:
        write_lake(settings.lake_dir, landings, skip)
        enrich_lake(settings)
        dbt_runner.run(
            settings, target="duckdb", select=SELECT, target_path=target_path, dbt_vars=FIXTURE_VARS
        )
    return settings, target_path, fact_checksums(settings.duckdb_path)


def test_incremental_chain_equals_the_full_build(incremental_chain, duckdb_build):
    _, _, chained = incremental_chain
    assert chained == fact_checksums(duckdb_build.settings.duckdb_path)


def test_full_refresh_equals_the_incremental_chain(incremental_chain):
    from warehouse import dbt_runner

    settings, target_path, chained = incremental_chain
    dbt_runner.run(
        settings,
        target="duckdb",
        select=SELECT,
        full_refresh=True,
        target_path=target_path,
        dbt_vars=FIXTURE_VARS,
    )
    assert fact_checksums(settings.duckdb_path) == chained


PIT_MARKER = -1.0


def test_point_in_time_features_rewrite_only_the_rows_whose_inputs_changed(tmp_path, duckdb_build):
    """A marker planted in every row survives the next run exactly where a member's inputs
    before the cutoff are unchanged. One member's spend changes on one day: only their rows after
    that day are rewritten. A member appears with history back to their enrolment: they gain a
    row at every cutoff since. A member is erased: their rows leave."""
    import shutil

    import duckdb

    from warehouse import dbt_runner

    settings = fixture_settings(tmp_path)
    settings.duckdb_path.parent.mkdir(parents=True)
    shutil.copyfile(duckdb_build.settings.duckdb_path, settings.duckdb_path)
    target_path = tmp_path / "dbt-target"
    member_spend = "select cutoff_date, spend_365d from member_features_pit where member_id = ?"
    with duckdb.connect(str(settings.duckdb_path)) as con:
        cutoffs = [
            row[0]
            for row in con.execute(
                "select distinct cutoff_date from member_features_pit order by 1"
            ).fetchall()
        ]
        assert len(cutoffs) >= 3, "the fixture lake must span three cutoffs"
        # The latest activity before the second-to-last cutoff gets one more unit of spend.
        member_id, day = con.execute(
            "select member_id, activity_date from fct_member_daily where activity_date < ? "
            "and activity_date >= ? order by activity_date desc, member_id limit 1",
            [cutoffs[-2], cutoffs[0]],
        ).fetchone()
        before = dict(con.execute(member_spend, [member_id]).fetchall())
        con.execute(
            "update fct_member_daily set spend_amount = spend_amount + 1 "
            "where member_id = ? and activity_date = ?",
            [member_id, day],
        )
        # Another member, present at the first cutoff: a twin of theirs appears (same enrolment
        # and history), and they are erased.
        twin_of = con.execute(
            "select min(member_id) from member_features_pit "
            "where cutoff_date = ? and member_id <> ? and spend_365d > 0",
            [cutoffs[0], member_id],
        ).fetchone()[0]
        twin_spend = dict(con.execute(member_spend, [twin_of]).fetchall())
        for table in ("dim_members", "fct_member_daily"):
            con.execute(
                f"insert into {table} select * replace ('TWIN' as member_id) "
                f"from {table} where member_id = ?",
                [twin_of],
            )
            con.execute(f"delete from {table} where member_id = ?", [twin_of])
        con.execute(
            "update fct_survey_responses set member_id = 'TWIN' where member_id = ?", [twin_of]
        )
        con.execute("update member_features_pit set spend_365d = ?", [PIT_MARKER])

    # One cutoff per batch, so the changed rows are written batch by batch.
    dbt_runner.run(
        settings,
        target="duckdb",
        select=["member_features_pit"],
        dbt_vars={**FIXTURE_VARS, "pit_batch_rows": 1},
        target_path=target_path,
    )

    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        rewritten = con.execute(
            "select member_id, cutoff_date from member_features_pit where spend_365d <> ? "
            "order by 1, 2",
            [PIT_MARKER],
        ).fetchall()
        after = dict(con.execute(member_spend, [member_id]).fetchall())
        twin_after = dict(con.execute(member_spend, ["TWIN"]).fetchall())
        erased = con.execute(
            "select count(*) from member_features_pit where member_id = ?", [twin_of]
        ).fetchone()[0]
    changed_cutoffs = [cutoff for cutoff in cutoffs if cutoff > day]
    assert rewritten == sorted(
        [(member_id, cutoff) for cutoff in changed_cutoffs]
        + [("TWIN", cutoff) for cutoff in twin_spend]
    )
    for cutoff in changed_cutoffs:
        expected = float(before[cutoff]) + (1 if (cutoff - day).days <= 365 else 0)
        assert float(after[cutoff]) == pytest.approx(expected)
    assert twin_after == twin_spend
    assert erased == 0


DAILY_MARKER = -7.0


def _mutate_facts(con) -> tuple[set[str], str]:
    """Change the facts the way late and corrected data does; return the members it touches
    and the one who left.

    One transaction's amount changes (member A); one call moves from member B to member C, who
    had no activity (a re-linked record: both change); member D leaves dim_members; member TWIN
    appears with copies of A's transactions (a member landed late, with history). At least one
    member with activity is left untouched."""
    active = [
        row[0]
        for row in con.execute(
            "select member_id from fct_member_daily group by member_id "
            "order by count(*) desc, member_id"
        ).fetchall()
    ]
    a = active[0]
    transaction_id = con.execute(
        "select min(transaction_id) from fct_transactions where member_id = ?", [a]
    ).fetchone()[0]
    con.execute(
        "update fct_transactions set amount = amount + 1 where transaction_id = ?",
        [transaction_id],
    )
    call_id, b = con.execute(
        "select call_id, member_id from fct_calls where member_id in (select unnest(?)) "
        "and member_id <> ? order by call_id limit 1",
        [active, a],
    ).fetchone()
    c = con.execute(
        "select min(member_id) from dim_members where member_id not in (select unnest(?))",
        [active],
    ).fetchone()[0]
    d = [member for member in active if member not in (a, b)][0]
    assert c is not None and set(active) - {a, b, d}, "the fixture needs more members"
    con.execute("update fct_calls set member_id = ? where call_id = ?", [c, call_id])
    con.execute("delete from dim_members where member_id = ?", [d])
    con.execute(
        "insert into dim_members select * replace ('TWIN' as member_id) "
        "from dim_members where member_id = ?",
        [a],
    )
    con.execute(
        "insert into fct_transactions select * replace ('TWIN' as member_id, "
        "'TWIN-' || transaction_id as transaction_id) from fct_transactions where member_id = ?",
        [a],
    )
    return {a, b, c, d, "TWIN"}, d


def _copy_warehouse(root, duckdb_build):
    import shutil

    settings = fixture_settings(root)
    settings.duckdb_path.parent.mkdir(parents=True)
    shutil.copyfile(duckdb_build.settings.duckdb_path, settings.duckdb_path)
    return settings


def _run_member_daily(settings, target_path, full_refresh=False):
    from warehouse import dbt_runner

    dbt_runner.run(
        settings,
        target="duckdb",
        select=["fct_member_daily"],
        full_refresh=full_refresh,
        target_path=target_path,
        dbt_vars=FIXTURE_VARS,
    )


DAILY_ROWS = (
    "select * exclude (inputs_hash) from fct_member_daily order by member_id, activity_date"
)


def test_member_daily_rewrites_only_the_members_whose_facts_changed(tmp_path, duckdb_build):
    """A marker planted in every day survives exactly for the members whose facts did not
    change; the table then equals a full refresh on the same facts."""
    import duckdb

    incremental = _copy_warehouse(tmp_path / "incremental", duckdb_build)
    with duckdb.connect(str(incremental.duckdb_path)) as con:
        touched, left = _mutate_facts(con)
        con.execute("update fct_member_daily set spend_amount = ?", [DAILY_MARKER])
    _run_member_daily(incremental, tmp_path / "incremental-target")
    full = _copy_warehouse(tmp_path / "full", duckdb_build)
    with duckdb.connect(str(full.duckdb_path)) as con:
        assert _mutate_facts(con) == (touched, left)
    _run_member_daily(full, tmp_path / "full-target", full_refresh=True)

    with duckdb.connect(str(incremental.duckdb_path), read_only=True) as con:
        rewritten = {
            row[0]
            for row in con.execute(
                "select distinct member_id from fct_member_daily where spend_amount <> ?",
                [DAILY_MARKER],
            ).fetchall()
        }
        incremental_rows = con.execute(DAILY_ROWS).fetchall()
        with_hash = con.execute("select * from fct_member_daily order by 1, 2").fetchall()
    with duckdb.connect(str(full.duckdb_path)) as con:
        with_days = {
            row[0]
            for row in con.execute(
                "select distinct member_id from fct_member_daily where member_id in "
                "(select unnest(?))",
                [sorted(touched)],
            ).fetchall()
        }
        assert with_days == touched - {left}
        assert rewritten == with_days
        con.execute(
            "update fct_member_daily set spend_amount = ? "
            "where member_id not in (select unnest(?))",
            [DAILY_MARKER, sorted(touched)],
        )
        assert incremental_rows == con.execute(DAILY_ROWS).fetchall()
        # The stored hashes equal the full refresh's, so the next run finds no change.
        assert with_hash == con.execute("select * from fct_member_daily order by 1, 2").fetchall()


def test_member_daily_written_before_its_hashes_is_rewritten_whole(tmp_path, duckdb_build):
    """A table from before inputs_hash existed gains the column and every member's days."""
    import duckdb

    settings = _copy_warehouse(tmp_path, duckdb_build)
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("alter table fct_member_daily drop column inputs_hash")
        con.execute("update fct_member_daily set spend_amount = ?", [DAILY_MARKER])
    _run_member_daily(settings, tmp_path / "dbt-target")
    query = "select * from fct_member_daily order by member_id, activity_date"
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        upgraded = con.execute(query).fetchall()
    with duckdb.connect(str(duckdb_build.settings.duckdb_path), read_only=True) as con:
        assert upgraded == con.execute(query).fetchall()


TRANSACTION_MARKER = -7
TRANSACTIONS = ["stg_loyalty__transactions", "fct_transactions"]
TRANSACTION_ROWS = "select * from fct_transactions order by transaction_id"


def _marked_keys(con) -> set[str]:
    return {
        row[0]
        for row in con.execute(
            "select transaction_id from fct_transactions where points_earned = ?",
            [TRANSACTION_MARKER],
        ).fetchall()
    }


def _land_transactions(folder, interval, rows):
    """A new partition of ``rows`` (dicts over the columns of landing C's file) for ``interval``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from warehouse_fixture_lake import INTERVALS, _partition_name

    schema = pq.read_schema(folder / _partition_name(INTERVALS["C"]))
    template = pq.read_table(folder / _partition_name(INTERVALS["C"])).to_pylist()[0]
    records = [
        {
            **template,
            **row,
            "_source_file": "transactions-D.export",
            "_source_row": index,
            "_interval_start": interval[0],
            "_interval_end": interval[1],
        }
        for index, row in enumerate(rows, start=1)
    ]
    pq.write_table(pa.Table.from_pylist(records, schema=schema), folder / _partition_name(interval))


def test_transactions_reread_only_the_keys_of_new_lake_files(tmp_path, duckdb_build):
    """fct_transactions reads again only the transactions of lake files it has not read as they
    are: a marker planted in every row survives a run with no new file, and a new landing plus
    a rewritten partition rewrite exactly their transactions, as a full refresh would. A
    warehouse without the ledger, or a ledger from another definition, compares every row."""
    import os
    from datetime import UTC, datetime
    from decimal import Decimal

    import duckdb
    from warehouse_fixture_lake import INTERVALS, _partition_name

    from warehouse import dbt_runner

    settings = _copy_warehouse(tmp_path / "incremental", duckdb_build)
    write_lake(settings.lake_dir)
    target_path = tmp_path / "dbt-target"

    def run(full_refresh=False, on=settings):
        dbt_runner.run(
            on,
            target="duckdb",
            select=TRANSACTIONS,
            full_refresh=full_refresh,
            target_path=target_path,
            dbt_vars=FIXTURE_VARS,
        )

    def mark(statement="update fct_transactions set points_earned = ?"):
        with duckdb.connect(str(settings.duckdb_path)) as con:
            con.execute(statement, [TRANSACTION_MARKER])
            return {
                row[0]
                for row in con.execute("select transaction_id from fct_transactions").fetchall()
            }

    def marked():
        with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
            return _marked_keys(con)

    def logged():
        """What the runs since the last call logged for the analysts' copy (then forgotten)."""
        with duckdb.connect(str(settings.duckdb_path)) as con:
            rows = con.execute(
                "select key_column, key_value from cx_state.publish_log "
                "where table_name = 'fct_transactions'"
            ).fetchall()
            con.execute("delete from cx_state.publish_log")
        return rows

    # A warehouse from before the ledger: every row is compared, so every marker goes.
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("drop schema cx_state cascade")
    mark()
    run()
    assert marked() == set()
    # Every file was new: the analysts' copy is told to compare every row, not sent every key.
    assert logged() == [(None, None)]
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        ledger = con.execute(
            "select model, file from cx_state.lake_files_read order by file"
        ).fetchall()
    folder = settings.lake_dir / "raw" / "loyalty" / "transactions"
    assert ledger == [
        ("fct_transactions", str(folder / _partition_name(INTERVALS[landing]))) for landing in "ABC"
    ]

    # No file is new: nothing is read again, the markers stay, and nothing is logged.
    every = mark()
    logged()
    run()
    assert marked() == every
    assert logged() == []

    # A new landing (a later version of T1, a new transaction) and a partition rewritten as it
    # was (landing B: T2, T8, T9) are read again; nothing else is.
    day = (datetime(2024, 4, 2, tzinfo=UTC), datetime(2024, 4, 3, tzinfo=UTC))
    _land_transactions(
        folder,
        day,
        [
            {"transaction_id": "T1", "member_id": "M1", "amount": Decimal("55.00")},
            {"transaction_id": "T-NEW", "member_id": "M2"},
        ],
    )
    rewritten = folder / _partition_name(INTERVALS["B"])
    modified = rewritten.stat().st_mtime_ns + 1_000_000_000
    os.utime(rewritten, ns=(modified, modified))
    run()
    reread = {"T1", "T-NEW", "T2", "T8", "T9"}
    assert marked() == every - reread
    # The analysts' copy will compare just those transactions.
    assert sorted(logged()) == [("transaction_id", key) for key in sorted(reread)]

    # A full refresh on the same lake, from the built warehouse.
    _copy_warehouse(tmp_path / "full", duckdb_build)
    full = fixture_settings(tmp_path / "full", settings.lake_dir)
    run(full_refresh=True, on=full)
    with duckdb.connect(str(full.duckdb_path)) as con:
        con.execute(
            "update fct_transactions set points_earned = ? "
            "where transaction_id not in (select unnest(?))",
            [TRANSACTION_MARKER, sorted(reread)],
        )
        expected = con.execute(TRANSACTION_ROWS).fetchall()
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        assert con.execute(TRANSACTION_ROWS).fetchall() == expected
        assert con.execute(
            "select amount from fct_transactions where transaction_id = 'T1'"
        ).fetchone() == (Decimal("55.00"),)

    # A ledger written by another definition of the model: every file is read again.
    mark()
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("update cx_state.lake_files_read set definition = 'an older definition'")
    logged()
    run()
    assert marked() == set()
    assert logged() == [(None, None)]


def test_point_in_time_features_in_batches_equal_one_statement(tmp_path, duckdb_build):
    """A full refresh one cutoff per statement (the model writes the first, its post-hook the
    rest) gives the same table as one statement for every cutoff."""
    import shutil

    import duckdb

    from warehouse import dbt_runner

    settings = fixture_settings(tmp_path)
    settings.duckdb_path.parent.mkdir(parents=True)
    shutil.copyfile(duckdb_build.settings.duckdb_path, settings.duckdb_path)
    dbt_runner.run(
        settings,
        target="duckdb",
        select=["member_features_pit"],
        full_refresh=True,
        dbt_vars={**FIXTURE_VARS, "pit_batch_rows": 1},
        target_path=tmp_path / "dbt-target",
    )
    query = "select * from member_features_pit order by member_cutoff_id"
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        batched = con.execute(query).fetchall()
        cutoffs = con.execute("select count(distinct cutoff_date) from member_features_pit")
        assert cutoffs.fetchone()[0] >= 3
    with duckdb.connect(str(duckdb_build.settings.duckdb_path), read_only=True) as con:
        assert batched == con.execute(query).fetchall()


def test_a_bad_batch_size_names_the_variable(tmp_path, duckdb_build):
    import shutil

    from warehouse import dbt_runner
    from warehouse.dbt_runner import DbtError

    settings = fixture_settings(tmp_path)
    settings.duckdb_path.parent.mkdir(parents=True)
    shutil.copyfile(duckdb_build.settings.duckdb_path, settings.duckdb_path)
    with pytest.raises(DbtError, match="var pit_batch_rows must be a whole number.*'lots'"):
        dbt_runner.run(
            settings,
            target="duckdb",
            select=["member_features_pit"],
            full_refresh=True,
            dbt_vars={**FIXTURE_VARS, "pit_batch_rows": "lots"},
            target_path=tmp_path / "dbt-target",
        )


def test_the_analysts_copy_compares_only_the_rows_the_models_logged(tmp_path, duckdb_build):
    """After a publish, the next run of fct_member_daily and member_features_pit logs the members
    it rewrites, and the daily publish compares only their rows of those two tables, yet ends
    equal to a fresh copy; it then records its position and drops the entries it took in. A
    change the log does not name stays out of the copy until the position is forgotten (as
    erasure forgets it); then every row is compared again."""
    import duckdb
    from test_duckdb_build import _published_state

    from warehouse import dbt_runner, publish

    settings = _copy_warehouse(tmp_path / "live", duckdb_build)
    live = settings.duckdb_path
    copy = publish.published_path(live)
    # The build's own run logged its tables as written whole; the first publish compares all.
    publish.publish_duckdb(live, by_rows=True)
    with duckdb.connect(str(live), read_only=True) as con:
        assert con.execute("select count(*) from cx_state.publish_log").fetchone() == (0,)
        position = con.execute("select log_id from cx_state.publish_log_position").fetchall()
    assert len(position) == 1 and position[0][0] > 0

    with duckdb.connect(str(live)) as con:
        touched, _ = _mutate_facts(con)
    dbt_runner.run(
        settings,
        target="duckdb",
        select=["fct_member_daily", "member_features_pit"],
        target_path=tmp_path / "dbt-target",
        dbt_vars=FIXTURE_VARS,
    )
    with duckdb.connect(str(live), read_only=True) as con:
        logged = con.execute(
            "select table_name, key_value from cx_state.publish_log where key_column = 'member_id'"
        ).fetchall()
    assert touched <= {member for table, member in logged if table == "fct_member_daily"}
    assert {member for table, member in logged if table == "member_features_pit"} & touched

    compared = {}
    sync_rows = publish._sync_rows

    def recording(connection, table, changed_rows=None):
        compared[table] = changed_rows
        return sync_rows(connection, table, changed_rows)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(publish, "_sync_rows", recording)
        publish.publish_duckdb(live, by_rows=True)
    for table in ("fct_member_daily", "member_features_pit"):
        assert compared[f'"main"."{table}"'].startswith('cast("member_id" as varchar) in (')
    assert compared['"main"."customer_360"'] is None  # not logged: every row compared
    # _mutate_facts wrote fct_transactions itself, outside the log: nothing is compared, and the
    # table, whose row count no longer matches, is copied whole.
    assert compared['"main"."fct_transactions"'] == "false"
    assert _published_state(copy) == _published_state(
        publish.publish_duckdb(live, tmp_path / "fresh" / "cx.duckdb")
    )
    with duckdb.connect(str(live), read_only=True) as con:
        assert con.execute("select count(*) from cx_state.publish_log").fetchone() == (0,)
        assert (
            con.execute("select log_id from cx_state.publish_log_position").fetchone()[0]
            > (position[0][0])
        )

    spend = "select sum(spend_amount) from fct_member_daily where member_id = ?"
    with duckdb.connect(str(live)) as con:
        unlogged = con.execute(
            "select min(member_id) from fct_member_daily where member_id not in (select unnest(?))",
            [sorted(touched)],
        ).fetchone()[0]
        con.execute(
            "update fct_member_daily set spend_amount = spend_amount + 1000 where member_id = ?",
            [unlogged],
        )
        updated = con.execute(spend, [unlogged]).fetchone()[0]
    publish.publish_duckdb(live, by_rows=True)
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.execute(spend, [unlogged]).fetchone()[0] != updated
    with duckdb.connect(str(live)) as con:
        publish.forget_log_position(con)
    publish.publish_duckdb(live, by_rows=True)
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.execute(spend, [unlogged]).fetchone()[0] == updated
