"""Faults at the lake's edge: a full disk, a truncated file, schema drift, an empty day on the
database, a duplicate delivery, a source that is down. Each leaves the last good state, says
what happened, and the next run lands what it should.

(test_landing.py covers the contract's other promises: duplicate files in one run, malformed
and truncated JSON lines, an empty export day and file, a missing export root.)
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import duckdb
import pytest
from fixture_sources import CALL_HEADER, DAY1, DAY2, DAY3, survey_line

from config import load_settings
from ingestion import contract
from ingestion.errors import ContractError, SourceUnavailableError
from ingestion.lake import Interval, Lake
from ingestion.land import extract, land, publish, validate


def _state(lake_dir: Path) -> dict[str, str]:
    """Every file of the lake but the work area, with its checksum."""
    return {
        str(p.relative_to(lake_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(lake_dir.rglob("*"))
        if p.is_file() and "_staging" not in p.parts and not p.name.endswith(".lock")
    }


def _rows(path: Path) -> list[dict]:
    with duckdb.connect() as con:
        cursor = con.execute(f"select * from read_parquet('{path}') order by all")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --- A full disk ---------------------------------------------------------------------------------


def test_full_disk_while_staging_leaves_the_previous_partition(sources, monkeypatch):
    import ingestion.land

    land(sources, contract.CALLS, DAY1, DAY2)
    before = _state(sources.lake_dir)
    real_copy = ingestion.land._copy_parquet

    def half_written(con, relation, path):
        real_copy(con, relation, path)
        with open(path, "r+b") as handle:  # the disk filled up halfway through the file
            handle.truncate(os.path.getsize(path) // 2)
        _full_disk()

    monkeypatch.setattr(ingestion.land, "_copy_parquet", half_written)
    with pytest.raises(OSError) as error:
        land(sources, contract.CALLS, DAY1, DAY2)
    assert error.value.errno == errno.ENOSPC
    assert _state(sources.lake_dir) == before  # nothing half-written reached the lake

    monkeypatch.undo()  # space freed: the rerun lands the same partition
    land(sources, contract.CALLS, DAY1, DAY2)
    assert _state(sources.lake_dir) == before


def test_full_disk_while_publishing_leaves_the_previous_partition(sources, monkeypatch):
    import ingestion.lake

    land(sources, contract.SURVEY_RESPONSES, DAY1, DAY2)
    before = _state(sources.lake_dir)
    landing = extract(sources, contract.SURVEY_RESPONSES, DAY1, DAY2)
    validate(landing)
    real_dump = json.dump

    def dump_then_fail(payload, handle, **kwargs):
        real_dump(payload, handle, **kwargs)
        _full_disk()

    monkeypatch.setattr(ingestion.lake.json, "dump", dump_then_fail)
    with pytest.raises(OSError) as error:
        publish(sources, landing)
    assert error.value.errno == errno.ENOSPC
    assert _state(sources.lake_dir) == before  # no new data file, no temporary manifest
    assert (landing.staging / "rows.parquet").exists()  # kept for the retry

    monkeypatch.undo()
    manifest = publish(sources, landing)
    assert manifest["rows_landed"] == len(
        _rows(Lake(sources.lake_dir).raw_path(contract.SURVEY_RESPONSES, landing.interval))
    )


def test_full_disk_while_erasing_leaves_the_partition_whole(sources, monkeypatch):
    import privacy.suppression
    from privacy.erase import erase_members

    land(sources, contract.CALLS, DAY1, DAY2)
    erasing = load_settings({**_env(sources), "CX_HASH_KEY": "k" * 32})
    before = _state(sources.lake_dir)
    monkeypatch.setattr(privacy.suppression.os, "fsync", _full_disk)
    with pytest.raises(OSError):
        erase_members(erasing, ["M1"])
    after = _state(sources.lake_dir)
    assert after == before  # C1 (M1) still there: whole, not half-erased, no temporary file


# --- Truncated and malformed files ---------------------------------------------------------------


def test_truncated_csv_keeps_the_whole_rows_and_quarantines_the_cut_one(sources):
    day = Path(sources.calls_root) / "2026-06-02"
    day.mkdir()
    whole = "C9,2026-06-02T08:00:00Z,M1,,phone,30,300,billing,yes,no,0,A1,fine"
    cut = "C10,2026-06-02T09:00:00Z,M2,+1 555"  # the transfer stopped mid-row
    (day / "calls.csv").write_text(f"{CALL_HEADER}\n{whole}\n{cut}")
    land(sources, contract.CALLS, DAY1, DAY2)
    manifest = land(sources, contract.CALLS, DAY2, DAY3)
    assert manifest["rows_landed"] == 1
    bad = _rows(Lake(sources.lake_dir).quarantine_path(contract.CALLS, Interval(DAY2, DAY3)))
    assert [(r["_reject_reason"], r["_source_row"]) for r in bad] == [("unparseable line", 2)]


def test_a_file_that_is_not_text_fails_naming_it(sources):
    day = Path(sources.calls_root) / "2026-06-02"
    day.mkdir()
    (day / "calls.csv").write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(64))  # gzip, say
    with pytest.raises(ContractError, match=r"2026-06-02/calls\.csv is not UTF-8"):
        extract(sources, contract.CALLS, DAY2, DAY3)


# --- Schema drift --------------------------------------------------------------------------------


def test_columns_reordered_renamed_extra_or_dropped_between_files(sources):
    day = Path(sources.calls_root) / "2026-06-02"
    day.mkdir()
    # The platform moved columns, added one and dropped two optional ones in its new export.
    (day / "a-old.csv").write_text(
        f"{CALL_HEADER}\nC11,2026-06-02T08:00:00Z,M1,5550100001,phone,30,300,billing,yes,no,0,A1,x\n"
    )
    (day / "b-new.csv").write_text(
        "started_at,call_id,sentiment_score,member_id,queue_seconds,resolved\n"
        "2026-06-02T09:00:00Z,C12,0.8,M2,45,no\n"
    )
    land(sources, contract.CALLS, DAY1, DAY2)
    manifest = land(sources, contract.CALLS, DAY2, DAY3)
    assert manifest["extra_columns"] == ["sentiment_score"]
    landed = {
        r["call_id"]: r
        for r in _rows(Lake(sources.lake_dir).raw_path(contract.CALLS, Interval(DAY2, DAY3)))
    }
    assert (landed["C12"]["queue_seconds"], landed["C12"]["resolved"]) == (45, False)
    assert landed["C12"]["agent_id"] is None and landed["C11"]["agent_id"] == "A1"
    assert json.loads(landed["C12"]["_extra_fields"]) == {"sentiment_score": "0.8"}
    assert landed["C11"]["_extra_fields"] is None


def test_a_field_changing_type_quarantines_only_the_rows_it_breaks(sources):
    day = Path(sources.survey_root) / "2026-06-02"
    (day / "new-format.jsonl").write_text(
        "\n".join(
            [
                survey_line("R20", "2026-06-02T08:00:00Z", nps="9", csat=4.0),  # text, float
                survey_line("R21", "2026-06-02T09:00:00Z", nps="nine"),
                survey_line("R22", "2026-06-02T10:00:00Z", nps=8, emotions="valued"),
            ]
        )
        + "\n"
    )
    land(sources, contract.SURVEY_RESPONSES, DAY1, DAY2)
    land(sources, contract.SURVEY_RESPONSES, DAY2, DAY3)
    lake = Lake(sources.lake_dir)
    interval = Interval(DAY2, DAY3)
    landed = {
        r["response_id"]: r for r in _rows(lake.raw_path(contract.SURVEY_RESPONSES, interval))
    }
    assert (landed["R20"]["nps"], landed["R20"]["csat"]) == (9, 4)
    assert landed["R22"]["nps"] == 8 and landed["R22"]["emotion_valued"] is None
    bad = _rows(lake.quarantine_path(contract.SURVEY_RESPONSES, interval))
    assert [r["_reject_reason"] for r in bad if r["response_id"] == "R21"] == [
        "nps is not a valid integer: nine"
    ]


def test_a_column_added_to_the_database_between_runs_is_kept(sources):
    import sqlite3

    land(sources, contract.MEMBERS, DAY1, DAY2)
    path = sources.loyalty_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as con:
        con.execute("alter table members add column household_id text")
        con.execute(
            "update members set household_id = 'H1', updated_at = '2026-06-02 09:00:00' "
            "where member_id = 'M1'"
        )
    manifest = land(sources, contract.MEMBERS, DAY2, DAY3)
    assert manifest["extra_columns"] == ["household_id"]
    landed = _rows(Lake(sources.lake_dir).raw_path(contract.MEMBERS, Interval(DAY2, DAY3)))
    assert [(r["member_id"], json.loads(r["_extra_fields"])) for r in landed] == [
        ("M1", {"household_id": "H1"})
    ]


# --- An empty day, a duplicate delivery ----------------------------------------------------------


def test_a_day_without_changes_in_the_database_lands_an_empty_partition(sources):
    land(sources, contract.MEMBERS, DAY1, DAY2)
    manifest = land(sources, contract.MEMBERS, DAY2, DAY3)  # nobody changed on June 2
    assert manifest["rows_landed"] == 0
    assert manifest["validation"]["success"] is True
    assert _rows(Lake(sources.lake_dir).raw_path(contract.MEMBERS, Interval(DAY2, DAY3))) == []


def test_a_day_delivered_again_the_next_day_lands_in_both_and_is_flagged_in_neither(sources):
    """A whole export folder re-sent under the next day's date: both landings keep it raw
    (the warehouse deduplicates by key), and the contents are identical."""
    import shutil

    root = Path(sources.calls_root)
    shutil.copytree(root / "2026-06-01", root / "2026-06-02")
    land(sources, contract.CALLS, DAY1, DAY2)
    land(sources, contract.CALLS, DAY2, DAY3)
    lake = Lake(sources.lake_dir)
    first, second = (
        _rows(lake.raw_path(contract.CALLS, interval))
        for interval in lake.partitions(contract.CALLS)
    )

    def strip(rows):
        return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]

    assert strip(first) == strip(second) and len(first) == 2


# --- A source that is down -----------------------------------------------------------------------


def _second_day_fails_unpublished(settings) -> str:
    """Lands day 2 with ``settings`` after day 1 landed: it must fail as the loyalty source being
    unavailable and leave the lake as day 1 left it. Returns the error's message."""
    before = _state(settings.lake_dir)
    with pytest.raises(SourceUnavailableError) as error:
        land(settings, contract.TRANSACTIONS, DAY2, DAY3)
    assert _state(settings.lake_dir) == before
    return str(error.value)


