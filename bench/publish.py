"""``python -m bench.publish``: the analysts' copy made simply, against the daily publish by rows.

Issue 24 (item 3) keeps the publish log and the sync by rows only if no simpler design costs
within 1.5 times the daily publish. On a warehouse the bench built (``--root``: its
``warehouse/cx.duckdb``), this times back to back, ``--repeat`` times each:

- ``whole``: every analyst table copied into a fresh file through DuckDB and swapped in with
  ``os.replace`` (``publish_duckdb(live, target)``, what every publish would be without the sync);
- ``file``: the live file checkpointed and copied as a file, then the unpublished schemas, the
  views and the bookkeeping columns dropped and the copy checkpointed. Dropped data is only
  marked free, and the live file's free blocks hold older rows too: it counts, in each file's
  bytes, the commonest email domain of the ``restricted`` schema (contact details).

The daily publish to compare with is the bench's own (the ``publish`` task of the incremental
day's ``build_warehouse`` in ``bench/results/<members>-members.json``), which needs the state
just before it. Figures go to ``bench/results/publish-<members>-members.json``. A benchmark, not
a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.run import RESULTS_DIR, calibrate, machine


def whole_copy(live: Path, target: Path, memory_limit: str) -> dict:
    from warehouse.publish import publish_duckdb

    started = time.perf_counter()
    publish_duckdb(live, target, memory_limit=memory_limit)
    return {"seconds": round(time.perf_counter() - started, 2), "bytes": target.stat().st_size}


def file_copy(live: Path, target: Path, memory_limit: str) -> dict:
    """The live file copied as a file, less what analysts may not see."""
    import duckdb

    from warehouse.publish import BOOKKEEPING_COLUMNS, UNPUBLISHED_SCHEMAS

    started = time.perf_counter()
    with duckdb.connect(str(live)) as con:
        con.execute("checkpoint")
    staged = target.with_name(".tmp-" + target.name)
    shutil.copyfile(live, staged)
    with duckdb.connect(str(staged)) as con:
        con.execute(f"set memory_limit = '{memory_limit}'")
        for (schema,) in con.execute(
            "select schema_name from duckdb_schemas() where database_name = current_database() "
            "and list_contains(?, schema_name)",
            [list(UNPUBLISHED_SCHEMAS)],
        ).fetchall():
            con.execute(f'drop schema "{schema}" cascade')
        for schema, view in con.execute(
            "select schema_name, view_name from duckdb_views() "
            "where not internal and database_name = current_database()"
        ).fetchall():
            con.execute(f'drop view "{schema}"."{view}"')
        for schema, table, column in con.execute(
            "select schema_name, table_name, column_name from duckdb_columns() "
            "where database_name = current_database() and list_contains(?, column_name)",
            [list(BOOKKEEPING_COLUMNS)],
        ).fetchall():
            con.execute(f'alter table "{schema}"."{table}" drop column "{column}"')
        con.execute("checkpoint")
        free, total = con.execute(
            "select free_blocks, total_blocks from pragma_database_size()"
        ).fetchone()
    os.chmod(staged, 0o444)
    os.replace(staged, target)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "bytes": target.stat().st_size,
        "free_blocks": free,
        "total_blocks": total,
    }


def contact_domain(live: Path) -> bytes | None:
    """The commonest email domain of the contact details (``restricted`` schema), as bytes."""
    import duckdb

    with duckdb.connect(str(live), read_only=True) as con:
        found = con.execute(
            "select 1 from duckdb_columns() where schema_name = 'restricted' "
            "and table_name = 'member_contacts' and column_name = 'email'"
        ).fetchone()
        if not found:
            return None
        domain = con.execute(
            "select '@' || split_part(email, '@', 2) from restricted.member_contacts "
            "where email like '%@%' group by 1 order by count(*) desc limit 1"
        ).fetchone()
    return domain[0].encode() if domain else None


def occurrences(path: Path, needle: bytes, chunk: int = 64 * 2**20) -> int:
    """How many times ``needle`` is in the file's bytes: dropped rows the file still holds can
    be read with a hex editor, whatever the database says."""
    count, tail = 0, b""
    with path.open("rb") as file:
        while block := file.read(chunk):
            data = tail + block
            count += data.count(needle)
            # Keep the last bytes (shorter than the needle) so a match across chunks counts once.
            tail = data[-(len(needle) - 1) :] if len(needle) > 1 else b""
    return count


def describe(live: Path) -> dict:
    import duckdb

    with duckdb.connect(str(live), read_only=True) as con:
        members = con.execute("select count(*) from dim_members").fetchone()[0]
        tables = con.execute(
            "select schema_name || '.' || table_name, estimated_size from duckdb_tables() "
            "order by estimated_size desc limit 8"
        ).fetchall()
    return {"members": members, "live_bytes": live.stat().st_size, "largest_tables": tables}


def main(argv: list[str] | None = None) -> int:
    from config import load_settings

    parser = argparse.ArgumentParser(prog="python -m bench.publish", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("data/bench/1000000"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    live = args.root / "warehouse" / "cx.duckdb"
    memory_limit = load_settings().duckdb_memory_limit
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine(), "calibration": {"before": calibrate()}},
        "memory_limit": memory_limit,
        **describe(live),
        "runs": {"whole": [], "file": []},
    }
    domain = contact_domain(live)
    if domain:
        result["contact_domain"] = domain.decode()
        result["contact_domain_in_live_file"] = occurrences(live, domain)
    args.out.mkdir(parents=True, exist_ok=True)
    # Named like the bench's results: by the size it generated (its root folder's name).
    size = args.root.name if args.root.name.isdigit() else result["members"]
    path = args.out / f"publish-{size}-members.json"
    work = Path(tempfile.mkdtemp(dir=args.root, prefix="publish-bench-"))
    try:
        for number in range(args.repeat):
            for name, measure in (("whole", whole_copy), ("file", file_copy)):
                run = measure(live, work / f"{name}.duckdb", memory_limit)
                run["load_1m"] = round(os.getloadavg()[0], 2)
                if number == 0 and domain:
                    # Each contact's email holds the domain once; the published tables, none.
                    run["contact_domain_in_file"] = occurrences(work / f"{name}.duckdb", domain)
                result["runs"][name].append(run)
                print(f"  {name:<6} run {number + 1}: {json.dumps(run)}", flush=True)
                write(result, path)  # so far: a run cut short keeps what it measured
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["machine"]["calibration"]["after"] = calibrate()
    write(result, path)
    print(f"  medians: {result['median_seconds']}\n  figures written to {path}")
    return 0


def write(result: dict, path: Path) -> None:
    result["median_seconds"] = {
        name: round(statistics.median(run["seconds"] for run in runs), 2)
        for name, runs in result["runs"].items()
        if runs
    }
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
