"""Land one source table for one interval: extract, validate, publish.

The three steps are separate functions so that the DAG shows them as separate tasks and a human
or a test can call them the same way. ``extract`` writes to a staging folder only; ``validate``
runs the Great Expectations suite on it; ``publish`` moves the files into the lake atomically.
Until ``publish`` succeeds, the lake keeps its last good state.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import duckdb

from config import Settings
from ingestion import contract
from ingestion.contract import Table
from ingestion.errors import (
    IngestionError,
    SourceUnavailableError,
    TooManyBadRowsError,
    ValidationFailedError,
)
from ingestion.lake import (
    BEGINNING,
    Interval,
    Lake,
    publish_file,
    remove_file,
    stage_json,
    write_json_atomic,
)
from ingestion.parse import FUTURE_WATERMARK, account_files, split_rows
from ingestion.readers import (
    _literal,
    _quote,
    read_csv_exports,
    read_database_table,
    read_jsonl_exports,
)
from privacy.personal_files import protect
from privacy.suppression import drop_suppressed, lake_lock, refilter_staged

log = logging.getLogger(__name__)

GOOD, BAD, MANIFEST = "rows.parquet", "quarantine.parquet", "manifest.json"
# The setting that points at each source, named when the source cannot be reached.
SOURCE_SETTINGS = {
    "loyalty": "CX_LOYALTY_URL",
    "surveys": "CX_SURVEY_ROOT",
    "calls": "CX_CALLS_ROOT",
}


@dataclass(frozen=True)
class Landing:
    """A staged or published landing of one table for one interval."""

    table: Table
    interval: Interval
    staging: Path

    @property
    def manifest(self) -> dict:
        return json.loads((self.staging / MANIFEST).read_text())


def resolve_interval(
    lake: Lake, table: Table, start: datetime, end: datetime, full_history: bool
) -> Interval:
    """The interval a run extracts: exactly its own, or everything before ``end`` for a
    ``full_history`` run and a table's first load.

    A first load is a run with nothing landed before its interval nor covering it; a rerun of
    it (a landing of the whole history that ends where the run ends) replaces it. A manual run
    or a backfill for a day inside the first load reads that day alone: re-landing the whole
    history would add an overlapping partition for nothing.
    """
    if full_history:
        return Interval(BEGINNING, end)
    exact = Interval(start, end)
    if lake.has_history_before(table, start):
        return exact
    landed = lake.partitions(table)
    if any(p.is_full_history and p.end == end for p in landed):
        return Interval(BEGINNING, end)
    if any(p.start <= start and end <= p.end for p in landed):
        return exact
    return Interval(BEGINNING, end)


# DuckDB's share of an ingestion task; past it, the extract spills to the staging folder, so a
# full history at a million members lands in bounded memory.
EXTRACT_MEMORY_LIMIT = "2GB"


def _connect(spill_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"set memory_limit = '{EXTRACT_MEMORY_LIMIT}'")
    con.execute(f"set temp_directory = '{spill_dir}'")
    con.execute("set preserve_insertion_order = true")
    return con


def _copy_parquet(con: duckdb.DuckDBPyConnection, relation: str, path: Path) -> int:
    """Write ``relation`` to ``path``; return the rows written (DuckDB's COPY counts them)."""
    return con.execute(
        f"copy (select * from {relation}) to '{path}' (format parquet, compression zstd)"
    ).fetchone()[0]


def _reason_summary(con: duckdb.DuckDBPyConnection, bad: str) -> list[dict]:
    rows = con.execute(
        f"""
        select regexp_replace(_reject_reason, ':.*$', '') as reason, count(*) as rows,
            min(_source_file) as example_file, min(_source_row) as example_row
        from {bad} group by 1 order by rows desc, reason limit 10
        """
    ).fetchall()
    return [{"reason": r[0], "rows": r[1], "example_file": r[2], "example_row": r[3]} for r in rows]


def _account_database_table(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    read: str,
    landed: int,
    quarantined: int,
    suppressed: int,
) -> dict[str, int]:
    """The rows a database read brought (``read``, before erased members' were dropped), and
    those that belong to other intervals (``parse.split_rows``'s ``outside_<table>``). Raises
    ``IngestionError`` unless every row read was landed, quarantined, outside or suppressed."""
    rows_read = con.execute(f"select count(*) from {read}").fetchone()[0]
    outside = con.execute(f"select count(*) from outside_{table.name}").fetchone()[0]
    if landed + quarantined + outside + suppressed != rows_read:
        raise IngestionError(
            f"{table.qualified_name}: {rows_read} rows read, but {landed} landed, {quarantined} "
            f"quarantined, {outside} outside the interval and {suppressed} suppressed"
        )
    return {"rows_read": rows_read, "rows_outside_interval": outside}


def _conflicting_duplicates(
    con: duckdb.DuckDBPyConnection, lake: Lake, table: Table, interval: Interval, rows: Path
) -> int:
    """The keys of the staged ``rows`` landed with other values too: twice in this landing, or
    already in another partition of the lake. The warehouse keeps one version of each (see
    dbt_project/README.md, Deduplication); two rows differing in ``table.versioned_by`` are an
    update, and two differing in ``table.delivery_stamp`` alone one record delivered again.

    A full load is compared within itself only: it reads the whole source again, and taking
    its rows over older landings is what it is for."""
    key = _quote(table.key)
    group = ", ".join(_quote(c) for c in (table.key, table.versioned_by) if c)
    columns = ", ".join(_quote(c.name) for c in table.columns if c.name != table.delivery_stamp)
    landing = f"(select {columns} from read_parquet({_literal(str(rows))}))"
    earlier = "(select * from landing where false)"
    others = [p for p in lake.partitions(table) if p != interval]
    if others and not interval.is_full_history:
        files = ", ".join(_literal(str(lake.raw_path(table, p))) for p in others)
        # The keys alone first: most days deliver no key the lake holds, and then no other
        # column of the lake is read.
        found = con.execute(
            f"""
            select distinct filename
            from read_parquet([{files}], filename = true, union_by_name = true)
            where {key} in (select {key} from {landing})
            """
        ).fetchall()
        if found:
            matched = ", ".join(_literal(row[0]) for row in found)
            earlier = (
                f"(select {columns} from read_parquet([{matched}], union_by_name = true) "
                f"where {key} in (select {key} from landing))"
            )
    return con.execute(
        f"""
        with
        landing as {landing},
        earlier as {earlier},
        repeated as (
            select {key} from (
                select {key} from landing union all select {key} from earlier
            ) group by {key} having count(*) > 1
        ),
        versions as (
            select distinct * from (select * from landing union all select * from earlier)
            where {key} in (select {key} from repeated)
        )
        select count(distinct {key}) from (
            select {group} from versions group by {group} having count(*) > 1
        )
        """
    ).fetchone()[0]


def extract(
    settings: Settings, table: Table, start: datetime, end: datetime, full_history: bool = False
) -> Landing:
    """Read the table's rows for the interval, split good from bad, and stage both.

    Raises ``ContractError`` for a missing required column or an unreadable file, and
    ``TooManyBadRowsError`` when the bad share passes ``settings.bad_row_threshold``.
    """
    lake = Lake(settings.lake_dir)
    interval = resolve_interval(lake, table, start, end, full_history)
    staging = lake.staging_dir() / table.source / table.name / interval.name
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # The staged rows, the quarantine and DuckDB's spill hold emails, phones and comments: the
    # owner (and CX_PERSONAL_FILE_GROUP) alone may read them, here and once published, as the
    # exports (privacy/personal_files.py). Publishing (a rename) and an erasure's rewrite
    # (privacy.suppression.filter_parquet) keep a file's mode and group.
    group = settings.personal_file_group
    protect(staging, group)

    con = _connect(staging / ".spill")
    try:
        watermark: tuple[str, ...] = ()
        window = None
        try:
            if table.source == "loyalty":
                raw, watermark, low, high = read_database_table(
                    con, settings.loyalty_url, table, interval, settings.late_lookback_days
                )
                window = (low, high)
            elif table.source == "surveys":
                raw = read_jsonl_exports(con, settings.survey_root, table, interval)
            else:
                raw = read_csv_exports(con, settings.calls_root, table, interval)
        except SourceUnavailableError as error:
            raise SourceUnavailableError(
                f"{table.qualified_name}: the {table.source} source "
                f"({SOURCE_SETTINGS[table.source]}) is unavailable: {error}. Nothing was "
                f"published; rerun {interval.name} once it is back."
            ) from error
        # Erased members' rows go nowhere: neither the lake nor the quarantine.
        read = raw.relation
        kept, suppressed, suppression_version = drop_suppressed(con, settings, raw.relation)
        raw = replace(raw, relation=kept)

        good, bad = split_rows(con, table, raw, interval.start, interval.end, watermark, window)
        quarantined = con.execute(f"select count(*) from {bad}").fetchone()[0]
        reasons = _reason_summary(con, bad)
        # Counted as written: good rows may be a view, which a count would compute again.
        landed = _copy_parquet(con, good, staging / GOOD)
        protect(staging / GOOD, group)
        if quarantined:
            _copy_parquet(con, bad, staging / BAD)
            protect(staging / BAD, group)
        # Every row of every export file is accounted for, per file, or the landing stops.
        accounting = {}
        if table.source != "loyalty":
            accounting = account_files(con, table, read, kept, raw.source_files)
        if table.source == "loyalty":
            accounting = _account_database_table(con, table, read, landed, quarantined, suppressed)
        # Rows dated after a full load's end are quarantined for what they say of that run, not
        # for a bad value: their own day lands them, and they are not held against the source.
        future = con.execute(
            f"select count(*) from {bad} where _reject_reason like '{FUTURE_WATERMARK}:%' "
            "and _reject_reason not like '%; %'"
        ).fetchone()[0]
        conflicts = _conflicting_duplicates(con, lake, table, interval, staging / GOOD)
    finally:
        con.close()

    total = landed + quarantined - future
    share = (quarantined - future) / total if total else 0.0
    manifest = {
        "source": table.source,
        "table": table.name,
        "interval_start": interval.start.isoformat(),
        "interval_end": interval.end.isoformat(),
        "full_history": interval.is_full_history,
        "watermark": list(watermark),
        "window": [b.isoformat() for b in window] if window else None,
        "source_files": raw.source_files,
        "ignored": raw.ignored,
        "columns_missing": [c.name for c in table.columns if c.name not in raw.columns],
        "extra_columns": list(raw.extra_columns),
        "rows_landed": landed,
        "rows_quarantined": quarantined,
        "rows_suppressed": suppressed,
        "suppression_version": suppression_version,
        "bad_share": round(share, 6),
        "quarantine_reasons": reasons,
    }
    for key in ("rows_read", "rows_outside_interval"):
        if key in accounting:
            manifest[key] = accounting[key]
    manifest["rows_quarantined_future"] = future
    manifest["conflicting_duplicates"] = conflicts
    write_json_atomic(staging / MANIFEST, manifest)
    log.info(
        "%s: staged %d rows, quarantined %d (%.2f%%) for %s",
        table.qualified_name,
        landed,
        quarantined,
        100 * share,
        interval.name,
    )
    if share > settings.bad_row_threshold:
        worst = next((r for r in reasons if r["reason"] != FUTURE_WATERMARK), reasons[0])
        raise TooManyBadRowsError(
            f"{table.qualified_name}: {quarantined - future} of {total} rows ({share:.1%}) are "
            f"bad, above "
            f"CX_BAD_ROW_THRESHOLD={settings.bad_row_threshold}; most common: '{worst['reason']}' "
            f"({worst['rows']} rows, e.g. {worst['example_file']} row {worst['example_row']}). "
            f"Bad rows are staged in {staging / BAD}; nothing was published."
        )
    return Landing(table, interval, staging)


def validate(landing: Landing) -> dict:
    """Run the boundary suite on the staged rows; raise ``ValidationFailedError`` if it fails."""
    from ingestion.quality import validate_parquet

    manifest = landing.manifest
    # Rows are expected from a first load, and from an export file that is not empty; a database
    # table may well have no row changed in a day (its entries carry no byte count).
    delivered = any(f.get("bytes") for f in manifest["source_files"])
    expect_rows = landing.interval.is_full_history or delivered
    if manifest.get("rows_suppressed") and not manifest["rows_landed"]:
        expect_rows = False  # every delivered row was an erased member's
    summary = validate_parquet(landing.staging / GOOD, landing.table, expect_rows)
    manifest["validation"] = summary.as_dict()
    write_json_atomic(landing.staging / MANIFEST, manifest)
    if not summary.success:
        details = "; ".join(
            f"{f['expectation']} on {f['column'] or 'table'} ({f['unexpected_count'] or f['observed_value']})"
            for f in summary.failed
        )
        raise ValidationFailedError(
            f"{landing.table.qualified_name} {landing.interval.name}: data-quality suite failed: {details}"
        )
    return summary.as_dict()


def publish(settings: Settings, landing: Landing) -> dict:
    """Move the staged files into the lake; rerunning an interval replaces its files."""
    lake = Lake(settings.lake_dir)
    manifest = landing.manifest
    if "validation" not in manifest or not manifest["validation"]["success"]:
        raise ValidationFailedError(
            f"{landing.table.qualified_name} {landing.interval.name}: not validated; refusing to publish"
        )
    table, interval = landing.table, landing.interval
    bad = landing.staging / BAD
    with lake_lock(lake.root):
        # Members erased since extract: their rows leave the staged files before publishing.
        manifest = refilter_staged(
            settings,
            landing.staging,
            manifest,
            {GOOD: "rows_landed", BAD: "rows_quarantined"},
        )
        # The manifest is written (and synced) before anything moves, so a full disk fails
        # here with the previous partition untouched; renames need no new space.
        staged_manifest = stage_json(lake.manifest_path(table, interval), manifest)
        try:
            if bad.exists():
                publish_file(bad, lake.quarantine_path(table, interval))
            else:
                remove_file(lake.quarantine_path(table, interval))
            publish_file(landing.staging / GOOD, lake.raw_path(table, interval))
            # The manifest moves in last: its presence means the partition is complete.
            publish_file(staged_manifest, lake.manifest_path(table, interval))
        finally:
            staged_manifest.unlink(missing_ok=True)
    shutil.rmtree(landing.staging, ignore_errors=True)
    return manifest


def land(
    settings: Settings, table: Table, start: datetime, end: datetime, full_history: bool = False
) -> dict:
    """All three steps in one call, for the CLI and tests."""
    landing = extract(settings, table, start, end, full_history)
    validate(landing)
    return publish(settings, landing)


def landing_from_path(staging: str) -> Landing:
    """Rebuild a ``Landing`` from the staging path passed between Airflow tasks."""
    path = Path(staging)
    manifest = json.loads((path / MANIFEST).read_text())
    table = contract.table(manifest["source"], manifest["table"])
    interval = Interval(
        datetime.fromisoformat(manifest["interval_start"]),
        datetime.fromisoformat(manifest["interval_end"]),
    )
    return Landing(table, interval, path)
