"""`make run` on a user's own sources: no sample, and the run's date read from their data."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime

import pytest
from fixture_sources import TRANSACTIONS, write_calls, write_loyalty, write_surveys

from config import SettingsError, load_settings, uses_sample
from ingestion.data_day import latest_data_day, latest_export_folder, latest_transaction
from ingestion.errors import NoDataError, SourceUnavailableError
from pipeline import run as pipeline_run
from pipeline.dbt_tasks import dbt_vars

HASH_KEY = "0123456789abcdef0123456789abcdef"


def own_settings(tmp_path, **env):
    """Settings for a user with their own loyalty database only, as the README tells them."""
    loyalty = tmp_path / "loyalty.db"
    base = {
        "CX_DATA_DIR": str(tmp_path / "data"),
        "CX_LOYALTY_URL": f"sqlite:///{loyalty}" if loyalty.exists() else write_loyalty(loyalty),
        "CX_SOURCES": "loyalty",
        "CX_HASH_KEY": HASH_KEY,
        # Small, so that a wrongly generated sample fails the test in seconds, not minutes.
        "CX_SAMPLE_MEMBERS": "10",
        "CX_SAMPLE_START": "2026-05-01",
        "CX_SAMPLE_END": "2026-05-10",
    }
    return load_settings({**base, **env})


# --- Settings ----------------------------------------------------------------------------------


def test_as_of_is_parsed_and_unset_means_none(tmp_path):
    assert load_settings({"CX_DATA_DIR": str(tmp_path)}).as_of is None
    settings = load_settings({"CX_DATA_DIR": str(tmp_path), "CX_AS_OF": " 2026-03-31 "})
    assert settings.as_of == date(2026, 3, 31)


@pytest.mark.parametrize("value", ["2026-02-30", "31/03/2026", "yesterday"])
def test_a_bad_as_of_names_the_variable(tmp_path, value):
    with pytest.raises(SettingsError, match=r"CX_AS_OF=.*YYYY-MM-DD"):
        load_settings({"CX_DATA_DIR": str(tmp_path), "CX_AS_OF": value})


@pytest.mark.parametrize("value", [",", " , ,"])
def test_sources_naming_no_source_are_refused(tmp_path, value):
    with pytest.raises(SettingsError, match="CX_SOURCES"):
        load_settings({"CX_DATA_DIR": str(tmp_path), "CX_SOURCES": value})


def test_sources_still_take_a_subset(tmp_path):
    settings = load_settings({"CX_DATA_DIR": str(tmp_path), "CX_SOURCES": "calls, loyalty"})
    assert settings.enabled_sources == ("calls", "loyalty")


# --- Which sources are the sample ----------------------------------------------------------------


def test_own_loyalty_alone_does_not_use_the_sample(tmp_path):
    settings = own_settings(tmp_path)
    # The survey and call roots still default to the sample folder, but are not enabled.
    assert str(settings.sample_dir) in settings.survey_root
    assert uses_sample(settings) is False
    assert pipeline_run.uses_sample is uses_sample


def test_an_enabled_source_left_at_its_default_uses_the_sample(tmp_path):
    settings = own_settings(tmp_path, CX_SOURCES="loyalty,surveys")
    assert uses_sample(settings) is True
    assert uses_sample(load_settings({"CX_DATA_DIR": str(tmp_path)})) is True


def test_a_folder_beside_the_sample_is_not_the_sample(tmp_path):
    sample = tmp_path / "sample"
    settings = load_settings(
        {
            "CX_SAMPLE_DIR": str(sample),
            "CX_LOYALTY_URL": f"sqlite:///{tmp_path / 'sample_copy' / 'loyalty.db'}",
            "CX_SOURCES": "loyalty",
        }
    )
    assert uses_sample(settings) is False


def test_ensure_sample_generates_nothing_for_own_sources(tmp_path):
    settings = own_settings(tmp_path)
    assert pipeline_run.ensure_sample(settings) is False
    assert not settings.sample_dir.exists()
    assert not settings.sample_dir.parent.exists()


# --- The latest day in the data -------------------------------------------------------------------


def test_latest_transaction_takes_the_latest_parseable_instant_in_utc(tmp_path):
    rows = [
        *TRANSACTIONS,
        # Text that sorts after every date but is not one: ignored, as landing quarantines it.
        ("T6", "M1", "zz not a time", "1.00", None, "store", 1),
        # 23:30 at UTC-5 is the next day in UTC; recorded_at is null, so occurred_at counts.
        ("T7", "M2", "2026-06-03 23:30:00-05:00", "5.00", None, "app", 5),
    ]
    url = write_loyalty(tmp_path / "loyalty.db", transactions=rows)
    day, where = latest_transaction(url)
    assert day == date(2026, 6, 4)
    assert "transactions.occurred_at 2026-06-04 04:30:00+00:00" in where


def test_recorded_at_sets_the_day_when_it_is_the_latest(tmp_path):
    day, where = latest_transaction(write_loyalty(tmp_path / "loyalty.db"))
    # T5 was recorded at 2026-06-02 12:00:01, the latest of either column.
    assert (day, where.split(" 2026")[0]) == (date(2026, 6, 2), "transactions.recorded_at")


def test_transactions_without_recorded_at_use_occurred_at(tmp_path):
    path = tmp_path / "loyalty.db"
    con = sqlite3.connect(path)
    con.execute(
        "create table transactions (transaction_id text, member_id text, occurred_at text, "
        "amount real)"
    )
    con.execute("insert into transactions values ('T1', 'M1', '2025-12-31T22:00:00Z', 3.0)")
    con.commit()
    con.close()
    assert latest_transaction(f"sqlite:///{path}")[0] == date(2025, 12, 31)


def test_latest_export_folder_skips_undated_and_empty_folders(tmp_path):
    root = write_surveys(tmp_path / "surveys")
    (root / "2026-06-09").mkdir()  # an export day with no file
    (root / "2026-06-08").mkdir()
    (root / "2026-06-08" / "notes.txt").write_text("not an export")
    (root / "latest").mkdir()
    (root / "latest" / "export.jsonl").write_text("{}\n")
    assert latest_export_folder(str(root), ".jsonl") == date(2026, 6, 2)
    assert latest_export_folder(str(write_calls(tmp_path / "calls")), ".csv") == date(2026, 6, 1)


def test_latest_data_day_is_the_latest_enabled_source(tmp_path):
    surveys = write_surveys(tmp_path / "surveys")
    later = surveys / "2026-06-05"
    later.mkdir()
    (later / "export.jsonl").write_text("")
    settings = own_settings(
        tmp_path,
        CX_SURVEY_ROOT=str(surveys),
        CX_CALLS_ROOT=str(write_calls(tmp_path / "calls")),
        CX_SOURCES="loyalty,surveys,calls",
    )
    found = latest_data_day(settings)
    assert (found.day, found.source) == (date(2026, 6, 5), "surveys")
    assert found.by_source == {
        "loyalty": date(2026, 6, 2),
        "surveys": date(2026, 6, 5),
        "calls": date(2026, 6, 1),
    }
    # A source that is not enabled is not read, however late its data.
    only_loyalty = own_settings(tmp_path, CX_SURVEY_ROOT=str(surveys))
    assert latest_data_day(only_loyalty).day == date(2026, 6, 2)


def test_no_dated_record_anywhere_names_the_sources(tmp_path):
    url = write_loyalty(tmp_path / "empty.db", transactions=[])
    calls = tmp_path / "calls"
    calls.mkdir()
    settings = own_settings(
        tmp_path, CX_LOYALTY_URL=url, CX_CALLS_ROOT=str(calls), CX_SOURCES="loyalty,calls"
    )
    with pytest.raises(NoDataError, match=r"loyalty \(CX_LOYALTY_URL\).*calls \(CX_CALLS_ROOT\)"):
        latest_data_day(settings)


def test_a_missing_export_root_names_its_setting(tmp_path):
    settings = own_settings(
        tmp_path, CX_SURVEY_ROOT=str(tmp_path / "nowhere"), CX_SOURCES="loyalty,surveys"
    )
    with pytest.raises(SourceUnavailableError, match="CX_SURVEY_ROOT"):
        latest_data_day(settings)


# --- The run's date -------------------------------------------------------------------------------


def test_as_of_comes_from_the_setting_the_sample_or_the_data(tmp_path):
    assert pipeline_run.as_of_date(own_settings(tmp_path, CX_AS_OF="2026-01-15")) == (
        date(2026, 1, 15),
        "CX_AS_OF",
    )
    sample = load_settings({"CX_DATA_DIR": str(tmp_path), "CX_SAMPLE_END": "2026-04-30"})
    assert pipeline_run.as_of_date(sample)[0] == date(2026, 4, 30)
    day, origin = pipeline_run.as_of_date(own_settings(tmp_path))
    assert day == date(2026, 6, 2)
    assert "loyalty" in origin and "transactions.recorded_at" in origin


def test_no_data_fails_the_run_with_the_reason(tmp_path):
    settings = own_settings(
        tmp_path, CX_LOYALTY_URL=write_loyalty(tmp_path / "empty.db", transactions=[])
    )
    with pytest.raises(pipeline_run.PipelineFailed, match="CX_LOYALTY_URL"):
        pipeline_run.as_of_date(settings)


@pytest.fixture
def dag_runs(monkeypatch):
    """The driver without Airflow: the (dag_id, logical date, conf) of each DAG it would run."""
    runs = []
    monkeypatch.setattr(pipeline_run, "migrate_airflow_db", lambda: None)
    monkeypatch.setattr(
        pipeline_run,
        "run_dag",
        lambda dag_id, logical_date, conf=None: runs.append((dag_id, logical_date, conf)) or 0.0,
    )
    return runs


def test_make_run_runs_the_dags_for_the_day_after_the_data(tmp_path, dag_runs, capsys):
    settings = own_settings(tmp_path)
    pipeline_run.run(settings, only="ingest")
    assert dag_runs == [("ingest_loyalty", datetime(2026, 6, 3, tzinfo=UTC), None)]
    assert "==> as of 2026-06-02: the latest day in the loyalty source" in capsys.readouterr().out
    assert not settings.sample_dir.exists()


def landed(settings, table: str, start: str, end: str) -> None:
    """A landing's partition file in the lake (only its name is read here)."""
    folder = settings.lake_dir / "raw" / "loyalty" / table
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"interval={start}--{end}.parquet").write_bytes(b"")


