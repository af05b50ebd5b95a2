"""Generate the sample sources: a loyalty database, survey exports, call-center exports, answers.

Usage: ``python -m sample_data.generate [--members N] [--seed S] [--start D] [--end D]
[--shape S[,S...]] [--out DIR]`` (defaults from ``config.load_settings()``). The same arguments
give byte-identical files: chunks run in a fixed order, each from its own seeded generator, and
nothing reads the clock. The sample is built in a sibling folder and renamed into place, so a
half-written sample is never visible. Shapes (README, Shapes) make the data look like what a real
retailer brings: one cohort, purchases only, a short history, a strong season, only the required
columns.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from config.settings import SAMPLE_SHAPES
from sample_data import answers, exports, members
from sample_data import simulate as sim
from sample_data.writers import AnswerWriter, LoyaltyWriter, sql_timestamps, write_exports

ANSWERS_README = Path(__file__).with_name("answers_readme.md")
INSERT_ROWS = 200_000
# The stream customers' own words are drawn from ([seed, part, VOICE_STREAM]), and the answer
# key's names for a comment's tone (the simulation's 0-2) and a call's outcome.
VOICE_STREAM = 27
TONES = ("negative", "neutral", "positive")
OUTCOMES = ("unresolved", "resolved", "escalated")


@dataclass
class GenerationSummary:
    """What one run wrote; ``files`` counts every file under the output folder."""

    out_dir: Path
    members: int = 0
    transactions: int = 0
    survey_responses: int = 0
    calls: int = 0
    files: int = 0
    paths: dict[str, Path] = field(default_factory=dict)


def _ids(prefix: str, offset: int, n: int, width: int) -> np.ndarray:
    numbers = np.arange(offset + 1, offset + n + 1).astype(str)
    return prefix + np.char.zfill(numbers, width).astype(object)


def _by_time(arrays: sim.Arrays) -> tuple[sim.Arrays, np.ndarray]:
    """Sort events by time then member; also return each old index's new position."""
    order = np.lexsort((arrays["member"], arrays["ts"]))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return {key: value[order] for key, value in arrays.items()}, rank


def _transactions(start: date, tx: sim.Arrays, member_id: np.ndarray, tx_id: np.ndarray) -> dict:
    store = "S" + np.char.zfill((tx["store"] + 1).astype(str), 3).astype(object)
    store[tx["store"] < 0] = None
    return {
        "transaction_id": tx_id,
        "member_id": member_id[tx["member"]],
        "occurred_at": sql_timestamps(start, tx["ts"]),
        "amount": tx["amount"],
        "recorded_at": sql_timestamps(start, tx["ts"] + tx["delay"]),
        "channel": np.array(sim.CHANNELS, dtype=object)[tx["channel"]],
        "store_id": store,
        "points_earned": tx["earned"],
        "points_redeemed": tx["redeemed"],
    }


