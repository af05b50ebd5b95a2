"""Matching by keyed hash: the key stays out of dbt's files and logs, the analysts' copy holds no
identifier, a deployment with real sources and no CX_HASH_KEY fails saying so, and the hashes
are made from the same normalised values as the warehouse's plain ones."""

from __future__ import annotations

import shutil

import duckdb
import jinja2
import pyarrow as pa
import pytest
from privacy_fixtures import ERASED, ERASED_EMAIL, HASH_KEY, build_duckdb, env_of, settings_for

from config import load_settings
from config.settings import REPO_ROOT, SettingsError
from privacy import identity
from privacy.scan import Needles
from warehouse.publish import published_path

# Emails and phones as sources write them, and values that are neither.
EMAILS = [
    "ann.lee@example.com",
    " Ann.Lee@EXAMPLE.com",
    "ALICE@example.com ",
    "bo@example.co.uk",
    "n/a",
    "none",
    "",
    "   ",
    None,
]
PHONES = [
    "(555) 010-0001",
    "555-010-0001",
    "555.010.0001",
    "5550100001",
    "+1 555 010 0001",
    "1 555 010 0001",
    "0044 20 7946 0958",
    "+44 20 7946 0958",
    "+1234567",
    "555 000",
    "12 555 010 0001",
    "n/a",
    "",
    None,
]


@pytest.fixture(scope="module")
def built(landed_template, tmp_path_factory):
    """The privacy sources landed, enriched, built by dbt and published, under HASH_KEY."""
    root = tmp_path_factory.mktemp("keyed-matching")
    shutil.copytree(landed_template.data_dir, root / "data")
    settings = settings_for(root, sources=landed_template.data_dir.parent)
    assert settings.hash_key == HASH_KEY
    build_duckdb(settings)
    yield settings
    shutil.rmtree(root, ignore_errors=True)


def _files(folder):
    return sorted(path for path in folder.rglob("*") if path.is_file())


def test_the_key_never_reaches_dbt_files_or_logs(built):
    target = built.data_dir / "dbt-target"  # build_duckdb's target path; logs/ under it
    files = _files(target)
    names = {path.name for path in files}
    assert {"manifest.json", "run_results.json", "dbt.log", "int_identity_links.sql"} <= names
    key = HASH_KEY.encode()
    # Nor anything else the build wrote: the lake, its enrichments, the warehouse and its copy.
    assert [path for path in _files(built.data_dir) if key in path.read_bytes()] == []
    # ...and yet the warehouse matched with it: the staged hashes are HMACs under HASH_KEY.
    with duckdb.connect(str(built.duckdb_path), read_only=True) as con:
        staged = con.execute(
            "select email_hash from stg_enriched__member_hashes where member_id = ?", [ERASED]
        ).fetchall()
        links = con.execute(
            "select link_method, count(*) from int_identity_links group by 1"
        ).fetchall()
    assert {value for (value,) in staged} == {
        identity.keyed_hash(key, identity.EMAIL, ERASED_EMAIL)
    }
    assert dict(links)["email"] >= 1 and dict(links)["phone"] >= 1


def test_the_analysts_copy_holds_no_restricted_schema_and_no_identifier(built):
    needles = Needles.from_loyalty(built.loyalty_url)
    assert needles.emails and needles.phones

    def hits(path) -> tuple[set[str], list[str]]:
        with duckdb.connect(str(path), read_only=True) as con:
            schemas = {
                r[0] for r in con.execute("select schema_name from duckdb_schemas()").fetchall()
            }
            relations = con.execute(
                "select table_schema, table_name, column_name from information_schema.columns "
                "where table_catalog = current_database() and data_type = 'VARCHAR'"
            ).fetchall()
            found = []
            for schema, table, column in relations:
                values = con.execute(
                    f'select distinct "{column}" from "{schema}"."{table}" '
                    f'where "{column}" is not null'
                ).fetchall()
                if any(needles.found_in(value) for (value,) in values):
                    found.append(f"{schema}.{table}.{column}")
        return schemas, found

    live_schemas, live_hits = hits(built.duckdb_path)
    assert "restricted" in live_schemas and "restricted.member_contacts.email" in live_hits
    published_schemas, published_hits = hits(published_path(built.duckdb_path))
    assert "restricted" not in published_schemas and "snapshots" in published_schemas
    assert published_hits == []
    with duckdb.connect(str(published_path(built.duckdb_path)), read_only=True) as con:
        views = con.execute(
            "select count(*) from duckdb_views() where not internal "
            "and database_name = current_database()"
        ).fetchone()[0]
        tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert views == 0  # staging's views read the raw lake
    assert {"customer_360", "dim_members", "fct_calls", "fct_survey_responses"} <= tables


