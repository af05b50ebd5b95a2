"""Drift and movement: PSI of features and scores against training, and segment transitions.

PSI (population stability index) compares today's distribution with the training one over the
training deciles; above 0.2 the population has shifted enough that the model's holdout figures
no longer describe today. Segment transitions are the inflection points marketers act on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from warehouse.store import Store, Writer

PSI_THRESHOLD = 0.2
MONITORED_FEATURES: tuple[str, ...] = (
    "days_since_last_transaction",
    "transactions_90d",
    "spend_90d",
    "negative_moments_90d",
    "calls_90d",
    "unresolved_calls_90d",
    "latest_nps_score",
    "tenure_days",
)


def bin_edges(values: Sequence[float], n_bins: int = 10) -> list[float]:
    """Interior quantile edges of the reference (duplicates dropped for lumpy counts)."""
    clean = pd.Series(values, dtype=float).dropna()
    if clean.empty:
        return []
    edges = np.unique(np.quantile(clean, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return [float(e) for e in edges]


def proportions(values: Sequence[float], edges: Sequence[float]) -> list[float]:
    """Share of values per bin, with missing values as their own last bin."""
    series = pd.Series(values, dtype=float)
    counts = np.bincount(
        np.searchsorted(np.asarray(edges), series.dropna().to_numpy(), side="right"),
        minlength=len(edges) + 1,
    ).astype(float)
    counts = np.append(counts, series.isna().sum())
    total = counts.sum()
    return list(counts / total) if total else list(counts)


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = 1e-4) -> float:
    """Population stability index between two binned distributions of the same bins."""
    e = np.clip(np.asarray(expected, float), floor, None)
    a = np.clip(np.asarray(actual, float), floor, None)
    return float(np.sum((a - e) * np.log(a / e)))


def build_reference(
    features: pd.DataFrame, scores: Sequence[float], columns: Sequence[str] = MONITORED_FEATURES
) -> dict:
    """The training distribution of the monitored features and of the score, as JSON-able."""
    reference: dict[str, dict] = {}
    for column in [c for c in columns if c in features.columns]:
        edges = bin_edges(features[column])
        reference[column] = {"edges": edges, "proportions": proportions(features[column], edges)}
    edges = bin_edges(scores)
    reference["score"] = {"edges": edges, "proportions": proportions(scores, edges)}
    return reference


def drift(reference: dict, features: pd.DataFrame, scores: Sequence[float]) -> pd.DataFrame:
    """PSI per monitored feature and for the score, against ``reference``."""
    rows = []
    for name, ref in reference.items():
        values = scores if name == "score" else features.get(name)
        if values is None:
            continue
        value = psi(ref["proportions"], proportions(values, ref["edges"]))
        rows.append({"metric": name, "psi": value, "is_drift": value > PSI_THRESHOLD})
    return pd.DataFrame(rows, columns=["metric", "psi", "is_drift"])


def save_reference(reference: dict, path: Path) -> Path:
    """Write the reference next to the model's run artifacts."""
    Path(path).write_text(json.dumps(reference, indent=1))
    return Path(path)


def segment_transitions(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Members whose predicted segment changed between two score dates.

    Both frames have ``member_id, predicted_segment``; ``current`` also ``score_date``. A
    member without a segment on either date (no segment model then) has no transition.
    """
    merged = previous[["member_id", "predicted_segment"]].merge(
        current[["member_id", "predicted_segment", "score_date"]],
        on="member_id",
        suffixes=("_from", "_to"),
    )
    known = merged["predicted_segment_from"].notna() & merged["predicted_segment_to"].notna()
    changed = merged[known & (merged["predicted_segment_from"] != merged["predicted_segment_to"])]
    return changed.rename(
        columns={"predicted_segment_from": "from_segment", "predicted_segment_to": "to_segment"}
    )[["member_id", "from_segment", "to_segment", "score_date"]].reset_index(drop=True)


MONITORING_COLUMNS = {
    "score_date": "date",
    "model_version": "varchar",
    "metric": "varchar",
    "psi": "double",
    "is_drift": "boolean",
}
TRANSITION_COLUMNS = {
    "member_id": "varchar",
    "from_segment": "varchar",
    "to_segment": "varchar",
    "score_date": "date",
}


def record(writer: Writer, drift_rows: pd.DataFrame, score_date, model_version: str) -> int:
    """Replace this score date's rows in ``ml_monitoring`` through the models' store ``writer``;
    warn for each metric over threshold."""
    writer.ensure("ml_monitoring", MONITORING_COLUMNS)
    for row in drift_rows.itertuples(index=False):
        if row.is_drift:
            print(
                f"warning: PSI of {row.metric} is {row.psi:.3f} (> {PSI_THRESHOLD}) on "
                f"{score_date}: the population has shifted since training"
            )
    frame = drift_rows.assign(score_date=score_date, model_version=model_version)
    return writer.replace(
        "ml_monitoring",
        frame[list(MONITORING_COLUMNS)],
        {"score_date": score_date, "model_version": model_version},
    )


def record_transitions(writer: Writer, transitions: pd.DataFrame, score_date) -> int:
    """Replace this score date's rows in ``segment_transitions`` through the models' store
    ``writer``."""
    writer.ensure("segment_transitions", TRANSITION_COLUMNS)
    frame = transitions.assign(score_date=score_date)[list(TRANSITION_COLUMNS)]
    writer.replace("segment_transitions", frame, {"score_date": score_date})
    return len(transitions)


def latest(store: Store) -> pd.DataFrame:
    """The latest score date's monitoring rows, largest PSI first."""
    return store.read(
        "select * from ml_monitoring where score_date = (select max(score_date) from "
        "ml_monitoring) order by psi desc"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m ml monitor``: print the latest monitoring rows from the warehouse."""
    from config import load_settings
    from warehouse.store import open_store

    print(latest(open_store(load_settings())).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
