"""A small deterministic raw lake for the warehouse tests, written with pyarrow.

Three landings of every table, as ingestion would leave them:

- ``A`` a first load of the whole history up to 2024-03-01,
- ``B`` the March landing, which re-delivers some rows (duplicates), updates member M1 and adds
  member M6 whose email matches a survey landed in ``A``,
- ``C`` a late landing on 2024-04-01 carrying a transaction from 2024-02-15 (it must not leak into
  the 2024-02-01 point-in-time cutoff) and a call that makes an earlier call a repeat.

The cases the tests check are named in ``EXPECTED_LINKS`` and the module constants.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from config import load_settings
from config.settings import Settings
from ingestion.contract import LINEAGE_COLUMNS, TABLES, Table

_ARROW = {
    "text": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "decimal": pa.decimal128(18, 2),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
}
_LINEAGE_ARROW = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "TIMESTAMPTZ": _ARROW["timestamp"]}

INTERVALS = {
    "A": (datetime(1970, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
    "B": (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)),
    "C": (datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 4, 2, tzinfo=UTC)),
}

# The late transaction that would leak into the 2024-02-01 cutoff if the cutoff were wrong.
LEAK_TRANSACTION_ID = "T-LATE-LEAK"
LEAK_MEMBER_ID = "M1"
LEAK_AMOUNT = Decimal("1000.00")
PIT_CUTOFF = date(2024, 2, 1)

# record_type, record_id -> (member_id, link_method)
EXPECTED_LINKS = {
    ("survey_response", "R1"): ("M1", "member_id"),
    ("survey_response", "R2"): ("M1", "email"),  # anonymous, email in another case
    ("survey_response", "R3"): (None, "ambiguous"),  # email shared by M3 and M4
    ("survey_response", "R4"): (None, "unmatched"),
    ("survey_response", "R5"): ("M6", "email"),  # M6 lands after the survey
    ("survey_response", "R6"): ("M2", "member_id"),
    ("call", "C1"): ("M1", "member_id"),
    ("call", "C2"): ("M1", "phone"),  # no member_id, phone in another format
    ("call", "C3"): ("M5", "phone"),
    ("call", "C4"): (None, "unmatched"),
    ("call", "C5"): ("M2", "member_id"),
    ("call", "C6"): (None, "unmatched"),  # member_id typed wrong, no phone
    ("call", "C7"): ("M2", "member_id"),
}
MEMBER_IDS = ("M1", "M2", "M3", "M4", "M5", "M6")

# dbt vars of every build of this lake: its history is two months, and the tests name monthly
# cutoffs rather than the weekly grid a short history gets by default (pit_weekly_below_days).
FIXTURE_VARS = {"pit_weekly_below_days": 0}


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _members() -> dict[str, list[dict]]:
    base = {"enrolled_at": ts("2023-06-01T10:00:00"), "marketing_opt_in": True, "region": "North"}
    return {
        "A": [
            {
                **base,
                "member_id": "M1",
                "updated_at": ts("2024-01-05T00:00:00"),
                "email": " Alice@Example.com ",
                "phone": "(555) 123-4567",
                "first_name": "Alice",
                "tier": "silver",
                "birth_date": date(1985, 4, 2),
            },
            {
                **base,
                "member_id": "M2",
                "updated_at": ts("2024-01-05T00:00:00"),
                "email": "bob@example.com",
                "phone": "+1 555 987 6543",
                "first_name": "Bob",
                "tier": "GOLD",
                "region": "South",
            },
            {
                **base,
                "member_id": "M3",
                "updated_at": ts("2024-01-05T00:00:00"),
                "email": "shared@example.com",
                "tier": "bronze",
                "marketing_opt_in": None,
            },
            {
                **base,
                "member_id": "M4",
                "updated_at": ts("2024-01-05T00:00:00"),
                "email": "Shared@Example.com",
                "tier": "bronze",
            },
            {
                **base,
                "member_id": "M5",
                "updated_at": ts("2024-02-20T00:00:00"),
                "phone": "555.222.3333",
                "tier": "platinum",
                "closed_at": ts("2024-02-20T12:00:00"),
            },
        ],
        "B": [
            # M1 moved to gold; M2 delivered again unchanged; M6 is new.
            {
                **base,
                "member_id": "M1",
                "updated_at": ts("2024-03-10T00:00:00"),
                "email": "alice@example.com",
                "phone": "(555) 123-4567",
                "first_name": "Alice",
                "tier": "gold",
                "birth_date": date(1985, 4, 2),
            },
            {
                **base,
                "member_id": "M2",
                "updated_at": ts("2024-01-05T00:00:00"),
                "email": "bob@example.com",
                "phone": "+1 555 987 6543",
                "first_name": "Bob",
                "tier": "GOLD",
                "region": "South",
            },
            {
                **base,
                "member_id": "M6",
                "enrolled_at": ts("2024-03-05T09:00:00"),
                "updated_at": ts("2024-03-05T09:00:00"),
                "email": "late@example.com",
                "tier": "bronze",
            },
        ],
        "C": [],
    }


def _transactions() -> dict[str, list[dict]]:
    def tx(tid, member, when, amount, channel="store", earned=10, redeemed=0, recorded=None):
        return {
            "transaction_id": tid,
            "member_id": member,
            "occurred_at": ts(when),
            "amount": Decimal(amount),
            "recorded_at": ts(recorded or when),
            "channel": channel,
            "store_id": "S1",
            "points_earned": earned,
            "points_redeemed": redeemed,
        }

    first = [
        tx("T1", "M1", "2023-12-20T10:00:00", "50.00"),
        tx("T2", "M1", "2024-01-10T10:00:00", "20.00", "online"),
        tx("T3", "M1", "2024-01-31T23:59:59", "30.00", "app"),
        tx("T4", "M1", "2024-02-01T00:00:00", "40.00"),  # exactly on the cutoff: excluded
        tx("T5", "M2", "2024-01-15T12:00:00", "100.00", redeemed=5),
        tx("T6", "M2", "2024-02-10T12:00:00", "-25.00", earned=0),  # a return
        tx("T7", "M5", "2024-01-02T08:00:00", "15.00"),
    ]
    return {
        "A": first,
        "B": [
            first[1],  # T2 delivered twice
            tx("T8", "M6", "2024-03-06T10:00:00", "60.00", "app"),
            tx("T9", "M1", "2024-01-20T10:00:00", "5.00", recorded="2024-03-02T00:00:00"),
        ],
        "C": [
            tx(
                LEAK_TRANSACTION_ID,
                LEAK_MEMBER_ID,
                "2024-02-15T10:00:00",
                str(LEAK_AMOUNT),
                recorded="2024-04-01T06:00:00",
            ),
        ],
    }


def _responses() -> dict[str, list[dict]]:
    def response(rid, when, **values):
        emotions = values.pop("emotions", None)
        row = {
            "response_id": rid,
            "submitted_at": ts(when),
            "survey_type": "relationship",
            "channel": "email",
            **values,
        }
        if emotions is not None:
            for item, score in zip(
                ("valued", "confident", "informed", "protected", "helped"), emotions, strict=True
            ):
                row[f"emotion_{item}"] = score
        return row

    first = [
        response(
            "R1",
            "2024-01-12T09:00:00",
            member_id="M1",
            nps=10,
            csat=5,
            ces=6,
            emotions=(5, 5, 5, 5, 5),
            comment="Great service, thank you so much!",
        ),
        response(
            "R2",
            "2024-02-05T09:00:00",
            email="ALICE@example.com ",
            nps=7,
            csat=4,
            ces=5,
            emotions=(4, 3, None, 4, 3),
        ),
        response("R3", "2024-01-20T09:00:00", email="shared@example.com", nps=8, csat=3),
        response(
            "R4", "2024-01-21T09:00:00", email="nobody@example.com", nps=5, csat=2, channel="sms"
        ),
        response("R5", "2024-02-10T09:00:00", email="late@example.com", nps=9, csat=5),
        response(
            "R6",
            "2024-01-25T09:00:00",
            member_id="M2",
            nps=3,
            csat=1,
            ces=2,
            emotions=(1, 1, 1, 1, 1),
            comment="Terrible, the worst experience. I am angry.",
        ),
    ]
    return {"A": first, "B": [first[5]], "C": []}


def _calls() -> dict[str, list[dict]]:
    def call(cid, when, **values):
        return {
            "call_id": cid,
            "started_at": ts(when),
            "channel": "phone",
            "queue_seconds": 60,
            "handle_seconds": 300,
            "reason": "billing",
            "resolved": True,
            "escalated": False,
            "transfers": 0,
            "agent_id": "A1",
            **values,
        }

    first = [
        call("C1", "2024-01-10T10:00:00", member_id="M1", queue_seconds=700, resolved=False),
        call("C2", "2024-01-12T10:00:00", caller_phone="555-123-4567"),
        call("C3", "2024-02-01T10:00:00", caller_phone="+1 (555) 222-3333"),
        call("C4", "2024-02-02T10:00:00", caller_phone="555 000 0000"),
        call("C5", "2024-02-03T10:00:00", member_id="M2", escalated=True, transfers=1),
        call("C6", "2024-02-04T10:00:00", member_id="BOGUS"),
    ]
    return {
        "A": first,
        "B": [first[0]],  # C1 delivered twice
        # Late: C7 comes four days after C5, so C5 gets a repeat contact after it.
        "C": [call("C7", "2024-02-07T10:00:00", member_id="M2", notes="called back")],
    }


_ROWS = {
    ("loyalty", "members"): _members,
    ("loyalty", "transactions"): _transactions,
    ("surveys", "responses"): _responses,
    ("calls", "contacts"): _calls,
}


def arrow_schema(table: Table) -> pa.Schema:
    fields = [pa.field(column.name, _ARROW[column.type]) for column in table.columns]
    fields += [pa.field(name, _LINEAGE_ARROW[kind]) for name, kind in LINEAGE_COLUMNS]
    return pa.schema(fields)


def _partition_name(interval: tuple[datetime, datetime]) -> str:
    start, end = (bound.strftime("%Y%m%dT%H%M%SZ") for bound in interval)
    return f"interval={start}--{end}.parquet"


def write_lake(
    root: Path, landings: tuple[str, ...] = ("A", "B", "C"), skip: tuple[str, ...] = ()
) -> Path:
    """Write the landings named in ``landings`` under ``root/raw``; ``skip`` leaves out tables
    (``"calls/contacts"``) to imitate a company without that source."""
    for table in TABLES:
        if table.qualified_name in skip:
            continue
        rows_by_landing = _ROWS[(table.source, table.name)]()
        schema = arrow_schema(table)
        for landing in landings:
            rows = rows_by_landing[landing]
            if not rows:
                continue
            interval = INTERVALS[landing]
            name = _partition_name(interval)
            source_file = f"{table.name}-{landing}.export"
            records = [
                {
                    **{column.name: row.get(column.name) for column in table.columns},
                    "_extra_fields": None,
                    "_source_file": source_file,
                    "_source_row": index,
                    "_interval_start": interval[0],
                    "_interval_end": interval[1],
                }
                for index, row in enumerate(rows, start=1)
            ]
            folder = root / "raw" / table.source / table.name
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(records, schema=schema), folder / name)
    return root


if (
    __name__ == "__main__"
):  # handy when developing: python tests/warehouse/warehouse_fixture_lake.py DIR
    import sys

    print(write_lake(Path(sys.argv[1])))


def fixture_settings(root: Path, lake: Path | None = None) -> Settings:
    """Settings for a warehouse built under ``root`` from the lake at ``lake``."""
    return load_settings(
        {
            "CX_DATA_DIR": str(root),
            "CX_LAKE_DIR": str(lake or root / "lake"),
            "CX_DUCKDB_PATH": str(root / "warehouse" / "cx.duckdb"),
        }
    )
