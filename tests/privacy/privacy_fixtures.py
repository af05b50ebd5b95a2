"""Tiny sources in which one member (M1) is everywhere, in every way a member can be found.

On top of ``fixture_sources`` (M1 in the loyalty database, survey R1 and call C1), June 2 brings:
an anonymous survey response with M1's email in another case and M1's phone in the comment
(R7), a truncated survey line carrying M1's email (quarantined), a call without a member id from
M1's phone in another format with the number in the notes (C5), a call whose member id is
M1's typed in lower case (C6), and a call of M1's whose queue time is unreadable (quarantined).
Member M2's records stay, to show erasure takes nobody else.
"""

from __future__ import annotations

import re
from pathlib import Path

from fixture_sources import (
    CALL_HEADER,
    DAY1,
    DAY2,
    DAY3,
    survey_line,
    write_calls,
    write_loyalty,
    write_surveys,
)

from config import load_settings
from config.settings import Settings
from ingestion import contract

ERASED = "M1"
ERASED_EMAIL = "ann.lee@example.com"
ERASED_PHONE_DIGITS = "5550100001"
KEPT = "M2"
KEPT_EMAIL = "bo@example.com"
INTERVALS = ((DAY1, DAY2), (DAY2, DAY3))


def write_sources(root: Path) -> dict[str, str]:
    """Write the sources under ``root``; return the variables that point the pipeline at them."""
    loyalty = write_loyalty(root / "loyalty.db")
    surveys = write_surveys(root / "surveys")
    calls = write_calls(root / "calls")
    (surveys / "2026-06-02" / "anonymous.jsonl").write_text(
        "\n".join(
            [
                survey_line(
                    "R7",
                    "2026-06-02T09:30:00Z",
                    email=" Ann.Lee@EXAMPLE.com",
                    nps=2,
                    survey_type="transactional",
                    channel="web",
                    comment="Nobody called back. Please call me on (555) 010-0001, thanks",
                ),
                survey_line(
                    "R8",
                    "2026-06-02T10:00:00Z",
                    member_id=KEPT,
                    nps=9,
                    survey_type="relationship",
                    channel="app",
                    comment="Great service",
                ),
                '{"response_id": "R9", "email": "ann.lee@example.com", "submitted_at": "2026-06-0',
            ]
        )
        + "\n"
    )
    day2 = calls / "2026-06-02"
    day2.mkdir()
    (day2 / "calls.csv").write_text(
        "\n".join(
            [
                CALL_HEADER,
                "C5,2026-06-02T08:00:00Z,,555-010-0001,phone,20,200,billing,yes,no,0,A1,Callback number 555.010.0001.",
                "C6,2026-06-02T09:00:00Z,m1 ,,chat,5,100,points,yes,no,0,A2,asked about points",
                "C7,2026-06-02T10:00:00Z,M2,+1 555 010 0002,phone,40,300,billing,yes,no,0,A1,fine",
                "C8,2026-06-02T11:00:00Z,M1,,phone,n/a,60,other,no,no,0,A3,line dropped",
            ]
        )
        + "\n"
    )
    return {"CX_LOYALTY_URL": loyalty, "CX_SURVEY_ROOT": str(surveys), "CX_CALLS_ROOT": str(calls)}


def land_everything(settings) -> None:
    from ingestion.land import land

    for start, end in INTERVALS:
        for table in contract.TABLES:
            land(settings, table, start, end)


# --- Settings for the tests ---------------------------------------------------------------------

HASH_KEY = "test-only-hash-key-0123456789abcdef0123"


def settings_for(root: Path, sources: Path | None = None, **extra: str) -> Settings:
    """Settings with their data under ``root`` and the sources under ``sources`` (default
    ``root``, written there when missing)."""
    sources = sources or root
    if not (sources / "loyalty.db").exists():
        write_sources(sources)
    return load_settings(
        {
            "CX_DATA_DIR": str(root / "data"),
            "CX_HASH_KEY": HASH_KEY,
            **_source_env(sources),
            **extra,
        }
    )


