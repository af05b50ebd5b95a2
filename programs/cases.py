"""Cases: a person answers each moment that hurts, and the loop is closed.

Rules live in ``programs/cases.yml`` (``programs/case_rules.py`` checks them). Every run:

1. reads the survey answers and contacts since the cases' start (the first run's date minus
   ``lookback_days``) up to the run's as-of date, through the store, and gives each record the
   first trigger its condition meets and the closers it matches (``classify``);
2. reads the CX team's update files (``<cases_dir>/updates/*.csv``: ``case_id,status,note`` and
   an optional ``closed_at``), keeps the good rows and quarantines the others with a reason that
   names the file and the line (``read_updates``);
3. replays the records and every update ever applied, in time order (``replay``): a trigger opens
   a case unless the member already has one open for it (then the signal is counted on it); a
   later closer (a promoter answer, a resolved contact) or a team update closes it. A case's id
   is a hash of member, trigger and opening record, so reruns give the same ids;
4. writes ``cases`` (every case, as replayed), ``case_updates`` (the team's rows, applied once)
   and ``case_runs`` (one row per run) in one transaction;
5. publishes the day's new and overdue cases as ``cases.csv``, ``cases.json`` and
   ``manifest.json`` under ``<cases_dir>/deliveries/<date>/`` (whole or not at all, personal-file
   modes, ``latest``), like the program exports;
6. moves the update files aside, and POSTs the delivery to the ``cx_cases_webhook`` Airflow
   connection with retries (no connection: no POST, and the log says so).

Case state is a function of the records and the updates, never of when a run happened, so the
state at any past time comes from ``opened_at``/``closed_at``/``due_at`` (``state_at``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from programs import eligibility, exports
from programs.case_rules import KNOWN_VALUES, SOURCE_COLUMNS, SOURCES, CaseRules
from programs.case_rules import load as load_rules

log = logging.getLogger(__name__)

OWNER = "programs"
CASE_COLUMNS = {
    "case_id": "varchar",
    "member_id": "varchar",
    "trigger": "varchar",
    "severity": "varchar",
    "queue": "varchar",
    "opening_source": "varchar",
    "opening_record_id": "varchar",
    "opened_at": "timestamp",
    "due_at": "timestamp",
    "signals": "integer",
    "last_signal_at": "timestamp",
    "status": "varchar",
    "closed_at": "timestamp",
    "close_reason": "varchar",
    "closing_record_id": "varchar",
    "is_closed_in_time": "boolean",
    "as_of_date": "date",
}
UPDATE_COLUMNS = {
    "case_id": "varchar",
    "member_id": "varchar",
    "status": "varchar",
    "note": "varchar",
    "closed_at": "timestamp",
    "file_name": "varchar",
    "file_sha256": "varchar",
    "line": "integer",
    "applied_on": "date",
}
RUN_COLUMNS = {
    "as_of_date": "date",
    "start_at": "timestamp",
    "new_cases": "integer",
    "overdue_cases": "integer",
    "open_cases": "integer",
    "closed_cases": "integer",
    "updates_applied": "integer",
    "updates_quarantined": "integer",
    "delivery": "varchar",
    "rules_sha256": "varchar",
}
FILE_COLUMNS: dict[str, str] = {
    "case_id": "the case's id (stable: a hash of member, trigger and opening record)",
    "delivery": "new (opened since the last delivery) or overdue (open past its due time)",
    "trigger": "what opened the case (programs/cases.yml)",
    "trigger_title": "the trigger in words",
    "severity": "the trigger's severity",
    "queue": "the queue that owns the case",
    "member_id": "the loyalty member id",
    "first_name": "first name, for the greeting",
    "email": "the member's email (a service follow-up of their own moment, not marketing)",
    "phone_e164": "the member's phone number",
    "opened_at": "when the opening record arrived (UTC)",
    "due_at": "opened_at plus the severity's service level (UTC)",
    "is_overdue": "true when the due time has passed and the case is still open",
    "signals": "records of the same trigger while the case was open (1 = just the opening one)",
    "last_signal_at": "the latest of them (UTC)",
    "opening_source": "surveys or calls",
    "opening_record_id": "the survey response id or call id that opened the case",
}
UPDATE_STATUSES = ("closed",)
CONTACT_COLUMNS = ("first_name", "email", "phone_e164")
CONNECTION_ID = "cx_cases_webhook"
RETENTION_DAYS = 90
MIN_RETENTION_GROUP = 20


class CaseUpdateError(ValueError):
    """One row of an update file cannot be applied; the reason names the file and line."""


# ---------------------------------------------------------------------------------------------
# Reading and classifying the records


def _naive_utc(values) -> pd.Series:
    """Timestamps as naive UTC (DuckDB gives naive UTC, PostgreSQL timezone-aware)."""
    series = pd.to_datetime(pd.Series(values), utc=True)
    return series.dt.tz_convert(None).astype("datetime64[us]")


def read_records(store, source: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The ``source``'s records with a member, in [start, end): ``record_id``, ``member_id``,
    ``signal_at`` and the columns a condition may use (a column the mart lacks reads as null)."""
    table, key, at = SOURCES[source]
    columns = SOURCE_COLUMNS[source]
    present = set(store.columns(table)) if store.exists(table) else set()
    if not present:
        frame = pd.DataFrame(columns=["record_id", "member_id", "signal_at", *columns])
    else:
        wanted = ", ".join(c if c in present else f"null as {c}" for c in columns)
        frame = store.read(
            f"select {key} as record_id, member_id, {at} as signal_at, {wanted} from {table} "
            f"where member_id is not null and {at} >= $start and {at} < $end "
            "order by signal_at, record_id",
            {"start": start, "end": end},
        )
        missing = sorted(set(columns) - present)
        if missing:
            log.warning("%s has no column %s: read as null", table, ", ".join(missing))
    kinds = {"boolean": "boolean", "bigint": "Int64", "varchar": object}
    for name, (kind, _) in columns.items():
        frame[name] = frame[name].astype(kinds.get(kind, object))
    frame["signal_at"] = _naive_utc(frame["signal_at"])
    frame["record_id"] = frame["record_id"].astype(str)
    frame["member_id"] = frame["member_id"].astype(str)
    return frame


