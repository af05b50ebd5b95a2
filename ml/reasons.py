"""Plain-word reasons per member: the top three risk-raising facts, negative moments first.

Method (kept simple so a marketer can check it): each reason code watches one feature. A code
fires when the member's value sits on the risk-raising side of the typical member (the median of
today's scored population) and passes a floor (e.g. at least one unresolved call). Fired codes
are ranked by the feature's permutation importance times how far out the member is (percentile
distance from the median), except that negative moments always come first: per negativity bias
one bad experience weighs more than a good one, and it is the reason someone can act on quickly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ReasonCode:
    """One reason: the feature it watches, when it fires, and how it reads."""

    feature: str
    # (frame, median of the feature) -> where the code fires, for every row at once.
    fires: Callable[[pd.DataFrame, float], pd.Series]
    # One row (read as row["column"]) -> the reason in plain words.
    words: Callable[..., str]
    negative_moment: bool = False
    # Every other column ``words`` reads: members with equal values get the same words, so each
    # distinct set of values is worded once.
    reads: tuple[str, ...] = ()


def _n(row, column: str) -> int:
    return int(row[column])


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _times(ratio: float) -> str:
    """``1.6`` -> "about one and a half times", ``2.2`` -> "about twice", ``3.6`` -> "about 4
    times": never "1x", which reads as no longer than usual."""
    if ratio < 1.75:
        return "about one and a half times"
    if ratio < 2.5:
        return "about twice"
    return f"about {ratio:.0f} times"


def _few_purchases(count: int) -> str:
    if count == 0:
        return "no purchase in the last 90 days"
    return f"only {_plural(count, 'purchase')} in the last 90 days"


REASON_CODES: tuple[ReasonCode, ...] = (
    ReasonCode(
        "negative_moments_30d",
        lambda r, m: r["negative_moments_30d"] >= 1,
        lambda r: (
            f"{_plural(_n(r, 'negative_moments_30d'), 'negative experience')} in the last 30 days"
        ),
        True,
    ),
    ReasonCode(
        "unresolved_calls_90d",
        lambda r, m: r["unresolved_calls_90d"] >= 1,
        lambda r: (
            f"{_plural(_n(r, 'unresolved_calls_90d'), 'unresolved call')} in the last 90 days"
        ),
        True,
    ),
    ReasonCode(
        "escalated_calls_90d",
        lambda r, m: r["escalated_calls_90d"] >= 1,
        lambda r: f"{_plural(_n(r, 'escalated_calls_90d'), 'escalated call')} in the last 90 days",
        True,
    ),
    ReasonCode(
        "repeat_contacts_90d",
        lambda r, m: r["repeat_contacts_90d"] >= 1,
        lambda r: (
            f"called back {_plural(_n(r, 'repeat_contacts_90d'), 'time')} about "
            "the same issue in the last 90 days"
        ),
        True,
    ),
    ReasonCode(
        "nps_score_change",
        lambda r, m: r["nps_score_change"] <= -2,
        lambda r: (
            f"NPS fell from {_n(r, 'latest_nps_score') - _n(r, 'nps_score_change')}"
            f" to {_n(r, 'latest_nps_score')}"
        ),
        True,
        ("latest_nps_score",),
    ),
    ReasonCode(
        "latest_nps_score",
        lambda r, m: r["latest_nps_score"] <= 6,
        lambda r: f"last NPS answer was {_n(r, 'latest_nps_score')} (a detractor)",
        True,
    ),
    ReasonCode(
        "ces_score_change",
        lambda r, m: r["ces_score_change"] <= -2,
        lambda r: (
            f"ease of getting help fell from "
            f"{_n(r, 'latest_ces_score') - _n(r, 'ces_score_change')} to "
            f"{_n(r, 'latest_ces_score')} (of 7)"
        ),
        True,
        ("latest_ces_score",),
    ),
    ReasonCode(
        "negative_moments_90d",
        lambda r, m: r["negative_moments_90d"] >= 2,
        lambda r: (
            f"{_plural(_n(r, 'negative_moments_90d'), 'negative experience')} in the last 90 days"
        ),
        True,
    ),
    ReasonCode(
        "avg_queue_seconds_90d",
        lambda r, m: r["avg_queue_seconds_90d"] >= 600,
        lambda r: (
            f"waited {int(r['avg_queue_seconds_90d'] // 60)} minutes on average in the call queue"
        ),
        True,
    ),
    ReasonCode(
        "days_since_last_transaction",
        lambda r, m: r["days_since_last_transaction"] > m,
        lambda r: f"no purchase in {_n(r, 'days_since_last_transaction')} days",
    ),
    ReasonCode(
        "recency_x_rate",
        # At least half again the usual gap: a gap of 1.1 times is the member's own rhythm.
        lambda r, m: r["recency_x_rate"] >= max(m, 1.5),
        lambda r: (
            f"quiet for longer than usual: {_times(r['recency_x_rate'])} the member's "
            "typical gap between purchases"
        ),
    ),
    ReasonCode(
        "transactions_30d_change",
        lambda r, m: r["transactions_30d_change"] < min(m, 0),
        lambda r: (
            f"{_plural(_n(r, 'transactions_30d'), 'purchase')} in the last 30 days, "
            f"down from {_n(r, 'transactions_30d') - _n(r, 'transactions_30d_change')}"
        ),
        reads=("transactions_30d",),
    ),
    ReasonCode(
        "spend_90d_change",
        lambda r, m: r["spend_90d_change"] < min(m, 0),
        lambda r: (
            f"spent {abs(r['spend_90d_change']):.0f} less in the last 90 days than "
            "in the 90 days before"
        ),
    ),
    ReasonCode(
        "transactions_90d",
        lambda r, m: r["transactions_90d"] < m,
        lambda r: _few_purchases(_n(r, "transactions_90d")),
    ),
    ReasonCode(
        "engagement_index_change",
        lambda r, m: r["engagement_index_change"] <= -10,
        lambda r: f"engagement index fell by {abs(r['engagement_index_change']):.0f} points",
    ),
)


