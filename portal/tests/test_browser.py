"""The change-set workflow in a real headless Chromium against the live server, with a
real Celery worker (in a thread) applying to a local AWS (moto server).

Run alone with: python -m pytest portal/tests/test_browser.py -m browser
"""

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not shutil.which("chromium") and not Path("/usr/bin/chromium").exists(), reason="needs chromium"
    ),
]

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
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
)  # README's: docs/screenshots.py
PASSWORDS = {"alice": "pw-alice-123", "bob": "pw-bob-123", "mallory": "pw-mallory-123"}
INGRESS = [
    {
        "IpProtocol": "tcp",
        "FromPort": 3000,
        "ToPort": 3000,
        "CidrIp": "10.0.0.0/16",
        "Description": "web to api",
    }
]


# --- Browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests
    # make between browser steps are plain synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def sign_in(browser, live_server, workspace):
    """sign_in("bob") -> a page of a new browser context signed in through the form."""
    contexts = []

    def open_as(username):
        context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORDS[username])
        page.click("form.card button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    yield open_as
    for context in contexts:
        context.close()


# --- A real worker against a local AWS ----------------------------------------------------------


@pytest.fixture
def local_aws(monkeypatch):
    from workers.localaws import LocalAws

    aws = LocalAws().start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint)
    yield aws.endpoint
    aws.stop()


@pytest.fixture
def celery_worker_thread(transactional_db, local_aws, live_server, private_broker, monkeypatch):
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_prerun
    from django.db import connections

    from portal.celery import app
    from workers import jobs

    # The worker process's heartbeat thread never stops; this test writes one beat itself.
    monkeypatch.setattr("workers.signals._start", lambda *args, **kwargs: None)
    shared = connections["default"]
    share = shared.vendor == "sqlite" and shared.is_in_memory_db()

    def use_the_test_database(**_):
        # An in-memory SQLite test database lives in one connection: hand it to the worker
        # thread as pytest-django hands it to the live server's thread.
        connections["default"] = shared

    if share:
        task_prerun.connect(use_the_test_database, weak=False)
    try:
        with start_worker(
            app, pool="threads", concurrency=1 if share else 4, perform_ping_check=False, shutdown_timeout=30
        ):
            jobs.beat("browser-test-worker")
            yield app
    finally:
        if share:
            task_prerun.disconnect(use_the_test_database)


