"""Control groups: a randomised, reproducible hold-out per program and cycle.

Each eligible member gets a draw from SHA-256 of ``program|cycle date|member id``: the same
member, program and cycle always draw the same number, on any machine, with no seed to keep. In
each program the members with the lowest draws, ``round(control_share * eligible)`` of them (at
least one when two or more are eligible), form the control group. Sorting by a hash is a random
permutation that no member attribute can predict, so the two groups differ only by chance, and
the exact share keeps small programs from ending up with no control at all.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import date

import pandas as pd

GROUPS = ("treatment", "control")
ASSIGNMENT_COLUMNS = ("cycle_date", "program", "member_id", "assignment_group")


def draw(program: str, on: date, member_id: str) -> float:
    """A uniform number in [0, 1) fixed by program, cycle date and member."""
    digest = hashlib.sha256(f"{program}|{on.isoformat()}|{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def control_size(eligible: int, share: float) -> int:
    """Members held out: the share rounded half up, at least one when two or more are eligible."""
    if eligible < 2:
        return 0
    return max(1, min(eligible - 1, math.floor(eligible * share + 0.5)))


def assign(selected: pd.DataFrame, on: date, control_shares: Mapping[str, float]) -> pd.DataFrame:
    """``program_assignments`` rows for one cycle from ``selected`` (member_id, program, priority).

    Sorted by program priority then member id, so the same inputs give the same rows in the same
    order.
    """
    frames = []
    for program, members in selected.groupby("program", sort=False):
        draws = [draw(str(program), on, m) for m in members["member_id"]]
        ordered = members.assign(_draw=draws).sort_values(["_draw", "member_id"])
        n_control = control_size(len(ordered), control_shares[str(program)])
        group = ["control"] * n_control + ["treatment"] * (len(ordered) - n_control)
        frames.append(ordered.assign(assignment_group=group))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ASSIGNMENT_COLUMNS})
    out = pd.concat(frames, ignore_index=True).assign(cycle_date=on)
    out = out.sort_values(["priority", "member_id"], ignore_index=True)
    return out[list(ASSIGNMENT_COLUMNS)]
