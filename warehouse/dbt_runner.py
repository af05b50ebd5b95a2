"""Run dbt in-process (``dbt.cli.main.dbtRunner``) with the profile's environment set from the
project settings. Tests, DAG tasks and the CLI all call these functions.

The profile (``dbt_project/profiles.yml``) reads only environment variables; ``dbt_env`` builds
them from ``config.load_settings()`` (absolute paths, so dbt's working folder does not matter)
and from the ``CX_PG_*`` variables for PostgreSQL.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import REPO_ROOT, Settings

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
TARGETS = ("duckdb", "postgres", "spark")

# PostgreSQL connection variables and their local defaults (scripts/postgres.sh's server).
POSTGRES_DEFAULTS = {
    "CX_PG_HOST": "127.0.0.1",
    "CX_PG_PORT": "55432",
    "CX_PG_USER": "cx",
    "CX_PG_PASSWORD": "",
    "CX_PG_DBNAME": "cx",
    "CX_PG_SCHEMA": "analytics",
}


class DbtError(RuntimeError):
    """A dbt command failed; the message lists the failing nodes."""


@dataclass(frozen=True)
class DbtResult:
    command: tuple[str, ...]
    success: bool
    seconds: float
    failures: tuple[str, ...] = ()
    node_statuses: dict[str, str] = field(default_factory=dict)


def postgres_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    return {name: env.get(name) or default for name, default in POSTGRES_DEFAULTS.items()}


def dbt_env(settings: Settings, target: str | None = None) -> dict[str, str]:
    """The environment the dbt profile and sources read."""
    target = target or settings.warehouse_target
    if target not in TARGETS:
        raise ValueError(f"unknown warehouse target {target!r}; choose one of {TARGETS}")
    env = {
        "CX_WAREHOUSE_TARGET": target,
        "CX_LAKE_DIR": str(settings.lake_dir.resolve()),
        "CX_DUCKDB_PATH": str(settings.duckdb_path.resolve()),
        "CX_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
        "CX_PG_HOST": settings.pg_host,
        "CX_PG_PORT": str(settings.pg_port),
        "CX_PG_USER": settings.pg_user,
        "CX_PG_PASSWORD": settings.pg_password,
        "CX_PG_DBNAME": settings.pg_dbname,
        "CX_PG_SCHEMA": settings.pg_schema,
    }
    if target == "spark":
        from warehouse.spark import spark_env

        env.update(spark_env(settings))
    # dbt's anonymous usage statistics would try the network.
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def invoke(
    args: Sequence[str],
    settings: Settings,
    *,
    target: str | None = None,
    target_path: Path | None = None,
    raise_on_failure: bool = True,
) -> DbtResult:
    """Run one dbt command (``["build", "--select", "marts"]``) against the project."""
    from dbt.cli.main import dbtRunner

    target = target or settings.warehouse_target
    env = dbt_env(settings, target)
    if target == "duckdb":
        settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        *with_registry_vars(args),
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target",
        target,
    ]
    if target_path is not None:
        command += ["--target-path", str(target_path)]
        log_path = target_path / "logs"
    else:
        log_path = DBT_PROJECT_DIR / "logs"
    if args and args[0] not in ("deps", "clean", "debug"):
        command += ["--log-path", str(log_path)]
    if target == "spark" and args and args[0] in ("build", "test"):
        # The unit tests' fixtures are typed in _sources.yml's DuckDB and PostgreSQL words
        # (timestamptz), which Spark does not parse; they test the models' logic on those two.
        # dbt-spark's snapshots need MERGE (Delta Lake, Iceberg, Hudi: jars not on PyPI), so on
        # Spark's Parquet tables snap_members keeps no history.
        command += ["--exclude-resource-type", "unit_test", "--exclude", "resource_type:snapshot"]
    if target == "spark" and args and args[0] in ("build", "run") and "--full-refresh" not in args:
        # Spark's Parquet tables have no row-level delete: incremental models are rebuilt whole
        # (macros/spark_incremental.sql).
        command.append("--full-refresh")
    started = time.monotonic()
    errors: list[str] = []
    with _environment(env):
        try:
            outcome = dbtRunner(callbacks=[_keep_errors(errors)]).invoke(command)
        finally:
            if target == "duckdb":
                release_duckdb()
    seconds = time.monotonic() - started
    statuses: dict[str, str] = {}
    failures: list[str] = []
    results = getattr(outcome.result, "results", None) or []
    for node_result in results:
        # A run-operation's result names its macro, not a node.
        node = getattr(node_result, "node", None)
        name = node.unique_id if node is not None else getattr(node_result, "unique_id", args[0])
        status = str(node_result.status)
        statuses[name] = status
        if status in ("error", "fail", "runtime error"):
            failures.append(f"{name}: {status}: {node_result.message}")
    if outcome.exception is not None:
        failures.append(f"dbt raised {outcome.exception!r}")
    if not outcome.success and errors:
        failures.extend(errors)  # what dbt logged, e.g. a run-operation's compilation error
    result = DbtResult(tuple(command), bool(outcome.success), seconds, tuple(failures), statuses)
    if raise_on_failure and not result.success:
        raise DbtError(f"dbt {' '.join(args)} failed:\n" + "\n".join(failures or ["(no detail)"]))
    return result


# Commands that take no --vars.
_NO_VARS = ("deps", "clean", "debug", "init")


def with_registry_vars(args: Sequence[str]) -> list[str]:
    """``args`` with the table registry's vars (``warehouse.tables.grant_vars()``: who reads
    which table, for ``macros/access.sql``) added to the command's ``--vars``; vars the caller
    passes win."""
    args = list(args)
    if not args or args[0] in _NO_VARS:
        return args
    import yaml

    from warehouse import tables

    registry_vars = tables.grant_vars()
    for i, arg in enumerate(args):
        if arg == "--vars" and i + 1 < len(args):
            given = yaml.safe_load(args[i + 1]) or {}
            args[i + 1] = json.dumps({**registry_vars, **given}, default=str)
            return args
        if arg.startswith("--vars="):
            given = yaml.safe_load(arg.removeprefix("--vars=")) or {}
            args[i] = "--vars=" + json.dumps({**registry_vars, **given}, default=str)
            return args
    return [*args, "--vars", json.dumps(registry_vars)]


def _keep_errors(errors: list[str]):
    """A dbt event callback that keeps the text of error-level events."""

    def callback(event) -> None:
        if getattr(event.info, "level", "") == "error" and event.info.msg:
            errors.append(str(event.info.msg).strip())

    return callback


def release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a command.

    dbt-duckdb caches one database handle per process; while it is open nobody else in the
    process (publishing, tests, the next dbt run with other settings) can open the file with a
    different configuration. Its own ``close_all_connections`` drops the reference without
    closing, so the handle is closed here.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not installed: nothing was opened
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if environment is not None:
            environment.close()


def _selection_args(
    select: Sequence[str] | None,
    exclude: Sequence[str] | None,
    full_refresh: bool,
    dbt_vars: Mapping[str, object] | None,
) -> list[str]:
    args: list[str] = []
    if select:
        args += ["--select", *select]
    if exclude:
        args += ["--exclude", *exclude]
    if full_refresh:
        args.append("--full-refresh")
    if dbt_vars:
        args += ["--vars", json.dumps(dict(dbt_vars), default=str)]
    return args


def build(
    settings: Settings,
    *,
    target: str | None = None,
    select: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    full_refresh: bool = False,
    dbt_vars: Mapping[str, object] | None = None,
    target_path: Path | None = None,
) -> DbtResult:
    """``dbt build``: models, snapshot, seeds and every test, tests gating what follows."""
    args = ["build", *_selection_args(select, exclude, full_refresh, dbt_vars)]
    return invoke(args, settings, target=target, target_path=target_path)


def run(
    settings: Settings,
    *,
    target: str | None = None,
    select: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    full_refresh: bool = False,
    dbt_vars: Mapping[str, object] | None = None,
    target_path: Path | None = None,
) -> DbtResult:
    """``dbt run``: models only, no tests."""
    args = ["run", *_selection_args(select, exclude, full_refresh, dbt_vars)]
    return invoke(args, settings, target=target, target_path=target_path)


def source_freshness(
    settings: Settings, *, target: str | None = None, target_path: Path | None = None
) -> DbtResult:
    return invoke(
        ["source", "freshness"],
        settings,
        target=target,
        target_path=target_path,
        raise_on_failure=False,
    )


def parse(
    settings: Settings, *, target: str | None = None, target_path: Path | None = None
) -> Path:
    """``dbt parse``; returns the path of the written ``manifest.json``."""
    invoke(["parse"], settings, target=target, target_path=target_path)
    return (target_path or DBT_PROJECT_DIR / "target") / "manifest.json"


def docs_generate(
    settings: Settings, *, target: str | None = None, target_path: Path | None = None
) -> Path:
    """``dbt docs generate``: the static site (``index.html``, manifest and catalog) in the
    target folder; returns that folder. Reads column types from the built warehouse."""
    invoke(["docs", "generate"], settings, target=target, target_path=target_path)
    return target_path or DBT_PROJECT_DIR / "target"
