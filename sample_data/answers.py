"""The answer key: realised churn labels, the model's own churn probabilities, true segments.

Churn at a cutoff follows the platform's definition, which uses only observable data: a member
with a purchase in the 180 days before the cutoff churns if they make no purchase in the 90 days
from it, or close the account in that window.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from sample_data import simulate as sim

BEFORE = 180
AFTER = 90
# A short history's first cutoff: after one quarter, not after a whole activity window.
SHORT_BEFORE = 90


def cutoff_days(start: date, n_days: int, history_days: int = BEFORE) -> np.ndarray:
    """First day of every month from start + 180 days (or ``history_days``) to the last day
    that leaves 90 days."""
    first, last = start + timedelta(days=history_days), start + timedelta(days=n_days - AFTER)
    month = date(first.year, first.month, 1)
    if month < first:
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    days = []
    while month <= last:
        days.append((month - start).days)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return np.array(days, dtype=np.int64)


def _counts(key: np.ndarray, member: np.ndarray, span: int, lo: int, hi: int) -> np.ndarray:
    """Purchases of each member on days [lo, hi) from a sorted member * span + day key."""
    return np.searchsorted(key, member * span + hi) - np.searchsorted(key, member * span + lo)


def _label_probability(
    events: sim.ChunkEvents, season: np.ndarray, cutoff: int, alive: np.ndarray
) -> np.ndarray:
    """P(label = 1) from the latent state at the cutoff, by a 13-week forward recursion.

    Engagement follows its expected path back to the member's level, the negative-moment
    score decays and a purchase break runs its course; future moments and breaks are the
    chance the ceiling leaves.
    """
    week = cutoff // 7
    e0, n0 = events.e_hist[:, week], events.neg_hist[:, week]
    away = events.away_hist[:, week].astype(np.int64)
    no_buy, bought, left_bought = alive.astype(float), np.zeros(len(e0)), np.zeros(len(e0))
    for k in range(AFTER // 7 + 2):
        first_day, last_day = 7 * (week + k), 7 * (week + k) + 6
        share = (min(last_day, cutoff + AFTER - 1) - max(first_day, cutoff) + 1) / 7
        if share <= 0:
            break
        e = events.level + (e0 - events.level) * (1 - sim.REVERSION) ** k
        lam = events.rate * np.exp(sim.FREQ_E * e) * season[week + k] * share
        lam *= np.where(away > k, sim.BREAK_FACTOR, 1.0)
        p_buy = 1 - np.exp(-lam)
        bought, no_buy = bought + no_buy * p_buy, no_buy * (1 - p_buy)
        if last_day <= cutoff + AFTER - 1:
            logit = sim.HAZARD_BASE - sim.HAZARD_E * e + sim.HAZARD_NEG * n0 * sim.NEG_MEMORY**k
            hazard = 1 / (1 + np.exp(-logit))
            left_bought += bought * hazard * (1 - sim.CLOSE_SHARE)
            bought, no_buy = bought * (1 - hazard), no_buy * (1 - hazard)
    return 1 - bought - left_bought


def answer_rows(
    events: sim.ChunkEvents, ids: np.ndarray, season: np.ndarray, cutoffs: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Churn and segment rows for one chunk, ordered by member then cutoff."""
    tx = events.transactions
    span = int(cutoffs.max(initial=0)) + AFTER + 1
    bought = tx["amount"] > 0
    key = np.sort(tx["member"][bought] * span + tx["ts"][bought] // sim.DAY)
    member = np.arange(len(ids))
    # Typed empty seeds keep the column types when the period is too short for any cutoff.
    none = {"m": np.int64, "c": np.int64, "p": np.float64, "y": bool, "s": object, "e": np.float64}
    churn = {k: [np.empty(0, none[k])] for k in ("m", "c", "p", "y")}
    seg = {k: [np.empty(0, none[k])] for k in ("m", "c", "s", "e")}
    for cutoff in cutoffs:
        active = _counts(key, member, span, cutoff - BEFORE, cutoff) > 0
        later = _counts(key, member, span, cutoff, cutoff + AFTER) > 0
        closes = (events.closed_day >= cutoff) & (events.closed_day < cutoff + AFTER)
        alive = events.alive_hist[:, cutoff // 7]
        prob = _label_probability(events, season, int(cutoff), alive)
        churn["m"].append(member[active])
        churn["c"].append(np.full(active.sum(), cutoff))
        churn["p"].append(prob[active])
        churn["y"].append((~later | closes)[active])
        e = events.e_hist[alive, cutoff // 7].astype(np.float64)
        seg["m"].append(member[alive])
        seg["c"].append(np.full(alive.sum(), cutoff))
        seg["s"].append(np.array(sim.SEGMENTS, dtype=object)[sim.segment_codes(e)])
        seg["e"].append(np.round(e, 4))
    return _ordered(churn, ids, ("true_churn_probability", "churned")), _ordered(
        seg, ids, ("true_segment", "latent_engagement")
    )


def _ordered(
    parts: dict[str, list[np.ndarray]], ids: np.ndarray, names: tuple[str, str]
) -> dict[str, np.ndarray]:
    flat = {key: np.concatenate(value) for key, value in parts.items()}
    member, cutoff = flat["m"], flat["c"]
    order = np.lexsort((cutoff, member))
    values = list(flat.values())
    return {
        "member_id": ids[member[order]],
        "cutoff_day": cutoff[order],
        names[0]: values[2][order],
        names[1]: values[3][order],
    }
