"""Erasure in the programs' own tables: the public function ``privacy`` calls for them.

Every table the registry (``warehouse/tables.yml``) gives to ``programs`` with a ``member``
column holds rows of one member (``program_assignments``, and any added later): their rows of the
erased members are deleted. ``program_cycles``, ``mart_program_lift`` and ``mart_key_drivers``
hold counts and estimates over many members and keep them: an erased member leaves no row there
that could name them. The export files are erased by their own function.
"""

from __future__ import annotations

from collections.abc import Sequence

from programs.tables import OWNER
from warehouse import tables as registry


def erase_members(store, member_ids: Sequence[str]) -> dict[str, int]:
    """Delete ``member_ids``' rows from every programs table that has a member column, in one
    transaction; returns the rows deleted per table (0 where a table is not written yet)."""
    erased: dict[str, int] = {}
    owned = [t for t in registry.owned_by(OWNER) if t.member]
    with store.writer(OWNER) as writer:
        for table in owned:
            # A table not written yet has nothing to erase (seen inside the transaction).
            if not member_ids or not writer.columns(table.name):
                erased[table.name] = 0
                continue
            erased[table.name] = writer.delete_keys(table.name, table.member, list(member_ids))
    return erased
