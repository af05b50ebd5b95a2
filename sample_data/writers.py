"""The three source formats on disk plus the answer files, written one chunk at a time."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sample_data.exports import Lines
from sample_data.timefmt import iso_text

MEMBER_COLUMNS = {
    "member_id": "TEXT PRIMARY KEY",
    "enrolled_at": "TEXT NOT NULL",
    "updated_at": "TEXT",
    "email": "TEXT",
    "phone": "TEXT",
    "first_name": "TEXT",
    "last_name": "TEXT",
    "birth_date": "TEXT",
    "postal_code": "TEXT",
    "region": "TEXT",
    "tier": "TEXT",
    "marketing_opt_in": "INTEGER",
    "closed_at": "TEXT",
}
TRANSACTION_COLUMNS = {
    "transaction_id": "TEXT PRIMARY KEY",
    "member_id": "TEXT NOT NULL",
    "occurred_at": "TEXT NOT NULL",
    "amount": "REAL NOT NULL",
    "recorded_at": "TEXT",
    "channel": "TEXT",
    "store_id": "TEXT",
    "points_earned": "INTEGER",
    "points_redeemed": "INTEGER",
}
# The contract's required columns: all a purchase_only or required_columns sample's loyalty
# database holds.
REQUIRED_COLUMNS = {
    "members": ("member_id", "enrolled_at"),
    "transactions": ("transaction_id", "member_id", "occurred_at", "amount"),
}
# Share of export files that the source delivers a second time under another name.
REDELIVERED = 0.006


def sql_timestamps(start: date, seconds: np.ndarray) -> np.ndarray:
    """'YYYY-MM-DD HH:MM:SS' UTC text from seconds since ``start`` (negative is before it)."""
    return iso_text(start, seconds, " ")


class LoyaltyWriter:
    """The loyalty platform's SQLite database, filled chunk by chunk inside one transaction.

    With ``required_only`` the tables hold only the contract's required columns, as a small
    retailer's export does; ``insert`` then ignores the other columns it is given.
    """

    def __init__(self, path: Path, required_only: bool = False):
        self.path = path
        self.columns = {
            table: {
                name: kind
                for name, kind in columns.items()
                if not required_only or name in REQUIRED_COLUMNS[table]
            }
            for table, columns in (
                ("members", MEMBER_COLUMNS),
                ("transactions", TRANSACTION_COLUMNS),
            )
        }
        self.conn = sqlite3.connect(path, isolation_level=None)
        # Safe here: the file only becomes visible after a complete run.
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("BEGIN")
        for table, columns in self.columns.items():
            spec = ", ".join(f"{name} {kind}" for name, kind in columns.items())
            # Clustered on the text key: one B-tree instead of a rowid table plus a key index.
            self.conn.execute(f"CREATE TABLE {table} ({spec}) WITHOUT ROWID")

    def insert(self, table: str, columns: dict[str, np.ndarray]) -> None:
        names = list(self.columns[table])
        marks = ", ".join("?" for _ in names)
        rows = zip(*(columns[name].tolist() for name in names), strict=True)
        self.conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)

    def close(self) -> None:
        """Index the watermark columns after loading, which is faster than maintaining them."""
        indexes = (
            ("ix_transactions_recorded_at", "transactions", "recorded_at"),
            ("ix_transactions_member_id", "transactions", "member_id"),
            ("ix_members_updated_at", "members", "updated_at"),
        )
        for index, table, column in indexes:
            if column in self.columns[table]:
                self.conn.execute(f"CREATE INDEX {index} ON {table} ({column})")
        self.conn.execute("COMMIT")
        self.conn.close()


def write_exports(
    rng: np.random.Generator, root: Path, start: date, part: int, lines: Lines, header: str = ""
) -> list[Path]:
    """One file per export day for this chunk; a few are delivered again under another name."""
    suffix = "csv" if header else "jsonl"
    order = np.argsort(lines.export_day, kind="stable")
    days, text = lines.export_day[order], lines.lines[order]
    bounds = np.flatnonzero(np.diff(days)) + 1
    written = []
    groups = zip(np.split(days, bounds), np.split(text, bounds), strict=True)
    for index, (group_days, group_text) in enumerate(groups):
        if not len(group_days):
            continue
        folder = root / (start + timedelta(days=int(group_days[0]))).isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{part:04d}.{suffix}"
        body = "\n".join(([header] if header else []) + group_text.tolist()) + "\n"
        path.write_text(body, encoding="utf-8")
        written.append(path)
        # The first chunk's third file is always sent twice, so even a tiny sample has a copy.
        if rng.random() < REDELIVERED or (part == 0 and index == 2):
            copy = folder / f"part-{part:04d}-copy1.{suffix}"
            shutil.copyfile(path, copy)
            written.append(copy)
    return written


class AnswerWriter:
    """The answer files: appended one row group per chunk, never read by the pipeline."""

    CHURN = pa.schema(
        [
            ("member_id", pa.string()),
            ("cutoff_date", pa.date32()),
            ("true_churn_probability", pa.float64()),
            ("churned", pa.bool_()),
        ]
    )
    SEGMENTS = pa.schema(
        [
            ("member_id", pa.string()),
            ("cutoff_date", pa.date32()),
            ("true_segment", pa.string()),
            ("latent_engagement", pa.float64()),
        ]
    )

    TEXTS = pa.schema(
        [
            ("record_type", pa.string()),
            ("record_id", pa.string()),
            ("true_tone", pa.string()),
            ("call_outcome", pa.string()),
            ("style", pa.string()),
            ("has_typo", pa.bool_()),
        ]
    )

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.paths = [
            folder / "churn.parquet",
            folder / "segments.parquet",
            folder / "texts.parquet",
        ]
        self.writers = [
            pq.ParquetWriter(self.paths[0], self.CHURN),
            pq.ParquetWriter(self.paths[1], self.SEGMENTS),
            pq.ParquetWriter(self.paths[2], self.TEXTS),
        ]

    def append(self, churn: dict[str, np.ndarray], segments: dict[str, np.ndarray]) -> None:
        for writer, schema, columns in zip(
            self.writers[:2], (self.CHURN, self.SEGMENTS), (churn, segments), strict=True
        ):
            writer.write_table(pa.table(columns, schema=schema))

    def append_texts(self, texts: dict[str, np.ndarray]) -> None:
        """The planted truth of one chunk's comments and call notes."""
        self.writers[2].write_table(pa.table(texts, schema=self.TEXTS))

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
