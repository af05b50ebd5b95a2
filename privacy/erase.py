"""The right to erasure: remove members from everywhere the platform holds them.

``erase_members(settings, member_ids)`` does, under the lake's privacy lock:

1. **Resolve** each member's emails and phone numbers (every version in the lake, the
   warehouse's contacts, PostgreSQL's raw members), held in memory only.
2. **Record** them as keyed hashes in the suppression list, first, so that whatever happens
   next, no later ingestion run brings the member back (``privacy.suppression``).
3. **Collect** the keys of every lake record that belongs to an erased member (by member id,
   by email or phone, or by contact details written in free text), before anything is changed,
   so the warehouse can drop records it holds without a member id (unlinked survey responses
   and calls).
4. **Warehouse** (DuckDB): in one transaction, delete the members' rows from every table
   (staging to marts, the SCD2 snapshot, ml_scores, segment_transitions, program tables),
   then rewrite the file so deleted rows leave no bytes behind, and republish the analysts'
   copy. **PostgreSQL** (when it is the target): likewise in one transaction over schemas
   ``raw``, the marts' schema, ``restricted`` and ``snapshots``, then ``VACUUM``.
5. **Exports**: rewrite each program export that holds a member, with new checksums in its
   manifest, published like a cycle (new content-named build, symlink swapped).
6. **Lake** last: rewrite each affected raw, quarantine and staged partition atomically, the
   enrichments (sentiment of the members' responses, keyed hashes of their rows' emails and
   phones), and the partitions' manifests.

The warehouse goes before the lake, so a run that fails halfway can simply be repeated: the
lake still holds every record key the warehouse needs, and the suppression list already holds
the member. The source systems are not touched (we cannot delete there); the suppression list
is what keeps the member out. Nothing here prints or logs an id, an email or a phone number.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import Settings
from privacy import identity, suppression
from privacy.identity import EMAIL, MEMBER, PHONE
from privacy.suppression import (
    Matcher,
    filter_parquet,
    lake_lock,
    move_to_suppressed,
    relation_columns,
)

log = logging.getLogger(__name__)

# Record keys of the lake's tables, and the warehouse columns that hold them.
LAKE_KEYS = ("transaction_id", "response_id", "call_id")
WAREHOUSE_KEYS = {
    "transaction_id": ("transaction_id",),
    "response_id": ("response_id",),
    "call_id": ("call_id",),
    "record_id": ("response_id", "call_id"),  # int_identity_links
}
# The record keys of the lake's enrichments (warehouse/enrich.py, warehouse/identity_hashes.py).
ENRICHED_KEYS = ("response_id", "call_id")
# The PostgreSQL schemas the project writes (the marts' schema is CX_PG_SCHEMA).
POSTGRES_SCHEMAS = ("raw", "restricted", "snapshots")


@dataclass
class ErasureReport:
    """What an erasure removed: rows per place, never which rows."""

    members: int
    removed: dict[str, int] = field(default_factory=dict)
    published: str | None = None

    def add(self, place: str, rows: int) -> None:
        if rows:
            self.removed[place] = self.removed.get(place, 0) + rows

    @property
    def total(self) -> int:
        return sum(self.removed.values())

    def as_dict(self) -> dict:
        return {
            "members": self.members,
            "rows_removed": self.total,
            "removed": dict(sorted(self.removed.items())),
            "published": self.published,
        }


def normalize_ids(member_ids: Iterable[str]) -> list[str]:
    ids = sorted({identity.normalize_member_id(m) for m in member_ids} - {None})
    if not ids:
        raise ValueError("no member id given: pass at least one --member-id")
    return ids


def erase_members(
    settings: Settings, member_ids: Iterable[str], postgres: bool | None = None
) -> ErasureReport:
    """Erase ``member_ids`` everywhere; see the module docstring. Safe to repeat."""
    import duckdb

    ids = normalize_ids(member_ids)
    if postgres is None:
        postgres = settings.warehouse_target == "postgres"
    key = identity.hash_key(settings)
    report = ErasureReport(members=len(ids))
    with lake_lock(settings.lake_dir):
        identities = resolve_identities(settings, ids, postgres)
        listing = suppression.record(settings, identities, members=len(ids))
        matcher = Matcher(key, listing)
        with duckdb.connect() as con:
            con.execute("set TimeZone = 'UTC'")
            keys = collect_record_keys(con, matcher, settings.lake_dir)
            erase_from_duckdb(settings, matcher, keys, report)
            if postgres:
                erase_from_postgres(settings, matcher, keys, report)
            erase_from_exports(
                settings.exports_dir, matcher, report, group=settings.personal_file_group
            )
            erase_from_lake(con, settings, matcher, keys, report)
    log.info(
        "erased %d member(s): %d rows in %d places", len(ids), report.total, len(report.removed)
    )
    return report


# --- 1. Who the members are ---------------------------------------------------------------------


def _lake_files(lake_dir: Path, *parts: str) -> list[Path]:
    folder = lake_dir.joinpath(*parts)
    return sorted(folder.rglob("*.parquet")) if folder.is_dir() else []


def resolve_identities(settings: Settings, ids: list[str], postgres: bool) -> dict[str, set[str]]:
    """The members' ids, and every email and phone number any store links to them."""
    import duckdb

    found: dict[str, set[str]] = {MEMBER: set(ids), EMAIL: set(), PHONE: set()}
    files = _lake_files(settings.lake_dir, "raw", "loyalty", "members") + _lake_files(
        settings.lake_dir, "quarantine", "loyalty", "members"
    )
    with duckdb.connect() as con:
        for path in files:
            columns = set(relation_columns(con, f"read_parquet('{path}')"))
            _collect_contacts(con, f"read_parquet('{path}')", columns, ids, found)
    live = _open_duckdb_readonly(settings)
    if live is not None:
        with live:
            for (schema, name), columns in _duckdb_tables(live).items():
                if schema == "restricted":
                    _collect_contacts(live, f'"{schema}"."{name}"', set(columns), ids, found)
    if postgres:
        _postgres_contacts(settings, ids, found)
    return found


