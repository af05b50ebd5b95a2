"""Exports for campaign tools: one CSV and one Parquet file per program per cycle, and a manifest.

Layout under ``CX_EXPORTS_DIR`` (default ``<data>/exports``)::

    latest -> 2026-06-30                     the newest cycle
    2026-06-30 -> .builds/2026-06-30.<hash>  one cycle: <program>.csv, <program>.parquet,
                                             manifest.json
    .builds/                                 the files themselves, named by their content

A cycle is written whole into a temporary folder, moved into ``.builds`` under a name taken from
its content, and only then do ``<cycle_date>`` and ``latest`` switch to it (a symlink swapped with
``os.replace``), so a reader sees the previous cycle or the new one, never half of one. The files
hold no wall-clock time and rows are sorted by member id, so rerunning a cycle on the same
warehouse gives the same bytes (and the same build folder).

Only treatment members are exported; an email only for members who opted in to marketing; a
phone number in a service program (``opt_in_required: false``: a follow-up of the member's own
experience, as the cases are) or for members who opted in; and a ``channel`` column says which to
use. These rules are checked again on the finished frame before anything is written.

The files hold names and emails: a build is readable by its owner only (files 0400, the folder
0700), or also by the group ``CX_PERSONAL_FILE_GROUP`` names (0440, 0750); never by everyone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path

import pandas as pd

from privacy import personal_files

EXPORT_COLUMNS: dict[str, str] = {
    "member_id": "the loyalty member id (the key in the loyalty platform)",
    "first_name": "first name, for the greeting",
    "email": "email address, only for members who opted in to marketing; empty otherwise",
    "segment": (
        "predicted engagement segment: Engaged, Swing or Disengaged; empty when the deployment "
        "has no segment model (no survey responses to learn segments from)"
    ),
    "risk_band": "churn risk in the next 90 days: high (50%+), medium (25-50%) or low",
    "reason_1": (
        "the strongest reason, in plain words (may be empty): behind the risk, or, in a program "
        "with reasons: strengths (the advocates), what makes the member a good relationship"
    ),
    "reason_2": "the second reason (may be empty)",
    "reason_3": "the third reason (may be empty)",
    "phone": (
        "phone number (E.164) where the member allows the contact: in a service program "
        "(opt_in_required: false) for every member with a valid number, in a marketing program "
        "only for members who opted in; empty otherwise"
    ),
    "channel": (
        "how to reach the member: email when an email is exported, else phone when a phone is, "
        "else none (the manifest and the report count them)"
    ),
}
CHANNELS = ("email", "phone", "none")
BUILDS = ".builds"
LATEST = "latest"
_CYCLE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}$")

EXPORT_SQL = """
select
    assignments.program,
    assignments.member_id,
    contacts.first_name,
    case when coalesce(contacts.marketing_opt_in, false) then contacts.email end as email,
    case
        when coalesce(contacts.marketing_opt_in, false) or not cycles.opt_in_required
            then contacts.phone_e164
    end as phone,
    scores.predicted_segment as segment,
    scores.risk_band,
    scores.reason_1,
    scores.reason_2,
    scores.reason_3,
    coalesce(contacts.marketing_opt_in, false) as marketing_opt_in,
    cycles.opt_in_required,
    assignments.assignment_group
from program_assignments as assignments
inner join program_cycles as cycles
    on assignments.program = cycles.program and assignments.cycle_date = cycles.cycle_date
inner join ml_scores as scores
    on assignments.member_id = scores.member_id
    and assignments.cycle_date = scores.score_date
    and cycles.model_version = scores.model_version
left join restricted.member_contacts as contacts
    on assignments.member_id = contacts.member_id
where assignments.cycle_date = $1
order by assignments.program, assignments.member_id
"""


class ExportError(RuntimeError):
    """An export would break a promise (a control member, an email without opt-in)."""


def read_rows(store, on: date) -> pd.DataFrame:
    """Every assigned member of cycle ``on`` with the export columns, opt-in and group (the
    contacts come from ``restricted.member_contacts``, on either engine)."""
    return store.read(EXPORT_SQL, [on])


def channels(email: pd.Series, phone: pd.Series) -> pd.Series:
    """Which way to reach each member: email when there is one, else phone, else none."""
    chosen = pd.Series("none", index=email.index, dtype=object)
    chosen[phone.notna()] = "phone"
    chosen[email.notna()] = "email"
    return chosen


def strength_reasons(store, on: date, program: str) -> pd.DataFrame:
    """``member_id, reason_1..3``: the strengths (``ml.reasons.top_strengths``) of the treated
    members of ``program`` in cycle ``on``, from customer_360 as of the cycle date (empty when
    customer_360 has moved on to a later date: the reasons are then left empty, not guessed)."""
    from ml.reasons import top_strengths

    features = store.read(
        "select * from customer_360 where as_of_date = $1 and member_id in ("
        "select member_id from program_assignments where cycle_date = $1 and program = $2) "
        "order by member_id",
        [on, program],
    )
    found = top_strengths(features)
    return pd.DataFrame(
        {
            "member_id": features["member_id"].astype(object),
            **{f"reason_{i + 1}": found[:, i] for i in range(found.shape[1])},
        }
    )


def program_frame(
    rows: pd.DataFrame, program: str, reasons: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The export of one program: its treatment members, only the export columns, by member id.

    ``reasons`` (``member_id, reason_1..3``), when given, replaces the scores' risk reasons (a
    program with ``reasons: strengths``). Raises ``ExportError`` if a control member, an email
    of a member without opt-in or a marketing phone without opt-in is left.
    """
    mine = rows[rows["program"] == program]
    treated = mine[mine["assignment_group"] == "treatment"]
    if reasons is not None:
        kept = [c for c in treated.columns if not c.startswith("reason_")]
        treated = treated[kept].merge(reasons, on="member_id", how="left")
    out = treated.sort_values("member_id", ignore_index=True)
    out["channel"] = channels(out["email"], out["phone"])
    check(out, controls=set(mine.loc[mine["assignment_group"] == "control", "member_id"]))
    return out[list(EXPORT_COLUMNS)].astype(object).where(out[list(EXPORT_COLUMNS)].notna(), None)


