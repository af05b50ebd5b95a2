"""Names, contact details and free text, composed with array operations.

Comments are real English sentences whose tone follows the scores, so a sentiment lexicon such as
VADER scores detractors negative and promoters positive. Some texts carry a phone number or an
email address: personal data the pipeline must redact.
"""

from __future__ import annotations

import numpy as np

FIRST_NAMES = tuple(
    "Anna Ben Carla David Elena Farid Grace Hugo Ines Jamal Kate Liam Maya Noah Olivia Pablo Quinn"
    " Rosa Sam Tara Umar Vera Will Xin Yara Zoe Marco Priya Tom Lena".split()
)
LAST_NAMES = tuple(
    "Smith Garcia Nguyen Brown Khan Rossi Muller Silva Kim Lopez Walker Novak Patel Costa Evans"
    " Fischer Moreau Jensen Okafor Ito Baker Reyes Ward Schmidt Hughes Bianchi Park Dubois Young"
    " Lee".split()
)

# Indexed [tone][...] with tone 0 negative, 1 mixed, 2 positive; bodies also by survey type.
OPENERS = (
    (
        "Very disappointed.",
        "Terrible experience.",
        "Honestly, this was so frustrating and annoying.",
        "I am really unhappy.",
        "Not good at all.",
        "Awful service this time.",
    ),
    (
        "It was okay.",
        "Decent overall.",
        "Nothing special.",
        "Mostly fine.",
        "Average experience.",
        "It was alright.",
    ),
    (
        "Great service!",
        "Excellent experience.",
        "I love this store.",
        "Really happy with everything.",
        "Fantastic, as always.",
        "Wonderful people.",
    ),
)
BODIES = (
    (
        (
            "The rewards are useless and the prices are awful.",
            "I feel ignored and unappreciated, which is sad.",
            "Long-time members are treated badly now.",
            "The app keeps crashing and I lost my points.",
        ),
        (
            "The product broke after two days and the return was a hassle.",
            "My order arrived late and damaged.",
            "The checkout was slow and the staff were rude.",
            "I was charged twice, a terrible mistake.",
        ),
        (
            "I waited forever on hold and the problem is still not fixed.",
            "The agent transferred me three times, a horrible waste of time.",
            "I had to call again, the problem is not solved.",
            "The agent was rude and did not listen.",
        ),
    ),
    (
        (
            "The points are nice but hard to redeem.",
            "Prices are fair, the app could be simpler.",
            "The store is fine but often crowded.",
            "Offers are sometimes relevant.",
        ),
        (
            "Delivery took a bit longer than expected.",
            "The product is fine for the price.",
            "Checkout was normal.",
            "The staff were polite but busy.",
        ),
        (
            "The agent was polite, though it took a while.",
            "My question was answered after one transfer.",
            "The wait was a little long.",
            "The call was fine.",
        ),
    ),
    (
        (
            "The rewards are generous and easy to use.",
            "I feel valued as a member.",
            "The staff always remember me, which is lovely.",
            "The app is great and the offers are perfect for me.",
        ),
        (
            "Delivery was fast and the product is wonderful.",
            "The staff were friendly and helpful.",
            "Checkout was quick and easy.",
            "Amazing quality, I am very satisfied.",
        ),
        (
            "The agent solved my problem quickly and was very kind.",
            "Super helpful agent, everything is sorted.",
            "Quick answer, friendly and clear.",
            "The agent was patient and really helpful.",
        ),
    ),
)
# Closers carry their own leading space so an empty one leaves no trailing blank.
CLOSERS = (
    (" I will probably shop elsewhere.", " Very poor.", " What a disappointment.", "", ""),
    (" It is what it is.", "", "", "", ""),
    (
        " Thank you so much!",
        " Keep up the good work.",
        " I recommend you to all my friends.",
        "",
        "",
    ),
)
NOTE_REASONS = (
    ("Customer asked about a charge on the last bill.", "Billing question about a payment."),
    ("Points balance looked wrong to the customer.", "Customer wanted to redeem points."),
    ("Customer complained about service in store.", "Complaint about a delayed order."),
    ("Question about a product.", "Product stopped working, asked about a replacement."),
    ("Customer wanted to update account details.", "Login trouble with the app."),
    ("General question.", "Customer called about an offer."),
)
NOTE_OUTCOMES = (
    ("Could not fix it today, follow-up needed.", "Not resolved, customer unhappy."),
    ("Resolved on the call.", "Explained and fixed, customer satisfied."),
    ("Escalated to a supervisor.", "Escalated to the back office."),
)


def _pick(rng: np.random.Generator, table: np.ndarray, *index: np.ndarray) -> np.ndarray:
    """Pick one string per row from ``table[index..., k]`` with a random k."""
    k = rng.integers(0, table.shape[-1], len(index[0]))
    return table[(*index, k)]


def _obj(values: tuple) -> np.ndarray:
    return np.array(values, dtype=object)


def phone_digits(member_no: np.ndarray) -> np.ndarray:
    """Seven unique digits per member (multiplying by a unit mod 10**7 is a bijection)."""
    return (member_no.astype(np.int64) * 7919 + 1_234_567) % 10_000_000


def format_phones(digits: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Area code 555 (fictional) in one of four styles chosen per row by ``style`` 0-3."""
    head = np.char.zfill((digits // 10_000).astype(str), 3).astype(object)
    tail = np.char.zfill((digits % 10_000).astype(str), 4).astype(object)
    options = np.stack(
        [
            "+1 555 " + head + " " + tail,
            "(555) " + head + "-" + tail,
            "555." + head + "." + tail,
            "555" + head + tail,
        ]
    )
    return options[style, np.arange(len(digits))]


def emails(first: np.ndarray, last: np.ndarray, member_no: np.ndarray) -> np.ndarray:
    """Unique addresses like anna.smith123@example.com (the member number makes them unique)."""
    lower = np.char.lower(first.astype(str)).astype(object)
    return (
        lower
        + "."
        + np.char.lower(last.astype(str)).astype(object)
        + member_no.astype(str).astype(object)
        + "@example.com"
    )


def messy(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    """Typed-in variants: upper case or stray spaces on about ``share`` of the rows."""
    out = values.copy()
    u = rng.random(len(values))
    upper = u < share / 2
    spaced = (u >= share / 2) & (u < share)
    out[upper] = np.char.upper(out[upper].astype(str)).astype(object)
    out[spaced] = " " + out[spaced] + " "
    return out


def comments(
    rng: np.random.Generator,
    tone: np.ndarray,
    kind: np.ndarray,
    email: np.ndarray,
    phone: np.ndarray,
) -> np.ndarray:
    """One comment per row from tone (0-2) and survey type (0-2); about 4% leak contact data."""
    text = (
        _pick(rng, _obj(OPENERS), tone)
        + " "
        + _pick(rng, _obj(BODIES), tone, kind)
        + _pick(rng, _obj(CLOSERS), tone)
    )
    leak = rng.random(len(text))
    text = np.where(leak < 0.02, text + " You can reach me at " + phone + ".", text)
    return np.where((leak >= 0.02) & (leak < 0.04), text + " My email is " + email + ".", text)


def notes(
    rng: np.random.Generator, reason: np.ndarray, outcome: np.ndarray, phone: np.ndarray
) -> np.ndarray:
    """Agent notes from the contact reason and outcome (0 unresolved, 1 resolved, 2 escalated)."""
    text = _pick(rng, _obj(NOTE_REASONS), reason) + " " + _pick(rng, _obj(NOTE_OUTCOMES), outcome)
    return np.where(rng.random(len(text)) < 0.05, text + " Callback number " + phone + ".", text)
