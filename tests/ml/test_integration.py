"""Train, register, promote and score end to end on the simulated program, with a real MLflow
SQLite store and a real DuckDB file under tmp_path."""

from __future__ import annotations

from dataclasses import replace

import duckdb
import mlflow
import numpy as np
import pytest

from ml import score as scoring
from ml import train as training
from ml import validate

pytestmark = pytest.mark.integration


def _warehouse(path, current):
    with duckdb.connect(str(path)) as con:
        con.register("frame", current)
        con.execute("create table customer_360 as select * from frame")


def test_train_register_score_end_to_end(synthetic, tmp_path):
    data, current = synthetic
    db = tmp_path / "cx.duckdb"
    _warehouse(db, current)
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    training.ensure_store(uri)
    config = training.TrainConfig(
        duckdb_path=db,
        tracking_uri=uri,
        n_train_cutoffs=3,
        seed=3,
        git_commit="abc123",
        dag_run_id="manual__1",
    )
    first = training.train(config, data=data)
    assert first["churn"]["version"] == "1" and first["segment"]["version"] == "1"
    # The simulated program has a real signal, so the first versions beat their baselines.
    assert first["churn"]["alias"] == "champion"
    assert first["segment"]["alias"] == "champion"

    client = mlflow.MlflowClient()
    run = client.get_run(first["churn"]["run_id"])
    assert run.data.tags["git_commit"] == "abc123"
    assert run.data.tags["dag_run_id"] == "manual__1"
    assert {
        "roc_auc",
        "recency_rule_roc_auc",
        "bgnbd_roc_auc",
        "boosted_roc_auc",
        "logistic_roc_auc",
        "btyd_roc_auc",
        "brier",
    } <= set(run.data.metrics)
    assert run.data.params["candidate"] in ("boosted", "logistic", "btyd")
    assert first["churn"]["metrics"]["roc_auc"] >= max(
        first["churn"]["metrics"]["bgnbd_roc_auc"],
        first["churn"]["metrics"]["recency_rule_roc_auc"],
    )
    # The synthetic channel shares are one value for everyone: left out, and recorded so.
    assert "store_share_365d" in run.data.params["features_left_out"]
    card = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/model_card.md")
    assert "store_share_365d (the same value (0.6) in every training row)" in card
    assert "Windows chosen from the history" in card
    signature = mlflow.models.get_model_info(f"runs:/{run.info.run_id}/model").signature
    assert "store_share_365d" not in signature.inputs.input_names()
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {
        "model_card.md",
        "calibration.png",
        "evaluation_report.md",
        "reference.json",
        "permutation_importance.csv",
    } <= artifacts

    # A feature the champion was trained on that has no data now fails training, naming it.
    gone = replace(data, pit=data.pit.assign(latest_nps_score=np.nan))
    with pytest.raises(validate.FeatureValidationError, match="latest_nps_score"):
        training.train(config, data=gone)

    # Same data, same seed: a tie, so the new version waits as challenger.
    second = training.train(config, data=data)
    assert second["churn"]["alias"] == "challenger"
    assert str(client.get_model_version_by_alias("cx_churn", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("cx_churn", "challenger").version) == "2"

    summary = scoring.score(db, uri)
    open_members = int((~current["is_closed"]).sum())
    assert summary["scores"] == open_members
    assert summary["model_version"] == "cx_churn/1+cx_segment/1"
    scoring.score(db, uri)  # a rerun replaces its own rows
    with duckdb.connect(str(db), read_only=True) as con:
        rows, members = con.execute(
            "select count(*), count(distinct member_id) from ml_scores"
        ).fetchone()
        monitored = con.execute("select count(*) from ml_monitoring").fetchone()[0]
    assert rows == members == open_members
    assert monitored > 0

    # A data scientist with only MLflow and the warehouse: the registered champion scores
    # customer_360 rows as the warehouse returns them, to the probabilities scoring wrote.
    model = mlflow.pyfunc.load_model("models:/cx_churn@champion")
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select * from customer_360 where not is_closed order by member_id"
        ).fetchdf()
        written = con.execute(
            "select churn_probability from ml_scores order by member_id"
        ).fetchnumpy()["churn_probability"]
    probabilities = np.asarray(model.predict(rows))
    assert probabilities.shape == (len(rows), 2)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert np.allclose(probabilities[:, 1], written)
    signature = model.metadata.get_input_schema().input_names()
    assert "member_id" not in signature and "days_since_last_transaction" in signature

    # A month later with half the members gone quiet: transitions are exactly the changes.
    with duckdb.connect(str(db)) as con:
        con.execute(
            "update customer_360 set as_of_date = as_of_date + interval 30 day, "
            "transactions_30d = 0, transactions_90d = 0, spend_30d = 0, spend_90d = 0, "
            "days_since_last_transaction = days_since_last_transaction + 30 "
            "where member_id < 'M0000200'"
        )
        con.execute(
            "update customer_360 set as_of_date = as_of_date + interval 30 day "
            "where member_id >= 'M0000200'"
        )
    scoring.score(db, uri)
    with duckdb.connect(str(db), read_only=True) as con:
        changed = con.execute(
            "select count(*) from ml_scores as before_ inner join ml_scores as after_ "
            "using (member_id) where before_.score_date < after_.score_date "
            "and before_.predicted_segment <> after_.predicted_segment"
        ).fetchone()[0]
        recorded = con.execute("select count(*) from segment_transitions").fetchone()[0]
    assert changed > 0
    assert recorded == changed
