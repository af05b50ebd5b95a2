"""Evaluation against thresholds and baselines, and the answer-file ceiling on the sample.

Churn: ranking (ROC AUC, PR AUC), what a campaign gets from the top decile (lift and capture),
and whether probabilities mean what they say (Brier, calibration plot). Segment: macro-F1 and a
confusion matrix against the survey-derived label. Permutation importance says which features
the model leans on, model-agnostically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)


def churn_metrics(y_true: Sequence[bool], scores: Sequence[float], prefix: str = "") -> dict:
    """ROC AUC, PR AUC, top-decile lift and capture, Brier (Brier only for probabilities)."""
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(scores, dtype=float)
    base_rate = float(y.mean())
    top_n = max(1, int(np.ceil(len(y) * 0.1)))
    # A stable sort on -score so ties keep row order and results are reproducible.
    top = np.argsort(-s, kind="stable")[:top_n]
    top_rate = float(y[top].mean())
    out = {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "top_decile_lift": top_rate / base_rate if base_rate > 0 else float("nan"),
        "top_decile_capture": float(y[top].sum() / y.sum()) if y.sum() else float("nan"),
        "base_rate": base_rate,
        "n": int(len(y)),
    }
    if np.all((s >= 0) & (s <= 1)):
        out["brier"] = float(brier_score_loss(y, s))
    return {f"{prefix}{key}": value for key, value in out.items()}


def segment_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], prefix: str = ""
) -> tuple[dict, pd.DataFrame]:
    """Macro-F1 and accuracy, plus the confusion matrix (rows true, columns predicted)."""
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    metrics = {
        f"{prefix}macro_f1": float(
            f1_score(y_true, y_pred, labels=list(labels), average="macro", zero_division=0)
        ),
        f"{prefix}accuracy": float(np.mean(y_true == y_pred)),
        f"{prefix}n": int(len(y_true)),
    }
    matrix = pd.DataFrame(
        confusion_matrix(y_true, y_pred, labels=list(labels)),
        index=[f"true_{label}" for label in labels],
        columns=[f"pred_{label}" for label in labels],
    )
    return metrics, matrix


def importances(
    model,
    features: pd.DataFrame,
    target: Sequence,
    scoring: str,
    seed: int,
    n_repeats: int = 3,
    direction_scores: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Permutation importance on held-out rows, largest first, with the direction of effect.

    ``direction`` (when ``direction_scores`` is given) is +1 when higher values of the feature go
    with a higher model score (Spearman sign on the evaluated rows); the reason codes use it to
    know which side of the median raises risk.
    """
    result = permutation_importance(
        model,
        features,
        target,
        scoring=scoring,
        n_repeats=n_repeats,
        random_state=seed,
        n_jobs=1,
    )
    frame = pd.DataFrame(
        {
            "feature": features.columns,
            "importance": result.importances_mean,
            "importance_std": result.importances_std,
        }
    )
    if direction_scores is not None:
        ranked = features.rank()
        score_rank = pd.Series(np.asarray(direction_scores, float), index=features.index).rank()
        frame["direction"] = [
            float(np.sign(ranked[c].corr(score_rank))) if ranked[c].notna().sum() > 2 else 0.0
            for c in features.columns
        ]
        frame["direction"] = frame["direction"].fillna(0.0)
    return frame.sort_values("importance", ascending=False, ignore_index=True)


