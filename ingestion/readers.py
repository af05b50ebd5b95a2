"""Readers: bring one source table's rows for an interval into DuckDB as text columns.

Every reader yields the same shape, a DuckDB table of VARCHAR columns named after the contract
columns the source carries, plus ``_extra_fields`` (unknown columns as a JSON object),
``_source_file`` and ``_source_row``. Casting and row checks happen once, in ``parse.py``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import PurePosixPath

import duckdb
import fsspec
import pyarrow as pa
import sqlalchemy as sa

from ingestion.contract import EMOTIONS, Table
from ingestion.errors import ContractError, SourceUnavailableError
from ingestion.lake import Interval


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
    with offsets are not cut off, and ``parse.py`` applies the exact window after casting.
    """
    try:
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            present_columns = [c["name"] for c in sa.inspect(connection).get_columns(table.name)]
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
        _fetch_text(url, table.name, known + extra, watermark, low, high, interval.is_full_history)
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


def _in_window(watermark: tuple[str, ...], low: str, high: str, scan: bool = False) -> str:
    """SQL true when the first non-null watermark column lies in [low, high).

    A day's window is written column by column (``a in window or (a is null and b in
    window)``), so the database can search each column's index: on the sample's 23 million
    transactions, a day's read took 0.5 s against 3.9 s for a scan. ``scan`` (the full history)
    writes ``coalesce(a, b)``, which no index serves: fetching every row through an index is
    random access, and the 1M members took 20 s that way against 6 s scanned.
    """
    if scan:
        # The trailing null makes one column a valid coalesce too.
        mark = f"coalesce({', '.join(_quote(c) for c in watermark)}, null)"
        return f"{mark} >= {low} and {mark} < {high}"
    terms = []
    for position, column in enumerate(watermark):
        earlier_null = [f"{_quote(c)} is null and " for c in watermark[:position]]
        terms.append(
            f"({''.join(earlier_null)}{_quote(column)} >= {low} and {_quote(column)} < {high})"
        )
    return " or ".join(terms)


def _fetch_text(
    url: str,
    table_name: str,
    columns: list[str],
    watermark: tuple[str, ...],
    low,
    high,
    full_history: bool = False,
) -> pa.RecordBatchReader:
    """Columns cast to text as a stream of Arrow batches, filtered a day wider than [low, high)
    on the first non-null ``watermark`` column (no filter when there is none), by a scan for
    the ``full_history`` and through the columns' indexes otherwise (``_in_window``).

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
    if watermark:
        wide_low = (low - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
        wide_high = (high + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
        if backend == "sqlite":
            bounds = (_literal(wide_low), _literal(wide_high))
            sql += f" where {_in_window(watermark, *bounds, scan=full_history)}"
        else:
            bounds = (
                f"cast({_literal(bound + '+00')} as timestamptz)" for bound in (wide_low, wide_high)
            )
            sql += f" where {_in_window(watermark, *bounds, scan=full_history)}"
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


def export_files(root: str, interval: Interval, suffix: str) -> list[str]:
    """Files under ``<root>/<YYYY-MM-DD>/`` whose folder date falls in the interval, sorted.

    Folders not named as a date are ignored; a missing root is an error, an empty one is not.
    """
    fs, path = fsspec.core.url_to_fs(root)
    if not fs.exists(path):
        raise SourceUnavailableError(f"export root {root} does not exist")
    first = interval.start.date() if not interval.is_full_history else date.min
    last = interval.end.date()
    files = []
    for entry in sorted(fs.ls(path, detail=False)):
        name = PurePosixPath(entry).name
        try:
            folder_date = date.fromisoformat(name)
        except ValueError:
            continue
        # The interval is half-open: a folder dated on the end day belongs to the next run,
        # unless the end is not midnight (then that day is partly inside).
        if first <= folder_date < last or (
            folder_date == last and interval.end.time() != datetime.min.time()
        ):
            files.extend(sorted(f for f in fs.ls(entry, detail=False) if f.endswith(suffix)))
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        return files
    return [f"{protocol}://{f}" for f in files]


def _register_filesystem(con: duckdb.DuckDBPyConnection, root: str) -> None:
    fs, _ = fsspec.core.url_to_fs(root)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol not in ("file", "local"):
        con.register_filesystem(fs)


def _file_facts(files: list[str]) -> list[dict]:
    import hashlib

    facts = []
    for path in files:
        digest = hashlib.sha256()
        size = 0
        with fsspec.open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
        facts.append({"path": path, "bytes": size, "sha256": digest.hexdigest()})
    seen: dict[str, str] = {}
    for fact in facts:
        # The same export delivered twice: noted here, deduplicated in the warehouse.
        if fact["sha256"] in seen:
            fact["duplicate_of"] = seen[fact["sha256"]]
        else:
            seen[fact["sha256"]] = fact["path"]
    return facts


def read_jsonl_exports(
    con: duckdb.DuckDBPyConnection, root: str, table: Table, interval: Interval
) -> RawExtract:
    """Survey exports: one JSON object per line. Lines that are not JSON objects are kept for
    quarantine; the ``emotions`` object is flattened into ``emotion_<item>`` columns."""
    files = export_files(root, interval, ".jsonl")
    relation = f"raw_{table.source}_{table.name}"
    _register_filesystem(con, root)
    names = [c.name for c in table.columns]
    direct = [n for n in names if not n.startswith("emotion_")]
    if not files:
        columns = ", ".join(f"NULL::VARCHAR as {_quote(n)}" for n in names)
        con.execute(
            f"create or replace temp table {relation} as select {columns}, NULL::VARCHAR as _extra_fields,"
            " NULL::VARCHAR as _source_file, NULL::BIGINT as _source_row, NULL::VARCHAR as _line limit 0"
        )
        return RawExtract(relation, tuple(names), ())
    file_list = "[" + ", ".join(_literal(f) for f in files) + "]"
    con.execute(
        f"""
        create or replace temp table _lines as
        with texts as (
            select filename, string_split(replace(content, chr(13), ''), chr(10)) as lines
            from read_text({file_list})
        ),
        numbered as (
            select filename, unnest(lines) as line, generate_subscripts(lines, 1) as line_number
            from texts
        )
        , checked as (
            select filename, line_number, line,
                case when json_valid(line) then line end as valid_json
            from numbered
            where trim(line) <> ''
        )
        -- Only lines that are JSON objects reach the JSON functions, which raise on bad input.
        select filename as _source_file, line_number::BIGINT as _source_row, line as _line,
            case when json_type(valid_json) = 'OBJECT' then valid_json end as _object,
            _object is not null as _is_object
        from checked
        """
    )
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
            case when not _is_object then _line end as _line
        from _lines
        """
    )
    # A required field absent from every line of a file means the file breaks the contract.
    for name in table.required:
        row = con.execute(
            f"""
            select _source_file from _lines
            group by _source_file
            having bool_or(_is_object) and not bool_or(
                json_exists(_object, {_literal("$." + name)}))
            limit 1
            """
        ).fetchone()
        if row:
            raise ContractError(f"survey export {row[0]}: required field {name!r} is missing")
    con.execute("drop table _lines")
    return RawExtract(relation, tuple(names), (), source_files=_file_facts(files))


