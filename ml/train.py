"""Training and logging: one MLflow run per model per training, then the promotion gate.

Each run logs the parameters, the data range and cutoffs, holdout metrics for the model and its
baselines (and, on the sample, the answer-file ceiling), a calibration plot, the permutation
importances, the evaluation report, a model card, the training reference distribution for drift
monitoring, and the model itself with signature and a features-only input example.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ml import evaluate, features, labels, monitor, registry, validate
from ml import pipeline as pipelines

CHURN_MODEL = "cx_churn"
SEGMENT_MODEL = "cx_segment"
PIP_REQUIREMENTS = ["scikit-learn==1.9.1", "skops", "pandas", "numpy"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on, from settings and the command line."""

    duckdb_path: Path
    tracking_uri: str
    answers_dir: Path | None = None
    horizon_days: int = 90
    n_train_cutoffs: int = 6
    seed: int = 42
    margin: float = registry.DEFAULT_MARGIN
    dag_run_id: str | None = None
    git_commit: str = "unknown"
    # Bounds that keep a run's cost flat as membership grows: gradient boosting gains little
    # past a few hundred thousand rows, and importances are stable on tens of thousands.
    max_train_rows: int = 250_000
    max_explain_rows: int = 20_000


def git_commit(repo: Path | None = None) -> str:
    """The current commit, or "unknown" outside a git checkout."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@contextmanager
def quiet_skops() -> Iterator[None]:
    """skops looks every loaded module up for the ufuncs it serialises; in an Airflow worker
    that touches Airflow's deprecated aliases and floods the task log with warnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"skops\.")
        yield


def _trusted_types(model) -> list[str]:
    """The types skops must be told to trust: exactly those in the object we just built."""
    import skops.io

    return skops.io.get_untrusted_types(data=skops.io.dumps(model))


def _log_model(model, frame: pd.DataFrame, output) -> str:
    """Log with signature and a features-only input example (no member ids); return its URI."""
    import mlflow
    from mlflow.models import infer_signature

    with quiet_skops():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(frame.head(1000), np.asarray(output)[:1000]),
            input_example=frame.head(5),
            serialization_format="skops",
            skops_trusted_types=_trusted_types(model),
            pip_requirements=PIP_REQUIREMENTS,
        )
    return info.model_uri


def _tags(config: TrainConfig, kind: str) -> dict[str, str]:
    tags = {"git_commit": config.git_commit, "model_kind": kind}
    if config.dag_run_id:
        tags["dag_run_id"] = config.dag_run_id
    return tags


def model_card(
    name: str, purpose: str, data: dict, metrics: dict, decision, limits: list[str]
) -> str:
    """The model card: purpose, data seen, metrics, the promotion decision, known limits."""
    lines = [f"# Model card: {name}", "", "## Purpose", "", purpose, "", "## Data seen", ""]
    lines += [f"- {key}: {value}" for key, value in data.items()]
    lines += ["", "## Holdout metrics", "", "| metric | value |", "| --- | --- |"]
    lines += [
        f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
        for k, v in metrics.items()
    ]
    lines += [
        "",
        "## Promotion",
        "",
        f"{decision.alias}: {decision.reason}",
        "",
        "## Known limits",
        "",
    ]
    lines += [f"- {limit}" for limit in limits]
    return "\n".join(lines) + "\n"


