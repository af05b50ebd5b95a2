"""One programs cycle, as the steps the ``run_programs`` DAG and ``python -m programs`` call:

1. ``assign``: select each program's members on the cycle date (the scores' date), draw the
   control groups, write ``program_assignments`` and ``program_cycles``;
2. ``export``: write the cycle's files for campaign tools and switch ``latest`` to them;
3. ``measure``: lift of every cycle whose response window has passed, and the key drivers, into
   ``mart_program_lift`` and ``mart_key_drivers``;
4. ``publish``: refresh the analysts' read-only copy of the warehouse;
5. ``report``: the segment report.

Each step takes the warehouse's store (``warehouse/store.py``: DuckDB or PostgreSQL, opened by the
caller with ``open_store(settings)``) and the settings, reads through the store and writes in one
short transaction of the ``programs`` writer, and returns a small JSON-able summary (what goes
through XCom: dates and paths, never data).

Without a segment model (a loyalty-only deployment: no survey responses to learn segments from),
the programs whose condition needs a segment are skipped, with the reason in ``program_cycles``,
the manifest, the summary and the log; the others run as usual.
"""

from __future__ import annotations

import logging
import time
from datetime import date

import pandas as pd

from config import Settings
from programs import assignment, drivers, eligibility, exports, lift, members, tables
from programs import config as program_config
from programs import report as segment_report
from warehouse.store import Store

log = logging.getLogger(__name__)


def cycles_frame(
    config: program_config.ProgramsConfig,
    funnel: dict[str, dict[str, int]],
    assignments: pd.DataFrame,
    on: date,
    model_version: str,
    skipped: dict[str, str] | None = None,
    holdout_members: int = 0,
) -> pd.DataFrame:
    """``program_cycles`` rows: each program's rules in this cycle, its funnel, why it was
    skipped (``skipped``: ``{program: reason}``) and the global holdout (``holdout_members``:
    the open members in it this cycle)."""
    skipped = skipped or {}
    groups = assignments.groupby(["program", "assignment_group"]).size()
    rows = []
    for program in config.programs:
        rows.append(
            {
                "cycle_date": on,
                "program": program.name,
                "title": program.title,
                "priority": program.priority,
                "eligibility": program.eligibility,
                "control_share": program.control_share,
                "response_window_days": program.response_window_days,
                "opt_in_required": program.contact.opt_in_required,
                "exclude_contacted_within_days": program.contact.exclude_contacted_within_days,
                **funnel[program.name],
                "treatment": int(groups.get((program.name, "treatment"), 0)),
                "control": int(groups.get((program.name, "control"), 0)),
                "model_version": model_version,
                "config_sha256": config.sha256,
                "skipped_reason": skipped.get(program.name),
                "global_holdout_share": config.holdout.share if config.holdout else 0.0,
                "global_holdout_members": holdout_members,
                "reasons": program.reasons,
                "contact_within_days": program.contact.contact_within_days,
            }
        )
    return pd.DataFrame(rows, columns=list(tables.CYCLE_COLUMNS))


def assign(store: Store, settings: Settings) -> dict:
    """Step 1: who is in which program and group this cycle; returns the cycle date and sizes."""
    config = program_config.load(settings.programs_config)
    on = members.cycle_date(store)
    frame = members.read_members(store, on)
    history = members.read_history(store, on)
    no_segments = members.segment_model_absence(store, frame)
    rules = [p.rules() for p in config.programs]
    unavailable = dict.fromkeys(members.SEGMENT_COLUMNS, no_segments) if no_segments else {}
    skipped = eligibility.skipped(rules, unavailable)
    for program, reason in skipped.items():
        log.warning("program %s skipped in the cycle of %s: %s", program, on, reason)
    held_out = global_holdout(config, frame)
    selected, funnel = eligibility.select(
        frame, rules, history, on, skip=skipped, global_holdout=held_out
    )
    rows = assignment.assign(selected, on, {p.name: p.control_share for p in config.programs})
    model_version = str(frame["model_version"].iloc[0]) if len(frame) else ""
    cycles = cycles_frame(config, funnel, rows, on, model_version, skipped, len(held_out))
    tables.write_assignments(store, on, rows, cycles)
    return {
        "cycle_date": on.isoformat(),
        "programs": {
            r.program: {"eligible": r.eligible, "treatment": r.treatment, "control": r.control}
            for r in cycles.itertuples()
        },
        "skipped": skipped,
        "global_holdout": len(held_out),
    }


