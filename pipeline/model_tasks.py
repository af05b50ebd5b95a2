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
    horizon_days: int = 90,
    train_cutoffs: int = 6,
    margin: float | None = None,
    dag_run_id=None,
    approval: str | None = None,
) -> dict:
    """Train, evaluate and gate both models; returns versions, aliases and headline metrics.

    ``approval`` (``required`` or ``auto``; None: ``CX_MODEL_APPROVAL``) says whether a version
    the gate would promote waits for a person; ``summary["approval"]`` is then the request the
    DAG's approval task shows (``approval_request``), else None."""
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
        approval_required=(approval or settings.model_approval) == "required",
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
    for kind in ("churn", "segment"):
        summary[kind]["pending"] = bool(result[kind].get("pending"))
        summary[kind]["run_id"] = result[kind]["run_id"]
        summary[kind]["reason"] = result[kind].get("reason")
    summary["approval"] = approval_request(summary, settings.mlflow_tracking_uri)
    return summary


MODEL_NAMES = {"churn": "cx_churn", "segment": "cx_segment"}


def run_url(tracking_uri: str, run_id: str) -> str:
    """Where a person sees the run (metrics, plots, the model card among its artifacts)."""
    import mlflow

    run = mlflow.MlflowClient(tracking_uri=tracking_uri).get_run(run_id)
    if tracking_uri.startswith(("http://", "https://")):
        base = tracking_uri.rstrip("/")
        return f"{base}/#/experiments/{run.info.experiment_id}/runs/{run_id}"
    # A local store has no server: the run as `mlflow ui --backend-store-uri ...` shows it.
    return f"run {run_id} in {tracking_uri} (open it with `mlflow ui --backend-store-uri {tracking_uri}`)"


def approval_request(summary: dict, tracking_uri: str) -> dict | None:
    """The subject and Markdown body a person decides on: per waiting model its version, why
    the gate put it forward, its headline metrics, the MLflow run and its model card; None when
    nothing waits."""
    import tempfile
    from pathlib import Path

    import mlflow

    waiting = [kind for kind in MODEL_NAMES if summary[kind].get("pending")]
    if not waiting:
        return None
    names = ", ".join(f"{MODEL_NAMES[k]} version {summary[k]['version']}" for k in waiting)
    parts = [
        f"Training put forward {names} as the new champion. Approve to promote "
        "(the `champion` alias moves and the next scoring uses it); reject, or leave it past "
        "the timeout, to keep the current champion.",
    ]
    for kind in waiting:
        part = summary[kind]
        name = MODEL_NAMES[kind]
        skip = {"version", "alias", "pending", "run_id", "reason", "candidate"}
        metrics = "\n".join(
            f"| {key} | {value} |" for key, value in part.items() if key not in skip
        )
        url = run_url(tracking_uri, part["run_id"])
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = mlflow.MlflowClient(tracking_uri=tracking_uri).download_artifacts(
                    part["run_id"], "model_card.md", tmp
                )
                card = Path(path).read_text()
        except Exception as error:  # the request still goes out, saying what is missing
            card = f"(the model card could not be read: {error})"
        parts += [
            f"## {name} version {part['version']}",
            f"Gate: {part['reason']}",
            f"MLflow run: {url} (the model card is its artifact `model_card.md`)",
            f"| metric | value |\n| --- | --- |\n{metrics}",
            f"<details><summary>Model card</summary>\n\n{card}\n</details>",
        ]
    return {"subject": f"Approve the new champion: {names}", "body": "\n\n".join(parts)}


APPROVE = "Approve"
REJECT = "Reject"


def settle_approval(summary: dict, answer: dict | None) -> dict:
    """Apply a person's answer (the approval task's result) to every waiting version:
    ``Approve`` moves ``champion`` to it; ``Reject``, or the timeout's default answer (no
    responder), leaves the champion and records why on the version's tags."""
    import mlflow

    from ml import registry

    client = mlflow.MlflowClient(tracking_uri=load_settings().mlflow_tracking_uri)
    chosen = (answer or {}).get("chosen_options") or []
    user = (answer or {}).get("responded_by_user") or {}
    by = user.get("name") or user.get("id")
    settled = {}
    for kind, name in MODEL_NAMES.items():
        part = summary.get(kind) or {}
        if not part.get("pending"):
            continue
        version = str(part["version"])
        if chosen == [APPROVE]:
            registry.approve(client, name, version, by)
            settled[kind] = f"approved by {by}: {name} version {version} is champion"
        elif answer is not None and by:
            registry.keep_champion(
                client, name, version, "rejected", f"rejected by {by}; gate: {part['reason']}"
            )
            settled[kind] = f"rejected by {by}: the champion stays"
        else:
            registry.keep_champion(
                client,
                name,
                version,
                "timed_out",
                f"no approval before the timeout; gate: {part['reason']}",
            )
            settled[kind] = "no answer in time: the champion stays"
    return settled


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
