"""Keyed hashes of the identifiers the warehouse links records by, computed before dbt runs.

The warehouse links survey responses to members by email and calls to members by phone
(``int_identity_links``). It compares keyed hashes (HMAC-SHA256 under ``CX_HASH_KEY`` of
``<kind>:<normalised value>``, ``privacy.identity``, the same hashes as the suppression list),
never the identifiers themselves, so linking needs no plain identifier outside the restricted
staging area. The hashes are computed here, in Python, so the key never reaches dbt: no compiled
SQL, manifest, target file or dbt log can hold it.

For each landed partition of members, survey responses and calls this writes
``<lake>/enriched/<member|response|call>_hashes/<partition>.parquet``: one row per landed row,
with its record key, the hashes of its email and phone (null when there is none), and its lineage
(``_source_file``, ``_source_row``, ``_interval_end``), by which ``int_identity_links`` takes the
hashes of exactly the version staging kept. DuckDB reads the files in place; PostgreSQL gets
them through ``warehouse/load_postgres.py`` like every lake file.

A partition is hashed again when its landed file is newer than its output, or when the output was
written with another key (the key's fingerprint is in the file's metadata, never the key); an
output whose landed file is gone is removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingestion import contract
from privacy.identity import EMAIL, PHONE, key_fingerprint, keyed_hash_array
from warehouse.enrich import EnrichResult, newer_than_source, sync_partitions, write_atomic

FINGERPRINT = b"cx_key_fingerprint"
LINEAGE = (
    pa.field("_source_file", pa.string()),
    pa.field("_source_row", pa.int64()),
    pa.field("_interval_end", pa.timestamp("us", tz="UTC")),
)


@dataclass(frozen=True)
class HashedTable:
    """An enriched table of keyed hashes and the landed table it is computed from."""

    name: str
    landed: contract.Table
    # (landed column, identifier kind, hash column)
    hashes: tuple[tuple[str, str, str], ...]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field(self.landed.key, pa.string()),
                *(pa.field(column, pa.string()) for _, _, column in self.hashes),
                *LINEAGE,
            ]
        )

    def source_dir(self, lake_dir: Path) -> Path:
        return lake_dir / "raw" / self.landed.source / self.landed.name

    def target_dir(self, lake_dir: Path) -> Path:
        return lake_dir / "enriched" / self.name


HASHED_TABLES = (
    HashedTable(
        "member_hashes",
        contract.MEMBERS,
        (("email", EMAIL, "email_hash"), ("phone", PHONE, "phone_hash")),
    ),
    HashedTable("response_hashes", contract.SURVEY_RESPONSES, (("email", EMAIL, "email_hash"),)),
    HashedTable("call_hashes", contract.CALLS, (("caller_phone", PHONE, "caller_phone_hash"),)),
)


def hash_partition(source: Path, table: HashedTable, key: bytes) -> pa.Table:
    """The hash rows of one landed partition: every row with a record key, in landed order."""
    schema = table.schema
    present = set(pq.read_schema(source).names)
    wanted = [table.landed.key, *(column for column, _, _ in table.hashes)]
    wanted += [field.name for field in LINEAGE]
    landed = pq.read_table(source, columns=[name for name in wanted if name in present])
    rows = landed.num_rows

    def column(name: str, kind: pa.DataType) -> pa.Array:
        if name not in present:
            return pa.nulls(rows, kind)
        return landed[name].combine_chunks().cast(kind)

    arrays = [column(table.landed.key, pa.string())]
    for landed_column, kind, _ in table.hashes:
        arrays.append(keyed_hash_array(key, kind, column(landed_column, pa.string())))
    arrays += [column(field.name, field.type) for field in LINEAGE]
    hashed = pa.Table.from_arrays(arrays, schema=schema)
    hashed = hashed.filter(pc.is_valid(hashed[table.landed.key]))
    return hashed.replace_schema_metadata({FINGERPRINT: key_fingerprint(key).encode()})


def hash_identities(lake_dir: Path, key: bytes, force: bool = False) -> EnrichResult:
    """Hash every landed partition whose output is missing, older, or under another key."""
    fingerprint = key_fingerprint(key).encode()

    def is_current(target: Path, source: Path) -> bool:
        if not newer_than_source(target, source):
            return False
        return (pq.read_schema(target).metadata or {}).get(FINGERPRINT) == fingerprint

    written, skipped, removed = [], [], []
    for table in HASHED_TABLES:
        target_dir = table.target_dir(lake_dir)

        def build(source: Path, table: HashedTable = table, target_dir: Path = target_dir):
            # zstd: hex digests take half the space snappy leaves them.
            write_atomic(
                hash_partition(source, table, key), target_dir / source.name, compression="zstd"
            )

        done = sync_partitions(table.source_dir(lake_dir), target_dir, build, is_current, force)
        written += done.written
        skipped += done.skipped
        removed += done.removed
    return EnrichResult(tuple(written), tuple(skipped), tuple(removed))
