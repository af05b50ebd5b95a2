"""Test-wide setup: Airflow gets a throwaway home on SQLite before anything imports it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pipeline.airflow_env import apply_airflow_env

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="cx-airflow-test-"))
for _key in [k for k in os.environ if k.startswith("AIRFLOW")]:
    del os.environ[_key]
apply_airflow_env(_AIRFLOW_HOME)
