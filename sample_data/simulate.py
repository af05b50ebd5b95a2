"""The behaviour model: a latent emotional engagement drives purchases, contacts, surveys, churn.

Everything is vectorised over the members of one chunk. The only Python loop runs over weeks
(about a hundred for two years), so the cost grows with members and events through numpy, never
through per-event Python code. Events carry ``ts``: whole seconds since ``start`` 00:00 UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

Arrays = dict[str, np.ndarray]
DAY = 86_400
NEVER = -(10**7)  # day sentinel for "did not happen"; real days may be negative (before start)

# Engagement e: a mean-reverting walk around each member's own level. Negative moments cost about
# three times what positive ones give (negativity bias), so one bad week can move a segment.
REVERSION = 0.08
WEEKLY_NOISE = 0.12
NEGATIVE_DROP = 0.5
POSITIVE_GAIN = 0.17
NEG_MEMORY = 0.7  # weekly decay of the recent-negative-moments score that feeds churn and NPS
ENGAGED_ABOVE = 0.7
DISENGAGED_BELOW = -0.2
SEGMENTS = ("Disengaged", "Swing", "Engaged")

# Purchases: frequency and basket both rise with e, so engaged members spend about twice as much.
FREQ_E = 0.32
BASKET_E = 0.2
RETURN_SHARE = 0.05
# Loyal members also go quiet for a while (travel, a move); recency alone must not mean churn.
BREAK_START = 0.015
BREAK_WEEKS = (3, 11)
BREAK_FACTOR = 0.1
CHANNELS = ("store", "online", "app")
STORES = 40
# Baskets grow in busy weeks too, by this share of the season's demand above 1.
BASKET_SEASON = 0.3
# A seasonal retailer's demand at each mid-month, January first, interpolated day by day: a
# November-December peak about 2.5x the base rate and a summer trough about 0.6x (by month).
SEASONAL_CYCLE = (0.8, 0.9, 1.0, 1.0, 0.9, 0.65, 0.5, 0.65, 0.95, 1.15, 2.4, 3.0)

# Contacts: a problem opens an issue; an open issue drives (repeated) contacts until resolved.
BACKGROUND_CALLS = 0.012
ISSUE_CALLS = 0.9
LONG_WAIT = 600
CALL_CHANNELS = ("phone", "chat", "callback")
REASONS = ("billing", "points", "complaint", "product", "account", "other")
AGENTS = 120

# Churn: weekly hazard rises as e falls, after recent negative moments and repeated contacts.
HAZARD_BASE = -5.0
HAZARD_E = 0.9
HAZARD_NEG = 1.0
HAZARD_REPEAT = 0.6
CLOSE_SHARE = 0.3

SURVEY_TYPES = ("relationship", "transactional", "post_call")
SURVEY_CHANNELS = ("email", "sms", "app", "web")
EMOTIONS = ("valued", "confident", "informed", "protected", "helped")


@dataclass(frozen=True)
class Calendar:
    """The simulated period: day 0 is ``start``, week w covers days 7w..7w+6.

    ``seasonal`` swaps the mild default wave for the strong yearly cycle of a seasonal retailer.
    """

    start: date
    n_days: int
    seasonal: bool = False

    @property
    def n_weeks(self) -> int:
        return -(-self.n_days // 7)

    def season(self) -> np.ndarray:
        """Weekly demand multiplier: a mild yearly wave with a December peak (or the cycle)."""
        mid = np.datetime64(self.start, "D") + np.arange(self.n_weeks) * 7 + 3
        doy = (mid - mid.astype("datetime64[Y]")).astype(int)
        if self.seasonal:
            return _cycle(doy)
        to_peak = np.minimum(np.abs(doy - 352), 365 - np.abs(doy - 352))
        return (
            1
            + 0.08 * np.cos(2 * np.pi * (doy - 200) / 365)
            + 0.7 * np.exp(-0.5 * (to_peak / 12) ** 2)
        )

    def yearly_spend_factor(self) -> float:
        """The season's mean effect on weekly spend (purchases times basket) over a year."""
        demand = _cycle(np.arange(365)) if self.seasonal else 1.0
        return float(np.mean(demand * (1 + BASKET_SEASON * (demand - 1))))

    def weekday_weights(self) -> np.ndarray:
        """Probability of each day offset 0..6 within a week: Saturdays busiest, Sundays quiet."""
        by_weekday = np.array([0.8, 0.85, 0.9, 1.0, 1.2, 1.5, 0.9])
        weights = by_weekday[(self.start.weekday() + np.arange(7)) % 7]
        return weights / weights.sum()