def classify(rules: CaseRules, records: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per record: ``source``, ``record_id``, ``member_id``, ``signal_at``, the first
    ``trigger`` whose condition it meets (None when none), and the ``closers`` it matches."""
    parts = []
    for source, frame in records.items():
        frame = frame.reset_index(drop=True)
        trigger = pd.Series([None] * len(frame), dtype=object)
        for rule in (t for t in rules.triggers if t.source == source):
            if not len(frame):
                break
            hit = eligibility.evaluate(rule.condition, frame, SOURCE_COLUMNS[source])
            trigger = trigger.where(trigger.notna() | ~hit, rule.name)
        closers = [[] for _ in range(len(frame))]
        for closer in (c for c in rules.closers if c.source == source):
            if not len(frame):
                break
            hit = eligibility.evaluate(closer.condition, frame, SOURCE_COLUMNS[source])
            for position in np.flatnonzero(hit.to_numpy()):
                closers[position].append(closer.name)
        parts.append(
            pd.DataFrame(
                {
                    "source": source,
                    "record_id": frame["record_id"],
                    "member_id": frame["member_id"],
                    "signal_at": frame["signal_at"],
                    "trigger": trigger,
                    "closers": [tuple(c) for c in closers],
                }
            )
        )
    signals = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    relevant = signals["trigger"].notna() | signals["closers"].map(bool) if len(signals) else []
    return signals[relevant].reset_index(drop=True) if len(signals) else signals


# ---------------------------------------------------------------------------------------------
# Replaying


def case_id(member_id: str, trigger: str, record_id: str) -> str:
    digest = hashlib.sha256(f"{member_id}|{trigger}|{record_id}".encode()).hexdigest()
    return f"CASE-{digest[:16]}"


class _Replay:
    """The cases as events arrive: at most one open case per member and trigger."""

    def __init__(self, rules: CaseRules):
        self.rules = rules
        self.closes = {
            c.name: [t.name for t in rules.triggers if c.name in t.closed_by] for c in rules.closers
        }
        self.cases: dict[str, dict] = {}
        self.open_case: dict[tuple[str, str], str] = {}

    def close(self, case: dict, at: datetime, reason: str, record: str | None) -> None:
        case.update(status="closed", closed_at=at, close_reason=reason, closing_record_id=record)
        self.open_case.pop((case["member_id"], case["trigger"]), None)

    def update(self, row, at: datetime) -> None:
        case = self.cases.get(row.case_id)
        if case is not None and case["status"] == "open" and case["opened_at"] <= at:
            self.close(case, at, "team_update", None)

    def record(self, row, at: datetime) -> None:
        for closer in row.closers:
            for trigger in self.closes[closer]:
                opened = self.open_case.get((row.member_id, trigger))
                if opened is not None and self.cases[opened]["opened_at"] < at:
                    self.close(self.cases[opened], at, closer, row.record_id)
        if row.trigger is None or pd.isna(row.trigger):
            return
        key = (row.member_id, row.trigger)
        if key in self.open_case:
            case = self.cases[self.open_case[key]]
            case["signals"] += 1
            case["last_signal_at"] = at
            return
        rule = self.rules.trigger(row.trigger)
        identifier = case_id(row.member_id, row.trigger, row.record_id)
        self.cases[identifier] = {
            "case_id": identifier,
            "member_id": row.member_id,
            "trigger": row.trigger,
            "severity": rule.severity,
            "queue": rule.queue,
            "opening_source": row.source,
            "opening_record_id": row.record_id,
            "opened_at": at,
            "due_at": at + timedelta(hours=self.rules.service_levels[rule.severity]),
            "signals": 1,
            "last_signal_at": at,
            "status": "open",
            "closed_at": None,
            "close_reason": None,
            "closing_record_id": None,
        }
        self.open_case[key] = identifier


def replay(
    rules: CaseRules, signals: pd.DataFrame, updates: pd.DataFrame, end: datetime
) -> pd.DataFrame:
    """Every case the signals and updates before ``end`` give, with its state at ``end``.

    Events run in time order; at the same instant a team update comes before a record, and a
    record's closers before its trigger (a member's resolved call closes the earlier unresolved
    case, then may open its own). A closer closes only cases opened strictly before it.
    """
    events = [(row.closed_at, 0, row.case_id, row) for row in updates.itertuples(index=False)]
    events += [(row.signal_at, 1, row.record_id, row) for row in signals.itertuples(index=False)]
    events.sort(key=lambda event: event[:3])
    state = _Replay(rules)
    for at, kind, _, row in events:
        if at >= end:
            break
        if kind == 0:
            state.update(row, at)
        else:
            state.record(row, at)
    frame = pd.DataFrame(list(state.cases.values()), columns=list(CASE_COLUMNS)[:-2])
    for column in ("opened_at", "due_at", "last_signal_at", "closed_at"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
    frame["signals"] = frame["signals"].astype(int)
    frame["is_closed_in_time"] = (frame["status"] == "closed") & (
        frame["closed_at"] <= frame["due_at"]
    )
    return frame.sort_values(["opened_at", "case_id"], ignore_index=True)


def state_at(cases: pd.DataFrame, at: datetime) -> pd.DataFrame:
    """Each case opened before ``at`` with ``is_open`` and ``is_overdue`` as they were then:
    from ``opened_at``, ``closed_at`` and ``due_at``, not from today's status."""
    opened = cases[cases["opened_at"] < at].copy()
    opened["is_open"] = opened["closed_at"].isna() | (opened["closed_at"] >= at)
    opened["is_overdue"] = opened["is_open"] & (opened["due_at"] <= at)
    return opened


