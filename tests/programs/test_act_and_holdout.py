"""Issue 25, items 4 and 5: exports a team can act on (a channel for everyone it can reach,
reasons that fit advocates, the report's plan for the cycle with paths relative to the data
folder), the persistent global holdout, and the minimum detectable effect."""

from __future__ import annotations

import json
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from ml import reasons
from programs import config, eligibility, exports, lift
from programs import report as segment_report

HOLDOUT = """
global_holdout:
  share: 0.05
  salt: test-salt
programs:
  - name: everyone
    priority: 1
    eligibility: risk_band = 'high' or risk_band = 'low'
  - name: thanks
    priority: 2
    eligibility: risk_band = 'low'
    reasons: strengths
"""


# ---------------------------------------------------------------------------------------------
# Channels


def _service_rows() -> pd.DataFrame:
    """A service program (no opt-in needed): who has an email, a phone, both or neither."""
    return pd.DataFrame(
        {
            "program": "service_recovery",
            "member_id": ["M1", "M2", "M3", "M4"],
            "first_name": ["A", "B", "C", "D"],
            "email": ["a@x.org", None, None, None],
            "phone": ["+15550001", "+15550002", None, None],
            "segment": "Swing",
            "risk_band": "high",
            "reason_1": "x",
            "reason_2": None,
            "reason_3": None,
            "marketing_opt_in": [True, False, False, False],
            "opt_in_required": False,
            "assignment_group": ["treatment", "treatment", "treatment", "control"],
        }
    )


def test_the_channel_is_email_then_phone_then_none():
    frame = exports.program_frame(_service_rows(), "service_recovery")
    assert frame["member_id"].tolist() == ["M1", "M2", "M3"]
    assert frame["channel"].tolist() == ["email", "phone", "none"]
    assert frame["phone"].tolist() == ["+15550001", "+15550002", None]


def test_a_marketing_phone_without_opt_in_stops_the_export():
    rows = _service_rows().assign(opt_in_required=True, program="win_back")
    with pytest.raises(exports.ExportError, match="phone numbers of members without opt-in"):
        exports.program_frame(rows, "win_back")


# ---------------------------------------------------------------------------------------------
# Reasons


def test_strengths_fit_advocates_and_never_read_as_churn_reasons():
    features = pd.DataFrame(
        {
            "latest_nps_score": [10, 3, np.nan, 9],
            "spend_90d": [120.0, 50.0, 0.0, 200.0],
            "spend_90d_change": [20.0, -10.0, 0.0, -5.0],
            "positive_moments_90d": [2, 0, 0, 0],
            "latest_ces_score": [7, 2, np.nan, 5],
            "transactions_90d": [5, 1, 0, 2],
            "tenure_days": [1000, 100, 50, 800],
        }
    )
    found = reasons.top_strengths(features)
    assert set(found[0]) == {
        "promoter in the last survey (NPS 10)",
        "spend up 20% over the last 90 days",
        "2 good experiences in the last 90 days",
    }
    assert list(found[1]) == [None, None, None]  # a detractor is never a strength
    assert "promoter in the last survey (NPS 9)" in found[3]
    assert "a member for 2 years" in found[3]
    words = " ".join(w for w in found.ravel() if w)
    assert not re.search(r"detractor|fell|less|no purchase|unresolved", words)


def test_the_typical_gap_never_reads_one_times():
    ratios = pd.DataFrame({"recency_x_rate": [1.05, 1.2, 1.49, 1.6, 2.2, 4.4]})
    found = reasons.top_reasons(ratios)[:, 0]
    assert list(found[:3]) == [None, None, None]  # within half again the usual gap: not a reason
    assert "about one and a half times the member's typical gap" in found[3]
    assert "about twice" in found[4] and "about 4 times" in found[5]
    assert not any(re.search(r"\b1x\b", w) for w in found if w)


# ---------------------------------------------------------------------------------------------
# Global holdout


def test_the_holdout_is_the_same_members_in_every_cycle_and_about_its_share():
    loaded = config.parse(HOLDOUT)
    assert loaded.holdout == config.GlobalHoldout(0.05, "test-salt")
    assert loaded.by_name()["thanks"].reasons == "strengths"
    ids = [f"M{i:07d}" for i in range(20_000)]
    held = {m for m in ids if loaded.holdout.holds(m)}
    assert 0.045 < len(held) / len(ids) < 0.055
    # A new salt draws another holdout; the same salt, the same one.
    other = config.GlobalHoldout(0.05, "another-salt")
    again = config.parse(HOLDOUT).holdout
    assert held == {m for m in ids if again.holds(m)}
    assert len(held & {m for m in ids if other.holds(m)}) < 0.2 * len(held)


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ("global_holdout: {share: 0.5, salt: s}", "global_holdout.share"),
        ("global_holdout: {share: 0.05}", "global_holdout.salt"),
        ("global_holdout: {share: 0.05, salt: s, seed: 1}", "global_holdout.seed"),
    ],
)
def test_a_bad_holdout_is_refused_naming_its_field(block, field):
    text = block + "\n" + HOLDOUT.split("\n", 4)[4]
    with pytest.raises(config.ProgramConfigError, match=re.escape(f"field '{field}'")):
        config.parse(text)


