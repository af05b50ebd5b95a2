"""ISO-8601 text for many timestamps at once (seconds since the sample's first day, UTC)."""

from __future__ import annotations

from datetime import date

import numpy as np


def iso_text(start: date, seconds: np.ndarray, sep: str = " ") -> np.ndarray:
    """'YYYY-MM-DD<sep>HH:MM:SS' for each count of seconds since ``start`` 00:00 UTC."""
    stamps = np.datetime_as_string(np.datetime64(start, "s") + seconds.astype("timedelta64[s]"))
    stamps = stamps.astype("U19")
    # Overwrite the 'T' through a code-point view: far faster than a string replace.
    stamps.view(np.uint32).reshape(-1, 19)[:, 10] = ord(sep)
    return stamps.astype(object)