def train_churn(training: features.TrainingData, config: TrainConfig) -> dict:
    """Fit, evaluate, log and gate the churn model (one MLflow run)."""
    import mlflow

    started = time.perf_counter()
    x_train = features.churn_model_frame(training.churn_train)
    y_train = training.churn_train["churned"].to_numpy()
    x_hold = features.churn_model_frame(training.churn_holdout)
    y_hold = training.churn_holdout["churned"].to_numpy()
    model = pipelines.build_churn_model(config.seed).fit(x_train, y_train)
    fit_seconds = time.perf_counter() - started
    probabilities = model.predict_proba(x_hold)[:, 1]
    logistic = pipelines.build_logistic_baseline(config.seed).fit(x_train, y_train)
    metrics = {
        **evaluate.churn_metrics(y_hold, probabilities),
        **evaluate.churn_metrics(y_hold, logistic.predict_proba(x_hold)[:, 1], "logistic_"),
        **evaluate.churn_metrics(
            y_hold, pipelines.recency_rule_scores(training.churn_holdout), "recency_rule_"
        ),
        "fit_seconds": fit_seconds,
    }
    if config.answers_dir is not None:
        metrics.update(
            evaluate.churn_ceiling(
                config.answers_dir / "churn.parquet",
                training.churn_holdout,
                scores=probabilities,
            )
            or {}
        )
    explain = sample_positions(y_hold, config.max_explain_rows, config.seed)
    importance = evaluate.importances(
        model,
        x_hold.iloc[explain],
        y_hold[explain],
        "roc_auc",
        config.seed,
        direction_scores=probabilities[explain],
    )
    reference = monitor.build_reference(x_train, model.predict_proba(x_train)[:, 1])
    data = {**features.describe(training), "horizon_days": training.horizon_days}
    with mlflow.start_run(
        run_name=f"{CHURN_MODEL}-{training.holdout_cutoff}", tags=_tags(config, "churn")
    ) as run:
        mlflow.log_params(
            {
                "horizon_days": training.horizon_days,
                "n_train_cutoffs": len(training.train_cutoffs),
                "seed": config.seed,
                "margin": config.margin,
                "model": "calibrated HGB (isotonic)",
                "holdout_cutoff": str(training.holdout_cutoff),
                "data_range": data["data_range"],
                **{
                    f"hgb_{k}": v
                    for k, v in model.named_steps["model"].estimator.get_params().items()
                    if k in ("learning_rate", "max_iter", "max_depth", "min_samples_leaf")
                },
            }
        )
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            evaluate.calibration_figure(y_hold, probabilities, out / "calibration.png")
            importance.to_csv(out / "permutation_importance.csv", index=False)
            monitor.save_reference(reference, out / "reference.json")
            (out / "training_data.json").write_text(json.dumps(data, indent=1, default=str))
            (out / "evaluation_report.md").write_text(
                evaluate.report_markdown(
                    f"{CHURN_MODEL} evaluation on holdout {training.holdout_cutoff}",
                    {
                        "Data": data,
                        "Metrics": metrics,
                        "Permutation importance (ROC AUC drop)": importance.head(15),
                    },
                )
            )
            mlflow.log_artifacts(tmp)
        model_uri = _log_model(model, x_hold, probabilities)
        champion = registry.champion_score(
            CHURN_MODEL,
            lambda m: evaluate.scorer_for("roc_auc")(y_hold, m.predict_proba(x_hold)[:, 1]),
        )
        version, decision = registry.register_and_promote(
            mlflow.MlflowClient(),
            CHURN_MODEL,
            model_uri,
            run.info.run_id,
            metrics["roc_auc"],
            metrics["recency_rule_roc_auc"],
            champion,
            config.margin,
            "roc_auc",
        )
        if champion is not None:
            mlflow.log_metric("champion_roc_auc_same_holdout", champion)
        mlflow.set_tag("promotion", f"{decision.alias}: {decision.reason}")
        mlflow.log_text(
            model_card(
                CHURN_MODEL,
                "Probability that an active member (a purchase in the last 180 days) makes no "
                f"purchase in the next {training.horizon_days} days or closes the account; ranks "
                "members for retention programs, with plain-word reasons per member.",
                data,
                metrics,
                decision,
                [
                    "Trained on monthly cutoffs of one program's history; seasonality beyond the "
                    "training months is unseen.",
                    "Survey features exist only for respondents (about one member in five).",
                    "A member who stops buying without closing the account looks like one who "
                    "pauses until the silence is long; many churners in a holdout have already "
                    "stopped, so recency carries most of the signal and recent leavers rank late.",
                    "Reasons are associations (importance-weighted deviations from the typical "
                    "member), not causes.",
                    "Probabilities are calibrated on training cutoffs; check the calibration plot "
                    "after drift warnings.",
                ],
            ),
            "model_card.md",
        )
    return {
        "run_id": run.info.run_id,
        "version": version,
        "alias": decision.alias,
        "metrics": metrics,
        "seconds": time.perf_counter() - started,
    }


