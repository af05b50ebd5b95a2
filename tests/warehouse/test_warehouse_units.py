"""Small pieces of the warehouse package: sources in step with the contract, enrichment,
the dbt runner's environment."""

from __future__ import annotations

from pathlib import Path

import yaml

from config.settings import REPO_ROOT
from ingestion.contract import LINEAGE_COLUMNS, TABLES

SOURCES_YML = REPO_ROOT / "dbt_project" / "models" / "staging" / "_sources.yml"


def test_dbt_sources_declare_every_contract_column():
    declared = yaml.safe_load(SOURCES_YML.read_text())["sources"]
    by_table = {
        (source["name"], table["name"]): [column["name"] for column in table["columns"]]
        for source in declared
        for table in source["tables"]
    }
    for table in TABLES:
        expected = [c.name for c in table.columns] + [name for name, _ in LINEAGE_COLUMNS]
        assert by_table[(table.source, table.name)] == expected


def test_sources_declare_freshness():
    declared = yaml.safe_load(SOURCES_YML.read_text())["sources"]
    for source in declared:
        if source["name"] == "enriched":
            continue
        assert source["config"]["freshness"]["error_after"]
        for table in source["tables"]:
            assert table["config"]["loaded_at_field"]


def test_enrichment_scores_comments_and_skips_fresh_partitions(fixture_lake, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    from warehouse.enrich import enrich_survey_sentiment

    lake = tmp_path / "lake"
    shutil.copytree(fixture_lake / "raw", lake / "raw")
    first = enrich_survey_sentiment(lake)
    assert len(first.written) == 2 and first.skipped == ()
    second = enrich_survey_sentiment(lake)
    assert second.written == () and len(second.skipped) == 2
    scored = pq.read_table(sorted(p for p in first.written)[0]).to_pylist()
    labels = {row["response_id"]: row["comment_sentiment_label"] for row in scored}
    assert labels == {"R1": "positive", "R6": "negative"}
    assert all(-1 <= row["comment_sentiment"] <= 1 for row in scored)


def test_sentiment_scores_each_distinct_comment_once(tmp_path):
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.parquet as pq
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from warehouse.enrich import OUTPUT_SCHEMA, score_partition

    class Counting(SentimentIntensityAnalyzer):
        calls: list[str] = []

        def polarity_scores(self, text):
            self.calls.append(text)
            return super().polarity_scores(text)

    landed = datetime(2026, 7, 2, tzinfo=UTC)
    comments = ["Great service!", "  Great service!", "Awful wait.", None, "   ", "Great service!"]
    source = tmp_path / "interval=20260701T000000Z--20260702T000000Z.parquet"
    pq.write_table(
        pa.table(
            {
                "response_id": ["R1", "R2", "R3", "R4", "R5", None],
                "comment": comments,
                "_interval_end": pa.array([landed] * 6, pa.timestamp("us", tz="UTC")),
            }
        ),
        source,
    )
    analyzer = Counting()
    scored = score_partition(source, analyzer).to_pylist()
    assert sorted(analyzer.calls) == ["Awful wait.", "Great service!"]
    plain = SentimentIntensityAnalyzer()
    assert [(row["response_id"], row["comment_sentiment"]) for row in scored] == [
        ("R1", plain.polarity_scores("Great service!")["compound"]),
        ("R2", plain.polarity_scores("Great service!")["compound"]),
        ("R3", plain.polarity_scores("Awful wait.")["compound"]),
    ]
    assert [row["comment_sentiment_label"] for row in scored] == [
        "positive",
        "positive",
        "negative",
    ]
    assert {row["_source_file"] for row in scored} == {source.name}
    assert {row["_interval_end"] for row in scored} == {landed}

    # A partition without comments, or without the key scores are joined by, gives no rows.
    for column in ("comment", "response_id"):
        partial = tmp_path / f"without-{column}.parquet"
        pq.write_table(pq.read_table(source).drop_columns([column]), partial)
        empty = score_partition(partial, analyzer)
        assert empty.num_rows == 0 and empty.schema.equals(OUTPUT_SCHEMA)


def test_dbt_env_passes_absolute_paths_and_no_password_in_profiles(tmp_path, monkeypatch):
    from config import load_settings
    from warehouse.dbt_runner import dbt_env

    monkeypatch.chdir(tmp_path)
    settings = load_settings({"CX_DATA_DIR": "rel-data"})
    env = dbt_env(settings, "duckdb")
    assert Path(env["CX_LAKE_DIR"]).is_absolute()
    assert Path(env["CX_DUCKDB_PATH"]).is_absolute()
    assert env["CX_WAREHOUSE_TARGET"] == "duckdb"
    profiles = (REPO_ROOT / "dbt_project" / "profiles.yml").read_text()
    assert "env_var('CX_PG_PASSWORD', '')" in profiles


def test_parse_writes_a_manifest(duckdb_build, tmp_path):
    import json

    from warehouse.dbt_runner import parse

    manifest = parse(duckdb_build.settings, target="duckdb", target_path=tmp_path / "target")
    nodes = json.loads(manifest.read_text())["nodes"]
    names = {node["name"] for node in nodes.values()}
    assert {"customer_360", "member_features_pit", "snap_members"} <= names


def test_duckdb_memory_limit_reaches_dbt_and_a_bad_size_names_the_setting(tmp_path):
    import duckdb
    import pytest

    from config import load_settings
    from config.settings import SettingsError
    from warehouse import dbt_runner

    base = {"CX_DATA_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match="CX_DUCKDB_MEMORY_LIMIT='lots'"):
        load_settings({**base, "CX_DUCKDB_MEMORY_LIMIT": "lots"})
    settings = load_settings({**base, "CX_DUCKDB_MEMORY_LIMIT": "300mb"})
    assert dbt_runner.dbt_env(settings, "duckdb")["CX_DUCKDB_MEMORY_LIMIT"] == "300MB"
    # The profile's value is one DuckDB accepts.
    with duckdb.connect() as con:
        con.execute(f"set memory_limit = '{settings.duckdb_memory_limit}'")
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] in (
            "286.1 MiB",
            "300.0 MB",
        )


def test_dbt_tasks_default_follows_the_warehouse_and_a_bad_mode_names_the_setting(tmp_path):
    import pytest

    from config import load_settings
    from config.settings import SettingsError

    base = {"CX_DATA_DIR": str(tmp_path)}
    # DuckDB's tasks take turns on one file: one build task. PostgreSQL runs models in parallel.
    assert load_settings(base).dbt_tasks == "single"
    assert load_settings({**base, "CX_WAREHOUSE_TARGET": "postgres"}).dbt_tasks == "per_model"
    assert load_settings({**base, "CX_DBT_TASKS": "per_model"}).dbt_tasks == "per_model"
    with pytest.raises(SettingsError, match="CX_DBT_TASKS='per-model'"):
        load_settings({**base, "CX_DBT_TASKS": "per-model"})


def test_every_dbt_command_gets_the_registrys_readers_and_callers_vars_win():
    """macros/access.sql grants from these vars; without them it fails on PostgreSQL."""
    import json

    from warehouse import tables
    from warehouse.dbt_runner import with_registry_vars

    args = with_registry_vars(["build", "--select", "marts"])
    assert args[:3] == ["build", "--select", "marts"] and args[3] == "--vars"
    passed = json.loads(args[4])
    assert passed == tables.grant_vars()
    assert "ml_scores" in passed["marketer_tables"] and "fct_calls" in passed["analyst_tables"]
    assert "int_identity_links" not in passed["analyst_tables"]
    assert "member_contacts" not in passed["analyst_tables"]
    given = with_registry_vars(["run", "--vars", '{"as_of_date": "2024-03-01"}'])
    assert json.loads(given[2]) == {**tables.grant_vars(), "as_of_date": "2024-03-01"}
    mine = with_registry_vars(["run-operation", "x", "--vars", '{"marketer_tables": []}'])
    assert json.loads(mine[3])["marketer_tables"] == []
    assert with_registry_vars(["deps"]) == ["deps"]
