"""The lake's files that hold personal data (landed rows, quarantined rows, and both while
staged) are their owner's alone, 0600, or also CX_PERSONAL_FILE_GROUP's, 0640, as the exports
are (privacy/personal_files.py): emails, phones, names and free-text comments sit in them."""

from __future__ import annotations

import grp
import os
import stat

import duckdb
import pytest
from fixture_sources import DAY1, DAY2, DAY3, write_calls, write_loyalty, write_surveys

from config import load_settings
from ingestion import contract
from ingestion.lake import Lake
from ingestion.land import BAD, GOOD, extract, land, publish, validate


def _settings(tmp_path, **env):
    return load_settings(
        {
            "CX_DATA_DIR": str(tmp_path / "data"),
            "CX_LOYALTY_URL": write_loyalty(tmp_path / "loyalty.db"),
            "CX_SURVEY_ROOT": str(write_surveys(tmp_path / "surveys")),
            "CX_CALLS_ROOT": str(write_calls(tmp_path / "calls")),
            "CX_BAD_ROW_THRESHOLD": "0.7",
            **env,
        }
    )


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _lake_files(settings) -> dict[str, list]:
    root = Lake(settings.lake_dir).root
    return {area: sorted((root / area).rglob("*.parquet")) for area in ("raw", "quarantine")}


def _land_everything(settings) -> None:
    for table in contract.TABLES:
        land(settings, table, DAY1, DAY2)
        land(settings, table, DAY2, DAY3)


def test_landed_and_quarantined_rows_are_the_owners_alone(tmp_path):
    settings = _settings(tmp_path)
    _land_everything(settings)
    files = _lake_files(settings)
    # Every source landed, and some rows were quarantined (a malformed amount, a bad call...).
    assert {p.parent.name for p in files["raw"]} == {t.name for t in contract.TABLES}
    assert files["quarantine"]
    for path in files["raw"] + files["quarantine"]:
        assert _mode(path) == 0o600, path
    # They do hold personal data, and the pipeline (the same user) still reads them.
    members = Lake(settings.lake_dir).root / "raw" / "loyalty" / "members"
    with duckdb.connect() as con:
        emails = con.execute(
            f"select count(email) from read_parquet('{members}/*.parquet')"
        ).fetchone()[0]
    assert emails > 0


def test_a_staged_landing_is_the_owners_alone_before_it_is_published(tmp_path):
    settings = _settings(tmp_path, CX_BAD_ROW_THRESHOLD="0.9")
    land(settings, contract.TRANSACTIONS, DAY1, DAY2)
    landing = extract(settings, contract.TRANSACTIONS, DAY2, DAY3)
    # The folder also holds DuckDB's spill of the rows.
    assert _mode(landing.staging) == 0o700
    assert _mode(landing.staging / GOOD) == 0o600
    assert _mode(landing.staging / BAD) == 0o600  # T5, its amount 'twelve'
    validate(landing)
    publish(settings, landing)
    lake = Lake(settings.lake_dir)
    assert _mode(lake.raw_path(contract.TRANSACTIONS, landing.interval)) == 0o600
    assert _mode(lake.quarantine_path(contract.TRANSACTIONS, landing.interval)) == 0o600


def test_a_configured_group_may_read_them_too(tmp_path):
    # The user's primary group: one it may give its files, as root or not.
    group = grp.getgrgid(os.getgid()).gr_name
    settings = _settings(tmp_path, CX_PERSONAL_FILE_GROUP=group)
    _land_everything(settings)
    files = _lake_files(settings)
    assert files["raw"] and files["quarantine"]
    for path in files["raw"] + files["quarantine"]:
        assert _mode(path) == 0o640, path
        assert os.stat(path).st_gid == grp.getgrnam(group).gr_gid


def test_an_erasure_rewrites_them_with_their_mode_and_group(tmp_path):
    """Erasure rewrites the partitions that held an erased member's rows: the new file keeps
    the configured group, not the group any new file of this user gets (which 0640 would
    open to)."""
    from privacy.erase import erase_members

    others = [
        g.gr_name
        for g in grp.getgrall()
        if g.gr_gid != os.getgid() and (os.geteuid() == 0 or g.gr_gid in os.getgroups())
    ]
    if not others:
        pytest.skip("this user may give its files no group but its primary one")
    group = others[0]
    settings = _settings(
        tmp_path,
        CX_PERSONAL_FILE_GROUP=group,
        CX_HASH_KEY="test-only-hash-key-0123456789abcdef0123",
    )
    _land_everything(settings)
    members = sorted((Lake(settings.lake_dir).root / "raw" / "loyalty" / "members").iterdir())
    before = {path: os.stat(path).st_ino for path in members}
    report = erase_members(settings, ["M1"])
    assert report.total > 0
    rewritten = [path for path in members if os.stat(path).st_ino != before[path]]
    assert rewritten  # M1's partition was rewritten, not edited in place
    for path in _lake_files(settings)["raw"] + _lake_files(settings)["quarantine"]:
        assert _mode(path) == 0o640, path
        assert os.stat(path).st_gid == grp.getgrnam(group).gr_gid, path