def _spend_up(row) -> float:
    """Spend in the last 90 days against the 90 days before, in percent (the prior is > 0)."""
    before = float(row["spend_90d"]) - float(row["spend_90d_change"])
    return 100.0 * float(row["spend_90d_change"]) / before


def _spend_before(frame: pd.DataFrame) -> pd.Series:
    return frame["spend_90d"] - frame["spend_90d_change"]


# Strengths: what makes a member a good relationship, for programs that thank and invite (the
# advocates) rather than win back. They read the same point-in-time features as the risk codes,
# and fire on the favourable side only: a member is never thanked for a detractor answer.
STRENGTH_CODES: tuple[ReasonCode, ...] = (
    ReasonCode(
        "latest_nps_score",
        lambda r, m: r["latest_nps_score"] >= 9,
        lambda r: f"promoter in the last survey (NPS {_n(r, 'latest_nps_score')})",
    ),
    ReasonCode(
        "spend_90d_change",
        lambda r, m: (_spend_before(r) > 0) & (r["spend_90d_change"] >= 0.1 * _spend_before(r)),
        lambda r: f"spend up {_spend_up(r):.0f}% over the last 90 days",
        reads=("spend_90d",),
    ),
    ReasonCode(
        "positive_moments_90d",
        lambda r, m: r["positive_moments_90d"] >= 1,
        lambda r: (
            f"{_plural(_n(r, 'positive_moments_90d'), 'good experience')} in the last 90 days"
        ),
    ),
    ReasonCode(
        "latest_ces_score",
        lambda r, m: r["latest_ces_score"] >= 6,
        lambda r: f"found it easy to get help (effort score {_n(r, 'latest_ces_score')} of 7)",
    ),
    ReasonCode(
        "transactions_90d",
        lambda r, m: (r["transactions_90d"] >= 3) & (r["transactions_90d"] > m),
        lambda r: f"{_n(r, 'transactions_90d')} purchases in the last 90 days",
    ),
    ReasonCode(
        "tenure_days",
        lambda r, m: r["tenure_days"] >= 730,
        lambda r: f"a member for {_n(r, 'tenure_days') // 365} years",
    ),
)


