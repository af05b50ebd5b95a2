"""Control groups: exact share, deterministic by member, program and cycle, and random."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from programs.assignment import assign, control_size, draw

ON = date(2026, 6, 30)


def _selected(n: int, program: str = "nurture", priority: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        {"member_id": [f"M{i:05d}" for i in range(n)], "program": program, "priority": priority}
    )


@pytest.mark.parametrize(
    ("eligible", "share", "expected"),
    [(0, 0.1, 0), (1, 0.1, 0), (2, 0.1, 1), (5, 0.1, 1), (44, 0.1, 4), (45, 0.1, 5), (703, 0.1, 70), (10, 0.5, 5)],
)  # fmt: skip
def test_control_size_is_the_share_rounded_with_at_least_one(eligible, share, expected):
    assert control_size(eligible, share) == expected


def test_the_draw_is_fixed_by_member_program_and_cycle():
    assert draw("nurture", ON, "M1") == draw("nurture", ON, "M1")
    assert draw("nurture", ON, "M1") != draw("win_back", ON, "M1")
    assert draw("nurture", ON, "M1") != draw("nurture", date(2026, 7, 31), "M1")
    values = np.array([draw("nurture", ON, f"M{i}") for i in range(4000)])
    assert 0 <= values.min() and values.max() < 1
    assert np.histogram(values, bins=10, range=(0, 1))[0].min() > 330  # roughly uniform


def test_assign_is_reproducible_and_independent_of_input_order():
    selected = pd.concat([_selected(300), _selected(120, "win_back", 2)], ignore_index=True)
    shares = {"nurture": 0.1, "win_back": 0.25}
    first = assign(selected, ON, shares)
    again = assign(selected.sample(frac=1, random_state=3), ON, shares)
    pd.testing.assert_frame_equal(first, again)
    counts = first.groupby(["program", "assignment_group"]).size()
    assert counts[("nurture", "control")] == 30 and counts[("nurture", "treatment")] == 270
    assert counts[("win_back", "control")] == 30 and counts[("win_back", "treatment")] == 90
    assert list(first.columns) == ["cycle_date", "program", "member_id", "assignment_group"]


def test_the_control_group_changes_with_the_cycle_and_is_not_the_first_members():
    selected = _selected(1000)
    now = set(
        assign(selected, ON, {"nurture": 0.1}).query("assignment_group == 'control'")["member_id"]
    )
    later = set(
        assign(selected, date(2026, 7, 31), {"nurture": 0.1}).query(
            "assignment_group == 'control'"
        )["member_id"]
    )
    assert len(now) == len(later) == 100
    assert len(now & later) < 30  # about 10 expected by chance
    positions = sorted(int(m[1:]) for m in now)
    assert np.mean(positions) == pytest.approx(500, abs=90)  # spread over the list, not its head
