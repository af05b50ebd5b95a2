"""Erasure in the lake, and ingestion keeping erased members out: no warehouse needed."""

from __future__ import annotations

import json
import os
import stat

import duckdb
import pytest
from privacy_fixtures import (
    ERASED,
    ERASED_EMAIL,
    ERASED_PHONE_DIGITS,
    HASH_KEY,
    INTERVALS,
    env_of,
    land_everything,
    mentions_erased,
    mentions_kept,
    scan_files,
    settings_for,
)

from config import load_settings
from config.settings import SettingsError
from ingestion import contract
from ingestion.lake import Lake
from privacy.erase import erase_members
from privacy.suppression import SuppressionKeyError


def _rows(path) -> list[tuple]:
    with duckdb.connect() as con:
        return con.execute(f"select * from read_parquet('{path}')").fetchall()


def _partitions(settings) -> dict[str, list[tuple]]:
    lake = settings.lake_dir
    return {
        str(path.relative_to(lake)): _rows(path)
        for area in ("raw", "quarantine")
        for path in sorted((lake / area).rglob("*.parquet"))
    }


def test_the_fixture_really_holds_the_member_everywhere(landed):
    hits = scan_files(landed.lake_dir / "raw") + scan_files(landed.lake_dir / "quarantine")
    # id, email, phone, an email in a truncated line, a phone in a comment and in call notes
    assert {h.rsplit(":", 1)[1] for h in hits} >= {
        "member_id",
        "email",
        "phone",
        "caller_phone",
        "comment",
        "notes",
        "_line",
    }


def test_erasure_leaves_no_trace_in_the_lake_and_keeps_everyone_else(landed):
    kept_before = scan_files(landed.lake_dir, mentions_kept)
    report = erase_members(landed, [f" {ERASED.lower()} "])  # as typed: case and spaces
    assert report.members == 1 and report.total > 0
    assert scan_files(landed.lake_dir) == []
    assert scan_files(landed.lake_dir, mentions_kept) == kept_before
    # The report and the suppression list name places and counts, never the member.
    assert not mentions_erased(json.dumps(report.as_dict()))
    assert not mentions_erased(landed.suppression_list.read_text())


def test_manifests_stay_true_to_their_partitions(landed):
    erase_members(landed, [ERASED])
    lake = Lake(landed.lake_dir)
    for table in contract.TABLES:
        for interval in lake.partitions(table):
            manifest = json.loads(lake.manifest_path(table, interval).read_text())
            assert manifest["rows_landed"] == len(_rows(lake.raw_path(table, interval)))
            quarantine = lake.quarantine_path(table, interval)
            quarantined = len(_rows(quarantine)) if quarantine.exists() else 0
            assert manifest["rows_quarantined"] == quarantined
            assert sum(r["rows"] for r in manifest["quarantine_reasons"]) == quarantined
    responses = lake.manifest_path(
        contract.SURVEY_RESPONSES, lake.partitions(contract.SURVEY_RESPONSES)[-1]
    )
    assert json.loads(responses.read_text())["rows_suppressed"] == 3  # R1 again, R7, the R9 line


def _by_file(path) -> dict[str, int]:
    if not path.exists():
        return {}
    with duckdb.connect() as con:
        return dict(
            con.execute(
                f"select _source_file, count(*) from read_parquet('{path}') group by all"
            ).fetchall()
        )


def test_each_export_files_counts_still_add_up_after_an_erasure(landed):
    """The erased member's rows leave the counts of the files they came from, not only the
    partition's totals: each file's read = landed + quarantined + outside + suppressed."""
    erase_members(landed, [ERASED])
    lake = Lake(landed.lake_dir)
    suppressed = 0
    for table in (contract.SURVEY_RESPONSES, contract.CALLS):
        for interval in lake.partitions(table):
            manifest = json.loads(lake.manifest_path(table, interval).read_text())
            landed_rows = _by_file(lake.raw_path(table, interval))
            quarantined_rows = _by_file(lake.quarantine_path(table, interval))
            for fact in manifest["source_files"]:
                path = fact["path"]
                assert fact["rows_read"] == (
                    fact["rows_landed"]
                    + fact["rows_quarantined"]
                    + fact["rows_outside_interval"]
                    + fact["rows_suppressed"]
                ), fact
                assert fact["rows_landed"] == landed_rows.get(path, 0), fact
                assert fact["rows_quarantined"] == quarantined_rows.get(path, 0), fact
                suppressed += fact["rows_suppressed"]
            for key in ("rows_read", "rows_landed", "rows_quarantined", "rows_suppressed"):
                assert manifest[key] == sum(f[key] for f in manifest["source_files"]), key
    assert suppressed > 0  # the member's rows were in the files, and were erased from them


