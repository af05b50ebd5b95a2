"""The Airflow UI in a real browser: Debian's Chromium, headless, driven by Playwright's client.

Uses the stack and the chain of ``tests/real_stack.py`` (shared with the end-to-end test, so the
chain runs once per session): logs in with the generated password, sees every DAG with no import
error, opens a finished run. Screenshots are kept in ``test-artifacts/ui/`` (git-ignored).
Playwright never downloads a browser here: ``executable_path`` is the system Chromium, which
``make test`` installs with ``scripts/chromium.sh``.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from real_stack import chain, real_stack  # noqa: F401

from config.settings import REPO_ROOT
from pipeline import stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.scheduler,
    pytest.mark.timeout(3600),
]

ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
TIMEOUT_MS = 120_000  # a loaded two-core machine renders slowly


def _chromium() -> str:
    script = REPO_ROOT / "scripts" / "chromium.sh"
    found = subprocess.run([str(script), "path"], capture_output=True, text=True, check=False)
    if found.returncode == 0:
        return found.stdout.strip()
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing; `make test` installs it (scripts/chromium.sh install)")
    pytest.skip("Chromium is missing: run `make chromium` (as root)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            # Root (CI) cannot use Chromium's sandbox; /dev/shm is small in containers.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page(browser, real_stack):  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    config = real_stack.config
    page.goto(config.base_url + "/")
    page.locator("input[name=username]").fill(config.user)
    page.locator("input[name=password]").fill(stack.read_password(config))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/" not in url)
    try:
        yield page
    finally:
        context.close()


def test_a_wrong_password_is_refused(browser, real_stack):  # noqa: F811
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(real_stack.config.base_url + "/")
        page.locator("input[name=username]").fill(real_stack.config.user)
        page.locator("input[name=password]").fill("admin")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Invalid").first.wait_for()
        assert "/auth/" in page.url
    finally:
        context.close()


def test_every_dag_is_listed_with_no_import_error(page, real_stack):  # noqa: F811
    page.goto(real_stack.config.base_url + "/dags")
    for dag_id in stack.dag_ids_in_folder():
        page.get_by_role("link", name=dag_id, exact=True).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "dags.png"), full_page=True)
    page.goto(real_stack.config.base_url + "/")
    page.get_by_text("Health").first.wait_for()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)
    # The home page shows a "Dag Import Error(s)" button only when there are some.
    assert page.get_by_text("Dag Import Error").count() == 0
    with real_stack.client() as client:
        assert client.import_errors() == []


def test_a_finished_run_opens(page, real_stack, chain):  # noqa: F811
    finished = {d: r for d, r in chain.runs.items() if r.state in ("success", "failed")}
    if not finished:
        raise AssertionError("the chain finished no run") from chain.error
    # The last DAG of the chain that finished: the warehouse, the scores or the programs.
    dag_id, run = list(finished.items())[-1]
    url = f"{real_stack.config.base_url}/dags/{dag_id}/runs/{run.dag_run_id}"
    page.goto(url)
    page.get_by_text(run.dag_run_id).first.wait_for()
    page.get_by_text(run.state.value, exact=False).first.wait_for()
    with real_stack.client() as client:
        task_ids = [ti.task_id for ti in client.task_instances(dag_id, run.dag_run_id)]
    for task_id in task_ids:  # the run's task instances are listed, each linking to its log
        page.get_by_role("link", name=task_id, exact=True).first.wait_for()
    page.wait_for_load_state("networkidle")
    shot = ARTIFACTS / f"run-{dag_id}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
