"""Labels computed from warehouse facts (never from the generator's answer file).

Churn: a member who bought something (amount > 0) in the ``activity_days`` before the cutoff and
then makes no purchase in the ``horizon_days`` from the cutoff, or closes the account in that
window. Members closed before the cutoff are not at risk and get no row.

Engagement segment: from the member's latest *relationship* survey submitted in the year before
the cutoff, by a rule read off the survey's own design, not fitted to any data:

- the five emotional items (valued, confident, informed, protected, helped) are agreement on a
  1-5 scale whose anchors are 1 strongly disagree, 2 disagree, 3 neither, 4 agree, 5 strongly
  agree; the mean of the answered items says whether the member, on average, *agrees* (>= 4) or
  *disagrees* (<= 2) that the brand makes them feel that way;
- NPS (0-10) has its standard categories (Reichheld 2003, and every survey platform): promoters
  9-10, passives 7-8, detractors 0-6.

- **Engaged**: mean emotional item >= 4 (agrees) and NPS >= 9 (a promoter): emotionally
  connected and recommending, the two things an engaged customer does;
- **Disengaged**: mean emotional item <= 2 (disagrees), or NPS <= 6 (a detractor: negativity
  bias says a detractor answer outweighs good item scores);
- **Swing**: everything in between (neutral items, or a passive).

The thresholds are the scale's anchor points, so nothing here was tuned on the sample's answer
file; agreement with the answer file's true segment is measured after the fact, as a check
(ml/README.md). An earlier rule (3.8 / 7 and 2.6 / 6) had been chosen by that agreement, which
made the label fit the generator rather than the survey. A survey answer is a noisy reading of
engagement, so that agreement is also the ceiling of any model trained on these labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

SEGMENTS: tuple[str, ...] = ("Disengaged", "Swing", "Engaged")
EMOTION_ITEMS: tuple[str, ...] = (
    "valued_score",
    "confident_score",
    "informed_score",
    "protected_score",
    "helped_score",
)
# The scale's anchors (module docstring): 4 "agree", 2 "disagree"; NPS promoter and detractor.
ENGAGED_MIN_EMOTION = 4.0
ENGAGED_MIN_NPS = 9
DISENGAGED_MAX_EMOTION = 2.0
DISENGAGED_MAX_NPS = 6


class IncompleteLabelWindowError(ValueError):
    """A cutoff's label window reaches past the last day of data, so its label is unknowable."""


def label_window_complete(cutoff: date, last_data_date: date, horizon_days: int) -> bool:
    """True when every day of ``[cutoff, cutoff + horizon)`` is on or before ``last_data_date``."""
    return cutoff + timedelta(days=horizon_days - 1) <= last_data_date


