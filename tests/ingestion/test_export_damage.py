"""Damaged export deliveries, generated (Hypothesis): bytes that are not UTF-8, cut-off lines,
byte-order marks, values of the wrong type, duplicate rows and files, empty lines, CRLF, stray
quotes and carriage returns, semicolons, other delimiters, folders not named as a date.

Whatever arrives, a landing either stages every file with each of its rows accounted for (read =
landed + quarantined + outside the interval + suppressed, the landed and quarantined rows being
those in the staged files), or fails with an ``IngestionError`` naming a file. Bounded and
derandomized, so that CI sees the same examples every run.
"""

from __future__ import annotations

import json
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import duckdb
from fixture_sources import CALL_HEADER, DAY2, DAY3
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from config import load_settings
from ingestion import contract
from ingestion.errors import IngestionError
from ingestion.land import BAD, GOOD, extract

BOUNDED = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BOM = b"\xef\xbb\xbf"
# A first load of June 2 reads every dated folder up to June 2.
DATED = ("2026-06-01", "2026-06-02")
ODD = ("latest", "2026-13-40", "2026-6-2", "20260602", "_tmp")
CALL_COLUMNS = CALL_HEADER.split(",")


# --- What a file may hold ------------------------------------------------------------------------

survey_values = st.fixed_dictionaries(
    {
        "response_id": st.sampled_from(["R1", "R2", "R3", 7, None, ""]),
        "submitted_at": st.sampled_from(
            ["2026-06-02T08:00:00Z", "2026-06-02 09:00:00+02:00", "yesterday", None, 1780000000]
        ),
    },
    optional={
        "member_id": st.sampled_from(["M1", "M2", None]),
        "nps": st.sampled_from([0, 9, 10, 11, -1, "9", "nine", 7.5, None]),
        "csat": st.sampled_from([1, 5, 6, "4.0"]),
        "emotions": st.sampled_from([{"valued": 5}, {"helped": "x"}, "valued", [1, 2]]),
        "comment": st.sampled_from(["fine", "caf\u00e9 ok", "", "\u00a0", "line\nbreak"]),
        "extra_field": st.sampled_from(["kept", 1]),
    },
)

call_value = st.sampled_from(["", "x", "42", "-3", "abc", "yes", "no", "1.5", "maybe", "M1"])


@st.composite
def call_values(draw) -> dict[str, str]:
    row = {name: draw(call_value) for name in CALL_COLUMNS}
    row["call_id"] = draw(st.sampled_from(["C1", "C2", "C3", ""]))
    row["started_at"] = draw(
        st.sampled_from(["2026-06-02T08:00:00Z", "2026-06-02 09:00:00", "soon", ""])
    )
    return row


@st.composite
def damaged(draw, line: bytes) -> list[bytes]:
    """A line as delivered: intact, or damaged in one way (possibly into none or two lines)."""
    damage = draw(
        st.sampled_from(
            ["none", "none", "none", "bytes", "cut", "twice", "empty", "spaces", "semicolon"]
            + ["quote", "cr", "lf"]
        )
    )
    at = draw(st.integers(0, len(line)))
    if damage == "bytes":  # a byte that is not UTF-8 (or a NUL) somewhere in the line
        junk = bytes(
            draw(st.lists(st.sampled_from([0x00, 0x80, 0xC3, 0xE9, 0xFF]), min_size=1, max_size=3))
        )
        return [line[:at] + junk + line[at:]]
    if damage == "cut":
        return [line[:at]]
    if damage == "twice":
        return [line, line]
    if damage == "empty":
        return [b"", line]
    if damage == "spaces":
        return [b"   ", line]
    if damage == "semicolon":
        return [line.replace(b",", b";", 1)]
    insert = {"quote": b'"', "cr": b"\r", "lf": b"\n", "none": b""}[damage]
    return [line[:at] + insert + line[at:]]


@dataclass
class Delivered:
    folder: str
    name: str
    data: bytes

    @property
    def dated(self) -> bool:
        return self.folder in DATED


@st.composite
def file_bytes(draw, lines: list[bytes], header: bytes | None = None) -> bytes:
    """Lines joined as an export writer might: LF or CRLF, a BOM, a missing last line break, a
    cut-off end."""
    body = [damaged_line for line in lines for damaged_line in draw(damaged(line))]
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = newline.join(([header] if header is not None else []) + body)
    if body and draw(st.booleans()):
        data += newline
    kept = len(header or b"") + 1  # a cut-off end, after the header
    if len(data) > kept and draw(st.integers(0, 4)) == 0:
        data = data[: draw(st.integers(kept, len(data) - 1))]
    if draw(st.integers(0, 4)) == 0:
        data = BOM + data
    return data


@st.composite
def surveys(draw) -> list[Delivered]:
    files = []
    for number in range(draw(st.integers(1, 4))):
        values = draw(st.lists(survey_values, max_size=6))
        lines = [json.dumps(v).encode() for v in values]
        if draw(st.integers(0, 5)) == 0:
            lines.append(b"[1, 2, 3]")  # JSON, not an object
        files.append(draw(_placed(f"part-{number}.jsonl", draw(file_bytes(lines)))))
    return _maybe_twice(draw, files)


