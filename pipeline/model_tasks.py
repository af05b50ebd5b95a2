"""The Python steps of the model DAGs: train and gate the models, then score every member.

Both reach the warehouse, DuckDB or PostgreSQL (``CX_WAREHOUSE_TARGET``), only through the store
(``warehouse.store.open_store``). On DuckDB training reads the analysts' published copy, so it
never holds the live file while a build writes it. Scoring writes ``ml_scores``, ``ml_monitoring``
and ``segment_transitions`` as the ``models`` owner in one transaction, then publishes, so
analysts and exports see the new scores (on PostgreSQL they read the tables themselves).
"""

from __future__ import annotations

from config import load_settings


class NoChampionYet(LookupError):
    """Scoring was asked for before any model version was promoted to ``champion``."""


def train_models(
    horizon_days: int = 90, train_cutoffs: int = 6, margin: float | None = None, dag_run_id=None
) -> dict:
    """Train, evaluate and gate both models; returns versions, aliases and headline metrics."""
    from ml import registry
    from ml.train import config_from_settings, ensure_store, train
    from warehouse.store import open_store

    settings = load_settings()
    ensure_store(settings.mlflow_tracking_uri)
    config = config_from_settings(
        settings,
        horizon_days=horizon_days,
        n_train_cutoffs=train_cutoffs,
        margin=registry.DEFAULT_MARGIN if margin is None else margin,
        dag_run_id=dag_run_id,
    )
    result = train(config, open_store(settings, snapshot=True))
    headline = (
        "roc_auc",
        "pr_auc",
        "brier",
        "bgnbd_roc_auc",
        "recency_rule_roc_auc",
        "macro_f1",
        "majority_macro_f1",
        "stratified_macro_f1",
    )
    summary = {
        kind: {
            "version": result[kind]["version"],
            "alias": result[kind]["alias"],
            **{k: round(v, 4) for k, v in result[kind]["metrics"].items() if k in headline},
        }
        for kind in ("churn", "segment")
    }
    summary["churn"]["candidate"] = result["churn"]["candidate"]
    if result["segment"].get("skipped"):
        summary["segment"]["skipped"] = result["segment"]["skipped"]
    return summary


def has_champions(tracking_uri: str) -> bool:
    """Whether the churn model has a ``champion`` alias: scoring needs it. The segment model is
    optional (a deployment without surveys has none)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from ml.train import CHURN_MODEL

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        client.get_model_version_by_alias(CHURN_MODEL, "champion")
    except MlflowException:
        return False
    return True


def no_champion_message(tracking_uri: str) -> str:
    """Why there is nothing to score with: no training yet, or a training whose model did not
    beat the baselines (then its own reason, since training again will not change it)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from ml.train import CHURN_MODEL

    where = f"the registry at CX_MLFLOW_TRACKING_URI={tracking_uri}"
    try:
        versions = mlflow.MlflowClient(tracking_uri=tracking_uri).search_model_versions(
            f"name = '{CHURN_MODEL}'"
        )
    except MlflowException:
        versions = []
    if not versions:
        return f"no churn model in {where}: trigger the train_models DAG first"
    latest = max(versions, key=lambda version: int(version.version))
    reason = (latest.tags or {}).get("promotion_reason", "no promotion reason recorded")
    return (
        f"no churn model in {where} has been promoted to champion: the latest, version "
        f"{latest.version}, stayed challenger because {reason}. On a small or short history the "
        "models may not beat the recency rule; the training run in MLflow shows every "
        "candidate's holdout figures. Load more members or history, then train again"
    )


# What scoring writes, and so all a republish after it needs to replace. Each has score_date.
SCORING_TABLES = ("ml_scores", "ml_monitoring", "segment_transitions")


def score_members() -> dict:
    """Score every open member with the champions, then republish the analysts' copy."""
    from ml.score import score
    from warehouse.store import open_store

    settings = load_settings()
    if not has_champions(settings.mlflow_tracking_uri):
        raise NoChampionYet(no_champion_message(settings.mlflow_tracking_uri))
    store = open_store(settings)
    summary = score(store, settings.mlflow_tracking_uri)
    # The scoring tables keep every day's rows and a run writes only its own day's: only those
    # are compared, so the republish costs a day of scores however many days are kept.
    summary["published"] = store.publish(
        tables=SCORING_TABLES,
        by_rows=True,
        changed_rows=f"score_date = date '{summary['score_date']}'",
    )
    return summary
