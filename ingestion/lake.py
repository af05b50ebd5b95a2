"""The raw lake on local disk: partition naming, atomic publishing and listing.

Layout::

    <lake>/raw/<source>/<table>/interval=<start>--<end>.parquet         landed rows
    <lake>/quarantine/<source>/<table>/interval=<start>--<end>.parquet  bad rows with reasons
    <lake>/manifests/<source>/<table>/interval=<start>--<end>.json      what a landing did

One file per partition, replaced with ``os.replace``: a reader sees the old partition or the new
one, never half of either. Rerunning an interval rewrites its files with identical bytes.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ingestion.contract import Table

# The lower bound used for a first load of the whole history.
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
_STAMP = "%Y%m%dT%H%M%SZ"
_PARTITION = re.compile(r"^interval=(\d{8}T\d{6}Z)--(\d{8}T\d{6}Z)\.(parquet|json)$")


@dataclass(frozen=True)
class Interval:
    """A half-open extract interval [start, end) in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self):
        for bound in (self.start, self.end):
            if bound.tzinfo is None:
                raise ValueError(f"interval bounds must be timezone-aware, got {bound!r}")
        if self.end <= self.start:
            raise ValueError(f"interval end {self.end} is not after its start {self.start}")

    @property
    def is_full_history(self) -> bool:
        return self.start == BEGINNING

    @property
    def name(self) -> str:
        start = self.start.astimezone(UTC).strftime(_STAMP)
        end = self.end.astimezone(UTC).strftime(_STAMP)
        return f"interval={start}--{end}"

    @classmethod
    def from_name(cls, name: str) -> Interval:
        match = _PARTITION.match(name)
        if not match:
            raise ValueError(f"{name!r} is not a partition file name")
        start, end = (datetime.strptime(s, _STAMP).replace(tzinfo=UTC) for s in match.groups()[:2])
        return cls(start, end)


@dataclass(frozen=True)
class Lake:
    root: Path

    def raw_path(self, table: Table, interval: Interval) -> Path:
        return self.root / "raw" / table.source / table.name / f"{interval.name}.parquet"

    def quarantine_path(self, table: Table, interval: Interval) -> Path:
        return self.root / "quarantine" / table.source / table.name / f"{interval.name}.parquet"

    def manifest_path(self, table: Table, interval: Interval) -> Path:
        return self.root / "manifests" / table.source / table.name / f"{interval.name}.json"

    def staging_dir(self) -> Path:
        """Work area for files not yet published; same filesystem, so publishing is a rename."""
        path = self.root / "_staging"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def partitions(self, table: Table) -> list[Interval]:
        """The intervals already landed for ``table``, oldest first."""
        folder = self.root / "raw" / table.source / table.name
        if not folder.is_dir():
            return []
        found = [Interval.from_name(p.name) for p in folder.iterdir() if _PARTITION.match(p.name)]
        return sorted(found, key=lambda interval: (interval.end, interval.start))

    def has_history_before(self, table: Table, start: datetime) -> bool:
        """Whether an earlier landing covers time up to ``start`` (else a run loads everything)."""
        return any(interval.end <= start for interval in self.partitions(table))


def publish_file(staged: Path, final: Path) -> None:
    """Move a finished file into place atomically (same filesystem), replacing any old one."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, final)


def remove_file(path: Path) -> None:
    """Drop a stale partition file (a rerun that now has no bad rows, say); absent is fine."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def stage_json(path: Path, payload: dict) -> Path:
    """Write ``payload`` to a temporary file next to ``path`` (synced) and return it; a failed
    write (a full disk) removes its temporary file and raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=".tmp-", suffix=".json", delete=False
    )
    try:
        with handle:
            json.dump(payload, handle, indent=2, sort_keys=True, default=str)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return Path(handle.name)


def write_json_atomic(path: Path, payload: dict) -> None:
    os.replace(stage_json(path, payload), path)
