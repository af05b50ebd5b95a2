"""Erasure in the tables dbt owns, by the warehouse: the public function ``privacy`` calls.

Driven by the table registry (``warehouse/tables.yml``): every dbt-owned table that names a
``member`` column loses the rows of the erased members, and every one that names ``records``
columns loses the rows of their records (a survey response or a call that reached the warehouse
without a member id, found in the lake by its email, phone or text). A new model is erased
once its registry entry names those columns; nothing in ``privacy`` changes.

Views are left alone: they read the lake, which ``ingestion.erase`` rewrites. Tables of the
models and of the programs are erased by their owners (``ml.erase``, ``programs.erase``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from warehouse import tables

OWNER = "dbt"
# The analysts' copy's position in the publish log, and the log itself (it names the keys of
# the rows the models rewrote, member ids among them). Erasure deletes outside the log, so both
# are emptied in the same transaction: the next publish then compares every row, and a copy
# whose publish failed after an erasure still loses the erased rows.
PUBLISH_STATE = ("publish_log_position", "publish_log")


def erasable() -> tuple[tables.Table, ...]:
    """The dbt-owned tables erasure deletes from: those with a member or record-key column."""
    return tuple(t for t in tables.owned_by(OWNER) if t.kind == "table" and (t.member or t.records))


def erase_members(
    store, member_ids: Iterable[str], record_keys: Mapping[str, Iterable[str]]
) -> dict[str, int]:
    """Delete, in one transaction of the ``dbt`` writer, the rows whose ``member`` column holds
    one of ``member_ids`` (as the warehouse spells them) or whose ``records`` columns hold one
    of ``record_keys`` (by key name: ``transaction_id``, ``response_id``, ``call_id``; a records
    column named otherwise, such as ``int_identity_links.record_id``, is matched against every
    key). Returns the rows deleted per table name (tables with none left out)."""
    ids = sorted(set(member_ids))
    keys = {kind: sorted(set(values)) for kind, values in record_keys.items()}
    every_key = sorted({value for values in keys.values() for value in values})
    removed: dict[str, int] = {}
    with store.writer(OWNER) as writer:
        for entry in erasable():
            columns = writer.columns(entry.name)
            if not columns:  # not built on this warehouse (raw is PostgreSQL's only)
                continue
            rows = 0
            if entry.member in columns and ids:
                rows += writer.delete_keys(entry.name, entry.member, ids)
            for column in entry.records:
                values = keys.get(column, every_key)
                if column in columns and values:
                    rows += writer.delete_keys(entry.name, column, values)
            if rows:
                removed[entry.name] = rows
        for name in PUBLISH_STATE:
            if name in tables.registry() and writer.columns(name):
                writer.delete(name)
    return removed
