"""Erasure in the lake, by the lake's owner: the raw, quarantined and staged partitions, their
manifests, and the enrichments of the members' records.

``privacy.erase`` orchestrates an erasure and calls, in order:

- ``member_contacts(lake_dir, member_ids)``: the emails and phones the lake's members files
  link to the members (identity resolution);
- ``record_keys(lake_dir, matcher)``: the keys of every record of theirs, before anything is
  changed, so the warehouse can drop the records it holds without a member id;
- ``erase(settings, matcher, keys)``: the lake rewritten without them, last.

The manifests are this package's structure (``ingestion.land.MANIFEST``, its count keys): they
are kept true here, next to the code that writes them. Nothing here prints or logs a value.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path

import duckdb

from config.settings import Settings
from ingestion.lake import write_json_atomic
from ingestion.land import BAD, GOOD, MANIFEST, _reason_summary
from privacy import suppression
from privacy.identity import EMAIL, PHONE
from privacy.suppression import Matcher, filter_parquet, move_to_suppressed, relation_columns

# The lake's record keys (``privacy`` hands them to the warehouse's erasure).
RECORD_KEYS = ("transaction_id", "response_id", "call_id")
# The record keys of the lake's enrichments (warehouse/enrich.py, warehouse/identity_hashes.py).
ENRICHED_KEYS = ("response_id", "call_id")
# Where rows can sit: landed, quarantined, and staged by a landing not yet published.
AREAS = ("raw", "quarantine", "_staging")


def lake_files(lake_dir: Path, *parts: str) -> list[Path]:
    """The Parquet files under ``lake_dir/<parts>`` (none when the folder is missing)."""
    folder = lake_dir.joinpath(*parts)
    return sorted(folder.rglob("*.parquet")) if folder.is_dir() else []


def member_contacts(lake_dir: Path, member_ids: Iterable[str]) -> dict[str, set[str]]:
    """Every email and phone (by role, as written) the lake's members files, landed or
    quarantined, hold for ``member_ids`` (normalised ids)."""
    ids = sorted(member_ids)
    found: dict[str, set[str]] = {EMAIL: set(), PHONE: set()}
    files = lake_files(lake_dir, "raw", "loyalty", "members") + lake_files(
        lake_dir, "quarantine", "loyalty", "members"
    )
    with duckdb.connect() as con:
        for path in files:
            relation = f"read_parquet('{path}')"
            columns = relation_columns(con, relation)
            if "member_id" not in columns:
                continue
            for column in columns:
                role = suppression.column_role(column)
                if role not in found:
                    continue
                rows = con.execute(
                    f'select distinct cast("{column}" as varchar) from {relation} where '
                    "list_contains(?::varchar[], lower(trim(cast(member_id as varchar)))) "
                    f'and "{column}" is not null',
                    [ids],
                ).fetchall()
                found[role].update(value for (value,) in rows)
    return found


def record_keys(lake_dir: Path, matcher: Matcher) -> dict[str, set[str]]:
    """The keys of every lake record (raw, quarantined, staged) that belongs to an erased member:
    by member id, by email or phone, or by contact details written in free text."""
    keys: dict[str, set[str]] = {name: set() for name in RECORD_KEYS}
    with duckdb.connect() as con:
        matcher.register(con)
        for path in [p for area in AREAS for p in lake_files(lake_dir, area)]:
            relation = f"read_parquet('{path}')"
            columns = relation_columns(con, relation)
            predicate = matcher.predicate(columns)
            if predicate is None:
                continue
            for name in RECORD_KEYS:
                if name in columns:
                    rows = con.execute(
                        f"select distinct trim(cast({name} as varchar)) from {relation} "
                        f"where ({predicate}) and {name} is not null"
                    ).fetchall()
                    keys[name].update(value for (value,) in rows)
    return keys


def remaining(lake_dir: Path, matcher: Matcher) -> dict[str, int]:
    """Rows of erased members left in the lake, per area (only areas with rows)."""
    found: dict[str, int] = {}
    with duckdb.connect() as con:
        matcher.register(con)
        for area in AREAS:
            for path in lake_files(lake_dir, area):
                relation = f"read_parquet('{path}')"
                predicate = matcher.predicate(relation_columns(con, relation))
                if predicate:
                    rows = con.execute(f"select count(*) from {relation} where {predicate}")
                    count = rows.fetchone()[0]
                    if count:
                        found[f"lake:{area}"] = found.get(f"lake:{area}", 0) + count
    return found


def erase(settings: Settings, matcher: Matcher, keys: dict[str, set[str]]) -> dict[str, int]:
    """Rewrite every raw, quarantined and staged partition holding an erased member's rows, and
    their manifests; drop the enrichment rows of the members and of their records (``keys``).
    Returns the rows removed per place. Run under ``privacy.suppression.lake_lock``."""
    removed: dict[str, int] = {}

    def add(place: str, rows: int) -> None:
        if rows:
            removed[place] = removed.get(place, 0) + rows

    lake_dir = settings.lake_dir
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        for area, count_key in (("raw", "rows_landed"), ("quarantine", "rows_quarantined")):
            for path in lake_files(lake_dir, area):
                by_file: dict[str, int] = {}
                rows = filter_parquet(
                    con, matcher, path, remove_when_empty=area == "quarantine", by_file=by_file
                )
                if rows:
                    relative = path.relative_to(lake_dir / area)
                    add(f"lake:{area}/{relative.parent}", rows)
                    _update_manifest(
                        con, lake_dir, relative, count_key, rows, matcher.listing.version, by_file
                    )
        staging = lake_dir / "_staging"
        for manifest_path in sorted(staging.rglob(MANIFEST)) if staging.is_dir() else []:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            updated = suppression.refilter_staged(
                settings,
                manifest_path.parent,
                manifest,
                {GOOD: "rows_landed", BAD: "rows_quarantined"},
            )
            if updated is not manifest:
                write_json_atomic(manifest_path, updated)
            add(
                "lake:_staging",
                updated.get("rows_suppressed", 0) - manifest.get("rows_suppressed", 0),
            )
        # Enrichments (comment sentiment, the keyed hashes of identifiers): the members' rows by
        # member id, and their records' rows by response and call key.
        con.execute("create or replace temp table cx_erased_records (kind varchar, key varchar)")
        for kind in ENRICHED_KEYS:
            if keys.get(kind):
                con.execute(
                    "insert into cx_erased_records select ?, unnest(?::varchar[])",
                    [kind, sorted(keys[kind])],
                )
        for path in lake_files(lake_dir, "enriched"):
            place = f"lake:enriched/{path.parent.name}"
            add(place, filter_parquet(con, matcher, path))
            add(place, _drop_keys(con, path))
    return removed


def _drop_keys(con, path: Path) -> int:
    relation = f"read_parquet('{path}')"
    tests = [
        f"trim(cast({column} as varchar)) in "
        f"(select key from cx_erased_records where kind = '{column}')"
        for column in relation_columns(con, relation)
        if column in ENRICHED_KEYS
    ]
    if not tests:
        return 0
    condition = " or ".join(tests)
    removed = con.execute(f"select count(*) from {relation} where {condition}").fetchone()[0]
    if removed:
        staged = path.with_name(f".tmp-erase-{path.name}")
        con.execute(
            f"copy (select * from {relation} where not ({condition})) to '{staged}' "
            "(format parquet, compression zstd)"
        )
        # The rewrite keeps the file's mode and group, as privacy.suppression.filter_parquet
        # does (a personal-data file's 0640 is for CX_PERSONAL_FILE_GROUP).
        before = os.stat(path)
        if os.stat(staged).st_gid != before.st_gid:
            os.chown(staged, -1, before.st_gid)
        os.chmod(staged, stat.S_IMODE(before.st_mode))
        os.replace(staged, path)
    return removed


def _update_manifest(
    con,
    lake_dir: Path,
    relative: Path,
    count_key: str,
    removed: int,
    version: str,
    by_file: dict[str, int],
) -> None:
    """Keep a partition's manifest true to its files after rows left them: its totals, and
    the counts of each source file the rows came from (``by_file``)."""
    manifest_path = lake_dir / "manifests" / relative.with_suffix(".json")
    if not manifest_path.exists():
        return
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest[count_key] = max(0, manifest.get(count_key, 0) - removed)
    manifest["rows_suppressed"] = manifest.get("rows_suppressed", 0) + removed
    move_to_suppressed(manifest, count_key, by_file)
    manifest["suppression_version"] = version
    total = manifest.get("rows_landed", 0) + manifest.get("rows_quarantined", 0)
    manifest["bad_share"] = round(manifest.get("rows_quarantined", 0) / total, 6) if total else 0.0
    if count_key == "rows_quarantined":
        quarantine = lake_dir / "quarantine" / relative
        exists = quarantine.exists()
        manifest["quarantine_reasons"] = (
            _reason_summary(con, f"read_parquet('{quarantine}')") if exists else []
        )
    write_json_atomic(manifest_path, manifest)