# ---------------------------------------------------------------------------------------------
# The team's update files


@dataclass
class Updates:
    """Update rows to apply, rows refused (with reasons), and the files read."""

    rows: pd.DataFrame
    rejected: list[dict] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    already_applied: list[Path] = field(default_factory=list)


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _parse_time(text: str) -> datetime:
    value = pd.Timestamp(text)
    if value.tzinfo is not None:
        value = value.tz_convert("UTC").tz_localize(None)
    return value.to_pydatetime()


def _check_row(row: Mapping[str, str], where: str, known: pd.DataFrame, end: datetime) -> dict:
    """One good update row, or ``CaseUpdateError`` saying what is wrong with it."""
    identifier = (row.get("case_id") or "").strip()
    status = (row.get("status") or "").strip().lower()
    if not identifier:
        raise CaseUpdateError(f"{where}: case_id is empty")
    if identifier not in known.index:
        raise CaseUpdateError(f"{where}: no case {identifier!r} (ids come from the case files)")
    if status not in UPDATE_STATUSES:
        raise CaseUpdateError(
            f"{where}: status {status!r} is not one of {', '.join(UPDATE_STATUSES)} "
            "(the team closes cases; the rules open them)"
        )
    closed_text = (row.get("closed_at") or "").strip()
    try:
        closed_at = _parse_time(closed_text) if closed_text else end - timedelta(microseconds=1)
    except ValueError:
        raise CaseUpdateError(
            f"{where}: closed_at {closed_text!r} is not a time (YYYY-MM-DD HH:MM, UTC)"
        ) from None
    opened_at = known.at[identifier, "opened_at"]
    if closed_at < opened_at:
        raise CaseUpdateError(f"{where}: closed_at {closed_at} is before the case opened")
    if closed_at >= end:
        raise CaseUpdateError(f"{where}: closed_at {closed_at} is after this run's data ({end})")
    return {
        "case_id": identifier,
        "member_id": known.at[identifier, "member_id"],
        "status": status,
        "note": (row.get("note") or "").strip() or None,
        "closed_at": closed_at,
    }


def read_updates(
    folder: Path, known: pd.DataFrame, applied: set[str], end: datetime, on: date
) -> Updates:
    """The update files in ``folder`` checked against the ``known`` cases (indexed by case id).

    A file already applied (same content, by SHA-256) is only moved aside again. A file without
    the ``case_id`` and ``status`` columns is refused whole."""
    rows, rejected, files, seen = [], [], [], []
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        data = path.read_bytes()
        digest = _sha256_bytes(data)
        if digest in applied:
            seen.append(path)
            continue
        files.append(path)
        try:
            reader = csv.DictReader(data.decode("utf-8-sig").splitlines())
            header = [name.strip().lower() for name in reader.fieldnames or []]
        except UnicodeDecodeError:
            rejected.append({"file": path.name, "line": 1, "reason": f"{path.name}: not UTF-8"})
            continue
        missing = [c for c in ("case_id", "status") if c not in header]
        if missing:
            rejected.append(
                {
                    "file": path.name,
                    "line": 1,
                    "reason": f"{path.name}, line 1: the header has no {', '.join(missing)} "
                    "(expected case_id,status,note and optionally closed_at)",
                }
            )
            continue
        reader.fieldnames = header
        for line, raw in enumerate(reader, start=2):
            where = f"{path.name}, line {line}"
            try:
                good = _check_row(raw, where, known, end)
            except CaseUpdateError as error:
                rejected.append({"file": path.name, "line": line, **raw, "reason": str(error)})
                continue
            rows.append({**good, "file_name": path.name, "file_sha256": digest, "line": line})
    frame = pd.DataFrame(rows, columns=list(UPDATE_COLUMNS)[:-1])
    frame["applied_on"] = pd.Timestamp(on)
    frame["closed_at"] = pd.to_datetime(frame["closed_at"])
    return Updates(frame, rejected, files, seen)


