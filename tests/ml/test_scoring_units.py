"""Scoring without MLflow: signature enforcement, reproducibility, reasons, drift, transitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml import features, monitor, reasons
from ml import pipeline as pipelines
from ml.score import Champion, SignatureError, enforce_signature, risk_band, score_frame


def _champions(synthetic, seed=7):
    data, _ = synthetic
    training = features.build_training_data(data, n_train_cutoffs=3, seed=seed)
    churn = pipelines.build_churn_model(seed).fit(
        training.churn_train, training.churn_train["churned"]
    )
    segment = pipelines.build_segment_model(seed).fit(
        training.segment_train, training.segment_train["segment"]
    )
    return (
        Champion(
            "cx_churn", churn, "1", "r1", dict.fromkeys(pipelines.input_columns(churn), "double")
        ),
        Champion(
            "cx_segment",
            segment,
            "1",
            "r2",
            dict.fromkeys(pipelines.input_columns(segment), "double"),
        ),
    )


@pytest.fixture(scope="module")
def champions(synthetic):
    return _champions(synthetic)


def test_scores_every_member_with_bands_and_reasons(synthetic, champions):
    _, current = synthetic
    scores = score_frame(current, *champions)
    assert len(scores) == len(current)
    assert scores["churn_probability"].between(0, 1).all()
    assert set(scores["risk_band"]) <= {"high", "medium", "low"}
    assert set(scores["predicted_segment"]) <= {"Engaged", "Swing", "Disengaged"}
    assert scores["reason_1"].notna().mean() > 0.5


def test_missing_column_fails_naming_it(synthetic, champions):
    _, current = synthetic
    with pytest.raises(SignatureError, match="unresolved_calls_90d"):
        score_frame(current.drop(columns=["unresolved_calls_90d"]), *champions)


def test_mistyped_column_fails_naming_it(synthetic, champions):
    _, current = synthetic
    with pytest.raises(SignatureError, match="'calls_90d' has type"):
        score_frame(current.assign(calls_90d="several"), *champions)


def test_signature_check_on_model_input():
    inputs = {"a": "double", "b": "double"}
    enforce_signature(pd.DataFrame({"a": [1.0], "b": [2]}), inputs, "m")  # int stands in
    with pytest.raises(SignatureError, match="'b' is missing"):
        enforce_signature(pd.DataFrame({"a": [1.0]}), inputs, "m")
    with pytest.raises(SignatureError, match="'b' has type str"):
        enforce_signature(pd.DataFrame({"a": [1.0], "b": ["x"]}), inputs, "m")


def test_without_a_segment_model_segments_are_null_and_churn_is_scored(synthetic, champions):
    _, current = synthetic
    churn, _segment = champions
    scores = score_frame(current, churn, None)
    assert scores["predicted_segment"].isna().all()
    assert scores["segment_probability"].isna().all()
    assert scores["churn_probability"].between(0, 1).all()
    pd.testing.assert_series_equal(
        scores["churn_probability"], score_frame(current, *champions)["churn_probability"]
    )


def test_nullable_warehouse_integers_score_as_they_come(synthetic, champions):
    """DuckDB returns a BIGINT with nulls as pandas' Int64: a member with no purchase yet is
    lapsed, not <NA>, and the model reads the column as it is."""
    _, current = synthetic
    rows = current.assign(
        days_since_last_transaction=current["days_since_last_transaction"].astype("Int64")
    )
    rows.loc[rows.index[0], "days_since_last_transaction"] = pd.NA
    scores = score_frame(rows, *champions)
    assert scores["is_lapsed"].dtype == bool
    assert bool(scores["is_lapsed"].iloc[0])
    assert scores["churn_probability"].notna().all()


def test_same_data_and_seed_give_same_scores(synthetic, champions):
    _, current = synthetic
    first = score_frame(current, *champions)
    second = score_frame(current, *_champions(synthetic))
    pd.testing.assert_frame_equal(first, second)


def test_risk_bands_follow_thresholds():
    assert list(risk_band(np.array([0.1, 0.3, 0.6]), 0.5, 0.25)) == ["low", "medium", "high"]
    assert list(risk_band(np.array([0.3]), 0.5, 0.35)) == ["low"]


def test_negative_moments_come_first_in_reasons():
    frame = pd.DataFrame(
        {
            "days_since_last_transaction": [200.0, 5.0, 10.0],
            "unresolved_calls_90d": [2.0, 0.0, 0.0],
            "negative_moments_30d": [0.0, 0.0, 0.0],
            "transactions_90d": [0.0, 9.0, 8.0],
        }
    )
    importance = pd.DataFrame(
        {
            "feature": ["days_since_last_transaction", "unresolved_calls_90d"],
            "importance": [0.2, 0.001],
        }
    )
    out = _as_lists(reasons.top_reasons(frame, importance))
    assert out[0][0] == "2 unresolved calls in the last 90 days"
    assert "no purchase in 200 days" in out[0]
    assert out[1] == []


def test_fewer_reason_codes_than_reasons_asked_for():
    """A purchase-only deployment has one or two codes' features: reasons still come out."""
    frame = pd.DataFrame({"days_since_last_transaction": [200.0, 5.0, 10.0]})
    out = _as_lists(reasons.top_reasons(frame, None, k=3))
    assert out[0] == ["no purchase in 200 days"] and out[1] == []


