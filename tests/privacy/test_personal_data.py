"""Personal data where it must not be: free text reaching a mart, Great Expectations results,
task logs, and the scanner that checks a whole deployment (`python -m privacy scan`)."""

from __future__ import annotations

import json
import re
import zipfile
from datetime import UTC, datetime

import duckdb
import pytest
from privacy_fixtures import ERASED, env_of

from config.settings import REPO_ROOT
from privacy import identity
from privacy.scan import Findings, Needles, scan_deployment, scan_files

# Contact details as the sample's exports write them (four phone styles, emails in any case).
CORPUS = [
    "You can reach me at +1 555 010 0001.",
    "Callback number (555) 010-0002.",
    "Call 555.010.0003 after six",
    "my number is 5550100004",
    "My email is Anna.Smith123@Example.com.",
    "write to bo@example.com or ann.lee@example.co.uk, thanks",
    "Visited on 2026-06-01 at 10:30, waited 20 minutes, paid 45.50 for 3 items",
    "Order 12345678 arrived late",
    "",
]
NEEDLES = Needles.from_values(
    ["anna.smith123@example.com", "bo@example.com", "ann.lee@example.co.uk"],
    ["5550100001", "5550100002", "5550100003", "5550100004"],
)


def _macro_patterns() -> list[str]:
    text = (REPO_ROOT / "dbt_project" / "macros" / "redact.sql").read_text()
    return re.findall(r"^\s*'([^']*)',\s*$", text, flags=re.MULTILINE)[0::2]


def test_dbt_macro_and_python_use_the_same_patterns():
    assert _macro_patterns() == [identity.EMAIL_PATTERN, identity.PHONE_PATTERN]


def _sql_redact(execute, texts: list[str], mark: str) -> list[str]:
    """Each text redacted by the database, with the patterns passed as parameters."""
    sql = (
        f"select regexp_replace(regexp_replace(cast({mark} as text), {mark}, '[email]', 'g'), "
        f"{mark}, '[phone]', 'g')"
    )
    return [execute(sql, (t, identity.EMAIL_PATTERN, identity.PHONE_PATTERN)) for t in texts]


def test_redaction_removes_every_contact_and_keeps_the_rest():
    redacted = [identity.redact(text) for text in CORPUS]
    assert not any(NEEDLES.found_in(text) for text in redacted)
    assert [NEEDLES.found_in(text) for text in CORPUS] == [True] * 6 + [False] * 3
    assert redacted[6:] == CORPUS[6:]  # dates, times, amounts, order numbers stay
    assert redacted[1] == "Callback number [phone]."
    assert redacted[5] == "write to [email] or [email], thanks"


def test_duckdb_redacts_exactly_as_python():
    with duckdb.connect() as con:
        in_duckdb = _sql_redact(lambda sql, args: con.execute(sql, args).fetchone()[0], CORPUS, "?")
    assert in_duckdb == [identity.redact(text) for text in CORPUS]


@pytest.mark.postgres
def test_postgres_redacts_exactly_as_python(postgres_url):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:

            def execute(sql, args):
                return connection.exec_driver_sql(sql, args).scalar()

            in_postgres = _sql_redact(execute, CORPUS, "%s")
    finally:
        engine.dispose()
    assert in_postgres == [identity.redact(text) for text in CORPUS]


def test_great_expectations_results_keep_counts_not_values(tmp_path, monkeypatch):
    """A source puts emails and phones where an enum belongs: the suite fails, and neither its
    result, the landing's summary nor the error names a value."""
    import great_expectations as gx
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ingestion import contract
    from ingestion.quality import validate_parquet

    results = []
    original = gx.ValidationDefinition.run

    def keep(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        results.append(result)
        return result

    monkeypatch.setattr(gx.ValidationDefinition, "run", keep)
    rows = 20
    table = pa.table(
        {
            "member_id": [f"M{i}" for i in range(rows)],
            "enrolled_at": pa.array([datetime(2025, 1, 1, tzinfo=UTC)] * rows),
            "tier": ["ann.lee@example.com", "555 010 0001"] * (rows // 2),
            "marketing_opt_in": [True] * rows,
        }
    )
    for column in contract.MEMBERS.columns:
        if column.name not in table.column_names:
            table = table.append_column(column.name, pa.nulls(rows, pa.string()))
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path)
    summary = validate_parquet(path, contract.MEMBERS, expect_rows=True)
    assert not summary.success
    assert summary.failed[0]["unexpected_count"] == rows
    for text in (json.dumps(results[0].to_json_dict()), json.dumps(summary.as_dict())):
        assert "ann.lee" not in text and "010 0001" not in text


@pytest.fixture(scope="module")
def airflow_db():
    from pipeline.run import migrate_airflow_db

    migrate_airflow_db()


@pytest.mark.integration
def test_task_logs_of_the_dags_hold_no_contact_details(
    airflow_db, landed, monkeypatch, capfd, caplog
):
    """The ingestion DAGs on sources full of contact details, then the erasure DAG: all they
    log (their task logs under `dag.test()`) names no email and no phone number."""
    import logging

    from pipeline.run import run_dag

    for name, value in env_of(landed).items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.INFO)
    june_3 = datetime(2026, 6, 3, tzinfo=UTC)
    for dag_id in ("ingest_loyalty", "ingest_surveys", "ingest_calls"):
        run_dag(dag_id, june_3)
    run_dag("erase_members", june_3, conf={"member_ids": [ERASED]})
    captured = capfd.readouterr()
    logged = "\n".join(
        [captured.out, captured.err, *(record.getMessage() for record in caplog.records)]
    )
    assert "staged" in logged and "erased 1 member" in logged  # the logs were captured
    needles = Needles.from_loyalty(landed.loyalty_url)
    assert len(needles.emails) == 3 and len(needles.phones) == 3
    assert not needles.found_in(logged)


