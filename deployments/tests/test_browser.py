"""In a real browser: an editor runs the pipeline from its page and watches the run go
green live (htmx polling, no reload), then opens the deployment's build log.

Headless Chromium (Playwright) against the live server, a real Celery worker (threads, in
this process) on its own queue, and a moto server on loopback (AWS_ENDPOINT_URL)."""

import pytest
from django.db import connection, connections

from deployments.models import PipelineRun, RunStatus
from workers.localaws import LocalAws

from . import mini as m

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def local_aws(monkeypatch):
    aws = LocalAws(latency_ms=60).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint)
    yield aws
    aws.stop()


def _close_db(**_):
    connection.close()  # the worker's threads must not keep connections to the test database


@pytest.fixture
def worker(local_aws):
    """A real Celery worker process on the test database and the configured broker."""
    from portal.celery import app
    from workers.tests.processes import WorkerProcess

    app.control.purge()
    w = WorkerProcess(
        local_aws.endpoint, concurrency=4, extra_env={"PORTAL_AWS_POLL_SECONDS": "0.1"}
    ).wait_ready()
    yield w
    w.stop()


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # synchronous all the same (Django's documented escape hatch for this case).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
        # Connections opened while Playwright's loop ran live in their own slot: close them
        # here, or Postgres refuses to drop the test database at the end of the session.
        connections.close_all()


def test_an_editor_watches_a_run_go_green_and_reads_its_build_log(
    live_server, browser, worker, workspace, users, monkeypatch, settings
):
    settings.PORTAL_AWS_POLL_SECONDS = 0.4  # a run that lasts a few polls of the page
    ecs = m.make_ecs(monkeypatch)
    m.add_pipeline(workspace, users["editor"], "seed", m.seed_like(ecs), RollbackOnFailure=True)

    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "pw-bob-123")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/workspaces/tonys-chips/deployments/pipelines/seed/")
    page.get_by_role("button", name="Run now").click()
    page.locator("#run-dialog").get_by_role("button", name="Run now").click()

    page.wait_for_url("**/deployments/runs/*/")
    page.evaluate("window.__sameDocument = true")  # a full reload would lose it
    # The page was opened before the run finished; it turns green without a reload.
    page.wait_for_selector('#run-live[data-status="succeeded"]', timeout=60_000)
    page.wait_for_selector("#run-log li:has-text('started task')")

    assert page.evaluate("window.__sameDocument") is True
    for position in range(4):
        assert page.get_attribute(f"#stage-{position}", "data-status") == "succeeded"
    log_text = page.inner_text("#run-log")
    assert "RunMigrations succeeded: task" in log_text
    assert "desired count kept at 4" in log_text
    run = PipelineRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED and run.requested_by == users["editor"]

    page.click(f".buildlog-links a:has-text('Deployment #{run.pk}: seed')")
    page.wait_for_selector("#deployment-notes")
    assert page.inner_text("h1").startswith(f"Deployment #{run.pk}: seed")
    notes = page.inner_text("#deployment-notes")
    assert "RunMigrations" in notes and "RunSmokeTests" in notes and "succeeded" in notes
    assert page.get_attribute("a:has-text('Download Markdown')", "href").endswith(".md")
    page.close()
