"""An admin adds a webhook target on the settings page in headless Chromium, copies its
secret, sends a test, and watches a real Celery worker deliver it, signed, to a server
on loopback.

Run alone with: python -m pytest notifications/tests/test_browser.py -m browser
"""

import shutil
from pathlib import Path

import pytest

from portal.tests.test_browser import SCREENSHOTS, browser, celery_worker_thread, local_aws  # noqa: F401

from .conftest import verified

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not shutil.which("chromium") and not Path("/usr/bin/chromium").exists(), reason="needs chromium"
    ),
]


def test_an_admin_adds_a_webhook_target_and_a_worker_delivers_its_test(
    browser,  # noqa: F811
    live_server,
    admin,
    private_ok,
    receiver,
    celery_worker_thread,  # noqa: F811
):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login/")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", "pw-carol-123")
    page.click("form.card button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto("/workspaces/tonys-chips/")
    page.click(".head-actions a:has-text('Settings')")
    form = page.locator("#target-add")
    form.wait_for()
    form.locator("input[name=name]").fill("ci")
    form.locator("select[name=kind]").select_option("webhook")
    form.locator("input[name=destination]").fill(receiver.url + "/portal-hook")
    form.locator("input[name=events][value=drift_found]").uncheck()
    form.locator("button[type=submit]").click()

    secret = page.locator(".revealed-secret").inner_text()
    assert len(secret) == 64
    row = page.locator("#notifications table.targets tbody tr").first
    assert "ci" in row.inner_text() and "/portal-hook" in row.inner_text() and "enabled" in row.inner_text()
    assert "Drift found" not in row.inner_text() and "Apply failed" in row.inner_text()

    row.locator("button:has-text('Send test')").click()
    page.locator("#deliveries tbody tr .badge.succeeded").wait_for(timeout=30_000)

    [request] = receiver.posts("/portal-hook")
    assert verified(request, secret) and request[1]["X-Portal-Event"] == "test"
    assert "Test" in page.locator("#deliveries tbody tr").first.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "settings-notifications.png"), full_page=True)

    page.reload()
    page.locator("#notifications").wait_for()
    assert secret not in page.content()
    context.close()
