"""Issue 6, faults: the programs' export writer (``python -m programs export`` in a child process),
SIGKILLed in the middle of writing a cycle, leaves ``latest`` and every cycle byte for byte as
they were (a new cycle may appear only whole); the next run writes what an undisturbed run does.

The warehouse is the programs tests' simulated one (tests/programs/program_warehouse.py): cycle
2026-04-30 exported, cycle 2026-06-30 assigned and not yet exported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
from kill_points import run_until_killed
from reliability_steps import copy_state

from config import load_settings
from config.settings import REPO_ROOT

pytestmark = pytest.mark.integration


def _program_warehouse():
    """The programs tests' warehouse builder (a module of theirs, not a package)."""
    if "program_warehouse" not in sys.modules:
        path = REPO_ROOT / "tests" / "programs" / "program_warehouse.py"
        spec = importlib.util.spec_from_file_location("program_warehouse", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["program_warehouse"] = module
        spec.loader.exec_module(module)
    return sys.modules["program_warehouse"]


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CX_")}
    return {**env, "CX_DATA_DIR": str(root / "data")}


def _settings(root: Path):
    return load_settings(_env(root))


def _store(root: Path):
    from warehouse.store import open_store

    return open_store(_settings(root))


FIRST = _program_warehouse().FIRST_CYCLE.isoformat()
SECOND = _program_warehouse().SECOND_CYCLE.isoformat()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    from programs import cycle

    builder = _program_warehouse()
    root = tmp_path_factory.mktemp("exports") / "state"
    settings = _settings(root)
    settings.duckdb_path.parent.mkdir(parents=True)
    store = _store(root)
    simulation = builder.build(store, builder.FIRST_CYCLE)
    assert cycle.assign(store, settings)["cycle_date"] == FIRST
    cycle.export(store, settings, FIRST)
    builder.advance(store, simulation, builder.SECOND_CYCLE, boosted=("win_back",))
    assert cycle.assign(store, settings)["cycle_date"] == SECOND
    return root


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _view(root: Path) -> dict[str, tuple[str | None, dict[str, str]]]:
    """What a campaign tool sees: each visible entry of the exports folder, where it points and
    the checksum of every file in it."""
    exports = _settings(root).exports_dir
    return {
        entry.name: (
            os.readlink(entry) if entry.is_symlink() else None,
            {path.name: _sha256(path) for path in sorted(entry.iterdir())},
        )
        for entry in sorted(exports.iterdir())
        if not entry.name.startswith(".")
    }


def _rename_contacts(root: Path) -> None:
    """A change that alters the 2026-04-30 export when it is run again: new first names."""
    import duckdb

    with duckdb.connect(str(_settings(root).duckdb_path)) as con:
        con.execute("update restricted.member_contacts set first_name = upper(first_name)")


def _builds(root: Path, pattern: str) -> list[Path]:
    return sorted((_settings(root).exports_dir / ".builds").glob(pattern))


# What is half done when the process dies: (cycle, hook, whether the cycle's rows changed, how
# far the writer got: "staged" files in its work folder, "built" its folder moved into .builds,
# "dated" the cycle's own pointer switched to it).
KILLS = {
    "new cycle, its first program's files written": (
        SECOND,
        ["--after-call", "programs.exports:write_parquet"],
        False,
        "staged",
    ),
    "new cycle, its folder moved into .builds, no pointer switched": (
        SECOND,
        ["--after-call", "os:replace"],
        False,
        "built",
    ),
    "new cycle, its dated pointer switched, latest not yet": (
        SECOND,
        ["--after-call", "programs.exports:_swap_symlink"],
        False,
        "dated",
    ),
    "changed cycle rerun, its new folder in .builds, no pointer switched": (
        FIRST,
        ["--after-call", "os:replace"],
        True,
        "built",
    ),
}


@pytest.mark.parametrize("moment", list(KILLS))
def test_an_export_killed_mid_write_leaves_the_previous_exports(moment, exported, tmp_path):
    from programs import cycle

    day, hook, changed, reached = KILLS[moment]
    state = copy_state(exported, tmp_path / "state")
    reference = copy_state(exported, tmp_path / "reference")
    if changed:
        _rename_contacts(state)
        _rename_contacts(reference)
    cycle.export(_store(reference), _settings(reference), day)  # undisturbed
    expected = _view(reference)
    before = _view(state)
    assert expected != before

    command = ["programs", "export", "--cycle-date", day]
    run_until_killed(hook, command, _env(state), tmp_path / "killed-export.log")
    after = _view(state)
    assert after["latest"] == before["latest"]
    for name, seen in after.items():
        # Each entry is as it was, or (only a new cycle's) whole as the undisturbed run wrote it.
        assert seen == before.get(name) or (name not in before and seen == expected[name]), name
    assert set(before) <= set(after)
    # Where the process died (so that the test tries what it says it tries):
    if reached == "staged":
        assert len(_builds(state, f".tmp-{day}-*/*.parquet")) == 1
    elif reached == "built":
        made = [p.name for p in _builds(state, f"{day}.*") if (p / "manifest.json").exists()]
        assert Path(expected[day][0]).name in made
        assert after.get(day) == before.get(day)
    else:
        assert after[day] == expected[day]

    cycle.export(_store(state), _settings(state), day)  # the next run
    assert _view(state) == expected
    latest = _settings(state).exports_dir / "latest"
    for program in json.loads((latest / "manifest.json").read_text())["programs"]:
        for entry in program["files"]:
            assert _sha256(latest / entry["path"]) == entry["sha256"], entry["path"]
