"""Two real cycles on a simulated warehouse (the first through ``cycle.run``, the second through
the ``run_programs`` task bodies), on DuckDB and on PostgreSQL; then the issue's promises are
checked on what they wrote."""

from __future__ import annotations

import grp
import hashlib
import json
import os
import stat
from dataclasses import replace

import pandas as pd
import pytest

# At collection, as test_no_segment_model.py does: by the time a test runs in the whole suite,
# `conftest` may name another folder's (tests/warehouse's).
from conftest import patch_warehouse
from program_warehouse import FIRST_CYCLE, SECOND_CYCLE

from programs.exports import BUILDS

pytestmark = pytest.mark.integration


def _query(cycles, sql, params=None) -> pd.DataFrame:
    return cycles.store.read(sql, params or [])


def _exported(exports_dir, cycle: str) -> pd.DataFrame:
    manifest = json.loads((exports_dir / cycle / "manifest.json").read_text())
    frames = [
        pd.read_csv(exports_dir / cycle / f"{p['name']}.csv", dtype=str).assign(program=p["name"])
        for p in manifest["programs"]
    ]
    return pd.concat(frames, ignore_index=True)


def test_assignments_hold_both_groups_in_every_program_and_cycle(two_cycles):
    groups = _query(
        two_cycles,
        "select cycle_date, program, assignment_group, count(*) as members "
        "from program_assignments group by cycle_date, program, assignment_group",
    )
    for day in (FIRST_CYCLE, SECOND_CYCLE):
        on_day = groups[pd.to_datetime(groups["cycle_date"]).dt.date == day]
        for program in ("win_back", "nurture", "advocates"):
            mine = on_day[on_day["program"] == program].set_index("assignment_group")["members"]
            assert set(mine.index) == {"treatment", "control"}, (day, program)
            share = mine["control"] / mine.sum()
            assert abs(share - 0.3) <= 0.5 / mine.sum() + 1e-9  # the exact share, rounded
    one_each = _query(
        two_cycles,
        "select count(*) as members from (select member_id, cycle_date from program_assignments "
        "group by member_id, cycle_date having count(*) > 1) as repeated",
    )
    assert one_each.iloc[0, 0] == 0  # one program per member per cycle


def test_exports_hold_no_control_member_and_no_email_without_opt_in(two_cycles, exports_dir):
    contacts = _query(
        two_cycles, "select member_id, marketing_opt_in from restricted.member_contacts"
    ).set_index("member_id")["marketing_opt_in"]
    for day in (FIRST_CYCLE, SECOND_CYCLE):
        exported = _exported(exports_dir, day.isoformat())
        controls = _query(
            two_cycles,
            "select member_id from program_assignments where cycle_date = $1 "
            "and assignment_group = 'control'",
            [day],
        )
        assert not set(exported["member_id"]) & set(controls["member_id"])
        with_email = exported[exported["email"].notna()]
        assert len(with_email) > 0
        assert with_email["member_id"].map(contacts).all()
        # Service recovery needs no opt-in: its members without one are there, without email.
        recovery = exported[exported["program"] == "service_recovery"]
        assert (~recovery["member_id"].map(contacts)).any()
        assert recovery.loc[~recovery["member_id"].map(contacts), "email"].isna().all()
        assert list(exported.columns[:-1]) == [
            "member_id", "first_name", "email", "segment", "risk_band",
            "reason_1", "reason_2", "reason_3", "phone", "channel",
        ]  # fmt: skip


