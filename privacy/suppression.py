"""The suppression list: keyed hashes of erased members, which ingestion drops on every run.

We cannot delete a member from the loyalty database or the survey and call platforms, so the
next pipeline run would bring an erased member back. Erasure therefore records the member's id,
emails and phone numbers as keyed hashes (``privacy.identity.keyed_hash``) in
``CX_SUPPRESSION_LIST`` (default ``$CX_DATA_DIR/privacy/suppression.json``), and ingestion drops
every row that carries one of them, in a field or written in free text, before anything is
staged (``drop_suppressed``), and again just before publishing if the list changed meanwhile
(``refilter_staged``).

Hashes rather than the ids themselves: the list outlives the data and would otherwise be a list
of exactly the people who asked to be forgotten; a hash reveals nothing without ``CX_HASH_KEY``
and is enough to recognise the member's rows. The list records the key's fingerprint so that a
changed key fails loudly instead of silently letting erased members back in.

The same ``Matcher`` decides, for ingestion and for erasure, whether a row belongs to an erased
member, so an erased partition and a rerun of its interval hold the same rows.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from config.settings import Settings
from privacy import identity, personal_files
from privacy.identity import EMAIL, KINDS, MEMBER, PHONE

TEXT = "text"
# Free-text columns (raw, quarantined and warehouse names) searched for written contacts.
TEXT_COLUMNS = frozenset(
    {"comment", "notes", "comment_text", "notes_text", "_extra_fields", "_line"}
)


class SuppressionKeyError(RuntimeError):
    """The suppression list was written with another CX_HASH_KEY."""


def column_role(name: str) -> str | None:
    """How a column identifies a person: a member id, an email, a phone, free text, or not."""
    lowered = name.lower()
    if lowered == "member_id":
        return MEMBER
    if lowered.endswith("_hash"):
        # A keyed hash (warehouse/identity_hashes.py) is no identifier; its rows carry the
        # member id or the record key erasure finds them by.
        return None
    if "email" in lowered:
        return EMAIL
    if "phone" in lowered:
        return PHONE
    if lowered in TEXT_COLUMNS:
        return TEXT
    return None


@dataclass(frozen=True)
class SuppressionList:
    path: Path
    key_check: str | None = None
    hashes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    erasures: tuple[dict, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not any(self.hashes.get(kind) for kind in KINDS)

    @property
    def version(self) -> str:
        """Changes whenever an entry is added; recorded in each landing's manifest."""
        digest = hashlib.sha256()
        for kind in KINDS:
            for value in sorted(self.hashes.get(kind, ())):
                digest.update(f"{kind}:{value}\n".encode())
        return digest.hexdigest()[:16]


