"""Who the members are (drawn before the simulation) and their loyalty-table rows (after it)."""

from __future__ import annotations

from datetime import date

import numpy as np

from sample_data import simulate as sim
from sample_data.text import FIRST_NAMES, LAST_NAMES, emails, format_phones, messy, phone_digits
from sample_data.writers import sql_timestamps

REGIONS = ("North", "South", "East", "West", "Central")
TIERS = ("bronze", "silver", "gold", "platinum")
# Trailing 52-week spend at which each tier above bronze starts.
TIER_SPEND = (400.0, 1000.0, 2200.0)
DORMANT = 0.08
ENROLLED_BEFORE = 0.55
# The single_cohort shape: everyone enrols within the first quarter of the history.
COHORT_DAYS = 90


def draw_people(
    rng: np.random.Generator, n_days: int, member_no: np.ndarray, cohort_days: int = 0
) -> sim.Arrays:
    """Static attributes; tenure varies from years before the period to its last month.

    With ``cohort_days`` everyone enrols within that many days from the start instead: one
    acquisition cohort, so nobody enrolled before the period and nobody is dormant.
    """
    m = len(member_no)
    age = 18 + rng.beta(2.0, 2.2, m) * 67
    u = rng.random(m)
    dormant = u < DORMANT
    before = u < DORMANT + ENROLLED_BEFORE
    if cohort_days > 0:
        dormant[:] = before[:] = False
    # Older enrolments are rarer: tenure before the start is roughly exponential (mean 2 years).
    tenure = np.minimum(rng.exponential(730, m), 6 * 365).astype(np.int64) + 1
    last = min(cohort_days, n_days) if cohort_days > 0 else n_days - 30
    enrol_day = np.where(before, -tenure, rng.integers(0, max(last, 1), m))
    enrol_day = np.where(dormant, -tenure - 200, enrol_day)
    opt_in = np.where(rng.random(m) < 0.08, -1, (rng.random(m) < 0.65).astype(np.int64))
    opt_change = np.where(rng.random(m) < 0.12, rng.integers(0, n_days, m), -1)
    return {
        "member_no": member_no,
        "age": age,
        "birth_day": -(age * 365.25).astype(np.int64) - rng.integers(0, 365, m),
        "dormant": dormant,
        "enrol_day": enrol_day,
        "enrol_sec": rng.integers(8 * 3600, 21 * 3600, m),
        "first": rng.integers(0, len(FIRST_NAMES), m),
        "last": rng.integers(0, len(LAST_NAMES), m),
        "region": rng.integers(0, len(REGIONS), m),
        "postal": rng.integers(0, 10_000, m),
        "phone_style": rng.integers(0, 4, m),
        "opt_in": opt_in,
        "opt_change": np.maximum(opt_change, np.where(opt_change >= 0, enrol_day, -1)),
    }


def contact_details(people: sim.Arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean email, phone digits and the loyalty-database phone text for each member."""
    first = np.array(FIRST_NAMES)[people["first"]]
    last = np.array(LAST_NAMES)[people["last"]]
    digits = phone_digits(people["member_no"])
    email = emails(first, last, people["member_no"])
    return email, digits, format_phones(digits, people["phone_style"])


def member_ids(member_no: np.ndarray) -> np.ndarray:
    return "M" + np.char.zfill(member_no.astype(str), 7).astype(object)


def _tiers(events: sim.ChunkEvents, enrol_day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tier by trailing 52-week spend each week; returns the final tier and the last change day.

    Members enrolled before the period get their expected spend for the weeks before it, so
    the first weeks do not show a spurious wave of upgrades.
    """
    spend = np.cumsum(events.weekly_spend, axis=1, dtype=np.float64)
    weeks = spend.shape[1]
    trailing = spend.copy()
    trailing[:, 52:] -= spend[:, :-52]
    missing = np.clip(51 - np.arange(weeks), 0, None)[None, :]
    prior = np.where(enrol_day < 0, events.expected_weekly, 0.0)[:, None]
    tier = np.digitize(trailing + prior * missing, TIER_SPEND)
    changed = tier[:, 1:] != tier[:, :-1]
    last = weeks - 1 - np.argmax(changed[:, ::-1], axis=1)
    change_day = np.where(changed.any(axis=1), 7 * last, sim.NEVER)
    return tier[:, -1], change_day


def member_table(
    rng: np.random.Generator,
    start: date,
    n_days: int,
    people: sim.Arrays,
    events: sim.ChunkEvents,
    email: np.ndarray,
    phone: np.ndarray,
) -> dict[str, np.ndarray]:
    """Rows of ``members``: updated_at is the last attribute change (tier, opt-in, closure)."""
    m = len(email)
    tier, tier_day = _tiers(events, people["enrol_day"])
    enrolled = people["enrol_day"] * sim.DAY + people["enrol_sec"]
    seconds_in_day = rng.integers(0, sim.DAY, (3, m))
    has_closed = events.closed_day != sim.NEVER
    closed = events.closed_day * sim.DAY + seconds_in_day[0]
    changes = np.stack(
        [
            enrolled,
            np.where(tier_day != sim.NEVER, tier_day * sim.DAY + seconds_in_day[1], enrolled),
            np.where(
                people["opt_change"] >= 0,
                people["opt_change"] * sim.DAY + seconds_in_day[2],
                enrolled,
            ),
            np.where(has_closed, closed, enrolled),
        ]
    )
    updated = np.minimum(changes.max(axis=0), n_days * sim.DAY - 1)
    closed_text = sql_timestamps(start, closed)
    closed_text[~has_closed] = None
    opt_in = people["opt_in"].astype(object)
    opt_in[people["opt_in"] < 0] = None
    birth = np.datetime_as_string(np.datetime64(start, "D") + people["birth_day"]).astype(object)
    first = np.array(FIRST_NAMES, dtype=object)[people["first"]]
    last = np.array(LAST_NAMES, dtype=object)[people["last"]]
    region = people["region"]
    postal = 10_000 + 18_000 * region + people["postal"]
    return {
        "member_id": member_ids(people["member_no"]),
        "enrolled_at": sql_timestamps(start, enrolled),
        "updated_at": sql_timestamps(start, updated),
        "email": messy(rng, email, 0.08),
        "phone": phone,
        "first_name": first,
        "last_name": last,
        "birth_date": birth,
        "postal_code": np.char.zfill(postal.astype(str), 5).astype(object),
        "region": np.array(REGIONS, dtype=object)[region],
        "tier": np.array(TIERS, dtype=object)[tier],
        "marketing_opt_in": opt_in,
        "closed_at": closed_text,
    }
