"""The workspace's settings page and its Notifications panel, from every seat: the admin
manages targets and reads deliveries; an approver is refused; an outsider finds nothing.
Bad input gets a clear message and saves nothing; secrets never reach a page."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from notifications import targets
from notifications.models import Delivery, Target
from portal.models import AuditEvent, Workspace

BASE = "/workspaces/tonys-chips/settings/"
PANEL = BASE + "notifications/"
SLACK = "https://hooks.slack.com/services/T0001/B07ABCDEF/9xQvR2mZkL8pT4sW1nY6uH3c"
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def as_user(users, admin):
    def sign_in(user):
        client = Client()
        client.force_login(user)
        return client

    return sign_in


@pytest.fixture
def carol(as_user, admin):
    return as_user(admin)


def add(client, **fields):
    data = {
        "name": "ci",
        "kind": "webhook",
        "destination": "https://ci.example.com/portal-hook",
        "events": ["applied"],
    }
    return client.post(PANEL + "targets/", {**data, **fields}, **HX)


def test_it_shows_the_settings_page_to_admins_with_members_and_the_panel(carol):
    page = carol.get(BASE)
    text = page.content.decode()
    assert page.status_code == 200
    assert "<h1>Settings</h1>" in text and "carol" in text and f'hx-get="{PANEL}"' in text
    home = carol.get("/workspaces/tonys-chips/").content.decode()
    assert f'href="{BASE}"' in home
    nav = carol.get("/workspaces/tonys-chips/changesets/").content.decode().split('class="wsnav"')[1]
    assert f'<a href="{BASE}">Settings</a>' in nav.split("</nav>")[0]


def test_it_refuses_the_settings_to_members_who_are_not_admins_and_hides_them_from_outsiders(
    as_user, users, admin, client
):
    approver, outsider = as_user(users["approver"]), as_user(users["outsider"])
    for path in (BASE, PANEL, PANEL + "deliveries/"):
        assert approver.get(path).status_code == 403
        assert outsider.get(path).status_code == 404
        assert client.get(path)["Location"].startswith("/login/")
    assert f'href="{BASE}"' not in approver.get("/workspaces/tonys-chips/").content.decode()
    assert f'href="{BASE}"' not in approver.get("/workspaces/tonys-chips/changesets/").content.decode()
    assert add(approver).status_code == 403 and add(outsider).status_code == 404
    assert Target.objects.count() == 0


def test_an_admin_adds_a_webhook_and_sees_its_secret_once(carol, workspace):
    response = add(carol, name="ci", events=["applied", "apply_failed"])

    assert response.status_code == 200
    target = Target.objects.get()
    text = response.content.decode()
    assert "Target ci added." in text and target.secret in text and len(target.secret) == 64
    assert "<html" not in text  # the panel alone, swapped in place
    again = carol.get(PANEL, **HX).content.decode()
    assert target.secret not in again and "https://ci.example.com/portal-hook" in again
    assert target.events == ["applied", "apply_failed"] and target.created_by.username == "carol"
    event = AuditEvent.objects.get(verb="notification_target.created")
    assert event.actor.username == "carol" and event.workspace == workspace
    assert event.after == {
        "name": "ci",
        "kind": "webhook",
        "destination": "https://ci.example.com/portal-hook",
        "events": ["applied", "apply_failed"],
        "enabled": True,
    }


def test_a_slack_url_is_shown_masked_everywhere(carol, workspace, admin):
    assert add(carol, name="ops", kind="slack", destination=SLACK).status_code == 200
    token = SLACK.split("/services/")[1]

    panel = carol.get(PANEL, **HX).content.decode()
    assert "https://hooks.slack.com/services/••••••" in panel and token not in panel
    audit = carol.get("/workspaces/tonys-chips/audit/").content.decode()
    assert token not in audit
    get_user_model().objects.filter(pk=admin.pk).update(is_staff=True, is_superuser=True)
    target = Target.objects.get()
    for page in ("/admin/notifications/target/", f"/admin/notifications/target/{target.pk}/change/"):
        answer = carol.get(page)
        assert answer.status_code == 200 and token not in answer.content.decode()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"destination": "ftp://ci.example.com/hook"}, "Only http:// and https:// URLs can be notified."),
        ({"destination": "https://ci.example.com/" + "x" * 2000}, "A URL has at most 2000 characters."),
        ({"destination": ""}, "Give the URL to post to"),
        ({"destination": "https://user:pw@ci.example.com/hook"}, "Put no user name or password in the URL"),
        ({"destination": "https:///hook"}, "names no host"),
        ({"destination": "https://ci.example.com:99999/"}, "has a port that is not a number"),
        ({"destination": "http://169.254.169.254/latest/"}, "the instance metadata service"),
        ({"destination": "http://10.0.0.5/hook"}, "private address"),
        (
            {"kind": "email", "destination": "not-an-address"},
            "&#x27;not-an-address&#x27; is not an email address.",
        ),
        ({"events": []}, "Choose at least one event to notify."),
        (
            {"events": ["coffee_ready"]},
            "Select a valid choice. coffee_ready is not one of the available choices.",
        ),
        ({"name": ""}, "Give the target a name"),
        ({"name": "n" * 101}, "A target&#x27;s name has at most 100 characters."),
        ({"secret": "short"}, "A signing secret has 16 to 128 characters"),
        ({"kind": "pager"}, "Select a valid choice. pager is not one of the available choices."),
    ],
)
def test_bad_input_gets_a_clear_message_and_saves_nothing(carol, fields, message):
    response = add(carol, **fields)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert Target.objects.count() == 0
    assert not AuditEvent.objects.filter(verb__startswith="notification_target").exists()


def test_names_are_unique_and_the_number_of_targets_is_limited(carol, settings):
    settings.PORTAL_NOTIFY_MAX_TARGETS = 2
    assert add(carol, name="ci").status_code == 200
    duplicate = add(carol, name="ci")
    assert duplicate.status_code == 400
    assert (
        "This workspace already has a notification target named &#x27;ci&#x27;." in duplicate.content.decode()
    )
    assert add(carol, name="second").status_code == 200
    third = add(carol, name="third")
    assert third.status_code == 400
    assert "A workspace has at most 2 notification targets; delete one first." in third.content.decode()
    assert sorted(Target.objects.values_list("name", flat=True)) == ["ci", "second"]


def test_an_admin_edits_a_target_keeping_what_is_left_blank(carol, workspace, admin):
    target, secret = targets.create_target(
        workspace, admin, "ci", "webhook", "https://ci.example.com/a/b", ["applied"]
    )
    url = f"{PANEL}targets/{target.pk}/"
    prefix = f"t{target.pk}-"

    saved = carol.post(
        url, {prefix + "name": "ci-renamed", prefix + "events": ["applied", "drift_found"]}, **HX
    )

    assert saved.status_code == 200 and "Target ci-renamed saved." in saved.content.decode()
    target.refresh_from_db()
    assert (target.name, target.url, target.secret) == ("ci-renamed", "https://ci.example.com/a/b", secret)
    assert target.events == ["applied", "drift_found"]
    rotated = carol.post(
        url,
        {prefix + "name": "ci-renamed", prefix + "events": ["applied"], prefix + "rotate_secret": "on"},
        **HX,
    )
    target.refresh_from_db()
    assert target.secret != secret and target.secret in rotated.content.decode()
    bad = carol.post(
        url,
        {prefix + "name": "ci-renamed", prefix + "events": ["applied"], prefix + "destination": "gopher://x"},
        **HX,
    )
    assert (
        bad.status_code == 400 and "Only http:// and https:// URLs can be notified." in bad.content.decode()
    )
    target.refresh_from_db()
    assert target.url == "https://ci.example.com/a/b"
    updates = AuditEvent.objects.filter(verb="notification_target.updated").order_by("pk")
    assert [e.after.get("signing") for e in updates] == [None, "changed"]
    assert updates[0].before["name"] == "ci" and updates[0].after["name"] == "ci-renamed"
    assert "https://ci.example.com/a/••••••" == updates[0].after["destination"]


def test_an_admin_disables_enables_and_deletes_a_target_each_audited(carol, workspace, admin):
    target, _ = targets.create_target(
        workspace, admin, "ci", "webhook", "https://ci.example.com/h", ["applied"]
    )
    base = f"{PANEL}targets/{target.pk}/"

    assert "disabled" in carol.post(base + "disable/", **HX).content.decode()
    target.refresh_from_db()
    assert target.enabled is False
    carol.post(base + "enable/", **HX)
    target.refresh_from_db()
    assert target.enabled is True
    deleted = carol.post(base + "delete/", **HX)
    assert "Target ci deleted" in deleted.content.decode() and not Target.objects.exists()
    assert list(
        AuditEvent.objects.filter(verb__startswith="notification_target.")
        .order_by("pk")
        .values_list("verb", flat=True)
    ) == [
        "notification_target.created",
        "notification_target.disabled",
        "notification_target.enabled",
        "notification_target.deleted",
    ]
    assert carol.get(base + "delete/").status_code == 405
    assert carol.post(base + "delete/", **HX).status_code == 404


def test_a_target_of_another_workspace_is_not_found(carol, users):
    other = Workspace.objects.get(slug="other")  # users["outsider"] is its admin
    target, _ = targets.create_target(
        other, users["outsider"], "theirs", "webhook", "https://x.example.com/h", ["applied"]
    )
    assert carol.post(f"{PANEL}targets/{target.pk}/delete/", **HX).status_code == 404
    assert (
        carol.post(f"/workspaces/other/settings/notifications/targets/{target.pk}/delete/", **HX).status_code
        == 404
    )
    assert Target.objects.filter(pk=target.pk).exists()


def test_a_test_send_is_delivered_and_listed_with_its_outcome(carol, private_ok, admin, receiver, inline):
    target, _ = targets.create_target(private_ok, admin, "ci", "webhook", receiver.url + "/hook", ["applied"])
    targets.create_target(private_ok, admin, "mail", "email", "ops@tonys-chips.example", ["applied"])
    receiver.answers = [500]

    response = inline(carol.post, f"{PANEL}targets/{target.pk}/test/", **HX)

    assert "A test notification to ci is queued." in response.content.decode()
    sent = Delivery.objects.get()
    assert (sent.event, sent.status, sent.attempts, sent.response_code) == ("test", "succeeded", 2, 200)
    assert receiver.json(1)["text"] == "[tonys-chips] A test notification from carol to ci."
    listed = carol.get(PANEL + "deliveries/").content.decode()
    assert f'id="delivery-{sent.pk}"' in listed and "succeeded" in listed and ">2<" in listed
    assert "hx-trigger" not in listed  # nothing pending: no polling
    assert AuditEvent.objects.filter(verb="notification_target.tested", target="ci").exists()


def test_the_panel_lists_failed_deliveries_with_their_masked_error_and_polls_pending_ones(
    carol, workspace, admin
):
    target, _ = targets.create_target(
        workspace, admin, "ci", "webhook", "https://ci.example.com/h", ["applied"]
    )
    Delivery.objects.create(
        workspace=workspace,
        target=target,
        target_name="ci",
        event="applied",
        payload={},
        status="failed",
        attempts=5,
        response_code=502,
        error="answered 502: bad gateway (after 5 attempts)",
    )
    Delivery.objects.create(
        workspace=workspace, target=target, target_name="ci", event="drift_found", payload={}
    )

    panel = carol.get(PANEL, **HX).content.decode()

    assert "Applied" in panel and "answered 502: bad gateway (after 5 attempts)" in panel and "502" in panel
    assert "Drift found" in panel and 'hx-trigger="every 2s"' in panel
    assert target.secret not in panel


def test_without_htmx_the_panel_is_a_page_of_its_own(carol):
    response = carol.post(
        PANEL + "targets/",
        {"name": "ci", "kind": "email", "destination": "ops@example.com", "events": ["applied"]},
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "<html" in text and "Target ci added." in text