@st.composite
def calls(draw) -> list[Delivered]:
    files = []
    for number in range(draw(st.integers(1, 4))):
        delimiter = draw(st.sampled_from([",", ",", ";", "\t", "|"]))
        columns = draw(st.permutations(CALL_COLUMNS))
        if draw(st.integers(0, 9)) == 0:
            columns = columns[:-1]  # an optional column (or, rarely, a required one) not sent
        if draw(st.booleans()):
            columns = [*columns, "sentiment"]
        rows = draw(st.lists(call_values(), max_size=6))
        lines = [delimiter.join(row.get(c, "0.5") for c in columns).encode("utf-8") for row in rows]
        header = delimiter.join(columns).encode()
        files.append(draw(_placed(f"calls-{number}.csv", draw(file_bytes(lines, header)))))
    return _maybe_twice(draw, files)


@st.composite
def _placed(draw, name: str, data: bytes) -> Delivered:
    folder = draw(st.sampled_from(DATED + DATED + ODD))
    return Delivered(folder, name, data)


def _maybe_twice(draw, files: list[Delivered]) -> list[Delivered]:
    """The same file delivered again, in another folder or under another name."""
    if draw(st.booleans()):
        again = draw(st.sampled_from(files))
        files.append(Delivered(draw(st.sampled_from(DATED)), "again-" + again.name, again.data))
    return files


# --- What the manifest must say ------------------------------------------------------------------


def _blank(line: bytes) -> bool:
    """Empty or spaces only, as DuckDB's ``trim`` sees it (every Unicode space separator)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(unicodedata.category(c) == "Zs" for c in text)


def _survey_rows(data: bytes) -> int:
    """The rows of a survey export: its lines split on LF, carriage returns and BOMs dropped."""
    while data.startswith(BOM):
        data = data[len(BOM) :]
    return sum(not _blank(line) for line in data.replace(b"\r", b"").split(b"\n"))


def _call_rows(data: bytes) -> int | None:
    """The rows of a call export under its header: every line that is not empty. None when the
    file holds a quote or a lone carriage return, which join or split lines (then only the
    manifest's own sums can be checked)."""
    lines = data.removeprefix(BOM).replace(b"\r\n", b"\n")
    if b'"' in lines or b"\r" in lines:
        return None
    return sum(line != b"" for line in lines.split(b"\n")[1:])


def _staged_rows(landing, name: str) -> dict[str, int]:
    path = landing.staging / name
    if not path.exists():
        return {}
    with duckdb.connect() as con:
        return dict(
            con.execute(
                f"select _source_file, count(*) from read_parquet('{path}') group by all"
            ).fetchall()
        )


def _land(table, delivered: list[Delivered], expected_rows) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / table.source
        root.mkdir()
        paths = {}
        for item in delivered:
            path = root / item.folder / item.name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(item.data)
            paths[str(path)] = item
        settings = load_settings(
            {
                "CX_DATA_DIR": str(Path(folder) / "data"),
                "CX_SURVEY_ROOT": str(root),
                "CX_CALLS_ROOT": str(root),
                "CX_BAD_ROW_THRESHOLD": "1.0",
            }
        )
        try:
            landing = extract(settings, table, DAY2, DAY3)
        except IngestionError as error:
            # A file that breaks the contract as a whole (no required column in its header,
            # say) stops the landing, with a message that names it.
            assert any(path in str(error) for path in paths), str(error)
            event(f"failed: {type(error).__name__}")
            return
        manifest = landing.manifest
        listed = {fact["path"]: fact for fact in manifest["source_files"]}
        dated = {path for path, item in paths.items() if item.dated}
        assert set(listed) == dated
        ignored = {Path(i["path"]).name for i in manifest["ignored"]}
        assert ignored == {item.folder for item in delivered if not item.dated}
        landed, quarantined = _staged_rows(landing, GOOD), _staged_rows(landing, BAD)
        for path, fact in listed.items():
            assert fact["rows_landed"] == landed.get(path, 0), path
            assert fact["rows_quarantined"] == quarantined.get(path, 0), path
            assert fact["rows_read"] == (
                fact["rows_landed"]
                + fact["rows_quarantined"]
                + fact["rows_outside_interval"]
                + fact["rows_suppressed"]
            ), path
            expected = expected_rows(paths[path].data)
            if expected is not None:
                assert fact["rows_read"] == expected, (path, paths[path].data)
            event("a file's rows counted" if expected is not None else "a file's rows summed")
            if fact["rows_quarantined"]:
                event("a file with rows quarantined")
        assert manifest["rows_read"] == sum(f["rows_read"] for f in listed.values())
        assert manifest["rows_landed"] == sum(landed.values())
        assert manifest["rows_quarantined"] == sum(quarantined.values())


@BOUNDED
@given(delivered=surveys())
def test_every_line_of_damaged_survey_exports_is_accounted_for(delivered):
    _land(contract.SURVEY_RESPONSES, delivered, _survey_rows)


@BOUNDED
@given(delivered=calls())
def test_every_row_of_damaged_call_exports_is_accounted_for(delivered):
    _land(contract.CALLS, delivered, _call_rows)