def _collect_contacts(
    con, relation: str, columns: set[str], ids: list[str], found: dict[str, set[str]]
) -> None:
    if "member_id" not in columns:
        return
    for column in sorted(columns):
        role = suppression.column_role(column)
        if role not in (EMAIL, PHONE):
            continue
        rows = con.execute(
            f'select distinct cast("{column}" as varchar) from {relation} '
            "where list_contains(?::varchar[], lower(trim(cast(member_id as varchar)))) "
            f'and "{column}" is not null',
            [ids],
        ).fetchall()
        found[role].update(value for (value,) in rows)


def _open_duckdb_readonly(settings: Settings):
    """The live warehouse read-only, or the published copy while a writer holds the live one."""
    import duckdb

    from warehouse.publish import published_path

    for path in (settings.duckdb_path, published_path(settings.duckdb_path)):
        if path.exists():
            try:
                return duckdb.connect(str(path), read_only=True)
            except duckdb.IOException:
                continue
    return None


def _duckdb_tables(con) -> dict[tuple[str, str], list[str]]:
    rows = con.execute(
        """
        select columns.table_schema, columns.table_name, columns.column_name
        from information_schema.columns as columns
        inner join information_schema.tables as tables
            on columns.table_catalog = tables.table_catalog
            and columns.table_schema = tables.table_schema
            and columns.table_name = tables.table_name
        where tables.table_type = 'BASE TABLE' and tables.table_catalog = current_database()
        order by columns.table_schema, columns.table_name, columns.ordinal_position
        """
    ).fetchall()
    tables: dict[tuple[str, str], list[str]] = {}
    for schema, name, column in rows:
        tables.setdefault((schema, name), []).append(column)
    return tables


# --- 3. Which records are theirs ----------------------------------------------------------------


