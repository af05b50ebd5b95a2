"""Batch scoring: every active member from customer_360 with the two champion models.

Loads ``models:/cx_churn@champion`` and ``models:/cx_segment@champion`` (never a version number,
so promotion is the only way to change what marketers see), checks the input against each model's
logged signature, validates the features, and writes ``ml_scores`` keyed by member, score date and
model version (a rerun replaces its own rows). Drift and segment transitions are recorded in the
same short write.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml import features, monitor, reasons, validate
from ml.train import CHURN_MODEL, SEGMENT_MODEL, quiet_skops

RISK_HIGH = 0.5
RISK_MEDIUM = 0.25
ACTIVE_DAYS = 180


class SignatureError(ValueError):
    """The scoring frame does not match the model's logged signature; names the column."""


@dataclass(frozen=True)
class Champion:
    """A loaded champion with what scoring needs to know about it."""

    name: str
    model: object
    version: str
    run_id: str
    signature_inputs: dict[str, str]


_NUMERIC_KINDS = {"double": "f", "float": "f", "long": "iu", "integer": "iu", "boolean": "b"}


def enforce_signature(frame: pd.DataFrame, inputs: dict[str, str], model_name: str) -> None:
    """Raise ``SignatureError`` for the first column the model expects that is absent or whose
    type cannot be safely used as the logged type (ints may stand in for doubles)."""
    for column, expected in inputs.items():
        if column not in frame.columns:
            raise SignatureError(
                f"{model_name}: input column {column!r} is missing "
                f"(the model's signature expects {expected})"
            )
        kind = frame[column].dtype.kind
        allowed = _NUMERIC_KINDS.get(expected, "")
        if expected in ("double", "float"):
            allowed += "iu"
        if allowed and kind not in allowed:
            raise SignatureError(
                f"{model_name}: input column {column!r} has type "
                f"{frame[column].dtype}, the model's signature expects {expected}"
            )


def load_champion(name: str) -> Champion:
    """Load ``models:/<name>@champion`` with its version, run and signature."""
    import mlflow
    from mlflow.models import get_model_info

    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias(name, "champion")
    uri = f"models:/{name}@champion"
    info = get_model_info(uri)
    inputs = {spec.name: str(spec.type) for spec in info.signature.inputs.inputs}
    inputs = {k: v.split(".")[-1].lower() for k, v in inputs.items()}
    with quiet_skops():
        model = mlflow.sklearn.load_model(uri)
    return Champion(name, model, str(version.version), str(version.run_id), inputs)


def risk_band(
    probability: np.ndarray, high: float = RISK_HIGH, medium: float = RISK_MEDIUM
) -> np.ndarray:
    """high / medium / low by fixed, configurable thresholds on the calibrated probability."""
    return np.where(probability >= high, "high", np.where(probability >= medium, "medium", "low"))


def _model_input(frame: pd.DataFrame, builder, champion: Champion) -> pd.DataFrame:
    try:
        built = builder(frame)
    except features.FeatureColumnError as error:
        raise SignatureError(f"{champion.name}: {error}") from None
    enforce_signature(built, champion.signature_inputs, champion.name)
    return built[list(champion.signature_inputs)]


def score_frame(
    members: pd.DataFrame,
    churn: Champion,
    segment: Champion,
    importance: pd.DataFrame | None = None,
    high: float = RISK_HIGH,
    medium: float = RISK_MEDIUM,
) -> pd.DataFrame:
    """Scores for ``members`` (customer_360 rows): pure apart from calling the models."""
    x_churn = _model_input(members, features.churn_model_frame, churn)
    x_segment = _model_input(members, features.segment_model_frame, segment)
    probability = churn.model.predict_proba(x_churn)[:, 1]
    segment_proba = segment.model.predict_proba(x_segment)
    classes = np.asarray(segment.model.classes_, dtype=object)
    top_reasons = reasons.top_reasons(x_churn, importance, k=3)
    return pd.DataFrame(
        {
            "member_id": members["member_id"].to_numpy(),
            "churn_probability": probability,
            # Outside the training population (no purchase in 180 days): already lapsed, the
            # probability is an extrapolation and programs should treat them as win-back.
            "is_lapsed": ~(x_churn["days_since_last_transaction"] <= ACTIVE_DAYS).to_numpy(),
            "risk_band": risk_band(probability, high, medium),
            "predicted_segment": classes[segment_proba.argmax(axis=1)],
            "segment_probability": segment_proba.max(axis=1),
            "reason_1": top_reasons[:, 0],
            "reason_2": top_reasons[:, 1],
            "reason_3": top_reasons[:, 2],
        }
    )


def read_active_members(duckdb_path: Path) -> pd.DataFrame:
    """customer_360 rows of members whose account is open (read-only, connection closed)."""
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        return con.execute(
            "select * from customer_360 where not coalesce(is_closed, false) order by member_id"
        ).fetchdf()