def train_segment(training: features.TrainingData, config: TrainConfig) -> dict:
    """Fit, evaluate, log and gate the segment model (one MLflow run)."""
    import mlflow

    started = time.perf_counter()
    x_train = features.segment_model_frame(training.segment_train)
    y_train = training.segment_train["segment"].to_numpy()
    x_test = features.segment_model_frame(training.segment_test)
    y_test = training.segment_test["segment"].to_numpy()
    model = pipelines.build_segment_model(config.seed).fit(x_train, y_train)
    fit_seconds = time.perf_counter() - started
    predicted = model.predict(x_test)
    majority = pipelines.build_majority_baseline().fit(x_train, y_train).predict(x_test)
    metrics, matrix = evaluate.segment_metrics(y_test, predicted, labels.SEGMENTS)
    baseline, _ = evaluate.segment_metrics(y_test, majority, labels.SEGMENTS, "majority_")
    metrics.update(baseline)
    metrics["fit_seconds"] = fit_seconds
    if config.answers_dir is not None:
        # Everyone at the holdout cutoff, respondents or not: what the segment is for.
        everyone = training.churn_holdout
        metrics.update(
            evaluate.true_segment_agreement(
                config.answers_dir / "segments.parquet",
                everyone,
                model.predict(features.segment_model_frame(everyone)),
                labels.SEGMENTS,
            )
            or {}
        )
    explain = sample_positions(y_test, config.max_explain_rows, config.seed)
    importance = evaluate.importances(
        model, x_test.iloc[explain], y_test[explain], "f1_macro", config.seed
    )
    data = {
        **features.describe(training),
        "label_rule": (
            f"Engaged: mean emotion >= {labels.ENGAGED_MIN_EMOTION} and NPS >= "
            f"{labels.ENGAGED_MIN_NPS}; Disengaged: mean emotion <= "
            f"{labels.DISENGAGED_MAX_EMOTION} or NPS <= {labels.DISENGAGED_MAX_NPS}; else Swing"
        ),
    }
    with mlflow.start_run(
        run_name=f"{SEGMENT_MODEL}-{training.holdout_cutoff}", tags=_tags(config, "segment")
    ) as run:
        mlflow.log_params(
            {
                "seed": config.seed,
                "margin": config.margin,
                "model": "HGB multiclass",
                "holdout_cutoff": str(training.holdout_cutoff),
                "data_range": data["data_range"],
                "n_train_cutoffs": len(training.train_cutoffs),
            }
        )
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            matrix.to_csv(out / "confusion_matrix.csv")
            importance.to_csv(out / "permutation_importance.csv", index=False)
            (out / "evaluation_report.md").write_text(
                evaluate.report_markdown(
                    f"{SEGMENT_MODEL} evaluation on held-out respondents at {training.holdout_cutoff}",
                    {
                        "Data": data,
                        "Metrics": metrics,
                        "Confusion matrix": matrix,
                        "Permutation importance (macro-F1 drop)": importance.head(15),
                    },
                )
            )
            mlflow.log_artifacts(tmp)
        proba = model.predict_proba(x_test)
        model_uri = _log_model(model, x_test, proba)
        champion = registry.champion_score(
            SEGMENT_MODEL, lambda m: evaluate.scorer_for("macro_f1")(y_test, m.predict(x_test))
        )
        version, decision = registry.register_and_promote(
            mlflow.MlflowClient(),
            SEGMENT_MODEL,
            model_uri,
            run.info.run_id,
            metrics["macro_f1"],
            metrics["majority_macro_f1"],
            champion,
            config.margin,
            "macro_f1",
        )
        mlflow.set_tag("promotion", f"{decision.alias}: {decision.reason}")
        mlflow.log_text(
            model_card(
                SEGMENT_MODEL,
                "Engagement segment (Engaged / Swing / Disengaged) for every member from behaviour "
                "and contacts, so the four in five who never answer a survey can be targeted.",
                data,
                metrics,
                decision,
                [
                    "Labels come from a rule over survey answers, a noisy reading of engagement.",
                    "Trained on respondents, who may differ from non-respondents.",
                    "The held-out respondent set is small; macro-F1 moves by a few points between "
                    "runs.",
                ],
            ),
            "model_card.md",
        )
    return {
        "run_id": run.info.run_id,
        "version": version,
        "alias": decision.alias,
        "metrics": metrics,
        "seconds": time.perf_counter() - started,
    }


