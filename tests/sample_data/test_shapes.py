"""Sample shapes (CX_SAMPLE_SHAPE): each makes the data look like what a real retailer brings.

Each shape is measured on generated data, next to the default sample from the same seed where
the difference is the point, so a shape that quietly stopped doing anything would fail.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from config import SettingsError, load_settings
from config.settings import ENV_VARS
from sample_data.generate import generate, main

START, END = date(2025, 1, 1), date(2025, 12, 31)
REQUIRED_MEMBER_COLUMNS = ["member_id", "enrolled_at"]
REQUIRED_TRANSACTION_COLUMNS = ["transaction_id", "member_id", "occurred_at", "amount"]


def _checksums(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _tables(root: Path) -> dict[str, pd.DataFrame]:
    with sqlite3.connect(root / "loyalty.db") as conn:
        return {
            name: pd.read_sql(f"select * from {name} order by 1", conn)
            for name in ("members", "transactions")
        }


def _columns(root: Path, table: str) -> list[str]:
    with sqlite3.connect(root / "loyalty.db") as conn:
        return [row[1] for row in conn.execute(f"pragma table_info({table})")]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small sample per shape from the same seed and dates, plus the default."""
    root = tmp_path_factory.mktemp("shapes")
    out = {}
    for shape in ("default", "single_cohort", "purchase_only"):
        out[shape] = root / shape
        generate(out[shape], members=300, seed=5, start=START, end=END, shape=(shape,))
    return out


def test_default_shape_is_the_sample_without_a_shape(tmp_path: Path) -> None:
    args = {"members": 150, "seed": 2, "start": START, "end": date(2025, 7, 31)}
    generate(tmp_path / "unset", **args)
    generate(tmp_path / "default", shape=("default",), **args)
    assert _checksums(tmp_path / "unset") == _checksums(tmp_path / "default")
    assert load_settings({}).sample_shape == ("default",)
    assert load_settings({}).sample_start == date(2024, 7, 1)


def test_a_shape_is_deterministic_too(tmp_path: Path) -> None:
    args = {"members": 150, "seed": 2, "start": START, "end": date(2025, 7, 31)}
    shape = ("single_cohort", "seasonal")
    generate(tmp_path / "a", shape=shape, **args)
    generate(tmp_path / "b", shape=shape, **args)
    generate(tmp_path / "c", **args)
    assert _checksums(tmp_path / "a") == _checksums(tmp_path / "b")
    assert _checksums(tmp_path / "a") != _checksums(tmp_path / "c")


def test_single_cohort_enrols_and_first_buys_in_the_first_quarter(
    samples: dict[str, Path],
) -> None:
    default = _tables(samples["default"])["members"]
    assert (pd.to_datetime(default["enrolled_at"]) < pd.Timestamp(START)).any()
    tables = _tables(samples["single_cohort"])
    members, tx = tables["members"], tables["transactions"]
    enrolled = pd.to_datetime(members.set_index("member_id")["enrolled_at"])
    assert enrolled.ge(pd.Timestamp(START)).all()
    assert enrolled.lt(pd.Timestamp(START + timedelta(days=90))).all()
    first = pd.to_datetime(tx["occurred_at"]).groupby(tx["member_id"]).min()
    assert first.index.sort_values().equals(enrolled.index.sort_values())
    assert (first.reindex(enrolled.index) == enrolled).all()
    assert (first < pd.Timestamp(START + timedelta(days=90))).all()
    assert pd.to_datetime(tx["occurred_at"]).max() > pd.Timestamp(END - timedelta(days=30))
    assert len(pd.read_parquet(samples["single_cohort"] / "answers" / "churn.parquet")) > 0


def test_purchase_only_writes_only_the_required_loyalty_columns(
    samples: dict[str, Path],
) -> None:
    root = samples["purchase_only"]
    assert sorted(path.name for path in root.iterdir()) == ["answers", "loyalty.db"]
    assert _columns(root, "members") == REQUIRED_MEMBER_COLUMNS
    assert _columns(root, "transactions") == REQUIRED_TRANSACTION_COLUMNS
    assert (samples["default"] / "surveys").is_dir() and (samples["default"] / "calls").is_dir()
    # Contacts still happen, unexported: the purchases are the default sample's.
    default, shaped = _tables(samples["default"]), _tables(root)
    assert shaped["transactions"].equals(default["transactions"][REQUIRED_TRANSACTION_COLUMNS])
    assert shaped["members"].equals(default["members"][REQUIRED_MEMBER_COLUMNS])
    for name in ("churn", "segments"):
        assert len(pd.read_parquet(root / "answers" / f"{name}.parquet")) > 0


def test_purchase_only_enables_only_the_loyalty_source_unless_sources_are_set() -> None:
    assert load_settings({}).enabled_sources == ("loyalty", "surveys", "calls")
    shaped = {"CX_SAMPLE_SHAPE": "purchase_only"}
    assert load_settings(shaped).enabled_sources == ("loyalty",)
    chosen = {**shaped, "CX_SOURCES": "loyalty,calls"}
    assert load_settings(chosen).enabled_sources == ("loyalty", "calls")


