"""Erasure in the export files, by their writer: the public functions ``privacy`` calls.

``erase(exports_dir, matcher, group)`` rewrites every published cycle that holds an erased
member as ``programs.exports`` writes a cycle: new files without the member's rows, the
manifest's rows, sizes and checksums updated and the rows erased counted, a new build named by
its content, the cycle's symlink swapped to it, and the old build removed. A build no cycle
points at any more only holds old data: it is removed. ``remaining(exports_dir, matcher)``
counts what is left, for ``privacy.verify``.

It reads the layout (``BUILDS``, the manifest's fields) and the writers from
``programs.exports`` itself, so a change there changes erasure with it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from privacy import suppression
from privacy.suppression import Matcher
from programs.exports import (
    BUILDS,
    _remove_build,
    _swap_symlink,
    protect_build,
    sha256,
    write_csv,
    write_parquet,
)

MANIFEST = "manifest.json"


def erase(exports_dir: Path, matcher: Matcher, group: str | None = None) -> dict[str, int]:
    """Rewrite every published cycle holding an erased member; remove stale builds that hold
    one. Returns the rows removed per place (``exports:<cycle>/<program>``)."""
    removed: dict[str, int] = {}
    builds = exports_dir / BUILDS
    if not builds.is_dir():
        return removed
    referenced = {}
    for link in sorted(exports_dir.iterdir()):
        if (
            link.is_symlink()
            and link.name != "latest"
            and link.resolve().parent == builds.resolve()
        ):
            referenced[link.resolve().name] = link
    for build in _builds(exports_dir):
        holds = _rows_to_drop(build, matcher)
        if not any(holds.values()):
            continue
        link = referenced.get(build.name)
        if link is None:  # no cycle points at it any more: it only holds old data
            _discard(build)
            removed[f"exports:{build.name} (stale build removed)"] = sum(holds.values())
            continue
        new_build = _rewrite_build(build, holds, matcher, group)
        _swap_symlink(link, f"{BUILDS}/{new_build.name}")
        if new_build != build:
            _discard(build)
        for program, rows in holds.items():
            if rows:
                removed[f"exports:{link.name}/{program}"] = rows
    return removed


def remaining(exports_dir: Path, matcher: Matcher) -> dict[str, int]:
    """Rows of erased members left in any build, per build (only builds with rows)."""
    found = {}
    for build in _builds(exports_dir, include_hidden=True):
        rows = sum(_rows_to_drop(build, matcher).values())
        if rows:
            found[f"exports:{build.name}"] = rows
    return found


def _builds(exports_dir: Path, include_hidden: bool = False) -> list[Path]:
    builds = exports_dir / BUILDS
    if not builds.is_dir():
        return []
    return sorted(
        p for p in builds.iterdir() if p.is_dir() and (include_hidden or not p.name.startswith("."))
    )


def _mask(frame: pd.DataFrame, matcher: Matcher) -> pd.Series:
    mask = pd.Series(False, index=frame.index)
    for column in frame.columns:
        role = suppression.column_role(column)
        if role is not None:
            mask |= frame[column].map(lambda v, r=role: matcher.matches(r, v) if v else False)
    return mask


def _read(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas()


def _rows_to_drop(build: Path, matcher: Matcher) -> dict[str, int]:
    counts = {}
    for path in sorted(build.glob("*.parquet")):
        counts[path.stem] = int(_mask(_read(path), matcher).sum())
    # A CSV without its Parquet twin is read as text.
    for path in sorted(build.glob("*.csv")):
        if path.stem not in counts:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            counts[path.stem] = int(_mask(frame, matcher).sum())
    return counts


def _rewrite_program(build: Path, work: Path, program: str, matcher: Matcher) -> dict:
    """Rewrite one program's Parquet and CSV in ``work`` without the erased members' rows;
    return the new manifest entries by file name."""
    frame = _read(build / f"{program}.parquet")
    kept = frame[~_mask(frame, matcher)].reset_index(drop=True)
    kept = kept.astype(object).where(kept.notna(), None)
    entries = {}
    for name, writer in ((f"{program}.parquet", write_parquet), (f"{program}.csv", write_csv)):
        if (build / name).exists():
            (work / name).chmod(0o644)
            writer(kept, work / name)
            entries[name] = {
                "rows": len(kept),
                "bytes": (work / name).stat().st_size,
                "sha256": sha256(work / name),
            }
    return entries


def _rewritten_manifest(path: Path, entries: dict, holds: dict[str, int]) -> str:
    document = json.loads(path.read_text(encoding="utf-8"))
    for program in document.get("programs", []):
        for entry in program.get("files", []):
            entry.update(entries.get(entry.get("path"), {}))
        erased = holds.get(program.get("name"), 0)
        if erased:
            program["rows_erased"] = program.get("rows_erased", 0) + erased
    return json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"


def _rewrite_build(build: Path, holds: dict[str, int], matcher: Matcher, group: str | None) -> Path:
    """A new build folder with the programs' files rewritten and the manifest updated, named
    by its manifest's content as ``programs.exports.write_cycle`` names builds."""
    work = Path(tempfile.mkdtemp(dir=build.parent, prefix=".tmp-erase-"))
    try:
        for path in sorted(build.iterdir()):
            if path.is_file():
                shutil.copy2(path, work / path.name)
        entries = {}
        for program, rows in holds.items():
            if rows:
                entries.update(_rewrite_program(build, work, program, matcher))
        manifest_path = work / MANIFEST
        text = _rewritten_manifest(manifest_path, entries, holds)
        manifest_path.chmod(0o644)
        manifest_path.write_text(text, encoding="utf-8")
        cycle = build.name.split(".")[0]
        target = build.parent / f"{cycle}.{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        if not target.exists():
            protect_build(work, group)
            work.replace(target)
        return target
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _discard(path: Path) -> None:
    # Its files writable again so it can be removed (the folder is the owner's alone meanwhile).
    for child in path.iterdir():
        child.chmod(0o600)
    _remove_build(path)