def wait_for(predicate, timeout=60, every=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


# --- Helpers ------------------------------------------------------------------------------------


def add_component(page, name, search, type_name):
    page.click(".head-actions a.button:has-text('Add component')")
    page.fill("input[name=name]", name)
    page.fill("input[name=q]", search)
    option = page.locator(f"button.type-option[value='{type_name}']")
    option.wait_for()
    option.click()
    page.wait_for_selector("form.editor")


def messages_text(page):
    return " ".join(page.locator(".messages li").all_inner_texts())


# --- The whole workflow -------------------------------------------------------------------------


def test_it_takes_a_change_set_from_edit_to_applied(
    sign_in, celery_worker_thread, local_aws, users, live_server
):
    import boto3

    from portal.models import ChangeSet

    bob = sign_in("bob")
    bob.goto("/workspaces/tonys-chips/changesets/")
    bob.fill("#new input[name=name]", "open-api-port")
    bob.fill("#new textarea[name=problem]", "The web tier cannot reach the API on port 3000.")
    bob.fill(
        "#new textarea[name=solution]", "A VPC and an API security group that lets the VPC in on port 3000."
    )
    bob.click("#new button[type=submit]")
    bob.wait_for_url(re.compile(r"/changesets/\d+/$"))
    cs = ChangeSet.objects.get(name="open-api-port")
    detail = f"/workspaces/tonys-chips/changesets/{cs.pk}/"

    add_component(bob, "sandbox-vpc", "vpc", "AWS::EC2::VPC")
    bob.fill("[name=p__CidrBlock]", "10.0.0.0/16")
    bob.click("form.editor button:has-text('Save')")
    bob.wait_for_url(re.compile(rf"{detail}#c-sandbox-vpc$"))

    add_component(bob, "api-sg", "security group", "AWS::EC2::SecurityGroup")
    bob.fill("[name=p__GroupDescription]", "api service")
    bob.click("details.more-props summary")
    bob.fill("[name=p__SecurityGroupIngress]", json.dumps(INGRESS, indent=2))
    bob.fill("#id_new_target_0", "/VpcId")
    bob.fill("#id_new_component_0", "sandbox-vpc")
    bob.locator("#source-paths-0 option[value='/resource_value/VpcId']").wait_for(state="attached")
    bob.fill("#id_new_path_0", "/resource_value/VpcId")
    bob.click("form.editor button:has-text('Save')")
    bob.wait_for_url(re.compile(rf"{detail}#c-api-sg$"))

    # The diff, per component and path, with the subscription as a link to its source.
    diff = bob.locator("#diff")
    assert diff.locator(".component-diff").count() == 2
    assert (
        diff.locator(
            f"#c-api-sg a.sub[href='/workspaces/tonys-chips/components/sandbox-vpc/?changeset={cs.pk}']"
        ).count()
        == 1
    )
    assert "/SecurityGroupIngress" in diff.inner_text()
    # The plan: the VPC is created first, the group waits for it.
    plan = bob.locator("#plan table.plan > tbody > tr")
    assert plan.count() == 2
    assert "create" in plan.nth(0).inner_text() and "sandbox-vpc" in plan.nth(0).inner_text()
    assert "create:sandbox-vpc" in plan.nth(1).inner_text()

    bob.click("#approvals button:has-text('Request approval')")
    assert "Approval requested." in messages_text(bob)

    alice = sign_in("alice")
    alice.goto(detail)
    alice.fill("#approvals textarea[name=comment]", "Port 3000 from the VPC only: fine.")
    alice.click("#approvals button:has-text('Approve')")
    assert "Approved." in messages_text(alice)
    assert alice.locator("#cs-status").inner_text() == "approved"

    bob.goto(detail)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    bob.screenshot(path=str(SCREENSHOTS / "changeset.png"), full_page=True)
    bob.click("#apply button:has-text('Apply 2 actions')")
    bob.click("#apply-dialog button:has-text('Apply now')")
    assert re.search(r"Apply #\d+ queued\.", messages_text(bob))
    assert "every 2s" in bob.locator("#apply-progress").get_attribute("hx-trigger")
    # htmx polls the progress partial, then reloads the page when the run is finished.
    bob.wait_for_function(
        "() => document.querySelector('#run-status') && document.querySelector('#run-status').textContent.trim() === 'succeeded'",
        timeout=90_000,
    )
    assert bob.locator("#apply-progress").get_attribute("hx-trigger") is None
    statuses = bob.locator("#apply-progress .action-row .badge.succeeded").all_inner_texts()
    assert statuses == ["succeeded", "succeeded"]
    assert bob.locator("#cs-status").inner_text() == "applied"
    bob.screenshot(path=str(SCREENSHOTS / "changeset-applied.png"), full_page=True)

    # AWS has what the page says.
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=local_aws)
    groups = [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"]
    assert [(g["Description"], [p["FromPort"] for p in g["IpPermissions"]]) for g in groups] == [
        ("api service", [3000])
    ]

    # The history tells it all.
    bob.click("a.button:has-text('History')")
    history = bob.locator("table.events").inner_text()
    for verb in (
        "changeset.created",
        "component.added",
        "changeset.approval_requested",
        "changeset.approved",
        "changeset.apply_requested",
        "apply.started",
        "apply.succeeded",
    ):
        assert verb in history, verb


# --- Approvals: refused, stale, rejected; outsiders -----------------------------------------------


@pytest.fixture
def awaiting(workspace, users):
    """Bob's change set adding one security group, awaiting approval."""
    from portal import approvals, changesets

    cs = changesets.create_change_set(workspace, users["editor"], "extra-group")
    changesets.upsert_component(
        cs, users["editor"], "extra-sg", "AWS::EC2::SecurityGroup", {"GroupDescription": "extra"}
    )
    approvals.request_approval(cs, users["editor"])
    return cs


def test_it_never_lets_the_author_approve(sign_in, workspace, users):
    from portal import approvals, changesets
    from portal.models import Approval

    alice_cs = changesets.create_change_set(workspace, users["approver"], "alice-writes")
    changesets.upsert_component(
        alice_cs, users["approver"], "a-sg", "AWS::EC2::SecurityGroup", {"GroupDescription": "a"}
    )
    approvals.request_approval(alice_cs, users["approver"])
    alice = sign_in("alice")
    alice.goto(f"/workspaces/tonys-chips/changesets/{alice_cs.pk}/")
    assert alice.locator("#approvals button:has-text('Approve')").count() == 0
    assert "another approver decides" in alice.locator("#approvals").inner_text()
    # Forced through a hand-made form, the engine refuses and the page says why.
    alice.evaluate(
        """url => { const f = document.createElement('form'); f.method = 'post'; f.action = url;
                    const t = document.querySelector('[name=csrfmiddlewaretoken]').cloneNode();
                    f.append(t); document.body.append(f); f.submit(); }""",
        f"/workspaces/tonys-chips/changesets/{alice_cs.pk}/approve/",
    )
    alice.wait_for_selector(".messages li.error")
    assert "You cannot approve or reject your own change set" in messages_text(alice)
    assert not Approval.objects.exists()


def test_it_marks_an_approval_stale_after_an_edit(sign_in, awaiting, users):
    from portal import approvals

    approvals.approve(awaiting, users["approver"], "ok as it is")
    bob = sign_in("bob")
    bob.goto(f"/workspaces/tonys-chips/changesets/{awaiting.pk}/components/extra-sg/edit/")
    bob.fill("[name=p__GroupDescription]", "extra, renamed")
    bob.click("form.editor button:has-text('Save')")
    bob.wait_for_url(re.compile(r"#c-extra-sg$"))
    assert "stale: the change set or its plan changed since" in bob.locator("#approvals").inner_text()
    assert bob.locator("#cs-status").inner_text() == "needs approval"
    assert "Apply" not in bob.locator("#apply button").all_inner_texts()


def test_it_shows_a_rejection_and_its_reason(sign_in, awaiting):
    alice = sign_in("alice")
    alice.goto(f"/workspaces/tonys-chips/changesets/{awaiting.pk}/")
    alice.click("#approvals button:has-text('Reject')")  # without a reason first
    assert "Say why when you reject" in messages_text(alice)
    alice.fill("#approvals textarea[name=comment]", "Name it after the service it guards.")
    alice.click("#approvals button:has-text('Reject')")
    bob = sign_in("bob")
    bob.goto(f"/workspaces/tonys-chips/changesets/{awaiting.pk}/")
    assert bob.locator("#cs-status").inner_text() == "rejected"
    assert "Name it after the service it guards." in bob.locator("#approvals").inner_text()


def test_it_shows_outsiders_nothing_but_404s(sign_in, awaiting):
    mallory = sign_in("mallory")
    for path in (
        "/workspaces/tonys-chips/",
        f"/workspaces/tonys-chips/changesets/{awaiting.pk}/",
        f"/workspaces/tonys-chips/changesets/{awaiting.pk}/components/new/",
        "/workspaces/tonys-chips/components/extra-sg/",
        "/workspaces/tonys-chips/audit/",
    ):
        assert mallory.goto(path).status == 404, path
    assert "tonys-chips" not in mallory.goto("/").text()


def test_it_filters_components_as_you_type(sign_in, workspace, users):
    from portal.tests.factories import head

    head(
        workspace,
        users["editor"],
        {f"sg-{n}": ("AWS::EC2::SecurityGroup", {"GroupDescription": n}) for n in ("api", "web", "db")},
    )
    bob = sign_in("bob")
    bob.goto("/workspaces/tonys-chips/")
    assert bob.locator("#components tbody tr").count() == 3
    bob.fill("form.filters input[name=name]", "web")
    bob.wait_for_function("() => document.querySelectorAll('#components tbody tr').length === 1")
    assert bob.locator("#components tbody tr").inner_text().startswith("sg-web")
    assert "name=web" in bob.url  # the filter is in the address, so it can be shared


# --- Editing lists as rows, several subscriptions, paths by key -------------------------------------


@pytest.fixture
def web_task(workspace, users):
    from portal.tests.factories import head, observe

    comps = head(
        workspace,
        users["editor"],
        {
            "web-task": (
                "AWS::ECS::TaskDefinition",
                {
                    "Family": "web",
                    "ContainerDefinitions": [
                        {
                            "Name": "web",
                            "Image": "web:1",
                            "PortMappings": [{"ContainerPort": 3001, "Protocol": "tcp"}],
                            "Environment": [
                                {"Name": "NODE_ENV", "Value": "production"},
                                {"Name": "API_URL", "Value": "http://internal-alb:3000"},
                            ],
                        }
                    ],
                },
            ),
            "api-lb": ("AWS::ElasticLoadBalancingV2::LoadBalancer", {"Subnets": ["subnet-a", "subnet-b"]}),
            "db": ("AWS::RDS::DBInstance", {"Engine": "postgres", "DBInstanceClass": "db.t3.micro"}),
        },
    )
    observe(comps["api-lb"], "arn:lb", {"DNSName": "internal-api-123.us-east-1.elb.amazonaws.com"})
    observe(
        comps["db"], "chips-db", {"Endpoint": {"Address": "chips-db.abc.rds.amazonaws.com", "Port": "5432"}}
    )
    return comps


ENV = "/ContainerDefinitions/web/Environment"


def test_it_edits_an_environment_as_rows_with_two_subscriptions_in_one_save(sign_in, web_task):
    from portal.models import ChangeSet
    from portal.tests.factories import src

    bob = sign_in("bob")
    bob.goto("/workspaces/tonys-chips/components/web-task/")
    # The component page starts a change set for it and opens the editor there.
    bob.select_option("#edit-in select[name=change_set]", "new")
    bob.fill("#edit-in input[name=new_name]", "service-discovery-urls")
    bob.click("#edit-in button:has-text('Edit in a change set')")
    bob.wait_for_url(re.compile(r"/changesets/\d+/components/web-task/edit/$"))
    cs = ChangeSet.objects.get(name="service-discovery-urls")

    # The registry's description is rendered, not raw: ``family`` is code.
    assert bob.locator(".type-description code:has-text('family')").count() >= 1
    assert "``" not in bob.locator(".type-description").inner_text()
    # The environment is rows, not JSON: the containers' JSON no longer holds it.
    env = bob.locator(f"[data-rows-table]:has(input[value='{ENV}'])")
    assert env.locator("tbody tr").count() == 3  # two variables and an empty row to fill
    assert "Environment" not in bob.locator("[name=p__ContainerDefinitions]").input_value()
    env.get_by_label(f"Value of row 1 of {ENV}").fill("staging")
    env.locator("button:has-text('Add a row')").click()
    env.get_by_label(f"Name of row 3 of {ENV}").fill("WEB_URL")
    env.get_by_label(f"Value of row 3 of {ENV}").fill("http://web.tonys-chips.local:3001")
    env.locator("tbody tr").last.get_by_placeholder("Name").fill("LOG_LEVEL")  # the row JS added
    env.locator("tbody tr").last.locator("input[type=text]").nth(1).fill("info")

    # Two subscriptions before saving: API_URL's own ⇐ button, then a new variable by key.
    env.locator(f"button[data-subscribe='{ENV}/API_URL/Value']").click()
    assert bob.locator("#id_new_target_0").input_value() == f"{ENV}/API_URL/Value"
    bob.fill("#id_new_component_0", "api-lb")
    option = bob.locator("#source-paths-0 option[value='/resource_value/DNSName']")
    option.wait_for(state="attached")
    assert option.inner_text() == "internal-api-123.us-east-1.elb.amazonaws.com"  # its current value
    bob.fill("#id_new_path_0", "/resource_value/DNSName")
    bob.click("button:has-text('Add another subscription')")
    bob.fill("#id_new_target_1", f"{ENV}/DB_HOST/Value")
    bob.fill("#id_new_component_1", "db")
    bob.locator("#source-paths-1 option[value='/resource_value/Endpoint/Address']").wait_for(state="attached")
    bob.fill("#id_new_path_1", "/resource_value/Endpoint/Address")
    bob.click("form.editor button:has-text('Save')")
    bob.wait_for_url(re.compile(r"#c-web-task$"))

    assert cs.entries.get(name="web-task").properties["ContainerDefinitions"][0]["Environment"] == [
        {"Name": "NODE_ENV", "Value": "staging"},
        {"Name": "API_URL", "Value": src("api-lb", "/resource_value/DNSName")},
        {"Name": "WEB_URL", "Value": "http://web.tonys-chips.local:3001"},
        {"Name": "LOG_LEVEL", "Value": "info"},
        {"Name": "DB_HOST", "Value": src("db", "/resource_value/Endpoint/Address")},
    ]
    # The diff and the plan name every path by key.
    diff = bob.locator("#c-web-task").inner_text()
    for path in (f"{ENV}/NODE_ENV/Value", f"{ENV}/API_URL/Value", f"{ENV}/WEB_URL", f"{ENV}/DB_HOST"):
        assert path in diff, path
    assert "/ContainerDefinitions/0" not in diff
    bob.locator("#plan details.action-changes summary").first.click()
    plan = bob.locator("#plan").inner_text()
    assert f"{ENV}/API_URL/Value" in plan and "/ContainerDefinitions/0" not in plan


def test_it_numbers_the_lines_of_json_and_goes_to_an_error(sign_in, web_task, users):
    from portal import changesets

    cs = changesets.create_change_set(web_task["web-task"].workspace, users["editor"], "json")
    bob = sign_in("bob")
    bob.goto(f"/workspaces/tonys-chips/changesets/{cs.pk}/components/web-task/edit/?mode=json")
    document = bob.locator("textarea[name=document]")
    text = document.input_value()
    lines = text.count("\n") + 1
    assert bob.locator(".json-editor .line-numbers").inner_text().split("\n")[-1] == str(lines)
    document.fill(text.replace('"Family": "web",', '"Family": "web",,'))
    bob.click("form.editor button:has-text('Save')")
    error = bob.locator(".field-error").first
    assert "not valid JSON" in error.inner_text() and "(line 2, column" in error.inner_text()
    error.locator("button:has-text('Go to line 2')").click()
    caret = bob.evaluate("() => document.querySelector('textarea[name=document]').selectionStart")
    assert text[:caret].count("\n") == 1  # on line 2
    assert not cs.entries.exists()
