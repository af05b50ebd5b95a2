"""The warehouse built on DuckDB over the fixture lake (tests/warehouse/warehouse_fixture_lake.py)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import date
from decimal import Decimal

import pytest
from warehouse_fixture_lake import (
    EXPECTED_LINKS,
    LEAK_AMOUNT,
    LEAK_MEMBER_ID,
    LEAK_TRANSACTION_ID,
    MEMBER_IDS,
    PIT_CUTOFF,
)

from config.settings import REPO_ROOT


def rows(connection, sql):
    return connection.execute(sql).fetchall()


def test_build_runs_every_model_test_and_unit_test(duckdb_build):
    result = duckdb_build.result
    assert result.success, result.failures
    kinds = {}
    for unique_id, status in result.node_statuses.items():
        kinds.setdefault(unique_id.split(".")[0], []).append(status)
    assert len(kinds["unit_test"]) >= 5
    assert len(kinds["test"]) >= 50
    assert set(kinds["model"]) == {"success"}
    assert set(kinds["test"]) | set(kinds["unit_test"]) == {"pass"}


def test_customer_360_has_exactly_one_row_per_member(duckdb_connection):
    [(row_count, member_count)] = rows(
        duckdb_connection, "select count(*), count(distinct member_id) from customer_360"
    )
    assert row_count == member_count == len(MEMBER_IDS)
    members = {row[0] for row in rows(duckdb_connection, "select member_id from dim_members")}
    assert members == set(MEMBER_IDS)


def test_identity_links_follow_member_id_then_email_then_phone(duckdb_connection):
    links = {
        (record_type, record_id): (member_id, method)
        for record_type, record_id, member_id, method in rows(
            duckdb_connection,
            "select record_type, record_id, member_id, link_method from int_identity_links",
        )
    }
    assert links == EXPECTED_LINKS


def test_unlinked_records_stay_in_the_facts(duckdb_connection):
    surveys = dict(
        rows(duckdb_connection, "select response_id, member_id from fct_survey_responses")
    )
    calls = dict(rows(duckdb_connection, "select call_id, member_id from fct_calls"))
    assert surveys["R3"] is None and surveys["R4"] is None  # ambiguous, unmatched
    assert calls["C4"] is None and calls["C6"] is None
    assert len(surveys) == 6 and len(calls) == 7


def test_staging_keeps_the_latest_version_once(duckdb_connection):
    assert rows(duckdb_connection, "select count(*) from stg_loyalty__members") == [(6,)]
    assert rows(
        duckdb_connection, "select tier, email from stg_loyalty__members where member_id = 'M1'"
    ) == [("gold", "alice@example.com")]
    assert rows(duckdb_connection, "select count(*) from fct_transactions") == [(10,)]
    assert rows(
        duckdb_connection, "select phone_e164 from restricted.member_contacts order by member_id"
    ) == [("+15551234567",), ("+15559876543",), (None,), (None,), ("+15552223333",), (None,)]


def test_dim_members_holds_no_direct_identifiers(duckdb_connection):
    columns = {row[0] for row in rows(duckdb_connection, "describe dim_members")}
    assert not columns & {"email", "phone", "phone_e164", "first_name", "last_name", "birth_date"}


def test_survey_measures(duckdb_connection):
    measures = {
        row[0]: row[1:]
        for row in rows(
            duckdb_connection,
            "select response_id, engagement_index, nps_category, is_csat_top_two_box, "
            "comment_sentiment_label from fct_survey_responses",
        )
    }
    assert measures["R1"] == (100.0, "promoter", True, "positive")
    assert measures["R2"] == (62.5, "passive", True, None)
    assert measures["R6"] == (0.0, "detractor", False, "negative")


def test_repeat_contacts_and_call_kpis(duckdb_connection):
    repeats = dict(rows(duckdb_connection, "select call_id, is_repeat_contact from fct_calls"))
    assert repeats == {
        "C1": False,
        "C2": True,
        "C3": False,
        "C4": False,
        "C5": False,
        "C6": False,
        "C7": True,
    }
    kpis = rows(
        duckdb_connection,
        "select call_month, call_count, repeat_contact_rate from mart_call_center_kpis "
        "order by call_month",
    )
    assert kpis == [(date(2024, 1, 1), 2, 0.5), (date(2024, 2, 1), 5, 0.2)]


def test_point_in_time_features_do_not_see_the_late_event(duckdb_connection):
    by_cutoff = dict(
        rows(
            duckdb_connection,
            f"select cutoff_date, spend_365d from member_features_pit "
            f"where member_id = '{LEAK_MEMBER_ID}'",
        )
    )
    # T1, T2, T3 and the late-landed T9 precede the cutoff; T4 is on it and the leak after it.
    assert by_cutoff[PIT_CUTOFF] == Decimal("105.00")
    assert by_cutoff[date(2024, 3, 1)] == Decimal("145.00") + LEAK_AMOUNT
    assert rows(
        duckdb_connection,
        f"select count(*) from fct_transactions where transaction_id = '{LEAK_TRANSACTION_ID}'",
    ) == [(1,)]


def test_point_in_time_spend_matches_a_recount_before_each_cutoff(duckdb_connection):
    mismatches = rows(
        duckdb_connection,
        """
        with recount as (
            select
                pit.member_id,
                pit.cutoff_date,
                pit.spend_365d,
                coalesce(sum(tx.amount) filter (
                    where tx.occurred_at < cast(pit.cutoff_date as timestamp)
                    and tx.occurred_at >= cast(pit.cutoff_date as timestamp) - interval 365 day
                ), 0) as expected
            from member_features_pit as pit
            left join fct_transactions as tx on pit.member_id = tx.member_id
            group by all
        )
        select * from recount where spend_365d <> expected
        """,
    )
    assert mismatches == []
    cutoffs = [
        row[0]
        for row in rows(
            duckdb_connection, "select distinct cutoff_date from member_features_pit order by 1"
        )
    ]
    assert cutoffs == [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)]


def test_member_daily_counts_moments(duckdb_connection):
    [(negative, positive)] = rows(
        duckdb_connection,
        "select sum(negative_moment_count), sum(positive_moment_count) from fct_member_daily",
    )
    # Negative: C1 (long wait, unresolved), C5 (escalated), R6 (detractor, negative comment).
    # Positive: C3 (quick first-contact resolution), R1 (promoter), R5 (promoter).
    assert (negative, positive) == (3, 3)


def test_nps_mart_scores(duckdb_connection):
    [(responses, nps)] = rows(
        duckdb_connection,
        "select sum(response_count), sum(promoter_count - detractor_count) * 100.0 "
        "/ sum(nps_response_count) from mart_nps_csat_monthly",
    )
    assert responses == 6
    assert nps == 0.0  # promoters R1, R5; detractors R4, R6


def test_published_copy_is_readable_while_the_pipeline_writes(duckdb_build, tmp_path):
    import duckdb

    from warehouse.publish import publish_duckdb

    target = publish_duckdb(duckdb_build.settings.duckdb_path, tmp_path / "published" / "cx.duckdb")
    with duckdb.connect(str(target), read_only=True) as reader:
        assert reader.execute("select count(*) from customer_360").fetchone() == (6,)
        schemas = {
            r[0] for r in reader.execute("select schema_name from duckdb_schemas()").fetchall()
        }
        assert "snapshots" in schemas and "restricted" not in schemas
    assert not target.stat().st_mode & 0o222  # read-only for everyone
    assert [p.name for p in target.parent.iterdir()] == ["cx.duckdb"]  # no temp left behind


def test_the_analysts_copy_holds_no_bookkeeping_contacts_or_build_state(duckdb_build, tmp_path):
    """The live file has the build's bookkeeping columns, the restricted schema (contact
    details) and cx_state (what the models have read); the analysts' copy has none of them,
    whether made whole or brought up to date by rows, and nobody may write it (0444: the copy
    holds no contact details, so it needs no personal-data group)."""
    import stat

    import duckdb

    from warehouse.publish import BOOKKEEPING_COLUMNS, publish_duckdb

    live = tmp_path / "live" / "cx.duckdb"
    live.parent.mkdir()
    shutil.copyfile(duckdb_build.settings.duckdb_path, live)
    bookkeeping = (
        "select table_name, column_name from duckdb_columns() "
        f"where column_name in {tuple(BOOKKEEPING_COLUMNS)} order by all"
    )
    schemas = "select distinct schema_name from duckdb_tables() order by all"
    with duckdb.connect(str(live), read_only=True) as con:
        assert {name for name, _ in con.execute(bookkeeping).fetchall()} == {
            "fct_member_daily",
            "member_features_pit",
        }
        assert {"restricted", "cx_state"} <= {s for (s,) in con.execute(schemas).fetchall()}
    target = tmp_path / "published" / "cx.duckdb"
    for by_rows in (False, True):
        publish_duckdb(live, target, by_rows=by_rows)
        with duckdb.connect(str(target), read_only=True) as reader:
            assert reader.execute(bookkeeping).fetchall() == []
            assert {s for (s,) in reader.execute(schemas).fetchall()} == {"main", "snapshots"}
            assert reader.execute("select count(*) from member_features_pit").fetchone()[0] > 0
        assert stat.S_IMODE(target.stat().st_mode) == 0o444


@pytest.mark.parametrize("by_rows", [False, True], ids=["whole", "by_rows"])
def test_republishing_named_tables_replaces_only_those(duckdb_build, tmp_path, by_rows):
    """Scoring and the program cycle republish just the tables they write: those are replaced,
    every other table stays as the last full publish left it, and the copy still has no
    restricted schema."""
    import duckdb

    from warehouse.publish import publish_duckdb

    live = tmp_path / "live" / "cx.duckdb"
    live.parent.mkdir()
    shutil.copyfile(duckdb_build.settings.duckdb_path, live)
    target = tmp_path / "published" / "cx.duckdb"
    with duckdb.connect(str(live)) as con:
        con.execute("create table ml_scores as select member_id, 0.5::double as p from dim_members")
        con.execute("create table segment_transitions as select 1 as n")
    publish_duckdb(live, target)
    with duckdb.connect(str(live)) as con:
        con.execute("update ml_scores set p = 0.9")
        con.execute("drop table segment_transitions")
        con.execute("delete from customer_360")  # not named below: must not reach the copy
    publish_duckdb(live, target, tables=["ml_scores", "segment_transitions"], by_rows=by_rows)
    with duckdb.connect(str(target), read_only=True) as reader:
        assert reader.execute("select min(p), max(p) from ml_scores").fetchone() == (0.9, 0.9)
        assert reader.execute("select count(*) from customer_360").fetchone() == (6,)
        names = {r[0] for r in reader.execute("select table_name from duckdb_tables()").fetchall()}
        schemas = {
            r[0] for r in reader.execute("select schema_name from duckdb_schemas()").fetchall()
        }
    assert "segment_transitions" not in names  # gone from the warehouse, gone from the copy
    assert "restricted" not in schemas
    assert not target.stat().st_mode & 0o222
    assert [p.name for p in target.parent.iterdir()] == ["cx.duckdb"]


def test_a_republish_compares_only_what_its_writer_changed(duckdb_build, tmp_path):
    """Scoring republishes comparing only its day's rows (``changed_rows``), so the cost is a
    day of scores however many are kept; the build's publish leaves the tables scoring and the
    program cycle write (``skip``) as the copy has them."""
    import duckdb

    from warehouse.publish import publish_duckdb

    live = tmp_path / "live" / "cx.duckdb"
    live.parent.mkdir()
    shutil.copyfile(duckdb_build.settings.duckdb_path, live)
    target = tmp_path / "published" / "cx.duckdb"
    scores = "create table ml_scores as select member_id, date '2026-07-01' as score_date, 0.5 as p"
    with duckdb.connect(str(live)) as con:
        con.execute(f"{scores} from dim_members")
        members = con.execute("select count(*) from dim_members").fetchone()[0]
    publish_duckdb(live, target)

    def published_scores():
        with duckdb.connect(str(target), read_only=True) as reader:
            return reader.execute(
                "select score_date::varchar, min(p)::varchar, max(p)::varchar, count(*) "
                "from ml_scores group by all order by all"
            ).fetchall()

    today = "score_date = date '2026-07-02'"
    with duckdb.connect(str(live)) as con:
        con.execute("insert into ml_scores select member_id, '2026-07-02', 0.7 from dim_members")
        # Outside today's rows: a republish of today's scores does not look at it.
        con.execute("update ml_scores set p = 0.1 where score_date = '2026-07-01'")
    publish_duckdb(live, target, tables=["ml_scores"], by_rows=True, changed_rows=today)
    assert published_scores() == [
        ("2026-07-01", "0.5", "0.5", members),
        ("2026-07-02", "0.7", "0.7", members),
    ]
    with duckdb.connect(str(live)) as con:  # the day scored again
        con.execute("update ml_scores set p = 0.8 where score_date = '2026-07-02'")
    publish_duckdb(live, target, tables=["ml_scores"], by_rows=True, changed_rows=today)
    assert published_scores()[1] == ("2026-07-02", "0.8", "0.8", members)

    with duckdb.connect(str(live)) as con:
        con.execute("update ml_scores set p = 0.3")
        con.execute(
            "delete from customer_360 where member_id = (select min(member_id) from customer_360)"
        )
    publish_duckdb(live, target, by_rows=True, skip=["ml_scores"])
    assert published_scores() == [
        ("2026-07-01", "0.5", "0.5", members),
        ("2026-07-02", "0.8", "0.8", members),
    ]
    with duckdb.connect(str(target), read_only=True) as reader:
        assert reader.execute("select count(*) from customer_360").fetchone() == (members - 1,)


def _published_state(path) -> dict:
    """Every table of a published copy: its definition and its rows, in order."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as reader:
        tables = reader.execute(
            "select schema_name, table_name, sql from duckdb_tables() order by 1, 2"
        ).fetchall()
        return {
            (schema, name): (
                definition,
                reader.execute(f'select * from "{schema}"."{name}" order by all').fetchall(),
            )
            for schema, name, definition in tables
        }


