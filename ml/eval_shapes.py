"""``make eval``: the whole pipeline on each shape of data, and how the churn champion held up.

The sample generator can take the shapes real users' data comes in (``CX_SAMPLE_SHAPE``,
sample_data/README.md). For each shape this runs ``python -m pipeline run`` in a process of its
own, with its own data folder and Airflow home under the work directory, then reads the churn
run from that folder's MLflow store: the window plan the history allowed, the candidate chosen
on the temporal holdout, its ROC AUC and the other candidates', and whether it is at or above
both baselines (BG/NBD and the recency rule); and whether a segment model was trained or why not.
``--loyalty-url`` adds a row for a user's own loyalty database (``CX_SOURCES=loyalty``).
After the table, each run's sentiment figures: precision and recall per class of its own
classifier (warehouse/text) on a held-out quarter of its NPS/CSAT-labelled comments, beside
VADER's and the lexicon fallback's.

It prints one table and writes it as JSON. A run that fails is reported with the tail of its
output, after the others ran, and the command then exits 1. The integration test of the shapes
(tests/integration/test_sample_shapes.py) drives the same runner.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from config.settings import REPO_ROOT, SAMPLE_SHAPES

# The shapes evaluated by default; the last is what a retailer's first export looks like.
SHAPES: tuple[str, ...] = (
    "default",
    "single_cohort",
    "purchase_only",
    "short_history",
    "seasonal",
    "single_cohort,purchase_only,short_history",
)
DEFAULT_MEMBERS = 3000
DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "eval-shapes.json"
TAIL_LINES = 30
# A traceback's last line: "KeyError: ...", "pipeline.model_tasks.NoChampionYet: ..." (not
# "Warning: ..." or "INFO: ...").
EXCEPTION_LINE = re.compile(r"^(?:(?:[a-z_]\w*\.)+[A-Z]\w*|[A-Z]\w*(?:Error|Exception)): ")
# A run's folder holds this file, so that only folders this module made are ever replaced.
MARKER = "eval-run.json"
# Real sources need CX_HASH_KEY (privacy/identity.py: erased members are kept out by keyed
# hashes). A run here starts from an empty data folder with an empty suppression list, so a
# fixed key, used for nothing else, is enough when the environment sets none.
EVAL_ONLY_HASH_KEY = "cx-eval-shapes-only-not-a-secret-key"

# Variables that would point a run at state outside its own data folder (another lake,
# warehouse, MLflow store, exports) or, for a sample row, at sources other than the sample.
LOCATION_VARS = (
    "CX_LAKE_DIR",
    "CX_DUCKDB_PATH",
    "CX_MLFLOW_TRACKING_URI",
    "CX_SAMPLE_DIR",
    "CX_EXPORTS_DIR",
    "CX_REPORTS_DIR",
    "CX_SUPPRESSION_LIST",
)
SOURCE_VARS = ("CX_SOURCES", "CX_LOYALTY_URL", "CX_SURVEY_ROOT", "CX_CALLS_ROOT", "CX_AS_OF")

CHURN_METRICS = (
    "roc_auc",
    "boosted_roc_auc",
    "logistic_roc_auc",
    "btyd_roc_auc",
    "bgnbd_roc_auc",
    "recency_rule_roc_auc",
)


@dataclass(frozen=True)
class Case:
    """One row of the table: a sample shape, or a user's loyalty database."""

    label: str
    folder: str
    env: Mapping[str, str]
    shape: str | None = None
    members: int | None = None  # a sample size of its own, else the one all runs share


@dataclass
class CaseRun:
    """What one ``python -m pipeline run`` did, and where its state is."""

    case: Case
    data_dir: Path
    log: Path
    returncode: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = TAIL_LINES) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.rstrip().splitlines()[-lines:])


@dataclass
class Row:
    """One evaluated run, as printed and written to JSON."""

    label: str
    shape: str | None
    status: str  # "ok" or "failed"
    seconds: float
    folder: str  # the run's folder under the work directory: data/, airflow/, run.log
    error: str | None = None
    history_days: int | None = None
    activity_days: int | None = None
    horizon_days: int | None = None
    window_plan: str | None = None
    candidate: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    at_or_above_baselines: bool | None = None
    promotion: str | None = None
    champion_version: str | None = None
    features_left_out: str | None = None
    segment_model: str | None = None  # "trained", "skipped" or None when no segment run
    segment_skipped: str | None = None


