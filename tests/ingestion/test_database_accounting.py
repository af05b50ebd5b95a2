"""The loyalty database's rows are all accounted for: a row whose watermark is not a date SQLite
can compare, or is dated after the run, is landed or quarantined with the reason, never lost;
every manifest adds up; a day inside the first load reads that day; keys landed again with
other values are counted."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import duckdb
import pytest
from fixture_sources import DAY1, DAY2, DAY3, MEMBERS, TRANSACTIONS, write_loyalty

from config import load_settings
from ingestion import contract
from ingestion.lake import BEGINNING, Interval, Lake
from ingestion.land import extract, land


def _settings(tmp_path, url: str, **env) -> object:
    return load_settings({"CX_DATA_DIR": str(tmp_path / "data"), "CX_LOYALTY_URL": url, **env})


def _quarantined(settings, table, interval: Interval) -> dict[str, str]:
    """Key -> reason of the rows quarantined by the landing of ``interval``."""
    path = Lake(settings.lake_dir).quarantine_path(table, interval)
    if not path.exists():
        return {}
    with duckdb.connect() as con:
        rows = con.execute(
            f"select {table.key}, _reject_reason from read_parquet('{path}')"
        ).fetchall()
    return dict(rows)


def _landed(settings, table, interval: Interval) -> list[str]:
    path = Lake(settings.lake_dir).raw_path(table, interval)
    with duckdb.connect() as con:
        rows = con.execute(f"select {table.key} from read_parquet('{path}')").fetchall()
    return [row[0] for row in rows]


def _adds_up(manifest: dict) -> bool:
    return manifest["rows_read"] == (
        manifest["rows_landed"]
        + manifest["rows_quarantined"]
        + manifest["rows_outside_interval"]
        + manifest["rows_suppressed"]
    )


# --- Watermarks that are not dates -------------------------------------------------------------


# recorded_at as epoch seconds in text, a US date, and a number: SQLite compares each as text
# (or as a number) with the day's bounds, where no window holds it.
NOT_DATES = [
    ("T6", "M1", "2026-06-02 10:00:00", "6.00", "1780394400", "store", 6),
    ("T7", "M1", "2026-06-02 11:00:00", "7.00", "06/02/2026 11:00", "store", 7),
    ("T8", "M2", "2026-06-02 12:00:00", "8.00", 1780401600, "store", 8),
]


def test_a_recorded_at_that_is_not_a_date_is_quarantined_by_the_day_it_occurred(tmp_path):
    settings = _settings(
        tmp_path,
        write_loyalty(tmp_path / "loyalty.db", transactions=TRANSACTIONS + NOT_DATES),
        CX_BAD_ROW_THRESHOLD="0.9",
    )
    first = land(settings, contract.TRANSACTIONS, DAY1, DAY2)
    day = land(settings, contract.TRANSACTIONS, DAY2, DAY3)
    bad = _quarantined(settings, contract.TRANSACTIONS, Interval(DAY2, DAY3))
    assert bad == {
        "T5": "amount is not a valid decimal: twelve",
        "T6": "unparseable watermark: recorded_at 1780394400",
        "T7": "unparseable watermark: recorded_at 06/02/2026 11:00",
        "T8": "unparseable watermark: recorded_at 1780401600",
    }
    assert {"reason": "unparseable watermark", "rows": 3} in [
        {k: r[k] for k in ("reason", "rows")} for r in day["quarantine_reasons"]
    ]
    # The first load (up to June 2) quarantined them too, as dated after its end (by
    # occurred_at): neither run lost them.
    before = _quarantined(settings, contract.TRANSACTIONS, Interval(BEGINNING, DAY2))
    assert {"T6", "T7", "T8"} <= set(before)
    assert _adds_up(first) and _adds_up(day)


def test_a_row_no_watermark_can_place_is_quarantined_by_every_day_that_reads_it(tmp_path):
    transactions = TRANSACTIONS + [
        ("T9", "M1", "not a time", "9.00", "06/02/2026 11:00", "store", 9),
        ("T10", "M1", None, "10.00", None, "store", 10),
    ]
    settings = _settings(
        tmp_path,
        write_loyalty(tmp_path / "loyalty.db", transactions=transactions),
        # June 3 reads these two rows alone: all its rows are bad.
        CX_BAD_ROW_THRESHOLD="1.0",
    )
    land(settings, contract.TRANSACTIONS, DAY1, DAY2)
    for start, end in ((DAY2, DAY3), (DAY3, DAY3.replace(day=4))):
        manifest = land(settings, contract.TRANSACTIONS, start, end)
        bad = _quarantined(settings, contract.TRANSACTIONS, Interval(start, end))
        assert bad["T9"] == (
            "unparseable watermark: occurred_at not a time; "
            "unparseable watermark: recorded_at 06/02/2026 11:00"
        )
        assert bad["T10"] == "missing required occurred_at"
        assert _adds_up(manifest)


# --- Watermarks after the run's end ------------------------------------------------------------


def test_a_member_enrolled_after_the_first_loads_end_is_quarantined_then_landed(tmp_path):
    """Dated relative to the run, not the wall clock: 2020 is long past, yet a member enrolled
    on 2020-06-20 is in the future of a load that ends on 2020-06-16."""
    members = [
        ("M1", "2019-01-05 10:00:00", "2020-06-10 09:00:00", None, None, "gold", 1, None),
        ("M2", "2019-03-01 12:00:00", None, None, None, "silver", 0, None),
        ("M9", "2020-06-20 10:00:00", None, None, None, "bronze", None, None),
    ]
    transactions = [("T1", "M9", "2020-06-15 10:00:00", "5.00", "2020-06-15 10:00:01", "app", 5)]
    # Quarantined rows dated after the end are not held against the source: 1 of 3 is over
    # a 5% threshold.
    settings = _settings(
        tmp_path,
        write_loyalty(tmp_path / "loyalty.db", members=members, transactions=transactions),
        CX_BAD_ROW_THRESHOLD="0.05",
    )
    end = datetime(2020, 6, 16, tzinfo=UTC)
    manifest = land(settings, contract.MEMBERS, datetime(2020, 6, 15, tzinfo=UTC), end)
    assert manifest["full_history"] is True
    assert (manifest["rows_landed"], manifest["rows_quarantined"]) == (2, 1)
    assert manifest["rows_quarantined_future"] == 1
    assert [r["reason"] for r in manifest["quarantine_reasons"]] == ["watermark in the future"]
    assert _quarantined(settings, contract.MEMBERS, Interval(BEGINNING, end)) == {
        "M9": "watermark in the future: enrolled_at 2020-06-20 10:00:00+00 is not before the "
        "interval end 2020-06-16 00:00:00+00"
    }
    assert _adds_up(manifest)
    # The run of the day the member enrolled lands them.
    day = Interval(datetime(2020, 6, 20, tzinfo=UTC), datetime(2020, 6, 21, tzinfo=UTC))
    land(settings, contract.MEMBERS, day.start, day.end)
    assert _landed(settings, contract.MEMBERS, day) == ["M9"]


def test_a_day_leaves_rows_of_other_days_to_them_bad_or_not(tmp_path):
    """The read over-fetches a day on each side: those rows are counted as outside the interval,
    and a bad one is quarantined once, by its own day, not by its neighbour too."""
    settings = _settings(
        tmp_path, write_loyalty(tmp_path / "loyalty.db"), CX_BAD_ROW_THRESHOLD="0.9"
    )
    land(settings, contract.TRANSACTIONS, DAY1 - (DAY2 - DAY1), DAY1)  # the first load, to May 31
    june_1 = land(settings, contract.TRANSACTIONS, DAY1, DAY2)
    june_2 = land(settings, contract.TRANSACTIONS, DAY2, DAY3)
    assert june_1["full_history"] is False
    # June 1 reads T1 (May 31) and T3-T5 (June 2) besides its own T2.
    assert (june_1["rows_read"], june_1["rows_landed"], june_1["rows_quarantined"]) == (5, 1, 0)
    assert june_1["rows_outside_interval"] == 4
    assert "T5" not in _quarantined(settings, contract.TRANSACTIONS, Interval(DAY1, DAY2))
    assert _quarantined(settings, contract.TRANSACTIONS, Interval(DAY2, DAY3)) == {
        "T5": "amount is not a valid decimal: twelve"
    }
    assert _adds_up(june_1) and _adds_up(june_2)


def test_every_database_manifest_adds_up_with_members_erased(tmp_path):
    from privacy.suppression import record

    settings = _settings(tmp_path, write_loyalty(tmp_path / "loyalty.db"), CX_HASH_KEY="k" * 32)
    record(settings, {"member": ["M3"]}, members=1)
    for table in contract.TABLES_BY_SOURCE["loyalty"]:
        for start, end in ((DAY1, DAY2), (DAY2, DAY3)):
            manifest = land(settings, table, start, end)
            assert set(manifest) >= {"rows_read", "rows_outside_interval", "conflicting_duplicates"}
            assert _adds_up(manifest), manifest
    # T4 and T5 are M3's: read on June 2, suppressed, neither landed nor quarantined.
    assert manifest["rows_suppressed"] == 2


# --- A day inside the first load ---------------------------------------------------------------


def test_a_day_inside_the_first_load_reads_exactly_that_day(sources):
    lake = Lake(sources.lake_dir)
    table = contract.TRANSACTIONS
    first = land(sources, table, DAY2, DAY3)
    assert first["full_history"] is True  # the first load: everything before June 3
    # Its own day again is a rerun of it, and replaces it.
    assert land(sources, table, DAY2, DAY3)["full_history"] is True
    assert lake.partitions(table) == [Interval(BEGINNING, DAY3)]
    # A manual run or a backfill of June 1: that day alone, not the whole history again.
    again = land(sources, table, DAY1, DAY2)
    assert (again["full_history"], again["interval_start"]) == (False, DAY1.isoformat())
    assert _landed(sources, table, Interval(DAY1, DAY2)) == ["T2"]
    assert lake.partitions(table) == [Interval(DAY1, DAY2), Interval(BEGINNING, DAY3)]


@pytest.mark.parametrize("full_history", [False, True])
def test_a_table_without_a_landing_covering_the_day_loads_its_history(sources, full_history):
    land(sources, contract.MEMBERS, DAY1, DAY2)  # another table's landing changes nothing
    landing = extract(sources, contract.TRANSACTIONS, DAY2, DAY3, full_history=full_history)
    assert landing.interval == Interval(BEGINNING, DAY3)


# --- Keys landed again with other values -------------------------------------------------------


def test_keys_landed_again_with_other_values_are_counted(tmp_path):
    path = tmp_path / "loyalty.db"
    settings = _settings(tmp_path, write_loyalty(path), CX_BAD_ROW_THRESHOLD="0.9")
    for table in contract.TABLES_BY_SOURCE["loyalty"]:
        first = land(settings, table, DAY1, DAY2)
        assert first["conflicting_duplicates"] == 0
    with sqlite3.connect(path) as con:
        # T1 corrected on June 2: the lake holds its May 31 amount.
        con.execute(
            "update transactions set amount = 30.5, recorded_at = '2026-06-02 09:00:00' "
            "where transaction_id = 'T1'"
        )
        # T2 recorded again, nothing else changed: delivered again, not a conflict.
        con.execute(
            "update transactions set recorded_at = '2026-06-02 09:30:00' "
            "where transaction_id = 'T2'"
        )
        # M1 updated: a new version (its updated_at moved), not a conflict.
        con.execute(
            "update members set tier = 'platinum', updated_at = '2026-06-02 10:00:00' "
            "where member_id = 'M1'"
        )
    transactions = land(settings, contract.TRANSACTIONS, DAY2, DAY3)
    members = land(settings, contract.MEMBERS, DAY2, DAY3)
    assert transactions["conflicting_duplicates"] == 1
    assert members["conflicting_duplicates"] == 0


def test_a_key_twice_in_one_read_with_other_values_is_counted(tmp_path):
    """A table without a primary key can hold one member twice; the landing says so."""
    path = tmp_path / "loyalty.db"
    write_loyalty(path)
    with sqlite3.connect(path) as con:
        con.execute("alter table members rename to keyed")
        con.execute("create table members as select * from keyed")
        con.execute("drop table keyed")
        row = MEMBERS[0]
        con.execute(
            "insert into members values (?, ?, ?, ?, ?, ?, ?, ?)", (*row[:5], "silver", *row[6:])
        )
    settings = _settings(tmp_path, f"sqlite:///{path}")
    manifest = land(settings, contract.MEMBERS, DAY1, DAY2)
    assert manifest["conflicting_duplicates"] == 1


# --- The run's summary ---------------------------------------------------------------------------


def test_the_runs_summary_counts_what_was_quarantined_outside_and_conflicting(tmp_path, capsys):
    from pipeline.run import landing_report, print_report

    members = MEMBERS + [("M9", "2026-06-20 10:00:00", None, None, None, "bronze", None, None)]
    settings = _settings(
        tmp_path,
        write_loyalty(
            tmp_path / "loyalty.db", members=members, transactions=TRANSACTIONS + NOT_DATES
        ),
        CX_BAD_ROW_THRESHOLD="0.9",
        CX_SOURCES="loyalty",
    )
    for table in contract.TABLES_BY_SOURCE["loyalty"]:
        land(settings, table, DAY2, DAY3)
    report = {row["table"]: row for row in landing_report(settings, DAY3)}
    assert (report["loyalty/members"]["read"], report["loyalty/members"]["quarantined"]) == (4, 1)
    assert report["loyalty/transactions"]["quarantined"] == 4  # T5, and T6-T8's watermarks
    print_report({"landings": list(report.values()), "timings": {}})
    out = capsys.readouterr().out
    assert "watermark in the future: 1" in out
    assert "unparseable watermark: 3" in out


# --- Text watermarks SQLite sorts away from their time -----------------------------------------

# recorded_at text that SQLite, comparing text before anything is parsed, sorts far from the
# time it names (or among dates, when it names none). Each was found by no day's read.
SORTED_AWAY = [
    # Parses as June 2, but sorts after every 2026-MM-DD value: landed by June 2.
    ("T6", "M1", "2026-05-20 10:00:00", "6.00", "2026/6/2 10:00", "store", 6),
    ("T7", "M1", "2026-05-20 11:00:00", "7.00", "2026-6-2 11:00", "store", 7),
    # No time at all, sorting among the dates (epoch seconds of 2030, a 30th of February), before
    # them or after them: quarantined by the day they occurred.
    ("T8", "M2", "2026-06-02 12:00:00", "8.00", "1900000000", "store", 8),
    ("T9", "M2", "2026-06-02 13:00:00", "9.00", "2026-02-30 10:00", "store", 9),
    ("T10", "M2", "2026-06-02 14:00:00", "10.00", "15-06-2026", "store", 10),
    ("T11", "M2", "2026-06-02 15:00:00", "11.00", "June 15 2026", "store", 11),
    # Its date is readable, its time is not: quarantined by the day of that date, which alone
    # reads it, not by the day it occurred.
    ("T12", "M2", "2026-05-20 16:00:00", "12.00", "2026-06-02 4pm", "store", 12),
]


def test_a_text_recorded_at_sqlite_sorts_away_from_its_time_is_placed_by_it(tmp_path):
    settings = _settings(
        tmp_path,
        write_loyalty(tmp_path / "loyalty.db", transactions=TRANSACTIONS + SORTED_AWAY),
        CX_BAD_ROW_THRESHOLD="0.9",
    )
    first = land(settings, contract.TRANSACTIONS, DAY1, DAY2)
    # The first load reads every row: those dated June 2 are in its future, the others bad.
    before = _quarantined(settings, contract.TRANSACTIONS, Interval(BEGINNING, DAY2))
    assert {"T6", "T7", "T8", "T9", "T10", "T11", "T12"} <= set(before)
    day = land(settings, contract.TRANSACTIONS, DAY2, DAY3)
    assert _landed(settings, contract.TRANSACTIONS, Interval(DAY2, DAY3)) == [
        "T3",
        "T4",
        "T6",
        "T7",
    ]
    assert _quarantined(settings, contract.TRANSACTIONS, Interval(DAY2, DAY3)) == {
        "T5": "amount is not a valid decimal: twelve",
        "T8": "unparseable watermark: recorded_at 1900000000",
        "T9": "unparseable watermark: recorded_at 2026-02-30 10:00",
        "T10": "unparseable watermark: recorded_at 15-06-2026",
        "T11": "unparseable watermark: recorded_at June 15 2026",
        "T12": "unparseable watermark: recorded_at 2026-06-02 4pm",
    }
    assert _adds_up(first) and _adds_up(day)
    # May 20, the day T6, T7 and T12 occurred, leaves them to the days their recorded_at names.
    may_20 = Interval(datetime(2026, 5, 20, tzinfo=UTC), datetime(2026, 5, 21, tzinfo=UTC))
    manifest = land(settings, contract.TRANSACTIONS, may_20.start, may_20.end)
    assert manifest["rows_landed"] == 0 and _adds_up(manifest)
    assert not {"T6", "T7", "T12"} & set(_quarantined(settings, contract.TRANSACTIONS, may_20))


def test_a_text_updated_at_sqlite_sorts_away_from_its_time_is_placed_by_it(tmp_path):
    members = MEMBERS + [
        ("M4", "2025-01-05 10:00:00", "2026/6/2 10:00", None, None, "gold", 1, None),
        ("M5", "2026-06-02 09:00:00", "1900000000", None, None, "gold", 1, None),
        ("M6", "2026-06-02 09:30:00", "June 2 2026", None, None, "gold", 1, None),
    ]
    settings = _settings(
        tmp_path,
        write_loyalty(tmp_path / "loyalty.db", members=members),
        CX_BAD_ROW_THRESHOLD="1.0",
    )
    first = land(settings, contract.MEMBERS, DAY1, DAY2)
    assert {"M4", "M5", "M6"} <= set(
        _quarantined(settings, contract.MEMBERS, Interval(BEGINNING, DAY2))
    )
    day = land(settings, contract.MEMBERS, DAY2, DAY3)
    assert _landed(settings, contract.MEMBERS, Interval(DAY2, DAY3)) == ["M4"]
    assert _quarantined(settings, contract.MEMBERS, Interval(DAY2, DAY3)) == {
        "M5": "unparseable watermark: updated_at 1900000000",
        "M6": "unparseable watermark: updated_at June 2 2026",
    }
    assert _adds_up(first) and _adds_up(day)
