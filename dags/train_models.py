"""
### Train the churn and engagement-segment models

Weekly (Monday 03:00 UTC), and on demand from the UI or the REST API with the params below.
Reads the analysts' published copy of the warehouse, trains on point-in-time features at rolling
cutoffs, evaluates on a later holdout, logs everything to MLflow and registers both models.
A new version passes the gate only if it beats the current champion on the same holdout by
`margin` (the first one: the baselines); otherwise it stays `challenger`.

**A person approves a new champion** (`CX_MODEL_APPROVAL=required`, the default): a version
that passed the gate waits in **approve_champion** (Browse > Required Actions, or the run's
task) with its metrics, MLflow run link and model card. *Approve* moves `champion` to it;
*Reject*, or no answer within `CX_MODEL_APPROVAL_HOURS`, keeps the current champion and records
why on the version's tags. With `auto` (and in `make run`, where nobody is watching) the gate
promotes by itself. **publish** then settles the answer and emits `models.champions`, which
triggers scoring.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import CronTriggerTimetable, Param, dag, task

from config import load_settings
from pipeline.assets import MODEL_ASSETS

SETTINGS = load_settings()
APPROVE, REJECT = "Approve", "Reject"  # pipeline.model_tasks.APPROVE / REJECT
REQUEST = "ti.xcom_pull(task_ids='train')['approval']"


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
        "approval": Param(
            None,
            type=["null", "string"],
            enum=[None, "required", "auto"],
            description="who promotes: null follows CX_MODEL_APPROVAL",
        ),
    },
    doc_md=__doc__,
)
def train_models():
    @task
    def train(params=None, run_id=None) -> dict:
        from pipeline.model_tasks import train_models as train_and_gate

        return train_and_gate(
            horizon_days=int(params["horizon_days"]),
            train_cutoffs=int(params["train_cutoffs"]),
            margin=float(params["margin"]),
            dag_run_id=run_id,
            approval=params.get("approval"),
        )

    @task.branch
    def ask(trained: dict) -> list[str]:
        return ["approve_champion", "publish"] if trained["approval"] else ["publish"]

    approve_champion = HITLOperator(
        task_id="approve_champion",
        subject="{{ " + REQUEST + "['subject'] }}",
        body="{{ " + REQUEST + "['body'] }}",
        options=[APPROVE, REJECT],
        defaults=REJECT,
        response_timeout=timedelta(hours=SETTINGS.model_approval_hours),
    )

    @task(outlets=[MODEL_ASSETS["champion_models"]], trigger_rule="none_failed_min_one_success")
    def publish(trained: dict, ti=None) -> dict:
        from pipeline.model_tasks import settle_approval

        answer = ti.xcom_pull(task_ids="approve_champion") if trained["approval"] else None
        return settle_approval(trained, answer)

    trained = train()
    asked = ask(trained)
    published = publish(trained)
    asked >> approve_champion >> published
    asked >> published


train_models()