def test_psi_is_zero_for_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 5000)
    edges = monitor.bin_edges(reference)
    same = monitor.psi(
        monitor.proportions(reference, edges), monitor.proportions(rng.normal(0, 1, 5000), edges)
    )
    shifted = monitor.psi(
        monitor.proportions(reference, edges), monitor.proportions(rng.normal(1, 1, 5000), edges)
    )
    assert same < 0.02
    assert shifted > monitor.PSI_THRESHOLD


def test_segment_transitions_only_record_changes():
    previous = pd.DataFrame(
        {"member_id": ["a", "b", "c"], "predicted_segment": ["Engaged", "Swing", "Swing"]}
    )
    current = pd.DataFrame(
        {
            "member_id": ["a", "b", "d"],
            "predicted_segment": ["Engaged", "Disengaged", "Swing"],
            "score_date": ["2026-07-01"] * 3,
        }
    )
    out = monitor.segment_transitions(previous, current)
    assert out.to_dict("records") == [
        {
            "member_id": "b",
            "from_segment": "Swing",
            "to_segment": "Disengaged",
            "score_date": "2026-07-01",
        }
    ]


def test_no_transition_without_segments():
    previous = pd.DataFrame({"member_id": ["a", "b"], "predicted_segment": [None, "Swing"]})
    current = pd.DataFrame(
        {"member_id": ["a", "b"], "predicted_segment": [None, None], "score_date": ["d", "d"]}
    )
    assert monitor.segment_transitions(previous, current).empty


def _as_lists(reasons_array: np.ndarray) -> list[list[str]]:
    """top_reasons' rows without their None padding."""
    return [[words for words in row if words is not None] for row in reasons_array]


def _reasons_row_by_row(features: pd.DataFrame, importance: pd.DataFrame, k: int = 3):
    """The definition of the reasons, one row at a time: what the vectorised ranking must equal."""
    weights = dict(
        zip(importance["feature"], np.clip(importance["importance"], 0, None), strict=True)
    )
    codes = [c for c in reasons.REASON_CODES if c.feature in features.columns]
    medians = {c.feature: float(features[c.feature].median()) for c in codes}
    distance = {
        c.feature: (features[c.feature].rank(pct=True) - 0.5).abs().fillna(0.0) for c in codes
    }
    out = []
    for index, row in features.iterrows():
        fired = []
        for code in codes:
            value = row[code.feature]
            if pd.isna(value) or not bool(
                code.fires(row.to_frame().T, medians[code.feature]).iloc[0]
            ):
                continue
            if code.feature in ("nps_score_change", "latest_nps_score") and pd.isna(
                row["latest_nps_score"]
            ):
                continue
            strength = (weights.get(code.feature, 0.0) + 1e-3) * (
                distance[code.feature][index] + 1e-3
            )
            fired.append((not code.negative_moment, -strength, code.words(row)))
        fired.sort(key=lambda item: (item[0], item[1]))
        out.append([words for _, _, words in fired[:k]])
    return out


