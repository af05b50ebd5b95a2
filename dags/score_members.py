"""
### Score every member: churn risk, engagement segment and reasons

Runs when the warehouse has rebuilt `customer_360` and `member_features_pit`, or when training
has registered new models (`models.champions`). Loads `models:/cx_churn@champion` and
`models:/cx_segment@champion`, checks the features against the models' signatures and a Great
Expectations suite, writes `ml_scores`, drift (`ml_monitoring`) and `segment_transitions`, then
republishes the analysts' copy. Emits `warehouse.ml_scores`, which the programs run on.
Fails with a clear message if no model has been promoted yet: trigger `train_models`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task

from pipeline.assets import MART_ASSETS, MODEL_ASSETS


@dag(
    dag_id="score_members",
    schedule=(
        (MART_ASSETS["customer_360"] & MART_ASSETS["member_features_pit"])
        | MODEL_ASSETS["champion_models"]
    ),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["ml", "scoring"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2), "owner": "data-science"},
    doc_md=__doc__,
)
def score_members():
    @task(outlets=[MODEL_ASSETS["ml_scores"]], pool="duckdb_writer")
    def score() -> dict:
        from pipeline.model_tasks import score_members as score_all

        return score_all()

    score()


score_members()
