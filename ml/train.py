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
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml import evaluate, features, labels, monitor, registry, validate
from ml import pipeline as pipelines

if TYPE_CHECKING:
    from warehouse.store import Store

CHURN_MODEL = "cx_churn"
SEGMENT_MODEL = "cx_segment"
PIP_REQUIREMENTS = ["scikit-learn==1.9.1", "skops", "pandas", "numpy"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on, from settings and the command line; the warehouse
    it reads is the store given to ``train``."""

    tracking_uri: str
    answers_dir: Path | None = None
    horizon_days: int = 90
    n_train_cutoffs: int = 6
    seed: int = 42
    margin: float = registry.DEFAULT_MARGIN
    dag_run_id: str | None = None
    git_commit: str = "unknown"
    # A version the gate would promote waits as challenger for a person (registry.approve).
    approval_required: bool = False
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


ML_PACKAGE = Path(__file__).resolve().parent


def _log_model(model, rows: pd.DataFrame) -> str:
    """Log the whole pipeline, warehouse columns -> ``predict_proba``, and return its URI.

    The signature lists the warehouse columns the pipeline reads, in the warehouse's types
    (``warehouse_signature``), with a features-only input example (no member ids). The ``ml`` package travels with the model (``code_paths``), so
    ``mlflow.pyfunc.load_model("models:/cx_churn@champion").predict(customer_360_rows)`` returns
    probabilities anywhere MLflow and scikit-learn are installed.
    """
    import mlflow

    columns = list(pipelines.input_columns(model))
    with quiet_skops():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=warehouse_signature(rows, columns, model.predict_proba(rows.head(1000))),
            input_example=rows[columns].head(5),
            serialization_format="skops",
            skops_trusted_types=_trusted_types(model),
            pip_requirements=PIP_REQUIREMENTS,
            pyfunc_predict_fn="predict_proba",
            code_paths=[str(ML_PACKAGE)],
        )
    return info.model_uri


def warehouse_signature(rows: pd.DataFrame, columns: list[str], output: np.ndarray):
    """The model's signature in the warehouse's own types: a DECIMAL or DOUBLE column is
    ``double``; an integer or boolean column (BIGINT, BOOLEAN) is ``any``. The warehouse returns
    a nullable BIGINT as pandas' Int64 when it holds a null that day (a member who never answered
    a survey has no ``latest_nps_score``), which MLflow 3.17 can convert neither to ``long``
    ("cannot convert NA to integer") nor to ``double``; the model's first step turns every
    column into float64 itself, so rows read from customer_360 score as they are."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema, TensorSpec

    def kind(column: str):
        return AnyType() if rows[column].dtype.kind in "iub" else "double"

    inputs = Schema([ColSpec(kind(column), column) for column in columns])
    outputs = Schema([TensorSpec(np.dtype("float64"), (-1, output.shape[1]))])
    return ModelSignature(inputs=inputs, outputs=outputs)


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


CHURN_CANDIDATES = ("boosted", "logistic", "btyd")


def fit_churn_candidates(
    training: features.TrainingData, columns: tuple[str, ...], seed: int
) -> dict[str, object]:
    """Every churn candidate fitted on the training cutoffs (each a whole pipeline)."""
    x_train = training.churn_train
    y_train = training.churn_train["churned"].to_numpy()
    horizon = training.horizon_days
    return {
        "boosted": pipelines.build_churn_model(seed, columns, horizon).fit(x_train, y_train),
        "logistic": pipelines.build_logistic_baseline(seed, columns, horizon).fit(x_train, y_train),
        "btyd": pipelines.build_btyd_model(seed, horizon).fit(x_train, y_train),
    }


def choose_churn_candidate(metrics: dict[str, float]) -> tuple[str, str]:
    """The candidate with the best holdout ROC AUC, and why; on a tie, BG/NBD (the simpler
    model, and the textbook baseline)."""
    order = ("btyd", "boosted", "logistic")  # max() keeps the first of equal scores
    chosen = max(order, key=lambda name: metrics[f"{name}_roc_auc"])
    ranked = ", ".join(
        f"{name} {metrics[f'{name}_roc_auc']:.4f}"
        for name in sorted(order, key=lambda n: -metrics[f"{n}_roc_auc"])
    )
    return chosen, f"best holdout ROC AUC among the candidates ({ranked})"


def feature_note(left_out: dict[str, str]) -> str:
    """The features left out of a run, in words for the model card and the run."""
    if not left_out:
        return "none: every feature had data"
    return "; ".join(f"{column} ({why})" for column, why in left_out.items())