def collect_record_keys(con, matcher: Matcher, lake_dir: Path) -> dict[str, set[str]]:
    """The keys of every lake record (raw, quarantined, staged) that belongs to an erased member."""
    keys: dict[str, set[str]] = {name: set() for name in LAKE_KEYS}
    files = (
        _lake_files(lake_dir, "raw")
        + _lake_files(lake_dir, "quarantine")
        + _lake_files(lake_dir, "_staging")
    )
    matcher.register(con)
    for path in files:
        relation = f"read_parquet('{path}')"
        columns = relation_columns(con, relation)
        predicate = matcher.predicate(columns)
        if predicate is None:
            continue
        for name in LAKE_KEYS:
            if name in columns:
                rows = con.execute(
                    f"select distinct trim(cast({name} as varchar)) from {relation} "
                    f"where ({predicate}) and {name} is not null"
                ).fetchall()
                keys[name].update(value for (value,) in rows)
    return keys


def _key_conditions(columns: Iterable[str]) -> list[tuple[str, str]]:
    """(column, key kind) pairs for the record-key columns of a warehouse table."""
    out = []
    for column in columns:
        for kind in WAREHOUSE_KEYS.get(column.lower(), ()):
            out.append((column, kind))
    return out


# --- 4. The warehouse ---------------------------------------------------------------------------


def erase_from_duckdb(
    settings: Settings, matcher: Matcher, keys: dict[str, set[str]], report: ErasureReport
) -> None:
    """Delete the members' rows from every table of the live DuckDB file in one transaction,
    compact the file, and republish the analysts' copy."""
    import duckdb

    from warehouse.dbt_runner import release_duckdb
    from warehouse.publish import forget_log_position, publish_duckdb, published_path

    path = settings.duckdb_path
    if not path.exists():
        return
    release_duckdb()  # dbt-duckdb may hold the file open in this process (dag.test)
    with duckdb.connect(str(path)) as con:
        matcher.register(con)
        con.execute("create temp table cx_erased_keys (kind varchar, key varchar)")
        for kind, values in keys.items():
            if values:
                con.execute(
                    "insert into cx_erased_keys select ?, unnest(?::varchar[])",
                    [kind, sorted(values)],
                )
        con.execute("begin transaction")
        try:
            # These deletes are not in the models' publish log: until the copy is republished
            # whole, the next publish must compare every row, or it could keep erased rows.
            forget_log_position(con)
            for (schema, name), columns in _duckdb_tables(con).items():
                if schema == "temp" or name == "cx_erased_keys":
                    continue
                tests = [matcher.predicate(columns)] + [
                    f'trim(cast("{column}" as varchar)) in '
                    f"(select key from cx_erased_keys where kind = '{kind}')"
                    for column, kind in _key_conditions(columns)
                ]
                condition = " or ".join(t for t in tests if t)
                if not condition:
                    continue
                deleted = con.execute(
                    f'delete from "{schema}"."{name}" where {condition}'
                ).fetchone()[0]
                report.add(f"duckdb:{schema}.{name}", deleted)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("checkpoint")
    if any(place.startswith("duckdb:") for place in report.removed):
        compact_duckdb(path)
    if path.exists() and (published_path(path).exists() or report.removed):
        report.published = str(publish_duckdb(path))


