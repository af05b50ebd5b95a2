"""Session states of the pipeline on one small generated sample, each in its own data folder:

- ``straight``: one run for the sample's last day (a first load of the whole history), then the
  warehouse;
- ``loaded_to_start``: the same, a week earlier; the backfills and the fault tests continue from
  copies of it;
- ``week_forwards`` / ``week_backwards``: that week backfilled day by day, oldest first or newest
  first, with the warehouse built (as its Assets would trigger it) after two of the days.

Each carries the checksums of its marts (``mart_checksums``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from mart_checksums import checksums
from reliability_steps import (
    LAST,
    START,
    WEEK,
    build_warehouse,
    copy_state,
    generate_sample,
    land_day,
    warehouse_path,
    working_on,
)


@dataclass(frozen=True)
class State:
    data_dir: Path
    marts: dict[str, dict]


@pytest.fixture(scope="session")
def states_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reliability")


@pytest.fixture(scope="session")
def sample_dir(states_root) -> Path:
    return generate_sample(states_root / "sample")


def _first_load(data_dir: Path, sample_dir: Path, logical: datetime) -> State:
    with working_on(data_dir, sample_dir):
        land_day(logical)  # the lake is empty: every table loads its whole history
        build_warehouse()
    return State(data_dir, checksums(warehouse_path(data_dir)))


@pytest.fixture(scope="session")
def straight(states_root, sample_dir) -> State:
    return _first_load(states_root / "straight", sample_dir, LAST)


@pytest.fixture(scope="session")
def loaded_to_start(states_root, sample_dir) -> State:
    return _first_load(states_root / "loaded-to-start", sample_dir, START)


# After which days of the backfill the warehouse is built (the third and the last): backwards,
# the second build meets days older than the newest landing the facts hold, which only the
# "row not in the table yet" rule brings in.
BUILD_AFTER = (2, 6)


def _backfill(name: str, days: list[datetime], loaded, states_root, sample_dir) -> State:
    data_dir = copy_state(loaded.data_dir, states_root / name)
    with working_on(data_dir, sample_dir):
        for number, logical in enumerate(days):
            land_day(logical)
            if number in BUILD_AFTER:
                build_warehouse()
    return State(data_dir, checksums(warehouse_path(data_dir)))


@pytest.fixture(scope="session")
def week_forwards(loaded_to_start, states_root, sample_dir) -> State:
    return _backfill("week-forwards", WEEK, loaded_to_start, states_root, sample_dir)


@pytest.fixture(scope="session")
def week_backwards(loaded_to_start, states_root, sample_dir) -> State:
    return _backfill("week-backwards", WEEK[::-1], loaded_to_start, states_root, sample_dir)
