"""Access roles and erasure on a real PostgreSQL server (scripts/postgres.sh).

The warehouse is built by dbt, whose on-run-end hook applies the grants; the tests then log in
as the test logins scripts/postgres.sh creates in each group role and try to read everything.
"""

from __future__ import annotations

import pytest
from privacy_fixtures import ERASED, mentions_erased, mentions_kept

pytestmark = pytest.mark.postgres

LOGINS = {
    "analyst": "cx_test_analyst",
    "marketer": "cx_test_marketer",
    "pipeline": "cx_test_pipeline",
}
MARTS = ("customer_360", "dim_members", "fct_calls", "fct_survey_responses", "mart_emotion_value")
NOT_FOR_READERS = (
    "analytics.stg_loyalty__members",  # emails and phones
    "analytics.stg_surveys__responses",  # comments as written
    "analytics.stg_calls__contacts",
    "analytics.int_identity_links",
    "raw.members",
    "raw.responses",
    "restricted.member_contacts",
    "snapshots.snap_members",
)


def _connect(target, user: str):
    import psycopg2

    settings = target.settings
    try:
        return psycopg2.connect(
            host=settings.pg_host, port=settings.pg_port, user=user, dbname=target.dbname
        )
    except psycopg2.OperationalError as error:
        pytest.fail(
            f"cannot log in as {user} ({str(error).strip()}): the test logins come from "
            "scripts/postgres.sh; run `scripts/postgres.sh start` (idempotent) to create them"
        )


def _can_read(target, user: str, relation: str) -> bool:
    import psycopg2

    connection = _connect(target, user)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"select * from {relation} limit 1")
            return True
    except psycopg2.errors.InsufficientPrivilege:
        return False
    finally:
        connection.close()


@pytest.mark.parametrize("relation", NOT_FOR_READERS)
@pytest.mark.parametrize("role", ["analyst", "marketer"])
def test_readers_cannot_read_staging_raw_or_identifiers(postgres_target, role, relation):
    assert not _can_read(postgres_target, LOGINS[role], relation)


def test_analyst_reads_every_mart_and_marketer_the_segment_tables(postgres_target):
    for mart in MARTS:
        assert _can_read(postgres_target, LOGINS["analyst"], f"analytics.{mart}"), mart
    for table in ("customer_360", "dim_members", "mart_emotion_value"):
        assert _can_read(postgres_target, LOGINS["marketer"], f"analytics.{table}"), table
    assert not _can_read(postgres_target, LOGINS["marketer"], "analytics.fct_calls")


def test_pipeline_writes_and_readers_do_not(postgres_target):
    import psycopg2

    statement = "delete from analytics.mart_emotion_value where false"
    for role, allowed in (("pipeline", True), ("analyst", False), ("marketer", False)):
        connection = _connect(postgres_target, LOGINS[role])
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
                cursor.execute("insert into raw.members (member_id, _lake_file) values ('x', 'x')")
            connection.rollback()  # it could: leave nothing behind
            assert allowed, role
        except psycopg2.errors.InsufficientPrivilege:
            assert not allowed, role
        finally:
            connection.close()


def test_a_rebuilt_mart_keeps_its_readers(postgres_target):
    """dbt replaces a table on every run; the hook grants again at the end of each command."""
    from warehouse import dbt_runner

    dbt_runner.run(
        postgres_target.settings,
        target="postgres",
        select=["mart_emotion_value"],
        target_path=postgres_target.settings.data_dir / "dbt-target",
    )
    assert _can_read(postgres_target, LOGINS["analyst"], "analytics.mart_emotion_value")


def test_missing_roles_fail_naming_them(postgres_target):
    from warehouse import dbt_runner

    with pytest.raises(dbt_runner.DbtError, match="cx_nobody_a do not exist.*CREATE ROLE"):
        dbt_runner.invoke(
            [
                "run-operation",
                "apply_access_grants",
                "--vars",
                '{"access_roles": {"analyst": "cx_nobody_a", "marketer": "cx_marketer", '
                '"pipeline": "cx_pipeline"}}',
            ],
            postgres_target.settings,
            target="postgres",
            target_path=postgres_target.settings.data_dir / "dbt-target",
        )


def test_grants_without_the_registrys_lists_fail_naming_them(postgres_target):
    """The readers' tables come from the table registry (dbt_runner passes them on every
    command); without them the grants stop rather than revoke everyone's access."""
    from warehouse import dbt_runner

    with pytest.raises(dbt_runner.DbtError, match="needs the vars analyst_tables"):
        dbt_runner.invoke(
            ["run-operation", "apply_access_grants", "--vars", '{"analyst_tables": null}'],
            postgres_target.settings,
            target="postgres",
            target_path=postgres_target.settings.data_dir / "dbt-target",
        )
    assert _can_read(postgres_target, LOGINS["analyst"], "analytics.fct_calls")


def _scan_postgres(target, predicate) -> list[str]:
    connection = _connect(target, target.settings.pg_user)
    hits = []
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema in ('raw', 'analytics', 'restricted', 'snapshots')"
            )
            for schema, table in cursor.fetchall():
                cursor.execute(f'select * from "{schema}"."{table}"')
                names = [d[0] for d in cursor.description]
                for row in cursor.fetchall():
                    hits += [
                        f"{schema}.{table}.{names[i]}" for i, v in enumerate(row) if predicate(v)
                    ]
    finally:
        connection.close()
    return hits


def test_erasure_on_postgres_leaves_no_trace(postgres_target):
    """Last in the module: it changes the database."""
    from privacy.erase import erase_members
    from privacy.verify import assert_erased

    assert {h.split(".")[0] for h in _scan_postgres(postgres_target, mentions_erased)} == {
        "raw",
        "analytics",
        "restricted",
        "snapshots",
    }
    report = erase_members(postgres_target.settings, [ERASED])
    assert report.removed["postgres:raw.members"] == 1
    # The keyed hashes of M1's rows, and of the survey responses and calls that were M1's.
    assert report.removed["postgres:raw.member_hashes"] == 1
    assert report.removed["postgres:raw.response_hashes"] >= 2
    assert report.removed["postgres:raw.call_hashes"] >= 2
    assert _scan_postgres(postgres_target, mentions_erased) == []
    assert _scan_postgres(postgres_target, mentions_kept)  # M2 stays
    assert assert_erased(postgres_target.settings, [ERASED])["remaining"] == 0
