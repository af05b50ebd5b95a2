"""Airflow 3's REST API (``/api/v2``) through ``apache-airflow-client``, for ``make up`` and the
end-to-end tests: the few calls they make, and waiting for DAGs and runs.

The client has no login of its own: its bearer token is a JWT from ``POST /auth/token`` (the
SimpleAuthManager's login, outside ``/api/v2``), fetched here and renewed when the API answers
401. Responses are the client's typed models (``DAGRunResponse`` and so on); HTTP errors are
its ``ApiException``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

from airflow_client.client import (
    ApiClient,
    Configuration,
    DAGApi,
    DAGPatchBody,
    DagRunApi,
    ImportErrorApi,
    TaskInstanceApi,
    TriggerDAGRunPostBody,
)
from airflow_client.client.exceptions import NotFoundException, UnauthorizedException
from airflow_client.client.models import (
    DAGResponse,
    DAGRunResponse,
    HITLDetail,
    HITLDetailResponse,
    ImportErrorResponse,
    TaskInstanceResponse,
    UpdateHITLDetailPayload,
)

FAILED_TASK_STATES = {"failed", "up_for_retry", "upstream_failed"}
T = TypeVar("T")


class AirflowApiError(RuntimeError):
    pass


def _queued(run: DAGRunResponse) -> datetime:
    """When a run was queued (or is due, for one not queued yet)."""
    return run.queued_at or run.run_after


class AirflowClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30):
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self._timeout = float(timeout)
        self._api = ApiClient(Configuration(host=self.base_url))
        self._dags = DAGApi(self._api)
        self._runs = DagRunApi(self._api)
        self._tasks = TaskInstanceApi(self._api)
        self._errors = ImportErrorApi(self._api)

    def close(self) -> None:
        self._api.rest_client.pool_manager.clear()

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------
    def token(self) -> str:
        response = self._api.rest_client.request(
            "POST",
            f"{self.base_url}/auth/token",
            headers={"Content-Type": "application/json"},
            body=self._credentials,
            _request_timeout=self._timeout,
        )
        body = response.read().decode()
        if response.status not in (200, 201):
            raise AirflowApiError(f"login failed: HTTP {response.status} {body}")
        self._api.configuration.access_token = json.loads(body)["access_token"]
        return self._api.configuration.access_token

    def _call(self, method: Callable[..., T], *args, **kwargs) -> T:
        """One API call, logging in first, and again once if the token has expired."""
        if self._api.configuration.access_token is None:
            self.token()
        try:
            return method(*args, _request_timeout=self._timeout, **kwargs)
        except UnauthorizedException:
            self.token()
            return method(*args, _request_timeout=self._timeout, **kwargs)

    # -- DAGs -----------------------------------------------------------------------------------
    def dags(self) -> list[DAGResponse]:
        return self._call(self._dags.get_dags, limit=100).dags

    def dag(self, dag_id: str) -> DAGResponse:
        return self._call(self._dags.get_dag, dag_id)

    def import_errors(self) -> list[ImportErrorResponse]:
        return self._call(self._errors.get_import_errors, limit=100).import_errors

    def set_paused(self, dag_id: str, paused: bool) -> DAGResponse:
        return self._call(self._dags.patch_dag, dag_id, DAGPatchBody(is_paused=paused))

    def wait_for_dags(self, expected: Iterable[str], timeout: float = 300) -> dict:
        """Wait until the API lists every expected DAG or reports an import error."""
        expected = set(expected)
        deadline = time.monotonic() + timeout
        while True:
            listed = {dag.dag_id for dag in self.dags()}
            errors = [f"{e.filename}: {e.stack_trace[-300:]}" for e in self.import_errors()]
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
    ) -> DAGRunResponse:
        body = TriggerDAGRunPostBody(logical_date=logical_date, conf=conf or {}, dag_run_id=run_id)
        return self._call(self._runs.trigger_dag_run, dag_id, body)

    def trigger_next_scheduled(self, dag_id: str, conf: dict | None = None) -> DAGRunResponse:
        """Trigger now the run the schedule would start next, if it is due.

        The run takes the due slot's logical date and data interval, so the scheduler, which
        never creates a second run for a logical date, does not start the same interval again
        when the DAG is unpaused. A DAG with nothing due gets a plain manual run.
        """
        dag = self.dag(dag_id)
        body = TriggerDAGRunPostBody(logical_date=None, conf=conf or {})
        if dag.next_dagrun_run_after and dag.next_dagrun_run_after <= datetime.now(UTC):
            body = TriggerDAGRunPostBody(
                logical_date=dag.next_dagrun_logical_date,
                data_interval_start=dag.next_dagrun_data_interval_start,
                data_interval_end=dag.next_dagrun_data_interval_end,
                conf=conf or {},
            )
        return self._call(self._runs.trigger_dag_run, dag_id, body)

    def dag_run(self, dag_id: str, run_id: str) -> DAGRunResponse:
        return self._call(self._runs.get_dag_run, dag_id, run_id)

    def dag_runs(self, dag_id: str) -> list[DAGRunResponse]:
        runs = self._call(self._runs.get_dag_runs, dag_id, limit=100, order_by=["-run_after"])
        return runs.dag_runs

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstanceResponse]:
        return self._call(self._tasks.get_task_instances, dag_id, run_id, limit=100).task_instances

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        log = self._call(
            self._tasks.get_log, dag_id, run_id, task_id, max(try_number, 1), full_content=True
        )
        lines = []
        for line in log.content.actual_instance or []:
            if isinstance(line, str):
                lines.append(line)
                continue
            lines.append(line.event)
            for error in line.additional_properties.get("error_detail") or []:
                lines.append(f"{error.get('exc_type')}: {error.get('exc_value')}")
        return "\n".join(lines)

    # -- human in the loop -----------------------------------------------------------------
    def hitl_detail(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> HITLDetail:
        """What a human-in-the-loop task asks (``GET .../{task_id}/{map_index}/hitlDetails``)."""
        return self._call(self._tasks.get_hitl_detail, dag_id, run_id, task_id, map_index)

    def respond(
        self, dag_id: str, run_id: str, task_id: str, options: list[str], map_index: int = -1
    ) -> HITLDetailResponse:
        """Answer it, as the logged-in user (``PATCH .../{map_index}/hitlDetails``)."""
        body = UpdateHITLDetailPayload(chosen_options=options)
        return self._call(self._tasks.update_hitl_detail, dag_id, run_id, task_id, map_index, body)

    def wait_for_question(
        self, dag_id: str, run_id: str, task_id: str, timeout: float = 900, poll: float = 5
    ) -> HITLDetail:
        """Wait until ``task_id`` waits for a person; raises if the run fails first.

        The task writes its question a moment before it parks in ``awaiting_input``; an answer
        in between finds no waiting task to resume, so both are waited for."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                detail = self.hitl_detail(dag_id, run_id, task_id)
                state = detail.task_instance.state
                if not detail.response_received and state == "awaiting_input":
                    return detail
            except NotFoundException:
                pass
            run = self.dag_run(dag_id, run_id)
            failing = [
                ti.task_id
                for ti in self.task_instances(dag_id, run_id)
                if ti.state in FAILED_TASK_STATES
            ]
            if run.state in ("failed", "success") or failing:
                raise AirflowApiError(
                    f"{dag_id} run {run_id} is {run.state.value} before {task_id} asked "
                    f"(failing: {failing})\n" + self.failure_report(dag_id, run_id)
                )
            if time.monotonic() > deadline:
                raise AirflowApiError(f"{dag_id}.{task_id}: no question after {timeout:.0f}s")
            time.sleep(poll)

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str | None = None,
        *,
        after: datetime | None = None,
        timeout: float = 900,
        poll: float = 5,
    ) -> DAGRunResponse:
        """Wait for a run to finish: ``run_id``, or the first run of ``dag_id`` queued after
        ``after``. Raises as soon as a task fails or waits for a retry, with its log.

        Not the client's ``wait_dag_run_until_finished``: that waits for a known run id to
        end, and this one also finds a run the scheduler started, and stops at the first
        failing task rather than after the retries."""
        deadline = time.monotonic() + timeout
        while True:
            run = self._find_run(dag_id, run_id, after)
            if run is not None:
                if run.state == "success":
                    return run
                failing = [
                    ti.task_id
                    for ti in self.task_instances(dag_id, run.dag_run_id)
                    if ti.state in FAILED_TASK_STATES
                ]
                if run.state == "failed" or failing:
                    raise AirflowApiError(
                        f"{dag_id} run {run.dag_run_id} is {run.state.value} "
                        f"(failing: {failing})\n" + self.failure_report(dag_id, run.dag_run_id)
                    )
            if time.monotonic() > deadline:
                found = f"state {run.state.value}" if run else "no run yet"
                raise AirflowApiError(f"{dag_id}: not finished after {timeout:.0f}s ({found})")
            time.sleep(poll)

    def _find_run(
        self, dag_id: str, run_id: str | None, after: datetime | None
    ) -> DAGRunResponse | None:
        if run_id:
            return self.dag_run(dag_id, run_id)
        runs = [r for r in self.dag_runs(dag_id) if after is None or _queued(r) >= after]
        return min(runs, key=_queued) if runs else None

    def failure_report(self, dag_id: str, run_id: str) -> str:
        """The failed (or retrying) tasks of a run with the end of each one's log."""
        parts = []
        for ti in self.task_instances(dag_id, run_id):
            if ti.state in FAILED_TASK_STATES:
                log = self.task_log(dag_id, run_id, ti.task_id, ti.try_number or 1)
                parts.append(f"--- {dag_id}.{ti.task_id} ({ti.state.value}):\n{log[-3000:]}")
        return "\n".join(parts) or f"{dag_id} {run_id}: no failed task found"