def check(frame: pd.DataFrame, controls: set[str]) -> None:
    """The export's two promises, checked on the finished frame."""
    leaked = sorted(set(frame["member_id"]) & controls)
    if leaked:
        raise ExportError(f"{len(leaked)} control members would be exported, e.g. {leaked[0]}")
    if "marketing_opt_in" in frame:
        emailed = frame["email"].notna() & ~frame["marketing_opt_in"].astype(bool)
        if emailed.any():
            raise ExportError(f"{int(emailed.sum())} emails of members without opt-in")
        if "phone" in frame and "opt_in_required" in frame:
            called = (
                frame["phone"].notna()
                & frame["opt_in_required"].astype(bool)
                & ~frame["marketing_opt_in"].astype(bool)
            )
            if called.any():
                raise ExportError(
                    f"{int(called.sum())} phone numbers of members without opt-in in a marketing "
                    "program"
                )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """UTF-8, comma-separated, a header, ``\\n`` line ends, empty for missing: what tools import."""
    frame.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Every column as text, no pandas index, no timestamps: the same rows give the same bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([pa.field(name, pa.string()) for name in frame.columns])
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    table = table.replace_schema_metadata(None)
    pq.write_table(table, path, compression="zstd", store_schema=False)


def file_entry(path: Path, fmt: str, rows: int) -> dict:
    return {
        "path": path.name,
        "format": fmt,
        "rows": rows,
        "bytes": path.stat().st_size,
        "sha256": sha256(path),
    }


def _swap_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (a new link renamed over the old one)."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(target)
    os.replace(temporary, link)


def write_cycle(
    exports_dir: Path,
    on: date,
    frames: Mapping[str, pd.DataFrame],
    manifest: dict,
    group: str | None = None,
) -> Path:
    """Write one cycle's files and manifest and publish them atomically; returns the cycle path.

    ``frames`` maps program name to its export frame; ``manifest`` holds the cycle's facts, to
    which the file entries are added under ``programs[].files``. ``group`` (the setting
    ``personal_file_group``) may read the files as well as their owner.
    """

    def fill(work: Path) -> str:
        files: dict[str, list[dict]] = {}
        for program, frame in frames.items():
            csv_path, parquet_path = work / f"{program}.csv", work / f"{program}.parquet"
            write_csv(frame, csv_path)
            write_parquet(frame, parquet_path)
            files[program] = [
                file_entry(csv_path, "csv", len(frame)),
                file_entry(parquet_path, "parquet", len(frame)),
            ]
        document = {
            **manifest,
            "programs": [
                {**entry, "files": files.get(entry["name"], [])} for entry in manifest["programs"]
            ],
        }
        return write_manifest(work, document)

    return publish_build(exports_dir, on, fill, group)


def write_manifest(work: Path, document: dict) -> str:
    """``manifest.json`` in ``work`` (sorted keys, no wall-clock time); returns its text."""
    text = json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"
    (work / "manifest.json").write_text(text, encoding="utf-8")
    return text


def publish_build(
    root: Path, on: date, fill: Callable[[Path], str], group: str | None = None
) -> Path:
    """Publish the files ``fill`` writes as ``<root>/<on>`` and ``<root>/latest``, whole or not
    at all; returns the ``<root>/<on>`` path.

    ``fill(work)`` writes the files into an empty temporary folder and returns a text (the
    manifest) whose hash names the build, so the same content gives the same build folder.
    The exports and the CX team's case files (``programs/cases.py``) are published this way.
    """
    builds = root / BUILDS
    builds.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=builds, prefix=f".tmp-{on.isoformat()}-"))
    try:
        text = fill(work)
        build = builds / f"{on.isoformat()}.{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        if build.exists():  # the same content was published before: keep it as it is
            shutil.rmtree(work)
        else:
            protect_build(work, group)
            os.replace(work, build)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    cycle_link = root / on.isoformat()
    _swap_symlink(cycle_link, f"{BUILDS}/{build.name}")
    for stale in builds.glob(f"{on.isoformat()}.*"):
        if stale != build:
            _remove_build(stale)
    newest = max(p.name for p in root.iterdir() if _CYCLE_NAME.match(p.name))
    _swap_symlink(root / LATEST, newest)
    # Every build, not only this one: builds published before (by older code, or under another
    # group) get the modes the setting asks for now.
    for published in builds.iterdir():
        if published.is_dir() and not published.name.startswith("."):
            try:
                protect_build(published, group)
            except FileNotFoundError:  # an erasure replaced it meanwhile, protected
                continue
    return cycle_link


def protect_build(build: Path, group: str | None) -> None:
    """A build's files read-only for their owner (and ``group``), the folder closed to others."""
    for path in build.iterdir():
        personal_files.protect(path, group, read_only=True)
    personal_files.protect(build, group)


def _remove_build(path: Path) -> None:
    path.chmod(0o700)
    shutil.rmtree(path, ignore_errors=True)


def read_manifest(exports_dir: Path, cycle: str = LATEST) -> dict | None:
    """The manifest of a cycle (default the latest), or None when nothing was exported yet."""
    path = exports_dir / cycle / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None
