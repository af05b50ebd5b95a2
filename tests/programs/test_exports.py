"""Export files: only treated members, email only with opt-in, same bytes on rerun, atomic
publication with a latest pointer that follows the newest cycle."""

from __future__ import annotations

import grp
import json
import os
import stat
from datetime import date

import pandas as pd
import pytest

from programs import exports
from programs.exports import EXPORT_COLUMNS, ExportError


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "program": ["win_back"] * 4 + ["nurture"],
            "member_id": ["M3", "M1", "M2", "M4", "M5"],
            "first_name": ["Cy", "Ann", "Bo", "Di", "Ed"],
            "email": ["cy@x.org", "ann@x.org", None, "di@x.org", "ed@x.org"],
            "segment": ["Disengaged"] * 4 + ["Swing"],
            "risk_band": ["high"] * 4 + ["low"],
            "reason_1": ["no purchase in 90 days, or more", None, "x", "y", "z"],
            "reason_2": None,
            "reason_3": None,
            "phone": ["+15550003", "+15550001", None, "+15550004", "+15550005"],
            "marketing_opt_in": [True, True, False, True, True],
            "opt_in_required": True,
            "assignment_group": ["treatment", "treatment", "treatment", "control", "treatment"],
        }
    )


def _manifest(on: date, frames) -> dict:
    return {
        "cycle_date": on.isoformat(),
        "programs": [{"name": n, "rows": len(f)} for n, f in frames.items()],
    }


def test_program_frame_keeps_treated_members_and_only_the_export_columns():
    frame = exports.program_frame(_rows(), "win_back")
    assert list(frame.columns) == list(EXPORT_COLUMNS)
    assert frame["member_id"].tolist() == ["M1", "M2", "M3"]  # sorted; M4 is control
    assert frame["email"].tolist() == ["ann@x.org", None, "cy@x.org"]


def test_a_control_member_or_an_email_without_opt_in_stops_the_export():
    with pytest.raises(ExportError, match="control members would be exported"):
        exports.check(pd.DataFrame({"member_id": ["M4"], "email": [None]}), controls={"M4"})
    leaking = _rows()
    leaking.loc[leaking["member_id"] == "M2", "email"] = "bo@x.org"  # M2 did not opt in
    with pytest.raises(ExportError, match="emails of members without opt-in"):
        exports.program_frame(leaking, "win_back")


def test_a_rerun_writes_the_same_bytes_and_the_same_folder(tmp_path):
    on = date(2026, 6, 30)
    frames = {p: exports.program_frame(_rows(), p) for p in ("win_back", "nurture")}
    first = exports.write_cycle(tmp_path, on, frames, _manifest(on, frames))
    snapshot = {p.name: p.read_bytes() for p in first.iterdir()}
    target = first.resolve()
    again = exports.write_cycle(tmp_path, on, frames, _manifest(on, frames))
    assert again.resolve() == target
    assert {p.name: p.read_bytes() for p in again.iterdir()} == snapshot
    assert sorted(snapshot) == [
        "manifest.json", "nurture.csv", "nurture.parquet", "win_back.csv", "win_back.parquet",
    ]  # fmt: skip
    csv = snapshot["win_back.csv"].decode()
    assert csv.splitlines()[0] == ",".join(EXPORT_COLUMNS)
    assert '"no purchase in 90 days, or more"' in csv  # quoted, so the comma is data
    manifest = json.loads(snapshot["manifest.json"])
    parquet = next(f for f in manifest["programs"][0]["files"] if f["format"] == "parquet")
    assert parquet["rows"] == 3 and len(parquet["sha256"]) == 64
    assert pd.read_parquet(first / "win_back.parquet")["member_id"].tolist() == ["M1", "M2", "M3"]
    assert len(list((tmp_path / exports.BUILDS).iterdir())) == 1  # no temporary folder left


def test_latest_follows_the_newest_cycle_and_a_changed_cycle_replaces_its_folder(tmp_path):
    frames = {"win_back": exports.program_frame(_rows(), "win_back")}
    june, may = date(2026, 6, 30), date(2026, 5, 31)
    exports.write_cycle(tmp_path, june, frames, _manifest(june, frames))
    exports.write_cycle(tmp_path, may, frames, _manifest(may, frames))  # an older cycle rerun
    assert (tmp_path / "latest").resolve() == (tmp_path / "2026-06-30").resolve()
    old_build = (tmp_path / "2026-06-30").resolve()
    fewer = {"win_back": frames["win_back"].head(1)}
    exports.write_cycle(tmp_path, june, fewer, _manifest(june, fewer))
    assert (tmp_path / "2026-06-30").resolve() != old_build
    assert not old_build.exists()  # the replaced build is cleaned up
    assert len(pd.read_csv(tmp_path / "latest" / "win_back.csv")) == 1
    assert (tmp_path / "latest").is_symlink() and (tmp_path / "2026-06-30").is_symlink()


def _modes(exports_dir) -> dict[str, int]:
    """Mode of every build folder and file under ``exports_dir`` (by path under .builds)."""
    builds = exports_dir / exports.BUILDS
    return {
        str(path.relative_to(builds)): stat.S_IMODE(path.stat().st_mode)
        for build in builds.iterdir()
        for path in (build, *build.iterdir())
    }


def test_a_cycle_is_its_owners_alone_or_also_its_groups(tmp_path):
    frames = {"win_back": exports.program_frame(_rows(), "win_back")}
    june, may = date(2026, 6, 30), date(2026, 5, 31)
    exports.write_cycle(tmp_path, june, frames, _manifest(june, frames))
    modes = _modes(tmp_path)
    assert len(modes) == 4  # the build and its csv, parquet and manifest
    assert {mode for name, mode in modes.items() if "/" in name} == {0o400}
    assert {mode for name, mode in modes.items() if "/" not in name} == {0o700}
    # With a group (the user's own, which it may give as root or not): 0440 and 0750, and a
    # build published before under other modes is brought in line.
    group = grp.getgrgid(os.getgid()).gr_name
    exports.write_cycle(tmp_path, may, frames, _manifest(may, frames), group=group)
    modes = _modes(tmp_path)
    assert len(modes) == 8
    assert {mode for name, mode in modes.items() if "/" in name} == {0o440}
    assert {mode for name, mode in modes.items() if "/" not in name} == {0o750}