def _run_artifact(run_id: str, path: str) -> Path | None:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, dst_path=tempfile.mkdtemp(prefix="cx-ml-")
            )
        )
    except (MlflowException, OSError):
        return None


def write_scores(
    duckdb_path: Path, scores: pd.DataFrame, drift_rows: pd.DataFrame | None
) -> dict[str, int]:
    """One short write transaction: ml_scores (replace this date+version), drift, transitions."""
    import duckdb
    import pyarrow as pa

    score_date = scores["score_date"].iloc[0]
    model_version = scores["model_version"].iloc[0]
    with duckdb.connect(str(duckdb_path)) as con:
        con.execute("begin transaction")
        con.execute(
            "create table if not exists ml_scores (member_id varchar, score_date date, "
            "model_version varchar, churn_model_version varchar, segment_model_version varchar, "
            "churn_probability double, is_lapsed boolean, risk_band varchar, predicted_segment varchar, "
            "segment_probability double, reason_1 varchar, reason_2 varchar, reason_3 varchar)"
        )
        con.execute(
            "delete from ml_scores where score_date = ? and model_version = ?",
            [score_date, model_version],
        )
        # As Arrow: DuckDB reads pandas' object columns (the reasons) a Python object at a time.
        con.register("score_rows", pa.Table.from_pandas(scores, preserve_index=False))
        con.execute(
            "insert into ml_scores select member_id, cast(score_date as date), model_version, "
            "churn_model_version, segment_model_version, churn_probability, is_lapsed, risk_band, "
            "predicted_segment, segment_probability, reason_1, reason_2, reason_3 "
            "from score_rows"
        )
        con.unregister("score_rows")
        previous = con.execute(
            "select member_id, predicted_segment from ml_scores where score_date = "
            "(select max(score_date) from ml_scores where score_date < ?) "
            "qualify row_number() over (partition by member_id order by model_version desc) = 1",
            [score_date],
        ).fetchdf()
        transitions = monitor.segment_transitions(previous, scores)
        counts = {
            "scores": len(scores),
            "transitions": monitor.record_transitions(con, transitions, score_date),
        }
        if drift_rows is not None:
            counts["monitoring"] = monitor.record(con, drift_rows, score_date, model_version)
        con.execute("commit")
    return counts


def score(
    duckdb_path: Path, tracking_uri: str, high: float = RISK_HIGH, medium: float = RISK_MEDIUM
) -> dict:
    """Score every active member and write the results; returns a summary for the log."""
    import mlflow

    started = time.perf_counter()
    mlflow.set_tracking_uri(tracking_uri)
    churn = load_champion(CHURN_MODEL)
    segment = load_champion(SEGMENT_MODEL)
    members = read_active_members(duckdb_path)
    if members.empty:
        raise ValueError(f"customer_360 in {duckdb_path} has no open member to score")
    try:
        raw = features.to_model_frame(members, features.FEATURE_COLUMNS)
    except features.FeatureColumnError as error:
        raise SignatureError(str(error)) from None
    validate.validate_features(raw, features.FEATURE_COLUMNS, "scoring")
    importance_path = _run_artifact(churn.run_id, "permutation_importance.csv")
    importance = pd.read_csv(importance_path) if importance_path else None
    scores = score_frame(members, churn, segment, importance, high, medium)
    score_date = pd.to_datetime(members["as_of_date"]).max().date()
    model_version = f"{CHURN_MODEL}/{churn.version}+{SEGMENT_MODEL}/{segment.version}"
    scores.insert(1, "score_date", score_date)
    scores.insert(2, "model_version", model_version)
    scores.insert(3, "churn_model_version", churn.version)
    scores.insert(4, "segment_model_version", segment.version)
    reference_path = _run_artifact(churn.run_id, "reference.json")
    drift_rows = None
    if reference_path:
        # Training rows are members with a purchase in the 180 days before the cutoff; drift is
        # measured on the same population, or lapsed members would read as drift every day.
        in_domain = ~scores["is_lapsed"].to_numpy()
        drift_rows = monitor.drift(
            json.loads(reference_path.read_text()),
            features.churn_model_frame(members[in_domain]),
            scores.loc[in_domain, "churn_probability"],
        )
    counts = write_scores(duckdb_path, scores, drift_rows)
    return {
        "score_date": str(score_date),
        "model_version": model_version,
        **counts,
        "risk_bands": scores["risk_band"].value_counts().to_dict(),
        "segments": scores["predicted_segment"].value_counts().to_dict(),
        "seconds": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m ml score [--high 0.5] [--medium 0.25]``."""
    from config import load_settings

    parser = argparse.ArgumentParser(prog="python -m ml score", description=__doc__)
    parser.add_argument("--high", type=float, default=RISK_HIGH)
    parser.add_argument("--medium", type=float, default=RISK_MEDIUM)
    args = parser.parse_args(argv)
    settings = load_settings()
    summary = score(settings.duckdb_path, settings.mlflow_tracking_uri, args.high, args.medium)
    print(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