def compact_duckdb(path: Path) -> None:
    """Rewrite the database file with only its live rows: DuckDB keeps a deleted row's bytes in
    its row group until the group is rewritten, so a copy is the way to leave none behind."""
    import duckdb

    work = Path(tempfile.mkdtemp(dir=path.parent, prefix=".tmp-compact-"))
    fresh = work / path.name
    try:
        with duckdb.connect() as con:
            con.execute(f"attach '{path}' as cx_old (read_only)")
            con.execute(f"attach '{fresh}' as cx_new")
            con.execute("copy from database cx_old to cx_new")
            con.execute("detach cx_new")
            con.execute("detach cx_old")
        os.chmod(fresh, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(fresh, path)
        Path(f"{path}.wal").unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _postgres_connect(settings: Settings):
    import psycopg2

    return psycopg2.connect(
        host=settings.pg_host,
        port=settings.pg_port,
        user=settings.pg_user,
        password=settings.pg_password,
        dbname=settings.pg_dbname,
    )


def _postgres_tables(cursor, schemas: Iterable[str]) -> dict[tuple[str, str], list[str]]:
    cursor.execute(
        """
        select columns.table_schema, columns.table_name, columns.column_name
        from information_schema.columns as columns
        inner join information_schema.tables as tables
            using (table_catalog, table_schema, table_name)
        where tables.table_type = 'BASE TABLE' and columns.table_schema = any(%s)
        order by 1, 2, columns.ordinal_position
        """,
        [list(schemas)],
    )
    tables: dict[tuple[str, str], list[str]] = {}
    for schema, name, column in cursor.fetchall():
        tables.setdefault((schema, name), []).append(column)
    return tables


def _postgres_contacts(settings: Settings, ids: list[str], found: dict[str, set[str]]) -> None:
    with _postgres_connect(settings) as connection, connection.cursor() as cursor:
        tables = _postgres_tables(cursor, ("raw", "restricted"))
        for (schema, name), columns in tables.items():
            if "member_id" not in columns or name not in ("members", "member_contacts"):
                continue
            for column in columns:
                role = suppression.column_role(column)
                if role not in (EMAIL, PHONE):
                    continue
                cursor.execute(
                    f'select distinct "{column}"::text from "{schema}"."{name}" '
                    f'where lower(trim(member_id)) = any(%s) and "{column}" is not null',
                    [ids],
                )
                found[role].update(value for (value,) in cursor.fetchall())
        connection.rollback()


def _postgres_matches(cursor, schema: str, name: str, column: str, role: str, matcher) -> list:
    """The distinct values of a column that belong to an erased member, matched in Python
    (PostgreSQL cannot compute our keyed hash without an extension)."""
    if role == suppression.TEXT:
        pattern = f"({identity.EMAIL_PATTERN})|({identity.PHONE_PATTERN})"
        cursor.execute(
            f'select distinct "{column}"::text from "{schema}"."{name}" '
            f'where "{column}"::text ~ %s',
            [pattern],
        )
    else:
        cursor.execute(
            f'select distinct "{column}"::text from "{schema}"."{name}" '
            f'where "{column}" is not null'
        )
    return [value for (value,) in cursor.fetchall() if matcher.matches(role, value)]


def erase_from_postgres(
    settings: Settings, matcher: Matcher, keys: dict[str, set[str]], report: ErasureReport
) -> None:
    """Delete the members' rows from every table the project writes on PostgreSQL, in one
    transaction, then VACUUM the tables that changed."""
    schemas = (*POSTGRES_SCHEMAS, settings.pg_schema)
    touched = []
    connection = _postgres_connect(settings)
    try:
        with connection, connection.cursor() as cursor:
            for (schema, name), columns in _postgres_tables(cursor, schemas).items():
                conditions, values = [], []
                for column in columns:
                    role = suppression.column_role(column)
                    if role is not None:
                        matched = _postgres_matches(cursor, schema, name, column, role, matcher)
                        if matched:
                            conditions.append(f'"{column}"::text = any(%s)')
                            values.append(matched)
                for column, kind in _key_conditions(columns):
                    if keys.get(kind):
                        conditions.append(f'trim("{column}"::text) = any(%s)')
                        values.append(sorted(keys[kind]))
                if not conditions:
                    continue
                cursor.execute(
                    f'delete from "{schema}"."{name}" where ' + " or ".join(conditions), values
                )
                if cursor.rowcount:
                    report.add(f"postgres:{schema}.{name}", cursor.rowcount)
                    touched.append(f'"{schema}"."{name}"')
        # VACUUM cannot run in a transaction; it frees the deleted rows' space for reuse.
        connection.autocommit = True
        with connection.cursor() as cursor:
            for table in touched:
                cursor.execute(f"vacuum {table}")
    finally:
        connection.close()


# --- 5. Exports ---------------------------------------------------------------------------------


def erase_from_exports(
    exports_dir: Path, matcher: Matcher, report: ErasureReport, group: str | None = None
) -> None:
    """Rewrite every published export cycle that holds an erased member; drop stale builds.

    The rewritten files are protected as ``programs.exports`` protects them (``group``)."""
    from programs.exports import BUILDS

    builds = exports_dir / BUILDS
    if not builds.is_dir():
        return
    referenced = {}
    for link in sorted(exports_dir.iterdir()):
        if (
            link.is_symlink()
            and link.name != "latest"
            and link.resolve().parent == builds.resolve()
        ):
            referenced[link.resolve().name] = link
    for build in sorted(p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".")):
        holds = _export_rows_to_drop(build, matcher)
        if not any(holds.values()):
            continue
        link = referenced.get(build.name)
        if link is None:  # no cycle points at it any more: it only holds old data
            _remove_build(build)
            report.add(f"exports:{build.name} (stale build removed)", sum(holds.values()))
            continue
        new_build = _rewrite_export_build(build, holds, matcher, group)
        _swap_symlink(link, f"{BUILDS}/{new_build.name}")
        if new_build != build:
            _remove_build(build)
        for program, rows in holds.items():
            report.add(f"exports:{link.name}/{program}", rows)