def _cycle(doy: np.ndarray) -> np.ndarray:
    mids = (np.arange(12) + 0.5) * 365 / 12
    days = np.concatenate([mids - 365, mids, mids + 365])
    return np.interp(doy, days, np.tile(SEASONAL_CYCLE, 3))


def age_shift(age: np.ndarray) -> np.ndarray:
    """Life-stage U-shape of satisfaction: high in the twenties, lowest 35-50, higher after 60."""
    return 1.1 * np.minimum(((age - 42.0) / 22.0) ** 2, 1.0) - 0.35


def segment_codes(e: np.ndarray) -> np.ndarray:
    """0 Disengaged, 1 Swing, 2 Engaged, by fixed thresholds on e (about 30/40/30)."""
    return (e > DISENGAGED_BELOW).astype(np.int8) + (e > ENGAGED_ABOVE)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _stack(parts: list[Arrays]) -> Arrays:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


@dataclass
class ChunkEvents:
    """Everything one chunk produced, before formatting. Indices are local to the chunk."""

    transactions: Arrays
    calls: Arrays
    surveys: Arrays
    closed_day: np.ndarray  # NEVER if the account stayed open
    level: np.ndarray  # each member's own engagement level
    rate: np.ndarray  # purchases per week at e = 0 before seasonality
    expected_weekly: np.ndarray  # expected weekly spend at the member's level (0 if dormant)
    e_hist: np.ndarray  # members x (weeks + 1), e at the start of each week
    neg_hist: np.ndarray  # recent-negative score at the start of each week
    away_hist: np.ndarray  # weeks of a purchase break still to run at the start of each week
    alive_hist: np.ndarray  # active (enrolled, not churned) at the start of each week
    weekly_spend: np.ndarray  # members x weeks, for tiers


