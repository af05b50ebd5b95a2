"""Erasure in the models' own tables: the public function ``privacy`` calls for them.

Of the tables the models own (``warehouse/tables.yml``), those with a ``member`` column
(``ml_scores``, ``segment_transitions``) hold rows of one member and lose them; the others
(``ml_monitoring``) hold figures over many members and keep them.
"""

from __future__ import annotations

from collections.abc import Sequence

from warehouse import tables as registry

OWNER = "models"


def erase_members(store, member_ids: Sequence[str]) -> dict[str, int]:
    """Delete ``member_ids``' rows (as the warehouse spells them) from every models table with a
    member column, in one transaction; returns the rows deleted per table."""
    erased: dict[str, int] = {}
    with store.writer(OWNER) as writer:
        for table in registry.owned_by(OWNER):
            if not table.member or not member_ids or not writer.columns(table.name):
                erased[table.name] = 0
                continue
            erased[table.name] = writer.delete_keys(table.name, table.member, list(member_ids))
    return erased
