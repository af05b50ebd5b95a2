"""Only the store opens the warehouse (issue 24): no module outside ``warehouse/store.py`` opens a
DuckDB file or a PostgreSQL connection. An in-memory DuckDB (no database argument) is a tool for
files and frames, not the warehouse, and is allowed anywhere; so are the sources' own databases,
which ingestion reads."""

from __future__ import annotations

import ast
from pathlib import Path

from config.settings import REPO_ROOT

PACKAGES = ("bench", "config", "dags", "ingestion", "ml", "pipeline", "privacy", "programs")
PACKAGES += ("sample_data", "warehouse")

# Where else a connection may be opened, and why it is not the warehouse's door.
ALLOWED = {
    "warehouse/store.py": "the store itself",
    "warehouse/publish.py": "the store's publish verb: copies the DuckDB file for analysts",
    "bench/run.py": "the ceiling runs the compiled SQL in a scratch database of its own",
    "bench/publish.py": "times file-level copies of a bench warehouse, the store's own verb's rivals",
    "ingestion/readers.py": "the loyalty platform's database, a source",
}
POSTGRES_CONNECTS = {("psycopg2", "connect"), ("psycopg", "connect"), ("dbapi", "connect")}


def _connections(path: Path) -> list[tuple[int, str]]:
    """Lines where ``path`` opens a DuckDB file or a PostgreSQL connection."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
        call = (name, node.func.attr)
        if call == ("duckdb", "connect"):
            database = node.args[:1] + [k.value for k in node.keywords if k.arg == "database"]
            if database and not (
                isinstance(database[0], ast.Constant) and database[0].value == ":memory:"
            ):
                found.append((node.lineno, "duckdb.connect(<file>)"))
        elif call in POSTGRES_CONNECTS:
            found.append((node.lineno, f"{name}.connect"))
    return found


def test_only_the_store_opens_warehouse_connections():
    opened = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT).as_posix()
            if relative not in ALLOWED and (lines := _connections(path)):
                opened[relative] = lines
    assert opened == {}, (
        f"open the warehouse through warehouse.store (open_store(settings)) instead: {opened}"
    )


def test_the_scan_sees_a_connection(tmp_path):
    """The scan is not blind: each form it must catch, caught."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import duckdb, psycopg2\n"
        "from adbc_driver_postgresql import dbapi\n"
        "duckdb.connect('cx.duckdb', read_only=True)\n"
        "duckdb.connect(database=path)\n"
        "duckdb.connect()\n"
        "duckdb.connect(config={'enable_external_access': False})\n"
        "psycopg2.connect(**params)\n"
        "dbapi.connect(uri)\n"
    )
    assert [line for line, _ in _connections(sample)] == [3, 4, 7, 8]
