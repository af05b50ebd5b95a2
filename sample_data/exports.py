"""Turn simulated surveys and calls into export lines, with the dirt real exports carry.

Lines are built by array concatenation (no per-record Python), after deciding each record's export
day: normally the day after the event, sometimes days later, and a few records twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from sample_data import simulate as sim
from sample_data.text import comments, format_phones, messy, notes
from sample_data.timefmt import iso_text

DAY = sim.DAY
MALFORMED = 0.005
DUPLICATED = 0.005
LATE = 0.02
CALL_COLUMNS = (
    "call_id",
    "started_at",
    "member_id",
    "caller_phone",
    "channel",
    "queue_seconds",
    "handle_seconds",
    "reason",
    "resolved",
    "escalated",
    "transfers",
    "agent_id",
    "notes",
)
CALL_HEADER = ",".join(CALL_COLUMNS)
# The required_columns shape: the contract's required fields plus the link to the member. A
# survey also keeps nps, which the contract makes optional, so that a survey source still has
# something to learn from (a response with no score carries no signal).
REQUIRED_SURVEY_FIELDS = ("response_id", "submitted_at", "member_id", "nps")
REQUIRED_CALL_COLUMNS = ("call_id", "started_at", "member_id")


@dataclass
class Lines:
    """Export-ready text lines and the day (index from start) of the folder each goes to."""

    export_day: np.ndarray
    lines: np.ndarray


def _o(values: np.ndarray) -> np.ndarray:
    return values.astype(str).astype(object)


def _q(values: np.ndarray) -> np.ndarray:
    return '"' + _o(values) + '"'


def export_timestamps(rng: np.random.Generator, start: date, ts: np.ndarray) -> np.ndarray:
    """Mostly ISO with Z; some with +02:00 or -05:00 (same instant) and some naive (UTC)."""
    style = rng.choice(4, size=len(ts), p=[0.8, 0.06, 0.06, 0.08])
    shift = np.array([0, 7200, -18000, 0])[style]
    text = iso_text(start, ts + shift, "T")
    text[style == 3] = iso_text(start, ts[style == 3], " ")
    suffix = np.array(["Z", "+02:00", "-05:00", ""], dtype=object)[style]
    return text + suffix


def _schedule(rng: np.random.Generator, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row index and export day for every delivered record: late ones, and some sent twice."""
    n = len(ts)
    delay = np.where(rng.random(n) < LATE, rng.integers(3, 9, n), 1)
    day = ts // DAY + delay
    again = np.flatnonzero(rng.random(n) < DUPLICATED)
    rows = np.concatenate([np.arange(n), again])
    days = np.concatenate([day, day[again] + rng.integers(1, 4, len(again))])
    return rows, days


def _field(
    name: str, value: np.ndarray, present: np.ndarray, omit_share: float, rng: np.random.Generator
) -> np.ndarray:
    """JSON member text; when absent the key is either left out or written as null."""
    out = np.full(len(value), "", dtype=object)
    out[present] = f', "{name}": ' + value[present]
    null = ~present & (rng.random(len(value)) >= omit_share)
    out[null] = f', "{name}": null'
    return out


def survey_lines(
    rng: np.random.Generator,
    start: date,
    s: sim.Arrays,
    ids: dict[str, np.ndarray],
    email: np.ndarray,
    phone: np.ndarray,
    fields: Sequence[str] | None = None,
    voice: dict | None = None,
) -> Lines:
    """JSON Lines for survey responses. ``ids`` holds response, member and related ids per row.

    ``fields`` keeps only those fields (``response_id`` first); every field is drawn either way,
    so the random stream, and with it everything after, is the same. ``voice`` (see
    ``text.comments``) makes some comments speak as customers do and receives their styles.
    """
    rows, days = _schedule(rng, s["ts"])
    n = len(s["ts"])
    kind = s["kind"]
    # About 10% arrive without a member id; half of those still carry a matching email.
    anonymous = rng.random(n) < 0.10
    u = rng.random(n)
    with_email = np.where(anonymous, u < 0.5, u < 0.6)
    address = messy(rng, email.copy(), 0.15)
    stranger = rng.random(n) < 0.2
    address[anonymous & ~with_email & stranger] = "someone@example.org"
    with_email |= anonymous & stranger
    channel_p = np.array([[0.5, 0.15, 0.2, 0.15], [0.3, 0.2, 0.4, 0.1], [0.45, 0.45, 0.05, 0.05]])
    channel = (rng.random(n)[:, None] > channel_p[kind].cumsum(axis=1)).sum(axis=1).clip(max=3)
    has_emo = s["emo_valued"] >= 0
    emotions = np.full(n, "", dtype=object)
    text = np.full(int(has_emo.sum()), "{", dtype=object)
    for i, item in enumerate(sim.EMOTIONS):
        text = text + (", " if i else "") + f'"{item}": ' + _o(s[f"emo_{item}"][has_emo])
    emotions[has_emo] = text + "}"
    tone = s["comment_tone"]
    comment = comments(rng, tone.clip(min=0), kind, email, phone, voice)
    submitted = _q(export_timestamps(rng, start, s["ts"]))
    pieces = {
        "response_id": '{"response_id": ' + _q(ids["response"]),
        "submitted_at": ', "submitted_at": ' + submitted,
        "member_id": _field("member_id", _q(ids["member"]), ~anonymous, 0.5, rng),
        "email": _field("email", _q(address), with_email, 0.7, rng),
        "survey_type": ', "survey_type": ' + _q(np.array(sim.SURVEY_TYPES)[kind]),
        "channel": _field(
            "channel", _q(np.array(sim.SURVEY_CHANNELS)[channel]), rng.random(n) < 0.95, 0.5, rng
        ),
        "nps": _field("nps", _o(s["nps"]), s["nps"] >= 0, 0.7, rng),
        "csat": _field("csat", _o(s["csat"]), s["csat"] >= 0, 0.7, rng),
        "ces": _field("ces", _o(s["ces"]), s["ces"] >= 0, 0.7, rng),
        "emotions": _field("emotions", emotions, has_emo, 0.7, rng),
        "comment": _field("comment", _q(comment), tone >= 0, 0.7, rng),
        "related_call_id": _field("related_call_id", _q(ids["call"]), kind == 2, 0.9, rng),
        "related_transaction_id": _field(
            "related_transaction_id", _q(ids["transaction"]), kind == 1, 0.9, rng
        ),
    }
    _spoil_survey(rng, pieces, submitted)
    line = pieces["response_id"]
    for key, piece in pieces.items():
        if key != "response_id" and (fields is None or key in fields):
            line = line + piece
    line = line + "}"
    return Lines(days, _truncate(rng, line)[rows])


