"""The topology in a real headless Chromium: the demo's workspace and its service-discovery
change set; pan and zoom, the search box, a change set's view, clicking through."""

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
    from django.db import connections
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
        # Connections opened while Playwright's loop runs (this test's ORM calls between
        # browser steps) belong to that loop's context: closed from inside it, or they
        # outlive the test and hold the test database open.
        connections.close_all()
    connections.close_all()


def open_topology(page, url):
    page.goto(url)
    page.locator("#topology-toolbar:not([hidden])").wait_for()
    page.wait_for_timeout(100)  # svg-pan-zoom draws on the next animation frame


def viewport_scale(page):
    matrix = page.locator("#topology-graph .svg-pan-zoom_viewport").get_attribute("transform")
    return float(matrix.removeprefix("matrix(").split(",")[0])


def label_size(page, name):
    """The on-screen size, in CSS pixels, of a component's name."""
    return node(page, name).evaluate(
        "n => { const t = n.querySelector('text'); return t.getScreenCTM().a * parseFloat(t.getAttribute('font-size')); }"
    )


def offset_from_centre(page, name):
    return page.evaluate(
        """name => {
          const frame = document.querySelector('#topology-graph svg').getBoundingClientRect();
          const n = [...document.querySelectorAll('#topology-graph g.node')].find(g => g.querySelector('title').textContent === name);
          const r = n.getBoundingClientRect();
          return Math.hypot(r.left + r.width / 2 - (frame.left + frame.width / 2), r.top + r.height / 2 - (frame.top + frame.height / 2));
        }""",
        name,
    )


def node(page, name):
    xpath = f"//*[local-name()='g' and contains(@class,'node')][*[local-name()='title' and text()='{name}']]"
    return page.locator(f"xpath={xpath}").first


@pytest.fixture
def demo(workspace, users):
    """The demo's workspace and its service-discovery change set."""
    bob = users["editor"]
    workspaces.import_spec(workspace, bob, load_spec(EXAMPLE / "workspace.yaml"))
    cs = changesets.create_change_set(workspace, bob, "migrate-to-service-discovery")
    changesets.apply_spec(cs, bob, load_spec(EXAMPLE / "02-migrate-to-service-discovery.yaml"))
    return cs


def test_it_opens_legible_and_zooms_with_the_buttons_the_wheel_and_the_keys(page, demo):
    open_topology(page, "/workspaces/tonys-chips/topology/")
    assert page.locator("nav.wsnav a.active").inner_text() == "Topology"  # the workspace's navigation
    opened = viewport_scale(page)
    assert (
        label_size(page, "sandbox-tonys-chips-vpc") >= 11.9
    )  # legible though the graph is wider than the page

    page.click("[data-action=in]")
    page.wait_for_function(
        f"() => !document.querySelector('.svg-pan-zoom_viewport').getAttribute('transform').startsWith('matrix({opened},')"
    )
    zoomed_in = viewport_scale(page)
    assert zoomed_in > opened

    page.click("[data-action=fit]")
    page.wait_for_timeout(100)
    fitted = viewport_scale(page)
    assert fitted < opened  # the whole graph is smaller than legible
    whole = page.locator("#topology-graph g.graph").bounding_box()
    frame = page.locator("#topology-graph svg").bounding_box()
    assert whole["width"] <= frame["width"] + 3 and whole["height"] <= frame["height"] + 3  # stroke width

    box = page.locator("#topology-graph").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(200)
    assert viewport_scale(page) > fitted

    page.click("[data-action=reset]")
    page.wait_for_timeout(100)
    assert viewport_scale(page) == pytest.approx(opened)
    page.focus("#topology-graph")
    page.keyboard.press("-")
    page.wait_for_timeout(100)
    assert viewport_scale(page) < opened


