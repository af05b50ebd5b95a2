"""Landing behaviour on tiny hand-written sources: the promises of the source contract."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime

import duckdb
import pytest
from fixture_sources import CALL_HEADER, DAY1, DAY2, DAY3, survey_line, write_loyalty

from config import load_settings
from ingestion import contract
from ingestion.errors import ContractError, SourceUnavailableError, TooManyBadRowsError
from ingestion.lake import Interval, Lake
from ingestion.land import extract, land


def rows(path) -> list[dict]:
    con = duckdb.connect()
    cursor = con.execute(f"select * from read_parquet('{path}') order by all")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rerun_of_an_interval_gives_identical_partitions(sources):
    lake = Lake(sources.lake_dir)
    first = {}
    for table in contract.TABLES:
        land(sources, table, DAY2, DAY3)
        interval = lake.partitions(table)[-1]
        first[table.name] = (digest(lake.raw_path(table, interval)), interval)
    for table in contract.TABLES:
        land(sources, table, DAY2, DAY3)
        checksum, interval = first[table.name]
        assert lake.partitions(table) == [interval]
        assert digest(lake.raw_path(table, interval)) == checksum


def test_first_run_loads_history_then_runs_take_their_interval(sources):
    table = contract.TRANSACTIONS
    first = land(sources, table, DAY1, DAY2)
    assert first["full_history"] is True
    assert first["rows_landed"] == 2  # T1 (May 31) and T2 (June 1); T3 was recorded on June 2
    second = land(sources, table, DAY2, DAY3)
    assert second["full_history"] is False
    landed = rows(Lake(sources.lake_dir).raw_path(table, Interval(DAY2, DAY3)))
    # The late row is picked up by the interval in which it was recorded.
    assert [r["transaction_id"] for r in landed] == ["T3", "T4"]
    assert second["rows_quarantined"] == 1  # T5's amount is "twelve"


def test_lookback_rereads_late_rows_when_there_is_no_recorded_at(tmp_path):
    # Without recorded_at, occurrence time bounds the extract, re-read over a lookback window.
    transactions = [("T1", "M1", "2026-06-01 10:00:00", "5", None, "app", 5)]
    url = write_loyalty(tmp_path / "loyalty.db", transactions=transactions)
    settings = load_settings(
        {"CX_DATA_DIR": str(tmp_path), "CX_LOYALTY_URL": url, "CX_LATE_LOOKBACK_DAYS": "2"}
    )
    import sqlite3

    con = sqlite3.connect(tmp_path / "loyalty.db")
    con.execute("alter table transactions drop column recorded_at")
    con.commit()
    con.close()
    land(settings, contract.TRANSACTIONS, DAY1, DAY2, full_history=True)
    manifest = land(settings, contract.TRANSACTIONS, DAY2, DAY3)
    assert manifest["watermark"] == ["occurred_at"]
    assert manifest["rows_landed"] == 1  # June 1 is inside the 2-day lookback of June 2
    assert "recorded_at" in manifest["columns_missing"]


@pytest.mark.parametrize("erased", [None, "M5"], ids=["nobody-erased", "one-member-erased"])
def test_database_rows_land_in_source_order_with_bad_rows_quarantined_as_delivered(
    tmp_path, erased
):
    # Enough rows for DuckDB to work on several row groups at once: the good rows are not
    # sorted after the split, so their order is the source's only if the split keeps it. With
    # a member erased, the rows pass through the suppression filter first, which must keep it.
    count = 300_000
    transactions = [
        (
            f"T{n:07d}",
            f"M{n % 997}",
            "2026-06-01 10:00:00",
            "oops" if n % 50_000 == 7 else str(n % 90 + 1),
            "2026-06-01 10:05:00",
            "app",
            n % 11,
        )
        for n in range(count)
    ]
    url = write_loyalty(tmp_path / "loyalty.db", transactions=transactions)
    settings = load_settings(
        {"CX_DATA_DIR": str(tmp_path), "CX_LOYALTY_URL": url, "CX_HASH_KEY": "k" * 32}
    )
    suppressed = 0
    if erased:
        from privacy.suppression import record

        record(settings, {"member": [erased]}, members=1)
        suppressed = sum(1 for row in transactions if row[1] == erased)
    manifest = land(settings, contract.TRANSACTIONS, DAY1, DAY3, full_history=True)
    assert manifest["rows_suppressed"] == suppressed
    assert (manifest["rows_landed"], manifest["rows_quarantined"]) == (count - 6 - suppressed, 6)
    interval = Lake(settings.lake_dir).partitions(contract.TRANSACTIONS)[-1]
    con = duckdb.connect()
    source_rows = [
        row[0]
        for row in con.execute(
            "select _source_row from read_parquet(?)",
            [str(Lake(settings.lake_dir).raw_path(contract.TRANSACTIONS, interval))],
        ).fetchall()
    ]
    assert source_rows == sorted(source_rows)
    assert len(source_rows) == count - 6 - suppressed
    bad = con.execute(
        "select _source_row, amount, transaction_id, _reject_reason from read_parquet(?) "
        "order by _source_row",
        [str(Lake(settings.lake_dir).quarantine_path(contract.TRANSACTIONS, interval))],
    ).fetchall()
    assert [row[:3] for row in bad] == [
        (n + 1, "oops", f"T{n:07d}") for n in range(7, count, 50_000)
    ]
    assert all(row[3] == "amount is not a valid decimal: oops" for row in bad)


def test_mixed_offsets_land_as_utc(sources):
    land(sources, contract.SURVEY_RESPONSES, DAY2, DAY3)
    interval = Lake(sources.lake_dir).partitions(contract.SURVEY_RESPONSES)[-1]
    landed = {
        r["response_id"]: r
        for r in rows(Lake(sources.lake_dir).raw_path(contract.SURVEY_RESPONSES, interval))
    }
    assert landed["R2"]["submitted_at"] == datetime(2026, 6, 1, 10, tzinfo=UTC)  # +02:00
    assert landed["R6"]["submitted_at"] == datetime(2026, 6, 2, 13, tzinfo=UTC)  # -05:00
    assert landed["R1"]["submitted_at"] == datetime(2026, 6, 1, 9, tzinfo=UTC)  # Z


def test_duplicate_delivery_is_kept_raw_and_flagged(sources):
    manifest = land(sources, contract.SURVEY_RESPONSES, DAY2, DAY3)
    duplicates = [f for f in manifest["source_files"] if "duplicate_of" in f]
    assert [f["path"].rsplit("/", 1)[1] for f in duplicates] == ["export-a.jsonl"]
    interval = Lake(sources.lake_dir).partitions(contract.SURVEY_RESPONSES)[-1]
    ids = [
        r["response_id"]
        for r in rows(Lake(sources.lake_dir).raw_path(contract.SURVEY_RESPONSES, interval))
    ]
    # R1 arrives three times (two copies of one file, and again the next day); the warehouse dedups.
    assert ids.count("R1") == 3


def test_malformed_rows_go_to_quarantine_with_reason_file_and_row(sources):
    manifest = land(sources, contract.SURVEY_RESPONSES, DAY2, DAY3)
    assert manifest["rows_quarantined"] == 6  # three bad lines, in a file delivered twice
    interval = Lake(sources.lake_dir).partitions(contract.SURVEY_RESPONSES)[-1]
    bad = rows(Lake(sources.lake_dir).quarantine_path(contract.SURVEY_RESPONSES, interval))
    reasons = {
        (r["_source_file"].rsplit("/", 1)[1], r["_source_row"]): r["_reject_reason"] for r in bad
    }
    assert reasons[("export-a.jsonl", 3)] == "nps 14 is above 10"
    assert reasons[("export-a.jsonl", 4)] == "unparseable line"
    assert reasons[("export-a.jsonl", 5)].startswith("submitted_at is not a valid timestamp")
    truncated = next(r for r in bad if r["_reject_reason"] == "unparseable line")
    assert truncated["_line"].startswith('{"response_id": "R4"')


def test_csv_rows_with_bad_values_are_quarantined_and_booleans_parsed(sources):
    manifest = land(sources, contract.CALLS, DAY2, DAY3)
    interval = Lake(sources.lake_dir).partitions(contract.CALLS)[-1]
    good = {
        r["call_id"]: r for r in rows(Lake(sources.lake_dir).raw_path(contract.CALLS, interval))
    }
    assert set(good) == {"C1", "C2"}
    assert (good["C1"]["resolved"], good["C1"]["escalated"]) == (True, False)  # yes/no
    assert (good["C2"]["resolved"], good["C2"]["escalated"]) == (False, True)  # false/true
    assert good["C2"]["notes"] == "angry, wants refund"
    reasons = sorted(r["reason"] for r in manifest["quarantine_reasons"])
    assert reasons == ["missing required call_id", "queue_seconds is not a valid integer"]


def test_extra_columns_and_fields_are_kept(tmp_path, sources):
    url = write_loyalty(tmp_path / "extra.db", extra_column=True)
    settings = load_settings({"CX_DATA_DIR": str(tmp_path / "x"), "CX_LOYALTY_URL": url})
    manifest = land(settings, contract.MEMBERS, DAY2, DAY3)
    assert manifest["extra_columns"] == ["favourite_store"]
    interval = Lake(settings.lake_dir).partitions(contract.MEMBERS)[-1]
    landed = rows(Lake(settings.lake_dir).raw_path(contract.MEMBERS, interval))
    assert {json.loads(r["_extra_fields"])["favourite_store"] for r in landed} == {"S9"}

    land(sources, contract.SURVEY_RESPONSES, DAY2, DAY3)
    interval = Lake(sources.lake_dir).partitions(contract.SURVEY_RESPONSES)[-1]
    r2 = next(
        r
        for r in rows(Lake(sources.lake_dir).raw_path(contract.SURVEY_RESPONSES, interval))
        if r["response_id"] == "R2"
    )
    assert json.loads(r2["_extra_fields"]) == {"loyalty_campaign": "spring"}


def test_missing_optional_columns_land_as_nulls(sources):
    land(sources, contract.MEMBERS, DAY2, DAY3)
    interval = Lake(sources.lake_dir).partitions(contract.MEMBERS)[-1]
    landed = rows(Lake(sources.lake_dir).raw_path(contract.MEMBERS, interval))
    assert all(r["birth_date"] is None and r["region"] is None for r in landed)
    assert [c.name for c in contract.MEMBERS.columns] == list(landed[0])[
        : len(contract.MEMBERS.columns)
    ]


def test_missing_required_column_fails_naming_file_and_column(sources):
    bad_day = sources.calls_root + "/2026-06-02"
    import os

    os.makedirs(bad_day)
    with open(f"{bad_day}/calls.csv", "w") as handle:
        handle.write(CALL_HEADER.replace("started_at,", "") + "\n")
    with pytest.raises(ContractError, match=r"2026-06-02/calls\.csv.*\['started_at'\]"):
        extract(sources, contract.CALLS, DAY2, DAY3, full_history=True)
    assert not Lake(sources.lake_dir).partitions(contract.CALLS)


def test_missing_required_json_field_fails_naming_file(sources):
    day = f"{sources.survey_root}/2026-06-02"
    with open(f"{day}/no-ids.jsonl", "w") as handle:
        for minute in range(10):
            line = {"submitted_at": f"2026-06-02T10:{minute:02d}:00Z", "nps": 5}
            handle.write(json.dumps(line) + "\n")
    with pytest.raises(ContractError, match=r"no-ids\.jsonl.*'response_id'"):
        extract(sources, contract.SURVEY_RESPONSES, DAY2, DAY3)


def test_a_small_file_missing_a_required_field_quarantines_its_lines(sources):
    """A quiet day's export can be one line: without its id it is a bad row, not a renamed
    field, and the rest of the run lands."""
    day = f"{sources.survey_root}/2026-06-02"
    with open(f"{day}/one-line.jsonl", "w") as handle:
        handle.write(json.dumps({"submitted_at": "2026-06-02T10:00:00Z", "nps": 5}) + "\n")
    before = extract(sources, contract.SURVEY_RESPONSES, DAY2, DAY3).manifest
    assert any(
        entry.get("rows_quarantined") == 1 and entry["path"].endswith("one-line.jsonl")
        for entry in before["source_files"]
    ), before["source_files"]


def test_missing_required_database_column_fails_naming_table(tmp_path):
    import sqlite3

    path = tmp_path / "loyalty.db"
    con = sqlite3.connect(path)
    con.execute("create table members (member_id text)")
    con.commit()
    con.close()
    settings = load_settings({"CX_DATA_DIR": str(tmp_path), "CX_LOYALTY_URL": f"sqlite:///{path}"})
    with pytest.raises(
        ContractError, match=r"'members' lacks required column\(s\) \['enrolled_at'\]"
    ):
        extract(settings, contract.MEMBERS, DAY2, DAY3)


def test_too_many_bad_rows_fail_and_leave_the_last_good_partition(sources):
    lake = Lake(sources.lake_dir)
    land(sources, contract.CALLS, DAY1, DAY2)
    before = {p: digest(lake.raw_path(contract.CALLS, p)) for p in lake.partitions(contract.CALLS)}
    strict = load_settings({**_env(sources), "CX_BAD_ROW_THRESHOLD": "0.1"})
    with pytest.raises(
        TooManyBadRowsError,
        match=r"calls/contacts: 2 of 4 rows .*queue_seconds|missing required call_id",
    ):
        land(strict, contract.CALLS, DAY1, DAY2)
    assert {
        p: digest(lake.raw_path(contract.CALLS, p)) for p in lake.partitions(contract.CALLS)
    } == before


def test_empty_day_lands_an_empty_partition(sources):
    land(sources, contract.CALLS, DAY1, DAY2)
    manifest = land(sources, contract.CALLS, DAY2, DAY3)  # no folder for June 2
    assert manifest["rows_landed"] == 0
    assert manifest["validation"]["success"] is True
    assert rows(Lake(sources.lake_dir).raw_path(contract.CALLS, Interval(DAY2, DAY3))) == []


def test_empty_file_is_an_empty_delivery(sources):
    land(sources, contract.SURVEY_RESPONSES, DAY1, DAY2)
    day = f"{sources.survey_root}/2026-06-02"
    shutil.rmtree(day)
    import os

    os.makedirs(day)
    open(f"{day}/empty.jsonl", "w").close()
    manifest = land(sources, contract.SURVEY_RESPONSES, DAY2, DAY3)
    assert manifest["rows_landed"] == 0


def test_missing_export_root_is_a_clear_source_error(tmp_path):
    settings = load_settings(
        {"CX_DATA_DIR": str(tmp_path), "CX_SURVEY_ROOT": str(tmp_path / "nowhere")}
    )
    with pytest.raises(SourceUnavailableError, match="nowhere does not exist"):
        extract(settings, contract.SURVEY_RESPONSES, DAY2, DAY3)


def test_unreachable_database_is_a_clear_source_error(tmp_path):
    settings = load_settings(
        {
            "CX_DATA_DIR": str(tmp_path),
            "CX_LOYALTY_URL": "postgresql+psycopg2://nobody:secret@127.0.0.1:1/none",
        }
    )
    with pytest.raises(SourceUnavailableError) as error:
        extract(settings, contract.MEMBERS, DAY2, DAY3)
    assert "secret" not in str(error.value)  # the password never reaches a log


def _env(settings) -> dict[str, str]:
    return {
        "CX_DATA_DIR": str(settings.data_dir),
        "CX_LOYALTY_URL": settings.loyalty_url,
        "CX_SURVEY_ROOT": settings.survey_root,
        "CX_CALLS_ROOT": settings.calls_root,
    }


def test_survey_line_helper_round_trips():
    assert json.loads(survey_line("R", "t", nps=1)) == {
        "response_id": "R",
        "submitted_at": "t",
        "nps": 1,
    }


@pytest.mark.parametrize("watermark", [("recorded_at", "occurred_at"), ("recorded_at",)])
def test_a_days_read_fetches_its_window_and_undated_rows_through_the_index(watermark, tmp_path):
    import itertools
    import sqlite3

    from ingestion.readers import _in_window, sqlite_strays, starts_with_a_date

    path = tmp_path / "t.db"
    con = sqlite3.connect(path)
    con.execute("create table t (id integer, recorded_at text, occurred_at text)")
    con.execute("create index ix_recorded on t (recorded_at)")
    days = [
        None,
        "2026-05-31 23:00:00",
        "2026-06-01 00:00:00",
        "2026-06-01 12:00:00",
        "2026-06-02",
        # Text SQLite sorts away from the time it names, or that names none: epoch seconds,
        # a US date, a number (text in this column), '2026/6/1' (June 1 to the parser, after
        # every 2026-MM-DD value), epoch seconds of 2030 (among 1900's dates).
        "1781517600",
        "06/01/2026 10:00",
        1780315200,
        "2026/6/1 10:00",
        "1900000000",
    ]
    con.executemany(
        "insert into t values (?, ?, ?)",
        [(n, *pair) for n, pair in enumerate(itertools.product(days, repeat=2))],
    )
    con.commit()
    low, high = "2026-06-01 00:00:00", "2026-06-02"

    def fetched(values) -> bool:
        """Text that begins with a date is found by its window; other text by every read; a
        null places the row by the next column, and a row no column places is fetched."""
        for value in values:
            if value is None:
                continue
            return not starts_with_a_date(value) or low <= value < high
        return True

    rows = con.execute(f"select id, {', '.join(watermark)} from t").fetchall()
    expected = sorted(row[0] for row in rows if fetched(row[1:]))
    # 2 of 10 recorded_at values in the window and 5 strays, each with 10 occurred_at; a null
    # recorded_at with the 2 + 5 occurred_at it fetches and a null (or, alone, with every one).
    assert len(expected) == (70 + 8 if len(watermark) == 2 else 70 + 10)
    strays = sqlite_strays(str(path), "t", "recorded_at")
    assert sorted(strays) == sorted(
        ["1781517600", "06/01/2026 10:00", "1780315200", "2026/6/1 10:00", "1900000000"]
    )
    predicate = _in_window(watermark, f"'{low}'", f"'{high}'", sqlite=True, strays=strays)
    fetched_ids = con.execute(f"select id from t where {predicate} order by id").fetchall()
    assert [row[0] for row in fetched_ids] == expected
    plan = " ".join(
        row[-1] for row in con.execute(f"explain query plan select id from t where {predicate}")
    )
    # Each term is a search of the recorded_at index, not a scan of the table.
    assert "USING INDEX ix_recorded" in plan and "SCAN t" not in plan
    # Without the strays listed, every row's value is tested: the same rows, by a scan.
    predicate = _in_window(watermark, f"'{low}'", f"'{high}'", sqlite=True, strays=None)
    fetched_ids = con.execute(f"select id from t where {predicate} order by id").fetchall()
    assert [row[0] for row in fetched_ids] == expected


@pytest.mark.parametrize(
    ("value", "begins_with_a_date"),
    [
        ("2026-06-15 10:00:00", True),
        ("2024-02-29 4pm", True),  # a leap day, then words
        ("2026-02-29", False),  # no such day: SQLite's date() alone takes it as it is
        ("2026-06-31 10:00", False),
        ("2026-13-01", False),
        ("0000-01-01", False),
        ("2026-6-15 10:00", False),
        ("2026/6/15 10:00", False),
        (" 2026-06-15", False),
        ("1900000000", False),
        ("June 15 2026", False),
    ],
)
def test_sqlite_and_python_agree_on_what_begins_with_a_date(value, begins_with_a_date):
    """A day's read lists a column's stray values by walking its index (Python's test), or tests
    each row in SQL: either way, the same rows."""
    import sqlite3

    from ingestion.readers import _SQLITE_STRAY, starts_with_a_date

    with sqlite3.connect(":memory:") as con:
        stray = con.execute(f"select {_SQLITE_STRAY.format(c='?')}", [value] * 6).fetchone()[0]
    assert starts_with_a_date(value) is begins_with_a_date
    assert bool(stray) is not begins_with_a_date