def test_the_scanner_finds_leaks_wherever_they_are(landed, tmp_path):
    """`python -m privacy scan` on a deployment with one leak planted in each place."""
    from warehouse.publish import publish_duckdb

    settings = landed
    needles = Needles.from_loyalty(settings.loyalty_url)
    assert scan_deployment(settings, airflow_home=tmp_path / "airflow", needles=needles).hits == {}

    settings.duckdb_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("create table mart_x as select 'call +1 (555) 010-0002 please' as note")
        con.execute("create schema restricted")
        con.execute("create table restricted.member_contacts as select 'bo@example.com' as email")
        # The registry's restricted contacts table, built in the marts' schema by mistake: its
        # names are personal data even where no value matches a source's email or phone.
        con.execute("create table member_contacts as select 'M9' as member_id, 'Zed' as first_name")
    publish_duckdb(settings.duckdb_path)
    logs = tmp_path / "airflow" / "logs" / "dag_id=x"
    logs.mkdir(parents=True)
    (logs / "attempt=1.log").write_text("row failed: email=CY@example.com\n")
    artifacts = settings.data_dir / "mlflow" / "artifacts" / "run" / "model"
    artifacts.mkdir(parents=True)
    (artifacts / "input_example.json").write_text('{"data": [["555.010.0003"]]}')
    with zipfile.ZipFile(artifacts / "model.skops", "w") as archive:
        archive.writestr("schema.json", '{"x": " ann.lee@example.com"}')
    exports = settings.exports_dir / "2026-06-02"
    exports.mkdir(parents=True)
    # M1 opted in (their email may be exported); M2 did not.
    (exports / "a.csv").write_text("member_id,email\nM1,ann.lee@example.com\nM2,bo@example.com\n")

    hits = scan_deployment(settings, airflow_home=tmp_path / "airflow", needles=needles).hits
    assert hits == {
        "warehouse:main.mart_x.note": 1,
        "published:main.mart_x.note": 1,
        "warehouse:main.member_contacts.first_name (personal column)": 1,
        "published:main.member_contacts.first_name (personal column)": 1,
        "task logs:dag_id=x/attempt=1.log": 1,
        "mlflow:run/model/input_example.json": 1,
        "mlflow:run/model/model.skops": 1,
        "exports:2026-06-02/a.csv": 1,
    }


def test_scanner_reads_zipped_and_sqlite_artifacts(tmp_path):
    import sqlite3

    findings = Findings()
    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        con.execute("create table params (key text, value text)")
        con.execute("insert into params values ('note', 'bo@example.com')")
    scan_files(tmp_path, NEEDLES, findings, "mlflow")
    assert findings.hits == {"mlflow:mlflow.db": 1}


def test_published_tables_hold_personal_columns_only_by_design():
    """The registry's published tables declare no personal column but keyed hashes and the
    year of birth; the scan flags any other on a published table."""
    from privacy.scan import misplaced_personal_columns, published_by_design
    from warehouse import tables

    published = [t for t in tables.registry().values() if t.published]
    declared = {(t.name, c) for t in published for c in t.personal}
    assert ("dim_members", "birth_year") in declared
    assert all(published_by_design(c) for _, c in declared), declared
    contacts = tables.table("member_contacts")
    assert misplaced_personal_columns(contacts, ["member_id", "email", "first_name"]) == [
        "email",
        "first_name",
    ]
    assert misplaced_personal_columns(tables.table("dim_members"), ["birth_year"]) == []
