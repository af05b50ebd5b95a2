"""The local test PostgreSQL started by scripts/postgres.sh is up, reachable, and loopback-only."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh"

pytestmark = pytest.mark.postgres


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def url() -> str:
    status = _run("status")
    if status.returncode != 0:
        # Under `make test` (which sets the variable after starting it) this is a failure.
        assert "CX_TEST_POSTGRES_URL" not in os.environ, status.stdout
        pytest.skip(f"local PostgreSQL is not running (run `make postgres`): {status.stdout}")
    result = _run("url")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_status_reports_running() -> None:
    result = _run("status")
    assert result.returncode in (0, 3), result.stderr
    if result.returncode == 3:
        assert "CX_TEST_POSTGRES_URL" not in os.environ, result.stdout
        pytest.skip("local PostgreSQL is not running (run `make postgres`)")
    assert "running" in result.stdout


def test_url_is_the_documented_one(url: str) -> None:
    port = os.environ.get("CX_PG_PORT", "55432")
    assert url == f"postgresql+psycopg2://cx@127.0.0.1:{port}/cx"
    # `make test` passes the URL printed by `start`; it must be the same.
    assert os.environ.get("CX_TEST_POSTGRES_URL", url) == url


def test_url_connects_and_listens_on_loopback_only(url: str) -> None:
    sa = pytest.importorskip("sqlalchemy")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("select 1").scalar() == 1
            assert conn.exec_driver_sql("select current_user").scalar() == "cx"
            assert conn.exec_driver_sql("show listen_addresses").scalar() == "127.0.0.1"
    finally:
        engine.dispose()
