"""The same warehouse on PostgreSQL: the raw loader, then the same dbt build."""

from __future__ import annotations

import pytest
from warehouse_fixture_lake import EXPECTED_LINKS, MEMBER_IDS

pytestmark = pytest.mark.postgres


def fetch(connection, sql):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_build_passes_on_postgres(postgres_build):
    assert postgres_build.result.success, postgres_build.result.failures
    statuses = set(postgres_build.result.node_statuses.values())
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
