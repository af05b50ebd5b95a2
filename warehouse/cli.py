"""``python -m warehouse build [--target duckdb|postgres] [--full-refresh]`` and friends."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from config import load_settings
from warehouse import dbt_runner


def build_warehouse(
    settings, target: str, full_refresh: bool = False, select=None, dbt_vars=None
) -> dbt_runner.DbtResult:
    """Enrich the lake (comment sentiment, keyed hashes of identifiers), load PostgreSQL's raw
    tables when needed, dbt build, publish (DuckDB)."""
    from warehouse.enrich import enrich_lake

    enrich_lake(settings)
    if target == "postgres":
        from warehouse.load_postgres import load_lake

        load_lake(settings.lake_dir)
    result = dbt_runner.build(
        settings, target=target, full_refresh=full_refresh, select=select, dbt_vars=dbt_vars
    )
    if target == "duckdb":
        from pipeline.warehouse_tasks import published_by_their_writers
        from warehouse.publish import publish_duckdb

        # Up to date by rows from the last copy; a full refresh makes a fresh copy.
        publish_duckdb(
            settings.duckdb_path, by_rows=not full_refresh, skip=published_by_their_writers()
        )
    return result


def serve_folder(folder: Path, port: int) -> None:
    """Serve a static folder on 127.0.0.1 until interrupted (the dbt docs site)."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"serving the dbt docs on http://127.0.0.1:{port}/ (Ctrl-C to stop)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warehouse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="enrich, load (postgres), dbt build, publish")
    build.add_argument("--target", choices=dbt_runner.TARGETS, default=None)
    build.add_argument("--full-refresh", action="store_true")
    build.add_argument("--select", nargs="+", default=None)
    build.add_argument(
        "--vars", default=None, help='dbt vars as JSON, e.g. \'{"as_of_date": "2025-01-31"}\''
    )
    commands.add_parser("parse", help="dbt parse; writes dbt_project/target/manifest.json")
    commands.add_parser(
        "enrich", help="score survey comments and hash identifiers into <lake>/enriched"
    )
    commands.add_parser("load-postgres", help="copy the raw lake into PostgreSQL schema raw")
    commands.add_parser(
        "publish", help="publish a fresh read-only copy of the DuckDB warehouse (every table)"
    )
    commands.add_parser(
        "freshness", help="dbt source freshness: how old the newest landed row of each source is"
    )
    docs = commands.add_parser("docs", help="dbt docs generate, then serve them on 127.0.0.1")
    docs.add_argument("--port", type=int, default=8580)
    docs.add_argument("--no-serve", action="store_true", help="generate only")
    args = parser.parse_args(argv)
    settings = load_settings()

    if args.command == "build":
        target = args.target or settings.warehouse_target
        dbt_vars = json.loads(args.vars) if args.vars else None
        result = build_warehouse(settings, target, args.full_refresh, args.select, dbt_vars)
        print(f"dbt build on {target}: ok in {result.seconds:.1f}s")
    elif args.command == "parse":
        print(dbt_runner.parse(settings))
    elif args.command == "enrich":
        from warehouse.enrich import main as enrich_main

        return enrich_main()
    elif args.command == "load-postgres":
        from warehouse.load_postgres import load_lake

        report = load_lake(settings.lake_dir)
        print(
            f"loaded {len(report.loaded)} partition files, {len(report.unchanged)} unchanged, "
            f"{len(report.removed)} removed"
        )
    elif args.command == "freshness":
        result = dbt_runner.source_freshness(settings)
        for node, status in sorted(result.node_statuses.items()):
            print(f"{status:<8} {node}")
        return 0 if result.success else 1
    elif args.command == "docs":
        site = dbt_runner.docs_generate(settings)
        print(f"dbt docs written to {site}")
        if not args.no_serve:
            serve_folder(site, args.port)
    elif args.command == "publish":
        from warehouse.publish import publish_duckdb

        print(publish_duckdb(settings.duckdb_path))
    return 0
