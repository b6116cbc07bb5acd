"""Production settings as an attacker meets them: the deploy checks, the security headers on
every page, login throttling, password rules and what the admin may change."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from deployments.demo import DEMO_USERS
from portal.models import AuditEvent, Membership, Role

# The live-server browser fixtures of the workflow tests (sign_in needs browser).
from portal.tests.test_browser import browser, sign_in  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def test_deploy_checks_pass_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "PORTAL_VAR_DIR": str(tmp_path),
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "portal.example.com",
        "PORTAL_HTTPS": "true",
        "PORTAL_TLS_PROXY": "true",
    }
    env.pop("DEBUG", None)
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues" in checked.stdout


def test_laptop_defaults_serve_plain_http(settings):
    assert not settings.SECURE_SSL_REDIRECT
    assert not settings.SESSION_COOKIE_SECURE
    assert settings.SECURE_HSTS_SECONDS == 0


# --- Headers ------------------------------------------------------------------------------------

PAGES = [
    ("login", None, lambda ws, cs: reverse("login")),
    ("home", "approver", lambda ws, cs: reverse("home")),
    ("workspace", "approver", lambda ws, cs: reverse("workspace", args=[ws.slug])),
    ("components", "approver", lambda ws, cs: reverse("components", args=[ws.slug])),
    ("component", "approver", lambda ws, cs: reverse("component", args=[ws.slug, "db"])),
    ("changesets", "approver", lambda ws, cs: reverse("changesets", args=[ws.slug])),
    ("changeset", "approver", lambda ws, cs: reverse("changeset", args=[ws.slug, cs.pk])),
    ("changeset history", "approver", lambda ws, cs: reverse("changeset-audit", args=[ws.slug, cs.pk])),
    ("editor", "editor", lambda ws, cs: reverse("component-edit", args=[ws.slug, cs.pk, "db"])),
    ("audit log", "approver", lambda ws, cs: reverse("audit", args=[ws.slug])),
    ("queue fragment", "approver", lambda ws, cs: reverse("action-queue", args=[ws.slug])),
    ("topology", "approver", lambda ws, cs: reverse("topology", args=[ws.slug])),
    ("deployments", "approver", lambda ws, cs: reverse("deployments:index", args=[ws.slug])),
    ("admin", "admin", lambda ws, cs: reverse("admin:index")),
    ("not a member", "outsider", lambda ws, cs: reverse("workspace", args=[ws.slug])),
    ("not found", "approver", lambda ws, cs: "/no-such-page/"),
]


@pytest.mark.parametrize("seat_name,url", [(seat, url) for _, seat, url in PAGES], ids=[p[0] for p in PAGES])
def test_every_page_kind_carries_the_security_headers(
    seat_name, url, seat, users, change_set, django_user_model
):
    if seat_name == "admin":
        client = Client()
        client.force_login(django_user_model.objects.create_superuser("root", password=None))
    else:
        client = seat(seat_name) if seat_name else Client()
    response = client.get(url(change_set.workspace, change_set))
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe" not in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


# --- Signing in ---------------------------------------------------------------------------------


def post_login(client, username, password, address="203.0.113.7"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client):
    return "_auth_user_id" in client.session


def test_forty_wrong_passwords_then_the_right_one_is_refused(users):
    client = Client()
    for _ in range(40):
        post_login(client, "bob", "guess-" + secrets.token_hex(4))
    response = post_login(client, "bob", "pw-bob-123")
    assert response.status_code == 429
    assert "Signing in is locked" in response.content.decode()
    assert "15 minutes" in response.content.decode()
    assert not signed_in(client)
    # Every attempt is in the audit log, each refused one during the lockout too.
    assert AuditEvent.objects.filter(verb="auth.login_failed", target="bob").count() == 41
    first_lockout = AuditEvent.objects.filter(verb="auth.locked_out").earliest("id")
    assert first_lockout.target == "bob" and first_lockout.after == {"address": "203.0.113.7"}


def test_an_address_guessing_across_usernames_is_locked_out(users):
    client = Client()
    for name in ["root", "admin", "alice", "carol", "dave"]:
        post_login(client, name, "hunter2")
    assert post_login(client, "bob", "pw-bob-123").status_code == 429
    # Bob at his own desk still signs in.
    other = Client()
    post_login(other, "bob", "pw-bob-123", address="198.51.100.20")
    assert signed_in(other)


def test_a_few_typos_do_not_lock_anyone_out(users):
    client = Client()
    for _ in range(4):
        response = post_login(client, "alice", "pw-alice-12")
        assert response.status_code == 200
        assert "didn't match" in response.content.decode()
    post_login(client, "alice", "pw-alice-123")
    assert signed_in(client)
    assert AuditEvent.objects.filter(verb="auth.login_failed", target="alice").count() == 4
    assert not AuditEvent.objects.filter(verb="auth.locked_out").exists()


@pytest.mark.parametrize("weak", ["short1", "password123", "12345678901"])
def test_weak_passwords_are_refused(weak, users):
    with pytest.raises(ValidationError):
        validate_password(weak, user=users["editor"])


@pytest.mark.parametrize("username,password,_role", DEMO_USERS)
def test_the_demo_users_passwords_pass_the_validators(username, password, _role, django_user_model):
    validate_password(password, user=django_user_model(username=username))


# --- Admin --------------------------------------------------------------------------------------


def test_the_admin_cannot_change_approvals_or_memberships(workspace, users, django_user_model):
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", password=None))
    url = reverse("admin:portal_workspace_change", args=[workspace.pk])
    page = admin.get(url).content.decode()
    assert 'name="approvals_required"' not in page
    assert 'name="memberships-0-role"' not in page
    members = set(Membership.objects.values_list("user__username", "role"))

    admin.post(
        url,
        {
            "name": workspace.name,
            "slug": workspace.slug,
            "region": workspace.region,
            "approvals_required": "0",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-user": users["outsider"].pk,
            "memberships-0-role": Role.ADMIN,
        },
    )
    workspace.refresh_from_db()
    assert workspace.approvals_required == 1
    assert set(Membership.objects.values_list("user__username", "role")) == members


# --- In Chromium --------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs chromium")
@pytest.mark.parametrize(
    "page_name",
    ["changeset", "workspace", "topology"],
)
def test_pages_run_under_the_policy_without_a_violation(page_name, sign_in, change_set):  # noqa: F811
    page = sign_in("bob")
    console = []
    page.on("console", lambda message: console.append(message.text))
    ws = change_set.workspace
    url = {
        "changeset": reverse("changeset", args=[ws.slug, change_set.pk]),
        "workspace": reverse("workspace", args=[ws.slug]),
        "topology": reverse("topology", args=[ws.slug]) + f"?changeset={change_set.pk}",
    }[page_name]
    page.goto(url)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.htmx.config.allowEval") is False
    if page_name == "changeset":
        # The confirmation comes from portal.js: declining it keeps the change set open.
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click("text=Abandon")
        page.wait_for_load_state("networkidle")
        assert page.url.endswith(url)
    assert [text for text in console if "Content Security Policy" in text] == []
