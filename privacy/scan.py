"""Look for the source members' emails and phone numbers where they must not be.

Which warehouse tables are searched is the table registry's (``warehouse/tables.yml``): the
tables it marks published (analysts or marketers read them), every table of the analysts' copy,
and any table it does not know. A published table may hold no column the registry marks
personal on it, except keyed hashes and the year of birth (``PUBLISHED_BY_DESIGN``).

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

# Column types searched for contact details (DuckDB's and PostgreSQL's names for text).
_TEXT_TYPES = {"varchar", "text", "character varying", "json", "jsonb"}


# Personal columns a published table may hold by design. A keyed hash (``*_hash``: HMAC under
# ``CX_HASH_KEY``) links records without revealing the value. The year of birth is coarse
# enough for an age band and is what ``dim_members`` keeps of the birth date.
PUBLISHED_BY_DESIGN = {"birth_year": "the year of birth, never the date"}


def published_by_design(column: str) -> bool:
    return column.endswith("_hash") or column in PUBLISHED_BY_DESIGN


def misplaced_personal_columns(entry, columns: Iterable[str]) -> list[str]:
    """The columns of a published table that its registry entry (``entry``) marks personal and
    that are not published by design (``PUBLISHED_BY_DESIGN``, keyed hashes)."""
    if entry is None:
        return []
    declared = set(entry.personal)
    return sorted(c for c in columns if c in declared and not published_by_design(c))


def _scanned_tables(store, published_copy: bool) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(schema, table) -> [(column, type)] of the tables to search: those the registry marks
    published, and those it does not know (a table nobody registered is treated as readable).
    In the analysts' copy, every table: whatever is there, analysts read."""
    from warehouse import tables

    rows = store.read(
        "select columns.table_schema, columns.table_name, columns.column_name, "
        "lower(columns.data_type) as data_type "
        "from information_schema.columns as columns "
        "inner join information_schema.tables as tables "
        "on columns.table_schema = tables.table_schema "
        "and columns.table_name = tables.table_name "
        "where tables.table_type = 'BASE TABLE' "
        "and columns.table_schema not in ('information_schema', 'pg_catalog') "
        "order by 1, 2, columns.ordinal_position"
    )
    main = getattr(store, "schema", "main")
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, kind in rows.itertuples(index=False):
        entry = tables.registry().get(table)
        expected = None if entry is None else (main if entry.schema == "main" else entry.schema)
        if entry is not None and expected != schema:
            entry = None  # another relation of the same name: not the registered one
        readable = published_copy or (entry.published if entry else schema == main)
        if readable:
            found.setdefault((schema, table), []).append((column, kind))
    return found


def scan_warehouse(
    store, needles: Needles, findings: Findings, label: str, published_copy: bool = False
) -> None:
    """Every text column of the tables analysts or marketers read (the registry's published
    tables, in the analysts' copy every table), and the personal columns none of them may hold
    (``misplaced_personal_columns``)."""
    from warehouse import tables

    for (schema, table), columns in _scanned_tables(store, published_copy).items():
        entry = tables.registry().get(table)
        for column in misplaced_personal_columns(entry, [c for c, _ in columns]):
            findings.hits[f"{label}:{schema}.{table}.{column} (personal column)"] = 1
        for column, kind in columns:
            if kind.split("(")[0] not in _TEXT_TYPES:
                continue
            values = store.read(
                f'select distinct cast("{column}" as varchar) as value '
                f'from "{schema}"."{table}" where "{column}" is not null'
            )["value"]
            findings.check(f"{label}:{schema}.{table}.{column}", values, needles)


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
    from warehouse.store import DuckDBStore, PostgresStore, postgres_uri

    needles = needles or Needles.from_loyalty(settings.loyalty_url)
    findings = Findings()
    if settings.duckdb_path.exists():
        scan_warehouse(DuckDBStore(settings.duckdb_path), needles, findings, "warehouse")
    copy = published_path(settings.duckdb_path)
    if copy.exists():
        scan_warehouse(DuckDBStore(copy), needles, findings, "published", published_copy=True)
    if settings.warehouse_target == "postgres":
        store = PostgresStore(postgres_uri(settings), settings.pg_schema)
        scan_warehouse(store, needles, findings, "postgres")
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
