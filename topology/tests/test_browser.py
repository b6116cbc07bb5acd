"""The topology in a real headless Chromium: the Tony's Chips workspace and the
service-discovery change set; clicking a node lands on its component."""

import shutil
from pathlib import Path

import pytest
from django.conf import settings

from portal import changesets, workspaces
from portal.spec import load_spec

EXAMPLE = Path(settings.BASE_DIR) / "examples" / "tonys-chips"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server, workspace, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM calls between browser steps
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1600, "height": 1000}, base_url=live_server.url)
        context.set_default_timeout(20_000)
        page = context.new_page()
        page.goto("/login/")
        page.fill("input[name=username]", "bob")
        page.fill("input[name=password]", "pw-bob-123")
        page.click("form.card button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        yield page
        browser.close()
    from django.db import connections

    connections.close_all()  # connections opened under Playwright's loop would outlive the test


def node_link(page, name):
    xpath = f"//*[local-name()='g' and contains(@class,'node')][*[local-name()='title' and text()='{name}']]//*[local-name()='a']"
    return page.locator(f"xpath={xpath}").first


def test_it_opens_the_topology_and_a_change_sets_diff_and_clicks_through_to_components(
    page, workspace, users
):
    bob = users["editor"]
    workspaces.import_spec(workspace, bob, load_spec(EXAMPLE / "workspace.yaml"))
    cs = changesets.create_change_set(workspace, bob, "migrate-to-service-discovery")
    changesets.apply_spec(cs, bob, load_spec(EXAMPLE / "02-migrate-to-service-discovery.yaml"))

    page.goto("/workspaces/tonys-chips/topology/")
    node_link(page, "sandbox-tonys-chips-api-service").wait_for()
    assert page.locator("#topology-graph svg").count() == 1
    node_link(page, "sandbox-tonys-chips-api-service").click()
    page.wait_for_url("**/workspaces/tonys-chips/components/sandbox-tonys-chips-api-service/")
    assert "AWS::ECS::Service" in page.content()

    page.goto(f"/workspaces/tonys-chips/topology/?changeset={cs.pk}")
    link = node_link(page, "sandbox-tonys-chips-api-service-discovery")
    link.wait_for()
    svg = page.locator("#topology-graph svg").inner_html()
    assert "Legend" in svg  # the diff styles are explained
    link.click()
    page.wait_for_url(f"**/components/sandbox-tonys-chips-api-service-discovery/?changeset={cs.pk}")
    assert "AWS::ServiceDiscovery::Service" in page.content()
