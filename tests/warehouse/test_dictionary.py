"""The analysts' dictionary: every column of every published table is described in dbt.

Published tables are those the table registry (warehouse/tables.yml) publishes: the dbt build's
tables outside restricted, cx_state and raw, and the tables Python writes beside the marts,
declared as sources in dbt_project/models/python_owned. Their columns come from a real DuckDB
build and from the columns each owner's writer ensures, not from the yml, so a column added in
SQL or Python without a description fails here, named.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from config.settings import REPO_ROOT

PYTHON_OWNED_YML = (
    REPO_ROOT / "dbt_project" / "models" / "python_owned" / "_python_owned__sources.yml"
)
PUBLISHED_COPY_EXPOSURE = "analysts_published_copy"


def _manifest(build) -> dict:
    return json.loads((Path(build.target_path) / "manifest.json").read_text())


def _declared_python_tables() -> dict[str, dict]:
    """``{table: its entry}`` as the python_owned sources declare them."""
    return {
        table["name"]: table
        for source in yaml.safe_load(PYTHON_OWNED_YML.read_text())["sources"]
        for table in source["tables"]
    }


@pytest.fixture(scope="module")
def python_tables() -> dict[str, dict[str, str]]:
    """``{table: {column: type}}`` of the tables Python writes: the columns each owner's writer
    ensures (``writer.ensure(table, columns)``) before it writes."""
    from ml import monitor, score
    from programs import cases, tables

    return {
        "ml_scores": score.SCORE_COLUMNS,
        "ml_monitoring": monitor.MONITORING_COLUMNS,
        "segment_transitions": monitor.TRANSITION_COLUMNS,
        "program_assignments": tables.ASSIGNMENT_COLUMNS,
        "program_cycles": tables.CYCLE_COLUMNS,
        "mart_program_lift": tables.LIFT_COLUMNS,
        "mart_key_drivers": tables.DRIVER_COLUMNS,
        "cases": cases.CASE_COLUMNS,
        "case_updates": cases.UPDATE_COLUMNS,
        "case_runs": cases.RUN_COLUMNS,
    }


def _published(owners: tuple[str, ...]) -> dict[str, str]:
    """``{table: schema}`` of the registry's published tables of ``owners``."""
    from warehouse import tables

    return {t.name: t.schema for t in tables.published() if t.owner in owners}


def _built_tables(connection) -> dict[tuple[str, str], list[str]]:
    """``{(schema, table): [column, ...]}`` of the build's tables the registry publishes."""
    published = _published(("dbt",))
    rows = connection.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "order by table_schema, table_name, ordinal_position"
    ).fetchall()
    out: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in rows:
        if published.get(table) == schema:
            out.setdefault((schema, table), []).append(column)
    return out


def _descriptions(manifest: dict) -> dict[tuple[str, str], dict[str, str]]:
    """``{(schema, relation): {column: description}}`` of every model, snapshot and source."""
    out = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] in ("model", "snapshot", "seed"):
            key = (node["schema"], node.get("alias") or node["name"])
            out[key] = {name: c.get("description") or "" for name, c in node["columns"].items()}
    for source in manifest["sources"].values():
        key = (source["schema"], source["identifier"])
        out[key] = {name: c.get("description") or "" for name, c in source["columns"].items()}
    return out


def _undescribed(tables: dict[tuple[str, str], list[str]], described) -> list[str]:
    missing = []
    for (schema, table), columns in sorted(tables.items()):
        known = described.get((schema, table))
        if known is None:
            missing.append(f"{schema}.{table}: not declared in dbt at all")
            continue
        missing += [f"{schema}.{table}.{c}" for c in columns if not known.get(c, "").strip()]
    return missing


def test_the_build_publishes_the_tables_the_dictionary_is_checked_on(duckdb_connection):
    tables = _built_tables(duckdb_connection)
    # Guards the check below against passing on an empty or wrongly filtered list.
    assert ("main", "customer_360") in tables
    assert ("main", "fct_survey_responses") in tables
    assert ("restricted", "member_contacts") not in tables
    assert sum(len(columns) for columns in tables.values()) > 200


