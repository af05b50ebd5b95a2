"""Readers: bring one source table's rows for an interval into DuckDB as text columns.

Every reader yields the same shape, a DuckDB table of VARCHAR columns named after the contract
columns the source carries, plus ``_extra_fields`` (unknown columns as a JSON object),
``_source_file`` and ``_source_row``. Casting and row checks happen once, in ``parse.py``.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path, PurePosixPath

import duckdb
import fsspec
import pyarrow as pa
import sqlalchemy as sa

from ingestion.contract import EMOTIONS, Table
from ingestion.errors import ContractError, SourceUnavailableError
from ingestion.lake import Interval

log = logging.getLogger(__name__)


# Fewer object lines than this in a survey file: a required field missing from all of them
# quarantines those lines rather than failing the file as a broken contract.
CONTRACT_MIN_LINES = 10


@dataclass
class RawExtract:
    """What a reader brought in: the DuckDB table name and how it was made."""

    relation: str
    columns: tuple[str, ...]  # contract columns the source carries
    extra_columns: tuple[str, ...]  # source columns outside the contract
    source_files: list[dict] = field(default_factory=list)  # path, bytes, sha256, rows
    rejected_lines: str | None = None  # DuckDB table of lines that could not be split at all
    # True when the relation's rows were inserted in (_source_file, _source_row) order, as a
    # single stream is: the split keeps that order without sorting (DuckDB preserves insertion
    # order), which at a million members saves sorting 23 million rows.
    in_source_order: bool = False
    # Export files and folders passed over (path, reason): listed in the manifest, not dropped.
    ignored: list[dict] = field(default_factory=list)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _extra_fields_sql(extra: list[str]) -> str:
    """SQL for a JSON object of the unknown columns, or NULL when the source has none."""
    if not extra:
        return "NULL::VARCHAR"
    pairs = ", ".join(f"{_literal(name)}, {_quote(name)}" for name in extra)
    return f"json_object({pairs})::VARCHAR"


# --- Loyalty database -------------------------------------------------------------------------


def _adbc_connect(url: sa.engine.URL):
    """Arrow-native connection for the two databases we know; None means use SQLAlchemy."""
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database and url.database != ":memory:":
        import adbc_driver_sqlite.dbapi

        return adbc_driver_sqlite.dbapi.connect(url.database)
    if backend == "postgresql":
        import adbc_driver_postgresql.dbapi

        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return adbc_driver_postgresql.dbapi.connect(libpq)
    return None


# A row without the preferred watermark falls back to its occurrence time.
WATERMARK_FALLBACK = {"updated_at": "enrolled_at", "recorded_at": "occurred_at"}


def watermark_window(
    table: Table, present: set[str], interval: Interval, lookback_days: int
) -> tuple[tuple[str, ...], datetime, datetime]:
    """Which columns bound the extract (coalesced in order), and the exact [low, high).

    With a recorded-at style watermark the interval is exact. Without one, facts re-read a
    lookback window for late rows, and dimensions are taken whole (no columns).
    """
    preferred = table.watermarks[0] if table.watermarks else None
    if preferred and preferred in present:
        fallback = WATERMARK_FALLBACK.get(preferred)
        columns = (preferred, fallback) if fallback in present else (preferred,)
        return columns, interval.start, interval.end
    if table.lookback_when_no_watermark:
        column = next(c for c in table.watermarks[1:] if c in present)
        low = interval.start
        if not interval.is_full_history:
            low = interval.start - timedelta(days=lookback_days)
        return (column,), low, interval.end
    return (), interval.start, interval.end


def read_database_table(
    con: duckdb.DuckDBPyConnection,
    url: str,
    table: Table,
    interval: Interval,
    lookback_days: int,
) -> tuple[RawExtract, tuple[str, ...], datetime, datetime]:
    """Read ``table`` from the loyalty database for ``interval`` into DuckDB as text.

    Returns the extract, the watermark columns used (none for a full snapshot) and the exact
    window; the SQL filter is a day wider on each side so that timestamps stored as text
    with offsets are not cut off, also fetches rows whose watermark holds no date, and
    ``parse.py`` places every row exactly after casting. A full load reads every row.
    """
    try:
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            described = sa.inspect(connection).get_columns(table.name)
    except sa.exc.NoSuchTableError:
        raise ContractError(
            f"loyalty database {sa.engine.make_url(url).render_as_string()}: table "
            f"{table.name!r} does not exist"
        ) from None
    except sa.exc.SQLAlchemyError as error:
        raise SourceUnavailableError(
            f"loyalty database {sa.engine.make_url(url).render_as_string()} could not be read: "
            f"{error.__class__.__name__}: {str(error).splitlines()[0]}"
        ) from error
    finally:
        engine.dispose()

    present_columns = [c["name"] for c in described]
    # A watermark column of another type than a time (PostgreSQL text) cannot be compared with
    # the window's bounds by the server: the read takes every row, and parsing places them.
    untimed = frozenset(
        c["name"] for c in described if not isinstance(c["type"], sa.DateTime | sa.Date)
    )
    present = set(present_columns)
    location = f"{table.name}@{sa.engine.make_url(url).render_as_string()}"
    missing = [name for name in table.required if name not in present]
    if missing:
        raise ContractError(
            f"loyalty database table {table.name!r} lacks required column(s) {missing} "
            f"(source {location})"
        )
    known = [c.name for c in table.columns if c.name in present]
    extra = [c for c in present_columns if c not in {col.name for col in table.columns}]

    watermark, low, high = watermark_window(table, present, interval, lookback_days)
    # Streamed batch by batch into DuckDB (which spills past its memory limit), so a full
    # history of tens of millions of rows is never held twice, or whole, in Arrow.
    counter = _RowCounter()
    stream = counter.number(
        _fetch_text(
            url,
            table.name,
            known + extra,
            watermark,
            low,
            high,
            interval.is_full_history,
            unbounded=untimed,
        )
    )
    con.register("_arrow_extract", stream)
    select = ", ".join(
        [f"nullif({_quote(name)}, '') as {_quote(name)}" for name in known]
        + [
            f"{_extra_fields_sql(extra)} as _extra_fields",
            f"{_literal(location)} as _source_file",
            "_source_row",
        ]
    )
    relation = f"raw_{table.source}_{table.name}"
    try:
        con.execute(
            f"create or replace temp table {relation} as select {select} from _arrow_extract"
        )
    except duckdb.Error:
        # DuckDB reports a failure inside the stream as its own error; the source's is clearer.
        if counter.error is not None:
            raise counter.error from None
        raise
    finally:
        con.unregister("_arrow_extract")
    extract = RawExtract(
        relation=relation,
        columns=tuple(known),
        extra_columns=tuple(extra),
        source_files=[{"path": location, "rows": counter.rows}],
        in_source_order=True,
    )
    return extract, watermark, low, high


class _RowCounter:
    """Numbers the rows of a batch stream (``_source_row``, from 1), counts them and keeps the
    error that stopped the stream, if one did."""

    def __init__(self) -> None:
        self.rows = 0
        self.error: Exception | None = None

    def number(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        schema = reader.schema.append(pa.field("_source_row", pa.int64()))

        def batches():
            try:
                for batch in reader:
                    first = self.rows + 1
                    self.rows += batch.num_rows
                    rows = pa.array(range(first, self.rows + 1), type=pa.int64())
                    yield pa.RecordBatch.from_arrays([*batch.columns, rows], schema=schema)
            except Exception as error:
                self.error = error
                raise

        return pa.RecordBatchReader.from_batches(schema, batches())


# SQLite compares a text watermark as text, byte by byte, which orders a value by its time only
# when it begins with its date as YYYY-MM-DD ('2026-06-15 10:00:00'): a day's read finds those
# by its window. Any other text may name a time anywhere, or none: '2026/6/15 10:00' and
# '2026-6-15 10:00' (both June 15 to the parser) sort after every 2026-MM-DD value, epoch
# seconds of 2030 ('1900000000') among the dates of 1900, '15-06-2026' before them and
# 'June 15 2026' after them. Such "stray" text is fetched by every day's read, and the parser
# places it. A value that begins with a date but does not parse ('2026-06-15 4pm') is found by
# that date's window alone, so ``parse.split_rows`` places it on that date.
_DATE_PREFIX = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# The same test in SQLite's SQL, for a column read without a walk of its index (a modifier
# makes date() check the day of the month: alone, it takes '2026-02-30' as it is).
_SQLITE_STRAY = (
    "(typeof({c}) = 'text' and {c} <> '' and not ({c} glob "
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' and substr({c}, 1, 4) <> '0000' "
    "and date(substr({c}, 1, 10), '+0 days') is substr({c}, 1, 10)))"
)

# A walk of the index lists at most this many stray values, and visits at most this many
# distinct days; past either, the read tests every row with ``_SQLITE_STRAY`` (a scan).
MAX_STRAYS, MAX_WALK_STEPS = 1000, 100_000


def starts_with_a_date(value: str) -> bool:
    """True when ``value`` begins with a calendar date written YYYY-MM-DD, the only text
    SQLite sorts by the time it names."""
    if not _DATE_PREFIX.match(value):
        return False
    try:
        date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


def _sqlite_leading_index(con, table_name: str, column: str) -> bool:
    """Whether an index (whole, in SQLite's binary order) leads with ``column``."""
    for _, name, _, _, partial in con.execute(f"pragma index_list({_quote(table_name)})"):
        if partial:
            continue
        key = con.execute(f"pragma index_xinfo({_quote(name)})").fetchone()
        if key is not None and key[2] == column and (key[4] or "BINARY").upper() == "BINARY":
            return True
    return False


def sqlite_strays(path: str, table_name: str, column: str) -> list[str] | None:
    """The distinct text values of ``column`` that do not begin with a date (see
    ``starts_with_a_date``), found by walking its index: one seek per day that the column holds
    and per stray value, jumping over each day's values. None when the column has no index to
    walk, or holds more than ``MAX_STRAYS`` strays or ``MAX_WALK_STEPS`` days."""
    try:
        con = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        if not _sqlite_leading_index(con, table_name, column):
            return None
        quoted, table = _quote(column), _quote(table_name)
        # Text only: numbers sort before '' and blobs from x'', both read by their own terms.
        step = "select {c} from {t} where {c} {op} ? and {c} < x'' order by {c} limit 1"
        after = step.format(c=quoted, t=table, op=">")
        from_ = step.format(c=quoted, t=table, op=">=")
        strays: list[str] = []
        found = con.execute(after, ("",)).fetchone()
        for _ in range(MAX_WALK_STEPS):
            if found is None:
                return strays
            value = found[0]
            if not isinstance(value, str) or "\x00" in value:
                return None
            if starts_with_a_date(value):
                # Past every value of that day: the date's last digit, plus one.
                following = con.execute(from_, (value[:9] + chr(ord(value[9]) + 1),)).fetchone()
            else:
                strays.append(value)
                if len(strays) > MAX_STRAYS:
                    return None
                following = con.execute(after, (value,)).fetchone()
            if following is not None and isinstance(following[0], str) and following[0] <= value:
                return None  # the comparison is not the text order assumed here
            found = following
        return None
    except sqlite3.Error:
        return None
    finally:
        con.close()


def _in_window(
    watermark: tuple[str, ...],
    low: str,
    high: str,
    sqlite: bool = False,
    strays: list[str] | None = None,
    unbounded: frozenset[str] = frozenset(),
) -> str:
    """SQL true for the rows a day's read fetches: those whose first watermark column that holds
    a date lies in [low, high), and those whose watermark columns hold no date at all.

    A column holds no date when it is null or, on SQLite (``sqlite``), a number or the empty
    text (no number parses as a time): such a value places the row by the next column, and a
    row no column places is fetched by every day's read, so that it is quarantined rather than
    lost. On SQLite, text that does not begin with a date (``starts_with_a_date``) may name any
    time and is fetched by every read: the first column's ``strays`` (``sqlite_strays``) by
    their values, or, when None, every row's value is tested (a scan); so are blobs. A column in
    ``unbounded`` (PostgreSQL text, which the server cannot compare with a time) places no
    bound: from the first, the read takes every row. The exact placement is
    ``parse.split_rows``'s, after casting.

    The first column's terms are written apart (``a in window or a is null and ... or a in
    (strays)``), so the database searches its index for each: on the sample's 23 million
    transactions, a day's read took 0.5 s against 3.9 s for a scan.
    """

    def in_window(column: str) -> str:
        return f"{_quote(column)} >= {low} and {_quote(column)} < {high}"

    def no_date(column: str) -> list[str]:
        quoted = _quote(column)
        terms = [f"{quoted} is null"]
        if sqlite:
            # Rare, as the planner is told: a range open on one side would otherwise count as a
            # quarter of the table, and the read become a scan.
            terms.append(f"likelihood({quoted} <= '', 0.001)")
        return terms

    def any_time(column: str, listed: list[str] | None) -> list[str]:
        """Values that may name any time: fetched whatever the other columns hold."""
        if not sqlite:
            return []
        quoted = _quote(column)
        terms = [f"likelihood({quoted} >= x'', 0.001)"]
        if listed is None:
            terms.append(_SQLITE_STRAY.format(c=quoted))
        elif listed:
            terms.append(f"{quoted} in ({', '.join(_literal(v) for v in listed)})")
        return terms

    def placed_by(columns: tuple[str, ...]) -> str:
        """The row is placed in the window by one of ``columns`` (in order), or by none."""
        column, rest = columns[0], columns[1:]
        if column in unbounded:
            return "true"
        undated = " or ".join(no_date(column))
        anywhere = "".join(f" or {term}" for term in any_time(column, None))
        if not rest:
            return f"({in_window(column)}) or {undated}{anywhere}"
        return f"({in_window(column)}){anywhere} or (({undated}) and ({placed_by(rest)}))"

    first, rest = watermark[0], watermark[1:]
    if first in unbounded:
        return "true"
    after = f" and ({placed_by(rest)})" if rest else ""
    return " or ".join(
        [f"({in_window(first)})"]
        + [f"({term})" for term in any_time(first, strays)]
        + [f"({term}{after})" for term in no_date(first)]
    )


def _where_window(
    parsed: sa.engine.URL,
    table_name: str,
    watermark: tuple[str, ...],
    low: datetime,
    high: datetime,
    unbounded: frozenset[str],
) -> str:
    """The filter of a day's read (``_in_window``), a day wider than [low, high); "true" when
    the first watermark cannot bound the read."""
    wide_low = (low - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    wide_high = (high + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    if parsed.get_backend_name() == "sqlite":
        strays = None
        if parsed.database and parsed.database != ":memory:":
            strays = sqlite_strays(parsed.database, table_name, watermark[0])
        if strays is None:
            log.info(
                "%s.%s: its values that do not begin with a date are found by testing every "
                "row (no index on it, or more than %d such values)",
                table_name,
                watermark[0],
                MAX_STRAYS,
            )
        bounds = (_literal(wide_low), _literal(wide_high))
        return _in_window(watermark, *bounds, sqlite=True, strays=strays)
    bounds = (f"cast({_literal(bound + '+00')} as timestamptz)" for bound in (wide_low, wide_high))
    where = _in_window(watermark, *bounds, unbounded=unbounded)
    if where == "true":
        log.warning(
            "%s.%s holds text, not a timestamp: each read takes the whole table, and the rows "
            "are placed after parsing",
            table_name,
            watermark[0],
        )
    return where


def _fetch_text(
    url: str,
    table_name: str,
    columns: list[str],
    watermark: tuple[str, ...],
    low,
    high,
    full_history: bool = False,
    unbounded: frozenset[str] = frozenset(),
) -> pa.RecordBatchReader:
    """Columns cast to text as a stream of Arrow batches, filtered a day wider than [low, high)
    on the first ``watermark`` column that holds a date, through the columns' indexes
    (``_in_window``). No filter without a watermark, nor for the ``full_history``: a full load
    reads every row, to quarantine those dated after its end or not at all. The ``unbounded``
    watermark columns are compared with no time (PostgreSQL text).

    The stream owns its connection and closes it when exhausted; errors while connecting or
    reading are ``SourceUnavailableError``."""
    parsed = sa.engine.make_url(url)
    backend = parsed.get_backend_name()
    # SQLite is dynamically typed and ADBC infers a column's type from its first rows, so an
    # empty string stands in for NULL on the wire; the parser turns it back into NULL.
    if backend == "sqlite":
        cast = "coalesce(cast({c} as text), '')"
    else:
        cast = "cast({c} as text)"
    select_list = ", ".join(f"{cast.format(c=_quote(c))} as {_quote(c)}" for c in columns)
    sql = f"select {select_list} from {_quote(table_name)}"
    if watermark and not full_history:
        where = _where_window(parsed, table_name, watermark, low, high, unbounded)
        if where != "true":
            sql += f" where {where}"
    schema = pa.schema([(c, pa.string()) for c in columns])

    def unavailable(error: Exception) -> SourceUnavailableError:
        return SourceUnavailableError(
            f"loyalty database {parsed.render_as_string()}: reading table {table_name!r} failed: "
            f"{str(error).splitlines()[0] if str(error) else error.__class__.__name__}"
        )

    try:
        connection = _adbc_connect(parsed)
        if connection is None:
            engine = sa.create_engine(url)
            try:
                with engine.connect() as conn:
                    rows = conn.exec_driver_sql(sql).fetchall()
            finally:
                engine.dispose()
            table = pa.table(
                {
                    c: pa.array([row[i] for row in rows], type=pa.string())
                    for i, c in enumerate(columns)
                }
            )
            return table.cast(schema).to_reader()
        cursor = connection.cursor()
        try:
            cursor.execute(sql)
            reader = cursor.fetch_record_batch()
        except Exception:
            cursor.close()
            connection.close()
            raise
    except Exception as error:  # driver errors have no common base class
        raise unavailable(error) from error

    def batches():
        try:
            for batch in reader:
                yield batch.cast(schema)
        except Exception as error:
            raise unavailable(error) from error
        finally:
            cursor.close()
            connection.close()

    return pa.RecordBatchReader.from_batches(schema, batches())


# --- Export folders (surveys, calls) ------------------------------------------------------------

_EXPORT_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_BOM = b"\xef\xbb\xbf"


def export_folder_date(name: str) -> date | None:
    """The date an export folder is named for (``YYYY-MM-DD``), or None when it is not one
    (``latest``, ``2026-13-40``, ``20260601``)."""
    if not _EXPORT_DATE.fullmatch(name):
        return None
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


@dataclass
class ExportListing:
    """An interval's export files, and what else was found under the root and passed over."""

    files: list[str]
    ignored: list[dict]  # path, reason


def export_files(root: str, interval: Interval, suffix: str) -> ExportListing:
    """Files under ``<root>/<YYYY-MM-DD>/`` whose folder date falls in the interval, sorted.

    What is passed over is listed with the reason and logged as a warning, never skipped in
    silence: at the root, a folder not named as a date or a loose file; in the interval's
    folders, anything that is not a ``*<suffix>`` file. A missing root is an error, an empty
    one is not.
    """
    fs, path = fsspec.core.url_to_fs(root)
    if not fs.exists(path):
        raise SourceUnavailableError(f"export root {root} does not exist")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]

    def shown(entry: str) -> str:
        return entry if protocol in ("file", "local") else f"{protocol}://{entry}"

    ignored: list[dict] = []

    def ignore(entry: str, reason: str) -> None:
        ignored.append({"path": shown(entry), "reason": reason})
        log.warning("export root %s: ignoring %s: %s", root, shown(entry), reason)

    first = interval.start.date() if not interval.is_full_history else date.min
    last = interval.end.date()
    files = []
    for entry in sorted(fs.ls(path, detail=True), key=lambda e: e["name"]):
        name = PurePosixPath(entry["name"]).name
        if entry["type"] != "directory":
            ignore(entry["name"], "a file outside the dated export folders (<root>/YYYY-MM-DD/)")
            continue
        folder_date = export_folder_date(name)
        if folder_date is None:
            ignore(entry["name"], "a folder not named as an export date (YYYY-MM-DD)")
            continue
        # The interval is half-open: a folder dated on the end day belongs to the next run,
        # unless the end is not midnight (then that day is partly inside).
        if first <= folder_date < last or (
            folder_date == last and interval.end.time() != datetime.min.time()
        ):
            for item in sorted(fs.ls(entry["name"], detail=True), key=lambda e: e["name"]):
                if item["type"] == "directory":
                    ignore(item["name"], "a folder inside an export folder")
                elif not item["name"].endswith(suffix):
                    ignore(item["name"], f"not a {suffix} file")
                else:
                    files.append(item["name"])
    return ExportListing([shown(f) for f in files], ignored)


def _register_filesystem(con: duckdb.DuckDBPyConnection, root: str) -> None:
    fs, _ = fsspec.core.url_to_fs(root)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol not in ("file", "local"):
        con.register_filesystem(fs)


def _file_facts(files: list[str], empty_lines: set[str] | None = None) -> list[dict]:
    """Size, checksum and duplicate of each file; the paths of those holding an empty line are
    added to ``empty_lines`` when it is given (found in the same pass over the bytes)."""
    import hashlib

    facts = []
    for path in files:
        digest = hashlib.sha256()
        size = 0
        tail = b""
        with fsspec.open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
                if empty_lines is not None and path not in empty_lines:
                    window = tail + block
                    if b"\n\n" in window or b"\n\r\n" in window:
                        empty_lines.add(path)
                    tail = block[-2:]
        facts.append({"path": path, "bytes": size, "sha256": digest.hexdigest()})
    seen: dict[str, str] = {}
    for fact in facts:
        # The same export delivered twice: noted here, deduplicated in the warehouse.
        if fact["sha256"] in seen:
            fact["duplicate_of"] = seen[fact["sha256"]]
        else:
            seen[fact["sha256"]] = fact["path"]
    return facts


def _undecodable_reason(line: bytes, error: UnicodeDecodeError, number: int) -> str:
    column = len(line[: error.start].decode("utf-8", "replace")) + 1
    return f"invalid UTF-8: byte 0x{line[error.start]:02x} on line {number}, column {column}"


def _jsonl_lines_python(path: str) -> pa.Table:
    """The lines of a JSON Lines file that is not all UTF-8, as ``read_jsonl_exports`` splits
    them in DuckDB (on LF, carriage returns dropped, byte-order marks stripped), each line
    decoded alone: a line that does not decode keeps its bytes escaped (``\\xe9``) and the
    reason."""
    with fsspec.open(path, "rb") as handle:
        data = handle.read()
    while data.startswith(_BOM):
        data = data[len(_BOM) :]
    numbers, lines, reasons = [], [], []
    for number, line in enumerate(data.replace(b"\r", b"").split(b"\n"), start=1):
        try:
            text, reason = line.decode("utf-8"), None
        except UnicodeDecodeError as error:
            text = line.decode("utf-8", "backslashreplace")
            reason = _undecodable_reason(line, error, number)
        numbers.append(number)
        lines.append(text)
        reasons.append(reason)
    return pa.table(
        {
            "filename": pa.array([path] * len(lines), pa.string()),
            "line_number": pa.array(numbers, pa.int64()),
            "line": pa.array(lines, pa.string()),
            "line_reason": pa.array(reasons, pa.string()),
        }
    )


def _jsonl_checked_sql(numbered: str) -> str:
    """Lines (``filename, line_number, line, line_reason``) checked as JSON objects."""
    return f"""
        with checked as (
            select filename, line_number, line, line_reason,
                case when line_reason is null and json_valid(line) then line end as valid_json
            from {numbered}
            where trim(line) <> ''
        )
        -- Only lines that are JSON objects reach the JSON functions, which raise on bad input.
        select filename as _source_file, line_number::BIGINT as _source_row, line as _line,
            line_reason as _line_reason,
            case when json_type(valid_json) = 'OBJECT' then valid_json end as _object,
            _object is not null as _is_object
        from checked
        """


def read_jsonl_exports(
    con: duckdb.DuckDBPyConnection, root: str, table: Table, interval: Interval
) -> RawExtract:
    """Survey exports: one JSON object per line. Lines that are not JSON objects are kept for
    quarantine; the ``emotions`` object is flattened into ``emotion_<item>`` columns.

    Files are decoded in DuckDB; the rare file that is not all UTF-8 is split into lines in
    Python instead, so that only its undecodable lines are quarantined (with the reason)."""
    listing = export_files(root, interval, ".jsonl")
    files = listing.files
    relation = f"raw_{table.source}_{table.name}"
    _register_filesystem(con, root)
    names = [c.name for c in table.columns]
    direct = [n for n in names if not n.startswith("emotion_")]
    if not files:
        columns = ", ".join(f"NULL::VARCHAR as {_quote(n)}" for n in names)
        con.execute(
            f"create or replace temp table {relation} as select {columns}, NULL::VARCHAR as _extra_fields,"
            " NULL::VARCHAR as _source_file, NULL::BIGINT as _source_row, NULL::VARCHAR as _line,"
            " NULL::VARCHAR as _line_reason limit 0"
        )
        return RawExtract(relation, tuple(names), (), ignored=listing.ignored)
    file_list = "[" + ", ".join(_literal(f) for f in files) + "]"
    # try(decode()) is NULL for a file that is not all UTF-8: it yields no line here, and is
    # read again below, in Python, once it is known.
    numbered = f"""(
        select filename, unnest(lines) as line, generate_subscripts(lines, 1) as line_number,
            NULL::VARCHAR as line_reason
        from (
            select filename,
                string_split(replace(ltrim(try(decode(content)), chr(65279)), chr(13), ''),
                    chr(10)) as lines
            from read_blob({file_list})
        )
    )"""
    con.execute(f"create or replace temp table _lines as {_jsonl_checked_sql(numbered)}")
    found = {row[0] for row in con.execute("select distinct _source_file from _lines").fetchall()}
    missing = [f for f in files if f not in found]  # empty, blank, or not UTF-8
    if missing:
        undecodable = con.execute(
            f"select filename from read_blob({'[' + ', '.join(_literal(f) for f in missing) + ']'}) "
            "where try(decode(content)) is null"
        ).fetchall()
        for (path,) in undecodable:
            log.warning(
                "survey export %s is not all UTF-8: its undecodable lines are quarantined", path
            )
            con.register("_python_lines", _jsonl_lines_python(path))
            try:
                con.execute(f"insert into _lines {_jsonl_checked_sql('_python_lines')}")
            finally:
                con.unregister("_python_lines")
    drop_known = "{" + ", ".join(f'"{n}": null' for n in direct + ["emotions"]) + "}"
    fields = [
        f"json_extract_string(_object, {_literal('$.' + n)}) as {_quote(n)}" for n in direct
    ] + [
        f"json_extract_string(_object, {_literal('$.emotions.' + e)}) as {_quote('emotion_' + e)}"
        for e in EMOTIONS
    ]
    con.execute(
        f"""
        create or replace temp table {relation} as
        select {", ".join(fields)},
            case when _is_object then
                nullif(json_merge_patch(_object, {_literal(drop_known)})::VARCHAR, '{{}}')
            end as _extra_fields,
            _source_file, _source_row,
            case when not _is_object then _line end as _line,
            case when not _is_object then _line_reason end as _line_reason
        from _lines
        """
    )
    # A required field absent from every line of a file means the file breaks the contract (a
    # renamed field). In a file of a few lines it is as likely a few bad rows: a small day's
    # export can be one line. Those rows are quarantined, and the bad-row threshold still
    # fails a landing where they are many.
    for name in table.required:
        row = con.execute(
            f"""
            select _source_file from _lines
            group by _source_file
            having count(*) filter (where _is_object) >= {CONTRACT_MIN_LINES}
                and not bool_or(json_exists(_object, {_literal("$." + name)}))
            limit 1
            """
        ).fetchone()
        if row:
            raise ContractError(f"survey export {row[0]}: required field {name!r} is missing")
    con.execute("drop table _lines")
    return RawExtract(
        relation, tuple(names), (), source_files=_file_facts(files), ignored=listing.ignored
    )


# The delimiters a call export may use, as a message names them.
CSV_DELIMITERS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
_HEADER_LIMIT = 1 << 20


@dataclass(frozen=True)
class _CsvHeader:
    columns: tuple[str, ...]
    delimiter: str


def _csv_header(path: str, required: tuple[str, ...]) -> _CsvHeader | None:
    """The columns and delimiter of a call export's header line; None for an empty file.

    The delimiter is the one of ``CSV_DELIMITERS`` that splits the header into all the
    ``required`` columns, else into the most columns. Raises ``ContractError`` naming the file
    (and the delimiter) when a required column is missing, a column is repeated, or the file
    has no header line before its rows.
    """
    with fsspec.open(path, "rb") as handle:
        first = handle.readline(_HEADER_LIMIT).removeprefix(_BOM)
        line = first.split(b"\n")[0].split(b"\r")[0]
        if not line.strip():
            if any(block.strip() for block in iter(lambda: handle.read(1 << 20), b"")):
                raise ContractError(f"call export {path}: the first line is empty, not a header")
            return None  # an empty file: nothing delivered that day
    try:
        text, undecodable = line.decode("utf-8"), None
    except UnicodeDecodeError as error:
        # A stray byte in an unknown column's name need not stop the file; in a required
        # column's name, it does (below).
        text, undecodable = line.decode("utf-8", "replace"), error
    splits = []
    for delimiter in CSV_DELIMITERS:
        columns = [c.strip() for c in next(csv.reader([text], delimiter=delimiter))]
        splits.append((all(r in columns for r in required), len(columns), delimiter, columns))
    # max() keeps the first of equals: the comma, then the order above.
    _, count, delimiter, columns = max(splits, key=lambda split: split[:2])
    missing = [name for name in required if name not in columns]
    if missing:
        if undecodable is not None:
            raise ContractError(
                f"call export {path} is not UTF-8: byte 0x{line[undecodable.start]:02x} at "
                f"position {undecodable.start + 1} of the header line, which lacks required "
                f"column(s) {missing}"
            )
        if count == 1:
            others = Counter(c for c in text if not c.isalnum() and c not in "_- '\"")
            found = (
                f"; it seems delimited by {others.most_common(1)[0][0]!r}, which is not one"
                if others
                else ""
            )
            raise ContractError(
                f"call export {path}: required column(s) {missing} missing from the header: "
                f"none of the delimiters {', '.join(CSV_DELIMITERS.values())} splits it"
                f"{found} ({text[:120]!r})"
            )
        raise ContractError(
            f"call export {path}: required column(s) {missing} missing from the header, read "
            f"as {count} columns delimited by {CSV_DELIMITERS[delimiter]}: {columns[:20]}"
        )
    if undecodable is not None:
        log.warning("call export %s: the header is not all UTF-8: %r", path, text)
    # A nameless column gets DuckDB's kind of name; a repeated one is ambiguous.
    columns = [c or f"column{position}" for position, c in enumerate(columns, start=1)]
    folded = [c.lower() for c in columns]  # DuckDB's column names ignore case
    repeated = sorted({c for c in columns if folded.count(c.lower()) > 1})
    if repeated:
        raise ContractError(f"call export {path}: column(s) {repeated} repeated in the header")
    return _CsvHeader(tuple(columns), delimiter)


def _blank_records(path: str, delimiter: str) -> list[tuple[str, int]]:
    """The data rows of a CSV file that are empty lines, numbered as DuckDB numbers rows (it
    skips them without a trace). Only for the rare file with an empty line."""
    with fsspec.open(path, "r", encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            next(reader, None)
            return [(path, number) for number, record in enumerate(reader, start=1) if not record]
        except csv.Error:
            return []  # then rows after an empty line are numbered a little early


def _normalized_copy(path: str, folder: str) -> str:
    """A copy of the file with every line break a LF, for a file that mixes CRLF, LF and CR
    (which DuckDB's reader refuses as a whole)."""
    with fsspec.open(path, "rb") as handle:
        data = handle.read()
    copy = os.path.join(folder, f"{len(os.listdir(folder))}.csv")
    with open(copy, "wb") as out:
        out.write(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
    return copy


def _read_csv_sql(files: list[str], header: _CsvHeader, number: int) -> str:
    columns = "{" + ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in header.columns) + "}"
    return f"""
        create or replace temp table _csv_{number} as
        select *, row_number() over (partition by _source_file order by _rowid) as _ordinal
        from (
            select *, row_number() over () as _rowid
            from read_csv([{", ".join(_literal(f) for f in files)}], header = true,
                auto_detect = false, columns = {columns}, delim = {_literal(header.delimiter)},
                quote = '"', escape = '"', filename = '_source_file', store_rejects = true,
                rejects_table = '_rejects_{number}', rejects_scan = '_scans_{number}',
                max_line_size = 10000000)
        )
        """


def read_csv_exports(
    con: duckdb.DuckDBPyConnection, root: str, table: Table, interval: Interval
) -> RawExtract:
    """Call-center exports: UTF-8 CSV with a header. Each file's header is checked against the
    contract first and gives its delimiter; rows DuckDB cannot split (cut off, not UTF-8) are
    kept, with the line and the reason, for quarantine."""
    listing = export_files(root, interval, ".csv")
    files = listing.files
    relation = f"raw_{table.source}_{table.name}"
    names = [c.name for c in table.columns]
    _register_filesystem(con, root)
    extras: list[str] = []
    by_header: dict[_CsvHeader, list[str]] = {}
    for path in files:
        header = _csv_header(path, table.required)
        if header is None:
            continue
        extras.extend(h for h in header.columns if h not in names and h not in extras)
        by_header.setdefault(header, []).append(path)
    with_empty_lines: set[str] = set()
    facts = _file_facts(files, with_empty_lines)

    # DuckDB keeps rejected rows only without union_by_name, so files are read one group of
    # identical headers at a time and stacked by name. A group DuckDB refuses as a whole (a
    # stray carriage return does that) is read file by file, a refused file from a copy with
    # its line breaks made uniform; ``reads`` maps each read's number to the file it stands
    # for when that is a copy.
    copies = tempfile.mkdtemp(prefix="cx-csv-")
    parts = []
    reads: list[tuple[int, _CsvHeader, dict[str, str]]] = []
    try:
        for header, group in sorted(by_header.items(), key=lambda item: item[1][0]):
            try:
                con.execute(_read_csv_sql(group, header, len(reads)))
                reads.append((len(reads), header, {}))
                continue
            except duckdb.InvalidInputException:
                pass
            for path in group:
                try:
                    con.execute(_read_csv_sql([path], header, len(reads)))
                    reads.append((len(reads), header, {}))
                    continue
                except duckdb.InvalidInputException:
                    pass
                copy = _normalized_copy(path, copies)
                try:
                    con.execute(_read_csv_sql([copy], header, len(reads)))
                except duckdb.InvalidInputException as error:
                    raise ContractError(
                        f"call export {path} cannot be read as CSV: {str(error).splitlines()[0]}"
                    ) from None
                log.warning("call export %s mixes line breaks; read with each one a LF", path)
                reads.append((len(reads), header, {copy: path}))
        for number, header, originals in reads:
            parts.extend(
                _csv_parts(con, number, header, names, extras, originals, with_empty_lines)
            )
    finally:
        shutil.rmtree(copies, ignore_errors=True)
    if not parts:
        columns = ", ".join(f"NULL::VARCHAR as {_quote(n)}" for n in names)
        parts.append(
            f"select {columns}, NULL::VARCHAR as _extra_fields, NULL::VARCHAR as _source_file, "
            "NULL::BIGINT as _source_row, NULL::VARCHAR as _line, NULL::VARCHAR as _line_reason "
            "limit 0"
        )
    con.execute(f"create or replace temp table {relation} as " + " union all by name ".join(parts))
    for number, _, _ in reads:
        con.execute(f"drop table _csv_{number}")
        con.execute(f"drop table if exists _skipped_{number}")
    return RawExtract(
        relation, tuple(names), tuple(extras), source_files=facts, ignored=listing.ignored
    )


def _csv_parts(
    con: duckdb.DuckDBPyConnection,
    number: int,
    header: _CsvHeader,
    names: list[str],
    extras: list[str],
    originals: dict[str, str],
    with_empty_lines: set[str],
) -> list[str]:
    """SQL for the rows of read ``number`` and for its rejected lines, each numbered by its
    data row in the file (``_source_row``, the header excluded)."""

    def source_file(column: str) -> str:
        if not originals:
            return column
        (copy, original), *_ = originals.items()
        return f"replace({column}, {_literal(copy)}, {_literal(original)})"

    # DuckDB records one error per missing column of a cut-off row: one line, one reject.
    rejects = f"""
        select scans.file_path as _source_file, errors.line::BIGINT - 1 as _source_row,
            coalesce(min(errors.csv_line), '') || ' ['
                || string_agg(distinct errors.error_type, ', ' order by errors.error_type)
                || ']' as _line,
            case when bool_or(errors.error_type = 'INVALID ENCODING')
                then 'invalid UTF-8: on line ' || errors.line end as _line_reason
        from _rejects_{number} as errors
        join _scans_{number} as scans using (scan_id, file_id)
        group by scans.file_path, errors.line"""
    # The rows DuckDB returns are numbered in order, then moved past the rows it did not
    # return before them: its rejects, and the empty lines it skips (found in Python, in the
    # rare file that has one).
    con.execute(
        f"create or replace temp table _skipped_{number} as "
        f"select _source_file, _source_row from ({rejects})"
    )
    files = [
        f[0] for f in con.execute(f"select distinct _source_file from _csv_{number}").fetchall()
    ]
    for path in files:
        if originals.get(path, path) in with_empty_lines:
            blank = _blank_records(path, header.delimiter)
            if blank:
                con.executemany(f"insert into _skipped_{number} values (?, ?)", blank)
    skipped = con.execute(f"select count(*) from _skipped_{number}").fetchone()[0]
    if skipped:
        numbered = f"""(
            select rows.*, rows._ordinal + coalesce(before._rank, 0) as _source_row
            from _csv_{number} as rows
            asof left join (
                -- The k-th row returned comes after the j-th row skipped when fewer than k
                -- rows were returned before that one (its row number less j).
                select _source_file, _source_row - _rank as _returned_before,
                    max(_rank) as _rank
                from (
                    select distinct _source_file, _source_row, dense_rank() over (
                        partition by _source_file order by _source_row) as _rank
                    from _skipped_{number}
                )
                group by all
            ) as before
                on rows._source_file = before._source_file
                and rows._ordinal > before._returned_before
        )"""
    else:
        numbered = f"(select *, _ordinal as _source_row from _csv_{number})"
    select = [
        f"nullif(trim({_quote(n)}), '') as {_quote(n)}"
        if n in header.columns
        else f"NULL::VARCHAR as {_quote(n)}"
        for n in names
    ]
    own_extras = [e for e in extras if e in header.columns]
    return [
        f"select {', '.join(select)}, {_extra_fields_sql(own_extras)} as _extra_fields, "
        f"{source_file('_source_file')} as _source_file, _source_row, NULL::VARCHAR as _line, "
        f"NULL::VARCHAR as _line_reason from {numbered}",
        f"select * replace ({source_file('_source_file')} as _source_file) from ({rejects})",
    ]
