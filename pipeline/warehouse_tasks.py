"""The Python steps of the warehouse DAG around dbt: comment sentiment, the keyed hashes of
identifiers and the PostgreSQL raw load before, publishing the read-only copy after."""

from __future__ import annotations

from config import load_settings


def prepare_sources() -> dict:
    """Score comment sentiment and hash identifiers into the lake; on PostgreSQL also copy the
    lake into ``raw``."""
    from warehouse.enrich import enrich_lake, summary

    settings = load_settings()
    # The dbt tasks open the DuckDB file in their own processes; its folder must exist first.
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    result = {name: summary(done) for name, done in enrich_lake(settings).items()}
    if settings.warehouse_target == "postgres":
        from warehouse.load_postgres import load_lake

        report = load_lake(settings.lake_dir)
        result["postgres_loaded_files"] = len(report.loaded)
    return result


def publish() -> str:
    """Publish the read-only copy analysts query while the next build writes (DuckDB)."""
    settings = load_settings()
    if settings.warehouse_target != "duckdb":
        return "postgres: readers use the live schema"
    from warehouse.dbt_runner import release_duckdb
    from warehouse.publish import publish_duckdb

    # When the dbt tasks ran in this process (dag.test), dbt-duckdb still holds the file.
    release_duckdb()
    # A day changes a little of many large tables: bring the last copy up to date by rows.
    return str(
        publish_duckdb(settings.duckdb_path, by_rows=True, skip=published_by_their_writers())
    )


def published_by_their_writers() -> tuple[str, ...]:
    """The tables scoring and the program cycle write and republish themselves: a build does
    not change them, so its publish leaves them in the copy rather than hashing their history."""
    from pipeline.model_tasks import SCORING_TABLES
    from programs.tables import PUBLISHED_TABLES

    return SCORING_TABLES + PUBLISHED_TABLES
