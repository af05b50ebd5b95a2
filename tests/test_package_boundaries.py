"""A package's private names (a leading underscore) stay inside it: no module imports one from
another package, nor reaches one through an imported module (``erase._lake_files``).

Tests under ``tests/<package>/`` are held to the same rule, except that they may use the
private names of the package they test. The modules at the top of ``tests/`` are harnesses of
the whole stack (``real_stack.py`` watches the processes ``pipeline.stack`` starts) and are left
out.
"""

from __future__ import annotations

import ast
from pathlib import Path

from config.settings import REPO_ROOT

# Top-level folders of code: the packages, the DAGs and the scripts that import them.
CODE = ("dags", "scripts", "bench")


def _packages() -> set[str]:
    return {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _crossings(
    path: Path, home: str | None, packages: set[str], root: Path = REPO_ROOT
) -> list[str]:
    """``<file>:<line> <module>.<name>`` for each private name of another package ``path``
    uses (``home`` is the package the file belongs to, or may use the privates of)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = path.relative_to(root)

    def foreign(module: str) -> bool:
        top = module.split(".")[0]
        return top in packages and top != home

    found, aliases = _imports(tree, foreign)
    found += _attributes(tree, aliases)
    return [f"{where}:{line} {name}" for line, name in found]


def _imports(tree: ast.AST, foreign) -> tuple[list[tuple[int, str]], dict[str, str]]:
    """Private names imported from other packages, and the local names that stand for another
    package's modules (``from privacy import erase``, ``import warehouse.tables as tables``)."""
    found: list[tuple[int, str]] = []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not foreign(node.module):
                continue
            if any(_private(part) for part in node.module.split(".")):
                found.append((node.lineno, node.module))
            for alias in node.names:
                if _private(alias.name):
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
                else:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if not foreign(alias.name):
                    continue
                if any(_private(part) for part in alias.name.split(".")):
                    found.append((node.lineno, alias.name))
                top = alias.name.split(".")[0]
                aliases[alias.asname or top] = alias.name if alias.asname else top
    return found, aliases


def _attributes(tree: ast.AST, aliases: dict[str, str]) -> list[tuple[int, str]]:
    """Private attributes reached through another package's module (``publish._copy_table``)."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _private(node.attr)):
            continue
        base, dotted = node.value, []
        while isinstance(base, ast.Attribute):
            dotted.append(base.attr)
            base = base.value
        if isinstance(base, ast.Name) and base.id in aliases:
            module = ".".join([aliases[base.id], *reversed(dotted)])
            found.append((node.lineno, f"{module}.{node.attr}"))
    return found


def _files() -> list[tuple[Path, str | None]]:
    packages = _packages()
    files = []
    for top in sorted(packages | set(CODE)):
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            files.append((path, top if top in packages else None))
    for path in sorted((REPO_ROOT / "tests").glob("*/**/*.py")):
        home = path.relative_to(REPO_ROOT / "tests").parts[0]
        files.append((path, home if home in packages else None))
    return files


def test_no_module_uses_another_packages_private_names():
    packages = _packages()
    assert {"privacy", "warehouse", "ingestion", "programs", "ml"} <= packages
    crossings = [c for path, home in _files() for c in _crossings(path, home, packages)]
    assert crossings == [], (
        "private names used across packages (make them public, or ask the owner for a public "
        "function):\n" + "\n".join(crossings)
    )


def test_the_check_sees_each_way_a_private_name_is_reached(tmp_path):
    source = tmp_path / "privacy" / "verify.py"
    source.parent.mkdir()
    source.write_text(
        "from warehouse.store import _postgres_sql, open_store\n"
        "from warehouse import publish\n"
        "import warehouse.tables as registry\n"
        "from privacy.erase import _own_package_is_fine\n"
        "publish._copy_table(None)\n"
        "registry._table('x', {}, {})\n"
        "open_store(None)\n"
    )
    packages = {"privacy", "warehouse"}
    crossings = [c.split(" ", 1)[1] for c in _crossings(source, "privacy", packages, tmp_path)]
    assert crossings == [
        "warehouse.store._postgres_sql",
        "warehouse.publish._copy_table",
        "warehouse.tables._table",
    ]
