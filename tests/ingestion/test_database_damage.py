"""A damaged loyalty database, generated (Hypothesis): watermarks that are epoch seconds, US
dates, words, numbers or far in the future, amounts and dates that are text, required values
missing, keys twice with equal and with conflicting values, members enrolled after the run.

Landed as a first load (the history before June 2) and then as the day of June 2, every row is
accounted for: each manifest adds up (read = landed + quarantined + outside the interval +
suppressed), its counts are the rows of the staged and published files, and every row generated
is landed or quarantined exactly once by the load its watermark places it in (a row no watermark
places by every load that reads it), or counted outside a day that read it. A landing that fails
does so with an ``IngestionError`` naming the table. Bounded and derandomized, as the export
files' test (test_export_damage.py).
"""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import datetime
from pathlib import Path

import duckdb
from fixture_sources import DAY1, DAY2, DAY3
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from config import load_settings
from ingestion import contract
from ingestion.errors import IngestionError
from ingestion.lake import BEGINNING, Lake
from ingestion.land import BAD, GOOD, extract, publish, validate

BOUNDED = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Each row carries a tag in a column the contract does not know (kept in ``_extra_fields``),
# so that rows equal in every contract column are told apart.
TAG = "row_tag"
DAY4 = datetime(2026, 6, 4, tzinfo=DAY1.tzinfo)

# Watermark values, and the instant each places a row at (None: not a date).
DATES = {
    "2026-05-31 09:00:00": datetime(2026, 5, 31, 9, tzinfo=DAY1.tzinfo),
    "2026-06-01 23:59:00": datetime(2026, 6, 1, 23, 59, tzinfo=DAY1.tzinfo),
    "2026-06-02 10:00:00": datetime(2026, 6, 2, 10, tzinfo=DAY1.tzinfo),
    "2026-06-02T08:00:00Z": datetime(2026, 6, 2, 8, tzinfo=DAY1.tzinfo),
    "2026-06-03 09:00:00": datetime(2026, 6, 3, 9, tzinfo=DAY1.tzinfo),
    "2999-01-01 00:00:00": datetime(2999, 1, 1, tzinfo=DAY1.tzinfo),
    # Text SQLite sorts away from its time: after every 2026-MM-DD value.
    "2026/6/2 10:00": datetime(2026, 6, 2, 10, tzinfo=DAY1.tzinfo),
    "2026-6-1 23:00": datetime(2026, 6, 1, 23, tzinfo=DAY1.tzinfo),
}
# Text that begins with a date but does not parse, and the date it places a row on.
DATED_TEXT = {
    "2026-06-02 4pm": datetime(2026, 6, 2, tzinfo=DAY1.tzinfo),
    "2026-05-31 noon": datetime(2026, 5, 31, tzinfo=DAY1.tzinfo),
}
# Among them, epoch seconds of 2030 and a 30th of February, which sort among the dates.
NOT_DATES = [
    "1780394400",
    1780401600,
    "06/15/2026 10:00",
    "garbage",
    "",
    None,
    "1900000000",
    "2026-02-30 10:00",
    "15-06-2026",
    "June 2 2026",
]
watermark = st.sampled_from([*DATES, *DATES, *DATED_TEXT, *NOT_DATES])

MEMBER_COLUMNS = (
    "member_id",
    "enrolled_at",
    "updated_at",
    "email",
    "tier",
    "marketing_opt_in",
    "birth_date",
    "closed_at",
)
TRANSACTION_COLUMNS = (
    "transaction_id",
    "member_id",
    "occurred_at",
    "amount",
    "recorded_at",
    "channel",
    "points_earned",
)

members_row = st.tuples(
    st.sampled_from(["M1", "M2", "M3", "M4", None, ""]),
    watermark,  # enrolled_at: after the first load's end, or the day's, for some
    watermark,  # updated_at
    st.sampled_from(["a@example.com", None]),
    st.sampled_from(["gold", "silver", "bronze", None]),
    st.sampled_from([1, 0, None, "yes", "maybe"]),
    st.sampled_from(["1980-02-29", "1981-02-29", "not a date", 19800229, None]),
    st.sampled_from(["2026-06-10 00:00:00", "soon", None]),
)
transactions_row = st.tuples(
    st.sampled_from(["T1", "T2", "T3", "T4", None]),
    st.sampled_from(["M1", "M2", None]),
    watermark,  # occurred_at
    st.sampled_from(["12.00", 7, -3.5, "twelve", "1e3", None]),
    watermark,  # recorded_at
    st.sampled_from(["store", "app", "online", None]),
    st.sampled_from([0, 5, -1, "five", None]),
)


