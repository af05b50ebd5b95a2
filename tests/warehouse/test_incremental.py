"""A chain of incremental runs over a growing lake gives the same facts as a full refresh."""

from __future__ import annotations

import hashlib

import pytest
from conftest import fixture_settings
from warehouse_fixture_lake import write_lake

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
        dbt_runner.run(settings, target="duckdb", select=SELECT, target_path=target_path)
    return settings, target_path, fact_checksums(settings.duckdb_path)


def test_incremental_chain_equals_the_full_build(incremental_chain, duckdb_build):
    _, _, chained = incremental_chain
    assert chained == fact_checksums(duckdb_build.settings.duckdb_path)


def test_full_refresh_equals_the_incremental_chain(incremental_chain):
    from warehouse import dbt_runner

    settings, target_path, chained = incremental_chain
    dbt_runner.run(
        settings, target="duckdb", select=SELECT, full_refresh=True, target_path=target_path
    )
    assert fact_checksums(settings.duckdb_path) == chained