def load(settings: Settings) -> SuppressionList:
    path = settings.suppression_list
    if not path.exists():
        return SuppressionList(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    return SuppressionList(
        path=path,
        key_check=document.get("key_check"),
        hashes={kind: frozenset(document.get("hashes", {}).get(kind, ())) for kind in KINDS},
        erasures=tuple(document.get("erasures", ())),
    )


def _check_key(listing: SuppressionList, key: bytes) -> None:
    if listing.key_check and listing.key_check != identity.key_fingerprint(key):
        raise SuppressionKeyError(
            f"the suppression list {listing.path} was written with another CX_HASH_KEY: with "
            "this key, erased members would come back. Restore the key the list was written "
            "with (its fingerprint is in the file's key_check)."
        )


def record(
    settings: Settings, identities: Mapping[str, Iterable[str]], members: int
) -> SuppressionList:
    """Add the keyed hashes of ``identities`` (kind -> raw values) to the list, atomically."""
    key = identity.hash_key(settings)
    with _file_lock(settings.suppression_list):
        current = load(settings)
        _check_key(current, key)
        hashes = {kind: set(current.hashes.get(kind, ())) for kind in KINDS}
        for kind, values in identities.items():
            for value in values:
                digest = identity.keyed_hash(key, kind, value)
                if digest:
                    hashes[kind].add(digest)
        erasures = [
            *current.erasures,
            # No id here: only when and how many, as evidence that requests were carried out.
            {"recorded_at": datetime.now(UTC).isoformat(timespec="seconds"), "members": members},
        ]
        document = {
            "format": 1,
            "key_check": identity.key_fingerprint(key),
            "hashes": {kind: sorted(hashes[kind]) for kind in KINDS},
            "erasures": erasures,
        }
        _write_json_atomic(settings.suppression_list, document, settings.personal_file_group)
    return load(settings)


def _write_json_atomic(path: Path, document: dict, group: str | None = None) -> None:
    """Readable by its owner (and ``group``) only: the hashes say nothing without the key, but
    the list still records that people asked to be forgotten, and when."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=".tmp-", suffix=".json", delete=False, encoding="utf-8"
    ) as handle:
        json.dump(document, handle, indent=1, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        personal_files.protect(handle.name, group)
        os.replace(handle.name, path)
    finally:
        Path(handle.name).unlink(missing_ok=True)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def lake_lock(lake_dir: Path) -> Iterator[None]:
    """Held by erasure while it rewrites the lake and by ingestion while it publishes, so a
    landing staged before an erasure cannot be published after it unfiltered."""
    with _file_lock(lake_dir / "privacy"):
        yield


class Matcher:
    """Whether a value belongs to an erased member; registers itself as DuckDB functions."""

    FUNCTIONS = {
        MEMBER: "cx_erased_member",
        EMAIL: "cx_erased_email",
        PHONE: "cx_erased_phone",
        TEXT: "cx_erased_text",
    }

    def __init__(self, key: bytes, listing: SuppressionList):
        _check_key(listing, key)
        self.key = key
        self.listing = listing
        self._cache: dict[tuple[str, str], bool] = {}

    @classmethod
    def for_settings(cls, settings: Settings) -> Matcher | None:
        """The matcher for the current list, or None when nobody was erased."""
        listing = load(settings)
        if listing.is_empty:
            return None
        return cls(identity.hash_key(settings), listing)

    def matches(self, kind: str, value: str | None) -> bool:
        if value is None:
            return False
        cached = self._cache.get((kind, value))
        if cached is None:
            if kind == TEXT:
                cached = any(self.matches(k, v) for k, v in identity.contacts_in_text(value))
            else:
                cached = identity.keyed_hash(self.key, kind, value) in self.listing.hashes.get(
                    kind, ()
                )
            if len(self._cache) < 1_000_000:
                self._cache[(kind, value)] = cached
        return cached

    def register(self, con) -> None:
        """Make ``cx_erased_<kind>(varchar) -> boolean`` available in a DuckDB connection."""
        import duckdb
        import pyarrow as pa

        def vectorised_for(kind: str):
            def vectorised(values):
                return pa.array(
                    [self.matches(kind, value) for value in values.to_pylist()], type=pa.bool_()
                )

            return vectorised

        for kind, name in self.FUNCTIONS.items():
            try:
                con.remove_function(name)
            except (duckdb.InvalidInputException, duckdb.CatalogException):
                pass
            con.create_function(
                name,
                vectorised_for(kind),
                [duckdb.sqltype("VARCHAR")],
                duckdb.sqltype("BOOLEAN"),
                type="arrow",
                null_handling="special",
                side_effects=False,
            )

    def predicate(self, columns: Iterable[str]) -> str | None:
        """SQL true for a row that belongs to an erased member, over the columns that identify
        people; None when no column does."""
        tests = []
        for column in columns:
            role = column_role(column)
            if role is None:
                continue
            quoted = '"' + column.replace('"', '""') + '"'
            tests.append(f"coalesce({self.FUNCTIONS[role]}(cast({quoted} as varchar)), false)")
        return " or ".join(tests) if tests else None


def relation_columns(con, relation: str) -> list[str]:
    return [
        row[0]
        for row in con.execute(
            f"select column_name from (describe select * from {relation})"
        ).fetchall()
    ]


def drop_suppressed(con, settings: Settings, relation: str) -> tuple[str, int, str | None]:
    """Drop the rows of erased members from a DuckDB relation of extracted rows.

    Returns the relation to use from now on, how many rows were dropped, and the suppression
    list's version (None when nobody was erased). Runs before rows are split into good and bad,
    so an erased member's rows reach neither the lake nor the quarantine.
    """
    matcher = Matcher.for_settings(settings)
    if matcher is None:
        return relation, 0, None
    predicate = matcher.predicate(relation_columns(con, relation))
    if predicate is None:
        return relation, 0, matcher.listing.version
    matcher.register(con)
    kept = f"{relation}_kept"
    con.execute(
        f"create or replace temp table {kept} as select * from {relation} where not ({predicate})"
    )
    dropped = (
        con.execute(f"select count(*) from {relation}").fetchone()[0]
        - con.execute(f"select count(*) from {kept}").fetchone()[0]
    )
    return kept, dropped, matcher.listing.version


def filter_parquet(
    con,
    matcher: Matcher,
    path: Path,
    remove_when_empty: bool = False,
    by_file: dict[str, int] | None = None,
) -> int:
    """Rewrite ``path`` without the erased members' rows (atomically); return rows removed,
    and add them up per source file (``_source_file``) in ``by_file`` when one is given.

    Written as ingestion writes a partition (DuckDB, zstd, row order kept), so an erased
    partition holds the same rows as a rerun of its interval. ``remove_when_empty`` drops a
    file left with no row (a quarantine file, which a rerun would not write).
    """
    columns = relation_columns(con, f"read_parquet('{path}')")
    predicate = matcher.predicate(columns)
    if predicate is None:
        return 0
    matcher.register(con)
    removed = con.execute(
        f"select count(*) from read_parquet('{path}') where {predicate}"
    ).fetchone()[0]
    if not removed:
        return 0
    if by_file is not None and "_source_file" in columns:
        for source_file, count in con.execute(
            f"select _source_file, count(*) from read_parquet('{path}') where {predicate} "
            "group by all"
        ).fetchall():
            by_file[source_file] = by_file.get(source_file, 0) + count
    total = con.execute(f"select count(*) from read_parquet('{path}')").fetchone()[0]
    if remove_when_empty and removed == total:
        path.unlink()
        return removed
    staged = path.with_name(f".tmp-erase-{os.getpid()}-{path.name}")
    try:
        con.execute(
            f"copy (select * from read_parquet('{path}') where not ({predicate})) "
            f"to '{staged}' (format parquet, compression zstd)"
        )
        with open(staged, "rb") as handle:
            os.fsync(handle.fileno())
        # The rewrite keeps the file's mode and group (a personal-data file's 0640 is for
        # CX_PERSONAL_FILE_GROUP, not for whichever group a new file would get).
        before = os.stat(path)
        if os.stat(staged).st_gid != before.st_gid:
            os.chown(staged, -1, before.st_gid)
        os.chmod(staged, before.st_mode & 0o777)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    return removed


def move_to_suppressed(manifest: dict, count_key: str, by_file: Mapping[str, int]) -> None:
    """Move the rows erased from each source file (``by_file``) from its ``count_key`` count to
    its ``rows_suppressed``, in the manifest's ``source_files``, so that each file's counts
    still add up (read = landed + quarantined + outside + suppressed). Entries without
    per-file counts (a database table's) are left as they are."""
    for fact in manifest.get("source_files", []):
        removed = by_file.get(fact.get("path"), 0)
        if removed and count_key in fact:
            fact[count_key] -= removed
            fact["rows_suppressed"] = fact.get("rows_suppressed", 0) + removed


def refilter_staged(
    settings: Settings, staging: Path, manifest: dict, files: Mapping[str, str]
) -> dict:
    """Before publishing: if members were erased since the landing was staged, drop their rows
    from the staged files too (``files`` maps a staged file to its manifest count). Returns the
    manifest, with the counts updated."""
    matcher = Matcher.for_settings(settings)
    if matcher is None or manifest.get("suppression_version") == matcher.listing.version:
        return manifest
    import duckdb

    updated = dict(manifest)
    updated["source_files"] = [dict(fact) for fact in manifest.get("source_files", [])]
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        for name, count_key in files.items():
            path = staging / name
            if not path.exists():
                continue
            by_file: dict[str, int] = {}
            removed = filter_parquet(
                con,
                matcher,
                path,
                remove_when_empty=count_key == "rows_quarantined",
                by_file=by_file,
            )
            updated[count_key] = updated.get(count_key, 0) - removed
            updated["rows_suppressed"] = updated.get("rows_suppressed", 0) + removed
            move_to_suppressed(updated, count_key, by_file)
    updated["suppression_version"] = matcher.listing.version
    return updated