def _csv_header(path: str) -> list[str]:
    with fsspec.open(path, "r", encoding="utf-8", newline="") as handle:
        first = handle.readline()
    try:
        return next(csv.reader(io.StringIO(first)))
    except StopIteration:
        return []


def read_csv_exports(
    con: duckdb.DuckDBPyConnection, root: str, table: Table, interval: Interval
) -> RawExtract:
    """Call-center exports: UTF-8 CSV with a header. Each file's header is checked against the
    contract first; rows DuckDB cannot split are kept (with the line) for quarantine."""
    files = export_files(root, interval, ".csv")
    relation = f"raw_{table.source}_{table.name}"
    names = [c.name for c in table.columns]
    _register_filesystem(con, root)
    extras: list[str] = []
    by_header: dict[tuple[str, ...], list[str]] = {}
    for path in files:
        try:
            header = tuple(h.strip() for h in _csv_header(path))
        except UnicodeDecodeError as error:
            raise ContractError(f"call export {path} is not UTF-8: {error}") from None
        if not header:
            continue  # an empty file: nothing delivered that day
        missing = [name for name in table.required if name not in header]
        if missing:
            raise ContractError(
                f"call export {path}: required column(s) {missing} missing from the header"
            )
        extras.extend(h for h in header if h not in names and h not in extras)
        by_header.setdefault(header, []).append(path)

    # DuckDB keeps rejected rows only without union_by_name, so files are read one group of
    # identical headers at a time and stacked by name.
    parts = []
    for number, (header, group) in enumerate(sorted(by_header.items())):
        file_list = "[" + ", ".join(_literal(f) for f in group) + "]"
        con.execute(
            f"""
            create or replace temp table _csv_{number} as
            select *, row_number() over (partition by filename order by rowid) as _source_row
            from (
                select *, row_number() over () as rowid
                from read_csv({file_list}, header = true, all_varchar = true, filename = true,
                    store_rejects = true, rejects_table = '_rejects_{number}',
                    rejects_scan = '_scans_{number}', max_line_size = 10000000)
            )
            """
        )
        select = [
            f"nullif(trim({_quote(n)}), '') as {_quote(n)}"
            if n in header
            else f"NULL::VARCHAR as {_quote(n)}"
            for n in names
        ]
        own_extras = [e for e in extras if e in header]
        parts.append(
            f"select {', '.join(select)}, {_extra_fields_sql(own_extras)} as _extra_fields, "
            f"filename as _source_file, _source_row, NULL::VARCHAR as _line from _csv_{number}"
        )
        # DuckDB records one error per missing column of a cut-off row: one line, one reject.
        parts.append(
            f"""select scans.file_path as _source_file, errors.line::BIGINT - 1 as _source_row,
                coalesce(min(errors.csv_line), '') || ' ['
                    || string_agg(distinct errors.error_type, ', ' order by errors.error_type)
                    || ']' as _line
            from _rejects_{number} as errors
            join _scans_{number} as scans using (scan_id, file_id)
            group by scans.file_path, errors.line"""
        )
    if not parts:
        columns = ", ".join(f"NULL::VARCHAR as {_quote(n)}" for n in names)
        parts.append(
            f"select {columns}, NULL::VARCHAR as _extra_fields, NULL::VARCHAR as _source_file, "
            "NULL::BIGINT as _source_row, NULL::VARCHAR as _line limit 0"
        )
    con.execute(f"create or replace temp table {relation} as " + " union all by name ".join(parts))
    for number in range(len(by_header)):
        con.execute(f"drop table _csv_{number}")
    return RawExtract(relation, tuple(names), tuple(extras), source_files=_file_facts(files))
