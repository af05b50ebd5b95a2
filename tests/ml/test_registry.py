"""The promotion gate: better, worse, tie, no champion yet."""

from __future__ import annotations

from ml.registry import CHALLENGER, CHAMPION, decide_promotion


def test_better_than_champion_by_margin_is_promoted():
    assert decide_promotion(0.820, 0.810, 0.70, 0.005).alias == CHAMPION


def test_worse_than_champion_is_challenger():
    decision = decide_promotion(0.800, 0.810, 0.70, 0.005, "roc_auc")
    assert decision.alias == CHALLENGER
    assert "does not beat the champion" in decision.reason


def test_tie_or_gain_below_margin_keeps_the_champion():
    assert decide_promotion(0.810, 0.810, 0.70, 0.005).alias == CHALLENGER
    assert decide_promotion(0.814, 0.810, 0.70, 0.005).alias == CHALLENGER


def test_first_version_must_beat_the_baseline():
    assert decide_promotion(0.80, None, 0.70, 0.005).alias == CHAMPION
    assert decide_promotion(0.702, None, 0.70, 0.005).alias == CHALLENGER
    assert decide_promotion(0.60, None, 0.70, 0.005).alias == CHALLENGER


def test_first_version_baseline_margin_can_differ_from_the_champion_margin():
    """A candidate chosen for scoring above BG/NBD needs no extra margin over it."""
    assert decide_promotion(0.702, None, 0.70, 0.005, baseline_margin=0.0).alias == CHAMPION
    assert decide_promotion(0.699, None, 0.70, 0.005, baseline_margin=0.0).alias == CHALLENGER


def test_the_churn_candidate_is_the_best_on_the_holdout_and_bgnbd_wins_ties():
    from ml.train import choose_churn_candidate

    metrics = {"boosted_roc_auc": 0.72, "logistic_roc_auc": 0.73, "btyd_roc_auc": 0.71}
    assert choose_churn_candidate(metrics)[0] == "logistic"
    assert choose_churn_candidate({**metrics, "btyd_roc_auc": 0.73})[0] == "btyd"


def _registry(tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("CX_MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("approval")
    return mlflow.MlflowClient(tracking_uri=uri)


def _register(client, candidate, champion, approval_required):
    import mlflow
    from sklearn.dummy import DummyClassifier

    from ml.registry import register_and_promote

    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="model")
        mlflow.log_text(f"# Model card: cx_test\n\nroc_auc {candidate}\n", "model_card.md")
        return register_and_promote(
            client,
            "cx_test",
            info.model_uri,
            run.info.run_id,
            candidate,
            0.5,
            champion,
            metric="roc_auc",
            approval_required=approval_required,
        )


def test_a_new_champion_waits_for_approval_and_an_answer_settles_it(tmp_path, monkeypatch):
    """Required approval: a version the gate would promote stays challenger (tag pending);
    Approve moves champion to it; Reject by a person or the timeout's default keeps the
    champion and says why on the version's tags."""
    from pipeline.model_tasks import settle_approval

    client = _registry(tmp_path, monkeypatch)
    first, decision = _register(client, 0.8, None, approval_required=False)
    assert decision.alias == CHAMPION and not decision.pending

    second, decision = _register(client, 0.9, 0.8, approval_required=True)
    assert decision.alias == CHALLENGER and decision.pending
    assert "waits for a person's approval" in decision.reason
    assert str(client.get_model_version_by_alias("cx_test", CHAMPION).version) == first
    assert client.get_model_version("cx_test", second).tags["approval"] == "pending"

    def summary(version):
        pending = {"version": version, "pending": True, "reason": "gate"}
        return {"churn": pending, "segment": {"pending": False}}

    from pipeline import model_tasks

    monkeypatch.setitem(model_tasks.MODEL_NAMES, "churn", "cx_test")
    # What the person sees: the gate's reason, the run and the model card itself.
    run_id = client.get_model_version("cx_test", second).run_id
    waiting = {**summary(second), "churn": {**summary(second)["churn"], "run_id": run_id}}
    waiting["churn"]["roc_auc"] = 0.9
    request = model_tasks.approval_request(waiting, client.tracking_uri)
    assert request["subject"] == f"Approve the new champion: cx_test version {second}"
    assert "# Model card: cx_test\n\nroc_auc 0.9" in request["body"]
    assert f"run {run_id} in sqlite:///" in request["body"]
    assert "| roc_auc | 0.9 |" in request["body"]
    assert (
        model_tasks.approval_request(summary(second) | {"churn": {"pending": False}}, "x") is None
    )
    settled = settle_approval(
        summary(second), {"chosen_options": ["Reject"], "responded_by_user": {"id": "ana"}}
    )
    assert settled == {"churn": "rejected by ana: the champion stays"}
    assert str(client.get_model_version_by_alias("cx_test", CHAMPION).version) == first
    tags = client.get_model_version("cx_test", second).tags
    assert tags["approval"] == "rejected" and tags["promotion_reason"].startswith("rejected by ana")

    third, _ = _register(client, 0.9, 0.8, approval_required=True)
    settle_approval(summary(third), {"chosen_options": ["Reject"], "responded_by_user": None})
    assert client.get_model_version("cx_test", third).tags["approval"] == "timed_out"
    assert str(client.get_model_version_by_alias("cx_test", CHAMPION).version) == first

    fourth, _ = _register(client, 0.9, 0.8, approval_required=True)
    approver = {"id": "1", "name": "bo"}
    settle_approval(summary(fourth), {"chosen_options": ["Approve"], "responded_by_user": approver})
    assert str(client.get_model_version_by_alias("cx_test", CHAMPION).version) == fourth
    tags = client.get_model_version("cx_test", fourth).tags
    assert tags["approval"] == "approved" and tags["approved_by"] == "bo"
