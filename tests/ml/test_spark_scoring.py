"""MLflow's Spark UDF scores a logged pipeline as scikit-learn does (ml/spark_scoring.py), with
the packages pinned here (PySpark 4, pandas 3, MLflow 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.spark


def test_the_spark_udf_gives_sklearns_probabilities(tmp_path):
    pytest.importorskip("pyspark", reason="make install-dev installs pyspark")
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from config import load_settings
    from ml.spark_scoring import score_members
    from warehouse.spark import session

    rng = np.random.default_rng(7)
    rows = pd.DataFrame(
        {
            "member_id": [f"M{i}" for i in range(200)],
            "spend_365d": rng.gamma(2.0, 50.0, 200),
            "transactions_365d": rng.integers(0, 30, 200).astype("int64"),
        }
    )
    label = (rows["transactions_365d"] < 8).astype(int)
    columns = ["spend_365d", "transactions_365d"]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(rows[columns], label)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # An experiment of this store's own: another test may have left its experiment active.
    mlflow.set_experiment("spark-udf")
    try:
        with mlflow.start_run():
            uri = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(rows[columns], model.predict_proba(rows[columns])),
                pyfunc_predict_fn="predict_proba",
            ).model_uri
        # The process's one SparkSession (the warehouse tests' when they ran first).
        spark = session(load_settings({"CX_DATA_DIR": str(tmp_path)}))
        scored = score_members(spark, spark.createDataFrame(rows), uri).toPandas()
    finally:
        mlflow.set_tracking_uri(previous)
    expected = model.predict_proba(rows[columns])[:, 1]
    by_member = scored.set_index("member_id")["churn_probability"].reindex(rows["member_id"])
    np.testing.assert_allclose(by_member.to_numpy(), expected, rtol=1e-9)
    assert len(scored) == 200 and 0 < expected.mean() < 1