def churn_labels(
    purchases: pd.DataFrame,
    members: pd.DataFrame,
    cutoffs: Sequence[date],
    last_data_date: date,
    horizon_days: int = 90,
    activity_days: int = 180,
) -> pd.DataFrame:
    """One row per member active before each cutoff: ``member_id, cutoff_date, churned``.

    ``purchases`` has ``member_id, occurred_date, amount`` (returns may be included; only
    ``amount > 0`` counts as a purchase). ``members`` has ``member_id, closed_at`` (NaT when open).
    Raises ``IncompleteLabelWindowError`` for a cutoff whose window is not fully observed, because
    a half-seen window would label quiet members as churners.
    """
    bought = purchases.loc[purchases["amount"] > 0, ["member_id", "occurred_date"]]
    occurred = pd.to_datetime(bought["occurred_date"]).reset_index(drop=True)
    closed_at = pd.to_datetime(members["closed_at"]).reset_index(drop=True)
    # Members as integer codes shared by both frames: set tests on codes are numpy's, where
    # tests on the Arrow-backed strings loop in Python (about 15 s at a million members).
    codes, names = pd.factorize(
        pd.concat([bought["member_id"], members["member_id"]], ignore_index=True)
    )
    buyer, member = codes[: len(bought)], codes[len(bought) :]
    frames = []
    for cutoff in cutoffs:
        if not label_window_complete(cutoff, last_data_date, horizon_days):
            raise IncompleteLabelWindowError(
                f"cutoff {cutoff} needs data up to {cutoff + timedelta(days=horizon_days - 1)} "
                f"for its {horizon_days}-day churn window, but data ends on {last_data_date}"
            )
        start = pd.Timestamp(cutoff)
        end = start + pd.Timedelta(days=horizon_days)
        before = (occurred >= start - pd.Timedelta(days=activity_days)) & (occurred < start)
        after = (occurred >= start) & (occurred < end)
        active = np.unique(buyer[before.to_numpy()])
        active = active[active >= 0]  # a purchase with no member is no one's
        closed_before = member[(closed_at < start).to_numpy()]
        closed_in_window = member[((closed_at >= start) & (closed_at < end)).to_numpy()]
        active = active[~np.isin(active, closed_before)]
        churned = ~np.isin(active, buyer[after.to_numpy()]) | np.isin(active, closed_in_window)
        frames.append(
            pd.DataFrame(
                {"member_id": names.take(active), "cutoff_date": cutoff, "churned": churned}
            )
        )
    if not frames:
        return pd.DataFrame({"member_id": [], "cutoff_date": [], "churned": []})
    out = pd.concat(frames, ignore_index=True)
    out["churned"] = out["churned"].astype(bool)
    return out.sort_values(["cutoff_date", "member_id"], ignore_index=True)


def segment_from_answers(mean_emotion: pd.Series, nps: pd.Series) -> pd.Series:
    """The documented rule (module docstring) applied element-wise."""
    engaged = (mean_emotion >= ENGAGED_MIN_EMOTION) & (nps >= ENGAGED_MIN_NPS)
    disengaged = (mean_emotion <= DISENGAGED_MAX_EMOTION) | (nps <= DISENGAGED_MAX_NPS)
    labels = np.where(engaged, "Engaged", np.where(disengaged, "Disengaged", "Swing"))
    return pd.Series(labels, index=mean_emotion.index, dtype=object)


def segment_labels(
    responses: pd.DataFrame, cutoffs: Sequence[date], lookback_days: int = 365
) -> pd.DataFrame:
    """``member_id, cutoff_date, segment, survey_submitted_at`` from the latest relationship survey.

    ``responses`` has ``member_id, submitted_at, survey_type, nps_score`` and the five emotional
    items. Only responses submitted strictly before the cutoff and within ``lookback_days`` count;
    a response missing NPS or every emotional item cannot be placed and is skipped.
    """
    rel = responses[
        (responses["survey_type"] == "relationship") & responses["member_id"].notna()
    ].copy()
    rel["submitted_at"] = pd.to_datetime(rel["submitted_at"])
    rel["mean_emotion"] = rel[list(EMOTION_ITEMS)].astype(float).mean(axis=1)
    rel["nps_score"] = rel["nps_score"].astype(float)
    rel = rel.dropna(subset=["mean_emotion", "nps_score"])
    frames = []
    for cutoff in cutoffs:
        start = pd.Timestamp(cutoff)
        window = rel[
            (rel["submitted_at"] < start)
            & (rel["submitted_at"] >= start - pd.Timedelta(days=lookback_days))
        ]
        latest = window.sort_values("submitted_at").groupby("member_id").tail(1)
        frames.append(
            pd.DataFrame(
                {
                    "member_id": latest["member_id"].to_numpy(),
                    "cutoff_date": cutoff,
                    "segment": segment_from_answers(
                        latest["mean_emotion"], latest["nps_score"]
                    ).to_numpy(),
                    "survey_submitted_at": latest["submitted_at"].to_numpy(),
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=["member_id", "cutoff_date", "segment", "survey_submitted_at"])
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["cutoff_date", "member_id"], ignore_index=True)