def _source_env(sources: Path) -> dict[str, str]:
    return {
        "CX_LOYALTY_URL": f"sqlite:///{sources / 'loyalty.db'}",
        "CX_SURVEY_ROOT": str(sources / "surveys"),
        "CX_CALLS_ROOT": str(sources / "calls"),
        # Erasing M1 leaves fewer good rows beside the fixture's bad ones.
        "CX_BAD_ROW_THRESHOLD": "0.8",
    }


def env_of(settings: Settings) -> dict[str, str]:
    """The environment that gives ``settings`` (for CLIs and DAG runs)."""
    env = {
        "CX_DATA_DIR": str(settings.data_dir),
        "CX_LOYALTY_URL": settings.loyalty_url,
        "CX_SURVEY_ROOT": settings.survey_root,
        "CX_CALLS_ROOT": settings.calls_root,
        "CX_BAD_ROW_THRESHOLD": str(settings.bad_row_threshold),
        "CX_WAREHOUSE_TARGET": settings.warehouse_target,
        "CX_PG_HOST": settings.pg_host,
        "CX_PG_PORT": str(settings.pg_port),
        "CX_PG_USER": settings.pg_user,
        "CX_PG_DBNAME": settings.pg_dbname,
    }
    if settings.hash_key:
        env["CX_HASH_KEY"] = settings.hash_key
    return env


def build_duckdb(settings: Settings) -> None:
    """The warehouse as `make run` builds it (data tests skipped: tests/warehouse runs them)."""
    from warehouse import dbt_runner
    from warehouse.enrich import enrich_lake
    from warehouse.publish import publish_duckdb

    enrich_lake(settings)
    dbt_runner.build(
        settings,
        target="duckdb",
        exclude=["test_type:data", "test_type:unit"],
        target_path=settings.data_dir / "dbt-target",
    )
    publish_duckdb(settings.duckdb_path)


# --- An independent search for the erased member: the raw values, not the pipeline's matcher ---

_ID = re.compile(rf"(?<![A-Za-z0-9]){ERASED}(?![0-9])", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s().+-]")


def mentions_erased(value) -> bool:
    """Whether a value carries M1's id (as a whole token), email, or phone in any format."""
    if value is None:
        return False
    text = str(value)
    if ERASED_EMAIL in text.lower():
        return True
    if ERASED_PHONE_DIGITS in _SEPARATORS.sub("", text):
        return True
    return bool(_ID.search(text))


def mentions_kept(value) -> bool:
    text = "" if value is None else str(value)
    return KEPT_EMAIL in text.lower() or bool(
        re.search(rf"(?<![A-Za-z0-9]){KEPT}(?![0-9])", text, re.IGNORECASE)
    )


def scan_parquet(con, path: Path, predicate=mentions_erased) -> list[str]:
    """``<file>:<column>`` for every cell of a Parquet file that the predicate flags."""
    rows = con.execute(f"select * from read_parquet('{path}')").fetchall()
    names = [d[0] for d in con.description]
    return [f"{path.name}:{names[i]}" for row in rows for i, v in enumerate(row) if predicate(v)]


def scan_duckdb(con, predicate=mentions_erased) -> list[str]:
    """``<schema>.<table>.<column>`` for every flagged cell of every table and view."""
    hits = []
    relations = con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = current_database() "
        "union all select schema_name, view_name from duckdb_views() "
        "where database_name = current_database() and not internal"
    ).fetchall()
    for schema, name in relations:
        cursor = con.execute(f'select * from "{schema}"."{name}"')
        names = [d[0] for d in cursor.description]
        for row in cursor.fetchall():
            hits += [f"{schema}.{name}.{names[i]}" for i, v in enumerate(row) if predicate(v)]
    return hits


def scan_files(root: Path, predicate=mentions_erased) -> list[str]:
    """Every file under ``root`` (Parquet read as rows, everything else as text) that mentions
    the member."""
    import duckdb

    hits = []
    with duckdb.connect() as con:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.suffix == ".parquet":
                hits += [
                    f"{path.relative_to(root)}:{h}" for h in scan_parquet(con, path, predicate)
                ]
            elif path.suffix in (".json", ".csv", ".jsonl", ".txt", ".log", ".html", ".yml"):
                if predicate(path.read_text(errors="replace")):
                    hits.append(str(path.relative_to(root)))
    return hits
