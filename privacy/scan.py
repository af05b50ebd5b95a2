"""Look for the source members' emails and phone numbers where they must not be.

The promise: marts, task logs, Great Expectations results (kept in the lake's manifests),
MLflow runs and artifacts (input examples included), the segment report and exports hold no
member's email or phone number, except an export's email column for members who opted in.
``scan_deployment`` reads every member's email and phone from the loyalty source and searches
for them, in any format, in all of those places. It reports places and counts, never a value.

The search is independent of the redaction patterns: emails are compared whole (case
folded), phones as the ten national digits inside any run of digits and separators.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import REPO_ROOT, Settings

_EMAILISH = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+")
_DIGIT_RUN = re.compile(r"[0-9][0-9 ().+\-]*[0-9]")
_TEXT_SUFFIXES = {".json", ".jsonl", ".csv", ".txt", ".log", ".html", ".yaml", ".yml", ".md", ".py"}


@dataclass(frozen=True)
class Needles:
    """The members' emails (lower-case) and phones (ten national digits) to look for."""

    emails: frozenset[str]
    phones: frozenset[str]
    opted_in_emails: frozenset[str] = frozenset()

    @classmethod
    def from_values(cls, emails: Iterable[str], phones: Iterable[str], opted_in=()) -> Needles:
        def national(phone: str) -> str | None:
            digits = re.sub(r"[^0-9]", "", phone or "")
            return digits[-10:] if len(digits) >= 10 else None

        return cls(
            emails=frozenset(e.strip().lower() for e in emails if e and "@" in e),
            phones=frozenset(p for p in (national(v) for v in phones) if p),
            opted_in_emails=frozenset(e.strip().lower() for e in opted_in if e and "@" in e),
        )

    @classmethod
    def from_loyalty(cls, url: str) -> Needles:
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        try:
            with engine.connect() as connection:
                columns = {c["name"] for c in sa.inspect(connection).get_columns("members")}
                opt_in = "marketing_opt_in" if "marketing_opt_in" in columns else "null"
                rows = connection.exec_driver_sql(
                    f"select email, phone, {opt_in} from members"
                ).fetchall()
        finally:
            engine.dispose()
        return cls.from_values(
            [r[0] for r in rows], [r[1] for r in rows], [r[0] for r in rows if r[2] in (1, True)]
        )

    def emails_in(self, text: str) -> set[str]:
        found = set()
        for match in _EMAILISH.finditer(text):
            candidate = match.group(0).lower().strip(".")
            if candidate in self.emails:
                found.add(candidate)
        return found

    def has_phone(self, text: str) -> bool:
        for match in _DIGIT_RUN.finditer(text):
            digits = re.sub(r"[^0-9]", "", match.group(0))
            for start in range(0, len(digits) - 9):
                if digits[start : start + 10] in self.phones:
                    return True
        return False

    def found_in(self, value, allow_opted_in: bool = False) -> bool:
        if value is None:
            return False
        text = value if isinstance(value, str) else str(value)
        emails = self.emails_in(text)
        if allow_opted_in:
            emails -= self.opted_in_emails
        return bool(emails) or self.has_phone(text)


@dataclass
class Findings:
    checked: dict[str, int] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    def check(self, place: str, values: Iterable, needles: Needles, **options) -> None:
        count = hits = 0
        for value in values:
            count += 1
            if needles.found_in(value, **options):
                hits += 1
        self.checked[place] = self.checked.get(place, 0) + count
        if hits:
            self.hits[place] = self.hits.get(place, 0) + hits


# --- Where to look ------------------------------------------------------------------------------


