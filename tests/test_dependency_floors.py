"""Pinned versions are at or above the releases that fixed published vulnerabilities.

The registry this project installs from has no vulnerability feed here (PyPI's JSON API, which
pip-audit reads, is out of reach), so the floors are kept in this file: for each package on a
path an outsider can reach (the Airflow and MLflow servers, HTTP clients, parsers of files we
receive), the first release that fixed an advisory against it. A `make lock` that pins anything
below a floor fails here; add a line when an advisory is published.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

import pytest
from packaging.version import Version

from config.settings import REPO_ROOT

# package: (first fixed release, advisory)
FLOORS = {
    "apache-airflow": ("2.10.1", "CVE-2024-45034: DAG authors could run code in the scheduler"),
    "mlflow": ("2.9.2", "CVE-2023-6977: path traversal reading files on the tracking server"),
    "jinja2": ("3.1.6", "CVE-2025-27516: sandbox breakout through the attr filter"),
    "werkzeug": ("3.0.6", "CVE-2024-49767: memory exhaustion from multipart form data"),
    "starlette": ("0.40.0", "CVE-2024-47874: denial of service from multipart fields"),
    "h11": ("0.16.0", "CVE-2025-43859: request smuggling through chunked bodies"),
    "gunicorn": ("22.0.0", "CVE-2024-1135: request smuggling through Transfer-Encoding"),
    "tornado": ("6.5.0", "CVE-2025-47287: denial of service from multipart logging"),
    "aiohttp": ("3.9.2", "CVE-2024-23334: path traversal with follow_symlinks"),
    "requests": ("2.32.4", "CVE-2024-47081: .netrc credentials sent to another host"),
    "urllib3": ("2.5.0", "CVE-2025-50181: redirects followed when disabled for a pool"),
    "cryptography": ("44.0.1", "CVE-2024-12797: OpenSSL in the wheels (raw public keys)"),
    "protobuf": ("6.31.1", "CVE-2025-4565: recursion exhaustion parsing untrusted messages"),
    "pyarrow": ("14.0.1", "CVE-2023-47248: code execution reading untrusted IPC or Parquet"),
    "duckdb": ("1.1.0", "CVE-2024-41672: sniff_csv read files despite enable_external_access"),
    "scikit-learn": ("1.5.0", "CVE-2024-5206: TfidfVectorizer kept dropped tokens"),
    "pillow": ("10.3.0", "CVE-2024-28219: buffer overflow in _imagingcms"),
}


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line)
        if found:
            pins[found.group(1).lower().replace("_", "-")] = found.group(2)
    return pins


@pytest.mark.parametrize("package", sorted(FLOORS))
def test_pinned_and_installed_versions_are_at_or_above_the_fix(package):
    floor, advisory = FLOORS[package]
    pinned = _pins().get(package)
    assert pinned is not None, f"{package} is not pinned in constraints.txt"
    assert Version(pinned) >= Version(floor), f"{package}=={pinned} predates the fix: {advisory}"
    try:
        installed = version(package)
    except PackageNotFoundError:
        pytest.fail(f"{package} is pinned but not installed")
    assert Version(installed) >= Version(floor), f"{package} {installed} installed: {advisory}"


def test_the_floors_would_catch_an_old_pin():
    assert Version("3.1.4") < Version(FLOORS["jinja2"][0])
    assert "jinja2" in _pins()
