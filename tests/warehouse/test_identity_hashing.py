"""Identity links by keyed hash: the hash partitions written before dbt, and links equal to the
ones the plain normalised emails and phones give, on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import re
import shutil

import pyarrow.parquet as pq
import pytest
from warehouse_fixture_lake import EXPECTED_LINKS

from privacy import identity
from warehouse.identity_hashes import FINGERPRINT, HASHED_TABLES, hash_identities

# The links as int_identity_links made them before hashing: joined on the plain normalised
# email and E.164 phone that staging (the restricted area) holds.
PLAIN_LINKS_SQL = """
with members as (
    select member_id, email, phone_e164 from {schema}stg_loyalty__members
),
emails as (
    select email, min(member_id) as member_id, count(*) as member_count
    from members where email is not null group by email
),
phones as (
    select phone_e164, min(member_id) as member_id, count(*) as member_count
    from members where phone_e164 is not null group by phone_e164
),
surveys as (
    select
        'survey_response' as record_type, responses.response_id as record_id,
        case when known.member_id is not null then known.member_id
            when emails.member_count = 1 then emails.member_id end as member_id,
        case when known.member_id is not null then 'member_id'
            when emails.member_count = 1 then 'email'
            when emails.member_count > 1 then 'ambiguous' else 'unmatched' end as link_method
    from {schema}stg_surveys__responses as responses
    left join members as known on responses.member_id = known.member_id
    left join emails on responses.respondent_email = emails.email
),
calls as (
    select
        'call' as record_type, contacts.call_id as record_id,
        case when known.member_id is not null then known.member_id
            when phones.member_count = 1 then phones.member_id end as member_id,
        case when known.member_id is not null then 'member_id'
            when phones.member_count = 1 then 'phone'
            when phones.member_count > 1 then 'ambiguous' else 'unmatched' end as link_method
    from {schema}stg_calls__contacts as contacts
    left join members as known on contacts.member_id = known.member_id
    left join phones on contacts.caller_phone_e164 = phones.phone_e164
)
select * from surveys union all select * from calls
"""
HASHED_LINKS_SQL = (
    "select record_type, record_id, member_id, link_method from {schema}int_identity_links"
)
# Staging's plain identifier columns, which matching must not read.
PLAIN_COLUMNS = {"email", "phone_e164", "respondent_email", "caller_phone_e164"}


def _links(rows) -> dict[tuple[str, str], tuple[str | None, str]]:
    return {(kind, record): (member, method) for kind, record, member, method in rows}


def test_links_by_keyed_hash_equal_links_by_plain_values(duckdb_connection):
    hashed = _links(duckdb_connection.execute(HASHED_LINKS_SQL.format(schema="")).fetchall())
    plain = _links(duckdb_connection.execute(PLAIN_LINKS_SQL.format(schema="")).fetchall())
    assert hashed == plain == EXPECTED_LINKS
    methods = {method for _, method in hashed.values()}
    assert {"email", "phone", "ambiguous"} <= methods  # the keys really decided some links


def test_identity_links_compile_without_plain_identifiers(duckdb_build):
    manifest = json.loads((duckdb_build.target_path / "manifest.json").read_text())
    [node] = [n for n in manifest["nodes"].values() if n["name"] == "int_identity_links"]
    compiled = (
        duckdb_build.target_path / "compiled" / "cx" / node["original_file_path"]
    ).read_text()
    code = re.sub(r"--[^\n]*|'[^']*'", " ", compiled.lower())  # no comments, no literals
    words = set(re.findall(r"[a-z_0-9]+", code))
    assert not words & PLAIN_COLUMNS
    assert {"email_hash", "phone_hash", "respondent_email_hash", "caller_phone_hash"} <= words


def test_staged_hashes_are_the_privacy_keyed_hashes(duckdb_connection):
    """The fixture lake is the sample's (no CX_HASH_KEY): the public sample key, and hashes
    equal to those the suppression list records for the same email and phone."""
    key = identity.SAMPLE_ONLY_KEY.encode()
    rows = duckdb_connection.execute(
        "select email_hash, phone_hash from stg_enriched__member_hashes "
        "where member_id = 'M1' order by source_interval_end_at"
    ).fetchall()
    expected = (
        identity.keyed_hash(key, identity.EMAIL, "alice@example.com"),
        identity.keyed_hash(key, identity.PHONE, "+15551234567"),
    )
    # " Alice@Example.com " in landing A and "alice@example.com" in B normalise alike.
    assert rows == [expected, expected]
    assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in expected)


def test_hash_partitions_follow_the_landed_ones_and_the_key(fixture_lake, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(fixture_lake / "raw", lake / "raw")
    key, other_key = b"k" * 32, b"o" * 32

    first = hash_identities(lake, key)
    landed = {
        table.name: sorted(table.source_dir(lake).glob("interval=*.parquet"))
        for table in HASHED_TABLES
    }
    assert len(first.written) == sum(len(files) for files in landed.values()) == 7
    assert first.skipped == first.removed == ()
    for table in HASHED_TABLES:
        for source in landed[table.name]:
            output = pq.read_table(table.target_dir(lake) / source.name)
            raw = pq.read_table(source).to_pylist()
            assert output.num_rows == len(raw)
            assert output.schema.metadata[FINGERPRINT] == identity.key_fingerprint(key).encode()
            for row, hashed in zip(raw, output.to_pylist(), strict=True):
                assert hashed[table.landed.key] == row[table.landed.key]
                assert hashed["_source_row"] == row["_source_row"]
                for column, kind, hash_column in table.hashes:
                    assert hashed[hash_column] == identity.keyed_hash(key, kind, row[column])

    again = hash_identities(lake, key)
    assert again.written == () and len(again.skipped) == 7

    members = HASHED_TABLES[0].target_dir(lake) / landed["member_hashes"][0].name
    before = pq.read_table(members)["email_hash"].to_pylist()
    rekeyed = hash_identities(lake, other_key)  # another key: every partition again
    assert len(rekeyed.written) == 7
    after = pq.read_table(members)["email_hash"].to_pylist()
    assert after != before
    assert [value is None for value in after] == [value is None for value in before]

    gone = landed["call_hashes"][-1]
    gone.unlink()
    pruned = hash_identities(lake, other_key)
    assert [path.name for path in pruned.removed] == [gone.name]
    assert not (HASHED_TABLES[2].target_dir(lake) / gone.name).exists()


@pytest.mark.postgres
def test_postgres_links_by_keyed_hash_equal_links_by_plain_values(postgres_connection):
    with postgres_connection.cursor() as cursor:
        cursor.execute(HASHED_LINKS_SQL.format(schema="analytics."))
        hashed = _links(cursor.fetchall())
        cursor.execute(PLAIN_LINKS_SQL.format(schema="analytics."))
        plain = _links(cursor.fetchall())
        cursor.execute("select count(*), count(email_hash) from raw.member_hashes")
        rows, hashes = cursor.fetchone()
    assert hashed == plain == EXPECTED_LINKS
    assert rows > hashes > 0  # the loader copied the hash partitions, nulls included
