"""The right to erasure: remove members from everywhere the platform holds them.

``erase_members(settings, member_ids)`` does, under the lake's privacy lock:

1. **Resolve** who the members are: their emails and phone numbers in the lake
   (``ingestion.erase.member_contacts``) and in the warehouse tables the registry marks as
   holding them, and their ids as each warehouse spells them. Held in memory only.
2. **Record** them as keyed hashes in the suppression list, first, so that whatever happens
   next, no later ingestion run brings the member back (``privacy.suppression``).
3. **Collect** the keys of every lake record that belongs to an erased member (by member id,
   by email or phone, or by contact details written in free text), before anything is changed,
   so the warehouse can drop records it holds without a member id (``ingestion.erase``).
4. **Warehouse**, each owner its own tables, through the store (``warehouse.store``): dbt's
   (``warehouse.erase``, driven by the registry's ``member`` and ``records`` columns), the
   models' (``ml.erase``) and the programs' (``programs.erase``); then the store compacts what
   changed (DuckDB rewrites its file, PostgreSQL vacuums) and republishes the analysts' copy.
   DuckDB whenever its file exists; PostgreSQL when it is the target (or ``postgres=True``).
5. **Exports**: each cycle that holds a member rewritten by ``programs.erase_exports``.
6. **Lake** last: partitions, manifests and enrichments, by ``ingestion.erase``.

The warehouse goes before the lake, so a run that fails halfway can simply be repeated: the
lake still holds every record key the warehouse needs, and the suppression list already holds
the member. The source systems are not touched (we cannot delete there); the suppression list
is what keeps the member out. Nothing here prints or logs an id, an email or a phone number.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from config.settings import Settings
from privacy import identity, suppression
from privacy.identity import EMAIL, MEMBER, PHONE
from privacy.suppression import Matcher, lake_lock

log = logging.getLogger(__name__)


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


def warehouse_stores(settings: Settings, postgres: bool | None = None) -> list:
    """The warehouses an erasure cleans and a verification checks: the DuckDB file when it
    exists, and PostgreSQL when it is the target (``postgres`` overrides)."""
    from warehouse.store import DuckDBStore, PostgresStore, postgres_uri

    if postgres is None:
        postgres = settings.warehouse_target == "postgres"
    stores = []
    if settings.duckdb_path.exists():
        stores.append(DuckDBStore(settings.duckdb_path, memory_limit=settings.duckdb_memory_limit))
    if postgres:
        stores.append(PostgresStore(postgres_uri(settings), settings.pg_schema))
    return stores


def erase_members(
    settings: Settings, member_ids: Iterable[str], postgres: bool | None = None
) -> ErasureReport:
    """Erase ``member_ids`` everywhere; see the module docstring. Safe to repeat."""
    from ingestion import erase as lake
    from programs import erase_exports

    ids = normalize_ids(member_ids)
    key = identity.hash_key(settings)
    report = ErasureReport(members=len(ids))
    stores = warehouse_stores(settings, postgres)
    _release_duckdb(stores)
    with lake_lock(settings.lake_dir):
        identities = resolve_identities(settings, ids, stores)
        listing = suppression.record(settings, identities, members=len(ids))
        matcher = Matcher(key, listing)
        keys = lake.record_keys(settings.lake_dir, matcher)
        for store in stores:
            _erase_from_warehouse(store, ids, keys, report)
        group = settings.personal_file_group
        for place, rows in erase_exports.erase(settings.exports_dir, matcher, group).items():
            report.add(place, rows)
        for place, rows in lake.erase(settings, matcher, keys).items():
            report.add(place, rows)
    log.info(
        "erased %d member(s): %d rows in %d places", len(ids), report.total, len(report.removed)
    )
    return report


# --- Who the members are ------------------------------------------------------------------------


def resolve_identities(settings: Settings, ids: list[str], stores) -> dict[str, set[str]]:
    """The members' ids, and every email and phone number the lake or a warehouse links to them."""
    from ingestion import erase as lake

    found: dict[str, set[str]] = {MEMBER: set(ids), EMAIL: set(), PHONE: set()}
    for role, values in lake.member_contacts(settings.lake_dir, ids).items():
        found[role] |= values
    for store in stores:
        present = relations(store)
        for entry in _member_tables(present, store):
            columns = [c for c in entry.personal if suppression.column_role(c) in (EMAIL, PHONE)]
            for column in columns:
                for value in _values_of_members(store, entry, column, ids):
                    found[suppression.column_role(column)].add(value)
    return found


def relations(store) -> set[tuple[str, str]]:
    """(schema, name) of every base table in the store's warehouse."""
    rows = store.read(
        "select table_schema, table_name from information_schema.tables "
        "where table_type = 'BASE TABLE'"
    )
    return set(zip(rows["table_schema"], rows["table_name"], strict=True))


def schema_of(store, entry) -> str:
    """The schema ``entry`` lives in on this store (the marts' schema is ``main`` on DuckDB)."""
    return entry.schema if entry.schema != "main" else getattr(store, "schema", "main")


def _member_tables(present: set[tuple[str, str]], store) -> list:
    from warehouse import tables

    return [
        entry
        for entry in tables.registry().values()
        if entry.member
        and entry.kind == "table"
        and (schema_of(store, entry), entry.name) in present
    ]


def _relation(entry) -> str:
    return entry.name if entry.schema == "main" else f"{entry.schema}.{entry.name}"


def _values_of_members(store, entry, column: str, ids: list[str]) -> set[str]:
    """The distinct values of ``column`` in the rows of ``entry`` that belong to ``ids``."""
    marks = ", ".join(f"${i}" for i in range(1, len(ids) + 1))
    rows = store.read(
        f"select distinct cast({column} as varchar) as value from {_relation(entry)} "
        f"where lower(trim(cast({entry.member} as varchar))) in ({marks}) "
        f"and {column} is not null",
        ids,
    )
    return set(rows["value"])


def member_spellings(store, ids: list[str], present: set[tuple[str, str]]) -> list[str]:
    """The members' ids as the warehouse writes them (``M1``, ``m1 ``...), for the owners'
    erasure, which deletes by exact value; the normalised ids too."""
    spellings = set(ids)
    for entry in _member_tables(present, store):
        spellings |= _values_of_members(store, entry, entry.member, ids)
    return sorted(spellings)


# --- Each owner erases its own tables -----------------------------------------------------------


def _release_duckdb(stores) -> None:
    if any(store.target == "duckdb" for store in stores):
        from warehouse.dbt_runner import release_duckdb

        release_duckdb()  # dbt-duckdb may hold the file open in this process (dag.test)


def _erase_from_warehouse(store, ids: list[str], keys: dict[str, set[str]], report) -> None:
    from ml import erase as models
    from programs import erase as programs
    from warehouse import erase as warehouse
    from warehouse import tables
    from warehouse.publish import published_path

    present = relations(store)
    spellings = member_spellings(store, ids, present)
    removed = {
        **warehouse.erase_members(store, spellings, keys),
        **models.erase_members(store, spellings),
        **programs.erase_members(store, spellings),
    }
    touched = sorted(name for name, rows in removed.items() if rows)
    for name in touched:
        entry = tables.table(name)
        report.add(f"{store.target}:{schema_of(store, entry)}.{name}", removed[name])
    if touched:
        store.compact(touched)
    if store.target == "duckdb" and (touched or published_path(store.path).exists()):
        report.published = store.publish()