def test_a_run_after_a_gap_reloads_the_whole_history(tmp_path, dag_runs, capsys):
    """Own data moves on between two runs: a day's run would skip the days in between."""
    settings = own_settings(tmp_path)
    landed(settings, "members", "19700101T000000Z", "20260602T000000Z")
    landed(settings, "transactions", "19700101T000000Z", "20260531T000000Z")
    pipeline_run.run(settings, only="ingest")
    assert dag_runs == [
        ("ingest_loyalty", datetime(2026, 6, 3, tzinfo=UTC), {"full_history": True})
    ]
    assert "whole history: landed only before 2026-05-31" in capsys.readouterr().out


def test_the_next_day_runs_only_that_day(tmp_path, dag_runs):
    settings = own_settings(tmp_path)
    for table in ("members", "transactions"):
        landed(settings, table, "19700101T000000Z", "20260602T000000Z")
    pipeline_run.run(settings, only="ingest")
    assert dag_runs == [("ingest_loyalty", datetime(2026, 6, 3, tzinfo=UTC), None)]


def test_as_of_pins_customer_360_only_when_set(tmp_path):
    assert dbt_vars(own_settings(tmp_path)) is None
    pinned = own_settings(tmp_path, CX_AS_OF="2026-05-31")
    assert dbt_vars(pinned) == {"as_of_date": "2026-05-31"}
