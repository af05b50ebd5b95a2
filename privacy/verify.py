"""Check that erased members are gone: search every place erasure cleans, with the suppression
list's matcher (ids, emails and phones as keyed hashes, and contact details in free text).

Run by the ``erase_members`` DAG after erasure; any erased member found anywhere fails it, so a
later fault (a restored backup, a missed table) shows up on the next erasure too.
"""

from __future__ import annotations

from collections.abc import Iterable

from config.settings import Settings
from privacy import identity, suppression
from privacy.identity import MEMBER


class ErasureIncompleteError(RuntimeError):
    """Rows of erased members remain; the message names the places, never the rows."""


def _lake_rows(settings: Settings, matcher, note) -> None:
    import duckdb

    from privacy.erase import _lake_files

    with duckdb.connect() as con:
        matcher.register(con)
        for area in ("raw", "quarantine", "_staging"):
            for path in _lake_files(settings.lake_dir, area):
                relation = f"read_parquet('{path}')"
                predicate = matcher.predicate(suppression.relation_columns(con, relation))
                if predicate:
                    rows = con.execute(f"select count(*) from {relation} where {predicate}")
                    note(f"lake:{area}", rows.fetchone()[0])


def _duckdb_rows(settings: Settings, matcher, note) -> None:
    import duckdb

    from privacy.erase import _duckdb_tables
    from warehouse.publish import published_path

    for path, label in (
        (settings.duckdb_path, "duckdb"),
        (published_path(settings.duckdb_path), "published"),
    ):
        if not path.exists():
            continue
        with duckdb.connect(str(path), read_only=True) as con:
            matcher.register(con)
            for (schema, name), columns in _duckdb_tables(con).items():
                predicate = matcher.predicate(columns)
                if predicate:
                    rows = con.execute(
                        f'select count(*) from "{schema}"."{name}" where {predicate}'
                    )
                    note(f"{label}:{schema}.{name}", rows.fetchone()[0])


def _postgres_rows(settings: Settings, matcher, note) -> None:
    from privacy.erase import (
        POSTGRES_SCHEMAS,
        _postgres_connect,
        _postgres_matches,
        _postgres_tables,
    )

    with _postgres_connect(settings) as connection, connection.cursor() as cursor:
        schemas = (*POSTGRES_SCHEMAS, settings.pg_schema)
        for (schema, name), columns in _postgres_tables(cursor, schemas).items():
            for column in columns:
                role = suppression.column_role(column)
                if role is not None:
                    values = _postgres_matches(cursor, schema, name, column, role, matcher)
                    note(f"postgres:{schema}.{name}", len(values))
        connection.rollback()


def remaining(settings: Settings) -> dict[str, int]:
    """Rows of any erased member left, per place (only places with rows)."""
    from privacy.erase import _export_rows_to_drop

    matcher = suppression.Matcher.for_settings(settings)
    if matcher is None:
        return {}
    found: dict[str, int] = {}

    def note(place: str, rows: int) -> None:
        if rows:
            found[place] = found.get(place, 0) + rows

    _lake_rows(settings, matcher, note)
    _duckdb_rows(settings, matcher, note)
    if settings.warehouse_target == "postgres":
        _postgres_rows(settings, matcher, note)
    builds = settings.exports_dir / ".builds"
    if builds.is_dir():
        for build in sorted(p for p in builds.iterdir() if p.is_dir()):
            note(f"exports:{build.name}", sum(_export_rows_to_drop(build, matcher).values()))
    return found


def assert_erased(settings: Settings, member_ids: Iterable[str]) -> dict:
    """Raise ``ErasureIncompleteError`` unless the members are on the suppression list and no
    erased member's row is left anywhere; return what was checked."""
    from privacy.erase import normalize_ids

    ids = normalize_ids(member_ids)
    listing = suppression.load(settings)
    key = identity.hash_key(settings)
    unrecorded = [
        m for m in ids if identity.keyed_hash(key, MEMBER, m) not in listing.hashes.get(MEMBER, ())
    ]
    if unrecorded:
        raise ErasureIncompleteError(
            f"{len(unrecorded)} of {len(ids)} member(s) are not on the suppression list"
        )
    left = remaining(settings)
    if left:
        places = ", ".join(f"{place} ({rows})" for place, rows in sorted(left.items()))
        raise ErasureIncompleteError(f"erased members' rows remain in: {places}")
    return {"members": len(ids), "remaining": 0}