def top_strengths(features: pd.DataFrame, k: int = 3) -> np.ndarray:
    """Up to ``k`` strengths per row of ``features`` (customer_360 columns), strongest first:
    the member's distance from the median on each code's feature, as for the risk reasons."""
    return top_reasons(features, None, k, codes=STRENGTH_CODES)


def _percentile_distance(values: pd.Series) -> pd.Series:
    """How far each value is from the median, as |percentile - 0.5| (0 to 0.5)."""
    return (values.rank(pct=True) - 0.5).abs().fillna(0.0)


def top_reasons(
    features: pd.DataFrame,
    importance: pd.DataFrame | None = None,
    k: int = 3,
    codes: tuple[ReasonCode, ...] = REASON_CODES,
) -> np.ndarray:
    """Up to ``k`` reasons per row of ``features`` (the churn model frame), in rank order: an
    array of ``len(features)`` rows and ``k`` columns, None where a member has fewer reasons.

    ``importance`` has ``feature, importance`` (permutation importance from training); without
    it every code weighs the same. Which codes fire, and their order, is computed for all rows
    at once (a code's test reads whole columns), and each code words each distinct set of the
    values it reads once, so a million members take seconds, not minutes.
    """
    weights = {}
    if importance is not None and len(importance):
        weights = dict(
            zip(importance["feature"], np.clip(importance["importance"], 0, None), strict=False)
        )
    codes = [c for c in codes if c.feature in features.columns]
    rows = len(features)
    if not codes or not rows:
        return np.full((rows, k), None, dtype=object)
    # Sort keys, one column per code: negative moments first, then by strength; a code that does
    # not fire sorts last (inf). A stable sort keeps REASON_CODES order between equal keys.
    keys = np.full((rows, len(codes)), np.inf)
    for position, code in enumerate(codes):
        values = features[code.feature]
        # A column nobody has (e.g. no survey answers among these members) has no median.
        median = values.median()
        median = float(median) if pd.notna(median) else float("nan")
        fired = values.notna() & code.fires(features, median).fillna(False).astype(bool)
        if code.feature in ("nps_score_change", "latest_nps_score"):
            fired &= features["latest_nps_score"].notna()
        strength = (weights.get(code.feature, 0.0) + 1e-3) * (
            _percentile_distance(values).to_numpy() + 1e-3
        )
        rank_group = 0.0 if code.negative_moment else 10.0  # strength stays below 1.01
        keys[:, position] = np.where(fired.to_numpy(), rank_group - strength, np.inf)
    order = np.argsort(keys, axis=1, kind="stable")[:, :k]
    kept = np.isfinite(np.take_along_axis(keys, order, axis=1))
    out = np.full((rows, k), None, dtype=object)
    for position, code in enumerate(codes):
        placed = kept & (order == position)
        members = placed.any(axis=1)
        if not members.any():
            continue
        worded = np.empty(rows, dtype=object)
        worded[members] = _words(code, features.loc[members, [code.feature, *code.reads]])
        for j in range(placed.shape[1]):  # fewer than k columns when fewer codes apply
            out[placed[:, j], j] = worded[placed[:, j]]
    return out


def _words(code: ReasonCode, inputs: pd.DataFrame) -> np.ndarray:
    """``code``'s words for every row of ``inputs`` (the columns it reads), each distinct row
    worded once: most inputs are small counts, so a million members need a few thousand
    strings, not a million."""
    group = inputs.groupby(list(inputs.columns), dropna=False, sort=False).ngroup().to_numpy()
    first = np.unique(group, return_index=True)[1]
    row = _RowView({column: inputs[column].to_numpy()[first] for column in inputs.columns})
    distinct = np.empty(len(first), dtype=object)
    for index in range(len(first)):
        row.index = index
        distinct[index] = code.words(row)
    return distinct[group]


class _RowView:
    """One row of a frame, read as ``row["column"]`` by the codes' words (no Series per row)."""

    def __init__(self, columns: dict[str, np.ndarray]):
        self.columns = columns
        self.index = 0

    def __getitem__(self, column: str):
        return self.columns[column][self.index]