def churn_ceiling(
    answers_path: Path,
    holdout: pd.DataFrame,
    prefix: str = "ceiling_",
    scores: Sequence[float] | None = None,
) -> dict | None:
    """The generator's true churn probabilities on the same holdout rows, when the file exists.

    Only the evaluation report reads the answer file; it is the best any model could do, but not
    from the same information: a true probability of exactly 1 means the simulation had already
    ended the relationship before the cutoff, an event the sources do not record (the member just
    goes quiet). ``already_left_share`` is the share of churners in that case; with the model's
    ``scores``, both AUCs are also given for the members the simulation still had active
    (``still_active_roc_auc`` unprefixed, the model's), where the ceiling's edge is knowing
    engagement, purchase rate and recent moments exactly.
    """
    if not Path(answers_path).exists():
        return None
    answers = pd.read_parquet(answers_path)
    answers["cutoff_date"] = pd.to_datetime(answers["cutoff_date"]).dt.date
    frame = holdout[["member_id", "cutoff_date", "churned"]].copy()
    frame["model_score"] = np.nan if scores is None else np.asarray(scores, dtype=float)
    merged = frame.merge(
        answers[["member_id", "cutoff_date", "true_churn_probability"]],
        on=["member_id", "cutoff_date"],
        how="inner",
    )
    if merged.empty or merged["churned"].nunique() < 2:
        return None
    out = churn_metrics(merged["churned"], merged["true_churn_probability"], prefix)
    out[f"{prefix}coverage"] = len(merged) / len(holdout)
    churned = merged["churned"].astype(bool)
    left = merged["true_churn_probability"] >= 1.0
    out[f"{prefix}already_left_share"] = float(left[churned].mean())
    still_active = merged[~left]
    if scores is not None and still_active["churned"].nunique() == 2:
        y = still_active["churned"].astype(bool)
        out[f"{prefix}still_active_roc_auc"] = float(
            roc_auc_score(y, still_active["true_churn_probability"])
        )
        out["still_active_roc_auc"] = float(roc_auc_score(y, still_active["model_score"]))
    return out


def true_segment_agreement(
    answers_path: Path, members: pd.DataFrame, predicted: Sequence[str], labels: Sequence[str]
) -> dict | None:
    """Macro-F1 of predictions against the answer file's true segments (sample only)."""
    if not Path(answers_path).exists():
        return None
    answers = pd.read_parquet(answers_path)
    answers["cutoff_date"] = pd.to_datetime(answers["cutoff_date"]).dt.date
    frame = members[["member_id", "cutoff_date"]].assign(predicted=list(predicted))
    merged = frame.merge(answers, on=["member_id", "cutoff_date"], how="inner")
    if merged.empty:
        return None
    metrics, _ = segment_metrics(merged["true_segment"], merged["predicted"], labels, "truth_")
    return metrics


def calibration_figure(y_true: Sequence[bool], probabilities: Sequence[float], path: Path) -> Path:
    """Reliability diagram: mean predicted vs observed churn per decile of prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame({"y": np.asarray(y_true, float), "p": np.asarray(probabilities, float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), 10, labels=False)
    table = frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"))
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.plot(table["predicted"], table["observed"], marker="o", label="model")
    ax.set_xlabel("predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.set_title("Calibration on the holdout (deciles)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def scorer_for(metric: str) -> Callable[[Sequence, Sequence], float]:
    """The promotion metric as a function of (truth, model output)."""
    if metric == "roc_auc":
        return lambda y, s: float(roc_auc_score(np.asarray(y, bool), s))
    if metric == "macro_f1":
        return lambda y, s: float(f1_score(y, s, average="macro", zero_division=0))
    raise ValueError(f"unknown promotion metric {metric!r}")


def report_markdown(title: str, sections: dict[str, object]) -> str:
    """A plain markdown report: one heading per section, dicts as tables, frames as tables."""
    lines = [f"# {title}", ""]
    for heading, body in sections.items():
        lines += [f"## {heading}", ""]
        if isinstance(body, pd.DataFrame):
            lines.append(body.to_markdown() if _has_tabulate() else body.to_string())
        elif isinstance(body, dict):
            lines += ["| item | value |", "| --- | --- |"]
            for key, value in body.items():
                shown = f"{value:.4f}" if isinstance(value, float) else str(value)
                lines.append(f"| {key} | {shown} |")
        else:
            lines.append(str(body))
        lines.append("")
    return "\n".join(lines)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