def test_a_bad_reason_set_is_refused():
    with pytest.raises(config.ProgramConfigError, match="field 'reasons'"):
        config.parse(HOLDOUT.replace("reasons: strengths", "reasons: churn"))


def test_holdout_members_are_never_selected_and_the_funnel_counts_them():
    loaded = config.parse(HOLDOUT)
    ids = [f"M{i:05d}" for i in range(2_000)]
    frame = pd.DataFrame(
        {
            "member_id": ids,
            "risk_band": ["high", "low"] * 1_000,
            "is_closed": False,
            "marketing_opt_in": True,
        }
    )
    held = {m for m in ids if loaded.holdout.holds(m)}
    history = pd.DataFrame(
        columns=["member_id", "program", "cycle_date", "assignment_group", "response_window_days"]
    )
    rules = [p.rules() for p in loaded.programs]
    for on in (date(2026, 5, 31), date(2026, 6, 30)):
        selected, funnel = eligibility.select(frame, rules, history, on, global_holdout=held)
        assert not set(selected["member_id"]) & held
        assert funnel["everyone"]["in_global_holdout"] == len(held)
        assert funnel["everyone"]["eligible"] == len(ids) - len(held)


# ---------------------------------------------------------------------------------------------
# Minimum detectable effect


def test_a_true_effect_of_the_mde_is_found_about_80_percent_of_the_time():
    from scipy.stats import ttest_ind

    rng = np.random.default_rng(7)
    n_t, n_c, sd = 300, 60, 40.0
    mde = lift.minimum_detectable_effect(sd, n_t, n_c)
    found = [
        ttest_ind(rng.normal(mde, sd, n_t), rng.normal(0.0, sd, n_c)).pvalue < 0.05
        for _ in range(2_000)
    ]
    assert 0.77 < np.mean(found) < 0.83
    assert lift.minimum_detectable_effect(sd, 0, n_c) is None
    # Four times the members in each group halves it.
    assert lift.minimum_detectable_effect(sd, 4 * n_t, 4 * n_c) == pytest.approx(mde / 2)


# ---------------------------------------------------------------------------------------------
# On a warehouse: two real cycles (tests/programs/conftest.py)


def test_the_cycles_record_the_holdout_and_the_export_says_how_to_reach_each_member(two_cycles):
    store, settings = two_cycles.store, two_cycles.settings
    cycles = store.read("select * from program_cycles order by cycle_date, priority")
    # The fixture's programs file has no global holdout: nobody is held out.
    assert (cycles["global_holdout_share"] == 0).all()
    assert (cycles["in_global_holdout"] == 0).all()
    assert set(cycles["reasons"]) == {"risk"}
    assert set(cycles["contact_within_days"]) == {7}
    manifest = json.loads((settings.exports_dir / "latest" / "manifest.json").read_text())
    for entry in manifest["programs"]:
        frame = pd.read_csv(settings.exports_dir / "latest" / f"{entry['name']}.csv")
        assert set(frame["channel"]) <= set(exports.CHANNELS)
        counts = frame["channel"].value_counts().to_dict()
        assert entry["channels"] == {c: counts.get(c, 0) for c in exports.CHANNELS}
        assert entry["rows_without_channel"] == counts.get("none", 0)
        assert (frame["channel"] == "email").sum() == frame["email"].notna().sum()


def test_the_report_opens_with_the_cycles_plan_and_shows_no_absolute_path(two_cycles):
    store, settings = two_cycles.store, two_cycles.settings
    data = segment_report.gather(store, settings.exports_dir, settings.data_dir)
    html = segment_report.render(data)
    body = html.split("<body>", 1)[1]
    assert body.index('id="todo"') < body.index('id="segments"')
    cycles = store.read("select * from program_cycles order by cycle_date, priority")
    latest = cycles[cycles["cycle_date"] == cycles["cycle_date"].max()]
    cycle = pd.Timestamp(latest["cycle_date"].iloc[0]).date()
    assert f"What to do this cycle ({cycle})" in html
    for r in latest.itertuples():
        if r.treatment:
            assert f"exports/latest/{r.program}.csv" in html
    assert "2026-07-07" in html  # the cycle of 2026-06-30, contacted within 7 days
    assert str(settings.data_dir) not in html
    # The mde table: one row per program that ran, computed from the members' history.
    assert set(data.detectable["program"]) == set(latest.loc[latest["treatment"] > 0, "program"])
    assert (data.detectable["retention_mde"].dropna() > 0).all()
    assert "Smallest effect this cycle can detect" in html


def test_strength_reasons_read_the_cycles_treated_members_on_both_warehouses(two_cycles):
    store = two_cycles.store
    on = pd.Timestamp(
        store.read("select max(cycle_date) as on_date from program_cycles").iloc[0, 0]
    ).date()
    assigned = store.read(
        "select member_id from program_assignments where cycle_date = $1 "
        "and program = 'advocates' order by member_id",
        [on],
    )
    found = exports.strength_reasons(store, on, "advocates")
    assert found["member_id"].tolist() == assigned["member_id"].tolist()
    assert list(found.columns) == ["member_id", "reason_1", "reason_2", "reason_3"]
    cells = found[["reason_1", "reason_2", "reason_3"]].to_numpy().ravel()
    words = " ".join(w for w in cells if isinstance(w, str))
    assert not re.search(r"detractor|fell|less|no purchase|unresolved|escalated", words)
