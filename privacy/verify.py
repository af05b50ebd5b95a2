"""Check that erased members are gone: search every place erasure cleans, with the suppression
list's matcher (ids, emails and phones as keyed hashes, and contact details in free text).

Run by the ``erase_members`` DAG after erasure; any erased member found anywhere fails it, so a
later fault (a restored backup, a missed table) shows up on the next erasure too.

It does not trust the registry that drives erasure: every table of every schema the project
writes is searched, through the store, by every column whose name says it identifies a person
(``privacy.suppression.column_role``), so a table erasure missed is caught here.
"""

from __future__ import annotations

from collections.abc import Iterable

from config.settings import Settings
from privacy import identity, suppression
from privacy.erase import normalize_ids, warehouse_stores
from privacy.identity import MEMBER


class ErasureIncompleteError(RuntimeError):
    """Rows of erased members remain; the message names the places, never the rows."""


def _schemas(store) -> set[str]:
    """The schemas the project writes on this store, from the table registry."""
    from warehouse import tables

    main = getattr(store, "schema", "main")
    return {main if t.schema == "main" else t.schema for t in tables.registry().values()}


def warehouse_rows(store, matcher, label: str) -> dict[str, int]:
    """Rows of erased members per ``<label>:<schema>.<table>`` in one warehouse (only tables
    with rows). Values are matched in Python, one distinct value at a time, so the check is the
    same on every engine."""
    columns = store.read(
        "select columns.table_schema, columns.table_name, columns.column_name "
        "from information_schema.columns as columns "
        "inner join information_schema.tables as tables "
        "on columns.table_schema = tables.table_schema "
        "and columns.table_name = tables.table_name "
        "where tables.table_type = 'BASE TABLE'"
    )
    schemas = _schemas(store)
    found: dict[str, int] = {}
    for schema, table, column in columns.itertuples(index=False):
        role = suppression.column_role(column)
        if role is None or schema not in schemas:
            continue
        relation = f'"{schema}"."{table}"'
        values = store.read(
            f'select distinct cast("{column}" as varchar) as value from {relation} '
            f'where "{column}" is not null'
        )["value"]
        matched = sorted(v for v in values if matcher.matches(role, v))
        if not matched:
            continue
        marks = ", ".join(f"${i}" for i in range(1, len(matched) + 1))
        rows = store.read(
            f'select count(*) as n from {relation} where cast("{column}" as varchar) in ({marks})',
            matched,
        )["n"][0]
        place = f"{label}:{schema}.{table}"
        found[place] = found.get(place, 0) + int(rows)
    return found


def remaining(settings: Settings) -> dict[str, int]:
    """Rows of any erased member left, per place (only places with rows)."""
    from ingestion import erase as lake
    from programs import erase_exports
    from warehouse.publish import published_path
    from warehouse.store import DuckDBStore

    matcher = suppression.Matcher.for_settings(settings)
    if matcher is None:
        return {}
    found = dict(lake.remaining(settings.lake_dir, matcher))
    for store in warehouse_stores(settings):
        found.update(warehouse_rows(store, matcher, store.target))
    copy = published_path(settings.duckdb_path)
    if copy.exists():
        found.update(warehouse_rows(DuckDBStore(copy), matcher, "published"))
    found.update(erase_exports.remaining(settings.exports_dir, matcher))
    return found


def assert_erased(settings: Settings, member_ids: Iterable[str]) -> dict:
    """Raise ``ErasureIncompleteError`` unless the members are on the suppression list and no
    erased member's row is left anywhere; return what was checked."""
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