def _lookup(ids: np.ndarray, rank: np.ndarray, related: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Ids of related events (by their pre-sort index) where ``use``, else empty text."""
    out = np.full(len(related), "", dtype=object)
    out[use] = ids[rank[related[use]]]
    return out


@dataclass
class _Run:
    """One generation: the open writers and the running totals that keep ids unique."""

    tmp: Path
    seed: int
    start: date
    n_days: int
    loyalty: LoyaltyWriter
    answer: AnswerWriter
    summary: GenerationSummary
    shape: frozenset[str] = frozenset({"default"})

    def chunk(self, part: int, first_no: int, size: int) -> None:
        """Simulate one chunk of members, each chunk from its own stream, and append it."""
        rng = np.random.default_rng([self.seed, part])
        member_no = np.arange(first_no, first_no + size)
        cohort = "single_cohort" in self.shape
        cohort_days = members.COHORT_DAYS if cohort else 0
        people = members.draw_people(rng, self.n_days, member_no, cohort_days)
        # Agents serve every chunk, so their skill comes from a stream of its own.
        agent_skill = np.random.default_rng([self.seed, 1 << 30]).normal(0.0, 0.5, sim.AGENTS)
        calendar = sim.Calendar(self.start, self.n_days, seasonal="seasonal" in self.shape)
        events = sim.ChunkSimulator(rng, calendar, people, agent_skill, buy_at_enrolment=cohort)
        events = events.run()
        email, digits, phone = members.contact_details(people)
        member_id = members.member_ids(member_no)
        table = members.member_table(rng, self.start, self.n_days, people, events, email, phone)
        self.loyalty.insert("members", table)
        tx_ids = self._transactions(events, member_id)
        # Contacts and surveys still happen in a purchase-only program: nobody exports them.
        if "purchase_only" not in self.shape:
            self._exports(rng, part, events, people, member_id, (email, digits, phone), tx_ids)
        self._answers(events, member_id)
        self.summary.members += size

    def _transactions(
        self, events: sim.ChunkEvents, member_id: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Insert the chunk's transactions; return their ids and each event's place among them."""
        tx, tx_rank = _by_time(events.transactions)
        tx_id = _ids("T", self.summary.transactions, len(tx["ts"]), 10)
        # Formatted and inserted in slices: text columns cost far more memory than numbers.
        for lo in range(0, len(tx_id), INSERT_ROWS):
            rows = {key: value[lo : lo + INSERT_ROWS] for key, value in tx.items()}
            table = _transactions(self.start, rows, member_id, tx_id[lo : lo + INSERT_ROWS])
            self.loyalty.insert("transactions", table)
        self.summary.transactions += len(tx_id)
        return tx_id, tx_rank

    def _exports(
        self,
        rng: np.random.Generator,
        part: int,
        events: sim.ChunkEvents,
        people: sim.Arrays,
        member_id: np.ndarray,
        contact: tuple[np.ndarray, np.ndarray, np.ndarray],
        tx_ids: tuple[np.ndarray, np.ndarray],
    ) -> None:
        email, digits, phone = contact
        summary, start = self.summary, self.start
        tx_id, tx_rank = tx_ids
        calls, call_rank = _by_time(events.calls)
        call_id = _ids("C", summary.calls, len(calls["ts"]), 9)
        surveys, _ = _by_time(events.surveys)
        kind, related, who = surveys["kind"], surveys["related"], surveys["member"]
        ids = {
            "member": member_id[who],
            "response": _ids("R", summary.survey_responses, len(who), 9),
            "transaction": _lookup(tx_id, tx_rank, related, kind == 1),
            "call": _lookup(call_id, call_rank, related, kind == 2),
        }
        required = "required_columns" in self.shape
        fields = exports.REQUIRED_SURVEY_FIELDS if required else None
        # Customers' own words come from a stream of their own: the rest of the sample is the
        # same with or without them.
        voice = {"rng": np.random.default_rng([self.seed, part, VOICE_STREAM])}
        lines = exports.survey_lines(
            rng, start, surveys, ids, email[who], phone[who], fields, voice
        )
        write_exports(rng, self.tmp / "surveys", start, part, lines)
        caller = calls["member"]
        call_ids = {"member": member_id[caller], "call": call_id}
        style = people["phone_style"][caller]
        columns = exports.REQUIRED_CALL_COLUMNS if required else exports.CALL_COLUMNS
        note_voice = {"rng": voice["rng"]}
        lines = exports.call_lines(
            rng, start, calls, call_ids, digits[caller], style, self.n_days, columns, note_voice
        )
        write_exports(rng, self.tmp / "calls", start, part, lines, header=",".join(columns))
        tone = surveys["comment_tone"]
        commented = tone >= 0
        outcome = np.where(calls["escalated"], 2, calls["resolved"].astype(int))
        self.answer.append_texts(
            {
                "record_type": np.concatenate(
                    [
                        np.full(int(commented.sum()), "survey_comment"),
                        np.full(len(call_id), "call_note"),
                    ]
                ).astype(object),
                "record_id": np.concatenate([ids["response"][commented], call_id]).astype(object),
                "true_tone": np.concatenate(
                    [np.array(TONES, dtype=object)[tone[commented]], np.full(len(call_id), None)]
                ),
                "call_outcome": np.concatenate(
                    [np.full(int(commented.sum()), None), np.array(OUTCOMES, dtype=object)[outcome]]
                ),
                "style": np.concatenate([voice["style"][commented], note_voice["style"]]),
                "has_typo": np.concatenate(
                    [voice["typo"][commented], np.zeros(len(call_id), dtype=bool)]
                ),
            }
        )
        summary.calls += len(call_id)
        summary.survey_responses += len(who)

    def _answers(self, events: sim.ChunkEvents, member_id: np.ndarray) -> None:
        # Label windows pass the end, so the season runs on past it.
        calendar = sim.Calendar(self.start, self.n_days + 120, seasonal="seasonal" in self.shape)
        season = calendar.season()
        history = answers.SHORT_BEFORE if "short_history" in self.shape else answers.BEFORE
        cutoffs = answers.cutoff_days(self.start, self.n_days, history)
        churn, segments = answers.answer_rows(events, member_id, season, cutoffs)
        for rows in (churn, segments):
            rows["cutoff_date"] = np.datetime64(self.start, "D") + rows.pop("cutoff_day")
        self.answer.append(churn, segments)


def generate(
    out_dir: Path,
    members: int,
    seed: int,
    start: date,
    end: date,
    chunk_members: int = 50_000,
    shape: Sequence[str] = ("default",),
) -> GenerationSummary:
    """Write a complete sample to ``out_dir``, replacing any sample already there.

    Memory stays bounded by one chunk of ``chunk_members`` members. The chunk size takes part
    in the random streams, so byte-identical output needs the same chunk size too. ``shape``
    names any of ``config.settings.SAMPLE_SHAPES`` (README, Shapes); ``short_history`` only
    moves the answer key's first cutoff here, since the settings choose the start.
    """
    if end <= start:
        raise ValueError(f"end {end} must be after start {start}")
    if isinstance(shape, str):
        shape = shape.split(",")
    unknown = sorted(set(shape) - set(SAMPLE_SHAPES))
    if unknown:
        raise ValueError(f"unknown sample shapes {unknown}; known: {', '.join(SAMPLE_SHAPES)}")
    purchase_only = "purchase_only" in shape
    required_only = purchase_only or "required_columns" in shape
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n_days = (end - start).days + 1
    summary = GenerationSummary(out_dir=out_dir)
    run = _Run(
        tmp,
        seed,
        start,
        n_days,
        LoyaltyWriter(tmp / "loyalty.db", required_only=required_only),
        AnswerWriter(tmp / "answers"),
        summary,
        frozenset(shape),
    )
    for part, first in enumerate(range(0, members, chunk_members)):
        run.chunk(part, first + 1, min(chunk_members, members - first))
    run.loyalty.close()
    run.answer.close()
    shutil.copyfile(ANSWERS_README, tmp / "answers" / "README.md")
    _swap_into_place(tmp, out_dir)
    summary.files = sum(1 for path in out_dir.rglob("*") if path.is_file())
    exported = () if purchase_only else ("surveys", "calls")
    summary.paths = {
        "loyalty": out_dir / "loyalty.db",
        **{source: out_dir / source for source in exported},
        "answers": out_dir / "answers",
    }
    return summary


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` with two renames; only the instant between them lacks a sample."""
    old = out_dir.with_name(out_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> GenerationSummary:
    """Command line: defaults come from the settings object, flags override them.

    ``--start``, ``--end`` and ``--shape`` stand in for their variables before the settings are
    read, so a short history's start follows the ``--end`` given.
    """
    from config import SettingsError, load_settings

    parser = argparse.ArgumentParser(prog="python -m sample_data.generate", description=__doc__)
    parser.add_argument("--members", type=int, help="default CX_SAMPLE_MEMBERS")
    parser.add_argument("--seed", type=int, help="default CX_SAMPLE_SEED")
    parser.add_argument("--start", type=date.fromisoformat, help="default CX_SAMPLE_START")
    parser.add_argument("--end", type=date.fromisoformat, help="default CX_SAMPLE_END")
    parser.add_argument(
        "--shape", help=f"comma-separated, of {', '.join(SAMPLE_SHAPES)}; default CX_SAMPLE_SHAPE"
    )
    parser.add_argument("--out", type=Path, help="default CX_SAMPLE_DIR")
    parser.add_argument("--chunk-members", type=int, default=50_000)
    args = parser.parse_args(argv)
    flags = {
        "CX_SAMPLE_START": args.start,
        "CX_SAMPLE_END": args.end,
        "CX_SAMPLE_SHAPE": args.shape,
    }
    env = {**os.environ, **{name: str(value) for name, value in flags.items() if value is not None}}
    try:
        settings = load_settings(env)
    except SettingsError as error:
        parser.error(f"{error} (--start, --end and --shape set CX_SAMPLE_START, _END, _SHAPE)")
    began = time.perf_counter()  # only for the printed duration, never for the data
    summary = generate(
        settings.sample_dir if args.out is None else args.out,
        settings.sample_members if args.members is None else args.members,
        settings.sample_seed if args.seed is None else args.seed,
        settings.sample_start,
        settings.sample_end,
        args.chunk_members,
        settings.sample_shape,
    )
    print(
        f"sample written to {summary.out_dir} in {time.perf_counter() - began:.1f} s: "
        f"{summary.members:,} members, {summary.transactions:,} transactions, "
        f"{summary.survey_responses:,} survey responses, {summary.calls:,} calls, "
        f"{summary.files:,} files"
    )
    return summary


if __name__ == "__main__":
    main()