def test_a_source_that_is_down_names_the_setting_and_the_rerun_catches_up(sources, tmp_path):
    land(sources, contract.TRANSACTIONS, DAY1, DAY2)
    down = load_settings({**_env(sources), "CX_LOYALTY_URL": f"sqlite:///{tmp_path}/gone/x.db"})
    message = _second_day_fails_unpublished(down)
    assert "loyalty/transactions: the loyalty source (CX_LOYALTY_URL) is unavailable" in message
    assert "rerun interval=20260602T000000Z--20260603T000000Z" in message
    # Back up: the retry (or a cleared run) of the same interval lands what was missed.
    manifest = land(sources, contract.TRANSACTIONS, DAY2, DAY3)
    assert manifest["rows_landed"] == 2  # T3 (late) and T4


def test_an_export_root_that_is_gone_names_its_setting(sources, tmp_path):
    down = load_settings({**_env(sources), "CX_CALLS_ROOT": str(tmp_path / "unmounted")})
    with pytest.raises(SourceUnavailableError, match=r"calls source \(CX_CALLS_ROOT\)"):
        land(down, contract.CALLS, DAY2, DAY3)


def _env(settings) -> dict[str, str]:
    return {
        "CX_DATA_DIR": str(settings.data_dir),
        "CX_LOYALTY_URL": settings.loyalty_url,
        "CX_SURVEY_ROOT": settings.survey_root,
        "CX_CALLS_ROOT": settings.calls_root,
        "CX_BAD_ROW_THRESHOLD": str(settings.bad_row_threshold),
    }


def test_a_database_failing_partway_through_the_read_names_the_source(sources, monkeypatch):
    """The extract streams into DuckDB; a source error after the first batch must surface as
    the source's error (naming its setting), not DuckDB's, and publish nothing."""
    import pyarrow as pa

    from ingestion import readers

    fetch = readers._fetch_text

    def failing_after_one_batch(*args, **kwargs):
        reader = fetch(*args, **kwargs)

        def batches():
            yield from list(reader)[:1]
            raise SourceUnavailableError("connection reset by peer")

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    land(sources, contract.TRANSACTIONS, DAY1, DAY2)
    monkeypatch.setattr(readers, "_fetch_text", failing_after_one_batch)
    message = _second_day_fails_unpublished(sources)
    assert "the loyalty source (CX_LOYALTY_URL) is unavailable" in message
    assert "connection reset by peer" in message