def test_vectorised_reasons_equal_the_row_by_row_definition():
    rng = np.random.default_rng(7)
    rows = 400
    columns = sorted(
        {code.feature for code in reasons.REASON_CODES} | {"latest_ces_score", "transactions_30d"}
    )
    frame = pd.DataFrame({column: rng.integers(-12, 12, rows).astype(float) for column in columns})
    frame["days_since_last_transaction"] = rng.integers(0, 400, rows).astype(float)
    frame["avg_queue_seconds_90d"] = rng.integers(0, 1200, rows).astype(float)
    frame["latest_nps_score"] = rng.integers(0, 11, rows).astype(float)
    for column in (
        "latest_nps_score",
        "nps_score_change",
        "avg_queue_seconds_90d",
        "recency_x_rate",
    ):
        frame.loc[rng.random(rows) < 0.3, column] = np.nan
    importance = pd.DataFrame(
        {"feature": columns, "importance": rng.uniform(-0.01, 0.05, len(columns))}
    )
    expected = _reasons_row_by_row(frame, importance)
    assert _as_lists(reasons.top_reasons(frame, importance)) == expected
    assert sum(len(r) == 3 for r in expected) > rows / 4  # the ranking was exercised


def test_reason_words_read_only_the_columns_they_declare():
    """Words are computed once per distinct value of the columns a code declares; a code reading
    an undeclared column would give one member another member's words."""

    class Recording(dict):
        def __init__(self, values):
            super().__init__(values)
            self.read = set()

        def __getitem__(self, column):
            self.read.add(column)
            return super().__getitem__(column)

    columns = {code.feature for code in reasons.REASON_CODES} | {
        column for code in reasons.REASON_CODES for column in code.reads
    }
    for code in reasons.REASON_CODES:
        row = Recording(dict.fromkeys(columns, 3.0))
        code.words(row)
        assert row.read <= {code.feature, *code.reads}, code.feature


def test_members_with_equal_values_get_their_own_reasons_in_a_large_frame():
    rng = np.random.default_rng(3)
    rows = 5000
    frame = pd.DataFrame(
        {
            "negative_moments_30d": rng.integers(0, 3, rows).astype(float),
            "transactions_30d": rng.integers(0, 6, rows).astype(float),
            "transactions_30d_change": rng.integers(-5, 2, rows).astype(float),
            "spend_90d_change": rng.normal(0, 50, rows),
        }
    )
    importance = pd.DataFrame({"feature": list(frame.columns), "importance": [0.1, 0, 0.2, 0.3]})
    assert _as_lists(reasons.top_reasons(frame, importance)) == _reasons_row_by_row(
        frame, importance
    )


def test_respondents_keep_their_measured_segment_beside_the_prediction():
    from datetime import date

    from ml.score import measured_segments

    def answer(member, when, nps, item, kind="relationship"):
        items = dict.fromkeys(
            ("valued", "confident", "informed", "protected", "helped"), float(item)
        )
        return {
            "member_id": member,
            "submitted_at": pd.Timestamp(when),
            "survey_type": kind,
            "nps_score": nps,
            **{f"{k}_score": v for k, v in items.items()},
        }

    responses = pd.DataFrame(
        [
            answer("a", "2026-06-30 18:00", 10, 5),  # on the score date itself: counts
            answer("b", "2026-03-01", 3, 4),  # a detractor
            answer("c", "2026-07-01", 10, 5),  # after the score date
            answer("d", "2026-05-01", 10, 5, "post_call"),  # not a relationship survey
        ]
    )
    measured = measured_segments(responses, date(2026, 6, 30)).to_dict()
    assert measured == {"a": "Engaged", "b": "Disengaged"}
