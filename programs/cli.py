"""``python -m programs <command>``: the same steps the ``run_programs`` DAG runs, by hand.

check      check the programs file and list its programs (no warehouse needed)
columns    the member columns an eligibility condition may use
run        a whole cycle: assign, export, measure, publish, report
assign     step 1 only;  export / measure [--cycle-date D]: steps 2 and 3
report     regenerate the segment report from the warehouse
outputs    print where the latest exports and the report are
"""

from __future__ import annotations

import argparse
import json
import sys


def _check(settings) -> int:
    from programs import config
    from programs.eligibility import referenced_columns
    from programs.members import SEGMENT_COLUMNS

    loaded = config.load(settings.programs_config)
    print(f"{settings.programs_config}: {len(loaded.programs)} programs, in priority order")
    for p in loaded.programs:
        rules = p.contact
        print(
            f"  {p.priority}. {p.name} ({p.title}): {p.eligibility}\n"
            f"     control {p.control_share:.0%}, response window {p.response_window_days} days, "
            f"opt-in {'required' if rules.opt_in_required else 'not required'}, rest "
            f"{rules.exclude_contacted_within_days} days"
        )
        if referenced_columns(p.eligibility) & set(SEGMENT_COLUMNS):
            print("     needs a segment: skipped in a cycle without a segment model")
    return 0


def _columns() -> int:
    from programs.members import member_columns

    for name, (kind, description) in member_columns().items():
        print(f"  {name:<28} {kind:<18} {description}")
    return 0


def _latest_cycle(store) -> str:
    from programs.members import WarehouseNotReady

    latest = (
        store.read("select max(cycle_date) as latest from program_cycles").iloc[0, 0]
        if store.exists("program_cycles")
        else None
    )
    if latest is None or latest != latest:  # no table, or no row (NaT)
        raise WarehouseNotReady("no program cycle yet: run the assign step")
    return latest.date().isoformat()


def main(argv: list[str] | None = None) -> int:
    from config import SettingsError, load_settings
    from programs import cycle
    from programs.config import ProgramConfigError
    from programs.eligibility import ExpressionError
    from programs.members import WarehouseNotReady
    from warehouse.store import open_store

    parser = argparse.ArgumentParser(
        prog="python -m programs",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("check", "columns", "run", "assign", "report", "outputs"):
        sub.add_parser(name)
    for name in ("export", "measure"):
        step = sub.add_parser(name)
        step.add_argument("--cycle-date", help="YYYY-MM-DD (default: the latest cycle)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "check":
            return _check(settings)
        if args.command == "columns":
            return _columns()
        if args.command == "outputs":
            result = cycle.outputs(settings)
        elif args.command in ("export", "measure"):
            store = open_store(settings)
            day = args.cycle_date or _latest_cycle(store)
            result = getattr(cycle, args.command)(store, settings, day)
        else:
            result = getattr(cycle, args.command)(open_store(settings), settings)
    except (SettingsError, ProgramConfigError, ExpressionError, WarehouseNotReady) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1, default=str))
    return 0