def parse_shape(text: str) -> str:
    """A comma-separated combination of known shapes, normalised (spaces dropped)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in parts if part not in SAMPLE_SHAPES]
    if not parts or unknown:
        raise ValueError(
            f"unknown sample shape {text!r}: combine some of {', '.join(SAMPLE_SHAPES)} with commas"
        )
    return ",".join(parts)


def shape_case(shape: str, members: int | None = None) -> Case:
    shape = parse_shape(shape)
    return Case(
        shape, shape.replace(",", "+"), {"CX_SAMPLE_SHAPE": shape}, shape=shape, members=members
    )


def hidden_password(url: str) -> str:
    """The URL as it may be printed: a password in it is masked."""
    return re.sub(r"(://[^/:@]*:)[^@/]*@", r"\1***@", url)


def loyalty_case(url: str, number: int, env: Mapping[str, str] | None = None) -> Case:
    env = os.environ if env is None else env
    return Case(
        f"loyalty: {hidden_password(url)}",
        f"loyalty-{number}",
        {
            "CX_SOURCES": "loyalty",
            "CX_LOYALTY_URL": url,
            "CX_HASH_KEY": env.get("CX_HASH_KEY") or EVAL_ONLY_HASH_KEY,
        },
    )


def run_env(case: Case, root: Path, members: int, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of one run: ``base`` without anything that would share state with
    another run (Airflow's home and database, the CX_ locations, and for a sample row the
    sources), then the run's own folder, Airflow home, shape and size."""
    dropped = LOCATION_VARS + (SOURCE_VARS + ("CX_SAMPLE_SHAPE",) if case.shape else ())
    env = {
        key: value
        for key, value in base.items()
        if not key.startswith("AIRFLOW") and key not in dropped
    }
    python_path = base.get("PYTHONPATH")
    env.update(
        {
            "CX_DATA_DIR": str(root / "data"),
            "CX_SAMPLE_MEMBERS": str(members),
            "AIRFLOW_HOME": str(root / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": str(REPO_ROOT) + (f":{python_path}" if python_path else ""),
        }
    )
    env.update(case.env)
    return env


def prepare_folder(root: Path, case: Case, members: int) -> None:
    """An empty folder for the run; an earlier run of this module's there is replaced."""
    if root.exists():
        if not (root / MARKER).exists():
            raise FileExistsError(
                f"{root} exists and is not a folder of `python -m ml.eval_shapes`; "
                "choose another --work-dir"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text(
        json.dumps({"label": case.label, "shape": case.shape, "members": members}) + "\n"
    )


def run_case(
    case: Case,
    work_dir: Path,
    members: int,
    base_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> CaseRun:
    """``python -m pipeline run`` for one case in ``<work_dir>/<case.folder>``; output to
    ``run.log`` there. Never raises for a failed run: the return code says it."""
    members = case.members or members
    root = work_dir / case.folder
    prepare_folder(root, case, members)
    env = run_env(case, root, members, os.environ if base_env is None else base_env)
    log = root / "run.log"
    started = time.perf_counter()
    with log.open("wb") as out:
        try:
            returncode = subprocess.run(
                [sys.executable, "-m", "pipeline", "run"],
                env=env,
                cwd=root,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            out.write(f"\neval_shapes: stopped after {timeout:.0f} s\n".encode())
            returncode = -1
    return CaseRun(case, root / "data", log, returncode, round(time.perf_counter() - started, 1))


def run_cases(
    cases: Sequence[Case],
    work_dir: Path,
    members: int,
    jobs: int = 1,
    base_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> list[CaseRun]:
    """Every case, ``jobs`` at a time, in the order given; each reported as it ends."""

    def one(case: Case) -> CaseRun:
        done = run_case(case, work_dir, members, base_env, timeout)
        print(
            f"  {case.label:<44} {'ok' if done.ok else 'FAILED':<7}{done.seconds:>7.1f}s",
            flush=True,
        )
        return done

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, cases))


def tracking_uri(data_dir: Path) -> str:
    """The MLflow store ``python -m pipeline run`` uses under ``CX_DATA_DIR``."""
    return f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}"


def read_models(uri: str) -> dict:
    """The latest churn and segment runs of the store: the churn run's params, metrics and
    tags, the champion's version, and whether the segment run trained or was skipped."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from ml.registry import CHAMPION
    from ml.train import CHURN_MODEL, EXPERIMENT, SEGMENT_MODEL

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return {"churn": None, "segment": None, "champion_version": None}
    runs = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=200
    )

    def latest(model: str):
        return next((r for r in runs if (r.info.run_name or "").startswith(f"{model}-")), None)

    churn, segment = latest(CHURN_MODEL), latest(SEGMENT_MODEL)
    try:
        champion = client.get_model_version_by_alias(CHURN_MODEL, CHAMPION).version
    except MlflowException:
        champion = None
    return {
        "churn": None
        if churn is None
        else {
            "params": dict(churn.data.params),
            "metrics": dict(churn.data.metrics),
            "tags": dict(churn.data.tags),
        },
        "segment": None if segment is None else {"tags": dict(segment.data.tags)},
        "champion_version": None if champion is None else str(champion),
    }


def history_days(window_plan: str | None) -> int | None:
    """The days of history the window plan names ("274 days of history with ...")."""
    found = re.match(r"\s*(\d+) days of history", window_plan or "")
    return int(found.group(1)) if found else None


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def evaluate_run(done: CaseRun) -> Row:
    """The table's row for one run: its churn metrics from its own MLflow store."""
    row = Row(
        label=done.case.label,
        shape=done.case.shape,
        status="ok" if done.ok else "failed",
        seconds=done.seconds,
        folder=done.case.folder,
    )
    if not done.ok:
        row.error = done.tail()
        return row
    models = read_models(tracking_uri(done.data_dir))
    churn = models["churn"]
    if churn is None:
        row.status = "failed"
        row.error = f"the run finished but logged no churn run in {tracking_uri(done.data_dir)}"
        return row
    params, metrics, tags = churn["params"], churn["metrics"], churn["tags"]
    row.window_plan = tags.get("window_plan")
    row.history_days = history_days(row.window_plan)
    row.activity_days = _int(params.get("activity_days"))
    row.horizon_days = _int(params.get("horizon_days"))
    row.candidate = params.get("candidate")
    row.metrics = {name: metrics[name] for name in CHURN_METRICS if name in metrics}
    if {"roc_auc", "bgnbd_roc_auc", "recency_rule_roc_auc"} <= row.metrics.keys():
        row.at_or_above_baselines = row.metrics["roc_auc"] >= max(
            row.metrics["bgnbd_roc_auc"], row.metrics["recency_rule_roc_auc"]
        )
    row.promotion = tags.get("promotion")
    row.features_left_out = tags.get("features_left_out")
    row.champion_version = models["champion_version"]
    segment = models["segment"]
    if segment is not None:
        skipped = segment["tags"].get("skipped")
        row.segment_model = "skipped" if skipped else "trained"
        row.segment_skipped = skipped
    return row


def _auc(row: Row, name: str) -> str:
    value = row.metrics.get(name)
    return "-" if value is None else f"{value:.3f}"


def _cause(row: Row) -> str:
    """The line of a failed run's output that says why: the last exception raised in it
    (``module.SomeError: message``), else the driver's last word."""
    lines = [line.strip() for line in (row.error or "").splitlines() if line.strip()]
    raised = [line for line in lines if EXCEPTION_LINE.match(line)]
    said = [line for line in lines if line.startswith("pipeline failed:")]
    return (raised or said or lines or ["no output"])[-1][:140]


def _history(row: Row) -> str:
    if row.history_days is None:
        return "-"
    return f"{row.history_days}d a{row.activity_days} h{row.horizon_days}"


def format_table(rows: Iterable[Row], work_dir: Path) -> str:
    """The rows as a fixed-width table, then the tail of each failed run's output."""
    rows = list(rows)
    width = max([len(row.label) + 2 for row in rows] + [44])
    header = (
        f"{'shape':<{width}}{'history':<16}{'candidate':<10}{'champion':>9}{'boosted':>9}"
        f"{'logistic':>9}{'BG/NBD':>8}{'recency':>8}  {'>=base':<7}{'segment':<8}"
    )
    lines = [header, "-" * len(header)]
    failed = []
    for row in rows:
        if row.status != "ok":
            lines.append(f"{row.label:<{width}}FAILED after {row.seconds:.0f} s: {_cause(row)}")
            failed.append(row)
            continue
        beats = {True: "yes", False: "NO", None: "-"}[row.at_or_above_baselines]
        lines.append(
            f"{row.label:<{width}}{_history(row):<16}{row.candidate or '-':<10}"
            f"{_auc(row, 'roc_auc'):>9}{_auc(row, 'boosted_roc_auc'):>9}"
            f"{_auc(row, 'logistic_roc_auc'):>9}{_auc(row, 'bgnbd_roc_auc'):>8}"
            f"{_auc(row, 'recency_rule_roc_auc'):>8}  {beats:<7}{row.segment_model or '-':<8}"
        )
    lines.append(
        "history: days of history, activity (a) and label (h) windows in days; champion: the "
        "chosen candidate's holdout ROC AUC; >=base: at or above BG/NBD and the recency rule"
    )
    for row in failed:
        log = work_dir / row.folder / "run.log"
        lines += ["", f"{row.label} failed; log {log}; its last lines:", row.error or ""]
    return "\n".join(lines)


def print_sentiment(runs: Sequence[CaseRun]) -> None:
    """Sentiment precision and recall per class on each run's held-out labelled comments
    (warehouse/text), beside VADER's; then the hand-written sanity set once."""
    from warehouse.text.cli import deployment_report, handwritten_report

    for done in runs:
        if done.ok and (done.data_dir / "lake").is_dir():
            print(f"\n{done.case.label}: {deployment_report(done.data_dir / 'lake')}")
    print(f"\n{handwritten_report()}")


def source_version() -> str | None:
    """The checkout's commit, with "+changes" when files differ from it: the runs used them."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if changed else "")


def write_json(path: Path, rows: Sequence[Row], members: int, work_dir: Path | None) -> None:
    """The table as JSON; ``work_dir`` is None when the runs' folders were removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "members": members,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source_version(),
        "work_dir": None if work_dir is None else str(work_dir),
        "rows": [asdict(row) for row in rows],
    }
    path.write_text(json.dumps(document, indent=1) + "\n")


def build_cases(
    shapes: Sequence[str], loyalty_urls: Sequence[str], env: Mapping[str, str] | None = None
) -> list[Case]:
    cases = [shape_case(shape) for shape in shapes]
    cases += [loyalty_case(url, n, env) for n, url in enumerate(loyalty_urls, start=1)]
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml.eval_shapes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--shapes",
        nargs="*",
        default=list(SHAPES),
        metavar="SHAPE",
        help="shapes to run, separated by spaces; a shape combines names with commas; none "
        f"with --loyalty-url runs only the own data (default: {' '.join(SHAPES)})",
    )
    parser.add_argument(
        "--loyalty-url",
        action="append",
        default=[],
        metavar="URL",
        help="also run on this loyalty database (CX_SOURCES=loyalty); may be repeated",
    )
    parser.add_argument(
        "--members", type=int, default=DEFAULT_MEMBERS, help="sample members per shape"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="where each run's folder goes (default: a new temporary folder, removed when "
        "every run succeeded)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="the table as JSON")
    args = parser.parse_args(argv)
    try:
        cases = build_cases(args.shapes, args.loyalty_url)
    except ValueError as error:
        parser.error(str(error))
    if not cases:
        parser.error("nothing to run: name a shape or a --loyalty-url")
    if args.members < 10:
        parser.error("--members must be at least 10")

    temporary = args.work_dir is None
    work_dir = Path(tempfile.mkdtemp(prefix="cx-eval-shapes-")) if temporary else args.work_dir
    work_dir = work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    print(f"==> {len(cases)} run(s) of `python -m pipeline run` in {work_dir}", flush=True)
    runs = run_cases(cases, work_dir, args.members, args.jobs)
    rows = [evaluate_run(done) for done in runs]
    failed = any(row.status != "ok" for row in rows)
    print()
    print(format_table(rows, work_dir))
    print_sentiment(runs)
    removed = temporary and not failed
    if removed:
        shutil.rmtree(work_dir, ignore_errors=True)
    write_json(args.json, rows, args.members, None if removed else work_dir)
    print(f"\nTable as JSON: {args.json}")
    if not removed:
        print(f"Runs kept in {work_dir}", file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