def test_real_sources_without_a_hash_key_fail_the_build_naming_it(built, tmp_path):
    from warehouse.cli import build_warehouse
    from warehouse.enrich import enrich_lake

    env = {name: value for name, value in env_of(built).items() if name != "CX_HASH_KEY"}
    env["CX_DUCKDB_PATH"] = str(tmp_path / "cx.duckdb")
    settings = load_settings(env)
    with pytest.raises(SettingsError, match="CX_HASH_KEY is not set.*real sources"):
        enrich_lake(settings)
    with pytest.raises(SettingsError, match="CX_HASH_KEY"):
        build_warehouse(settings, "duckdb")
    assert not (tmp_path / "cx.duckdb").exists()  # it failed before dbt ran


def _dbt_normalize_sql(kind: str, column: str) -> str:
    """The expression dbt's macro (macros/normalize.sql) compiles to, for ``column``."""
    import re

    folder = REPO_ROOT / "dbt_project" / "macros"
    macros = (folder / "normalize.sql").read_text()
    # dbt dispatches regexp_replace_all by adapter; DuckDB and PostgreSQL take the default one.
    default = re.search(
        r"{% macro default__regexp_replace_all.*?endmacro %}",
        (folder / "regexp.sql").read_text(),
        re.S,
    ).group(0)
    macros = default.replace("default__regexp_replace_all", "regexp_replace_all") + macros
    return (
        jinja2.Environment().from_string(f"{macros}{{{{ normalize_{kind}('{column}') }}}}").render()
    )


@pytest.mark.parametrize(("kind", "values"), [("email", EMAILS), ("phone", PHONES)])
def test_dbt_and_python_normalise_alike_on_duckdb(kind, values):
    expression = _dbt_normalize_sql(kind, "value")
    with duckdb.connect() as con:
        con.execute("create table corpus (position integer, value varchar)")
        con.executemany("insert into corpus values (?, ?)", list(enumerate(values)))
        in_sql = [
            row[0]
            for row in con.execute(f"select {expression} from corpus order by position").fetchall()
        ]
    in_python = [identity.NORMALIZERS[kind](value) for value in values]
    assert in_sql == in_python
    assert len({v for v in in_python if v}) >= 2 and None in in_python  # both kinds of outcome


@pytest.mark.postgres
@pytest.mark.parametrize(("kind", "values"), [("email", EMAILS), ("phone", PHONES)])
def test_dbt_and_python_normalise_alike_on_postgres(postgres_url, kind, values):
    import sqlalchemy as sa

    expression = _dbt_normalize_sql(kind, "value").replace("%", "%%")  # psycopg2 placeholders
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            in_sql = [
                connection.exec_driver_sql(
                    f"select {expression} from (select cast(%s as text) as value) as corpus",
                    (value,),
                ).scalar()
                for value in values
            ]
    finally:
        engine.dispose()
    assert in_sql == [identity.NORMALIZERS[kind](value) for value in values]


def _random_values(count: int) -> list[str | None]:
    """Strings made of what emails and phones are made of, ASCII whitespace and a few others."""
    import random

    alphabet = "0123456789" * 4 + "+()-. @aAzZ_\t\n\r\x0b\x0c\x1c\x1f\xa0\u2003éİ"
    chooser = random.Random(6)
    values = [
        "".join(chooser.choice(alphabet) for _ in range(chooser.randint(0, 18)))
        for _ in range(count)
    ]
    return values + [None]


@pytest.mark.parametrize("kind", ["email", "phone"])
def test_arrow_normalisation_equals_the_scalar_rules(kind):
    values = EMAILS + PHONES + _random_values(20_000)
    normalised = identity.normalize_array(kind, pa.array(values)).to_pylist()
    assert normalised == [identity.NORMALIZERS[kind](value) for value in values]
    assert sum(value is not None for value in normalised) > 100  # not only the null branch


def test_hashing_an_arrow_column_equals_hashing_each_value():
    import hashlib
    import hmac

    for key in (HASH_KEY.encode(), b"x" * 100):  # a key longer than SHA-256's block too
        for kind, values in (("email", EMAILS * 3), ("phone", PHONES * 3)):
            column = pa.chunked_array([values[:5], values[5:]])
            hashed = identity.keyed_hash_array(key, kind, column).to_pylist()
            assert hashed == [identity.keyed_hash(key, kind, value) for value in values]
        assert hashed[0] == hmac.new(key, b"phone:+15550100001", hashlib.sha256).hexdigest()
    assert identity.keyed_hash_array(key, "email", pa.array([], pa.string())).to_pylist() == []
