"""The same warehouse on PostgreSQL: the raw loader, then the same dbt build."""

from __future__ import annotations

import pytest
from warehouse_fixture_lake import EXPECTED_LINKS, FIXTURE_VARS, MEMBER_IDS

pytestmark = pytest.mark.postgres


def fetch(connection, sql):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_build_passes_on_postgres(postgres_build):
    assert postgres_build.result.success, postgres_build.result.failures
    # Exposures (what reads the warehouse outside dbt) have nothing to run: dbt reports no-op.
    statuses = {
        status
        for node, status in postgres_build.result.node_statuses.items()
        if not node.startswith("exposure.")
    }
    assert statuses <= {"success", "pass"}


def test_postgres_marts_match_duckdb(postgres_connection, duckdb_connection):
    assert fetch(
        postgres_connection,
        "select count(*), count(distinct member_id) from analytics.customer_360",
    ) == [(len(MEMBER_IDS), len(MEMBER_IDS))]
    links = {
        (record_type, record_id): (member_id, method)
        for record_type, record_id, member_id, method in fetch(
            postgres_connection,
            "select record_type, record_id, member_id, link_method from analytics.int_identity_links",
        )
    }
    assert links == EXPECTED_LINKS
    query = (
        "select member_id, cutoff_date, spend_365d, points_balance, latest_nps_score, "
        "negative_moments_90d from {schema}member_features_pit order by 1, 2"
    )
    assert fetch(postgres_connection, query.format(schema="analytics.")) == (
        duckdb_connection.execute(query.format(schema="")).fetchall()
    )
    assert fetch(postgres_connection, "select count(*) from restricted.member_contacts") == [(6,)]


def test_loader_skips_unchanged_files_and_replaces_changed_ones(
    postgres_build, postgres_database, fixture_lake, tmp_path
):
    import shutil

    import pyarrow.parquet as pq

    from warehouse.load_postgres import load_lake

    lake = tmp_path / "lake"
    shutil.copytree(fixture_lake, lake)
    again = load_lake(lake, postgres_database)
    assert again.loaded == [] and len(again.unchanged) >= 10

    folder = lake / "raw" / "loyalty" / "transactions"
    changed = sorted(folder.glob("interval=*.parquet"))[0]
    table = pq.read_table(changed)
    pq.write_table(table.slice(0, 2), changed)  # the partition now carries two rows
    report = load_lake(lake, postgres_database)
    assert report.loaded == [f"transactions/{changed.name}"]

    import psycopg2

    with psycopg2.connect(**postgres_database) as connection:
        assert fetch(
            connection, f"select count(*) from raw.transactions where _lake_file = '{changed.name}'"
        ) == [(2,)]
    # Put the original back so the shared database stays as the build saw it.
    pq.write_table(table, changed)
    assert load_lake(lake, postgres_database).loaded == [f"transactions/{changed.name}"]


def _change_and_run(build, connection, update, parameters, model):
    """Apply one update to the PostgreSQL warehouse, then run ``model`` incrementally."""
    from warehouse import dbt_runner

    with connection.cursor() as cursor:
        cursor.execute(update, parameters)
    connection.commit()
    dbt_runner.run(
        build.settings,
        target="postgres",
        select=[model],
        target_path=build.target_path,
        dbt_vars=FIXTURE_VARS,
    )


def test_point_in_time_features_follow_a_changed_member_on_postgres(
    postgres_build, postgres_connection, duckdb_connection
):
    """The incremental path's temporary tables and deletes in PostgreSQL: one member's spend
    changes on one day and reaches exactly their rows at the cutoffs after it; changed back,
    the table is as the build left it."""

    rows = (
        "select member_cutoff_id, spend_365d, member_inputs_hash from analytics.member_features_pit"
    )
    built = dict((key, rest) for key, *rest in fetch(postgres_connection, rows))
    member_id, day = duckdb_connection.execute(
        "select member_id, max(activity_date) from fct_member_daily "
        "where activity_date < (select max(cutoff_date) from member_features_pit) "
        "group by 1 order by 2 desc, 1 limit 1"
    ).fetchone()

    def change_spend_and_run(amount):
        _change_and_run(
            postgres_build,
            postgres_connection,
            "update analytics.fct_member_daily set spend_amount = spend_amount + %s "
            "where member_id = %s and activity_date = %s",
            (amount, member_id, day),
            "member_features_pit",
        )
        return dict((key, rest) for key, *rest in fetch(postgres_connection, rows))

    changed = change_spend_and_run(1)
    differing = sorted(key for key in built if changed.get(key) != built[key])
    assert set(changed) == set(built)
    assert differing == sorted(
        key for key in built if key.startswith(f"{member_id}:") and key.split(":", 1)[1] > str(day)
    )
    assert differing, "the changed day must come before some cutoff"
    for key in differing:
        assert float(changed[key][0]) == pytest.approx(float(built[key][0]) + 1)
    assert change_spend_and_run(-1) == built


def test_member_daily_follows_a_changed_transaction_on_postgres(
    postgres_build, postgres_connection
):
    """The incremental path's temporary table, XOR and delete in PostgreSQL: one transaction's
    amount changes and reaches exactly its member's day; changed back, the table is as the build
    left it."""

    rows = (
        "select member_id, activity_date, spend_amount, inputs_hash "
        "from analytics.fct_member_daily order by 1, 2"
    )
    built = fetch(postgres_connection, rows)
    transaction_id, member_id, day = fetch(
        postgres_connection,
        "select transaction_id, member_id, occurred_date from analytics.fct_transactions "
        "where member_id is not null order by transaction_id limit 1",
    )[0]

    def change_amount_and_run(amount):
        _change_and_run(
            postgres_build,
            postgres_connection,
            "update analytics.fct_transactions set amount = amount + %s where transaction_id = %s",
            (amount, transaction_id),
            "fct_member_daily",
        )
        return fetch(postgres_connection, rows)

    changed = change_amount_and_run(1)
    differing = [(old, new) for old, new in zip(built, changed, strict=True) if old != new]
    assert [old[:2] for old, _ in differing] == [(member_id, day)]
    ((old, new),) = differing
    assert float(new[2]) == pytest.approx(float(old[2]) + 1)
    assert new[3] != old[3]
    assert change_amount_and_run(-1) == built
