"""Fixtures for the ML tests: a small simulated program (see ml_synthetic.py)."""

from __future__ import annotations

import pytest
from ml_synthetic import warehouse_data


@pytest.fixture(scope="session")
def synthetic():
    """(WarehouseData, customer_360 frame) for 400 simulated members; built once."""
    return warehouse_data(n_members=400, seed=0)
