"""Cases (programs/cases.py, programs/cases.yml): the rules check, the replay (one open case per
member and trigger, closers, team updates, state at a past time), the team's update files, the
delivered files, the webhook with a retry, and two runs on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import stat
import threading
import uuid
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pandas as pd
import pytest

from config import load_settings
from config.settings import REPO_ROOT
from programs import case_rules, cases
from warehouse.store import DuckDBStore, PostgresStore

RULES = case_rules.load(REPO_ROOT / "programs" / "cases.yml")
FIRST = date(2026, 6, 10)
SECOND = date(2026, 6, 20)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- the rules file ------------------------------------------------------------------------------


def test_the_shipped_rules_cover_every_trigger_of_the_issue():
    assert [t.name for t in RULES.triggers] == [
        "escalated_contact",
        "detractor",
        "unresolved_contact",
        "negative_comment",
        "repeat_contact",
    ]
    assert {c.name for c in RULES.closers} == {"promoter_answer", "resolved_contact"}
    assert RULES.service_levels == {"high": 24, "medium": 72, "low": 168}


BASE = """
severities:
  high: {due_within_hours: 24}
triggers:
  - name: detractor
    source: surveys
    condition: is_detractor
    severity: high
    queue: care
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("is_detractor", "is_detracter"),
            "trigger 'detractor', field 'condition': unknown column",
        ),
        (("severity: high", "severity: urgent"), "field 'severity': 'urgent' is not a severity"),
        (("source: surveys", "source: emails"), "field 'source': must be one of surveys, calls"),
        (("is_detractor", "is_escalated"), "unknown column 'is_escalated'"),  # a calls column
        (("queue: care", "queue: Care Team"), "field 'queue': must be a queue name"),
        (("queue: care", "queue: care\n    closed_by: [nobody]"), "no closer named 'nobody'"),
        (("is_detractor", "is_detractor; drop table cases"), "field 'condition'"),
        (("queue: care", "queue: care\n    queue: other"), "block 'detractor', field 'queue'"),
        (("due_within_hours: 24", "due_within_hours: 0"), "severity 'high', field"),
        (("triggers:", "trigers:"), "field 'trigers': unknown field"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_file_and_field(change, message):
    case_rules.parse(BASE)  # the base is good
    with pytest.raises(case_rules.CaseConfigError) as refused:
        case_rules.parse(BASE.replace(*change), source="cases.yml")
    assert str(refused.value).startswith("cases.yml")
    assert message in str(refused.value)


def test_a_text_value_a_column_never_takes_is_refused():
    text = BASE.replace("is_detractor", "comment_sentiment_label = 'negatve'")
    with pytest.raises(case_rules.CaseConfigError, match="never 'negatve'"):
        case_rules.parse(text)


def test_make_cases_check_runs_the_check():
    assert "cases-check" in (REPO_ROOT / "Makefile").read_text()
    assert cases.main(["check"]) == 0


# --- the replay ---------------------------------------------------------------------------------


def signal(record, member, at, trigger=None, closers=(), source="calls"):
    return {
        "source": source,
        "record_id": record,
        "member_id": member,
        "signal_at": ts(at),
        "trigger": trigger,
        "closers": tuple(closers),
    }


NO_UPDATES = pd.DataFrame(columns=["case_id", "closed_at"])


def test_one_open_case_per_member_and_trigger_closed_by_a_later_positive_signal():
    signals = pd.DataFrame(
        [
            signal("R1", "M1", "2026-06-01 09:00", "detractor", source="surveys"),
            signal("R2", "M1", "2026-06-03 09:00", "detractor", source="surveys"),
            signal("C1", "M1", "2026-06-03 10:00", "unresolved_contact"),
            signal("R3", "M1", "2026-06-05 09:00", None, ["promoter_answer"], source="surveys"),
            signal("R4", "M1", "2026-06-07 09:00", "detractor", source="surveys"),
        ]
    )
    frame = cases.replay(RULES, signals, NO_UPDATES, ts("2026-06-10 00:00"))
    detractor = frame[frame["trigger"] == "detractor"].reset_index(drop=True)
    assert len(detractor) == 2  # the second answer counted on the open case; R4 opens anew
    first, second = detractor.iloc[0], detractor.iloc[1]
    assert first["signals"] == 2 and first["last_signal_at"] == ts("2026-06-03 09:00")
    assert first["status"] == "closed" and first["close_reason"] == "promoter_answer"
    assert first["closing_record_id"] == "R3" and not first["is_closed_in_time"]
    assert first["due_at"] == ts("2026-06-02 09:00")
    assert second["status"] == "open" and second["opening_record_id"] == "R4"
    assert first["case_id"] != second["case_id"]
    assert first["case_id"] == cases.case_id("M1", "detractor", "R1")
    # A promoter answer closes the unresolved contact too (both triggers list it).
    unresolved = frame[frame["trigger"] == "unresolved_contact"].iloc[0]
    assert unresolved["status"] == "closed" and unresolved["is_closed_in_time"]


def test_a_record_does_not_close_the_case_it_opens_nor_another_members():
    signals = pd.DataFrame(
        [
            # A resolved repeat contact: its closer runs first and finds nothing opened before.
            signal("C1", "M1", "2026-06-01 09:00", "repeat_contact", ["resolved_contact"]),
            signal("C2", "M2", "2026-06-02 09:00", None, ["resolved_contact"]),
        ]
    )
    frame = cases.replay(RULES, signals, NO_UPDATES, ts("2026-06-10 00:00"))
    assert frame["status"].tolist() == ["open"]


def test_a_team_update_closes_its_case_and_the_state_at_a_past_time_is_kept():
    signals = pd.DataFrame([signal("C1", "M1", "2026-06-01 09:00", "escalated_contact")])
    identifier = cases.case_id("M1", "escalated_contact", "C1")
    updates = pd.DataFrame([{"case_id": identifier, "closed_at": ts("2026-06-04 12:00")}])
    frame = cases.replay(RULES, signals, updates, ts("2026-06-10 00:00"))
    assert frame.loc[0, "close_reason"] == "team_update"
    assert frame.loc[0, "closed_at"] == ts("2026-06-04 12:00")
    before = cases.state_at(frame, ts("2026-06-03 00:00"))
    assert before["is_open"].tolist() == [True] and before["is_overdue"].tolist() == [True]
    after = cases.state_at(frame, ts("2026-06-05 00:00"))
    assert after["is_open"].tolist() == [False] and after["is_overdue"].tolist() == [False]
    assert cases.state_at(frame, ts("2026-06-01 00:00")).empty  # not opened yet
    # Replayed only to before the update, the case is still open.
    earlier = cases.replay(RULES, signals, updates, ts("2026-06-04 00:00"))
    assert earlier.loc[0, "status"] == "open"


def test_a_record_opens_only_the_first_trigger_it_meets():
    records = {
        "calls": pd.DataFrame(
            {
                "record_id": ["C1", "C2"],
                "member_id": ["M1", "M2"],
                "signal_at": [ts("2026-06-01 09:00"), ts("2026-06-01 10:00")],
                **{c: [None, None] for c in case_rules.SOURCE_COLUMNS["calls"]},
            }
        ).assign(
            is_escalated=[True, False],
            is_unresolved=[True, True],
            is_repeat_contact=[True, False],
            is_resolved=[False, False],
        ),
    }
    for name, (kind, _) in case_rules.SOURCE_COLUMNS["calls"].items():
        if kind == "boolean":
            records["calls"][name] = records["calls"][name].astype("boolean")
    signals = cases.classify(RULES, records)
    assert signals["trigger"].tolist() == ["escalated_contact", "unresolved_contact"]


# --- a small warehouse on both engines ----------------------------------------------------------


SURVEYS = [
    # response, member, submitted_at, nps category, comment label
    ("R0", "M2", "2026-05-20 09:00", "detractor", None),  # before the cases' start
    ("R1", "M1", "2026-06-01 09:00", "detractor", None),
    ("R2", "M1", "2026-06-03 09:00", "detractor", "negative"),
    ("R3", "M2", "2026-06-05 09:00", "passive", "negative"),
    ("R4", "M6", "2026-06-09 09:00", "promoter", "positive"),
]
CALLS = [
    # call, member, started_at, resolved, escalated, repeat
    ("C1", "M3", "2026-06-02 09:00", False, True, False),
    ("C2", "M4", "2026-06-04 10:00", False, False, False),
    ("C3", "M4", "2026-06-06 10:00", True, False, True),
    ("C4", "M5", "2026-06-08 10:00", True, False, True),
]
LATER_SURVEYS = [
    ("R5", "M6", "2026-06-11 09:00", "detractor", None),
    ("R6", "M1", "2026-06-15 09:00", "promoter", "positive"),
]


def _surveys(rows):
    frame = pd.DataFrame(
        rows,
        columns=["response_id", "member_id", "submitted_at", "nps_category", "label"],
    )
    return pd.DataFrame(
        {
            "response_id": frame["response_id"],
            "member_id": frame["member_id"],
            "submitted_at": pd.to_datetime(frame["submitted_at"]),
            "survey_type": "relationship",
            "nps_category": frame["nps_category"],
            "is_promoter": frame["nps_category"] == "promoter",
            "is_detractor": frame["nps_category"] == "detractor",
            "has_comment": frame["label"].notna(),
            "comment_sentiment_label": frame["label"],
        }
    )


def _calls(rows):
    frame = pd.DataFrame(
        rows, columns=["call_id", "member_id", "started_at", "resolved", "escalated", "repeat"]
    )
    return pd.DataFrame(
        {
            "call_id": frame["call_id"],
            "member_id": frame["member_id"],
            "started_at": pd.to_datetime(frame["started_at"]),
            "is_resolved": frame["resolved"],
            "is_unresolved": ~frame["resolved"],
            "is_escalated": frame["escalated"],
            "is_repeat_contact": frame["repeat"],
        }
    )


SURVEY_TYPES = {
    "response_id": "varchar",
    "member_id": "varchar",
    "submitted_at": "timestamp",
    "survey_type": "varchar",
    "nps_category": "varchar",
    "is_promoter": "boolean",
    "is_detractor": "boolean",
    "has_comment": "boolean",
    "comment_sentiment_label": "varchar",
}
CALL_TYPES = {
    "call_id": "varchar",
    "member_id": "varchar",
    "started_at": "timestamp",
    "is_resolved": "boolean",
    "is_unresolved": "boolean",
    "is_escalated": "boolean",
    "is_repeat_contact": "boolean",
}


def _load(store, on: date, surveys, calls) -> None:
    """The marts the cases read, as dbt would have built them on ``on``."""
    members = [f"M{i}" for i in range(1, 7)]
    with store.writer("dbt") as writer:
        writer.ensure("fct_survey_responses", SURVEY_TYPES)
        writer.ensure("fct_calls", CALL_TYPES)
        writer.ensure("customer_360", {"member_id": "varchar", "as_of_date": "date"})
        writer.ensure(
            "member_contacts",
            {
                "member_id": "varchar",
                "first_name": "varchar",
                "email": "varchar",
                "phone_e164": "varchar",
            },
        )
        writer.ensure("fct_transactions", {"member_id": "varchar", "occurred_at": "timestamp"})
        writer.replace("fct_survey_responses", _surveys(surveys), {})
        writer.replace("fct_calls", _calls(calls), {})
        writer.replace("customer_360", pd.DataFrame({"member_id": members, "as_of_date": on}), {})
        writer.replace(
            "member_contacts",
            pd.DataFrame(
                {
                    "member_id": members,
                    "first_name": [f"Name{m}" for m in members],
                    "email": [f"{m.lower()}@example.com" for m in members],
                    "phone_e164": [f"+1555000000{m[1]}" for m in members],
                }
            ),
            {},
        )


@pytest.fixture(params=["duckdb", "postgres"])
def store(request, tmp_path):
    if request.param == "duckdb":
        return DuckDBStore(tmp_path / "cx.duckdb")
    from sqlalchemy.engine import make_url

    url = make_url(request.getfixturevalue("postgres_database"))
    uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresStore(uri, f"cases_test_{uuid.uuid4().hex[:8]}")


@pytest.fixture
def settings(tmp_path):
    return load_settings({"CX_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path)})


def _delivered(settings, on: date) -> pd.DataFrame:
    return pd.read_csv(settings.cases_dir / "deliveries" / on.isoformat() / "cases.csv", dtype=str)


def test_two_runs_open_close_deliver_and_rerun_the_same(store, settings):
    _load(store, FIRST, SURVEYS, CALLS)
    first = cases.run(store, settings, FIRST)

    delivered = _delivered(settings, FIRST)
    # M4's unresolved contact was resolved by the call back two days later (in time), which
    # opened a case of its own: the member had to call twice.
    assert sorted(zip(delivered["member_id"], delivered["trigger"], strict=True)) == [
        ("M1", "detractor"),
        ("M2", "negative_comment"),
        ("M3", "escalated_contact"),
        ("M4", "repeat_contact"),
        ("M5", "repeat_contact"),
    ]
    assert set(delivered["delivery"]) == {"new"}  # the first run: every case of the lookback
    assert delivered.set_index("member_id").loc["M1", "signals"] == "2"
    assert delivered.set_index("member_id").loc["M1", "email"] == "m1@example.com"
    overdue = delivered.set_index("member_id")["is_overdue"].to_dict()
    assert overdue == {"M1": "true", "M2": "true", "M3": "true", "M4": "false", "M5": "false"}
    assert first["new"] == 5 and first["open"] == 5 and first["closed"] == 1
    folder = settings.cases_dir / "deliveries" / FIRST.isoformat()
    as_json = json.loads((folder / "cases.json").read_text())
    assert [row["case_id"] for row in as_json] == delivered["case_id"].tolist()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [f["rows"] for f in manifest["files"]] == [5, 5]
    assert stat.S_IMODE((folder / "cases.csv").stat().st_mode) == 0o400
    assert stat.S_IMODE(folder.resolve().stat().st_mode) == 0o700
    assert (settings.cases_dir / "deliveries" / "latest").resolve() == folder.resolve()

    # The team closes M3's case (late) and sends three bad rows and a file without a header.
    m3 = delivered.set_index("member_id").loc["M3", "case_id"]
    m2 = delivered.set_index("member_id").loc["M2", "case_id"]
    updates = settings.cases_dir / "updates"
    updates.mkdir(parents=True)
    (updates / "monday.csv").write_text(
        "case_id,status,note,closed_at\n"
        f"{m3},closed,called back and refunded,2026-06-12 10:00\n"
        "CASE-0000000000000000,closed,typo,\n"
        f"{m2},pending,waiting,\n"
        f"{m2},closed,too early,2026-05-01 00:00\n"
    )
    (updates / "notes.csv").write_text("id;state\nx;closed\n")
    _load(store, SECOND, SURVEYS + LATER_SURVEYS, CALLS)
    second = cases.run(store, settings, SECOND)

    assert second["updates_applied"] == 1 and second["updates_quarantined"] == 4
    assert not list(updates.glob("*.csv"))  # moved aside
    assert sorted(p.name for p in (updates / "processed" / SECOND.isoformat()).iterdir()) == [
        "monday.csv",
        "notes.csv",
    ]
    rejected = pd.concat(
        pd.read_csv(p, dtype=str) for p in sorted((updates / "quarantine").glob("*.csv"))
    )
    reasons = rejected["reason"].tolist()
    assert any(r.startswith("monday.csv, line 3: no case") for r in reasons)
    assert any(r.startswith("monday.csv, line 4: status 'pending'") for r in reasons)
    assert any(r.startswith("monday.csv, line 5: closed_at") for r in reasons)
    assert any(
        r.startswith("notes.csv, line 1: the header has no case_id, status") for r in reasons
    )

    table = store.read("select * from cases where trigger <> 'repeat_contact'")
    table = table.set_index("member_id").sort_index()
    assert table.loc["M3", "close_reason"] == "team_update"
    assert not table.loc["M3", "is_closed_in_time"]
    assert table.loc["M1", "close_reason"] == "promoter_answer"
    assert table.loc["M4", "close_reason"] == "resolved_contact"
    assert bool(table.loc["M4", "is_closed_in_time"])
    notes = store.read("select case_id, note, line from case_updates")
    assert notes.to_dict("records") == [
        {"case_id": m3, "note": "called back and refunded", "line": 2}
    ]

    delivered = _delivered(settings, SECOND).set_index("member_id")
    assert delivered["delivery"].to_dict() == {
        "M2": "overdue",
        "M4": "overdue",
        "M5": "overdue",
        "M6": "new",
    }
    assert second["new"] == 1 and second["open"] == 4

    # A rerun gives the same files (the same build) and the same rows, the update applied once.
    build = (settings.cases_dir / "deliveries" / SECOND.isoformat()).resolve()
    again = cases.run(store, settings, SECOND)
    assert (settings.cases_dir / "deliveries" / SECOND.isoformat()).resolve() == build
    assert again["updates_applied"] == 0 and again["open"] == second["open"]
    assert len(store.read("select * from case_updates")) == 1
    replayed = store.read("select * from cases where trigger <> 'repeat_contact'")
    pd.testing.assert_frame_equal(replayed.set_index("member_id").sort_index(), table)

    # The report's numbers, at the second run's date.
    summary = cases.summary(store, SECOND)
    assert (summary["open"], summary["overdue"], summary["closed"]) == (4, 4, 3)
    assert summary["closed_in_time"] == 1
    assert summary["retention"]["note"].startswith("not enough data yet")
    assert "4 overdue" in cases.report_section(summary)

    # The churn features at the two run dates: M1's case was open at the first, closed since.
    cutoffs = pd.DataFrame(
        {"member_id": ["M1", "M1", "M6"], "cutoff_date": pd.to_datetime([FIRST, SECOND, SECOND])}
    )
    features = cases.read_features(store, cutoffs)
    assert features["open_cases"].tolist() == [1, 0, 1]
    assert features["overdue_cases"].tolist() == [1, 0, 1]


# --- the webhook --------------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []
    bodies: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append(
            {"json": json.loads(body), "authorization": self.headers.get("Authorization")}
        )
        code = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    """An HTTP receiver on 127.0.0.1 in a thread; yields its handler class and URL."""
    handler = type("Receiver", (_Receiver,), {"answers": [], "bodies": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_address[1]}/cases"
    finally:
        server.shutdown()
        server.server_close()


def test_the_day_s_cases_are_posted_and_a_server_error_is_retried(receiver, tmp_path, settings):
    handler, url = receiver
    handler.answers = [500]
    store = DuckDBStore(tmp_path / "cx.duckdb")
    _load(store, FIRST, SURVEYS, CALLS)
    waits = []
    result = cases.run(
        store, settings, FIRST, cases.Webhook(url, {"Authorization": "Bearer t"}), waits.append
    )

    assert result["webhook"] == {"posted": True, "status": 200, "attempts": 2}
    assert waits == [RULES.webhook_backoff_seconds]
    assert len(handler.bodies) == 2 and handler.bodies[0] == handler.bodies[1]
    body = handler.bodies[1]["json"]
    assert handler.bodies[1]["authorization"] == "Bearer t"
    assert body["as_of_date"] == FIRST.isoformat() and body["counts"]["new"] == 5
    delivered = _delivered(settings, FIRST)
    assert [c["case_id"] for c in body["cases"]] == delivered["case_id"].tolist()
    assert "email" not in body["cases"][0] and "@" not in json.dumps(body)  # no contact details
    assert body["delivery_id"].startswith(FIRST.isoformat())
    # The DAG's post_cases task re-reads the published files: the same body; no connection, no POST.
    assert cases.webhook_body(result["delivery"]) == body
    unposted = cases.deliver_to_webhook(settings, result["delivery"], None)
    assert unposted["posted"] is False and len(handler.bodies) == 2


def test_a_client_error_is_not_retried_and_every_failure_is_raised(receiver):
    handler, url = receiver
    handler.answers = [404]
    with pytest.raises(cases.WebhookError, match="HTTP 404"):
        cases.post(cases.Webhook(url), {"x": 1}, attempts=3, backoff_seconds=0)
    assert len(handler.bodies) == 1
    handler.answers = [503, 503, 503]
    with pytest.raises(cases.WebhookError, match="after 3 attempts: HTTP 503"):
        cases.post(cases.Webhook(url), {"x": 1}, attempts=3, backoff_seconds=0)
    assert len(handler.bodies) == 4


def test_the_webhook_comes_from_an_airflow_connection(monkeypatch):
    from airflow.sdk import Connection

    conn = Connection(
        conn_id="cx_cases_webhook",
        conn_type="http",
        host="127.0.0.1",
        port=8089,
        schema="http",
        password="s3cret",
        extra=json.dumps({"endpoint": "hooks/cases"}),
    )
    hook = cases.Webhook.from_connection(conn)
    assert hook.url == "http://127.0.0.1:8089/hooks/cases"
    assert hook.headers == {"Authorization": "Bearer s3cret"}

    name = f"cx_cases_test_{uuid.uuid4().hex[:6]}"
    assert cases.webhook_from_airflow(name) is None  # absent: no POST
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{name.upper()}",
        json.dumps({"conn_type": "http", "host": "https://cx.example.com/in"}),
    )
    assert cases.webhook_from_airflow(name).url == "https://cx.example.com/in"


def test_case_features_at_a_cutoff_come_from_the_case_s_times_not_today_s_status():
    signals = pd.DataFrame(
        [
            signal("C1", "M1", "2026-03-10 09:00", "escalated_contact"),  # due 03-11 09:00
            signal("C2", "M1", "2026-03-20 09:00", None, ["resolved_contact"]),
            signal("C3", "M2", "2026-04-10 09:00", "unresolved_contact"),  # stays open
        ]
    )
    frame = cases.replay(RULES, signals, NO_UPDATES, ts("2026-06-01 00:00"))
    assert frame.set_index("member_id").loc["M1", "status"] == "closed"  # today's status
    cutoffs = pd.DataFrame(
        {
            "member_id": ["M1", "M1", "M1", "M2", "M2", "M3", "M1"],
            "cutoff_date": pd.to_datetime(
                ["2026-03-01", "2026-03-11", "2026-03-15", "2026-04-01", "2026-05-01",
                 "2026-05-01", "2026-07-01"]
            ),
        }
    )  # fmt: skip
    features = cases.features_at(frame, cutoffs, ts("2026-02-01 00:00"), ts("2026-06-01 00:00"))
    assert features["open_cases"].tolist()[:6] == [0, 1, 1, 0, 1, 0]
    assert features["overdue_cases"].tolist()[:6] == [0, 0, 1, 0, 1, 0]
    assert features["open_cases"].isna().tolist() == [False] * 6 + [True]  # after the last run
    before = cases.features_at(frame, cutoffs, ts("2026-03-12 00:00"), ts("2026-06-01 00:00"))
    assert before["open_cases"].isna().tolist()[:3] == [True, True, False]
