"""Tiny, hand-written sources with the dirt the contract warns about, shared by the tests."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

DAY1 = datetime(2026, 6, 1, tzinfo=UTC)
DAY2 = datetime(2026, 6, 2, tzinfo=UTC)
DAY3 = datetime(2026, 6, 3, tzinfo=UTC)

MEMBERS = [
    # member_id, enrolled_at, updated_at, email, phone, tier, opt_in, closed_at
    (
        "M1",
        "2025-01-05 10:00:00",
        "2026-05-31 09:00:00",
        " Ann.Lee@Example.com",
        "(555) 010-0001",
        "gold",
        1,
        None,
    ),
    (
        "M2",
        "2025-03-01 12:00:00",
        "2026-06-01 08:00:00",
        "bo@example.com",
        "+1 555 010 0002",
        "silver",
        0,
        None,
    ),
    ("M3", "2026-06-01 15:30:00", None, "cy@example.com", "555.010.0003", "bronze", None, None),
]
TRANSACTIONS = [
    # id, member, occurred_at, amount, recorded_at, channel, points_earned
    ("T1", "M1", "2026-05-31 18:00:00", "25.50", "2026-05-31 18:00:05", "store", 25),
    ("T2", "M2", "2026-06-01 09:00:00", "-10.00", "2026-06-01 09:00:02", "online", 0),
    # Arrived late: occurred on day 1, recorded on day 2.
    ("T3", "M1", "2026-06-01 20:00:00", "40.00", "2026-06-02 07:00:00", "app", 40),
    ("T4", "M3", "2026-06-02 11:00:00", "12.00", "2026-06-02 11:00:01", "app", 12),
    # A malformed amount the platform let through.
    ("T5", "M3", "2026-06-02 12:00:00", "twelve", "2026-06-02 12:00:01", "app", 12),
]


def write_loyalty(
    path: Path, members=MEMBERS, transactions=TRANSACTIONS, extra_column=False
) -> str:
    con = sqlite3.connect(path)
    extra = ", favourite_store text" if extra_column else ""
    con.execute(
        "create table members (member_id text primary key, enrolled_at text, updated_at text, "
        f"email text, phone text, tier text, marketing_opt_in integer, closed_at text{extra})"
    )
    con.execute(
        "create table transactions (transaction_id text primary key, member_id text, "
        "occurred_at text, amount real, recorded_at text, channel text, points_earned integer)"
    )
    placeholders = ", ".join("?" * (8 + extra_column))
    con.executemany(
        f"insert into members values ({placeholders})",
        [row + (("S9",) if extra_column else ()) for row in members],
    )
    con.executemany("insert into transactions values (?, ?, ?, ?, ?, ?, ?)", transactions)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def survey_line(response_id, submitted_at, **fields) -> str:
    return json.dumps({"response_id": response_id, "submitted_at": submitted_at, **fields})


def write_surveys(root: Path) -> Path:
    day1 = root / "2026-06-01"
    day2 = root / "2026-06-02"
    day1.mkdir(parents=True)
    day2.mkdir(parents=True)
    lines = [
        survey_line(
            "R1",
            "2026-06-01T09:00:00Z",
            member_id="M1",
            nps=9,
            csat=5,
            ces=6,
            emotions={"valued": 5, "confident": 4, "informed": 4, "protected": 5, "helped": 5},
            survey_type="relationship",
            channel="email",
            comment="Lovely staff",
        ),
        # Offset timestamp: 2026-06-01 10:00 UTC.
        survey_line(
            "R2",
            "2026-06-01T12:00:00+02:00",
            email="BO@Example.com ",
            nps=3,
            survey_type="transactional",
            channel="sms",
            loyalty_campaign="spring",
        ),
        survey_line("R3", "2026-06-01 11:00:00", member_id="M3", nps=14),  # out of range
        '{"response_id": "R4", "submitted_at": "2026-06-01T1',  # truncated line
        survey_line("R5", "not a time", member_id="M2", nps=7),
    ]
    (day1 / "export-a.jsonl").write_text("\n".join(lines) + "\n")
    # The same file delivered twice.
    (day1 / "export-a-copy.jsonl").write_text("\n".join(lines) + "\n")
    # Day 2 repeats R1 (a duplicate across files) and adds R6.
    (day2 / "export.jsonl").write_text(
        "\n".join(
            [lines[0], survey_line("R6", "2026-06-02T08:00:00-05:00", member_id="M2", nps=10)]
        )
        + "\n"
    )
    return root


CALL_HEADER = "call_id,started_at,member_id,caller_phone,channel,queue_seconds,handle_seconds,reason,resolved,escalated,transfers,agent_id,notes"


def write_calls(root: Path) -> Path:
    day1 = root / "2026-06-01"
    day1.mkdir(parents=True)
    (day1 / "calls.csv").write_text(
        "\n".join(
            [
                CALL_HEADER,
                "C1,2026-06-01T08:00:00Z,M1,5550100001,phone,30,300,billing,yes,no,0,A1,fine",
                'C2,2026-06-01T09:00:00+01:00,,+1 (555) 010-0002,phone,900,600,complaint,false,true,2,A2,"angry, wants refund"',
                "C3,2026-06-01 10:00:00,M3,,chat,abc,120,points,1,0,0,A1,",
                ",2026-06-01 11:00:00,M2,,phone,10,10,other,1,0,0,A3,no id",
            ]
        )
        + "\n"
    )
    return root