def test_the_search_box_centres_and_highlights_a_component(page, demo):
    open_topology(page, "/workspaces/tonys-chips/topology/")
    name = "sandbox-tonys-chips-smoke-test-task"
    assert offset_from_centre(page, name) > 200
    page.keyboard.press("/")  # focuses the search box
    page.keyboard.type("smoke-test-t")
    page.keyboard.press("Enter")
    page.wait_for_timeout(200)
    assert offset_from_centre(page, name) < 10
    assert "match" in node(page, name).get_attribute("class")
    assert page.locator("#topology-find-status").inner_text() == name
    assert label_size(page, name) >= 11.9

    page.fill("#topology-find", "no-such-thing")
    page.press("#topology-find", "Enter")
    assert "No component matches" in page.locator("#topology-find-status").inner_text()
    assert page.locator("#topology-graph g.node.match").count() == 0

    # Found, a component opens with a click.
    page.fill("#topology-find", "sandbox-tonys-chips-api-service")
    page.press("#topology-find", "Enter")
    page.wait_for_timeout(200)
    node(page, "sandbox-tonys-chips-api-service").locator("a").first.click()
    page.wait_for_url("**/workspaces/tonys-chips/components/sandbox-tonys-chips-api-service/")


def test_a_change_set_opens_on_its_changes_with_the_rest_faded(page, demo):
    cs = demo
    open_topology(page, f"/workspaces/tonys-chips/topology/?changeset={cs.pk}&view=services")
    changed = page.locator("#topology-graph g.node.changed")
    assert changed.count() >= 4
    frame = page.locator("#topology-graph svg").bounding_box()
    for i in range(changed.count()):  # every change is in view, legible
        box = changed.nth(i).bounding_box()
        assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + 1
        assert frame["y"] <= box["y"] and box["y"] + box["height"] <= frame["y"] + frame["height"] + 1
    assert label_size(page, "sandbox-tonys-chips-api-service") >= 11.9
    faded = node(page, "sandbox-tonys-chips-smoke-test-task")
    assert "faded" in faded.get_attribute("class")
    assert faded.locator("path, polygon").first.get_attribute("fill") == "#f7f8fa"
    assert "faded" not in node(page, "sandbox-tonys-chips-web-service").get_attribute("class")

    page.click("[data-action=next-change]")
    assert page.locator("#topology-find-status").inner_text().startswith(f"Change 1 of {changed.count()}: ")

    page.click("text=Show all")
    page.wait_for_url(f"**/topology/?view=services&changeset={cs.pk}&others=show")
    page.locator("#topology-toolbar:not([hidden])").wait_for()
    assert page.locator("#topology-graph g.node.faded").count() == 0
    page.click("text=Hide the rest")
    page.locator("#topology-toolbar:not([hidden])").wait_for()
    assert node(page, "sandbox-tonys-chips-smoke-test-task").count() == 0
    assert node(page, "sandbox-tonys-chips-api-service-discovery").count() == 1


def test_it_runs_under_a_strict_content_security_policy(page, demo):
    policy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:"

    def with_policy(route):
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": policy})

    page.route("**/workspaces/tonys-chips/topology/**", with_policy)
    page.add_init_script(
        "window.violations = []; document.addEventListener('securitypolicyviolation', e => window.violations.push(e.violatedDirective + ' ' + e.sourceFile));"
    )
    open_topology(page, "/workspaces/tonys-chips/topology/")
    page.click("[data-action=in]")
    page.fill("#topology-find", "sandbox-tonys-chips-db")
    page.press("#topology-find", "Enter")
    page.wait_for_timeout(200)
    assert "match" in node(page, "sandbox-tonys-chips-db").get_attribute("class")
    assert [v for v in page.evaluate("window.violations") if "htmx" not in v] == []


def test_it_opens_a_change_sets_diff_and_clicks_through_to_its_components(page, demo):
    cs = demo
    open_topology(page, f"/workspaces/tonys-chips/topology/?changeset={cs.pk}")
    assert page.locator("#topology-graph svg").count() == 1
    assert "Legend" in page.locator("#topology-graph svg").inner_html()  # the diff styles are explained
    page.fill("#topology-find", "sandbox-tonys-chips-api-service-discovery")
    page.press("#topology-find", "Enter")
    page.wait_for_timeout(200)
    node(page, "sandbox-tonys-chips-api-service-discovery").locator("a").first.click()
    page.wait_for_url(f"**/components/sandbox-tonys-chips-api-service-discovery/?changeset={cs.pk}")
    assert "AWS::ServiceDiscovery::Service" in page.content()
