"""The sample generator: reproducible, true to the source contract, and carrying what it plants.

The planted behaviour is what later models must find, so these tests measure it on generated
data rather than trusting the parameters.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sample_data.generate import generate

MEMBER_COLUMNS = {
    "member_id",
    "enrolled_at",
    "updated_at",
    "email",
    "phone",
    "first_name",
    "last_name",
    "birth_date",
    "postal_code",
    "region",
    "tier",
    "marketing_opt_in",
    "closed_at",
}
TRANSACTION_COLUMNS = {
    "transaction_id",
    "member_id",
    "occurred_at",
    "amount",
    "recorded_at",
    "channel",
    "store_id",
    "points_earned",
    "points_redeemed",
}
SURVEY_FIELDS = {
    "response_id",
    "submitted_at",
    "member_id",
    "email",
    "survey_type",
    "channel",
    "nps",
    "csat",
    "ces",
    "emotions",
    "comment",
    "related_call_id",
    "related_transaction_id",
}
CALL_COLUMNS = [
    "call_id",
    "started_at",
    "member_id",
    "caller_phone",
    "channel",
    "queue_seconds",
    "handle_seconds",
    "reason",
    "resolved",
    "escalated",
    "transfers",
    "agent_id",
    "notes",
]
TRUE_WORDS = {"true", "yes", "1"}


def _checksums(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough for six churn cutoffs, big enough for the effects to show through noise."""
    out = tmp_path_factory.mktemp("sample") / "sample"
    generate(out, members=2000, seed=11, start=date(2024, 7, 1), end=date(2025, 9, 30))
    return out


@pytest.fixture(scope="module")
def loyalty(sample: Path) -> dict[str, pd.DataFrame]:
    with sqlite3.connect(sample / "loyalty.db") as conn:
        tables = {
            name: pd.read_sql(f"select * from {name}", conn) for name in ("members", "transactions")
        }
    tx = tables["transactions"]
    tx["occurred"] = pd.to_datetime(tx["occurred_at"])
    return tables