def _export_frame(path: Path):
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas()


def _export_mask(frame, matcher: Matcher):
    import pandas as pd

    mask = pd.Series(False, index=frame.index)
    for column in frame.columns:
        role = suppression.column_role(column)
        if role is not None:
            mask |= frame[column].map(lambda v, r=role: matcher.matches(r, v) if v else False)
    return mask


def _export_rows_to_drop(build: Path, matcher: Matcher) -> dict[str, int]:
    counts = {}
    for path in sorted(build.glob("*.parquet")):
        counts[path.stem] = int(_export_mask(_export_frame(path), matcher).sum())
    # A CSV without its Parquet twin is read as text.
    for path in sorted(build.glob("*.csv")):
        if path.stem not in counts:
            import pandas as pd

            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            counts[path.stem] = int(_export_mask(frame, matcher).sum())
    return counts


def _rewrite_program_files(build: Path, work: Path, program: str, matcher: Matcher) -> dict:
    """Rewrite one program's Parquet and CSV in ``work`` without the erased members' rows, as
    ``programs.exports`` writes them; return the new manifest entries by file name."""
    from programs.exports import sha256, write_csv, write_parquet

    frame = _export_frame(build / f"{program}.parquet")
    kept = frame[~_export_mask(frame, matcher)].reset_index(drop=True)
    kept = kept.astype(object).where(kept.notna(), None)
    entries = {}
    for name, writer in ((f"{program}.parquet", write_parquet), (f"{program}.csv", write_csv)):
        if (build / name).exists():
            (work / name).chmod(0o644)
            writer(kept, work / name)
            entries[name] = {
                "rows": len(kept),
                "bytes": (work / name).stat().st_size,
                "sha256": sha256(work / name),
            }
    return entries


def _rewritten_manifest(path: Path, entries: dict, holds: dict[str, int]) -> str:
    document = json.loads(path.read_text(encoding="utf-8"))
    for program in document.get("programs", []):
        for entry in program.get("files", []):
            entry.update(entries.get(entry.get("path"), {}))
        erased = holds.get(program.get("name"), 0)
        if erased:
            program["rows_erased"] = program.get("rows_erased", 0) + erased
    return json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"


