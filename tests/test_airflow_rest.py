"""pipeline/airflow_rest.py against a stand-in API server: the JWT login, its renewal on 401, and
the body of a trigger; and the client pinned at Airflow's own version. The real API is exercised
by tests/integration/test_real_scheduler.py."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from config.settings import REPO_ROOT
from pipeline.airflow_rest import AirflowClient

DUE = datetime(2026, 6, 1, tzinfo=UTC)
RUN = {
    "dag_display_name": "ingest_loyalty",
    "dag_id": "ingest_loyalty",
    "dag_run_id": "manual__2026-06-01",
    "dag_versions": [],
    "run_after": DUE.isoformat(),
    "run_type": "manual",
    "state": "queued",
}


class FakeApi(BaseHTTPRequestHandler):
    tokens_issued = 0
    expired: set[str] = set()
    seen: list[tuple[str, str, str | None, dict | None]] = []

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        auth = self.headers.get("Authorization")
        FakeApi.seen.append((method, self.path, auth, body))
        if self.path == "/auth/token":
            if body != {"username": "admin", "password": "secret"}:
                return self._reply(401, {"detail": "Invalid credentials"})
            FakeApi.tokens_issued += 1
            return self._reply(201, {"access_token": f"jwt{FakeApi.tokens_issued}"})
        token = (auth or "").removeprefix("Bearer ")
        if not token.startswith("jwt") or token in FakeApi.expired:
            return self._reply(401, {"detail": "Not authenticated"})
        if method == "GET" and self.path.startswith("/api/v2/dags/ingest_loyalty"):
            return self._reply(200, dag())
        if method == "POST" and self.path == "/api/v2/dags/ingest_loyalty/dagRuns":
            return self._reply(200, RUN)
        return self._reply(404, {"detail": self.path})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


def dag() -> dict:
    return {
        "dag_id": "ingest_loyalty",
        "dag_display_name": "ingest_loyalty",
        "file_token": "t",
        "fileloc": "dags/ingest_loyalty.py",
        "is_paused": True,
        "is_stale": False,
        "owners": ["cx"],
        "tags": [],
        "timetable_partitioned": False,
        "timetable_periodic": True,
        "has_import_errors": False,
        "has_task_concurrency_limits": False,
        "is_backfillable": True,
        "max_active_tasks": 16,
        "max_consecutive_failed_dag_runs": 0,
        "next_dagrun_run_after": DUE.isoformat(),
        "next_dagrun_logical_date": (DUE - timedelta(days=1)).isoformat(),
        "next_dagrun_data_interval_start": (DUE - timedelta(days=1)).isoformat(),
        "next_dagrun_data_interval_end": DUE.isoformat(),
    }


@pytest.fixture
def api():
    FakeApi.tokens_issued, FakeApi.expired, FakeApi.seen = 0, set(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_it_logs_in_for_a_token_and_triggers_the_due_slot(api):
    with AirflowClient(api, "admin", "secret") as client:
        run = client.trigger_next_scheduled("ingest_loyalty", conf={"k": 1})
    assert run.dag_run_id == "manual__2026-06-01" and run.state == "queued"
    login, get_dag, trigger = FakeApi.seen
    assert login[:2] == ("POST", "/auth/token") and login[2] is None
    assert get_dag[2] == trigger[2] == "Bearer jwt1"
    assert trigger[3] == {
        "logical_date": "2026-05-31T00:00:00+00:00",
        "data_interval_start": "2026-05-31T00:00:00+00:00",
        "data_interval_end": "2026-06-01T00:00:00+00:00",
        "conf": {"k": 1},
    }


def test_an_expired_token_is_renewed_once(api):
    with AirflowClient(api, "admin", "secret") as client:
        client.dag("ingest_loyalty")
        FakeApi.expired.add("jwt1")
        assert client.dag("ingest_loyalty").dag_id == "ingest_loyalty"
    assert FakeApi.tokens_issued == 2
    assert [auth for _, path, auth, _ in FakeApi.seen if path != "/auth/token"] == [
        "Bearer jwt1",
        "Bearer jwt1",
        "Bearer jwt2",
    ]


def test_wrong_credentials_fail_with_the_answer(api):
    with AirflowClient(api, "admin", "wrong") as client, pytest.raises(RuntimeError, match="401"):
        client.dag("ingest_loyalty")


def test_the_client_is_pinned_at_airflows_version():
    pins = dict(
        re.findall(r"^([a-z0-9-]+)==(\S+)", (REPO_ROOT / "constraints.txt").read_text(), re.M)
    )
    assert pins["apache-airflow-client"] == pins["apache-airflow"]
