"""Export files as a user's real exports arrive (issue 23): folders not named as a date, a byte
that is not UTF-8, a byte-order mark, another delimiter, mixed line breaks, empty lines. Every
row of every file is accounted for in the manifest, and what is passed over is listed."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pytest
from fixture_sources import CALL_HEADER, DAY2, DAY3, survey_line

from ingestion import contract
from ingestion.errors import ContractError, IngestionError
from ingestion.land import BAD, GOOD, extract

BOM = b"\xef\xbb\xbf"


def _call(call_id: str, notes: str = "fine", queue: str = "30", delimiter: str = ",") -> str:
    values = [call_id, "2026-06-02T08:00:00Z", "M1", "", "phone", queue, "300", "billing"]
    return delimiter.join([*values, "yes", "no", "0", "A1", notes])


def _staged(landing, name: str) -> list[dict]:
    """The staged rows of June 2's files (a first load reads June 1's too)."""
    path = landing.staging / name
    if not path.exists():
        return []
    with duckdb.connect() as con:
        cursor = con.execute(
            f"select * from read_parquet('{path}') where _source_file like '%/2026-06-02/%' "
            "order by _source_file, _source_row"
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _file(manifest: dict, name: str) -> dict:
    return next(f for f in manifest["source_files"] if f["path"].endswith("/" + name))


def _day(root: str) -> Path:
    day = Path(root) / "2026-06-02"
    day.mkdir(exist_ok=True)
    return day


# --- Folders not named as a date -----------------------------------------------------------------


def test_folders_not_named_as_a_date_are_listed_as_ignored_and_logged(sources, caplog):
    root = Path(sources.survey_root)
    for name in ("latest", "2026-13-40", "20260602"):
        (root / name).mkdir()
        (root / name / "export.jsonl").write_text(survey_line("R99", "2026-06-02T08:00:00Z") + "\n")
    (root / "2026-06-02" / "readme.txt").write_text("not an export")
    with caplog.at_level(logging.WARNING, logger="ingestion.readers"):
        manifest = extract(sources, contract.SURVEY_RESPONSES, DAY2, DAY3).manifest
    ignored = {
        Path(i["path"]).relative_to(root).as_posix(): i["reason"] for i in manifest["ignored"]
    }
    assert ignored == {
        "latest": "a folder not named as an export date (YYYY-MM-DD)",
        "2026-13-40": "a folder not named as an export date (YYYY-MM-DD)",
        "20260602": "a folder not named as an export date (YYYY-MM-DD)",
        "2026-06-02/readme.txt": "not a .jsonl file",
    }
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in ("latest", "2026-13-40", "20260602", "readme.txt"):
        assert any(name in message and "ignoring" in message for message in warned), name
    assert not any(f["path"].endswith("R99") for f in manifest["source_files"])


# --- A byte that is not UTF-8 --------------------------------------------------------------------


def test_a_byte_that_is_not_utf8_quarantines_its_survey_line_only(sources):
    day = _day(sources.survey_root)
    # One Latin-1 byte in a comment.
    latin = (
        survey_line("R8", "2026-06-02T09:00:00Z", comment="caf?").encode().replace(b"?", b"\xe9")
    )
    (day / "latin.jsonl").write_bytes(
        b"\n".join(
            [
                survey_line("R7", "2026-06-02T08:00:00Z").encode(),
                latin,
                survey_line("R9", "2026-06-02T10:00:00Z").encode(),
            ]
        )
        + b"\n"
    )
    landing = extract(sources, contract.SURVEY_RESPONSES, DAY2, DAY3)
    landed = {r["response_id"] for r in _staged(landing, GOOD)}
    assert {"R7", "R9", "R6"} <= landed  # the file's other lines and the day's other file
    bad = [r for r in _staged(landing, BAD) if r["_source_file"].endswith("latin.jsonl")]
    assert [(r["_source_row"], r["_reject_reason"]) for r in bad] == [
        (2, f"invalid UTF-8: byte 0xe9 on line 2, column {latin.index(0xE9) + 1}")
    ]
    assert bad[0]["_line"].endswith('"comment": "caf\\xe9"}')  # the byte, escaped
    counts = _file(landing.manifest, "latin.jsonl")
    assert (counts["rows_read"], counts["rows_landed"], counts["rows_quarantined"]) == (3, 2, 1)


@pytest.mark.parametrize("padding", [0, 20_000], ids=["in-the-first-8KB", "later"])
def test_a_byte_that_is_not_utf8_quarantines_its_call_row_wherever_it_sits(sources, padding):
    day = _day(sources.calls_root)
    filler = [_call(f"P{n}") for n in range(padding // 60)]
    rows = [*filler, _call("C20", notes="caf?"), _call("C21")]
    data = "\n".join([CALL_HEADER, *rows]).encode() + b"\n"
    (day / "latin.csv").write_bytes(data.replace(b"caf?", b"caf\xe9"))
    landing = extract(sources, contract.CALLS, DAY2, DAY3)
    bad = _staged(landing, BAD)
    line = len(filler) + 2  # the header is line 1
    assert [(r["_source_row"], r["_reject_reason"]) for r in bad] == [
        (line - 1, f"invalid UTF-8: on line {line}")
    ]
    assert bad[0]["_source_file"].endswith("2026-06-02/latin.csv")
    landed = {r["call_id"]: r["_source_row"] for r in _staged(landing, GOOD)}
    assert landed["C21"] == line  # numbered past the rejected row
    assert len(landed) == len(filler) + 1


def test_a_header_that_is_not_utf8_fails_naming_the_file_and_the_byte(sources):
    day = _day(sources.calls_root)
    (day / "calls.csv").write_bytes(b"call_id,st\xe4rted_at\n" + _call("C1").encode() + b"\n")
    with pytest.raises(ContractError, match=r"2026-06-02/calls\.csv is not UTF-8: byte 0xe4"):
        extract(sources, contract.CALLS, DAY2, DAY3)


def test_a_byte_that_is_not_utf8_in_an_unknown_columns_name_does_not_stop_the_file(sources):
    day = _day(sources.calls_root)
    (day / "calls.csv").write_bytes(
        (CALL_HEADER + ",caf?").encode().replace(b"?", b"\xe9")
        + b"\n"
        + (_call("C1") + ",x").encode()
        + b"\n"
    )
    landing = extract(sources, contract.CALLS, DAY2, DAY3)
    assert [r["call_id"] for r in _staged(landing, GOOD)] == ["C1"]
    assert landing.manifest["extra_columns"] == ["caf\ufffd"]


# --- A byte-order mark ---------------------------------------------------------------------------


def test_a_byte_order_mark_is_stripped_from_a_survey_export(sources):
    day = _day(sources.survey_root)
    (day / "bom.jsonl").write_bytes(BOM + survey_line("R7", "2026-06-02T08:00:00Z").encode())
    landing = extract(sources, contract.SURVEY_RESPONSES, DAY2, DAY3)
    assert "R7" in {r["response_id"] for r in _staged(landing, GOOD)}
    assert _file(landing.manifest, "bom.jsonl")["rows_landed"] == 1


def test_a_byte_order_mark_is_stripped_from_a_call_export(sources):
    day = _day(sources.calls_root)
    (day / "bom.csv").write_bytes(BOM + f"{CALL_HEADER}\r\n{_call('C7')}\r\n".encode())
    landing = extract(sources, contract.CALLS, DAY2, DAY3)
    assert [(r["call_id"], r["_source_row"]) for r in _staged(landing, GOOD)] == [("C7", 1)]


# --- Delimiters ----------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", "\t", "|"], ids=["semicolon", "tab", "pipe"])
def test_the_delimiter_is_read_from_the_header(sources, delimiter):
    day = _day(sources.calls_root)
    header = CALL_HEADER.replace(",", delimiter)
    notes = "late, again"  # a comma inside a field is only text here
    (day / "calls.csv").write_text(
        f"{header}\n{_call('C7', notes=notes, delimiter=delimiter)}\n{_call('C8', delimiter=delimiter)}\n"
    )
    landing = extract(sources, contract.CALLS, DAY2, DAY3)
    landed = {r["call_id"]: r for r in _staged(landing, GOOD)}
    assert set(landed) == {"C7", "C8"}
    assert (landed["C7"]["notes"], landed["C7"]["queue_seconds"]) == (notes, 30)


def test_a_delimiter_that_is_not_supported_fails_naming_the_file_and_the_delimiter(sources):
    day = _day(sources.calls_root)
    (day / "calls.csv").write_text(
        f"{CALL_HEADER.replace(',', ':')}\n{_call('C7', delimiter=':')}\n"
    )
    with pytest.raises(ContractError, match=r"2026-06-02/calls\.csv.*delimited by ':'"):
        extract(sources, contract.CALLS, DAY2, DAY3)


def test_a_header_missing_a_column_names_the_delimiter_it_was_read_with(sources):
    day = _day(sources.calls_root)
    (day / "calls.csv").write_text("call_id;member_id;notes\nC7;M1;x\n")
    with pytest.raises(
        ContractError,
        match=r"calls\.csv: required column\(s\) \['started_at'\] missing .* delimited by ';'",
    ):
        extract(sources, contract.CALLS, DAY2, DAY3)


def test_a_column_repeated_in_the_header_fails_naming_the_file_and_the_column(sources):
    day = _day(sources.calls_root)
    (day / "calls.csv").write_text("call_id,started_at,notes,Notes\nC7,2026-06-02,a,b\n")
    with pytest.raises(
        ContractError, match=r"calls\.csv: column\(s\) \['Notes', 'notes'\] repeated"
    ):
        extract(sources, contract.CALLS, DAY2, DAY3)


# --- Line breaks, empty lines and row numbers ----------------------------------------------------


def test_call_rows_keep_their_row_numbers_past_empty_and_rejected_lines(sources):
    day = _day(sources.calls_root)
    lines = [
        CALL_HEADER,
        _call("C1"),  # row 1
        "",  # row 2: empty, skipped
        "C2,2026-06-02",  # row 3: cut off
        _call("C3", queue="many"),  # row 4: a bad value
        "",  # row 5
        "",  # row 6
        _call("C4"),  # row 7
    ]
    (day / "calls.csv").write_text("\n".join(lines) + "\n")
    landing = extract(sources, contract.CALLS, DAY2, DAY3)
    assert [(r["call_id"], r["_source_row"]) for r in _staged(landing, GOOD)] == [
        ("C1", 1),
        ("C4", 7),
    ]
    assert [(r["_source_row"], r["_reject_reason"]) for r in _staged(landing, BAD)] == [
        (3, "unparseable line"),
        (4, "queue_seconds is not a valid integer: many"),
    ]
    counts = _file(landing.manifest, "calls.csv")
    assert (counts["rows_read"], counts["rows_landed"], counts["rows_quarantined"]) == (4, 2, 2)


def test_a_call_export_mixing_line_breaks_is_read_whole(sources, caplog):
    day = _day(sources.calls_root)
    (day / "calls.csv").write_bytes(
        f"{CALL_HEADER}\r\n{_call('C1')}\n{_call('C2')}\r\n{_call('C3')}\n".encode()
    )
    with caplog.at_level(logging.WARNING, logger="ingestion.readers"):
        landing = extract(sources, contract.CALLS, DAY2, DAY3)
    assert [(r["call_id"], r["_source_row"]) for r in _staged(landing, GOOD)] == [
        ("C1", 1),
        ("C2", 2),
        ("C3", 3),
    ]
    assert landing.manifest["source_files"][-1]["path"].endswith("2026-06-02/calls.csv")
    assert any("mixes line breaks" in r.getMessage() for r in caplog.records)


def test_an_empty_first_line_before_rows_fails_naming_the_file(sources):
    day = _day(sources.calls_root)
    (day / "calls.csv").write_text(f"\n{CALL_HEADER}\n{_call('C1')}\n")
    with pytest.raises(ContractError, match=r"2026-06-02/calls\.csv: the first line is empty"):
        extract(sources, contract.CALLS, DAY2, DAY3)


# --- Accounting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table", [contract.SURVEY_RESPONSES, contract.CALLS], ids=["surveys", "calls"]
)
def test_every_row_of_every_file_is_accounted_for_including_an_erased_members(
    sources, table, monkeypatch
):
    from privacy.suppression import record

    monkeypatch.setenv("CX_HASH_KEY", "k" * 32)
    from config import load_settings

    settings = load_settings(
        {
            "CX_DATA_DIR": str(sources.data_dir),
            "CX_LOYALTY_URL": sources.loyalty_url,
            "CX_SURVEY_ROOT": sources.survey_root,
            "CX_CALLS_ROOT": sources.calls_root,
            "CX_BAD_ROW_THRESHOLD": "0.9",
            "CX_HASH_KEY": "k" * 32,
        }
    )
    record(settings, {"member": ["M1"]}, members=1)
    manifest = extract(settings, table, DAY2 - (DAY3 - DAY2), DAY3).manifest
    assert manifest["rows_suppressed"] > 0
    for fact in manifest["source_files"]:
        read = fact["rows_read"]
        assert read > 0
        assert read == (
            fact["rows_landed"]
            + fact["rows_quarantined"]
            + fact["rows_outside_interval"]
            + fact["rows_suppressed"]
        ), fact["path"]
    for key in ("rows_read", "rows_landed", "rows_quarantined", "rows_suppressed"):
        assert manifest[key] == sum(f[key] for f in manifest["source_files"]), key
    assert manifest["rows_read"] == (
        manifest["rows_landed"]
        + manifest["rows_quarantined"]
        + manifest["rows_outside_interval"]
        + manifest["rows_suppressed"]
    )


def test_a_row_lost_between_reading_and_writing_stops_the_landing_naming_the_file(
    sources, monkeypatch
):
    import ingestion.land

    split = ingestion.land.split_rows

    def losing_one_row(con, table, *args, **kwargs):
        good, bad = split(con, table, *args, **kwargs)
        con.execute(f"delete from {good} where _source_row = 1")
        return good, bad

    monkeypatch.setattr(ingestion.land, "split_rows", losing_one_row)
    with pytest.raises(
        IngestionError, match=r"2026-06-01/export-a-copy\.jsonl: 5 rows read, but 4 landed"
    ):
        extract(sources, contract.SURVEY_RESPONSES, DAY2, DAY3)