def _record_whole_copies(monkeypatch) -> list[str]:
    """The names of the tables the publish copies whole, as it copies them."""
    from warehouse import publish

    copied = []
    copy_table = publish._copy_table

    def recording(connection, schema, name, definition):
        copied.append(name)
        copy_table(connection, schema, name, definition)

    monkeypatch.setattr(publish, "_copy_table", recording)
    return copied


def test_publishing_by_rows_equals_a_fresh_copy(duckdb_build, tmp_path, monkeypatch):
    """The daily publish brings the last copy up to date by rows: changed, deleted and new rows,
    a new table, a dropped one, a changed definition, a table whose rows all changed and a table
    of identical rows whose count changed all end as a fresh copy would, and only the tables
    that need it are copied whole."""
    import duckdb

    from warehouse import publish

    live = tmp_path / "live" / "cx.duckdb"
    live.parent.mkdir()
    shutil.copyfile(duckdb_build.settings.duckdb_path, live)
    with duckdb.connect(str(live)) as con:
        con.execute("create table repeated as select 1 as n from range(3)")
        con.execute("create table leaving as select 1 as n")
        con.execute("create table rebuilt as select range as n from range(4)")
    target = tmp_path / "published" / "cx.duckdb"
    publish.publish_duckdb(live, target)
    with duckdb.connect(str(live)) as con:
        con.execute(
            "update fct_transactions set amount = amount + 1 where transaction_id = "
            "(select min(transaction_id) from fct_transactions)"
        )
        con.execute(
            "delete from customer_360 where member_id = (select min(member_id) from customer_360)"
        )
        con.execute(
            "insert into dim_members select * replace ('NEW' as member_id) from dim_members limit 1"
        )
        con.execute("insert into repeated values (1)")
        con.execute("update rebuilt set n = n + 10")
        con.execute("drop table leaving")
        con.execute("create table arriving as select 2 as n")
        con.execute("alter table mart_call_center_kpis add column note varchar")
    copied = _record_whole_copies(monkeypatch)
    publish.publish_duckdb(live, target, by_rows=True, memory_limit="64MB")
    assert sorted(copied) == ["arriving", "mart_call_center_kpis", "rebuilt", "repeated"]
    fresh = publish.publish_duckdb(live, tmp_path / "fresh" / "cx.duckdb")
    synced = _published_state(target)
    assert synced == _published_state(fresh)
    assert ("main", "leaving") not in synced and ("main", "arriving") in synced
    # Contact details and the models' bookkeeping (the lake files they read) stay out.
    with duckdb.connect(str(live), read_only=True) as con:
        assert con.execute("select count(*) from cx_state.lake_files_read").fetchone()[0] > 0
    assert not any(schema in ("restricted", "cx_state") for schema, _ in synced)
    assert not target.stat().st_mode & 0o222
    assert [p.name for p in target.parent.iterdir()] == ["cx.duckdb"]