def _set_aside(updates: Updates, folder: Path, on: date, group: str | None) -> None:
    """Processed files to ``processed/<date>/``, refused rows to ``quarantine/`` (notes are
    free text about members, so both get the personal-file modes)."""
    from privacy import personal_files

    if updates.rejected:
        quarantine = folder / "quarantine"
        quarantine.mkdir(parents=True, exist_ok=True)
        personal_files.protect(quarantine, group)
        for name in sorted({r["file"] for r in updates.rejected}):
            rows = [r for r in updates.rejected if r["file"] == name]
            target = quarantine / f"{on.isoformat()}-{Path(name).stem}.rejected.csv"
            frame = pd.DataFrame(rows)
            exports.write_csv(frame[["file", "line", "reason", *frame.columns[3:]]], target)
            personal_files.protect(target, group)
            for row in rows:
                log.warning("case update refused: %s", row["reason"])
    moved = [*updates.files, *updates.already_applied]
    if moved:
        done = folder / "processed" / on.isoformat()
        done.mkdir(parents=True, exist_ok=True)
        personal_files.protect(done.parent, group)
        personal_files.protect(done, group)
        for path in moved:
            os.replace(path, done / path.name)


def features_at(
    cases: pd.DataFrame, cutoffs: pd.DataFrame, start: datetime, through: datetime
) -> pd.DataFrame:
    """``open_cases`` and ``overdue_cases`` of each member at each cutoff (``cutoffs``:
    ``member_id``, ``cutoff_date``), as they were at the start of the cutoff date: from
    ``opened_at``, ``closed_at`` and ``due_at``, never from today's status, so a training row
    does not see a case's later closing. Null outside [``start``, ``through``]: before the cases
    began (or after their last run) the counts are unknown, not zero."""
    at = pd.to_datetime(cutoffs["cutoff_date"]).astype("datetime64[us]")
    keyed = cutoffs[["member_id"]].assign(cutoff_at=at)
    joined = cases[["member_id", "opened_at", "closed_at", "due_at"]].merge(keyed, on="member_id")
    is_open = (joined["opened_at"] < joined["cutoff_at"]) & (
        joined["closed_at"].isna() | (joined["closed_at"] >= joined["cutoff_at"])
    )
    joined = joined.assign(
        open_cases=is_open.astype(int),
        overdue_cases=(is_open & (joined["due_at"] <= joined["cutoff_at"])).astype(int),
    )
    counts = joined.groupby(["member_id", "cutoff_at"])[["open_cases", "overdue_cases"]].sum()
    out = keyed.merge(counts.reset_index(), on=["member_id", "cutoff_at"], how="left")
    known = (out["cutoff_at"] >= start) & (out["cutoff_at"] <= through)
    result = cutoffs[["member_id", "cutoff_date"]].reset_index(drop=True)
    for column in ("open_cases", "overdue_cases"):
        values = out[column].fillna(0).astype("Int64")
        result[column] = values.where(known.to_numpy(), pd.NA)
    return result


def read_features(store, cutoffs: pd.DataFrame) -> pd.DataFrame:
    """``features_at`` over the warehouse's cases: the churn features ``open_cases`` and
    ``overdue_cases`` per member and cutoff, null where the cases cannot say (no case run yet,
    or a cutoff outside the runs' span)."""
    if not (store.exists("cases") and store.exists("case_runs")):
        return (
            cutoffs[["member_id", "cutoff_date"]]
            .assign(open_cases=pd.NA, overdue_cases=pd.NA)
            .astype({"open_cases": "Int64", "overdue_cases": "Int64"})
        )
    frame = store.read("select member_id, opened_at, closed_at, due_at from cases")
    for column in ("opened_at", "closed_at", "due_at"):
        frame[column] = _naive_utc(frame[column])
    span = store.read("select min(start_at) as start_at, max(as_of_date) as through from case_runs")
    start = _naive_utc(span["start_at"])[0]
    through = pd.Timestamp(span["through"][0])
    return features_at(frame, cutoffs, start, through)


# ---------------------------------------------------------------------------------------------
# Delivery: files and the webhook