def global_holdout(config: program_config.ProgramsConfig, frame: pd.DataFrame) -> set[str]:
    """The members of ``frame`` in the persistent global holdout (none without one)."""
    if config.holdout is None:
        return set()
    return {m for m in frame["member_id"].astype(object) if config.holdout.holds(m)}


def _text(value) -> str | None:
    """A nullable text value read from the store (None, NaN or pd.NA when null) as str or None."""
    return None if value is None or pd.isna(value) else str(value)


def _manifest(
    store,
    on: date,
    cycles: pd.DataFrame,
    frames: dict[str, pd.DataFrame],
    reason_kinds: dict[str, str] | None = None,
) -> dict:
    reason_kinds = reason_kinds or {}
    versions = [
        _text(value)
        for value in store.read(
            "select distinct model_version, churn_model_version, segment_model_version "
            "from ml_scores where score_date = $1 and model_version = $2",
            [on, cycles["model_version"].iloc[0]],
        ).iloc[0]
    ]
    return {
        "cycle_date": on.isoformat(),
        "as_of_date": on.isoformat(),
        # A model that did not score (no segment model without survey responses) is null.
        "model_versions": {
            "scores": versions[0],
            "churn_model": f"cx_churn/{versions[1]}" if versions[1] is not None else None,
            "segment_model": f"cx_segment/{versions[2]}" if versions[2] is not None else None,
        },
        "programs_config_sha256": cycles["config_sha256"].iloc[0],
        "columns": exports.EXPORT_COLUMNS,
        "rules": (
            "treatment members only (control groups and the global holdout are never exported); "
            "email only for members who opted in to marketing; phone in a service program, or "
            "for members who opted in; channel: email, else phone, else none; closed accounts "
            "left out"
        ),
        "programs": [
            {
                "name": r.program,
                "title": r.title,
                "priority": int(r.priority),
                "eligibility": r.eligibility,
                "control_share": float(r.control_share),
                "response_window_days": int(r.response_window_days),
                "eligible": int(r.eligible),
                "treatment": int(r.treatment),
                "control": int(r.control),
                "rows": len(frames[r.program]),
                "rows_with_email": int(frames[r.program]["email"].notna().sum()),
                "rows_with_phone": int(frames[r.program]["phone"].notna().sum()),
                "channels": {
                    channel: int((frames[r.program]["channel"] == channel).sum())
                    for channel in exports.CHANNELS
                },
                "rows_without_channel": int((frames[r.program]["channel"] == "none").sum()),
                "reasons": reason_kinds.get(r.program, "risk"),
                "skipped_reason": _text(getattr(r, "skipped_reason", None)),
            }
            for r in cycles.sort_values("priority").itertuples()
        ],
    }


def _reason_sets(cycles: pd.DataFrame) -> list[str]:
    """Each cycle row's reason set (``risk`` in a table written before programs could choose)."""
    if "reasons" not in cycles.columns:
        return ["risk"] * len(cycles)
    return [_text(value) or "risk" for value in cycles["reasons"]]


