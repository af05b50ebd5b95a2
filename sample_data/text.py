"""Names, contact details and free text, composed with array operations.

Comments are real English sentences whose tone follows the scores. About half are templates a
sentiment lexicon such as VADER reads right; the rest speak as customers do (``speak``): service
words VADER does not know (on hold, transferred, refund), negation, sarcasm ("Thanks for
nothing"), and typos, drawn from a stream of their own so the rest of the sample is unchanged.
The answer key records each comment's true tone and style. Some texts carry a phone number or an
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
# Agents' shorthand, by outcome (0 unresolved, 1 resolved, 2 escalated).
NOTE_VOICE = (
    (
        "Cust called 3rd time re same issue, still not fixed. Follow-up needed.",
        "Customer upset, on hold 40 min before reaching me. Could not resolve.",
        "Refund still not recvd, cust very frustrated.",
        "Cx says points missing since last month, no fix today.",
    ),
    (
        "Sorted on the call, cust happy.",
        "Explained the charge, customer satisfied.",
        "Points added manually, thanked me.",
        "Updated address, quick call.",
    ),
    (
        "Transferred twice before reaching me, escalated to supervisor.",
        "Cust threatening to close account, escalated to back office.",
        "Double charge, escalated to billing team.",
        "Angry about rude staff in store, escalated to store manager.",
    ),
)
NOTE_VOICE_SHARE = 0.4

NOTE_OUTCOMES = (
    ("Could not fix it today, follow-up needed.", "Not resolved, customer unhappy."),
    ("Resolved on the call.", "Explained and fixed, customer satisfied."),
    ("Escalated to a supervisor.", "Escalated to the back office."),
)


# Customers' own words, by tone (0 negative, 1 mixed, 2 positive) and style. Written for the
# sample from the kinds of complaint issue 27 quotes; the tone is the writer's, not a lexicon's.
VOICE = {
    0: {
        "domain": (
            "On hold for 40 minutes and then transferred twice.",
            "Still waiting for my refund, three weeks now.",
            "My points are still missing after the update.",
            "Had to call three times about the same charge.",
            "Order cancelled without telling me.",
            "Parcel never arrived and tracking says delivered.",
            "Charged twice and nobody can explain why.",
            "The app logged me out and my voucher is gone.",
            "Waited 25 minutes at the till with one cashier.",
            "Refund promised on the phone, nothing in my account.",
        ),
        "negation": (
            "Not happy at all with how this was handled.",
            "The agent wasn't helpful and didn't listen.",
            "Nobody called me back like they promised.",
            "Never got the points I was told I would get.",
            "Not what I was promised, not even close.",
            "I don't feel valued after ten years as a member.",
            "The problem is not fixed, I had to explain it again.",
        ),
        "sarcasm": (
            "Thanks for nothing, still on hold.",
            "Great, another email saying my refund is on its way.",
            "Love waiting on hold for an hour, really made my day.",
            "Oh brilliant, the app crashed again at checkout.",
            "Wonderful service, only took five calls to fix my address.",
            "Sure, I'll just wait another month for my points. Perfect.",
        ),
    },
    1: {
        "domain": (
            "Delivery came on the day they said.",
            "Asked about my points balance and got the figure.",
            "Store was busy but I found what I needed.",
            "The app works, mostly.",
            "Called to change my address, took a few minutes.",
            "Order came in two parcels.",
        ),
        "negation": (
            "Not bad, not great.",
            "Nothing special this time.",
            "No real complaints, no real praise either.",
            "Didn't need much help, just a question about a voucher.",
        ),
    },
    2: {
        "domain": (
            "Refund came through in two days, thank you.",
            "The agent sorted my points in minutes.",
            "Hardly any wait on the phone and the agent was lovely.",
            "Parcel arrived early and well packed.",
            "Checkout was quick and the staff were friendly.",
            "Got a birthday voucher, a lovely surprise.",
        ),
        "negation": (
            "No problems at all, thanks.",
            "Couldn't be happier with the rewards.",
            "Never had an issue with the app.",
            "Nothing to complain about, the staff are great.",
            "Didn't have to wait at all.",
        ),
    },
}
STYLE_SHARES = (("domain", 0.25), ("negation", 0.15), ("sarcasm", 0.10))
TYPO_SHARE = 0.15


def _typo(rng: np.random.Generator, text: str) -> str:
    """One slip of a thumb: two letters swapped or one dropped in a longer word, or no caps."""
    words = text.split(" ")
    long = [i for i, word in enumerate(words) if sum(c.isalpha() for c in word) >= 5]
    how = int(rng.integers(0, 3))
    if how == 2 or not long:
        return text.lower().rstrip(".!")
    i = long[int(rng.integers(0, len(long)))]
    word = words[i]
    j = int(rng.integers(1, len(word) - 2))
    if how == 0 and word[j].isalpha() and word[j + 1].isalpha():
        words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    else:
        words[i] = word[:j] + word[j + 1 :]
    return " ".join(words)


def speak(
    rng: np.random.Generator, text: np.ndarray, tone: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customers' own words for some comments: (text, style, has_typo) per row.

    ``style`` is template (kept as given), domain, negation or sarcasm (negative comments only;
    others fall back to domain); about ``TYPO_SHARE`` of all comments get a typo.
    """
    n = len(text)
    out = text.copy()
    style = np.full(n, "template", dtype=object)
    u = rng.random(n)
    low = 0.0
    for name, share in STYLE_SHARES:
        style[(u >= low) & (u < low + share)] = name
        low += share
    style[(style == "sarcasm") & (tone != 0)] = "domain"
    for row in np.flatnonzero(style != "template"):
        bank = VOICE[int(tone[row])][style[row]]
        out[row] = bank[int(rng.integers(0, len(bank)))]
    typo = rng.random(n) < TYPO_SHARE
    for row in np.flatnonzero(typo):
        out[row] = _typo(rng, str(out[row]))
    return out, style, typo


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
    voice: dict | None = None,
) -> np.ndarray:
    """One comment per row from tone (0-2) and survey type (0-2); about 4% leak contact data.

    With ``voice`` ({"rng": a Generator of its own}) some comments speak as customers do
    (``speak``), and ``voice`` receives each row's "style" and "typo" for the answer key.
    """
    text = (
        _pick(rng, _obj(OPENERS), tone)
        + " "
        + _pick(rng, _obj(BODIES), tone, kind)
        + _pick(rng, _obj(CLOSERS), tone)
    )
    if voice is not None:
        text, voice["style"], voice["typo"] = speak(voice["rng"], text, tone)
    leak = rng.random(len(text))
    text = np.where(leak < 0.02, text + " You can reach me at " + phone + ".", text)
    return np.where((leak >= 0.02) & (leak < 0.04), text + " My email is " + email + ".", text)


def notes(
    rng: np.random.Generator,
    reason: np.ndarray,
    outcome: np.ndarray,
    phone: np.ndarray,
    voice: dict | None = None,
) -> np.ndarray:
    """Agent notes from the contact reason and outcome (0 unresolved, 1 resolved, 2 escalated).

    With ``voice`` ({"rng": a Generator of its own}) about ``NOTE_VOICE_SHARE`` of the notes are
    in agents' shorthand, and ``voice`` receives each row's "style" (template or shorthand).
    """
    text = _pick(rng, _obj(NOTE_REASONS), reason) + " " + _pick(rng, _obj(NOTE_OUTCOMES), outcome)
    if voice is not None:
        own = voice["rng"]
        shorthand = own.random(len(text)) < NOTE_VOICE_SHARE
        text = np.where(shorthand, _pick(own, _obj(NOTE_VOICE), outcome), text)
        voice["style"] = np.where(shorthand, "shorthand", "template").astype(object)
    return np.where(rng.random(len(text)) < 0.05, text + " Callback number " + phone + ".", text)
