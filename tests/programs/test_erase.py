"""Erasure in the programs' tables, on each warehouse: a member's assignments go, the cycles'
counts and the other members stay."""

from __future__ import annotations

from datetime import date

import pandas as pd
from program_warehouse import FIRST_CYCLE, SECOND_CYCLE

from programs import tables
from programs.erase import erase_members
from warehouse import tables as registry

# Every programs table with a member column: each is named in the result.
MEMBER_TABLES = {t.name for t in registry.owned_by("programs") if t.member}


def _cycle(on: date, members: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    assignments = pd.DataFrame(
        {
            "cycle_date": on,
            "program": "win_back",
            "member_id": members,
            "assignment_group": ["treatment", "control"] * (len(members) // 2),
        }
    )
    cycles = pd.DataFrame(
        [{**dict.fromkeys(tables.CYCLE_COLUMNS), "cycle_date": on, "program": "win_back",
          "treatment": len(members) // 2, "control": len(members) // 2}]
    )  # fmt: skip
    return assignments, cycles


def test_erasure_deletes_the_members_assignments_and_keeps_the_rest(empty_store):
    tables.write_assignments(empty_store, FIRST_CYCLE, *_cycle(FIRST_CYCLE, ["A", "B", "C", "D"]))
    tables.write_assignments(empty_store, SECOND_CYCLE, *_cycle(SECOND_CYCLE, ["A", "C"]))

    erased = erase_members(empty_store, ["A", "B", "Z"])
    assert set(erased) == MEMBER_TABLES and erased["program_assignments"] == 3

    left = empty_store.read(
        "select member_id, count(*) as cycles from program_assignments group by member_id"
    )
    assert dict(zip(left["member_id"], left["cycles"], strict=True)) == {"C": 2, "D": 1}
    counts = empty_store.read("select treatment, control from program_cycles order by cycle_date")
    assert counts.to_dict("list") == {"treatment": [2, 1], "control": [2, 1]}
    assert erase_members(empty_store, ["A"])["program_assignments"] == 0


def test_erasure_before_any_cycle_creates_nothing(empty_store):
    assert erase_members(empty_store, ["A"]) == dict.fromkeys(MEMBER_TABLES, 0)
    assert not any(empty_store.exists(table) for table in MEMBER_TABLES)