def export(store: Store, settings: Settings, cycle_date: str) -> dict:
    """Step 2: the cycle's exports, published atomically; returns the path and row counts."""
    on = date.fromisoformat(cycle_date)
    cycles = (
        store.read("select * from program_cycles where cycle_date = $1 order by priority", [on])
        if store.exists("program_cycles")
        else pd.DataFrame()
    )
    if cycles.empty:
        raise members.WarehouseNotReady(f"no program cycle on {on}: run the assign step")
    rows = exports.read_rows(store, on)
    reason_sets = dict(zip(cycles["program"], _reason_sets(cycles), strict=True))
    frames = {
        p: exports.program_frame(
            rows, p, exports.strength_reasons(store, on, p) if kind == "strengths" else None
        )
        for p, kind in reason_sets.items()
    }
    manifest = _manifest(store, on, cycles, frames, reason_sets)
    path = exports.write_cycle(
        settings.exports_dir, on, frames, manifest, group=settings.personal_file_group
    )
    return {
        "cycle_date": cycle_date,
        "path": str(path),
        "latest": str(settings.exports_dir / exports.LATEST),
        "rows": {name: len(frame) for name, frame in frames.items()},
    }


def measure(store: Store, settings: Settings, cycle_date: str) -> dict:
    """Step 3: lift of every cycle whose window has passed, and this cycle's key drivers."""
    on = date.fromisoformat(cycle_date)
    through = lift.measured_through(store)
    cycles = lift.read_cycles(store)
    outcomes = lift.read_outcomes(store, through)
    driver_inputs, performance, not_derived = drivers.read_inputs(store, on)
    left_out = {
        reason: [name for name, why in not_derived.items() if why == reason]
        for reason in dict.fromkeys(not_derived.values())
    }
    for reason, names in left_out.items():
        log.warning("key drivers on %s without %s: %s", on, ", ".join(names), reason)
    lift_rows = lift.lift_table(cycles, outcomes, through)
    driver_rows = drivers.key_drivers(driver_inputs, performance, on, not_derived)
    counts = tables.write_measurements(store, on, lift_rows, driver_rows)
    statuses = lift_rows.groupby("status").size().to_dict() if len(lift_rows) else {}
    return {
        "cycle_date": cycle_date,
        "measured_through": str(through),
        **counts,
        **statuses,
        "drivers_left_out": left_out,
    }


def publish(store: Store, settings: Settings) -> str:
    """Step 4: refresh what analysts read: on DuckDB the read-only copy
    (``warehouse/published/``); on PostgreSQL they read the live schema, as the grants allow."""
    published = store.publish(tables=tables.PUBLISHED_TABLES, by_rows=True)
    return published or f"{store.target}: analysts read the live schema"


def report(store: Store, settings: Settings) -> dict:
    """Step 5: gather, render and publish the segment report; returns its path and timing."""
    started = time.perf_counter()
    data = segment_report.gather(store, settings.exports_dir, settings.data_dir)
    html = segment_report.render(data)
    path = segment_report.write(settings.reports_dir, html, data.as_of)
    return {
        "path": str(path),
        "bytes": len(html.encode()),
        "seconds": round(time.perf_counter() - started, 2),
    }


def run(store: Store, settings: Settings) -> dict:
    """The whole cycle in order, in this process (what the DAG runs as five tasks)."""
    timings: dict[str, float] = {}

    def timed(name, function, *args):
        started = time.perf_counter()
        result = function(*args)
        timings[name] = round(time.perf_counter() - started, 2)
        return result

    assigned = timed("assign", assign, store, settings)
    cycle_date = assigned["cycle_date"]
    exported = timed("export", export, store, settings, cycle_date)
    measured = timed("measure", measure, store, settings, cycle_date)
    published = timed("publish", publish, store, settings)
    reported = timed("report", report, store, settings)
    return {
        "assign": assigned,
        "export": exported,
        "measure": measured,
        "warehouse": published,
        "report": reported,
        "seconds": timings,
    }


def outputs(settings: Settings) -> dict[str, str | None]:
    """Where the latest exports and the report are (for ``make run`` to print)."""
    latest = settings.exports_dir / exports.LATEST
    page = settings.reports_dir / segment_report.REPORT_NAME
    return {
        "exports": str(latest) if latest.exists() else None,
        "cycle_date": latest.readlink().name if latest.is_symlink() else None,
        "report": str(page) if page.exists() else None,
    }