def _rewrite_export_build(
    build: Path, holds: dict[str, int], matcher: Matcher, group: str | None = None
) -> Path:
    """A new build folder with the programs' files rewritten and the manifest's checksums, rows
    and sizes updated; named by its manifest's content as ``programs.exports`` names builds."""
    import hashlib

    work = Path(tempfile.mkdtemp(dir=build.parent, prefix=".tmp-erase-"))
    try:
        for path in sorted(build.iterdir()):
            if path.is_file():
                shutil.copy2(path, work / path.name)
        entries = {}
        for program, rows in holds.items():
            if rows:
                entries.update(_rewrite_program_files(build, work, program, matcher))
        manifest_path = work / "manifest.json"
        text = _rewritten_manifest(manifest_path, entries, holds)
        manifest_path.chmod(0o644)
        manifest_path.write_text(text, encoding="utf-8")
        cycle = build.name.split(".")[0]
        target = build.parent / f"{cycle}.{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        if not target.exists():
            from programs.exports import protect_build

            protect_build(work, group)
            os.replace(work, target)
        return target
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _swap_symlink(link: Path, target: str) -> None:
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(target)
    os.replace(temporary, link)


def _remove_build(path: Path) -> None:
    # Writable again so it can be removed, and for that moment no more readable than before.
    path.chmod(0o700)
    for child in path.iterdir():
        child.chmod(0o600)
    shutil.rmtree(path, ignore_errors=True)


# --- 6. The lake --------------------------------------------------------------------------------


def erase_from_lake(
    con, settings: Settings, matcher: Matcher, keys: dict[str, set[str]], report: ErasureReport
) -> None:
    """Rewrite every raw, quarantined and staged partition holding an erased member's rows,
    and their manifests; drop the enrichment rows of the members and their records."""
    from ingestion.land import BAD, GOOD, MANIFEST

    lake_dir = settings.lake_dir
    for area, count_key in (("raw", "rows_landed"), ("quarantine", "rows_quarantined")):
        for path in _lake_files(lake_dir, area):
            by_file: dict[str, int] = {}
            removed = filter_parquet(
                con, matcher, path, remove_when_empty=area == "quarantine", by_file=by_file
            )
            if removed:
                relative = path.relative_to(lake_dir / area)
                report.add(f"lake:{area}/{relative.parent}", removed)
                _update_manifest(
                    con, lake_dir, relative, count_key, removed, matcher.listing.version, by_file
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
        removed = updated.get("rows_suppressed", 0) - manifest.get("rows_suppressed", 0)
        if updated is not manifest:
            _write_json(manifest_path, updated)
        report.add("lake:_staging", removed)
    # Enrichments (comment sentiment, the keyed hashes of identifiers): the members' rows by
    # member id, and their records' rows by response and call key.
    con.execute("create or replace temp table cx_erased_records (kind varchar, key varchar)")
    for kind in ENRICHED_KEYS:
        if keys.get(kind):
            con.execute(
                "insert into cx_erased_records select ?, unnest(?::varchar[])",
                [kind, sorted(keys[kind])],
            )
    for path in _lake_files(lake_dir, "enriched"):
        place = f"lake:enriched/{path.parent.name}"
        report.add(place, filter_parquet(con, matcher, path))
        report.add(place, _drop_keys(con, path))


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
        os.chmod(staged, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(staged, path)
    return removed


def _write_json(path: Path, document: dict) -> None:
    from ingestion.lake import write_json_atomic

    write_json_atomic(path, document)


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
        manifest["quarantine_reasons"] = _reason_summary(con, quarantine) if exists else []
    _write_json(manifest_path, manifest)


def _reason_summary(con, path: Path) -> list[dict]:
    """As ``ingestion.land`` summarises a landing's quarantine (no values, only reasons)."""
    rows = con.execute(
        f"""
        select regexp_replace(_reject_reason, ':.*$', '') as reason, count(*) as rows,
            min(_source_file) as example_file, min(_source_row) as example_row
        from read_parquet('{path}') group by 1 order by rows desc, reason limit 10
        """
    ).fetchall()
    return [{"reason": r[0], "rows": r[1], "example_file": r[2], "example_row": r[3]} for r in rows]
