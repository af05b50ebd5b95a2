"""The source contract as data: what each source must and may carry, and its landed schema.

This is the single place the contract lives in code. The README documents the same contract for
users; the extractors, the parser, the Great Expectations suites and the dbt sources all read
from here (dbt through ``dbt_project/models/staging/_sources.yml``, which a test keeps in step).

Every landed table carries every contract column, typed. Optional columns a source lacks land
as nulls, so downstream models can rely on the columns and simply get nulls. Unknown extra
columns are kept as a JSON object in ``_extra_fields``. Lineage columns start with ``_``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Logical types. The parser casts text to these with DuckDB ``try_cast``; a value that does not
# parse sends its row to quarantine with the reason.
TEXT, TIMESTAMP, DATE, DECIMAL, INTEGER, BOOLEAN = (
    "text",
    "timestamp",
    "date",
    "decimal",
    "integer",
    "boolean",
)

# The DuckDB and Arrow types each logical type lands as. Timestamps land as UTC instants.
DUCKDB_TYPES = {
    TEXT: "VARCHAR",
    TIMESTAMP: "TIMESTAMPTZ",
    DATE: "DATE",
    DECIMAL: "DECIMAL(18, 2)",
    INTEGER: "BIGINT",
    BOOLEAN: "BOOLEAN",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False
    # Inclusive bounds for numbers (checked at the boundary; out-of-range rows are quarantined).
    min_value: float | None = None
    max_value: float | None = None
    # Allowed values for enums; other values are kept but flagged by the validation suite.
    accepted: tuple[str, ...] | None = None
    personal: bool = False


@dataclass(frozen=True)
class Table:
    source: str
    name: str
    key: str
    columns: tuple[Column, ...]
    # Timestamp column used as the extract watermark when present, in order of preference.
    watermarks: tuple[str, ...] = ()
    # Whether a missing watermark column means "re-read a lookback window" (facts) rather than
    # "take a full snapshot" (dimensions).
    lookback_when_no_watermark: bool = False
    # A column whose values tell a record's versions apart (members' updated_at): two landed rows
    # of one key that differ in it are an update; rows that differ elsewhere only are a
    # conflicting duplicate, which the warehouse settles by landing order.
    versioned_by: str | None = None
    # A column that only stamps when the platform recorded the row (transactions' recorded_at):
    # rows that differ in it alone are one record delivered again, not a conflict.
    delivery_stamp: str | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.source}/{self.name}"

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


EMOTIONS = ("valued", "confident", "informed", "protected", "helped")

MEMBERS = Table(
    source="loyalty",
    name="members",
    key="member_id",
    watermarks=("updated_at",),
    versioned_by="updated_at",
    columns=(
        Column("member_id", TEXT, required=True),
        Column("enrolled_at", TIMESTAMP, required=True),
        Column("updated_at", TIMESTAMP),
        Column("email", TEXT, personal=True),
        Column("phone", TEXT, personal=True),
        Column("first_name", TEXT, personal=True),
        Column("last_name", TEXT, personal=True),
        Column("birth_date", DATE, personal=True),
        Column("postal_code", TEXT),
        Column("region", TEXT),
        Column("tier", TEXT, accepted=("bronze", "silver", "gold", "platinum")),
        Column("marketing_opt_in", BOOLEAN),
        Column("closed_at", TIMESTAMP),
    ),
)

TRANSACTIONS = Table(
    source="loyalty",
    name="transactions",
    key="transaction_id",
    watermarks=("recorded_at", "occurred_at"),
    lookback_when_no_watermark=True,
    delivery_stamp="recorded_at",
    columns=(
        Column("transaction_id", TEXT, required=True),
        Column("member_id", TEXT, required=True),
        Column("occurred_at", TIMESTAMP, required=True),
        Column("amount", DECIMAL, required=True),
        Column("recorded_at", TIMESTAMP),
        Column("channel", TEXT, accepted=("store", "online", "app")),
        Column("store_id", TEXT),
        Column("points_earned", INTEGER, min_value=0),
        Column("points_redeemed", INTEGER, min_value=0),
    ),
)

SURVEY_RESPONSES = Table(
    source="surveys",
    name="responses",
    key="response_id",
    columns=(
        Column("response_id", TEXT, required=True),
        Column("submitted_at", TIMESTAMP, required=True),
        Column("member_id", TEXT),
        Column("email", TEXT, personal=True),
        Column("survey_type", TEXT, accepted=("relationship", "transactional", "post_call")),
        Column("channel", TEXT, accepted=("email", "sms", "app", "web")),
        Column("nps", INTEGER, min_value=0, max_value=10),
        Column("csat", INTEGER, min_value=1, max_value=5),
        Column("ces", INTEGER, min_value=1, max_value=7),
        # The ``emotions`` object is flattened into one column per item at landing.
        *(Column(f"emotion_{item}", INTEGER, min_value=1, max_value=5) for item in EMOTIONS),
        Column("comment", TEXT, personal=True),
        Column("related_call_id", TEXT),
        Column("related_transaction_id", TEXT),
    ),
)

CALLS = Table(
    source="calls",
    name="contacts",
    key="call_id",
    columns=(
        Column("call_id", TEXT, required=True),
        Column("started_at", TIMESTAMP, required=True),
        Column("member_id", TEXT),
        Column("caller_phone", TEXT, personal=True),
        Column("channel", TEXT, accepted=("phone", "chat", "callback")),
        Column("queue_seconds", INTEGER, min_value=0),
        Column("handle_seconds", INTEGER, min_value=0),
        Column("reason", TEXT),
        Column("resolved", BOOLEAN),
        Column("escalated", BOOLEAN),
        Column("transfers", INTEGER, min_value=0),
        Column("agent_id", TEXT),
        Column("notes", TEXT, personal=True),
    ),
)

TABLES: tuple[Table, ...] = (MEMBERS, TRANSACTIONS, SURVEY_RESPONSES, CALLS)
TABLES_BY_SOURCE = {
    "loyalty": (MEMBERS, TRANSACTIONS),
    "surveys": (SURVEY_RESPONSES,),
    "calls": (CALLS,),
}

# Lineage columns every landed row carries, after the contract columns.
LINEAGE_COLUMNS = (
    ("_extra_fields", "VARCHAR"),  # unknown source columns as a JSON object, else null
    ("_source_file", "VARCHAR"),  # export file path, or "<table>@<database>" for the loyalty DB
    ("_source_row", "BIGINT"),  # 1-based line (exports) or extract order (database)
    ("_interval_start", "TIMESTAMPTZ"),  # the extract interval this row landed in
    ("_interval_end", "TIMESTAMPTZ"),
)


def table(source: str, name: str) -> Table:
    for candidate in TABLES:
        if candidate.source == source and candidate.name == name:
            return candidate
    raise KeyError(f"{source}/{name}")