def _iso(value) -> str | None:
    return (
        None
        if value is None or pd.isna(value)
        else pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    )


def delivery_frame(
    rules: CaseRules, state: pd.DataFrame, since: datetime | None, contacts: pd.DataFrame
) -> pd.DataFrame:
    """The day's open cases for the team: opened since ``since`` (new; every case of the
    lookback on the first run) and those past their due time (overdue), most urgent first, with
    contact details. A case opened and closed since the last delivery needs nobody."""
    new = state["opened_at"] >= since if since is not None else pd.Series(True, index=state.index)
    chosen = state[state["is_open"] & (new | state["is_overdue"])].copy()
    chosen["delivery"] = np.where(new[chosen.index], "new", "overdue")
    chosen["trigger_title"] = chosen["trigger"].map({t.name: t.title for t in rules.triggers})
    chosen = chosen.merge(contacts, on="member_id", how="left")
    chosen = chosen.sort_values(["due_at", "case_id"], ignore_index=True)
    for column in ("opened_at", "due_at", "last_signal_at"):
        chosen[column] = chosen[column].map(_iso)
    chosen["is_overdue"] = chosen["is_overdue"].map(lambda flag: "true" if flag else "false")
    frame = chosen.reindex(columns=list(FILE_COLUMNS))
    return frame.astype(object).where(frame.notna(), None)


def write_delivery(
    cases_dir: Path, on: date, frame: pd.DataFrame, manifest: dict, group: str | None
) -> Path:
    """``cases.csv``, ``cases.json`` and ``manifest.json`` published whole under
    ``<cases_dir>/deliveries/<on>`` with the exports' atomic switch and file modes."""

    def fill(work: Path) -> str:
        csv_path, json_path = work / "cases.csv", work / "cases.json"
        exports.write_csv(frame, csv_path)
        records = frame.to_dict(orient="records")
        json_path.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n", "utf-8")
        files = [
            exports.file_entry(csv_path, "csv", len(frame)),
            exports.file_entry(json_path, "json", len(frame)),
        ]
        return exports.write_manifest(work, {**manifest, "files": files})

    return exports.publish_build(cases_dir / "deliveries", on, fill, group)


@dataclass(frozen=True)
class Webhook:
    """Where to POST: a URL and its headers (a bearer token from the connection's password)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_connection(cls, conn) -> Webhook:
        host = conn.host or ""
        if "://" in host:
            base = host.rstrip("/")
        else:
            scheme = conn.schema or "https"
            port = f":{conn.port}" if conn.port else ""
            base = f"{scheme}://{host}{port}"
        extra = conn.extra_dejson or {}
        endpoint = str(extra.get("endpoint", ""))
        url = base + (endpoint if not endpoint or endpoint.startswith("/") else f"/{endpoint}")
        headers = {"Authorization": f"Bearer {conn.password}"} if conn.password else {}
        return cls(url=url, headers=headers)


def webhook_from_airflow(conn_id: str = CONNECTION_ID) -> Webhook | None:
    """The webhook of Airflow connection ``conn_id``, or None (logged) when there is none."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Webhook.from_connection(BaseHook.get_connection(conn_id))
    except AirflowNotFoundException:
        log.info("no Airflow connection %r: the day's cases are not POSTed", conn_id)
        return None


class WebhookError(RuntimeError):
    """The webhook refused the POST, or did not answer after every attempt."""


