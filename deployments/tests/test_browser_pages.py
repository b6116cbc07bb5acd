"""In a real browser, on the demo workspace (not applied): Apply and Run ask for
confirmation in a dialog, long values stay inside their cards, the users' Markdown is
rendered, and the pages follow the system's dark mode.

Headless Chromium (Playwright) against the live server; no worker runs, so the apply and
the run that the dialogs start stay queued."""

import re
from pathlib import Path

import pytest
from django.db import connections

from deployments.demo import load_demo
from deployments.models import PipelineRun
from portal import approvals
from portal.models import ChangeSet, Workspace
from workers.models import Action, ApplyRun

from . import mini as m

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
SHOTS = (
    Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
)  # README's: docs/screenshots.py
WS = "/workspaces/tonys-chips"
GATE = [{"Name": "Promote", "Kind": "approval_gate", "Parameters": {"Message": "Ship it?"}}]
# Elements whose right edge passes their card's, as [card id, element, pixels].
OVERFLOWING = """() => [...document.querySelectorAll('.card')].flatMap(card => {
  const edge = card.getBoundingClientRect().right;
  return [...card.querySelectorAll('table, pre, form, button')]
    .filter(el => el.getBoundingClientRect().right > edge + 0.5)
    .map(el => [card.id, el.tagName, Math.round(el.getBoundingClientRect().right - edge)]);
})"""


@pytest.fixture
def demo():
    load_demo(apply=False, log=lambda *_: None)
    return Workspace.objects.get(slug="tonys-chips")


@pytest.fixture
def chromium(monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        connections.close_all()


@pytest.fixture
def open_as(chromium, live_server, demo):
    def sign_in(username, color_scheme="light"):
        context = chromium.new_context(
            viewport={"width": 1440, "height": 900}, base_url=live_server.url, color_scheme=color_scheme
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.goto("/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", f"{username}-demo-pass")
        page.click("form.card button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    return sign_in


def _approved(name):
    cs = ChangeSet.objects.get(name=name)
    approvals.request_approval(cs, cs.author)
    approvals.approve(cs, ChangeSet.objects.get(name="bootstrap-tonys-chips").approvals.get().user, "ok")
    return cs


def test_apply_asks_for_confirmation_with_what_it_destroys(open_as):
    cs = _approved("migrate-to-service-discovery")
    bob = open_as("bob")
    bob.goto(f"{WS}/changesets/{cs.pk}/")
    dialog = bob.locator("#apply-dialog")
    assert not dialog.is_visible()

    bob.click("#apply button:has-text('Apply 11 actions')")
    assert dialog.is_visible()
    summary = dialog.locator("#apply-summary").inner_text()
    # The two deletes; the web task definition's change is a new revision, with no downtime.
    assert "2 actions destroy or interrupt something" in summary
    assert "sandbox-tonys-chips-api-tg" in summary and "sandbox-tonys-chips-api-listener-rule" in summary
    assert "Downtime:" not in summary
    bob.screenshot(path=str(SHOTS / "apply-confirmation.png"))
    dialog.get_by_role("button", name="Cancel").click()
    assert not dialog.is_visible() and not ApplyRun.objects.exists()

    bob.click("#apply button:has-text('Apply 11 actions')")
    dialog.get_by_role("button", name="Apply now").click()
    bob.wait_for_selector(".messages li")
    run = ApplyRun.objects.get()
    assert f"Apply #{run.pk} queued." in bob.inner_text(".messages") and run.change_set == cs


def test_run_asks_for_confirmation_with_the_stages(open_as, demo):
    m.add_pipeline(demo, ChangeSet.objects.get(name="bootstrap-tonys-chips").author, "release", GATE)
    bob = open_as("bob")
    bob.goto(f"{WS}/deployments/pipelines/release/")
    bob.get_by_role("button", name="Run now").click()
    dialog = bob.locator("#run-dialog")
    assert dialog.is_visible() and "Promote" in dialog.locator("#run-summary").inner_text()
    dialog.get_by_role("button", name="Run now").click()
    bob.wait_for_url(re.compile(r".*/deployments/runs/\d+/$"))
    assert PipelineRun.objects.get().pipeline == "release"


def test_long_values_stay_inside_their_cards(open_as):
    cs = ChangeSet.objects.get(name="update-smoke-test-to-use-e2e")
    run = ApplyRun.objects.create(
        workspace=cs.workspace, change_set=cs, status="failed", error="1 action failed"
    )
    entry = cs.entries.get()
    Action.objects.create(
        run=run,
        key=f"update:{entry.name}",
        kind="update",
        component_name=entry.name,
        component_id=entry.component_id,
        schema=entry.schema,
        status="failed",
        error="An error occurred (InvalidParameterException) when calling the UpdateService operation",
        immutable_property="ContainerDefinitions",
        attempts=2,
    )
    alice = open_as("alice")
    alice.goto(f"{WS}/changesets/{cs.pk}/")
    alice.wait_for_selector("#apply-progress .action-row")
    assert alice.evaluate(OVERFLOWING) == []
    for name in (
        "sandbox-tonys-chips-api-task",
        "sandbox-tonys-chips-deploy-pipeline",
        "sandbox-tonys-chips-alb",
    ):
        alice.goto(f"{WS}/components/{name}/")
        assert alice.evaluate(OVERFLOWING) == [], name
    alice.goto(f"{WS}/deployments/pipelines/sandbox-tonys-chips-deploy-pipeline/")
    assert alice.evaluate("document.documentElement.scrollHeight") < 1400
    stage = alice.locator("details.stage-parameters").first
    stage.locator("summary").click()
    assert stage.locator("a.sub").count() > 0 and '"$source"' not in stage.inner_text()


def test_user_markdown_is_rendered(open_as):
    cs = ChangeSet.objects.get(name="migrate-to-service-discovery")
    bob = open_as("bob")
    bob.goto(f"{WS}/changesets/{cs.pk}/")
    problem = bob.locator(".description .markdown").first
    assert problem.locator("li").count() >= 3
    assert not problem.inner_text().lstrip().startswith("- ")


def test_the_pages_follow_the_systems_dark_mode(open_as):
    light, dark = open_as("bob"), open_as("bob", color_scheme="dark")
    background = "() => getComputedStyle(document.body).backgroundColor"
    card = "() => getComputedStyle(document.querySelector('.card')).backgroundColor"
    for page in (light, dark):
        page.goto(f"{WS}/components/sandbox-tonys-chips-api-task/")
    assert light.evaluate(background) == "rgb(246, 247, 251)"
    assert dark.evaluate(background) == "rgb(14, 19, 32)" and dark.evaluate(card) == "rgb(22, 28, 43)"
    dark.screenshot(path=str(SHOTS / "component-dark.png"), full_page=True)
    assert dark.locator("link[rel=icon]").get_attribute("href").endswith(".svg")