def test_next_ingestion_runs_land_the_same_rows_without_the_member(landed):
    erase_members(landed, [ERASED])
    erased = _partitions(landed)
    land_everything(landed)  # every interval again, from sources that still hold M1
    assert _partitions(landed) == erased
    assert scan_files(landed.lake_dir) == []


def test_a_landing_staged_before_the_erasure_is_filtered_when_published(landed):
    from ingestion.land import extract, publish, validate

    start, end = INTERVALS[1]
    staged = extract(landed, contract.CALLS, start, end)
    validate(staged)
    erase_members(landed, [ERASED])  # also cleans what is staged
    assert scan_files(staged.staging) == []
    manifest = publish(landed, staged)
    assert scan_files(landed.lake_dir) == []
    path = Lake(landed.lake_dir).raw_path(contract.CALLS, staged.interval)
    assert manifest["rows_landed"] == len(_rows(path)) == 1  # C7 (M2) only


def test_publish_filters_a_landing_the_erasure_did_not_see(landed, tmp_path):
    """A landing staged elsewhere while the member was erased (a copied staging folder)."""
    import shutil

    from ingestion.land import extract, landing_from_path, publish, validate

    start, end = INTERVALS[1]
    staged = extract(landed, contract.SURVEY_RESPONSES, start, end)
    validate(staged)
    hidden = tmp_path / "elsewhere"
    shutil.copytree(staged.staging, hidden)
    erase_members(landed, [ERASED])
    manifest = publish(landed, landing_from_path(str(hidden)))
    assert scan_files(landed.lake_dir) == []
    assert manifest["rows_suppressed"] == 3


def test_suppression_list_holds_keyed_hashes_only(landed):
    erase_members(landed, [ERASED])
    listing = json.loads(landed.suppression_list.read_text())
    text = json.dumps(listing)
    assert ERASED_EMAIL not in text.lower() and ERASED_PHONE_DIGITS not in text
    assert {kind: len(v) for kind, v in listing["hashes"].items()} == {
        "member": 1,
        "email": 1,  # " Ann.Lee@Example.com" in the database, normalised
        "phone": 1,  # "(555) 010-0001", normalised to E.164
    }
    assert stat.S_IMODE(os.stat(landed.suppression_list).st_mode) == 0o600
    assert listing["erasures"][0]["members"] == 1


def test_another_key_cannot_read_the_list_and_says_so(landed):
    erase_members(landed, [ERASED])
    env = {**env_of(landed), "CX_HASH_KEY": HASH_KEY[::-1]}
    with pytest.raises(SuppressionKeyError, match="another CX_HASH_KEY"):
        land_everything(load_settings(env))


def test_real_sources_without_a_key_are_a_clear_error(tmp_path):
    settings = settings_for(tmp_path)
    env = {k: v for k, v in env_of(settings).items() if k != "CX_HASH_KEY"}
    with pytest.raises(SettingsError, match="CX_HASH_KEY is not set.*real sources"):
        erase_members(load_settings(env), [ERASED])
    with pytest.raises(SettingsError, match="CX_HASH_KEY is too short"):
        load_settings({**env, "CX_HASH_KEY": "short"})
    # The sample sources alone need no configuration.
    from privacy.identity import hash_key

    assert hash_key(load_settings({"CX_DATA_DIR": str(tmp_path / "sample-only")}))


def test_key_is_never_printed(tmp_path):
    settings = settings_for(tmp_path)
    assert HASH_KEY not in repr(settings)
    assert settings.describe()["hash_key"] == "***"


def test_erasing_nobody_is_refused(landed):
    with pytest.raises(ValueError, match="no member id"):
        erase_members(landed, ["  "])


def test_erasing_twice_removes_nothing_more(landed):
    erase_members(landed, [ERASED])
    before = _partitions(landed)
    again = erase_members(landed, [ERASED])
    assert again.total == 0
    assert _partitions(landed) == before
    assert len(json.loads(landed.suppression_list.read_text())["hashes"]["member"]) == 1


def test_command_line_erases_and_prints_counts_only(landed, monkeypatch, capsys):
    from privacy.cli import main

    for name, value in env_of(landed).items():
        monkeypatch.setenv(name, value)
    assert main(["erase", "--member-id", ERASED]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["rows_removed"] > 0
    assert not mentions_erased(out)
    assert scan_files(landed.lake_dir) == []


def test_erasure_waits_for_a_landing_being_published(landed):
    """Publishing holds the lake's privacy lock: an erasure started meanwhile waits for it, so
    it sees (and cleans) what was just published."""
    import threading

    from privacy.suppression import lake_lock

    done = threading.Event()
    worker = threading.Thread(target=lambda: (erase_members(landed, [ERASED]), done.set()))
    with lake_lock(landed.lake_dir):
        worker.start()
        assert not done.wait(1.0)  # blocked on the lock
        assert not landed.suppression_list.exists()
    worker.join(60)
    assert done.is_set() and scan_files(landed.lake_dir) == []
