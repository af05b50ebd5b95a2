"""
### Train the churn and engagement-segment models

Weekly (Monday 03:00 UTC), and on demand from the UI or the REST API with the params below.
Reads the analysts' published copy of the warehouse, trains on point-in-time features at rolling
cutoffs, evaluates on a later holdout, logs everything to MLflow and registers both models.
A new version becomes `champion` only if it beats the current champion on the same holdout by
`margin`; otherwise it stays `challenger`. Emits `models.champions`, which triggers scoring.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from pipeline.assets import MODEL_ASSETS


@dag(
    dag_id="train_models",
    schedule=CronTriggerTimetable("0 3 * * 1", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["ml", "training"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "owner": "data-science"},
    params={
        "horizon_days": Param(90, type="integer", minimum=7, description="churn label window"),
        "train_cutoffs": Param(6, type="integer", minimum=1, description="monthly cutoffs"),
        "margin": Param(0.005, type="number", minimum=0, description="promotion margin"),
    },
    doc_md=__doc__,
)
def train_models():
    @task(outlets=[MODEL_ASSETS["champion_models"]])
    def train(params=None, run_id=None) -> dict:
        from pipeline.model_tasks import train_models as train_and_gate

        return train_and_gate(
            horizon_days=int(params["horizon_days"]),
            train_cutoffs=int(params["train_cutoffs"]),
            margin=float(params["margin"]),
            dag_run_id=run_id,
        )

    train()


train_models()
