"""Takes README's screenshots from a running demo, as a user sees it.

    ./dev demo                                  # in one terminal
    .venv/bin/python docs/screenshots.py        # in another (--url for another address)

It signs in as the demo's users and walks the seed's first change set: bob's view of it,
alice's approval, the confirmation Apply asks for (cancelled: nothing is applied), a
component page in dark mode, an email notification target on the settings page (with a
test sent: the demo's workers print emails) and both topology views. What it does is real:
it stays in the demo until the demo's next start resets it. Needs Playwright (installed by `./dev test`)
and Debian's Chromium."""

import argparse
import re
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

SHOTS = Path(__file__).resolve().parent / "screenshots"
WORKSPACE = "/workspaces/tonys-chips"
CHANGE_SET = "migrate-to-service-discovery"
COMPONENT = "sandbox-tonys-chips-api-task"


def sign_in(browser, url, username, color_scheme="light"):
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, base_url=url, color_scheme=color_scheme
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-demo-pass")
    page.click("form.card button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))
    return page


def settle(page):
    """Wait until the htmx panels have loaded."""
    page.wait_for_load_state("networkidle")


def change_set_url(page):
    page.goto(f"{WORKSPACE}/changesets/")
    link = page.locator(f"a:has-text('{CHANGE_SET}')").first
    return link.get_attribute("href")


def take(url):
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless=new", "--no-sandbox", "--disable-gpu"]
        )
        bob = sign_in(browser, url, "bob")
        href = change_set_url(bob)
        bob.goto(href)
        settle(bob)
        bob.screenshot(path=str(SHOTS / "changeset.png"), full_page=True)

        ask = bob.get_by_role("button", name="Request approval")
        if ask.count():
            ask.click()
            settle(bob)

        alice = sign_in(browser, url, "alice")
        alice.goto(href)
        settle(alice)
        approve = alice.locator("form.decision button:has-text('Approve')")
        if approve.count():
            approve.first.click()
            settle(alice)

        bob.goto(href)
        settle(bob)
        bob.locator("#apply button:has-text('Apply')").first.click()
        bob.locator("#apply-dialog").wait_for(state="visible")
        bob.screenshot(path=str(SHOTS / "apply-confirmation.png"))
        bob.locator("#apply-dialog").get_by_role("button", name="Cancel").click()

        dark = sign_in(browser, url, "bob", color_scheme="dark")
        dark.goto(f"{WORKSPACE}/components/{COMPONENT}/")
        settle(dark)
        dark.screenshot(path=str(SHOTS / "component-dark.png"), full_page=True)

        admin = sign_in(browser, url, "admin")
        admin.goto(f"{WORKSPACE}/settings/")
        form = admin.locator("#target-add")
        form.wait_for()
        if not admin.locator("#notifications table.targets tbody tr:has-text('on-call')").count():
            form.locator("input[name=name]").fill("on-call")
            form.locator("select[name=kind]").select_option("email")
            form.locator("input[name=destination]").fill("oncall@tonys-chips.example")
            form.locator("button[type=submit]").click()
            row = admin.locator("#notifications table.targets tbody tr:has-text('on-call')")
            row.locator("button:has-text('Send test')").click()
            admin.locator("#deliveries tbody tr .badge").first.wait_for()
        settle(admin)
        admin.screenshot(path=str(SHOTS / "settings-notifications.png"), full_page=True)

        for view, name in (("services", "topology-services.png"), ("infrastructure", "topology.png")):
            bob.goto(f"{WORKSPACE}/topology/?view={view}")
            settle(bob)
            bob.screenshot(path=str(SHOTS / name))
        browser.close()
    print(f"Screenshots written to {SHOTS}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the running demo")
    take(parser.parse_args().url)
    sys.exit(0)
