"""A loyalty-only deployment: no survey responses, so no segment model. Scoring writes every open
member with churn scores and null segments; the programs that need a segment are skipped with the
reason, the others run, export and are measured, and the report says why segments are missing."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pytest
from conftest import ENGINES, TEST_PROGRAMS, patch_warehouse, warehouse_env
from program_warehouse import FIRST_CYCLE, SECOND_CYCLE, advance, build, create, write_scores

from config import load_settings
from config.settings import Settings
from programs import drivers, eligibility, lift, members, report, tables
from programs.eligibility import Rules

# The test programs and one that needs no segment, so a cycle without segments has a program
# big enough to measure besides service recovery.
PROGRAMS = (
    TEST_PROGRAMS
    + """
  - name: high_risk
    priority: 5
    eligibility: risk_band = 'high'
"""
)
SEGMENT_PROGRAMS = ("win_back", "nurture", "advocates")
RUNNING = ("service_recovery", "high_risk")
NO_MODEL = "no segment model: the deployment has no survey responses to learn engagement segments"


@dataclass
class LoyaltyOnly:
    settings: Settings
    store: object
    runs: list[dict]


@pytest.fixture(scope="module", params=ENGINES)
def loyalty_only(request, tmp_path_factory) -> LoyaltyOnly:
    """Two cycles (2026-04-30, then 2026-06-30 after high-risk treated members bought more) on a
    warehouse with no survey table and scores without a segment model, on each engine."""
    from programs import cycle
    from warehouse.store import open_store

    root = tmp_path_factory.mktemp(f"loyalty_only-{request.param}")
    config = root / "programs.yml"
    config.write_text(PROGRAMS)
    with pytest.MonkeyPatch.context() as patch:
        patch_warehouse(patch, root, warehouse_env(request, request.param))
        patch.setenv("CX_PROGRAMS_CONFIG", str(config))
        settings = load_settings()
    settings.duckdb_path.parent.mkdir(parents=True)
    store = open_store(settings)
    state = build(store, FIRST_CYCLE, surveys=False)
    first = cycle.run(store, settings)
    advance(store, state, SECOND_CYCLE, boosted=("high_risk",))
    second = cycle.run(store, settings)
    return LoyaltyOnly(settings, store, [first, second])


def _query(loyalty_only, sql, params=None) -> pd.DataFrame:
    return loyalty_only.store.read(sql, params or [])


def test_the_fixture_is_a_deployment_without_surveys_or_segments(loyalty_only):
    assert not loyalty_only.store.exists("fct_survey_responses")
    assert loyalty_only.store.exists("fct_calls")
    scores = _query(
        loyalty_only,
        "select count(*) as members, count(predicted_segment) as segments, "
        "count(segment_model_version) as versions, min(model_version) as version "
        "from ml_scores where score_date = $1",
        [SECOND_CYCLE],
    ).iloc[0]
    assert scores["members"] > 300
    assert scores["segments"] == scores["versions"] == 0
    assert scores["version"] == "cx_churn/1"


def test_every_step_of_both_cycles_ran(loyalty_only):
    for run, day in zip(loyalty_only.runs, (FIRST_CYCLE, SECOND_CYCLE), strict=True):
        assert run["assign"]["cycle_date"] == day.isoformat()
        assert set(run["assign"]["skipped"]) == set(SEGMENT_PROGRAMS)
        assert run["export"]["path"].endswith(day.isoformat())
        assert run["measure"]["driver_rows"] > 0
        assert run["report"]["path"].endswith("segment-report.html")


def test_segment_programs_are_skipped_with_the_reason_in_the_manifest(loyalty_only):
    exports_dir = loyalty_only.settings.exports_dir
    for day in (FIRST_CYCLE, SECOND_CYCLE):
        manifest = json.loads((exports_dir / day.isoformat() / "manifest.json").read_text())
        assert manifest["model_versions"] == {
            "scores": "cx_churn/1",
            "churn_model": "cx_churn/1",
            "segment_model": None,
        }
        entries = {p["name"]: p for p in manifest["programs"]}
        for name in SEGMENT_PROGRAMS:
            assert entries[name]["skipped_reason"].startswith(NO_MODEL), entries[name]
            assert "predicted_segment" in entries[name]["skipped_reason"]
            assert entries[name]["eligible"] == entries[name]["rows"] == 0
        for name in RUNNING:
            assert entries[name]["skipped_reason"] is None
    cycles = _query(loyalty_only, "select * from program_cycles")
    skipped = cycles[cycles["skipped_reason"].notna()]
    assert set(skipped["program"]) == set(SEGMENT_PROGRAMS)
    assert (skipped[["matched", "eligible", "treatment", "control"]] == 0).all().all()
    assigned = _query(loyalty_only, "select distinct program from program_assignments")
    assert set(assigned["program"]) == set(RUNNING)


def test_the_other_programs_export_their_treated_members_without_a_segment(loyalty_only):
    exports_dir = loyalty_only.settings.exports_dir
    for day in (FIRST_CYCLE, SECOND_CYCLE):
        manifest = json.loads((exports_dir / day.isoformat() / "manifest.json").read_text())
        entries = {p["name"]: p for p in manifest["programs"]}
        for name in RUNNING:
            assert entries[name]["treatment"] > 0 and entries[name]["control"] > 0, name
            exported = pd.read_csv(exports_dir / day.isoformat() / f"{name}.csv", dtype=str)
            assert len(exported) == entries[name]["rows"] == entries[name]["treatment"]
            assert exported["segment"].isna().all()
            assert exported["risk_band"].notna().all()


def test_the_programs_that_ran_are_measured_and_the_skipped_ones_are_not(loyalty_only):
    rows = _query(loyalty_only, "select * from mart_program_lift")
    assert set(rows["program"]) == set(RUNNING)
    rows["cycle_date"] = pd.to_datetime(rows["cycle_date"]).dt.date
    first = rows[rows["cycle_date"] == FIRST_CYCLE].set_index(["program", "metric"])
    high_risk = first.loc[("high_risk", "retention_rate")]
    assert high_risk["status"] == "measured"
    assert high_risk["ci_low"] > 0  # treated high-risk members bought again at 0.85, others 0.35


def test_segment_dropped_is_false_and_service_recovery_runs_on_its_other_conditions(
    loyalty_only,
):
    frame = members.read_members(loyalty_only.store, SECOND_CYCLE)
    # The second cycle has a previous score date: both segments are null, not a drop.
    assert frame["previous_segment"].isna().all() and frame["predicted_segment"].isna().all()
    assert frame["segment_dropped"].dtype == bool and not frame["segment_dropped"].any()
    negative = (frame["unresolved_calls_14d"] > 0) | (frame["escalated_calls_14d"] > 0)
    cycles = _query(
        loyalty_only,
        "select matched from program_cycles where program = 'service_recovery' and cycle_date = $1",
        [SECOND_CYCLE],
    )
    assert cycles["matched"].iloc[0] == int(negative.sum()) > 0


def test_skipped_programs_are_logged_with_the_reason(loyalty_only, caplog):
    from programs import cycle

    with caplog.at_level(logging.WARNING, logger="programs.cycle"):
        summary = cycle.assign(loyalty_only.store, loyalty_only.settings)
    logged = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    for name in SEGMENT_PROGRAMS:
        assert any(name in line and NO_MODEL in line for line in logged), logged
        assert summary["skipped"][name].startswith(NO_MODEL)
    assert not any(name in line for line in logged for name in RUNNING)


def test_key_drivers_skip_nps_and_explain_churn_with_calls_alone(loyalty_only):
    rows = _query(
        loyalty_only,
        "select * from mart_key_drivers where as_of_date = $1",
        [SECOND_CYCLE],
    )
    nps = rows[rows["outcome"] == "nps"]
    assert len(nps) == len(drivers.DRIVERS)
    assert nps["derived_importance"].isna().all()
    assert set(nps["note"]) == {drivers.NO_NPS_ANSWERS}
    churn = rows[rows["outcome"] == "churn"].set_index("driver")
    calls = [d.name for d in drivers.DRIVERS if d.source == "calls"]
    surveys = [d.name for d in drivers.DRIVERS if d.source == "responses"]
    assert churn.loc[calls, "derived_importance"].sum() == pytest.approx(1.0)
    assert churn.loc[surveys, "derived_importance"].isna().all()
    assert set(churn.loc[surveys, "note"]) == {drivers.NO_SURVEY_RESPONSES}


def test_the_report_says_there_is_no_segment_model_and_why(loyalty_only):
    page = (loyalty_only.settings.reports_dir / "segment-report.html").read_text()
    assert "No segment model: the deployment has no survey responses to learn" in page
    assert "Predicted segment sizes per score date" not in page
    assert "Predicted transitions" not in page
    assert "aria-label='Risk by segment'" not in page
    # The churn-risk parts and the programs, those that ran and those skipped with the reason.
    assert "aria-label='Risk by tier'" in page and "aria-label='Most common reasons'" in page
    assert "aria-label='Program sizes'" in page
    assert "Skipped this cycle" in page
    assert page.count("(its condition uses predicted_segment)") == len(SEGMENT_PROGRAMS)
    assert "Retention lift" in page  # high risk's first cycle is measured
    assert "NPS (0-10) is not derived: no survey responses" in page


# ---------------------------------------------------------------------------------------------
# The pieces, on small inputs


def test_referenced_columns_come_from_the_parse_not_the_text():
    assert eligibility.referenced_columns(
        "risk_band = 'predicted_segment' or members.Predicted_Segment in ('Swing') "
        "or segment_dropped"
    ) == {"risk_band", "predicted_segment", "segment_dropped"}
    assert eligibility.referenced_columns("true") == set()


def test_only_the_programs_that_use_an_unavailable_column_are_skipped():
    programs = [
        Rules("recovery", 1, "unresolved_calls_14d > 0 or segment_dropped", False, 14),
        # Would still match on its risk band alone: a different program from the one configured.
        Rules("win_back", 2, "risk_band = 'high' or predicted_segment = 'Disengaged'", True, 30),
        Rules("sure", 3, "segment_probability > 0.8", True, 30),
        Rules("lapsed", 4, "is_lapsed and reason_1 <> 'predicted_segment'", True, 30),
    ]
    unavailable = dict.fromkeys(members.SEGMENT_COLUMNS, "no segment model: why")
    skipped = eligibility.skipped(programs, unavailable)
    assert skipped == {
        "win_back": "no segment model: why (its condition uses predicted_segment)",
        "sure": "no segment model: why (its condition uses segment_probability)",
    }
    frame = pd.DataFrame(
        {
            "member_id": ["M1", "M2"],
            "unresolved_calls_14d": [1, 0],
            "segment_dropped": [False, False],
            "risk_band": ["high", "high"],
            "predicted_segment": [None, None],
            "segment_probability": [np.nan, np.nan],
            "is_lapsed": [True, True],
            "reason_1": ["x", "y"],
            "marketing_opt_in": [True, True],
            "is_closed": [False, False],
        }
    )
    history = pd.DataFrame(
        columns=["member_id", "program", "cycle_date", "assignment_group", "response_window_days"]
    )
    selected, funnel = eligibility.select(frame, programs, history, SECOND_CYCLE, skip=skipped)
    assert dict(zip(selected["member_id"], selected["program"], strict=True)) == {
        "M1": "recovery",
        "M2": "lapsed",
    }
    assert funnel["win_back"] == dict.fromkeys(eligibility.FUNNEL_STEPS, 0)


def test_segment_dropped_is_false_without_any_segment():
    nothing = pd.Series([None, None, None], dtype=object)
    was = pd.Series(["Engaged", None, "Swing"], dtype=object)
    assert members.segment_dropped(nothing, nothing).tolist() == [False, False, False]
    assert members.segment_dropped(was, nothing).tolist() == [False, False, False]


def _scores_only(store, survey_rows: int):
    """A warehouse of one date of scores without segments, a survey table of ``survey_rows``
    rows, and no call table."""
    scores = pd.DataFrame(
        {
            "member_id": ["A", "B"],
            "score_date": date(2026, 6, 30),
            "model_version": "cx_churn/2",
            "churn_model_version": "2",
            "segment_model_version": None,
            "churn_probability": [0.7, 0.1],
            "is_lapsed": False,
            "risk_band": ["high", "low"],
            "predicted_segment": None,
            "segment_probability": None,
            "reason_1": ["no purchase in 95 days", None],
            "reason_2": None,
            "reason_3": None,
        }
    )
    write_scores(store, scores, date(2026, 6, 30))
    create(store, "customer_360", pd.DataFrame({"member_id": ["A", "B"], "tier": "gold"}))
    responses = pd.DataFrame(
        {
            "response_id": [f"R{i}" for i in range(survey_rows)],
            "member_id": "A",
            "survey_type": "relationship",
            "nps_score": 9,
            "submitted_at": pd.Timestamp("2026-06-01 09:00"),
        }
    )
    create(store, "fct_survey_responses", responses)
    return store


@pytest.mark.parametrize(
    ("survey_rows", "why"),
    [(0, members.NO_SURVEYS_FOR_SEGMENTS), (3, members.NO_SEGMENTS_SCORED)],
)
def test_the_report_gathers_why_there_are_no_segments(survey_rows, why, empty_store):
    data = report.gather(_scores_only(empty_store, survey_rows))
    assert data.no_segments == f"no segment model: {why}"
    assert data.predicted_segments.empty
    assert set(data.risk["tier"]) == {"gold"} and data.risk["members"].sum() == 2
    html = report.render(data)
    assert why in html and "Churn risk by tier" in html
    assert "Churn risk by segment" not in html
    assert "Long time since the last purchase" in html


def test_drivers_without_survey_rows_or_a_call_table_say_so(empty_store):
    store = _scores_only(empty_store, 0)
    assert not store.exists("fct_calls")
    create(store, "dim_members", pd.DataFrame({"member_id": ["A", "B"]}))
    create(store, "fct_transactions", pd.DataFrame({"member_id": ["A"], "amount": [10.0]}))
    outcomes, performance, missing = drivers.read_inputs(store, date(2026, 6, 30))
    assert "nps" not in outcomes and missing["nps"] == drivers.NO_NPS_ANSWERS
    assert {missing[d.name] for d in drivers.DRIVERS if d.source == "calls"} == {drivers.NO_CALLS}
    rows = drivers.key_drivers(outcomes, performance, date(2026, 6, 30), missing)
    assert set(rows["outcome"]) == {"nps", "churn"}
    assert rows["derived_importance"].isna().all()
    assert rows["note"].notna().all()


def test_program_cycles_written_before_skipping_existed_gain_the_column(empty_store):
    old = {c: t for c, t in tables.CYCLE_COLUMNS.items() if c != "skipped_reason"}
    with empty_store.writer("programs") as writer:
        writer.ensure("program_cycles", old)
        writer.insert(
            "program_cycles",
            pd.DataFrame(
                {"cycle_date": [FIRST_CYCLE], "program": "a", "response_window_days": 30,
                 "treatment": 5, "control": 2}
            ),
        )  # fmt: skip
    assert "skipped_reason" not in empty_store.columns("program_cycles")
    cycles = pd.DataFrame(
        [
            {**dict.fromkeys(tables.CYCLE_COLUMNS), "cycle_date": SECOND_CYCLE, "program": p,
             "response_window_days": 30, "treatment": 0, "control": 0, "skipped_reason": why}
            for p, why in (("b", None), ("c", "no segment model: why"))
        ]
    )  # fmt: skip
    empty = pd.DataFrame(columns=list(tables.ASSIGNMENT_COLUMNS))
    tables.write_assignments(empty_store, SECOND_CYCLE, empty, cycles)
    stored = empty_store.read("select program, skipped_reason from program_cycles")
    measured = lift.read_cycles(empty_store)
    assert sorted(
        (r.program, None if pd.isna(r.skipped_reason) else r.skipped_reason)
        for r in stored.itertuples()
    ) == [("a", None), ("b", None), ("c", "no segment model: why")]
    assert sorted(measured["program"]) == ["a", "b"]
