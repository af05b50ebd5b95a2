"""When the day's exports and cases are late: the callback of run_programs' Deadline Alert.

``run_programs`` carries ``deadline=delivery_deadline(settings)``: if a run has not finished
(exports published, cases delivered and posted) ``CX_DELIVERY_DEADLINE_MINUTES`` after it was
queued, the scheduler marks the deadline missed and the triggerer awaits ``delivery_late``. It

1. logs a warning naming the DAG run and the deadline;
2. writes ``<data>/alerts/deadline-<dag_id>-<run_id>.json`` (what the alert said, for anyone
   without the logs, and the proof a test looks for);
3. POSTs the same to the cases webhook (the ``cx_cases_webhook`` connection, with the cases'
   retries: ``programs.cases.post``); with no connection nothing is posted.

A run that finishes before its deadline removes it: nothing fires.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import timedelta
from pathlib import Path

log = logging.getLogger(__name__)

CALLBACK = "pipeline.deadlines.delivery_late"
WHAT = "the day's program exports and cases"


def delivery_deadline(minutes: int):
    """The Deadline Alert for run_programs: ``minutes`` after the run is queued (an
    asset-triggered run has no logical date to count from)."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes),
        callback=AsyncCallback(CALLBACK, kwargs={"what": WHAT}),
        name="delivery",
    )


def alert_body(what: str, context: dict | None) -> dict:
    """What the alert says: which run, due when, and what is late."""
    run = (context or {}).get("dag_run") or {}
    deadline = (context or {}).get("deadline") or {}
    return {
        "kind": "deadline_missed",
        "what": what,
        "dag_id": run.get("dag_id"),
        "dag_run_id": run.get("dag_run_id"),
        "queued_at": run.get("queued_at"),
        "deadline": str(deadline.get("deadline_time")),
        "message": f"{what} were not delivered by {deadline.get('deadline_time')}",
    }


def _file_name(body: dict) -> str:
    raw = f"deadline-{body['dag_id']}-{body['dag_run_id']}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", raw) + ".json"


def record(body: dict, data_dir: Path) -> Path:
    """Write the alert under ``<data>/alerts/`` (replaced if the same run's alert fires again)."""
    folder = data_dir / "alerts"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _file_name(body)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
    tmp.replace(path)
    return path


def notify(body: dict) -> dict:
    """Log, write the alert file and POST it to the cases webhook; returns what was done."""
    from config import load_settings
    from programs.cases import post, webhook_from_airflow

    log.warning("deadline missed: %s (run %s)", body["message"], body["dag_run_id"])
    done = {"file": str(record(body, load_settings().data_dir))}
    webhook = webhook_from_airflow()
    if webhook is not None:
        done["webhook"] = post(webhook, body, attempts=3, backoff_seconds=5)
    return done


async def delivery_late(what: str = WHAT, context: dict | None = None) -> dict:
    """The Deadline Alert's callback (runs in the triggerer): the blocking work in a thread."""
    return await asyncio.to_thread(notify, alert_body(what, context))
