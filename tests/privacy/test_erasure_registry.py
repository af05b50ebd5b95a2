"""Erasure follows the table registry: a table the warehouse gains is erased once its registry
entry names its member and record-key columns, with no change to ``privacy``."""

from __future__ import annotations

import duckdb
import pytest
import yaml
from privacy_fixtures import ERASED, KEPT

from warehouse import tables

NEW_TABLE = "mart_member_badges"


@pytest.fixture
def registry_with_a_new_table(tmp_path, monkeypatch):
    """The real registry plus one dbt table, as a model added tomorrow would register it."""
    document = yaml.safe_load(tables.REGISTRY_FILE.read_text())
    document["tables"][NEW_TABLE] = {
        "owner": "dbt",
        "keys": ["badge_id"],
        "member": "member_id",
        "records": ["response_id"],
        "audience": "analysts",
    }
    path = tmp_path / "tables.yml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setattr(tables, "REGISTRY_FILE", path)
    tables.registry.cache_clear()
    yield
    tables.registry.cache_clear()


def _badges(settings) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        return con.execute(f"select badge_id from {NEW_TABLE} order by badge_id").fetchall()


def test_a_table_new_to_the_registry_is_erased_without_touching_privacy(
    landed, registry_with_a_new_table
):
    from privacy.erase import erase_members
    from privacy.verify import assert_erased

    settings = landed
    settings.duckdb_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.duckdb_path)) as con:
        # Unlike the column names, the values hold no clue a heuristic could use: the member
        # as the source spelled it (in another case, with a space), and R7, the anonymous
        # survey response that only the lake knows to be M1's (by the email in it).
        con.execute(
            f"create table {NEW_TABLE} (badge_id integer, member_id varchar, "
            "response_id varchar, badge varchar)"
        )
        con.execute(
            f"insert into {NEW_TABLE} values (1, '{ERASED}', null, 'gold'), "
            f"(2, '{ERASED.lower()} ', null, 'silver'), (3, null, 'R7', 'voice'), "
            f"(4, '{KEPT}', 'R8', 'gold')"
        )
    report = erase_members(settings, [ERASED])
    assert _badges(settings) == [(4,)]
    assert report.removed[f"duckdb:main.{NEW_TABLE}"] == 3
    assert assert_erased(settings, [ERASED])["remaining"] == 0


def test_a_table_outside_the_registry_is_not_erased_but_verification_catches_it(landed):
    """The other half of the promise: erasure deletes only where the registry says, and the
    verification, which trusts no registry, fails on what it left."""
    from privacy.erase import erase_members
    from privacy.verify import ErasureIncompleteError, assert_erased

    settings = landed
    settings.duckdb_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute(f"create table {NEW_TABLE} as select 1 as badge_id, '{ERASED}' as member_id")
    erase_members(settings, [ERASED])
    assert _badges(settings) == [(1,)]
    with pytest.raises(ErasureIncompleteError, match=rf"duckdb:main\.{NEW_TABLE} \(1\)"):
        assert_erased(settings, [ERASED])