def check_champion_features(name: str, left_out: dict[str, str]) -> None:
    """Fail when a feature the current champion was trained on has no data now: a source or
    column that went null is a break upstream, not a reason to quietly train without it."""
    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info

    try:
        info = get_model_info(f"models:/{name}@{registry.CHAMPION}")
    except (MlflowException, OSError):
        return
    if info.signature is None:
        return
    used = set(info.signature.inputs.input_names())
    gone = {column: why for column, why in left_out.items() if column in used}
    if gone:
        raise validate.FeatureValidationError(
            f"{name}: feature(s) the current champion was trained on have no data now: "
            f"{feature_note(gone)}. A source or optional column stopped arriving; fix the "
            "source, or take it out of CX_SOURCES if it was removed on purpose"
        )


def train_churn(
    training: features.TrainingData,
    config: TrainConfig,
    columns: tuple[str, ...],
    left_out: dict[str, str],
) -> dict:
    """Fit the candidates, pick one on the holdout, evaluate, log and gate it (one MLflow run)."""
    import mlflow

    started = time.perf_counter()
    y_hold = training.churn_holdout["churned"].to_numpy()
    candidates = fit_churn_candidates(training, columns, config.seed)
    fit_seconds = time.perf_counter() - started
    scores = {
        name: model.predict_proba(training.churn_holdout)[:, 1]
        for name, model in candidates.items()
    }
    metrics: dict[str, float] = {}
    for name, values in scores.items():
        metrics.update(evaluate.churn_metrics(y_hold, values, f"{name}_"))
    # The two baselines: BG/NBD is the btyd candidate, logged under its textbook name too.
    metrics.update(evaluate.churn_metrics(y_hold, scores["btyd"], "bgnbd_"))
    metrics.update(
        evaluate.churn_metrics(
            y_hold, pipelines.recency_rule_scores(training.churn_holdout), "recency_rule_"
        )
    )
    chosen, why = choose_churn_candidate(metrics)
    model = candidates[chosen]
    probabilities = scores[chosen]
    metrics.update(evaluate.churn_metrics(y_hold, probabilities))
    metrics["fit_seconds"] = fit_seconds
    if config.answers_dir is not None:
        metrics.update(
            evaluate.churn_ceiling(
                config.answers_dir / "churn.parquet",
                training.churn_holdout,
                scores=probabilities,
            )
            or {}
        )
    x_hold = pipelines.model_frame(model, training.churn_holdout)
    explain = sample_positions(y_hold, config.max_explain_rows, config.seed)
    importance = evaluate.importances(
        pipelines.after_input(model),
        x_hold.iloc[explain],
        y_hold[explain],
        "roc_auc",
        config.seed,
        direction_scores=probabilities[explain],
    )
    reference = monitor.build_reference(
        pipelines.model_frame(model, training.churn_train),
        model.predict_proba(training.churn_train)[:, 1],
    )
    # The first champion must beat the better baseline (a learned candidate is chosen only when
    # it scores above BG/NBD); BG/NBD cannot beat itself, so when it is the candidate it must
    # beat the recency rule.
    baseline = (
        metrics["recency_rule_roc_auc"]
        if chosen == "btyd"
        else max(metrics["recency_rule_roc_auc"], metrics["bgnbd_roc_auc"])
    )
    data = {
        **features.describe(training),
        "features_used": len(columns),
        "features_left_out": feature_note(left_out),
    }
    with mlflow.start_run(
        run_name=f"{CHURN_MODEL}-{training.holdout_cutoff}", tags=_tags(config, "churn")
    ) as run:
        params = {
            "horizon_days": training.horizon_days,
            "activity_days": training.activity_days,
            "n_train_cutoffs": len(training.train_cutoffs),
            "seed": config.seed,
            "margin": config.margin,
            "candidate": chosen,
            "model": {
                "boosted": "calibrated HGB (sigmoid) + BG/NBD features",
                "logistic": "logistic regression + BG/NBD features",
                "btyd": "BG/NBD",
            }[chosen],
            "holdout_cutoff": str(training.holdout_cutoff),
            "data_range": data["data_range"],
            "features_left_out": ",".join(left_out) or "none",
        }
        if chosen == "boosted":
            params.update(
                {
                    f"hgb_{k}": v
                    for k, v in model.named_steps["model"].estimator.get_params().items()
                    if k in ("learning_rate", "max_iter", "max_depth", "min_samples_leaf")
                }
            )
        params.update({f"bgnbd_{k}": round(v, 6) for k, v in _bgnbd_params(model).items()})
        mlflow.log_params(params)
        mlflow.set_tags(
            {"window_plan": training.plan_reason, "candidate_choice": why}
            | {"features_left_out": feature_note(left_out)}
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
                        "Candidate": why,
                        "Metrics": metrics,
                        "Permutation importance (ROC AUC drop)": importance.head(15),
                    },
                )
            )
            mlflow.log_artifacts(tmp)
        model_uri = _log_model(model, training.churn_holdout)
        champion = registry.champion_score(
            CHURN_MODEL,
            lambda m: evaluate.scorer_for("roc_auc")(
                y_hold, m.predict_proba(training.churn_holdout)[:, 1]
            ),
        )
        version, decision = registry.register_and_promote(
            mlflow.MlflowClient(),
            CHURN_MODEL,
            model_uri,
            run.info.run_id,
            metrics["roc_auc"],
            baseline,
            champion,
            config.margin,
            "roc_auc",
            baseline_margin=0.0,
            approval_required=config.approval_required,
        )
        if champion is not None:
            mlflow.log_metric("champion_roc_auc_same_holdout", champion)
        mlflow.set_tag("promotion", f"{decision.alias}: {decision.reason}")
        mlflow.log_text(
            model_card(
                CHURN_MODEL,
                "Probability that an active member (a purchase in the last "
                f"{training.activity_days} days) makes no purchase in the next "
                f"{training.horizon_days} days or closes the account; ranks members for "
                "retention programs, with plain-word reasons per member. Scores "
                "customer_360 rows as they are: "
                "mlflow.pyfunc.load_model('models:/cx_churn@champion').predict(rows) returns "
                "[P(stays), P(churns)] per row.",
                {**data, "candidate": f"{chosen}: {why}"},
                metrics,
                decision,
                [
                    f"Windows chosen from the history: {training.plan_reason}.",
                    f"Features left out of this run: {feature_note(left_out)}.",
                    "Trained on cutoffs of one program's history; seasonality beyond the "
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
        "pending": decision.pending,
        "reason": decision.reason,
        "candidate": chosen,
        "metrics": metrics,
        "seconds": time.perf_counter() - started,
    }


def _bgnbd_params(model) -> dict[str, float]:
    """The fitted BG/NBD parameters inside a churn pipeline (every candidate has them)."""
    if "btyd" in model.named_steps:
        return model.named_steps["btyd"].params_
    return model.named_steps["model"].features_.params_


# Fewer labelled respondents than this, or a single segment among them, trains no segment model.
MIN_SEGMENT_ROWS = 30


def segment_skip_reason(training: features.TrainingData) -> str | None:
    """Why no segment model can be trained on this data, or None when one can."""
    rows = len(training.segment_train)
    if rows == 0:
        return (
            "no segment model: no member answered a relationship survey with NPS and the "
            "emotional items before the training cutoffs, so there is no engagement label to "
            "learn from (expected without a survey source, or with surveys that carry no "
            "emotional items)"
        )
    if rows < MIN_SEGMENT_ROWS or training.segment_train["segment"].nunique() < 2:
        return (
            f"no segment model: only {rows} labelled respondents "
            f"({training.segment_train['segment'].nunique()} segment(s)) at the training "
            f"cutoffs; at least {MIN_SEGMENT_ROWS} in two or more segments are needed"
        )
    if len(training.segment_test) == 0:
        return "no segment model: no held-out respondent at the holdout cutoff to test it on"
    return None


def skip_segment(training: features.TrainingData, config: TrainConfig, reason: str) -> dict:
    """Record in MLflow that no segment model was trained, and why."""
    import mlflow

    with mlflow.start_run(
        run_name=f"{SEGMENT_MODEL}-{training.holdout_cutoff}-skipped",
        tags={**_tags(config, "segment"), "skipped": reason},
    ) as run:
        mlflow.log_params(
            {
                "segment_train_rows": len(training.segment_train),
                "holdout_cutoff": str(training.holdout_cutoff),
            }
        )
    return {
        "run_id": run.info.run_id,
        "version": None,
        "alias": None,
        "skipped": reason,
        "metrics": {},
        "seconds": 0.0,
    }


def train_segment(
    training: features.TrainingData, config: TrainConfig, columns: tuple[str, ...]
) -> dict:
    """Fit, evaluate, log and gate the segment model (one MLflow run)."""
    import mlflow

    started = time.perf_counter()
    x_train = training.segment_train
    y_train = training.segment_train["segment"].to_numpy()
    x_test = training.segment_test
    y_test = training.segment_test["segment"].to_numpy()
    model = pipelines.build_segment_model(config.seed, columns).fit(x_train, y_train)
    fit_seconds = time.perf_counter() - started
    predicted = model.predict(x_test)
    metrics, matrix = evaluate.segment_metrics(y_test, predicted, labels.SEGMENTS)
    for name, baseline_model in (
        ("majority_", pipelines.build_majority_baseline()),
        ("stratified_", pipelines.build_stratified_baseline(config.seed)),
    ):
        guessed = baseline_model.fit(x_train[list(columns)], y_train).predict(x_test[list(columns)])
        baseline, _ = evaluate.segment_metrics(y_test, guessed, labels.SEGMENTS, name)
        metrics.update(baseline)
    metrics["fit_seconds"] = fit_seconds
    if config.answers_dir is not None:
        # Everyone at the holdout cutoff, respondents or not: what the segment is for.
        everyone = training.churn_holdout
        metrics.update(
            evaluate.true_segment_agreement(
                config.answers_dir / "segments.parquet",
                everyone,
                model.predict(everyone),
                labels.SEGMENTS,
            )
            or {}
        )
    explain = sample_positions(y_test, config.max_explain_rows, config.seed)
    importance = evaluate.importances(
        pipelines.after_input(model),
        pipelines.model_frame(model, x_test).iloc[explain],
        y_test[explain],
        "f1_macro",
        config.seed,
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
        model_uri = _log_model(model, x_test)
        champion = registry.champion_score(
            SEGMENT_MODEL, lambda m: evaluate.scorer_for("macro_f1")(y_test, m.predict(x_test))
        )
        version, decision = registry.register_and_promote(
            mlflow.MlflowClient(),
            SEGMENT_MODEL,
            model_uri,
            run.info.run_id,
            metrics["macro_f1"],
            max(metrics["majority_macro_f1"], metrics["stratified_macro_f1"]),
            champion,
            config.margin,
            "macro_f1",
            approval_required=config.approval_required,
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
        "pending": decision.pending,
        "reason": decision.reason,
        "metrics": metrics,
        "seconds": time.perf_counter() - started,
    }


def train(
    config: TrainConfig, store: Store | None = None, data: features.WarehouseData | None = None
) -> dict:
    """Read the warehouse through ``store`` (a ``warehouse.store.Store``; unless ``data`` is
    given), validate, train both models, gate them.

    Features with no data in this deployment (a source or optional column it does not have) are
    left out of the run and recorded; a feature the current champion used that has no data now
    fails the run. Without labelled survey respondents no segment model is trained, and the
    result says why.
    """
    import mlflow

    if data is None and store is None:
        raise ValueError("train needs the warehouse: a store to read it through, or its data")
    mlflow.set_tracking_uri(config.tracking_uri)
    set_experiment(config.tracking_uri)
    data = data or features.read_warehouse(store, config.horizon_days, config.n_train_cutoffs)
    training = features.build_training_data(
        data, config.horizon_days, config.n_train_cutoffs, seed=config.seed
    )
    del data  # the whole feature table is no longer needed; fitting should not hold it
    training = cap_training_rows(training, config.max_train_rows, config.seed)
    print(f"training windows: {training.plan_reason}", flush=True)
    columns, left_out = features.available_features(training.churn_train, features.FEATURE_COLUMNS)
    if left_out:
        print(f"features left out (no data): {feature_note(left_out)}", flush=True)
    check_champion_features(CHURN_MODEL, left_out)
    validate.validate_features(
        features.to_model_frame(training.churn_train, columns), columns, "training"
    )
    churn = train_churn(training, config, columns, left_out)
    reason = segment_skip_reason(training)
    if reason is None:
        segment_columns = tuple(c for c in columns if c in features.SEGMENT_FEATURE_COLUMNS)
        segment = train_segment(training, config, segment_columns)
    else:
        print(reason, flush=True)
        segment = skip_segment(training, config, reason)
    return {"churn": churn, "segment": segment, "data": features.describe(training)}


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
    from config import uses_sample

    answers = settings.sample_dir / "answers"
    use_answers = uses_sample(settings) and answers.exists()
    fields = {
        "tracking_uri": settings.mlflow_tracking_uri,
        "answers_dir": answers if use_answers else None,
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
    from warehouse.store import open_store

    # The analysts' published copy on DuckDB, so training never holds the live file.
    result = train(config, open_store(settings, snapshot=True))
    for kind in ("churn", "segment"):
        part = result[kind]
        if part.get("skipped"):
            print(f"{kind}: {part['skipped']}")
            continue
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