def post(
    webhook: Webhook,
    body: dict,
    attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None] | None = None,
    timeout: float = 30,
) -> dict:
    """POST ``body`` as JSON; retry a server error (5xx, 429) or no answer, waiting
    ``backoff_seconds`` then doubling. A client error (4xx) is not retried. Returns the status
    and the number of attempts; raises ``WebhookError`` when it never got through."""
    import time as clock
    import urllib.error
    import urllib.request

    sleep = sleep or clock.sleep
    data = json.dumps(body, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", **webhook.headers}
    last = ""
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(webhook.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return {"status": response.status, "attempts": attempt}
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}"
            if error.code < 500 and error.code != 429:
                raise WebhookError(f"the cases webhook refused the POST: {last}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            last = str(getattr(error, "reason", error))
        log.warning("cases webhook attempt %d of %d failed: %s", attempt, attempts, last)
        if attempt < attempts:
            sleep(backoff_seconds * 2 ** (attempt - 1))
    raise WebhookError(f"the cases webhook did not take the POST after {attempts} attempts: {last}")


# ---------------------------------------------------------------------------------------------
# The step


def _table_or_empty(store, table: str, sql: str, columns) -> pd.DataFrame:
    return store.read(sql) if store.exists(table) else pd.DataFrame(columns=list(columns))


def as_of_date(store) -> date:
    """The warehouse's as-of date (``customer_360.as_of_date``), the cases' run date."""
    value = store.read("select max(as_of_date) as as_of_date from customer_360")["as_of_date"][0]
    if value is None or pd.isna(value):
        raise ValueError("customer_360 is empty: build the warehouse first")
    return pd.Timestamp(value).date()


def _contacts(writer) -> pd.DataFrame:
    """Contact details of the members with a case, read in the writer's transaction (which sees
    the cases just written), so a run reads a few hundred contacts, not every member's."""
    columns = ["member_id", *CONTACT_COLUMNS]
    if not writer.columns("member_contacts"):
        return pd.DataFrame(columns=columns)
    return writer.read(
        f"select {', '.join(columns)} from restricted.member_contacts "
        "where member_id in (select member_id from cases)"
    )


def _counts(state: pd.DataFrame, frame: pd.DataFrame) -> dict[str, int]:
    return {
        "new": int((frame["delivery"] == "new").sum()),
        "overdue": int((frame["is_overdue"] == "true").sum()),
        "open": int(state["is_open"].sum()),
        "closed": int((~state["is_open"]).sum()),
    }


def _run_row(on: date, start: datetime, counts, updates: Updates, rules: CaseRules):
    """The ``case_runs`` row of this run."""
    row = {
        "as_of_date": on,
        "start_at": start,
        "new_cases": counts["new"],
        "overdue_cases": counts["overdue"],
        "open_cases": counts["open"],
        "closed_cases": counts["closed"],
        "updates_applied": len(updates.rows),
        "updates_quarantined": len(updates.rejected),
        "delivery": f"deliveries/{on.isoformat()}",
        "rules_sha256": rules.sha256,
    }
    return pd.DataFrame([row])


def run(
    store,
    settings,
    on: date | str | None = None,
    webhook: Webhook | None = None,
    sleep: Callable[[float], None] | None = None,
) -> dict:
    """One run of the cases on the as-of date ``on`` (default: the warehouse's), reading and
    writing through ``store``; returns a small summary (counts, the delivery's path, the
    webhook's outcome). ``webhook`` None: no POST."""
    rules = load_rules(settings.cases_config)
    on = date.fromisoformat(on) if isinstance(on, str) else (on or as_of_date(store))
    end = datetime.combine(on, time())
    runs = _table_or_empty(store, "case_runs", "select * from case_runs", RUN_COLUMNS)
    runs["as_of_date"] = pd.to_datetime(runs["as_of_date"]).dt.date
    earlier = runs[runs["as_of_date"] < on]
    starts = [end - timedelta(days=rules.lookback_days), *_naive_utc(runs["start_at"])]
    start = min(starts)
    latest = max([on, *runs["as_of_date"]])
    through = datetime.combine(latest, time())
    since = datetime.combine(max(earlier["as_of_date"]), time()) if len(earlier) else None

    records = {source: read_records(store, source, start, through) for source in SOURCES}
    signals = classify(rules, records)
    applied = _table_or_empty(store, "case_updates", "select * from case_updates", UPDATE_COLUMNS)
    applied["closed_at"] = _naive_utc(applied["closed_at"])
    before = replay(rules, signals, applied, end).set_index("case_id")
    folder = settings.cases_dir / "updates"
    updates = read_updates(folder, before, set(applied["file_sha256"]), end, on)
    every_update = (
        pd.concat([applied, updates.rows], ignore_index=True) if len(updates.rows) else applied
    )
    state = state_at(replay(rules, signals, every_update, end), end)
    cases = replay(rules, signals, every_update, through)
    cases["as_of_date"] = pd.Timestamp(latest)

    with store.writer(OWNER) as writer:
        writer.ensure("cases", CASE_COLUMNS)
        writer.ensure("case_updates", UPDATE_COLUMNS)
        writer.ensure("case_runs", RUN_COLUMNS)
        writer.replace("cases", cases[list(CASE_COLUMNS)], {})
        writer.insert("case_updates", updates.rows[list(UPDATE_COLUMNS)])
        frame = delivery_frame(rules, state, since, _contacts(writer))
        counts = _counts(state, frame)
        row = _run_row(on, start, counts, updates, rules)
        writer.replace("case_runs", row, {"as_of_date": on})
    by_trigger = {t.name: int((frame["trigger"] == t.name).sum()) for t in rules.triggers}
    relative = row["delivery"][0]

    manifest = {
        "as_of_date": on.isoformat(),
        "cases_since": since.isoformat() if since else start.isoformat(),
        "rules_sha256": rules.sha256,
        "counts": counts,
        "by_trigger": by_trigger,
        "columns": FILE_COLUMNS,
    }
    path = write_delivery(settings.cases_dir, on, frame, manifest, settings.personal_file_group)
    _set_aside(updates, folder, on, settings.personal_file_group)
    outcome = deliver_to_webhook(settings, path, webhook, sleep) if webhook else None
    log.info(
        "cases on %s: %d new, %d overdue, %d open; %d updates applied, %d refused; %s",
        on, counts["new"], counts["overdue"], counts["open"], len(updates.rows),
        len(updates.rejected), relative,
    )  # fmt: skip
    return {
        "as_of_date": on.isoformat(),
        **counts,
        "by_trigger": by_trigger,
        "updates_applied": len(updates.rows),
        "updates_quarantined": len(updates.rejected),
        "delivery": str(path),
        **({"webhook": outcome} if outcome else {}),
    }


def webhook_body(delivery: Path) -> dict:
    """The POST body of a published delivery folder: its manifest's facts, its cases without
    contact details (the receiver may be a chat room or a ticket tool: the member id is enough),
    and ``delivery_id`` (the build's name: the same after a rerun, so a receiver can drop it)."""
    folder = Path(delivery)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    rows = json.loads((folder / "cases.json").read_text(encoding="utf-8"))
    return {
        **{key: value for key, value in manifest.items() if key not in ("columns", "files")},
        "delivery_id": folder.resolve().name,
        "cases": [{k: v for k, v in row.items() if k not in CONTACT_COLUMNS} for row in rows],
    }


def deliver_to_webhook(
    settings,
    delivery: Path | str,
    webhook: Webhook | None,
    sleep: Callable[[float], None] | None = None,
) -> dict:
    """POST the delivery at ``delivery`` to ``webhook`` with the rules' retries (its own task in
    the DAG, so a webhook outage fails only that task, after the files and the report are out).
    No webhook: nothing is posted, and the result says why."""
    if webhook is None:
        return {"posted": False, "reason": f"no Airflow connection {CONNECTION_ID!r}"}
    rules = load_rules(settings.cases_config)
    body = webhook_body(Path(delivery))
    result = post(webhook, body, rules.webhook_attempts, rules.webhook_backoff_seconds, sleep)
    return {"posted": True, **result}


def latest_delivery(cases_dir: Path) -> dict | None:
    """The latest case file and its counts (None before the first run), for ``make run``."""
    folder = Path(cases_dir) / "deliveries" / exports.LATEST
    manifest = exports.read_manifest(Path(cases_dir) / "deliveries")
    if manifest is None:
        return None
    return {"path": str(folder / "cases.csv"), **manifest["counts"], **manifest["by_trigger"]}


# ---------------------------------------------------------------------------------------------
# The report's section


def _read_with(con) -> Callable[[str, Mapping], pd.DataFrame]:
    """A ``read(sql, params)`` over a store or a DuckDB connection (the report passes either)."""
    if hasattr(con, "read"):
        return con.read
    return lambda sql, params=(): con.execute(sql, params).fetchdf()


def _exists(read, table: str) -> bool:
    found = read(
        "select count(*) as n from information_schema.tables where table_name = $name",
        {"name": table},
    )
    return bool(found["n"][0])


def summary(con, on: date) -> dict | None:
    """What the report shows about cases on ``on``: open and overdue by trigger, time to close,
    and 90-day retention by how the case was closed (None when there are no cases yet).
    ``con`` is a store or a DuckDB connection."""
    read = _read_with(con)
    if not (con.exists("cases") if hasattr(con, "exists") else _exists(read, "cases")):
        return None
    cases = read("select * from cases")
    for column in ("opened_at", "due_at", "closed_at"):
        cases[column] = _naive_utc(cases[column])
    end = datetime.combine(on, time())
    state = state_at(cases, end)
    by_trigger = (
        state.groupby("trigger")
        .agg(open=("is_open", "sum"), overdue=("is_overdue", "sum"), opened=("case_id", "size"))
        .astype(int)
        .reset_index()
        .to_dict("records")
    )
    closed = state[~state["is_open"]]
    hours = (closed["closed_at"] - closed["opened_at"]).dt.total_seconds() / 3600
    return {
        "as_of_date": on.isoformat(),
        "open": int(state["is_open"].sum()),
        "overdue": int(state["is_overdue"].sum()),
        "by_trigger": by_trigger,
        "closed": len(closed),
        "median_hours_to_close": float(hours.median()) if len(closed) else None,
        "closed_in_time": int((closed["closed_at"] <= closed["due_at"]).sum()),
        "retention": retention(read, state, end),
    }


def retention(read, state: pd.DataFrame, end: datetime) -> dict:
    """90-day retention (a purchase in the 90 days after the case opened) of members whose case
    was closed in time, late, or not within the 90 days; only cases whose 90 days have passed."""
    window = timedelta(days=RETENTION_DAYS)
    done = state[state["opened_at"] + window <= end].copy()
    first_due = state["opened_at"].min() + window if len(state) else None
    result = {"window_days": RETENTION_DAYS, "cases_measurable": len(done)}
    if first_due is not None and len(done) == 0:
        result["note"] = (
            f"not enough data yet: the first cases' {RETENTION_DAYS}-day windows end on "
            f"{first_due.date().isoformat()}"
        )
        return result
    if not len(done):
        result["note"] = "not enough data yet: no cases"
        return result
    closed_by_end = done["closed_at"].notna() & (done["closed_at"] < done["opened_at"] + window)
    done["group"] = np.where(
        closed_by_end & (done["closed_at"] <= done["due_at"]),
        "in_time",
        np.where(closed_by_end, "late", "never"),
    )
    bought = read(
        "select member_id, occurred_at from fct_transactions where occurred_at >= $start",
        {"start": done["opened_at"].min()},
    )
    bought["occurred_at"] = _naive_utc(bought["occurred_at"])
    joined = done[["case_id", "member_id", "opened_at"]].merge(bought, on="member_id", how="left")
    inside = (joined["occurred_at"] > joined["opened_at"]) & (
        joined["occurred_at"] <= joined["opened_at"] + window
    )
    retained = set(joined.loc[inside, "case_id"])
    done["retained"] = done["case_id"].isin(retained)
    groups = {}
    for name in ("in_time", "late", "never"):
        members = done[done["group"] == name]
        groups[name] = {
            "cases": len(members),
            "retention": float(members["retained"].mean()) if len(members) else None,
        }
    result["groups"] = groups
    if groups["in_time"]["cases"] < MIN_RETENTION_GROUP or (
        groups["late"]["cases"] + groups["never"]["cases"] < MIN_RETENTION_GROUP
    ):
        result["note"] = (
            f"not enough data yet: fewer than {MIN_RETENTION_GROUP} measurable cases closed in "
            "time, or late and never, so the comparison would be noise"
        )
    return result


def report_section(cases: dict | None) -> str:
    """The report's "Cases" section as HTML."""
    head = "<section id='cases'><h2>Cases</h2>"
    if cases is None:
        return head + "<p>No cases yet: the cases step has not run on this warehouse.</p></section>"
    rows = "".join(
        f"<tr><td>{escape(r['trigger'])}</td><td>{r['opened']:,}</td><td>{r['open']:,}</td>"
        f"<td>{r['overdue']:,}</td></tr>"
        for r in cases["by_trigger"]
    )
    median = cases["median_hours_to_close"]
    closing = (
        f"{cases['closed']:,} closed, {cases['closed_in_time']:,} of them within the service "
        f"level; median time to close {median:.0f} hours."
        if median is not None
        else "No case has been closed yet."
    )
    measured = cases["retention"]
    if measured.get("note"):
        retention_text = f"<p>{RETENTION_DAYS}-day retention by how cases were closed: {escape(measured['note'])}.</p>"
    else:
        cells = "".join(
            f"<tr><td>{label}</td><td>{g['cases']:,}</td><td>{g['retention']:.0%}</td></tr>"
            for label, g in zip(
                ("closed in time", "closed late", "not closed in 90 days"),
                measured["groups"].values(),
                strict=True,
            )
            if g["cases"]
        )
        retention_text = (
            f"<p>{RETENTION_DAYS}-day retention (a purchase in the 90 days after the case "
            "opened), by how the case was closed. Associational: cases closed late may have "
            "been harder ones.</p><table><tr><th>case</th><th>cases</th><th>retained</th></tr>"
            f"{cells}</table>"
        )
    return (
        f"{head}<p>As of {cases['as_of_date']}: <strong>{cases['open']:,} open</strong>, "
        f"<strong>{cases['overdue']:,} overdue</strong>. {closing}</p>"
        "<table><tr><th>trigger</th><th>opened</th><th>open</th><th>overdue</th></tr>"
        f"{rows}</table>{retention_text}</section>"
    )


# ---------------------------------------------------------------------------------------------
# python -m programs.cases


def main(argv: list[str] | None = None) -> int:
    """``check`` the rules, list the ``columns`` a condition may use, or ``run`` the cases."""
    from config import SettingsError, load_settings
    from programs.case_rules import CaseConfigError

    parser = argparse.ArgumentParser(prog="python -m programs.cases", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check")
    sub.add_parser("columns")
    step = sub.add_parser("run")
    step.add_argument("--as-of", help="YYYY-MM-DD (default: the warehouse's as-of date)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "columns":
            for source, columns in SOURCE_COLUMNS.items():
                print(f"{source} ({SOURCES[source][0]}):")
                for name, (kind, text) in columns.items():
                    values = f" [{', '.join(KNOWN_VALUES[name])}]" if name in KNOWN_VALUES else ""
                    print(f"  {name:<26} {kind:<8} {text}{values}")
            return 0
        if args.command == "check":
            rules = load_rules(settings.cases_config)
            print(f"{settings.cases_config}: {len(rules.triggers)} triggers, in order")
            for t in rules.triggers:
                print(
                    f"  {t.name} ({t.source}): {t.condition}\n     {t.severity}, due within "
                    f"{rules.service_levels[t.severity]} h, queue {t.queue}, closed by "
                    f"{', '.join(t.closed_by) or 'the team only'}"
                )
            for c in rules.closers:
                print(f"  closer {c.name} ({c.source}): {c.condition}")
            return 0
        from warehouse.store import open_store

        result = run(open_store(settings), settings, args.as_of)
        result["webhook"] = deliver_to_webhook(settings, result["delivery"], webhook_from_airflow())
    except (SettingsError, CaseConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    raise SystemExit(main())