def test_every_published_column_of_the_build_is_described(duckdb_build, duckdb_connection):
    missing = _undescribed(_built_tables(duckdb_connection), _descriptions(_manifest(duckdb_build)))
    assert not missing, f"{len(missing)} published columns without a description:\n" + "\n".join(
        missing
    )


def test_every_column_python_writes_is_described(duckdb_build, python_tables):
    described = _descriptions(_manifest(duckdb_build))
    missing = _undescribed({("main", t): list(c) for t, c in python_tables.items()}, described)
    assert not missing, (
        f"{len(missing)} columns Python writes without a description:\n" + "\n".join(missing)
    )


def test_every_table_python_writes_is_a_source_under_its_owner(python_tables):
    from warehouse import tables

    owned = {t.name for owner in ("models", "programs") for t in tables.owned_by(owner)}
    declared = _declared_python_tables()
    assert set(owned) == set(declared) == set(python_tables)
    assert set(_published(("models", "programs"))) <= owned
    for name, entry in declared.items():
        assert entry["config"]["meta"]["owner"] == tables.table(name).owner, name


def test_the_python_owned_sources_declare_exactly_what_the_writers_write(python_tables):
    for table, entry in _declared_python_tables().items():
        declared = {c["name"]: c["data_type"] for c in entry["columns"]}
        assert list(declared.items()) == list(python_tables[table].items()), (
            f"{table}: the writer ensures {python_tables[table]}, the source declares {declared}"
        )


def test_the_published_copy_exposure_reads_every_published_table(duckdb_build, duckdb_connection):
    manifest = _manifest(duckdb_build)
    exposure = manifest["exposures"][f"exposure.cx.{PUBLISHED_COPY_EXPOSURE}"]
    read = set()
    for unique_id in exposure["depends_on"]["nodes"]:
        node = manifest["nodes"].get(unique_id) or manifest["sources"][unique_id]
        read.add(node.get("alias") or node.get("identifier") or node["name"])
    published = set(_published(("dbt", "models", "programs")))
    assert {table for _, table in _built_tables(duckdb_connection)} <= published
    assert published - read == set(), "published tables missing from the exposure"
    assert read - published == set(), "the exposure names tables that are not published"


def test_the_exports_and_the_report_read_the_tables_python_writes(duckdb_build):
    exposures = _manifest(duckdb_build)["exposures"]
    exports = set(exposures["exposure.cx.marketer_exports"]["depends_on"]["nodes"])
    assert {
        "source.cx.programs.program_assignments",
        "source.cx.models.ml_scores",
        "model.cx.member_contacts",
    } <= exports
    report = set(exposures["exposure.cx.segment_report"]["depends_on"]["nodes"])
    assert {"source.cx.programs.mart_program_lift", "source.cx.programs.mart_key_drivers"} <= report


# One meaning, one name: an NPS answer (0-10) is *nps_score, a group's NPS (-100..100) is nps.
NPS_ANSWER_COLUMNS = ("nps_score", "latest_nps_score", "avg_nps_score")


def test_every_column_named_nps_score_holds_answers_and_nps_holds_the_score(duckdb_connection):
    checked = []
    for (schema, table), columns in _built_tables(duckdb_connection).items():
        for column in set(columns) & set(NPS_ANSWER_COLUMNS):
            low, high = duckdb_connection.execute(
                f'select min("{column}"), max("{column}") from {schema}.{table}'
            ).fetchone()
            assert low is not None, f"{table}.{column} is empty in the fixture build"
            assert 0 <= low <= high <= 10, f"{table}.{column} spans {low}..{high}, not an answer"
            checked.append(f"{table}.{column}")
    assert len(checked) >= 4, checked  # responses, features, 360, emotion value
    [(low, high)] = duckdb_connection.execute(
        "select min(nps), max(nps) from mart_nps_csat_monthly"
    ).fetchall()
    assert -100 <= low <= high <= 100 and (low < 0 or high > 10), (low, high)


def test_engagement_segments_are_spelt_as_the_models_spell_them(duckdb_connection):
    from ml.labels import SEGMENTS

    segments = {
        row[0]
        for row in duckdb_connection.execute(
            "select engagement_segment from mart_emotion_value"
        ).fetchall()
    }
    assert segments & set(SEGMENTS), segments  # the fixture has measured members
    assert segments <= {*SEGMENTS, "Unmeasured"}, segments