def test_manifest_checksums_latest_pointer_and_a_rerun_gives_the_same_bytes(
    two_cycles, exports_dir
):
    from programs import cycle

    assert (exports_dir / "latest").resolve() == (exports_dir / SECOND_CYCLE.isoformat()).resolve()
    assert (exports_dir / FIRST_CYCLE.isoformat() / "manifest.json").exists()
    folder = exports_dir / "latest"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["as_of_date"] == SECOND_CYCLE.isoformat()
    assert manifest["model_versions"]["scores"] == "cx_churn/1+cx_segment/1"
    for program in manifest["programs"]:
        for entry in program["files"]:
            data = (folder / entry["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        rows = len(pd.read_parquet(folder / f"{program['name']}.parquet"))
        assert rows == program["rows"] == program["treatment"]
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    target = (exports_dir / SECOND_CYCLE.isoformat()).resolve()
    cycle.assign(two_cycles.store, two_cycles.settings)
    cycle.export(two_cycles.store, two_cycles.settings, SECOND_CYCLE.isoformat())
    assert (exports_dir / SECOND_CYCLE.isoformat()).resolve() == target
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _build_modes(exports_dir) -> tuple[set[int], set[int], int]:
    """The modes of the published build folders, of the files in them, and how many files."""
    builds = [p for p in (exports_dir / BUILDS).iterdir() if not p.name.startswith(".")]
    files = [path for build in builds for path in build.iterdir()]
    return {_mode(b) for b in builds}, {_mode(f) for f in files}, len(files)


def test_exports_are_readable_by_their_owner_only(two_cycles, exports_dir):
    """Both cycles: the first written by ``cycle.run``, the second by the DAG's tasks."""
    folders, files, count = _build_modes(exports_dir)
    assert count >= 2 * 9  # two cycles of four programs (csv and parquet) and a manifest
    assert folders == {0o700}
    assert files == {0o400}


def test_exports_are_also_the_groups_with_cx_personal_file_group(two_cycles, tmp_path):
    from programs import cycle

    group = grp.getgrgid(os.getgid()).gr_name  # one every user may give its files
    settings = replace(
        two_cycles.settings, exports_dir=tmp_path / "exports", personal_file_group=group
    )
    cycle.export(two_cycles.store, settings, SECOND_CYCLE.isoformat())
    folders, files, count = _build_modes(settings.exports_dir)
    assert count == 9
    assert folders == {0o750}
    assert files == {0o440}
    for path in (settings.exports_dir / "latest").iterdir():
        assert path.stat().st_gid == grp.getgrnam(group).gr_gid


def test_lift_recovers_the_planted_effect_and_waits_for_open_windows(two_cycles):
    lift = _query(two_cycles, "select * from mart_program_lift")
    lift["cycle_date"] = pd.to_datetime(lift["cycle_date"]).dt.date
    first = lift[lift["cycle_date"] == FIRST_CYCLE].set_index(["program", "metric"])
    win_back = first.loc[("win_back", "retention_rate")]
    assert win_back["status"] == "measured"
    # Treated win-back members bought again with probability 0.85, everyone else 0.35.
    assert win_back["ci_low"] > 0.2 and win_back["ci_low"] < 0.5 < win_back["ci_high"]
    assert first.loc[("win_back", "spend_per_member"), "ci_low"] > 0
    # Programs without a planted effect are measured too (whether their interval covers zero is a
    # 95% event for one draw; test_lift checks that coverage over many draws).
    nurture = first.loc[("nurture", "retention_rate")]
    assert nurture["status"] == "measured"
    assert nurture["ci_low"] < nurture["difference"] < nurture["ci_high"]
    assert nurture["treatment_members"] + nurture["control_members"] > 20
    second = lift[lift["cycle_date"] == SECOND_CYCLE]
    assert set(second["status"]) == {"window_open"}
    assert second["difference"].isna().all()
    assert (pd.to_datetime(second["window_ends_on"]).dt.date > SECOND_CYCLE).all()


def test_measure_writes_key_drivers_and_the_published_copy_has_the_tables(two_cycles):
    from warehouse.publish import published_path
    from warehouse.store import DuckDBStore

    drivers = _query(
        two_cycles, "select * from mart_key_drivers where as_of_date = $1", [SECOND_CYCLE]
    )
    assert set(drivers["outcome"]) == {"nps", "churn"}
    nps = drivers[drivers["outcome"] == "nps"]
    assert nps["derived_importance"].sum() == pytest.approx(1.0)
    # The simulation drives NPS with the emotional items, not with call waits.
    assert (
        nps.set_index("driver")["derived_importance"]["helped"]
        > nps.set_index("driver")["derived_importance"]["wait"]
    )
    written = ("program_assignments", "program_cycles", "mart_program_lift", "mart_key_drivers")
    if two_cycles.store.target == "duckdb":
        # Analysts read the published copy; on PostgreSQL they read the live schema.
        copy = DuckDBStore(published_path(two_cycles.settings.duckdb_path))
        assert all(copy.exists(table) for table in written)
        assert two_cycles.second_run["publish_warehouse"].endswith("cx.duckdb")
    else:
        assert all(two_cycles.store.exists(table) for table in written)
        assert two_cycles.second_run["publish_warehouse"].startswith("postgres")


def test_report_is_written_and_tells_open_windows_honestly(two_cycles):
    page = (two_cycles.settings.reports_dir / "segment-report.html").read_text()
    assert "window not yet passed" in page
    assert "Retention lift" in page  # the first cycle is measured
    assert (two_cycles.settings.reports_dir / f"segment-report-{SECOND_CYCLE}.html").exists()
    assert two_cycles.first_run["report"]["path"].endswith("segment-report.html")


def test_the_cli_opens_the_configured_warehouse_and_finds_the_latest_cycle(
    two_cycles, monkeypatch, capsys
):
    from programs import cli

    patch_warehouse(monkeypatch, two_cycles.settings.data_dir.parent, two_cycles.env)
    monkeypatch.setenv("CX_PROGRAMS_CONFIG", two_cycles.env["CX_PROGRAMS_CONFIG"])
    assert cli.main(["measure"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["cycle_date"] == SECOND_CYCLE.isoformat()
    assert measured["lift_rows"] == len(_query(two_cycles, "select * from mart_program_lift"))
