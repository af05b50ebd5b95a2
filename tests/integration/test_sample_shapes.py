"""`make run` end to end on the shapes of data users bring, through the programs cycle.

Each shape runs ``python -m pipeline run`` in a process and data folder of its own, through the
runner `make eval` uses (ml/eval_shapes.py), at a small size: the sample is generated, ingested,
the warehouse built, the models trained, every open member scored and a programs cycle run.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from ml import eval_shapes

pytestmark = pytest.mark.integration

# Small, so that the five runs take a few minutes (three at a time on two cores), yet every
# single shape trains a champion. At 650 members no daily survey export of these shapes is a
# lone line without a required field: planted dirt that ingestion rejects as a broken contract
# (about every second size from 500 to 1,000 has one).
MEMBERS = 650
# The retailer's nine-month history of one cohort needs more: at 650 members (a holdout of
# about 500) the recency rule beat every candidate (0.694 against 0.660 ROC AUC), no version was
# promoted and scoring stopped for want of a champion; at 1,000 the champion beats it (0.749
# against 0.675).
REAL_RETAILER_MEMBERS = 1000
REAL_RETAILER = "single_cohort,purchase_only,short_history"
SHAPES = ("single_cohort", "purchase_only", "short_history", "seasonal", REAL_RETAILER)
WITHOUT_SURVEYS = ("purchase_only", REAL_RETAILER)
NINE_MONTHS = ("short_history", REAL_RETAILER)
JOBS = 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, eval_shapes.CaseRun]:
    work_dir = tmp_path_factory.mktemp("shapes")
    cases = [
        eval_shapes.shape_case(shape, REAL_RETAILER_MEMBERS if shape == REAL_RETAILER else None)
        for shape in SHAPES
    ]
    done = eval_shapes.run_cases(cases, work_dir, MEMBERS, jobs=JOBS, timeout=600)
    return {run.case.shape: run for run in done}


@pytest.fixture(scope="module")
def rows(runs) -> dict[str, eval_shapes.Row]:
    return {shape: eval_shapes.evaluate_run(run) for shape, run in runs.items() if run.ok}


def _query(run: eval_shapes.CaseRun, sql: str) -> tuple:
    path = run.data_dir / "warehouse" / "cx.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchone()


def _finished(runs, rows, shape) -> eval_shapes.Row:
    run = runs[shape]
    assert run.ok, f"{shape} failed after {run.seconds} s:\n{run.tail()}"
    return rows[shape]


def _manifest(run: eval_shapes.CaseRun) -> dict:
    (score_date,) = _query(run, "select max(score_date) from ml_scores")
    path = run.data_dir / "exports" / score_date.isoformat() / "manifest.json"
    return json.loads(path.read_text())


def _segment_programs() -> set[str]:
    """The programs of programs/programs.yml whose condition reads a segment column."""
    from config import load_settings
    from programs import config
    from programs.eligibility import referenced_columns
    from programs.members import SEGMENT_COLUMNS

    loaded = config.load(load_settings().programs_config)
    return {
        p.name for p in loaded.programs if referenced_columns(p.eligibility) & set(SEGMENT_COLUMNS)
    }


@pytest.mark.parametrize("shape", SHAPES)
def test_the_run_finishes_with_a_churn_champion(runs, rows, shape):
    row = _finished(runs, rows, shape)
    assert row.status == "ok", row.error
    assert row.candidate in ("boosted", "logistic", "btyd")
    assert row.champion_version is not None, row.promotion
    assert row.promotion.startswith("champion"), row.promotion


@pytest.mark.parametrize("shape", SHAPES)
def test_every_open_member_is_scored_at_the_score_date(runs, rows, shape):
    _finished(runs, rows, shape)
    open_members, unscored = _query(
        runs[shape],
        """
        with score_day as (select max(score_date) as score_date from ml_scores)
        select
            count(*),
            count(*) filter (where scores.member_id is null)
        from customer_360 as members
        cross join score_day
        left join ml_scores as scores
            on scores.member_id = members.member_id
            and scores.score_date = score_day.score_date
        where not coalesce(members.is_closed, false)
            and members.as_of_date = score_day.score_date
        """,
    )
    assert open_members > 0.5 * (runs[shape].case.members or MEMBERS)
    assert unscored == 0


@pytest.mark.parametrize("shape", SHAPES)
def test_the_champion_is_at_or_above_both_baselines(runs, rows, shape):
    metrics = _finished(runs, rows, shape).metrics
    assert metrics["roc_auc"] >= metrics["bgnbd_roc_auc"], metrics
    assert metrics["roc_auc"] >= metrics["recency_rule_roc_auc"], metrics


@pytest.mark.parametrize("shape", WITHOUT_SURVEYS)
def test_without_surveys_no_segment_model_and_its_programs_are_skipped(runs, rows, shape):
    row = _finished(runs, rows, shape)
    assert row.segment_model == "skipped"
    assert row.segment_skipped.startswith("no segment model")
    scored, segmented = _query(
        runs[shape], "select count(*), count(predicted_segment) from ml_scores"
    )
    assert scored > 0
    assert segmented == 0

    manifest = _manifest(runs[shape])
    assert manifest["model_versions"]["segment_model"] is None
    entries = {p["name"]: p for p in manifest["programs"]}
    needs_segment = _segment_programs()
    assert needs_segment and needs_segment < set(entries)
    for name in needs_segment:
        assert entries[name]["skipped_reason"].startswith("no segment model"), entries[name]
        assert entries[name]["rows"] == 0
    ran = {name for name, entry in entries.items() if entry["skipped_reason"] is None}
    assert ran == set(entries) - needs_segment
    assert "service_recovery" in ran


@pytest.mark.parametrize("shape", NINE_MONTHS)
def test_nine_months_of_history_shorten_the_windows(runs, rows, shape):
    row = _finished(runs, rows, shape)
    assert row.history_days is not None and row.history_days <= 275, row.window_plan
    assert "shortened to fit" in row.window_plan, row.window_plan
    assert "weekly cutoffs" in row.window_plan, row.window_plan  # the warehouse's short grid
    assert row.activity_days < 180 or row.horizon_days < 90, row.window_plan


def test_each_run_has_its_own_state_and_airflow(tmp_path):
    """What keeps two runs apart: the parent's Airflow database and CX_ locations stay out."""
    parent = {
        "AIRFLOW_HOME": "/elsewhere/airflow",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////elsewhere/airflow.db",
        "CX_DUCKDB_PATH": "/elsewhere/cx.duckdb",
        "CX_MLFLOW_TRACKING_URI": "sqlite:////elsewhere/mlflow.db",
        "CX_LOYALTY_URL": "sqlite:////elsewhere/loyalty.db",
        "CX_SAMPLE_SEED": "11",
        "PATH": "/usr/bin",
    }
    env = eval_shapes.run_env(eval_shapes.shape_case("purchase_only"), tmp_path, 700, parent)
    assert not {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "CX_DUCKDB_PATH", "CX_LOYALTY_URL"} & set(
        env
    )
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert env["CX_DATA_DIR"] == str(tmp_path / "data")
    assert (env["CX_SAMPLE_SHAPE"], env["CX_SAMPLE_MEMBERS"]) == ("purchase_only", "700")
    assert (env["CX_SAMPLE_SEED"], env["PATH"]) == ("11", "/usr/bin")
    assert eval_shapes.tracking_uri(Path(env["CX_DATA_DIR"])).endswith("data/mlflow/mlflow.db")

    own = eval_shapes.loyalty_case("postgresql://cx:s3cret@db/loyalty", 1, parent)
    env = eval_shapes.run_env(own, tmp_path, 700, parent)
    assert env["CX_LOYALTY_URL"] == "postgresql://cx:s3cret@db/loyalty"
    assert env["CX_SOURCES"] == "loyalty"
    assert len(env["CX_HASH_KEY"]) >= 32
    assert "s3cret" not in own.label