@pytest.fixture(scope="module")
def surveys(sample: Path) -> tuple[pd.DataFrame, int]:
    """Parsed responses (each response once) and the count of lines that are not JSON."""
    rows, broken = [], 0
    for path in sorted((sample / "surveys").rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                broken += 1
                continue
            record["folder"] = path.parent.name
            record["file"] = path.name
            rows.append(record)
    return pd.DataFrame(rows), broken


@pytest.fixture(scope="module")
def calls(sample: Path) -> pd.DataFrame:
    frames = []
    for path in sorted((sample / "calls").rglob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frames.append(frame.assign(folder=path.parent.name, file=path.name))
    out = pd.concat(frames, ignore_index=True)
    out["started"] = pd.to_datetime(out["started_at"], errors="coerce", utc=True, format="mixed")
    queue = pd.to_numeric(out["queue_seconds"], errors="coerce")
    out["negative"] = (
        ~out["resolved"].isin(TRUE_WORDS) | out["escalated"].isin(TRUE_WORDS) | (queue > 600)
    )
    return out


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    args = {"members": 300, "start": date(2025, 1, 1), "end": date(2025, 7, 19)}
    first = generate(tmp_path / "a", seed=3, **args)
    generate(tmp_path / "b", seed=3, **args)
    generate(tmp_path / "c", seed=4, **args)
    assert first.files > 10
    assert _checksums(tmp_path / "a") == _checksums(tmp_path / "b")
    assert _checksums(tmp_path / "a") != _checksums(tmp_path / "c")


def test_regenerating_replaces_the_sample_and_leaves_no_partial_folder(tmp_path: Path) -> None:
    out = tmp_path / "sample"
    args = {"seed": 1, "start": date(2025, 1, 1), "end": date(2025, 3, 31)}
    generate(out, members=200, **args)
    (out / "stray.txt").write_text("left over")
    summary = generate(out, members=100, **args)
    assert not (out / "stray.txt").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sample"]
    with sqlite3.connect(out / "loyalty.db") as conn:
        assert conn.execute("select count(*) from members").fetchone()[0] == summary.members == 100


def test_loyalty_tables_have_every_contract_column_with_sqlite_types(sample: Path) -> None:
    with sqlite3.connect(sample / "loyalty.db") as conn:
        info = {
            table: {row[1]: row[2] for row in conn.execute(f"pragma table_info({table})")}
            for table in ("members", "transactions")
        }
        indexes = "select sql from sqlite_master where type = 'index' and sql is not null"
        indexed = [row[0] for row in conn.execute(indexes)]
    assert set(info["members"]) == MEMBER_COLUMNS
    assert set(info["transactions"]) == TRANSACTION_COLUMNS
    assert info["transactions"]["amount"] == "REAL"
    assert info["members"]["marketing_opt_in"] == "INTEGER"
    assert any("recorded_at" in sql for sql in indexed)
    assert any("updated_at" in sql for sql in indexed)


def test_loyalty_values_look_like_a_real_program(loyalty: dict[str, pd.DataFrame]) -> None:
    members, tx = loyalty["members"], loyalty["transactions"]
    assert members["member_id"].is_unique and tx["transaction_id"].is_unique
    assert tx[["member_id", "occurred_at", "amount"]].notna().all().all()
    assert pd.to_datetime(members["updated_at"]).ge(pd.to_datetime(members["enrolled_at"])).all()
    assert 0.03 < (tx["amount"] < 0).mean() < 0.07
    late = pd.to_datetime(tx["recorded_at"]) - tx["occurred"] > pd.Timedelta(days=1)
    assert 0.01 < late.mean() < 0.04
    assert set(members["tier"]) == {"bronze", "silver", "gold", "platinum"}
    assert 0.5 < members["marketing_opt_in"].eq(1).mean() < 0.7
    assert members["marketing_opt_in"].isna().any() and members["closed_at"].notna().any()
    assert members["phone"].str.contains(r"^\(555\) ", regex=True).any()
    assert members["phone"].str.fullmatch(r"555\d{7}").any()
    app_share = tx.groupby(tx["occurred"].dt.year)["channel"].apply(lambda s: s.eq("app").mean())
    assert app_share.is_monotonic_increasing
    monthly = tx.groupby(tx["occurred"].dt.to_period("M"))["amount"].sum()
    assert monthly.idxmax().month == 12
    assert monthly.max() > 1.3 * monthly.median()


def test_exports_carry_the_contract_fields(
    surveys: tuple[pd.DataFrame, int], calls: pd.DataFrame
) -> None:
    responses, _ = surveys
    assert SURVEY_FIELDS <= set(responses.columns)
    assert responses["response_id"].notna().mean() > 0.99
    assert set(responses["survey_type"]) == {"relationship", "transactional", "post_call"}
    post_call = responses[responses["survey_type"] == "post_call"]
    assert post_call["related_call_id"].isin(set(calls["call_id"])).mean() > 0.8
    assert list(calls.columns[: len(CALL_COLUMNS)]) == CALL_COLUMNS
    assert calls["call_id"].ne("").mean() > 0.99
    assert 0.10 < calls["member_id"].eq("").mean() < 0.20
    assert calls.loc[calls["member_id"].eq(""), "caller_phone"].ne("").all()


def test_engaged_members_spend_about_twice_as_much(
    sample: Path, loyalty: dict[str, pd.DataFrame]
) -> None:
    segments = pd.read_parquet(sample / "answers" / "segments.parquet")
    tx = loyalty["transactions"]
    ratios = []
    for cutoff, group in segments.groupby("cutoff_date"):
        end = pd.Timestamp(cutoff)
        window = tx[(tx["occurred"] >= end - pd.Timedelta(days=90)) & (tx["occurred"] < end)]
        spend = group["member_id"].map(window.groupby("member_id")["amount"].sum()).fillna(0)
        engaged = group["true_segment"].eq("Engaged")
        ratios.append(spend[engaged].mean() / spend[~engaged].mean())
    assert 1.6 < np.mean(ratios) < 2.6
    shares = segments["true_segment"].value_counts(normalize=True)
    assert shares.between(0.2, 0.5).all()


def test_churners_had_more_negative_moments(sample: Path, calls: pd.DataFrame) -> None:
    churn = pd.read_parquet(sample / "answers" / "churn.parquet")
    assert 0.12 < churn["churned"].mean() < 0.35
    first = churn[churn["churned"]].groupby("member_id")["cutoff_date"].min()
    stayed = churn.groupby("member_id")["churned"].max().loc[lambda s: ~s].index
    middle = pd.Timestamp(churn["cutoff_date"].min()) + pd.Timedelta(days=75)
    reference = pd.concat([pd.to_datetime(first), pd.Series(middle, index=stayed)]).dt.tz_localize(
        "UTC"
    )
    known = calls.drop_duplicates("call_id").assign(ref=lambda f: f["member_id"].map(reference))
    before = known[
        (known["started"] < known["ref"])
        & (known["started"] >= known["ref"] - pd.Timedelta(days=180))
    ]
    negatives = reference.index.map(before.groupby("member_id")["negative"].sum()).fillna(0)
    negatives = pd.Series(np.asarray(negatives), index=reference.index)
    assert negatives[first.index].mean() > 1.3 * negatives[stayed].mean()


def test_true_probability_ranks_churners(sample: Path) -> None:
    churn = pd.read_parquet(sample / "answers" / "churn.parquet")
    churned = churn.loc[churn["churned"], "true_churn_probability"]
    stayed = churn.loc[~churn["churned"], "true_churn_probability"]
    pairs = np.random.default_rng(0).integers(0, [len(churned), len(stayed)], (20_000, 2))
    auc = np.mean(churned.to_numpy()[pairs[:, 0]] > stayed.to_numpy()[pairs[:, 1]])
    assert 0.8 < auc < 0.97


def test_nps_dips_in_midlife(
    surveys: tuple[pd.DataFrame, int], loyalty: dict[str, pd.DataFrame]
) -> None:
    responses = surveys[0].drop_duplicates("response_id")
    births = loyalty["members"].set_index("member_id")["birth_date"]
    age = (
        pd.Timestamp("2025-01-01") - pd.to_datetime(responses["member_id"].map(births))
    ).dt.days / 365.25
    nps = pd.to_numeric(responses["nps"], errors="coerce").where(lambda s: s.between(0, 10))
    young, midlife, older = nps[age.between(18, 32)], nps[age.between(35, 50)], nps[age >= 60]
    assert midlife.mean() < young.mean() and midlife.mean() < older.mean()


def test_comment_tone_matches_scores(sample: Path, surveys: tuple[pd.DataFrame, int]) -> None:
    """The planted tone follows the scores. VADER reads the stock sentences right; in the
    comments written as customers write (issue 27) it misses many complaints."""
    vader = pytest.importorskip("vaderSentiment.vaderSentiment")
    analyzer = vader.SentimentIntensityAnalyzer()
    truth = pd.read_parquet(sample / "answers" / "texts.parquet")
    comments = truth[truth["record_type"] == "survey_comment"].set_index("record_id")
    responses = surveys[0].dropna(subset=["comment", "response_id"])
    responses = responses.join(comments, on="response_id", how="inner")
    nps = pd.to_numeric(responses["nps"], errors="coerce")
    assert (responses["true_tone"][nps <= 6] == "negative").all()
    assert (responses["true_tone"][nps >= 9] == "positive").all()
    score = responses["comment"].map(lambda text: analyzer.polarity_scores(text)["compound"])
    stock = responses["style"] == "template"
    assert (score[(nps <= 6) & stock] < -0.05).mean() > 0.8
    assert (score[(nps >= 9) & stock] > 0.05).mean() > 0.9
    negative = responses["true_tone"] == "negative"
    read_stock = (score[negative & stock] < -0.05).mean()
    read_own = (score[negative & ~stock] < -0.05).mean()
    assert read_own < read_stock - 0.15
    assert {"domain", "negation", "sarcasm"} <= set(responses["style"])
    assert responses["has_typo"].any()
    assert responses["comment"].str.contains(r"555|@example\.com", regex=True).any()


def test_dirt_is_planted(
    sample: Path, surveys: tuple[pd.DataFrame, int], calls: pd.DataFrame
) -> None:
    responses, broken = surveys
    assert broken > 0
    assert responses["nps"].isin(["ten", 14]).any()
    assert responses["response_id"].isna().any()
    stamps = responses["submitted_at"].dropna().astype(str)
    assert stamps.str.endswith("Z").mean() > 0.6
    assert stamps.str.endswith("+02:00").any() and stamps.str.endswith("-05:00").any()
    assert stamps.str.fullmatch(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d").any()
    copies = 0
    for source in ("surveys", "calls"):
        for path in (sample / source).rglob("*-copy1.*"):
            original = path.with_name(path.name.replace("-copy1", ""))
            assert path.read_bytes() == original.read_bytes()
            copies += 1
    assert copies >= 2
    ids = responses.dropna(subset=["response_id"]).drop_duplicates(["response_id", "folder"])
    assert ids["response_id"].duplicated().any()
    submitted = pd.to_datetime(stamps, errors="coerce", utc=True, format="mixed").dt.date
    lag = pd.to_datetime(responses.loc[stamps.index, "folder"]).dt.date - submitted
    assert (lag.dropna().map(lambda d: d.days) >= 3).any()
    assert calls["started"].isna().any() and calls["queue_seconds"].eq("n/a").any()
    encodings = calls.groupby(["folder", "file"])["escalated"].agg(lambda s: frozenset(s))
    assert {"true", "yes", "1"} <= set().union(*encodings)


def test_churn_labels_follow_the_transactions(
    sample: Path, loyalty: dict[str, pd.DataFrame]
) -> None:
    churn = pd.read_parquet(sample / "answers" / "churn.parquet")
    members = loyalty["members"].set_index("member_id")
    bought = loyalty["transactions"].query("amount > 0")
    rows = pd.concat([churn[churn["churned"]].head(15), churn[~churn["churned"]].head(15)])
    for row in rows.itertuples():
        cutoff = pd.Timestamp(row.cutoff_date)
        days = bought.loc[bought["member_id"] == row.member_id, "occurred"]
        assert ((days >= cutoff - pd.Timedelta(days=180)) & (days < cutoff)).any()
        after = ((days >= cutoff) & (days < cutoff + pd.Timedelta(days=90))).any()
        closed = pd.to_datetime(members.loc[row.member_id, "closed_at"])
        closes = pd.notna(closed) and cutoff <= closed < cutoff + pd.Timedelta(days=90)
        assert row.churned == (not after or closes)
