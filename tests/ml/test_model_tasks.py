"""The model DAGs' task functions: train and score end to end on each warehouse (DuckDB and
PostgreSQL, through the store the task opens from the settings), what scoring does before any
model is promoted, and which DuckDB file training reads."""

from __future__ import annotations

import pytest
from ml_synthetic import write_warehouse

from config import load_settings
from pipeline import model_tasks
from warehouse.store import open_store


@pytest.fixture
def settings_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CX_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def test_scoring_without_a_champion_fails_naming_the_training_dag(settings_env):
    settings = load_settings()
    assert not model_tasks.has_champions(settings.mlflow_tracking_uri)
    with pytest.raises(model_tasks.NoChampionYet, match="trigger the train_models DAG"):
        model_tasks.score_members()


def test_training_reads_the_published_copy_when_there_is_one(settings_env):
    settings = load_settings()
    assert open_store(settings, snapshot=True).read_path == settings.duckdb_path
    published = settings.duckdb_path.parent / "published" / settings.duckdb_path.name
    published.parent.mkdir(parents=True)
    published.write_bytes(b"")
    assert open_store(settings, snapshot=True).read_path == published
    # Scoring writes, and reads what it just wrote, in the live file.
    assert open_store(settings).read_path == settings.duckdb_path


@pytest.mark.integration
def test_train_and_score_tasks_on_each_warehouse(synthetic, warehouse_env, store):
    """The DAGs' task bodies with nothing but the environment: train_models reads the marts and
    scoring writes the models' three tables to the warehouse CX_WAREHOUSE_TARGET names."""
    data, current = synthetic
    write_warehouse(store, data, current)
    # As `make run` trains: nobody watches, so the gate promotes and nothing waits.
    trained = model_tasks.train_models(train_cutoffs=3, approval="auto")
    assert trained["churn"]["alias"] == trained["segment"]["alias"] == "champion"
    assert trained["approval"] is None
    assert trained["churn"]["roc_auc"] > trained["churn"]["recency_rule_roc_auc"]

    summary = model_tasks.score_members()
    open_members = int((~current["is_closed"]).sum())
    assert summary["scores"] == open_members
    written = store.read(
        "select (select count(distinct member_id) from ml_scores) as scored, "
        "(select count(*) from ml_monitoring) as monitored, "
        "(select count(*) from segment_transitions) as transitions"
    ).iloc[0]
    assert written["scored"] == open_members
    assert written["monitored"] == summary["monitoring"] > 0
    assert written["transitions"] == summary["transitions"] == 0  # a first day has no previous
    if warehouse_env == "duckdb":
        # The analysts' copy holds the new scores; PostgreSQL's analysts read the tables.
        settings = load_settings()
        copy = open_store(settings, snapshot=True)
        assert copy.read_path != settings.duckdb_path
        assert len(copy.read("select member_id from ml_scores")) == open_members
    else:
        assert summary["published"] is None


def test_scoring_after_a_training_that_promoted_nothing_says_why(settings_env):
    """A version that stayed challenger: the message carries its reason, not 'train first'."""
    import mlflow

    from ml.train import CHURN_MODEL

    settings = load_settings()
    client = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    client.create_registered_model(CHURN_MODEL)
    version = client.create_model_version(CHURN_MODEL, source="file:///nowhere")
    client.set_model_version_tag(
        CHURN_MODEL,
        version.version,
        "promotion_reason",
        "no champion yet, but roc_auc 0.6600 does not beat the baseline 0.6940 by 0.0",
    )
    with pytest.raises(model_tasks.NoChampionYet, match="stayed challenger because no champion"):
        model_tasks.score_members()