def _spoil_survey(
    rng: np.random.Generator, pieces: dict[str, np.ndarray], submitted: np.ndarray
) -> None:
    """About 0.5% malformed: a word or out-of-range NPS, a bad timestamp, no response id."""
    bad = _some(rng, len(submitted), MALFORMED * 0.8, 4)
    how = np.arange(len(bad)) % 4
    pieces["nps"][bad[how == 0]] = ', "nps": "ten"'
    pieces["nps"][bad[how == 1]] = ', "nps": 14'
    pieces["submitted_at"][bad[how == 2]] = ', "submitted_at": "2025-02-30 25:61"'
    gone = bad[how == 3]
    pieces["response_id"][gone] = "{"
    pieces["submitted_at"][gone] = '"submitted_at": ' + submitted[gone]


def _some(rng: np.random.Generator, n: int, share: float, at_least: int) -> np.ndarray:
    """Rows at about ``share``, but at least ``at_least`` so small samples carry each kind."""
    rows = np.flatnonzero(rng.random(n) < share)
    if len(rows) < at_least:
        rows = np.sort(rng.choice(n, min(at_least, n), replace=False))
    return rows


def _truncate(rng: np.random.Generator, line: np.ndarray) -> np.ndarray:
    """Cut about 0.1% of lines in half, as an interrupted export does."""
    cut = _some(rng, len(line), MALFORMED * 0.2, 1)
    line = line.copy()
    line[cut] = [text[: len(text) // 2] for text in line[cut]]
    return line


def call_lines(
    rng: np.random.Generator,
    start: date,
    c: sim.Arrays,
    ids: dict[str, np.ndarray],
    phone_digits: np.ndarray,
    phone_style: np.ndarray,
    n_days: int,
    columns: Sequence[str] = CALL_COLUMNS,
    voice: dict | None = None,
) -> Lines:
    """CSV rows for contacts; booleans are encoded per file (true/false, yes/no or 1/0).

    ``columns`` (in ``CALL_COLUMNS`` order) keeps only those; every column is drawn either way.
    ``voice`` (see ``text.notes``) puts some notes in agents' shorthand and receives their styles.
    """
    rows, days = _schedule(rng, c["ts"])
    n = len(c["ts"])
    unknown = rng.random(n) < 0.15
    member = ids["member"].astype(object)
    typo = rng.random(n) < 0.02
    member[typo] = np.char.lower(member[typo].astype(str)).astype(object)
    member[unknown] = ""
    # The caller's number in another style than the loyalty database holds.
    style = (phone_style + rng.integers(1, 4, n)) % 4
    number = format_phones(phone_digits, style)
    caller = np.where(~unknown & (rng.random(n) < 0.15), "", number)
    outcome = np.where(c["escalated"], 2, c["resolved"].astype(int))
    note = notes(rng, c["reason"], outcome, number, voice)
    queue = _o(c["queue"])
    started = export_timestamps(rng, start, c["ts"])
    call_id = ids["call"].astype(object).copy()
    bad = _some(rng, n, MALFORMED, 3)
    how = np.arange(len(bad)) % 3
    queue[bad[how == 0]] = "n/a"
    call_id[bad[how == 1]] = ""
    started[bad[how == 2]] = "yesterday 14:00"
    text = {
        "call_id": call_id,
        "started_at": started,
        "member_id": member,
        "caller_phone": caller,
        "channel": np.array(sim.CALL_CHANNELS, dtype=object)[c["channel"]],
        "queue_seconds": queue,
        "handle_seconds": _o(c["handle"]),
        "reason": np.array(sim.REASONS, dtype=object)[c["reason"]],
        "transfers": _o(c["transfers"]),
        "agent_id": _agent(c["agent"]),
        "notes": '"' + note + '"',
    }
    delivered = {name: value[rows] for name, value in text.items() if name in columns}
    encoding = rng.integers(0, 3, n_days + 16)[days]
    words = np.array([["false", "true"], ["no", "yes"], ["0", "1"]], dtype=object)
    delivered["resolved"] = words[encoding, c["resolved"][rows].astype(int)]
    delivered["escalated"] = words[encoding, c["escalated"][rows].astype(int)]
    line = delivered[columns[0]]
    for name in columns[1:]:
        line = line + "," + delivered[name]
    return Lines(days, line)


def _agent(agent: np.ndarray) -> np.ndarray:
    return "A" + np.char.zfill(_o(agent + 1).astype(str), 3).astype(object)
