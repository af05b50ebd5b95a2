"""``python -m privacy <command>``: personal data, by hand (the ``erase_members`` DAG calls the same).

erase    --member-id ID [ID ...]   remove members from the lake, the warehouse, scores and
                                   exports, and keep the next runs from bringing them back
grants                             apply the PostgreSQL access grants (analyst, marketer,
                                   pipeline); dbt also applies them after every command
scan                               look for the sample sources' emails and phone numbers in the
                                   marts, task logs, MLflow, lake manifests and exports

Output names places and counts, never an id, an email or a phone number.
"""

from __future__ import annotations

import argparse
import json
import sys


def _erase(settings, args) -> int:
    from privacy.erase import erase_members

    postgres = {"yes": True, "no": False, "auto": None}[args.postgres]
    report = erase_members(settings, args.member_ids, postgres=postgres)
    print(json.dumps(report.as_dict(), indent=2))
    return 0


def _grants(settings) -> int:
    from warehouse import dbt_runner

    if settings.warehouse_target != "postgres":
        print("CX_WAREHOUSE_TARGET is not postgres: DuckDB has no roles, nothing to grant")
        return 0
    dbt_runner.invoke(["run-operation", "apply_access_grants"], settings, target="postgres")
    print("access grants applied (cx_analyst, cx_marketer, cx_pipeline)")
    return 0


def _scan(settings, args) -> int:
    from privacy.scan import scan_deployment

    findings = scan_deployment(settings, airflow_home=args.airflow_home)
    for place, count in sorted(findings.checked.items()):
        print(f"checked {place}: {count}")
    for place, count in sorted(findings.hits.items()):
        print(f"FOUND   {place}: {count} value(s) with a sample email or phone number")
    print("no personal data found" if not findings.hits else "personal data found")
    return 0 if not findings.hits else 1


def main(argv: list[str] | None = None) -> int:
    from config import SettingsError, load_settings

    parser = argparse.ArgumentParser(
        prog="python -m privacy",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    erase = commands.add_parser("erase", help="erase members everywhere")
    erase.add_argument(
        "--member-id",
        dest="member_ids",
        nargs="+",
        action="extend",
        required=True,
        metavar="ID",
        help="a loyalty member id (repeatable)",
    )
    erase.add_argument(
        "--postgres",
        choices=("auto", "yes", "no"),
        default="auto",
        help="erase from PostgreSQL too (auto: when CX_WAREHOUSE_TARGET=postgres)",
    )
    commands.add_parser("grants", help="apply the PostgreSQL access grants")
    scan = commands.add_parser("scan", help="scan for the sample's emails and phone numbers")
    scan.add_argument("--airflow-home", default=None, help="default: $AIRFLOW_HOME")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "erase":
            return _erase(settings, args)
        if args.command == "grants":
            return _grants(settings)
        return _scan(settings, args)
    except (SettingsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