def train(config: TrainConfig, data: features.WarehouseData | None = None) -> dict:
    """Read the warehouse (unless ``data`` is given), validate, train both models, gate them."""
    import mlflow

    mlflow.set_tracking_uri(config.tracking_uri)
    set_experiment(config.tracking_uri)
    data = data or features.read_warehouse(
        config.duckdb_path, config.horizon_days, config.n_train_cutoffs
    )
    training = features.build_training_data(
        data, config.horizon_days, config.n_train_cutoffs, seed=config.seed
    )
    del data  # the whole feature table is no longer needed; fitting should not hold it
    training = cap_training_rows(training, config.max_train_rows, config.seed)
    validate.validate_features(
        features.to_model_frame(training.churn_train, features.FEATURE_COLUMNS),
        features.FEATURE_COLUMNS,
        "training",
    )
    return {
        "churn": train_churn(training, config),
        "segment": train_segment(training, config),
        "data": features.describe(training),
    }


def sample_positions(labels_: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Row positions of a seeded sample of at most ``limit`` rows, stratified by label (each
    label keeps its share), in their original order; every row when there are fewer."""
    size = len(labels_)
    if size <= limit:
        return np.arange(size)
    rng = np.random.default_rng(seed)
    keep = []
    for value in pd.unique(labels_):
        positions = np.flatnonzero(labels_ == value)
        share = max(1, round(len(positions) * limit / size))
        keep.append(rng.choice(positions, size=share, replace=False))
    return np.sort(np.concatenate(keep))


def cap_training_rows(
    training: features.TrainingData, limit: int, seed: int
) -> features.TrainingData:
    """At most ``limit`` training rows per model (stratified sample); holdouts stay whole."""
    churn = training.churn_train
    segment = training.segment_train
    return replace(
        training,
        churn_train=churn.iloc[
            sample_positions(churn["churned"].to_numpy(), limit, seed)
        ].reset_index(drop=True),
        segment_train=segment.iloc[
            sample_positions(segment["segment"].to_numpy(), limit, seed)
        ].reset_index(drop=True),
        churn_train_rows_available=len(churn),
        segment_train_rows_available=len(segment),
    )


def config_from_settings(settings, **overrides) -> TrainConfig:
    """Settings -> TrainConfig; the answer dir only if the generator's answers exist."""
    answers = settings.sample_dir / "answers"
    fields = {
        "duckdb_path": settings.duckdb_path,
        "tracking_uri": settings.mlflow_tracking_uri,
        "answers_dir": answers if answers.exists() else None,
        "git_commit": git_commit(Path(__file__).resolve().parent.parent),
    }
    return TrainConfig(**{**fields, **overrides})


EXPERIMENT = "cx_models"


def artifact_root(tracking_uri: str) -> str | None:
    """Artifacts next to a local SQLite store (``<dir>/artifacts``), else the server's default.

    Without this MLflow puts them in ``./mlruns`` of whatever directory the process runs in.
    """
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    return None


def set_experiment(tracking_uri: str, name: str = EXPERIMENT) -> str:
    """Create the experiment with its artifact root on first use, then make it current."""
    import mlflow

    client = mlflow.MlflowClient()
    if client.get_experiment_by_name(name) is None:
        client.create_experiment(name, artifact_location=artifact_root(tracking_uri))
    return mlflow.set_experiment(name).experiment_id


def ensure_store(tracking_uri: str) -> None:
    """Create the folder of a local SQLite store (done at run time, never at import)."""
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m ml train [--horizon-days 90] [--train-cutoffs 6] [--dag-run-id ID]``."""
    from config import load_settings

    parser = argparse.ArgumentParser(prog="python -m ml train", description=__doc__)
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--train-cutoffs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--margin", type=float, default=registry.DEFAULT_MARGIN)
    parser.add_argument("--dag-run-id", default=None)
    args = parser.parse_args(argv)
    settings = load_settings()
    ensure_store(settings.mlflow_tracking_uri)
    config = config_from_settings(
        settings,
        horizon_days=args.horizon_days,
        n_train_cutoffs=args.train_cutoffs,
        seed=args.seed,
        margin=args.margin,
        dag_run_id=args.dag_run_id,
    )
    result = train(config)
    for kind in ("churn", "segment"):
        part = result[kind]
        shown = {
            k: round(v, 4)
            for k, v in part["metrics"].items()
            if k.endswith(("roc_auc", "macro_f1", "pr_auc", "brier", "lift", "left_share"))
        }
        print(
            f"{kind}: version {part['version']} -> {part['alias']} in {part['seconds']:.1f}s "
            f"{shown}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