# A clean row from before June 2, so that a first load has a row to land (the boundary suite
# fails a first load that lands none, and the day's landing would then not be tested).
CLEAN_MEMBER = ("M0", "2025-01-05 10:00:00", "2026-05-31 09:00:00", None, "gold", 1, None, None)
CLEAN_TRANSACTION = ("T0", "M0", "2026-05-31 09:00:00", "1.00", None, "store", 1)


@st.composite
def rows(draw, row, clean: tuple) -> list[tuple]:
    """Rows, some delivered twice with every value equal (and keys repeated with other values
    by the small pool they are drawn from)."""
    drawn = [clean, *draw(st.lists(row, max_size=8))]
    for _ in range(draw(st.integers(0, 2))):
        drawn.append(draw(st.sampled_from(drawn)))
    return drawn


def _write(
    path: Path, name: str, columns: tuple[str, ...], values: list[tuple], indexed: bool
) -> list[str]:
    """The table without a primary key nor declared types (SQLite keeps each value as given),
    each row tagged, its first watermark ``indexed`` or not (a day's read walks the index, or
    tests every row); returns the tags."""
    tags = [f"{name}-{number}" for number in range(len(values))]
    with sqlite3.connect(path) as con:
        con.execute(f"create table {name} ({', '.join(columns)}, {TAG})")
        marks = ", ".join("?" * (len(columns) + 1))
        con.executemany(
            f"insert into {name} values ({marks})",
            [(*row, tag) for row, tag in zip(values, tags, strict=True)],
        )
        if indexed:
            first = PLACED_BY[contract.table("loyalty", name)][0]
            con.execute(f"create index ix_{name}_{first} on {name} ({first})")
    con.close()
    return tags


# The columns that place a row, in order: the first that holds a date does.
PLACED_BY = {
    contract.MEMBERS: ("updated_at", "enrolled_at"),
    contract.TRANSACTIONS: ("recorded_at", "occurred_at"),
}


def _placed_at(row: dict, table: contract.Table) -> datetime | None:
    """The instant the row's first watermark column that holds a date (or begins with one)
    places it at."""
    for column in PLACED_BY[table]:
        value = row.get(column)
        if isinstance(value, str) and value in DATES:
            return DATES[value]
        if isinstance(value, str) and value in DATED_TEXT:
            return DATED_TEXT[value]
    return None


# The text window of the day's read (the day, and a day on each side), and the text that does
# not begin with a date, which may name any time and which every read fetches.
WIDE = ("2026-06-01 00:00:00", "2026-06-04 00:00:00")
STRAYS = {"2026/6/2 10:00", "2026-6-1 23:00"} | {
    value for value in NOT_DATES if isinstance(value, str) and value
}


def _fetched_by_the_day(row: dict, table: contract.Table) -> bool:
    """Whether the day's read fetches the row: text that begins with a date by its window, a
    stray by every read; a null, a number or '' leaves the row to the next column, and a row no
    column places is fetched."""
    for column in PLACED_BY[table]:
        value = row.get(column)
        if not isinstance(value, str) or value == "":
            continue
        return value in STRAYS or WIDE[0] <= value < WIDE[1]
    return True


def _tags(path: Path) -> list[str]:
    if not path.exists():
        return []
    with duckdb.connect() as con:
        found = con.execute(
            f"select json_extract_string(_extra_fields, '$.{TAG}') from read_parquet('{path}')"
        ).fetchall()
    return [tag for (tag,) in found]


def _adds_up(manifest: dict) -> None:
    assert manifest["rows_read"] == (
        manifest["rows_landed"]
        + manifest["rows_quarantined"]
        + manifest["rows_outside_interval"]
        + manifest["rows_suppressed"]
    ), manifest


