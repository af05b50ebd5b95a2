"""The table registry (warehouse/tables.yml) holds every relation a build makes, under its real
owner, on both warehouses."""

from __future__ import annotations

import json

import pytest
import yaml

from config.settings import REPO_ROOT
from warehouse import tables
from warehouse.store import StoreError


def _dbt_relations(manifest_path) -> dict[str, str]:
    """Relation name -> dbt resource type, for every model, snapshot and seed in the manifest."""
    manifest = json.loads(manifest_path.read_text())
    return {
        node.get("alias") or node["name"]: node["resource_type"]
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "snapshot", "seed")
    }


def _unregistered_or_misowned(relations: dict[str, str], dbt_nodes: dict[str, str], pg_schema=None):
    problems = []
    for name, schema in relations.items():
        entry = tables.registry().get(name)
        if entry is None:
            problems.append(f"{schema}.{name} is not in the registry")
            continue
        expected_schema = entry.schema if entry.schema != "main" or pg_schema is None else pg_schema
        if schema != expected_schema:
            problems.append(f"{name} sits in {schema}, the registry says {expected_schema}")
        built_by_dbt = name in dbt_nodes or schema in ("cx_state", "raw")
        if built_by_dbt != (entry.owner == "dbt"):
            problems.append(f"{name} is owned by {entry.owner} in the registry but built by dbt")
    return problems


def test_every_relation_of_the_duckdb_build_is_registered_under_its_owner(
    duckdb_build, duckdb_connection
):
    relations = dict(
        (name, schema)
        for schema, name in duckdb_connection.execute(
            "select schema_name, table_name from duckdb_tables() union all "
            "select schema_name, view_name from duckdb_views() where not internal"
        ).fetchall()
    )
    dbt_nodes = _dbt_relations(duckdb_build.target_path / "manifest.json")
    assert len(relations) > 25
    assert _unregistered_or_misowned(relations, dbt_nodes) == []


def test_every_relation_of_the_postgres_build_is_registered_under_its_owner(
    postgres_build, postgres_connection
):
    schema = postgres_build.settings.pg_schema
    with postgres_connection.cursor() as cursor:
        cursor.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in (%s, 'raw', 'restricted', 'snapshots', 'cx_state')",
            [schema],
        )
        relations = {name: found for found, name in cursor.fetchall()}
    dbt_nodes = _dbt_relations(postgres_build.target_path / "manifest.json")
    assert {"members", "customer_360", "member_contacts"} <= set(relations)
    assert _unregistered_or_misowned(relations, dbt_nodes, pg_schema=schema) == []


def test_every_dbt_model_is_registered_as_dbt(dbt_manifest):
    dbt_nodes = _dbt_relations(dbt_manifest)
    assert dbt_nodes
    for name in dbt_nodes:
        assert tables.table(name).owner == "dbt", name


def test_the_python_owned_tables_are_not_dbt_models(dbt_manifest):
    dbt_nodes = _dbt_relations(dbt_manifest)
    python_owned = [t.name for t in tables.registry().values() if t.owner != "dbt"]
    assert {"ml_scores", "program_assignments"} <= set(python_owned)
    assert not set(python_owned) & set(dbt_nodes)


def test_the_access_roles_match_dbts():
    project = yaml.safe_load((REPO_ROOT / "dbt_project" / "dbt_project.yml").read_text())
    roles = project["vars"]["access_roles"]
    assert roles == {
        "analyst": tables.ACCESS_ROLES["analysts"],
        "marketer": tables.ACCESS_ROLES["marketers"],
        "pipeline": tables.ACCESS_ROLES["pipeline"],
    }


def test_restricted_tables_are_never_published():
    restricted = [t for t in tables.registry().values() if t.audience == "restricted"]
    assert restricted and not any(t.published for t in restricted)
    assert "member_contacts" in {t.name for t in restricted}
    assert "member_contacts" not in tables.readable_by("analysts")
    assert "ml_scores" in tables.readable_by("marketers")


def test_an_unknown_table_names_the_registry():
    with pytest.raises(tables.RegistryError, match="tables.yml"):
        tables.table("no_such_table")


def test_a_malformed_entry_names_the_table_and_field(tmp_path, monkeypatch):
    bad = tmp_path / "tables.yml"
    bad.write_text(
        "defaults: {kind: table, schema: main, keys: [], records: [], personal: [], "
        "bookkeeping: []}\ntables:\n  ml_scores: {owner: model, audience: marketers}\n"
    )
    monkeypatch.setattr(tables, "REGISTRY_FILE", bad)
    tables.registry.cache_clear()
    try:
        with pytest.raises(tables.RegistryError, match="'ml_scores': owner is 'model'"):
            tables.registry()
    finally:
        tables.registry.cache_clear()


def test_store_error_is_raised_for_the_wrong_owner(tmp_path):
    from warehouse.store import DuckDBStore

    with pytest.raises(StoreError, match="registry gives it to models"):
        with DuckDBStore(tmp_path / "cx.duckdb").writer("programs") as writer:
            writer.delete("ml_scores")