def scan_duckdb_tables(path: Path, needles: Needles, findings: Findings, label: str) -> None:
    """Every text column of every table outside ``restricted`` (staging views read the lake,
    the restricted area by design, and are not tables)."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            """
            select columns.table_schema, columns.table_name, columns.column_name
            from information_schema.columns as columns
            inner join information_schema.tables as tables
                using (table_catalog, table_schema, table_name)
            where tables.table_type = 'BASE TABLE' and columns.table_schema <> 'restricted'
                and columns.data_type in ('VARCHAR', 'JSON')
            """
        ).fetchall()
        for schema, table, column in columns:
            values = con.execute(
                f'select distinct "{column}" from "{schema}"."{table}" where "{column}" is not null'
            ).fetchall()
            findings.check(f"{label}:{schema}.{table}.{column}", (v for (v,) in values), needles)


def scan_postgres_tables(settings: Settings, needles: Needles, findings: Findings) -> None:
    """The marts' schema and the snapshot on PostgreSQL: tables only (staging are views)."""
    from privacy.erase import _postgres_connect, _postgres_tables

    with _postgres_connect(settings) as connection, connection.cursor() as cursor:
        for (schema, table), columns in _postgres_tables(
            cursor, (settings.pg_schema, "snapshots")
        ).items():
            for column in columns:
                cursor.execute(
                    f'select distinct "{column}"::text from "{schema}"."{table}" '
                    f'where "{column}" is not null'
                )
                findings.check(
                    f"postgres:{schema}.{table}.{column}",
                    (v for (v,) in cursor.fetchall()),
                    needles,
                )
        connection.rollback()


def _file_texts(path: Path) -> Iterator[str]:
    """The text of a file; the members of a zip archive (skops models are zips); Parquet rows."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                yield archive.read(name).decode("utf-8", errors="replace")
        return
    if path.suffix == ".parquet":
        import duckdb

        with duckdb.connect() as con:
            rows = con.execute(f"select * from read_parquet('{path}')").fetchall()
        yield from (str(v) for row in rows for v in row if isinstance(v, str))
        return
    if path.suffix in (".db", ".sqlite") and path.read_bytes()[:15] == b"SQLite format 3":
        yield from _sqlite_texts(path)
        return
    yield path.read_bytes().decode("utf-8", errors="replace")


def _sqlite_texts(path: Path) -> Iterator[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in con.execute(f'select * from "{table}"'):
                yield from (v for v in row if isinstance(v, str))


def scan_files(root: Path, needles: Needles, findings: Findings, label: str, **options) -> None:
    if not root.exists():
        return
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        place = f"{label}:{path.relative_to(root) if root.is_dir() else path.name}"
        findings.check(place, _file_texts(path), needles, **options)


def mlflow_locations(tracking_uri: str) -> list[Path]:
    """The local MLflow store: its SQLite database and artifact folder, or a file store."""
    if tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///"))
        return [database, database.parent / "artifacts"]
    if tracking_uri.startswith("file://"):
        return [Path(tracking_uri.removeprefix("file://"))]
    if "://" not in tracking_uri:
        return [Path(tracking_uri)]
    return []  # a tracking server: scan its artifact store where it lives


def scan_deployment(
    settings: Settings, airflow_home: str | Path | None = None, needles: Needles | None = None
) -> Findings:
    """Scan every place that must hold no member's email or phone number."""
    from warehouse.publish import published_path

    needles = needles or Needles.from_loyalty(settings.loyalty_url)
    findings = Findings()
    for path, label in (
        (settings.duckdb_path, "warehouse"),
        (published_path(settings.duckdb_path), "published"),
    ):
        if path.exists():
            scan_duckdb_tables(path, needles, findings, label)
    if settings.warehouse_target == "postgres":
        scan_postgres_tables(settings, needles, findings)
    home = Path(airflow_home or os.environ.get("AIRFLOW_HOME") or REPO_ROOT / ".airflow")
    scan_files(home / "logs", needles, findings, "task logs")
    for location in mlflow_locations(settings.mlflow_tracking_uri):
        scan_files(location, needles, findings, "mlflow")
    scan_files(settings.lake_dir / "manifests", needles, findings, "lake manifests")
    scan_files(settings.reports_dir, needles, findings, "reports")
    scan_files(settings.exports_dir, needles, findings, "exports", allow_opted_in=True)
    return findings


def summary(findings: Findings) -> str:
    return json.dumps({"checked": len(findings.checked), "hits": findings.hits}, sort_keys=True)
