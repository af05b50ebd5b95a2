"""A small client of Airflow 3's REST API (``/api/v2``), for ``make up`` and the end-to-end tests.

Authentication is a JWT from ``POST /auth/token`` (the SimpleAuthManager's login), sent as a
bearer token; it is renewed when the API answers 401.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

TERMINAL_RUN_STATES = {"success", "failed"}
FAILED_TASK_STATES = {"failed", "up_for_retry", "upstream_failed"}


class AirflowApiError(RuntimeError):
    pass


def _queued(run: dict) -> datetime:
    """When a run was queued (or is due, for one not queued yet)."""
    return datetime.fromisoformat((run.get("queued_at") or run["run_after"]).replace("Z", "+00:00"))


class AirflowClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30):
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)
        self._token: str | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------
    def token(self) -> str:
        response = self._http.post("/auth/token", json=self._credentials)
        if response.status_code not in (200, 201):
            raise AirflowApiError(f"login failed: HTTP {response.status_code} {response.text}")
        self._token = response.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs) -> Any:
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self._token or self.token()}"}
            response = self._http.request(method, f"/api/v2{path}", headers=headers, **kwargs)
            if response.status_code == 401 and attempt == 0:
                self._token = None
                continue
            break
        if response.status_code >= 400:
            raise AirflowApiError(
                f"{method} /api/v2{path}: HTTP {response.status_code} {response.text[:500]}"
            )
        return response.json() if response.content else None

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params=params)

    # -- DAGs -----------------------------------------------------------------------------------
    def dags(self) -> list[dict]:
        return self.get("/dags", limit=100)["dags"]

    def import_errors(self) -> list[dict]:
        return self.get("/importErrors", limit=100)["import_errors"]

    def set_paused(self, dag_id: str, paused: bool) -> dict:
        return self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def wait_for_dags(self, expected: Iterable[str], timeout: float = 300) -> dict:
        """Wait until the API lists every expected DAG or reports an import error."""
        expected = set(expected)
        deadline = time.monotonic() + timeout
        while True:
            listed = {dag["dag_id"] for dag in self.dags()}
            errors = [f"{e['filename']}: {e['stack_trace'][-300:]}" for e in self.import_errors()]
            if expected <= listed or errors:
                return {"dags": sorted(listed), "import_errors": errors}
            if time.monotonic() > deadline:
                raise AirflowApiError(
                    f"after {timeout:.0f}s the API lists {sorted(listed)}, "
                    f"missing {sorted(expected - listed)}"
                )
            time.sleep(3)

    # -- runs -----------------------------------------------------------------------------------
    def trigger(
        self,
        dag_id: str,
        logical_date: datetime | None = None,
        conf: dict | None = None,
        run_id: str | None = None,
    ) -> dict:
        body: dict[str, Any] = {
            "logical_date": logical_date.isoformat() if logical_date else None,
            "conf": conf or {},
        }
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)

    def trigger_next_scheduled(self, dag_id: str, conf: dict | None = None) -> dict:
        """Trigger now the run the schedule would start next, if it is due.

        The run takes the due slot's logical date and data interval, so the scheduler, which
        never creates a second run for a logical date, does not start the same interval again
        when the DAG is unpaused. A DAG with nothing due gets a plain manual run.
        """
        dag = self.get(f"/dags/{dag_id}")
        due = dag.get("next_dagrun_run_after")
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if due and datetime.fromisoformat(due.replace("Z", "+00:00")) <= datetime.now(UTC):
            body["logical_date"] = dag["next_dagrun_logical_date"]
            body["data_interval_start"] = dag.get("next_dagrun_data_interval_start")
            body["data_interval_end"] = dag.get("next_dagrun_data_interval_end")
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100, order_by="-run_after")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)[
            "task_instances"
        ]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        data = self.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{max(try_number, 1)}",
            full_content="true",
        )
        content = data.get("content") if isinstance(data, dict) else data
        if not isinstance(content, list):
            return str(content)
        lines = []
        for line in content:
            if not isinstance(line, dict):
                lines.append(str(line))
                continue
            lines.append(str(line.get("event", "")))
            for error in line.get("error_detail") or []:
                lines.append(f"{error.get('exc_type')}: {error.get('exc_value')}")
        return "\n".join(lines)

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str | None = None,
        *,
        after: datetime | None = None,
        timeout: float = 900,
        poll: float = 5,
    ) -> dict:
        """Wait for a run to finish: ``run_id``, or the first run of ``dag_id`` queued after
        ``after``. Raises as soon as a task fails or waits for a retry, with its log."""
        deadline = time.monotonic() + timeout
        while True:
            run = self._find_run(dag_id, run_id, after)
            if run is not None:
                state = run["state"]
                if state == "success":
                    return run
                failing = [
                    ti["task_id"]
                    for ti in self.task_instances(dag_id, run["dag_run_id"])
                    if ti["state"] in FAILED_TASK_STATES
                ]
                if state == "failed" or failing:
                    raise AirflowApiError(
                        f"{dag_id} run {run['dag_run_id']} is {state} (failing: {failing})\n"
                        + self.failure_report(dag_id, run["dag_run_id"])
                    )
            if time.monotonic() > deadline:
                found = f"state {run['state']}" if run else "no run yet"
                raise AirflowApiError(f"{dag_id}: not finished after {timeout:.0f}s ({found})")
            time.sleep(poll)

    def _find_run(self, dag_id: str, run_id: str | None, after: datetime | None) -> dict | None:
        if run_id:
            return self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
        runs = [r for r in self.dag_runs(dag_id) if after is None or _queued(r) >= after]
        return min(runs, key=_queued) if runs else None

    def failure_report(self, dag_id: str, run_id: str) -> str:
        """The failed (or retrying) tasks of a run with the end of each one's log."""
        parts = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] in FAILED_TASK_STATES:
                log = self.task_log(dag_id, run_id, ti["task_id"], ti.get("try_number") or 1)
                parts.append(f"--- {dag_id}.{ti['task_id']} ({ti['state']}):\n{log[-3000:]}")
        return "\n".join(parts) or f"{dag_id} {run_id}: no failed task found"
