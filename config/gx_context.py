"""The Great Expectations context both suites run in (landing and features): ephemeral, quiet,
and without GX's fingerprint of every frame it validates."""

from __future__ import annotations

import logging


def ephemeral_context():
    """An ephemeral GX context with progress bars off and frame fingerprints off.

    GX 1.x marks each pandas batch under 1 GB with a hash of every row
    (``pandas_data_fingerprint``, ``HASH_THRESHOLD``), metadata nothing here reads. On the 1M
    transactions' landing it was 8.3 s of the 13.9 s the suite took on its 1M-row chunks, and it
    hashed each scoring frame again. A threshold of zero turns it off; if a GX release drops the
    constant, validation stays correct and only the hashing comes back.
    """
    # GX logs every registration at INFO; keep task logs readable.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context
