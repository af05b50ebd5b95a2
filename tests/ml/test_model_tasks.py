"""The model DAGs' task functions: what scoring does before any model is promoted, and which
warehouse file training reads."""

from __future__ import annotations

import pytest

from config import load_settings
from pipeline import model_tasks


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
    assert model_tasks.warehouse_for_reading(settings) == settings.duckdb_path
    published = settings.duckdb_path.parent / "published" / settings.duckdb_path.name
    published.parent.mkdir(parents=True)
    published.write_bytes(b"")
    assert model_tasks.warehouse_for_reading(settings) == published


def test_training_on_postgres_says_what_to_do(settings_env, monkeypatch):
    monkeypatch.setenv("CX_WAREHOUSE_TARGET", "postgres")
    with pytest.raises(NotImplementedError, match="DuckDB"):
        model_tasks.train_models()


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