def test_short_history_spans_about_nine_months(tmp_path: Path) -> None:
    settings = load_settings({"CX_SAMPLE_SHAPE": "short_history", "CX_SAMPLE_END": "2026-03-31"})
    assert settings.sample_start == date(2026, 3, 31) - timedelta(days=273)
    kept = load_settings({"CX_SAMPLE_SHAPE": "short_history", "CX_SAMPLE_START": "2025-01-01"})
    assert kept.sample_start == date(2025, 1, 1)
    out = tmp_path / "short"
    generate(
        out,
        members=300,
        seed=5,
        start=settings.sample_start,
        end=settings.sample_end,
        shape=settings.sample_shape,
    )
    occurred = pd.to_datetime(_tables(out)["transactions"]["occurred_at"])
    assert 265 <= (occurred.max() - occurred.min()).days <= 273
    # The answer key starts after a quarter of history, so nine months still give cutoffs.
    cutoffs = pd.read_parquet(out / "answers" / "churn.parquet")["cutoff_date"].unique()
    assert len(cutoffs) >= 3
    assert min(cutoffs) >= settings.sample_start + timedelta(days=90)
    assert max(cutoffs) <= settings.sample_end - timedelta(days=89)


def test_seasonal_purchases_peak_in_november_december(tmp_path: Path) -> None:
    ratios = {}
    for shape in ("default", "seasonal"):
        out = tmp_path / shape
        args = {"members": 400, "seed": 1, "start": date(2024, 7, 1), "end": date(2025, 6, 30)}
        generate(out, shape=(shape,), **args)
        tx = _tables(out)["transactions"].query("amount > 0")
        months = pd.to_datetime(tx["occurred_at"]).dt.month.value_counts()
        ratios[shape] = months[[11, 12]].mean() / months[[6, 7, 8]].mean()
    assert ratios["seasonal"] > 2.5
    assert ratios["default"] < 1.6


def test_shapes_combine_into_a_first_export(tmp_path: Path) -> None:
    env = {"CX_SAMPLE_SHAPE": "short_history, purchase_only,single_cohort"}
    settings = load_settings(env)
    assert settings.sample_shape == ("single_cohort", "purchase_only", "short_history")
    out = tmp_path / "first"
    summary = generate(
        out,
        members=200,
        seed=4,
        start=settings.sample_start,
        end=settings.sample_end,
        shape=settings.sample_shape,
    )
    assert set(summary.paths) == {"loyalty", "answers"}
    assert summary.survey_responses == summary.calls == 0
    assert _columns(out, "transactions") == REQUIRED_TRANSACTION_COLUMNS
    enrolled = pd.to_datetime(_tables(out)["members"]["enrolled_at"])
    assert enrolled.max() < pd.Timestamp(settings.sample_start + timedelta(days=90))
    assert len(pd.read_parquet(out / "answers" / "churn.parquet")) > 0


def test_unknown_shape_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="CX_SAMPLE_SHAPE.*'weekly'"):
        load_settings({"CX_SAMPLE_SHAPE": "seasonal,weekly"})
    assert "CX_SAMPLE_SHAPE" in ENV_VARS


def test_generate_refuses_an_unknown_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="weekly"):
        generate(tmp_path / "x", members=10, seed=1, start=START, end=END, shape=("weekly",))
    assert not (tmp_path / "x").exists()


def test_command_line_shape_moves_the_start_behind_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CX_SAMPLE_START", "CX_SAMPLE_END", "CX_SAMPLE_SHAPE", "CX_SOURCES"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "cli"
    argv = ["--members", "60", "--seed", "3", "--end", "2025-12-31", "--out", str(out)]
    summary = main([*argv, "--shape", "purchase_only,short_history"])
    assert set(summary.paths) == {"loyalty", "answers"}
    occurred = pd.to_datetime(_tables(out)["transactions"]["occurred_at"])
    assert occurred.min() >= pd.Timestamp(date(2025, 12, 31) - timedelta(days=273))
    with pytest.raises(SystemExit):
        main([*argv, "--shape", "weekly"])


def test_make_run_regenerates_the_sample_when_the_shape_changes(tmp_path: Path) -> None:
    from pipeline.run import ensure_sample

    env = {
        "CX_DATA_DIR": str(tmp_path),
        "CX_SAMPLE_MEMBERS": "40",
        "CX_SAMPLE_START": "2025-01-01",
        "CX_SAMPLE_END": "2025-03-31",
    }
    shaped = load_settings({**env, "CX_SAMPLE_SHAPE": "purchase_only"})
    assert ensure_sample(shaped)
    assert not ensure_sample(shaped)
    assert not (shaped.sample_dir / "surveys").exists()
    assert ensure_sample(load_settings(env))
    assert (shaped.sample_dir / "surveys").is_dir()
