"""Lift on synthetic programs: a planted effect is recovered, a null effect is covered, the
intervals match published and library values, and open windows are reported as open."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from program_warehouse import create

from programs import lift, tables


def _outcomes(n_t, n_c, p_t, p_c, spend_t, spend_c, seed) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.array(["treatment"] * n_t + ["control"] * n_c)
    p = np.where(group == "treatment", p_t, p_c)
    retained = rng.random(len(group)) < p
    mean = np.where(group == "treatment", spend_t, spend_c)
    spend = np.where(retained, rng.gamma(2.0, mean / 2.0 / np.maximum(p, 1e-9)), 0.0)
    return pd.DataFrame({"assignment_group": group, "retained": retained, "spend": spend})


def test_newcombe_interval_matches_the_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 vs 48/80.
    estimate = lift.difference_in_proportions(56, 70, 48, 80)
    assert estimate.difference == pytest.approx(0.2)
    assert estimate.ci_low == pytest.approx(0.0524, abs=1e-4)
    assert estimate.ci_high == pytest.approx(0.3339, abs=1e-4)


def test_welch_interval_matches_the_hand_written_one_it_replaced():
    # The values the hand-written Welch interval (scipy.special's t quantile) gave before lift.py
    # used scipy.stats.ttest_ind: the swap changes no result beyond floating point.
    x = [12.1, 9.4, 15.0, 0.0, 22.5, 8.8, 0.0, 14.2, 30.1, 11.0, 9.9, 0.0]
    y = [5.0, 0.0, 7.5, 3.2, 0.0, 9.1, 4.4]
    estimate = lift.difference_in_means(x, y)
    assert estimate.p_value == pytest.approx(0.03113916221583045, rel=1e-12)
    assert estimate.ci_low == pytest.approx(0.7136401709982767, rel=1e-12)
    assert estimate.ci_high == pytest.approx(13.11016935281125, rel=1e-12)


def test_welch_interval_matches_r():
    # R: t.test(extra ~ group, data = sleep), Welch by default: t = -1.8608, df = 17.776,
    # p-value = 0.07939, 95 percent confidence interval -3.3654832 0.2054832.
    group1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
    group2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
    estimate = lift.difference_in_means(group1, group2)
    assert estimate.difference == pytest.approx(0.75 - 2.33)
    assert estimate.p_value == pytest.approx(0.07939, abs=5e-6)
    assert estimate.ci_low == pytest.approx(-3.3654832, abs=5e-8)
    assert estimate.ci_high == pytest.approx(0.2054832, abs=5e-8)


@pytest.mark.parametrize("seed", range(5))
def test_welch_interval_matches_the_textbook_formula(seed):
    from scipy.special import stdtr, stdtrit

    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 30.0, size=rng.integers(2, 400))
    y = rng.gamma(2.0, 25.0, size=rng.integers(2, 60))
    var_t, var_c = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = np.sqrt(var_t + var_c)
    df = (var_t + var_c) ** 2 / (var_t**2 / (len(x) - 1) + var_c**2 / (len(y) - 1))
    difference = x.mean() - y.mean()
    half = stdtrit(df, 0.975) * se
    estimate = lift.difference_in_means(x, y)
    assert estimate.ci_low == pytest.approx(difference - half, rel=1e-10)
    assert estimate.ci_high == pytest.approx(difference + half, rel=1e-10)
    assert estimate.p_value == pytest.approx(2 * stdtr(df, -abs(difference) / se), rel=1e-9)


def test_two_constant_groups_give_the_exact_difference():
    estimate = lift.difference_in_means([3.0, 3.0, 3.0], [1.0, 1.0])
    assert (estimate.ci_low, estimate.difference, estimate.ci_high) == (2.0, 2.0, 2.0)
    assert estimate.p_value == 0.0


def test_a_planted_effect_is_recovered():
    # 20,000 treated and 2,000 controls: retention 0.55 vs 0.45, spend 60 vs 50 per member.
    cycle = lift.measure_cycle(_outcomes(20_000, 2_000, 0.55, 0.45, 60.0, 50.0, seed=4))
    status, n_t, n_c, retention = cycle["retention_rate"]
    assert (status, n_t, n_c) == ("measured", 20_000, 2_000)
    assert retention.ci_low > 0 and retention.ci_low < 0.10 < retention.ci_high
    assert retention.p_value < 0.01
    spend = cycle["spend_per_member"][3]
    assert spend.ci_low > 0 and spend.ci_low < 10 < spend.ci_high
    assert spend.relative_lift == pytest.approx(spend.difference / spend.control_value)


def test_a_null_effect_gives_intervals_that_cover_zero_about_95_percent_of_the_time():
    covered = {"retention_rate": 0, "spend_per_member": 0}
    runs = 300
    for seed in range(runs):
        cycle = lift.measure_cycle(_outcomes(900, 100, 0.4, 0.4, 50.0, 50.0, seed=seed))
        for metric in covered:
            estimate = cycle[metric][3]
            covered[metric] += estimate.ci_low <= 0 <= estimate.ci_high
    for metric, count in covered.items():
        assert 0.91 <= count / runs <= 0.99, (metric, count)


def test_too_few_members_and_open_windows_are_not_measured():
    tiny = lift.measure_cycle(_outcomes(5, 1, 0.5, 0.5, 10.0, 10.0, seed=0))
    assert {v[0] for v in tiny.values()} == {"too_small"}
    cycles = pd.DataFrame(
        {
            "program": ["win_back", "nurture"],
            "cycle_date": [date(2026, 4, 1), date(2026, 6, 1)],
            "response_window_days": [60, 60],
            "treatment": [900, 900],
            "control": [100, 100],
        }
    )
    outcomes = _outcomes(900, 100, 0.6, 0.4, 50.0, 40.0, seed=2).assign(
        program="win_back", cycle_date=date(2026, 4, 1)
    )
    table = lift.lift_table(cycles, outcomes, through=date(2026, 6, 30))
    assert len(table) == 4
    win_back = table[table["program"] == "win_back"].set_index("metric")
    assert set(win_back["status"]) == {"measured"}
    assert win_back.loc["retention_rate", "incremental_total"] == pytest.approx(
        win_back.loc["retention_rate", "difference"] * 900
    )
    nurture = table[table["program"] == "nurture"]
    assert set(nurture["status"]) == {"window_open"}
    assert nurture["difference"].isna().all()
    assert set(pd.to_datetime(nurture["window_ends_on"]).dt.date) == {date(2026, 7, 31)}


def test_outcomes_count_only_the_response_window_and_closed_accounts_are_not_retained(
    empty_store,
):
    create(
        empty_store,
        "dim_members",
        pd.DataFrame(
            {
                "member_id": ["A", "B", "C", "D"],
                "closed_at": [None, None, pd.Timestamp("2026-03-15"), None],
                "is_closed": [False, False, True, False],
            }
        ),
    )
    create(
        empty_store,
        "fct_transactions",
        pd.DataFrame(
            {
                "transaction_id": ["t1", "t2", "t3", "t4", "t5"],
                "member_id": ["A", "B", "C", "D", "D"],
                "occurred_at": pd.to_datetime(
                    ["2026-03-01 10:00", "2026-04-01 23:59", "2026-03-10 09:00", "2026-03-05 09:00", "2026-03-06 09:00"]
                ),
                "amount": [30.0, 20.0, 15.0, 25.0, -25.0],
            }
        ),
    )  # fmt: skip
    on = date(2026, 3, 1)
    with empty_store.writer("programs") as writer:
        writer.ensure("program_cycles", tables.CYCLE_COLUMNS)
        writer.insert(
            "program_cycles",
            pd.DataFrame({"program": ["p"], "cycle_date": [on], "response_window_days": [31]}),
        )
        writer.ensure("program_assignments", tables.ASSIGNMENT_COLUMNS)
        writer.insert(
            "program_assignments",
            pd.DataFrame(
                {"program": "p", "cycle_date": on, "member_id": ["A", "B", "C", "D"],
                 "assignment_group": "treatment"}
            ),
        )  # fmt: skip
    assert lift.read_outcomes(empty_store, date(2026, 3, 31)).empty  # the window ends on 04-01
    outcomes = lift.read_outcomes(empty_store, date(2026, 4, 1)).set_index("member_id")
    # A bought on the cycle date itself (before the window); B on the window's last day; C
    # bought, then closed; D bought and returned it (retained, spend zero).
    assert outcomes["retained"].to_dict() == {"A": False, "B": True, "C": False, "D": True}
    assert outcomes["spend"].to_dict() == {"A": 0.0, "B": 20.0, "C": 15.0, "D": 0.0}