def _land(settings, table, start, end, full_history) -> tuple[dict, list[str], list[str]] | None:
    """Land ``table``; check the staged, then the published, files against the manifest. Returns
    the manifest and the tags landed and quarantined, or None when the landing failed."""
    try:
        landing = extract(settings, table, start, end, full_history)
    except IngestionError as error:
        assert table.qualified_name in str(error), str(error)
        event(f"failed: {type(error).__name__}")
        return None
    manifest = landing.manifest
    _adds_up(manifest)
    assert manifest["rows_suppressed"] == 0
    landed, quarantined = _tags(landing.staging / GOOD), _tags(landing.staging / BAD)
    assert (manifest["rows_landed"], manifest["rows_quarantined"]) == (
        len(landed),
        len(quarantined),
    )
    assert manifest["source_files"][0]["rows"] == manifest["rows_read"]
    try:
        validate(landing)
        published = publish(settings, landing)
    except IngestionError as error:
        assert table.qualified_name in str(error), str(error)
        event(f"not published: {type(error).__name__}")
        return None
    lake = Lake(settings.lake_dir)
    assert _tags(lake.raw_path(table, landing.interval)) == landed
    assert _tags(lake.quarantine_path(table, landing.interval)) == quarantined
    for key in ("rows_read", "rows_landed", "rows_quarantined", "rows_outside_interval"):
        assert published[key] == manifest[key], key
    return published, landed, quarantined


def _check(settings, table, generated: dict[str, dict]) -> None:
    """The first load to June 2, then June 2: every generated row accounted for by each."""
    first = _land(settings, table, DAY1, DAY2, full_history=True)
    if first is None:
        return
    manifest, landed, quarantined = first
    assert manifest["interval_start"] == BEGINNING.isoformat()
    # A full load reads every row, and lands or quarantines each exactly once; a row dated
    # after its end, or that no watermark places, is quarantined.
    assert manifest["rows_outside_interval"] == 0
    assert sorted(landed + quarantined) == sorted(generated)
    for tag, row in generated.items():
        at = _placed_at(row, table)
        if at is None or at >= DAY2:
            assert tag in quarantined, (tag, row)

    day = _land(settings, table, DAY2, DAY3, full_history=False)
    if day is None:
        return
    manifest, landed, quarantined = day
    assert manifest["interval_start"] == DAY2.isoformat()
    assert len(set(landed + quarantined)) == len(landed) + len(quarantined)
    # The read is a day wider on each side, and fetches every row whose text watermark does
    # not begin with a date: those are counted outside the day, and left to their own day.
    outside = 0
    for tag, row in generated.items():
        at = _placed_at(row, table)
        if at is None:
            assert tag in quarantined, (tag, row)
        elif DAY2 <= at < DAY3:
            assert tag in landed or tag in quarantined, (tag, row)
            if row[PLACED_BY[table][0]] in DATED_TEXT:
                assert tag in quarantined, (tag, row)
        else:
            assert tag not in landed and tag not in quarantined, (tag, row)
            outside += _fetched_by_the_day(row, table)
    assert manifest["rows_outside_interval"] == outside
    event("a day with rows outside it" if outside else "a day with no row outside it")


@BOUNDED
@given(
    members=rows(members_row, CLEAN_MEMBER),
    transactions=rows(transactions_row, CLEAN_TRANSACTION),
    indexed=st.booleans(),
)
def test_every_row_of_a_damaged_loyalty_database_is_accounted_for(members, transactions, indexed):
    event("watermark indexed" if indexed else "watermark not indexed")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "loyalty.db"
        member_tags = _write(path, "members", MEMBER_COLUMNS, members, indexed)
        transaction_tags = _write(path, "transactions", TRANSACTION_COLUMNS, transactions, indexed)
        settings = load_settings(
            {
                "CX_DATA_DIR": str(Path(folder) / "data"),
                "CX_LOYALTY_URL": f"sqlite:///{path}",
                "CX_BAD_ROW_THRESHOLD": "1.0",
            }
        )
        for table, columns, values, tags in (
            (contract.MEMBERS, MEMBER_COLUMNS, members, member_tags),
            (contract.TRANSACTIONS, TRANSACTION_COLUMNS, transactions, transaction_tags),
        ):
            generated = {
                tag: dict(zip(columns, row, strict=True))
                for tag, row in zip(tags, values, strict=True)
            }
            _check(settings, table, generated)
