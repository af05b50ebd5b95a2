"""Generate the sample sources: a loyalty database, survey exports, call-center exports, answers.

Usage: ``python -m sample_data.generate [--members N] [--seed S] [--start D] [--end D] [--out DIR]``
(defaults from ``config.load_settings()``). The same arguments give byte-identical files: chunks
run in a fixed order, each from its own seeded generator, and nothing reads the clock. The sample
is built in a sibling folder and renamed into place, so a half-written sample is never visible.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from sample_data import answers, exports, members
from sample_data import simulate as sim
from sample_data.writers import AnswerWriter, LoyaltyWriter, sql_timestamps, write_exports

ANSWERS_README = Path(__file__).with_name("answers_readme.md")
INSERT_ROWS = 200_000


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

    def chunk(self, part: int, first_no: int, size: int) -> None:
        """Simulate one chunk of members, each chunk from its own stream, and append it."""
        rng = np.random.default_rng([self.seed, part])
        member_no = np.arange(first_no, first_no + size)
        people = members.draw_people(rng, self.n_days, member_no)
        # Agents serve every chunk, so their skill comes from a stream of its own.
        agent_skill = np.random.default_rng([self.seed, 1 << 30]).normal(0.0, 0.5, sim.AGENTS)
        events = sim.ChunkSimulator(rng, sim.Calendar(self.start, self.n_days), people, agent_skill)
        events = events.run()
        email, digits, phone = members.contact_details(people)
        member_id = members.member_ids(member_no)
        table = members.member_table(rng, self.start, self.n_days, people, events, email, phone)
        self.loyalty.insert("members", table)
        self._sources(rng, part, events, people, member_id, (email, digits, phone))
        self._answers(events, member_id)
        self.summary.members += size

    def _sources(
        self,
        rng: np.random.Generator,
        part: int,
        events: sim.ChunkEvents,
        people: sim.Arrays,
        member_id: np.ndarray,
        contact: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> None:
        email, digits, phone = contact
        summary, start = self.summary, self.start
        tx, tx_rank = _by_time(events.transactions)
        tx_id = _ids("T", summary.transactions, len(tx["ts"]), 10)
        # Formatted and inserted in slices: text columns cost far more memory than numbers.
        for lo in range(0, len(tx_id), INSERT_ROWS):
            rows = {key: value[lo : lo + INSERT_ROWS] for key, value in tx.items()}
            table = _transactions(start, rows, member_id, tx_id[lo : lo + INSERT_ROWS])
            self.loyalty.insert("transactions", table)
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
        lines = exports.survey_lines(rng, start, surveys, ids, email[who], phone[who])
        write_exports(rng, self.tmp / "surveys", start, part, lines)
        caller = calls["member"]
        call_ids = {"member": member_id[caller], "call": call_id}
        style = people["phone_style"][caller]
        lines = exports.call_lines(rng, start, calls, call_ids, digits[caller], style, self.n_days)
        write_exports(rng, self.tmp / "calls", start, part, lines, header=exports.CALL_HEADER)
        summary.transactions += len(tx_id)
        summary.calls += len(call_id)
        summary.survey_responses += len(who)

    def _answers(self, events: sim.ChunkEvents, member_id: np.ndarray) -> None:
        season = sim.Calendar(self.start, self.n_days + 120).season()  # windows pass the end
        cutoffs = answers.cutoff_days(self.start, self.n_days)
        churn, segments = answers.answer_rows(events, member_id, season, cutoffs)
        for rows in (churn, segments):
            rows["cutoff_date"] = np.datetime64(self.start, "D") + rows.pop("cutoff_day")
        self.answer.append(churn, segments)


def generate(
    out_dir: Path, members: int, seed: int, start: date, end: date, chunk_members: int = 50_000
) -> GenerationSummary:
    """Write a complete sample to ``out_dir``, replacing any sample already there.

    Memory stays bounded by one chunk of ``chunk_members`` members. The chunk size takes part
    in the random streams, so byte-identical output needs the same chunk size too.
    """
    if end <= start:
        raise ValueError(f"end {end} must be after start {start}")
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
        LoyaltyWriter(tmp / "loyalty.db"),
        AnswerWriter(tmp / "answers"),
        summary,
    )
    for part, first in enumerate(range(0, members, chunk_members)):
        run.chunk(part, first + 1, min(chunk_members, members - first))
    run.loyalty.close()
    run.answer.close()
    shutil.copyfile(ANSWERS_README, tmp / "answers" / "README.md")
    _swap_into_place(tmp, out_dir)
    summary.files = sum(1 for path in out_dir.rglob("*") if path.is_file())
    summary.paths = {
        "loyalty": out_dir / "loyalty.db",
        "surveys": out_dir / "surveys",
        "calls": out_dir / "calls",
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
    """Command line: defaults come from the settings object, flags override them."""
    from config import load_settings

    settings = load_settings()
    parser = argparse.ArgumentParser(prog="python -m sample_data.generate", description=__doc__)
    parser.add_argument("--members", type=int, default=settings.sample_members)
    parser.add_argument("--seed", type=int, default=settings.sample_seed)
    parser.add_argument("--start", type=date.fromisoformat, default=settings.sample_start)
    parser.add_argument("--end", type=date.fromisoformat, default=settings.sample_end)
    parser.add_argument("--out", type=Path, default=settings.sample_dir)
    parser.add_argument("--chunk-members", type=int, default=50_000)
    args = parser.parse_args(argv)
    began = time.perf_counter()  # only for the printed duration, never for the data
    summary = generate(args.out, args.members, args.seed, args.start, args.end, args.chunk_members)
    print(
        f"sample written to {summary.out_dir} in {time.perf_counter() - began:.1f} s: "
        f"{summary.members:,} members, {summary.transactions:,} transactions, "
        f"{summary.survey_responses:,} survey responses, {summary.calls:,} calls, "
        f"{summary.files:,} files"
    )
    return summary


if __name__ == "__main__":
    main()
