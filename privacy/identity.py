"""Identifiers as the pipeline compares them, keyed hashes of them, and redaction of free text.

The normalisation rules are the warehouse's (``dbt_project/macros/normalize.sql``): member ids
compare trimmed (and here also case-insensitively, so a typed-in ``m0000123`` is the same member
for erasure), emails trimmed and lower-case, phones as E.164 with +1 assumed for ten digits.

A keyed hash is HMAC-SHA256 under ``CX_HASH_KEY`` of ``<kind>:<normalised value>``, so the same
email always gives the same hash, a hash reveals nothing without the key, and a member id can
never collide with an email.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from config.settings import Settings, SettingsError

MEMBER, EMAIL, PHONE = "member", "email", "phone"
KINDS = (MEMBER, EMAIL, PHONE)

# Only for the generated sample sources, which hold no real person: a key that is not secret,
# so `make run` needs no configuration. Real sources require CX_HASH_KEY (see ``hash_key``).
SAMPLE_ONLY_KEY = "cx-sample-sources-only-not-a-secret-key"

# An email address, and a phone number: nine or more digits written with the usual separators
# (a date such as 2026-06-01 has eight). The same patterns are in dbt_project/macros/redact.sql
# (a test keeps them equal); RE2 (DuckDB), PostgreSQL and Python read them alike.
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
PHONE_PATTERN = r"(\+|\()?[0-9](?:[ ().-]*[0-9]){8,}"
_EMAIL = re.compile(EMAIL_PATTERN)
_PHONE = re.compile(PHONE_PATTERN)
EMAIL_MASK, PHONE_MASK = "[email]", "[phone]"


def uses_sample_sources(settings: Settings) -> bool:
    """Whether every source is the generated sample (no real person's data can be read)."""
    sample = settings.sample_dir
    return (
        settings.loyalty_url == f"sqlite:///{sample / 'loyalty.db'}"
        and settings.survey_root == str(sample / "surveys")
        and settings.calls_root == str(sample / "calls")
    )


def hash_key(settings: Settings) -> bytes:
    """The HMAC key: ``CX_HASH_KEY``, or on the sample sources alone a fixed, public one."""
    if settings.hash_key:
        return settings.hash_key.encode()
    if uses_sample_sources(settings):
        return SAMPLE_ONLY_KEY.encode()
    raise SettingsError(
        "CX_HASH_KEY is not set, and real sources are configured (CX_LOYALTY_URL, CX_SURVEY_ROOT "
        "or CX_CALLS_ROOT): erased members are recorded as keyed hashes, which need a secret "
        "key of at least 32 characters kept for the life of the deployment (changing it would "
        "let erased members back in). Generate one with "
        "`python -c 'import secrets; print(secrets.token_hex(32))'` and set it in the "
        "environment or a secret store, never in a file in the repository."
    )


def normalize_member_id(value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    return text or None


def normalize_email(value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    return text if "@" in text else None


def normalize_phone(value: str | None, default_country_code: str = "1") -> str | None:
    """E.164 as ``normalize_phone`` in dbt: ``+<digits>``, or None for an unusable number."""
    if value is None:
        return None
    text = str(value).strip()
    digits = re.sub(r"[^0-9]", "", text)
    if text.startswith("+") and 8 <= len(digits) <= 15:
        return "+" + digits
    if text.startswith("00") and 10 <= len(digits) <= 17:
        return "+" + digits[2:]
    if len(digits) == 10:
        return f"+{default_country_code}{digits}"
    if len(digits) == 11 and digits.startswith(default_country_code):
        return "+" + digits
    return None


NORMALIZERS = {MEMBER: normalize_member_id, EMAIL: normalize_email, PHONE: normalize_phone}


def keyed_hash(key: bytes, kind: str, value: str | None) -> str | None:
    """HMAC-SHA256 (hex) of a normalised identifier, or None when there is nothing to hash."""
    normal = NORMALIZERS[kind](value)
    if normal is None:
        return None
    return hmac.new(key, f"{kind}:{normal}".encode(), hashlib.sha256).hexdigest()


# What Python's str.strip() removes, within ASCII (the vectorised normalisation's trim).
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


def normalize_array(kind: str, values):
    """``NORMALIZERS[kind]`` over an Arrow string array, as an Arrow string array.

    Emails and phones in ASCII (all a source normally holds) are normalised by Arrow kernels
    that follow the scalar rules step by step; any other value goes through the scalar function,
    so the result is always exactly the scalar functions' (a test compares them).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = values.cast(pa.string())
    scalar = NORMALIZERS[kind]
    if kind == EMAIL:
        text = pc.ascii_lower(pc.ascii_trim(values, characters=_ASCII_WHITESPACE))
        out = pc.if_else(pc.match_substring(text, "@"), text, pa.scalar(None, pa.string()))
    elif kind == PHONE:
        text = pc.ascii_trim(values, characters=_ASCII_WHITESPACE)
        digits = pc.replace_substring_regex(text, r"[^0-9]", "")
        count = pc.utf8_length(digits)

        def between(low: int, high: int):
            return pc.and_(pc.greater_equal(count, low), pc.less_equal(count, high))

        plus = pc.binary_join_element_wise(pa.scalar("+"), digits, "")
        out = pc.case_when(
            pc.make_struct(
                pc.and_(pc.starts_with(text, "+"), between(8, 15)),
                pc.and_(pc.starts_with(text, "00"), between(10, 17)),
                pc.equal(count, 10),
                pc.and_(pc.equal(count, 11), pc.starts_with(digits, "1")),
            ),
            plus,
            pc.binary_join_element_wise(pa.scalar("+"), pc.utf8_slice_codeunits(digits, 2), ""),
            pc.binary_join_element_wise(pa.scalar("+1"), digits, ""),
            plus,
        )
    else:
        return pa.array([scalar(value) for value in values.to_pylist()], type=pa.string())
    other = pc.fill_null(pc.invert(pc.string_is_ascii(values)), False)
    if pc.any(other).as_py():
        rest = pc.filter(values, other).to_pylist()
        out = pc.replace_with_mask(out, other, pa.array([scalar(v) for v in rest], pa.string()))
    return out


def keyed_hash_array(key: bytes, kind: str, values):
    """``keyed_hash`` of every value of an Arrow array (nulls stay null), as an Arrow string array.

    Normalised by Arrow (``normalize_array``), then each distinct normalised value is hashed
    once: a survey email or a caller's phone comes back many times, in many spellings.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(normalize_array(kind, values))
    # The keyed state is prepared once; each value hashes a copy of it (cheaper than hmac.new).
    keyed, prefix = hmac.new(key, digestmod=hashlib.sha256), f"{kind}:"

    def digest(message: bytes) -> str:
        state = keyed.copy()
        state.update(message)
        return state.hexdigest()

    digests = [digest((prefix + normal).encode()) for normal in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(digests, type=pa.string()), encoded.indices)


def key_fingerprint(key: bytes) -> str:
    """Identifies the key a suppression list was written with, without revealing it."""
    return hmac.new(key, b"cx-suppression-list-key-check", hashlib.sha256).hexdigest()[:16]


def contacts_in_text(text: str | None) -> list[tuple[str, str]]:
    """The (kind, value) of every email and phone number written in free text."""
    if not text:
        return []
    found = [(EMAIL, match.group(0)) for match in _EMAIL.finditer(text)]
    without_emails = _EMAIL.sub(" ", text)
    found += [(PHONE, match.group(0)) for match in _PHONE.finditer(without_emails)]
    return found


def redact(text: str | None) -> str | None:
    """Free text with emails and phone numbers replaced by ``[email]`` and ``[phone]``."""
    if text is None:
        return None
    return _PHONE.sub(PHONE_MASK, _EMAIL.sub(EMAIL_MASK, text))
