"""Airflow's environment for local runs: a project-local home on SQLite, no example DAGs.

Called before Airflow is imported by ``make run``, the tests and the CLI, so all three see the
same configuration. Values already in the environment win.
"""

from __future__ import annotations

import os
from pathlib import Path

from config.settings import REPO_ROOT


def airflow_defaults(home: Path | None = None) -> dict[str, str]:
    # An AIRFLOW_HOME already set keeps its own database, never the repository's.
    home = home or Path(os.environ.get("AIRFLOW_HOME") or REPO_ROOT / ".airflow")
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        # Two cores here: a handful of workers, not Airflow's default of 32 (about 130 MB each).
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
        "NO_PROXY": "*",
        # Cosmos reports usage to a web endpoint by default; this project stays offline.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "DO_NOT_TRACK": "1",
    }


def apply_airflow_env(home: Path | None = None) -> dict[str, str]:
    """Set the defaults into ``os.environ`` where unset; return the effective values."""
    for key, value in airflow_defaults(home).items():
        os.environ.setdefault(key, value)
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    return {key: os.environ[key] for key in airflow_defaults(home)}
