"""The delivery Deadline Alert's callback: a log line, an alert file and a POST to the cases
webhook (a receiver on 127.0.0.1, named by the ``cx_cases_webhook`` Airflow connection)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from pipeline import deadlines

CONTEXT = {
    "dag_run": {
        "dag_id": "run_programs",
        "dag_run_id": "asset_triggered__2026-06-30T00:00:00+00:00",
        "queued_at": "2026-06-30T06:00:00+00:00",
    },
    "deadline": {"id": "d1", "deadline_time": "2026-06-30T09:00:00+00:00"},
}


@pytest.fixture
def receiver():
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield bodies, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_missed_delivery_is_logged_written_and_posted(receiver, tmp_path, monkeypatch, caplog):
    bodies, port = receiver
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(
        "AIRFLOW_CONN_CX_CASES_WEBHOOK",
        json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{port}/alerts"}),
    )
    with caplog.at_level(logging.WARNING, logger="pipeline.deadlines"):
        done = asyncio.run(deadlines.delivery_late(context=CONTEXT))

    assert done["webhook"]["status"] == 200
    assert len(bodies) == 1
    alert = bodies[0]
    assert alert["dag_run_id"] == CONTEXT["dag_run"]["dag_run_id"]
    assert alert["message"] == (
        "the day's program exports and cases were not delivered by 2026-06-30T09:00:00+00:00"
    )
    files = list((tmp_path / "alerts").glob("deadline-run_programs-*.json"))
    assert [str(p) for p in files] == [done["file"]]
    assert json.loads(files[0].read_text()) == alert
    assert "deadline missed" in caplog.text


def test_without_a_webhook_the_alert_is_still_written(tmp_path, monkeypatch):
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_CX_CASES_WEBHOOK", raising=False)
    done = asyncio.run(deadlines.delivery_late(context=CONTEXT))
    assert "webhook" not in done
    assert (tmp_path / "alerts").is_dir() and len(list((tmp_path / "alerts").iterdir())) == 1
