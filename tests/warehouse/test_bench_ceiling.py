"""`make bench`'s warehouse ceiling on the fixture warehouse: dbt's compiled SQL run straight in
DuckDB the way dbt runs it (views as views), with every model's rows."""

from __future__ import annotations

import os

from config.settings import REPO_ROOT


def test_the_ceiling_runs_the_compiled_sql_as_dbt_materialises_it(duckdb_build):
    import duckdb

    from bench.run import dbt_sql_ceiling

    settings = duckdb_build.settings
    root = settings.data_dir
    env = {key: value for key, value in os.environ.items() if not key.startswith("CX_")}
    env.update(
        {
            "CX_DATA_DIR": str(root),
            "CX_LAKE_DIR": str(settings.lake_dir),
            "CX_DUCKDB_MEMORY_LIMIT": "1GB",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    stage = dbt_sql_ceiling(root, env, root / "ceiling.log")
    assert stage.ok and stage.wall_seconds > 0

    with (
        duckdb.connect(str(settings.duckdb_path), read_only=True) as built,
        duckdb.connect(str(root / "ceiling" / "run" / "cx.duckdb"), read_only=True) as ceiling,
    ):
        relations = "select schema_name, {0}_name from duckdb_{0}s() where not internal"
        built_views = set(built.execute(relations.format("view")).fetchall())
        assert ("main", "stg_loyalty__members") in built_views
        assert set(ceiling.execute(relations.format("view")).fetchall()) == built_views
        for schema, table in built.execute(relations.format("table")).fetchall():
            if schema == "cx_state":  # dbt's bookkeeping, which the compiled SQL does not write
                continue
            count = f'select count(*) from "{schema}"."{table}"'
            assert ceiling.execute(count).fetchone() == built.execute(count).fetchone(), table
