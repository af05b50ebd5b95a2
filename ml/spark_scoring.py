"""Scoring on Spark's executors: ``mlflow.pyfunc.spark_udf`` over a registered model, so on the
Spark warehouse every member is scored where the rows are, in Arrow batches, rather than pulled
into the Airflow worker.

The champions are logged as whole pipelines from warehouse columns to ``predict_proba``
(``ml/train.py``: ``pyfunc_predict_fn="predict_proba"`` and a signature of warehouse columns),
so the UDF takes the signature's columns as one struct and returns each row's class
probabilities. ``env_manager="local"`` uses the installed packages: building a model's own
environment would download them.

Not yet in the pipeline's code path (issue 26, step 4): ``ml/score.py`` still scores a frame read
through the store, and ``CX_WAREHOUSE_TARGET=spark`` is not accepted yet.
"""

from __future__ import annotations


def input_columns(model_uri: str) -> list[str]:
    """The warehouse columns the model's signature reads, in order."""
    from mlflow.models import get_model_info

    signature = get_model_info(model_uri).signature
    if signature is None:
        raise ValueError(f"{model_uri} has no signature: its input columns are unknown")
    return list(signature.inputs.input_names())


def score_members(spark, members, model_uri: str, positive_class_index: int = 1):
    """``member_id`` and ``churn_probability`` (the probability of the class at
    ``positive_class_index``) for every row of the Spark DataFrame ``members``."""
    import mlflow
    from pyspark.sql import functions as F

    columns = input_columns(model_uri)
    predict = mlflow.pyfunc.spark_udf(
        spark, model_uri, result_type="array<double>", env_manager="local"
    )
    probabilities = predict(F.struct(*[F.col(column) for column in columns]))
    return members.select(
        "member_id", probabilities[positive_class_index].alias("churn_probability")
    )