def test_the_copy_is_held_to_the_memory_limit(tmp_path):
    from warehouse import publish

    with publish._connect("64MB", tmp_path / "spill") as con:
        limit, spill = con.execute(
            "select current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone()
    assert limit == "61.0 MiB" and spill == str(tmp_path / "spill")


def test_a_copy_with_too_much_free_space_is_published_afresh(duckdb_build, tmp_path, monkeypatch):
    from warehouse import publish

    target = tmp_path / "published" / "cx.duckdb"
    publish.publish_duckdb(duckdb_build.settings.duckdb_path, target)
    monkeypatch.setattr(publish, "MAX_FREE_SHARE", -1.0)
    copied = _record_whole_copies(monkeypatch)
    publish.publish_duckdb(duckdb_build.settings.duckdb_path, target, by_rows=True)
    fresh = publish.publish_duckdb(
        duckdb_build.settings.duckdb_path, tmp_path / "fresh" / "cx.duckdb"
    )
    assert "customer_360" in copied
    assert _published_state(target) == _published_state(fresh)


def test_docs_site_documents_the_marts(duckdb_build, tmp_path):
    """`make docs` generates the dbt docs site with the marts' columns from the warehouse."""
    from warehouse import dbt_runner

    # A copy of the warehouse: the session's read-only connection may hold the file.
    copy = tmp_path / "docs" / "cx.duckdb"
    copy.parent.mkdir()
    shutil.copyfile(duckdb_build.settings.duckdb_path, copy)
    settings = dataclasses.replace(duckdb_build.settings, duckdb_path=copy)
    site = dbt_runner.docs_generate(settings, target_path=tmp_path / "docs" / "target")
    assert (site / "index.html").stat().st_size > 10_000
    catalog = json.loads((site / "catalog.json").read_text())
    customer = next(n for k, n in catalog["nodes"].items() if k.endswith(".customer_360"))
    assert {"member_id", "as_of_date", "tenure_days"} <= set(customer["columns"])


def test_readme_catalogue_lists_every_mart_and_snapshot(duckdb_build):
    """The table catalogue analysts read names every mart and snapshot dbt builds, and no
    model that no longer exists."""
    import re

    manifest = json.loads((duckdb_build.target_path / "manifest.json").read_text())
    built = {
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "snapshot"
        or (node["resource_type"] == "model" and node["fqn"][1] == "marts")
    }
    readme = (REPO_ROOT / "dbt_project" / "README.md").read_text()
    section = readme.split("## Table catalogue", 1)[1].split("\n## ", 1)[0]
    listed = {
        name.split(".")[-1] for name in re.findall(r"^\| `([\w.]+)` \|", section, re.MULTILINE)
    }
    assert built - listed == set(), "models missing from the README catalogue"
    dbt_like = {n for n in listed if n.startswith(("fct_", "dim_", "mart_", "snap_", "int_"))}
    assert dbt_like - built == set(), "catalogue lists models dbt no longer builds"
