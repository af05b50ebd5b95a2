"""Settings pointing at fresh tiny sources and an empty lake under tmp_path."""

from __future__ import annotations

import pytest
from fixture_sources import write_calls, write_loyalty, write_surveys

from config import load_settings


@pytest.fixture
def sources(tmp_path):
    """Settings pointing at fresh tiny sources and an empty lake under tmp_path."""
    loyalty = write_loyalty(tmp_path / "loyalty.db")
    surveys = write_surveys(tmp_path / "surveys")
    calls = write_calls(tmp_path / "calls")
    return load_settings(
        {
            "CX_DATA_DIR": str(tmp_path / "data"),
            "CX_LOYALTY_URL": loyalty,
            "CX_SURVEY_ROOT": str(surveys),
            "CX_CALLS_ROOT": str(calls),
            "CX_BAD_ROW_THRESHOLD": "0.7",
        }
    )
