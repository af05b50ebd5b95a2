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
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml import features, labels, monitor, reasons, validate
from ml import pipeline as pipelines
from ml.train import CHURN_MODEL, SEGMENT_MODEL, quiet_skops

if TYPE_CHECKING:
    from warehouse.store import Store

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
    # The churn model's training population: members with a purchase in this many days.
    activity_days: int = ACTIVE_DAYS


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
    params = client.get_run(version.run_id).data.params
    activity = int(params.get("activity_days", ACTIVE_DAYS))
    return Champion(name, model, str(version.version), str(version.run_id), inputs, activity)


def has_champion(name: str) -> bool:
    """Whether ``name`` has a ``champion`` alias in the registry."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        mlflow.MlflowClient().get_model_version_by_alias(name, "champion")
    except MlflowException:
        return False
    return True


def risk_band(
    probability: np.ndarray, high: float = RISK_HIGH, medium: float = RISK_MEDIUM
) -> np.ndarray:
    """high / medium / low by fixed, configurable thresholds on the calibrated probability."""
    return np.where(probability >= high, "high", np.where(probability >= medium, "medium", "low"))


def _check_input(members: pd.DataFrame, champion: Champion) -> None:
    """The rows carry every column the champion reads, with a type it can take."""
    enforce_signature(members, champion.signature_inputs, champion.name)
    try:
        features.to_model_frame(members, list(champion.signature_inputs))
    except features.FeatureColumnError as error:
        raise SignatureError(f"{champion.name}: {error}") from None


# In ml_scores when there is no segment model, and in the scoring summary.
NO_SEGMENT_MODEL = (
    "no segment model: this deployment has no labelled survey respondents to learn engagement "
    "segments from (see the cx_segment run in MLflow for the reason)"
)


def score_frame(
    members: pd.DataFrame,
    churn: Champion,
    segment: Champion | None,
    importance: pd.DataFrame | None = None,
    high: float = RISK_HIGH,
    medium: float = RISK_MEDIUM,
) -> pd.DataFrame:
    """Scores for ``members`` (customer_360 rows): pure apart from calling the models.

    Each champion is a whole pipeline from warehouse columns to probabilities. Without a segment
    champion, ``predicted_segment`` and ``segment_probability`` are null.
    """
    _check_input(members, churn)
    probability = churn.model.predict_proba(members)[:, 1]
    x_churn = pipelines.model_frame(churn.model, members)
    if segment is not None:
        _check_input(members, segment)
        segment_proba = segment.model.predict_proba(members)
        classes = np.asarray(segment.model.classes_, dtype=object)
        predicted = classes[segment_proba.argmax(axis=1)]
        segment_probability = segment_proba.max(axis=1)
    else:
        predicted = np.full(len(members), None, dtype=object)
        segment_probability = np.full(len(members), np.nan)
    # As float: DuckDB returns a nullable BIGINT as Int64, whose comparisons give <NA>, not False.
    days = pd.to_numeric(members["days_since_last_transaction"], errors="coerce").astype("float64")
    top_reasons = reasons.top_reasons(x_churn, importance, k=3)
    return pd.DataFrame(
        {
            "member_id": members["member_id"].to_numpy(),
            "churn_probability": probability,
            # Outside the training population (no purchase in its activity window, 180 days
            # unless the history was short): already lapsed, the probability is an
            # extrapolation and programs should treat them as win-back.
            "is_lapsed": ~(days <= churn.activity_days).to_numpy(dtype=bool),
            "risk_band": risk_band(probability, high, medium),
            "predicted_segment": predicted,
            "segment_probability": segment_probability,
            "reason_1": top_reasons[:, 0],
            "reason_2": top_reasons[:, 1],
            "reason_3": top_reasons[:, 2],
        }
    )


def read_responses(store: Store) -> pd.DataFrame:
    """Survey answers the segment label is read from (``labels.segment_labels``' input)."""
    items = ", ".join(labels.EMOTION_ITEMS)
    return features._naive(
        store.read(
            "select member_id, submitted_at, survey_type, nps_score, "
            f"{items} from fct_survey_responses where member_id is not null"
        )
    )


def measured_segments(responses: pd.DataFrame, score_date) -> pd.Series:
    """Each respondent's *measured* segment on ``score_date``: the label rule over their latest
    relationship survey in the year up to and including that day, indexed by member. Kept
    beside the predicted one, so a respondent's own answer is never overwritten by a guess."""
    cutoff = pd.Timestamp(score_date).date() + timedelta(days=1)
    measured = labels.segment_labels(responses, [cutoff])
    return measured.set_index("member_id")["segment"]


def read_active_members(store: Store) -> pd.DataFrame:
    """customer_360 rows of members whose account is open, through ``store``."""
    return store.read(
        "select * from customer_360 where not coalesce(is_closed, false) order by member_id"
    )


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


# The models' tables as scoring writes them (portable types, see warehouse/store.py): a
# column added here is added to an existing table, null in its earlier rows.
SCORE_COLUMNS = {
    "member_id": "varchar",
    "score_date": "date",
    "model_version": "varchar",
    "churn_model_version": "varchar",
    "segment_model_version": "varchar",
    "churn_probability": "double",
    "is_lapsed": "boolean",
    "risk_band": "varchar",
    "predicted_segment": "varchar",
    "segment_probability": "double",
    "measured_segment": "varchar",
    "reason_1": "varchar",
    "reason_2": "varchar",
    "reason_3": "varchar",
}


def write_scores(
    store: Store, scores: pd.DataFrame, drift_rows: pd.DataFrame | None
) -> dict[str, int]:
    """One write transaction as the models' owner: ml_scores (replace this date and version),
    drift and segment transitions, committed together or not at all."""
    score_date = pd.Timestamp(scores["score_date"].iloc[0]).date()
    model_version = scores["model_version"].iloc[0]
    with store.writer("models") as writer:
        writer.ensure("ml_scores", SCORE_COLUMNS)
        writer.replace(
            "ml_scores",
            scores[list(SCORE_COLUMNS)],
            {"score_date": score_date, "model_version": model_version},
        )
        previous = writer.read(
            "select member_id, predicted_segment from ml_scores where score_date = "
            "(select max(score_date) from ml_scores where score_date < $1) "
            "qualify row_number() over (partition by member_id order by model_version desc) = 1",
            [score_date],
        )
        transitions = monitor.segment_transitions(previous, scores)
        counts = {
            "scores": len(scores),
            "transitions": monitor.record_transitions(writer, transitions, score_date),
        }
        if drift_rows is not None:
            counts["monitoring"] = monitor.record(writer, drift_rows, score_date, model_version)
    return counts


def score(
    store: Store, tracking_uri: str, high: float = RISK_HIGH, medium: float = RISK_MEDIUM
) -> dict:
    """Score every active member read through ``store`` (a ``warehouse.store.Store``) and write
    the results through its ``models`` writer; returns a summary for the log."""
    import mlflow

    started = time.perf_counter()
    mlflow.set_tracking_uri(tracking_uri)
    churn = load_champion(CHURN_MODEL)
    segment = load_champion(SEGMENT_MODEL) if has_champion(SEGMENT_MODEL) else None
    members = read_active_members(store)
    if members.empty:
        raise ValueError(
            f"customer_360 in the {store.target} warehouse has no open member to score"
        )
    # Every column a champion reads, validated: one it was trained on that went null fails here.
    columns = list(
        dict.fromkeys([*churn.signature_inputs, *(segment.signature_inputs if segment else [])])
    )
    try:
        raw = features.to_model_frame(members, columns)
    except features.FeatureColumnError as error:
        raise SignatureError(str(error)) from None
    validate.validate_features(raw, columns, "scoring")
    importance_path = _run_artifact(churn.run_id, "permutation_importance.csv")
    importance = pd.read_csv(importance_path) if importance_path else None
    scores = score_frame(members, churn, segment, importance, high, medium)
    score_date = pd.to_datetime(members["as_of_date"]).max().date()
    model_version = f"{CHURN_MODEL}/{churn.version}" + (
        f"+{SEGMENT_MODEL}/{segment.version}" if segment else ""
    )
    scores.insert(
        scores.columns.get_loc("segment_probability") + 1,
        "measured_segment",
        scores["member_id"].map(measured_segments(read_responses(store), score_date)),
    )
    scores.insert(1, "score_date", score_date)
    scores.insert(2, "model_version", model_version)
    scores.insert(3, "churn_model_version", churn.version)
    scores.insert(4, "segment_model_version", segment.version if segment else None)
    reference_path = _run_artifact(churn.run_id, "reference.json")
    drift_rows = None
    if reference_path:
        # Training rows are members with a purchase in the 180 days before the cutoff; drift is
        # measured on the same population, or lapsed members would read as drift every day.
        in_domain = ~scores["is_lapsed"].to_numpy()
        drift_rows = monitor.drift(
            json.loads(reference_path.read_text()),
            pipelines.model_frame(churn.model, members[in_domain]),
            scores.loc[in_domain, "churn_probability"],
        )
    counts = write_scores(store, scores, drift_rows)
    return {
        "score_date": str(score_date),
        "model_version": model_version,
        **counts,
        "risk_bands": scores["risk_band"].value_counts().to_dict(),
        "segments": scores["predicted_segment"].value_counts().to_dict()
        if segment
        else NO_SEGMENT_MODEL,
        "seconds": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m ml score [--high 0.5] [--medium 0.25]``."""
    from config import load_settings

    parser = argparse.ArgumentParser(prog="python -m ml score", description=__doc__)
    parser.add_argument("--high", type=float, default=RISK_HIGH)
    parser.add_argument("--medium", type=float, default=RISK_MEDIUM)
    args = parser.parse_args(argv)
    from warehouse.store import open_store

    settings = load_settings()
    summary = score(open_store(settings), settings.mlflow_tracking_uri, args.high, args.medium)
    print(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