class ChunkSimulator:
    """Runs the weekly model for one chunk of members; ``run()`` returns ``ChunkEvents``.

    With ``buy_at_enrolment`` every member's first purchase is at the moment of enrolment, as
    when a retailer enrols its customers at the till.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        cal: Calendar,
        people: Arrays,
        agent_skill: np.ndarray,
        buy_at_enrolment: bool = False,
    ):
        self.rng, self.cal, self.agent_skill = rng, cal, agent_skill
        m = len(people["age"])
        self.m = m
        self.enrol_day = people["enrol_day"]
        self.enrol_ts = people["enrol_day"] * DAY + people["enrol_sec"]
        self.buy_at_enrolment = buy_at_enrolment
        self.level = rng.normal(0.0, 0.75, m) + age_shift(people["age"])
        self.e = self.level + rng.normal(0.0, 0.35, m)
        self.rate = rng.lognormal(np.log(0.32), 0.6, m)
        self.basket = rng.lognormal(np.log(32.0), 0.45, m)
        self.home_store = rng.integers(0, STORES, m)
        self.neg = np.zeros(m)
        self.issue = np.zeros(m, dtype=bool)
        self.away = np.zeros(m, dtype=np.int64)
        self.dormant = people["dormant"]
        self.churned = self.dormant.copy()
        # Dormant members left before the period; some of them closed the account back then.
        gone = rng.integers(self.enrol_day.clip(max=-2), 0)
        self.closed_day = np.where(self.churned & (rng.random(m) < CLOSE_SHARE), gone, NEVER)
        self.season = cal.season()
        self.dow = cal.weekday_weights()
        self.out: dict[str, list[Arrays]] = {"tx": [], "calls": [], "surveys": []}

    def run(self) -> ChunkEvents:
        """Step every week; record the latent state at the start of each week for the answers."""
        weeks, m = self.cal.n_weeks, self.m
        e_hist = np.empty((m, weeks + 1), dtype=np.float32)
        neg_hist = np.empty((m, weeks + 1), dtype=np.float32)
        away_hist = np.empty((m, weeks + 1), dtype=np.int8)
        alive_hist = np.empty((m, weeks + 1), dtype=bool)
        spend = np.zeros((m, weeks), dtype=np.float32)
        for w in range(weeks):
            e_hist[:, w], neg_hist[:, w], away_hist[:, w] = self.e, self.neg, self.away
            alive = ~self.churned & (self.enrol_day < 7 * w + 7)
            alive_hist[:, w] = alive & (self.enrol_day <= 7 * w)
            spend[:, w] = self._step(w, alive)
        e_hist[:, weeks], neg_hist[:, weeks], away_hist[:, weeks] = self.e, self.neg, self.away
        alive_hist[:, weeks] = ~self.churned
        return ChunkEvents(
            transactions=_stack(self.out["tx"]),
            calls=_stack(self.out["calls"]),
            surveys=_stack(self.out["surveys"]),
            closed_day=self.closed_day,
            level=self.level,
            rate=self.rate,
            expected_weekly=self._expected_weekly(),
            e_hist=e_hist,
            neg_hist=neg_hist,
            away_hist=away_hist,
            alive_hist=alive_hist,
            weekly_spend=spend,
        )

    def _expected_weekly(self) -> np.ndarray:
        expected = np.where(
            self.dormant, 0.0, self.rate * self.basket * np.exp((FREQ_E + BASKET_E) * self.level)
        )
        if self.cal.seasonal:
            # The cycle's yearly mean is well above 1; tiers use this for the weeks before the
            # start, and without it they would climb in the first weeks.
            expected = expected * self.cal.yearly_spend_factor()
        return expected

    def _step(self, w: int, alive: np.ndarray) -> np.ndarray:
        tx = self._purchases(w, alive)
        returned = np.bincount(tx["member"][tx["amount"] < 0], minlength=self.m) > 0
        calls, repeat = self._calls(w, alive, returned)
        neg = np.bincount(calls["member"], weights=calls["negative"], minlength=self.m)
        pos = np.bincount(calls["member"], weights=calls["positive"], minlength=self.m)
        s_neg, s_pos = self._surveys(w, alive, tx, calls, repeat)
        neg, pos = neg + s_neg, pos + s_pos
        self.neg = NEG_MEMORY * self.neg + neg
        self._churn(w, alive, repeat)
        noise = self.rng.normal(0.0, WEEKLY_NOISE, self.m)
        step = REVERSION * (self.level - self.e) + noise - NEGATIVE_DROP * neg + POSITIVE_GAIN * pos
        self.e = np.where(alive, np.clip(self.e + step, -3.5, 3.5), self.e)
        return np.bincount(tx["member"], weights=tx["amount"], minlength=self.m)

    def _times(self, member: np.ndarray, w: int, first_hour: int, hours: int) -> np.ndarray:
        """Event times inside week w, never before the member's enrolment nor after the end."""
        day = 7 * w + self.rng.choice(7, size=len(member), p=self.dow)
        day = np.maximum(day, self.enrol_day[member])
        sec = first_hour * 3600 + self.rng.integers(0, hours * 3600, len(member))
        ts = day.astype(np.int64) * DAY + sec
        if self.buy_at_enrolment:
            # The default keeps only the day, so an event may come hours before the enrolment;
            # a cohort's first purchase is its enrolment, so nothing may.
            ts = np.maximum(ts, self.enrol_ts[member])
        return ts

    def _keep(self, arrays: Arrays) -> Arrays:
        ok = arrays["ts"] < self.cal.n_days * DAY
        return {key: value[ok] for key, value in arrays.items()}

    def _purchases(self, w: int, alive: np.ndarray) -> Arrays:
        rng = self.rng
        starts = (self.away == 0) & (rng.random(self.m) < BREAK_START)
        self.away[starts] = rng.integers(*BREAK_WEEKS, int(starts.sum()))
        lam = self.rate * np.exp(FREQ_E * self.e) * self.season[w]
        lam *= np.where(self.away > 0, BREAK_FACTOR, 1.0)
        self.away = np.maximum(self.away - 1, 0)
        member = np.repeat(np.arange(self.m), rng.poisson(lam * alive))
        drawn = len(member)
        if self.buy_at_enrolment:
            joining = alive & (self.enrol_day >= 7 * w) & (self.enrol_day < 7 * w + 7)
            member = np.concatenate([member, np.flatnonzero(joining)])
        at_enrolment = np.arange(len(member)) >= drawn
        n = len(member)
        peak = 1 + BASKET_SEASON * (self.season[w] - 1)
        amount = self.basket[member] * np.exp(BASKET_E * self.e[member]) * peak
        amount *= rng.lognormal(0.0, 0.45, n)
        is_return = (rng.random(n) < RETURN_SHARE) & ~at_enrolment
        amount = np.round(np.where(is_return, -amount * rng.uniform(0.3, 1.0, n), amount), 2)
        progress = w / max(self.cal.n_weeks - 1, 1)
        p_app = 0.15 + 0.3 * progress  # the app takes share from the store over the period
        p_online = 0.28
        u = rng.random(n)
        channel = (u >= 1 - p_app - p_online).astype(np.int8) + (u >= 1 - p_app)
        store = np.where(rng.random(n) < 0.8, self.home_store[member], rng.integers(0, STORES, n))
        store = np.where(channel == 0, store, -1)
        earned = np.where(amount > 0, np.floor(amount), 0).astype(np.int64)
        redeemed = np.where((amount > 0) & (rng.random(n) < 0.08), rng.integers(2, 20, n) * 50, 0)
        late = rng.random(n) < 0.02
        delay = np.where(late, rng.integers(DAY, 5 * DAY, n), rng.integers(5, 900, n))
        ts = self._times(member, w, 8, 13)
        ts[at_enrolment] = self.enrol_ts[member[at_enrolment]]
        tx = {
            "member": member,
            "ts": ts,
            "amount": amount,
            "channel": channel,
            "store": store,
            "earned": earned,
            "redeemed": redeemed.astype(np.int64),
            "delay": delay,
        }
        tx = self._keep(tx)
        self.out["tx"].append(tx)
        return tx

    def _calls(self, w: int, alive: np.ndarray, returned: np.ndarray) -> tuple[Arrays, np.ndarray]:
        rng = self.rng
        # Disengaged members perceive more problems; a return often means something went wrong.
        problem = rng.random(self.m) < _sigmoid(-4.0 - 0.6 * self.e) + 0.25 * returned
        self.issue |= problem & alive
        lam = (BACKGROUND_CALLS + ISSUE_CALLS * self.issue) * alive
        count = rng.poisson(lam)
        member = np.repeat(np.arange(self.m), count)
        n = len(member)
        channel = rng.choice(3, size=n, p=[0.7, 0.2, 0.1])
        queue = rng.lognormal(np.log(np.array([130.0, 45.0, 20.0])[channel]), 1.1)
        handle = rng.lognormal(np.log(320.0), 0.6, n)
        transfers = rng.poisson(0.35, n)
        agent = rng.integers(0, AGENTS, n)
        long_wait = queue > LONG_WAIT
        logit = 1.75 + self.agent_skill[agent] - 0.6 * transfers - 0.4 * long_wait
        resolved = rng.random(n) < _sigmoid(logit)
        escalated = rng.random(n) < np.where(resolved, 0.04, 0.28)
        complaint = rng.random(n) < 0.12 + 0.25 * (self.e[member] < DISENGAGED_BELOW)
        reason = np.where(complaint, 2, rng.choice(6, size=n, p=[0.25, 0.3, 0.0, 0.15, 0.2, 0.1]))
        negative = ~resolved | escalated | long_wait
        positive = resolved & ~escalated & (transfers == 0) & (queue < 180)
        per_member = np.bincount(member, minlength=self.m)
        repeat = per_member >= 2
        fixed = np.bincount(member, weights=resolved, minlength=self.m) > 0
        self.issue &= ~fixed & (rng.random(self.m) > 0.25)
        calls = {
            "member": member,
            "ts": self._times(member, w, 8, 12),
            "channel": channel,
            "queue": np.round(queue).astype(np.int64),
            "handle": np.round(handle).astype(np.int64),
            "transfers": transfers,
            "agent": agent,
            "resolved": resolved,
            "escalated": escalated,
            "reason": reason,
            "negative": negative,
            "positive": positive,
            "repeat": repeat[member],
        }
        calls = self._keep(calls)
        self.out["calls"].append(calls)
        return calls, repeat

    def _surveys(
        self, w: int, alive: np.ndarray, tx: Arrays, calls: Arrays, repeat: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Invite, collect answers, and return each member's negative and positive moments."""
        rng = self.rng
        rel = np.flatnonzero(alive & (rng.random(self.m) < 2 / 52))
        rel = rel[rng.random(len(rel)) < np.clip(0.2 + 0.05 * self.e[rel], 0.05, 0.4)]
        buy = np.flatnonzero(rng.random(len(tx["member"])) < 0.05 * 0.15)
        call = np.flatnonzero(rng.random(len(calls["member"])) < 0.30 * 0.25)
        c_quality = (
            np.where(calls["resolved"], 0.8, -0.9)
            - 0.4 * calls["escalated"]
            - 0.3 * (calls["queue"] > LONG_WAIT)
            - 0.2 * calls["transfers"]
            + 0.3 * (calls["queue"] < 120)
        )
        member = np.concatenate([rel, tx["member"][buy], calls["member"][call]])
        kind = np.repeat(np.arange(3, dtype=np.int8), [len(rel), len(buy), len(call)])
        after = np.concatenate(
            [
                self._times(rel, w, 7, 16),
                tx["ts"][buy] + rng.integers(3600, 3 * DAY, len(buy)),
                calls["ts"][call] + rng.integers(600, 2 * DAY, len(call)),
            ]
        )
        quality = np.concatenate(
            [np.zeros(len(rel)), np.where(tx["amount"][buy] < 0, -0.6, 0.3), c_quality[call]]
        )
        # Related ids point into the chunk's whole event lists, so offset by what came before.
        n_tx = sum(len(part["ts"]) for part in self.out["tx"][:-1])
        n_calls = sum(len(part["ts"]) for part in self.out["calls"][:-1])
        related = np.concatenate([np.full(len(rel), -1), n_tx + buy, n_calls + call])
        answers = self._answers(member, kind, quality, repeat[member])
        survey = {"member": member, "kind": kind, "ts": after, "related": related, **answers}
        survey = self._keep(survey)
        self.out["surveys"].append(survey)
        detractor = survey["nps"].clip(min=0) <= 6
        detractor &= survey["nps"] >= 0
        bad_word = survey["comment_tone"] == 0
        neg = np.bincount(survey["member"], weights=detractor + bad_word, minlength=self.m)
        pos = np.bincount(survey["member"], weights=survey["nps"] >= 9, minlength=self.m)
        return neg, pos

    def _answers(
        self, member: np.ndarray, kind: np.ndarray, quality: np.ndarray, repeat: np.ndarray
    ) -> Arrays:
        rng = self.rng
        n = len(member)
        e, recent = self.e[member], self.neg[member]
        nps = 7.0 + 1.5 * e + 1.0 * quality - 0.4 * recent + rng.normal(0, 1.3, n)
        csat = 3.6 + 0.45 * e + 1.2 * quality + rng.normal(0, 0.7, n)
        ces = 5.0 + 0.3 * e + 1.6 * quality - 0.9 * repeat + rng.normal(0, 0.9, n)
        out = {
            "nps": np.clip(np.round(nps), 0, 10).astype(np.int64),
            "csat": np.clip(np.round(csat), 1, 5).astype(np.int64),
            "ces": np.clip(np.round(ces), 1, 7).astype(np.int64),
        }
        # Relationship surveys ask NPS and the emotional items; touchpoint surveys ask CSAT/CES.
        out["nps"][(kind > 0) & (rng.random(n) < 0.3)] = -1
        out["csat"][(kind == 0) & (rng.random(n) < 0.5)] = -1
        out["ces"][kind == 0] = -1
        with_emotions = (kind == 0) | (rng.random(n) < 0.3)
        for item in EMOTIONS:
            # "helped" is the item a touchpoint moves; the others follow the relationship.
            bump = 0.5 * quality if item == "helped" else 0.0
            score = 3.1 + 0.85 * e + bump + rng.normal(0, 0.7, n)
            score = np.clip(np.round(score), 1, 5).astype(np.int64)
            out[f"emo_{item}"] = np.where(with_emotions, score, -1)
        mood = np.where(out["nps"] >= 0, out["nps"], 2 * out["csat"])
        tone = (mood >= 7).astype(np.int8) + (mood >= 9)  # 0 negative, 1 mixed, 2 positive
        has_comment = rng.random(n) < np.where(tone == 0, 0.6, 0.35)
        out["comment_tone"] = np.where(has_comment, tone, -1).astype(np.int8)
        return out

    def _churn(self, w: int, alive: np.ndarray, repeat: np.ndarray) -> None:
        rng = self.rng
        logit = HAZARD_BASE - HAZARD_E * self.e + HAZARD_NEG * self.neg + HAZARD_REPEAT * repeat
        leaving = alive & (rng.random(self.m) < _sigmoid(logit))
        self.churned |= leaving
        day = min(7 * w + 6, self.cal.n_days - 1)  # leavers go at the end of the week
        closes = leaving & (rng.random(self.m) < CLOSE_SHARE)
        self.closed_day = np.where(closes, day, self.closed_day)
