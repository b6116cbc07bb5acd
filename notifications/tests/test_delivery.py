"""Sending: signed webhooks to a real HTTP server on loopback, Slack's text, email through
Django's backend (locmem in tests), retries, refusals and the limits."""

import json
import logging
import time

import pytest
from django.core import mail
from django.utils import timezone

from notifications import delivery, targets
from notifications.models import Delivery
from portal import approvals, changesets
from portal.errors import ValidationError
from portal.models import AuditEvent

from .conftest import verified

SECRET = "whsec-0123456789abcdef"
SLACK_TOKEN = "B07ABCDEF/9xQvR2mZkL8pT4sW1nY6uH3c"


@pytest.fixture
def change_set(workspace, users):
    cs = changesets.create_change_set(workspace, users["editor"], "longer-log-retention")
    changesets.upsert_component(
        cs,
        users["editor"],
        "logs",
        "AWS::Logs::LogGroup",
        {"LogGroupName": "/tonys/api", "RetentionInDays": 7},
    )
    return cs


def ask_approval(inline, cs, users):
    inline(approvals.request_approval, cs, users["editor"])
    return Delivery.objects.order_by("pk").last()


def webhook(workspace, admin, url, events=("approval_requested",), secret=SECRET, name="ci"):
    return targets.create_target(workspace, admin, name, "webhook", url, list(events), secret)[0]


def test_it_posts_a_signed_webhook_the_receiver_can_verify(
    private_ok, admin, users, change_set, receiver, inline
):
    target = webhook(private_ok, admin, receiver.url + "/portal-hook")

    sent = ask_approval(inline, change_set, users)

    [request] = receiver.posts("/portal-hook")
    path, headers, body = request
    assert verified(request, SECRET)
    assert not verified(request, "another-secret-entirely")
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Portal-Event"] == "approval_requested"
    assert headers["X-Portal-Delivery"] == str(sent.pk)
    assert headers["User-Agent"] == "changeset-portal-notifications"
    data = json.loads(body)
    assert data["event"] == "approval_requested" and data["delivery"] == sent.pk
    assert (
        data["text"]
        == f"[tonys-chips] bob asks for approval of change set #{change_set.pk} longer-log-retention."
    )
    assert data["url"] == f"http://127.0.0.1:8000/workspaces/tonys-chips/changesets/{change_set.pk}/"
    assert data["change_set"] == {"id": change_set.pk, "name": "longer-log-retention"}
    assert data["actor"] == "bob"
    sent.refresh_from_db()
    assert (sent.status, sent.attempts, sent.response_code, sent.error) == ("succeeded", 1, 200, "")
    assert sent.target == target and sent.audit_event.verb == "changeset.approval_requested"
    assert sent.finished_at is not None


def test_the_signature_covers_a_timestamp_so_a_replay_can_be_refused():
    header = delivery.signature(SECRET, '{"a": 1}', timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert header != delivery.signature(SECRET, '{"a": 1}', timestamp=1_700_000_001)
    now = int(time.time())
    assert abs(int(delivery.signature(SECRET, "{}").split(",")[0][2:]) - now) <= 2


def test_it_tries_again_after_a_500_and_keeps_the_same_delivery_id(
    private_ok, admin, users, change_set, receiver, inline
):
    webhook(private_ok, admin, receiver.url + "/flaky")
    receiver.answers = [500, 503]

    sent = ask_approval(inline, change_set, users)

    assert [r[0] for r in receiver.requests] == ["/flaky"] * 3
    assert {r[1]["X-Portal-Delivery"] for r in receiver.requests} == {str(sent.pk)}
    assert all(verified(r, SECRET) for r in receiver.requests)
    sent.refresh_from_db()
    assert (sent.status, sent.attempts, sent.response_code, sent.error) == ("succeeded", 3, 200, "")


def test_it_gives_up_on_a_target_that_is_down_after_the_last_attempt(
    private_ok, admin, users, change_set, closed_port, inline, settings
):
    settings.PORTAL_NOTIFY_MAX_ATTEMPTS = 3
    webhook(private_ok, admin, f"http://127.0.0.1:{closed_port}/hook")

    sent = ask_approval(inline, change_set, users)

    sent.refresh_from_db()
    assert (sent.status, sent.attempts, sent.response_code) == ("failed", 3, None)
    assert sent.error.startswith("no answer: ") and sent.error.endswith("(after 3 attempts)")
    assert "refused" in sent.error.lower()


def test_a_4xx_answer_fails_at_once_with_the_answer_recorded(
    private_ok, admin, users, change_set, receiver, inline
):
    webhook(private_ok, admin, receiver.url + "/gone")
    receiver.answers = [410]

    sent = ask_approval(inline, change_set, users)

    sent.refresh_from_db()
    assert (sent.status, sent.attempts, sent.response_code) == ("failed", 1, 410)
    assert sent.error == "answered 410: try later"
    assert len(receiver.requests) == 1


def test_a_slack_webhook_gets_its_text_and_its_token_is_never_shown(
    private_ok, admin, users, change_set, receiver, inline, caplog
):
    url = f"{receiver.url}/services/T0001/{SLACK_TOKEN}"
    target, secret = targets.create_target(
        private_ok, admin, "ops-slack", "slack", url, ["approval_requested"]
    )
    assert secret is None and target.secret == ""
    receiver.answers = [500]

    with caplog.at_level(logging.INFO):
        sent = ask_approval(inline, change_set, users)

    [first, second] = receiver.requests
    assert first[0] == f"/services/T0001/{SLACK_TOKEN}"
    assert json.loads(second[2]) == {
        "text": f"[tonys-chips] bob asks for approval of change set #{change_set.pk} longer-log-retention. "
        f"http://127.0.0.1:8000/workspaces/tonys-chips/changesets/{change_set.pk}/"
    }
    assert "X-Portal-Signature" not in second[1]
    assert target.shown_destination == f"{receiver.url}/services/••••••"
    sent.refresh_from_db()
    assert sent.status == "succeeded" and sent.attempts == 2
    created = AuditEvent.objects.get(verb="notification_target.created")
    assert created.after["destination"] == f"{receiver.url}/services/••••••"
    assert SLACK_TOKEN not in json.dumps(created.after) + caplog.text


def test_email_goes_through_djangos_email_backend(workspace, admin, users, change_set, inline):
    targets.create_target(
        workspace, admin, "ops-mail", "email", "ops@tonys-chips.example", ["approval_requested"]
    )

    sent = ask_approval(inline, change_set, users)

    [message] = mail.outbox
    assert message.to == ["ops@tonys-chips.example"]
    assert message.subject == "[tonys-chips] Approval requested"
    assert f"bob asks for approval of change set #{change_set.pk}" in message.body
    assert f"/workspaces/tonys-chips/changesets/{change_set.pk}/" in message.body
    sent.refresh_from_db()
    assert (sent.status, sent.attempts, sent.response_code) == ("succeeded", 1, None)


def test_a_webhook_to_a_private_address_is_refused_unless_the_workspace_allows_it(
    workspace, admin, users, change_set, receiver, inline
):
    port = receiver.url.rsplit(":", 1)[1]
    webhook(workspace, admin, f"http://localhost:{port}/hook")  # a name: checked where it resolves

    sent = ask_approval(inline, change_set, users)

    sent.refresh_from_db()
    assert (sent.status, sent.attempts) == ("failed", 1)  # refused for good, not retried
    assert sent.error.startswith("refused: localhost resolves to ")
    assert "allow_private_http_checks" in sent.error
    assert receiver.requests == []
    with pytest.raises(ValidationError, match="the instance metadata service"):
        webhook(workspace, admin, "http://169.254.169.254/latest/meta-data/", name="metadata")
    with pytest.raises(ValidationError, match="private address"):
        webhook(workspace, admin, f"http://127.0.0.1:{port}/hook", name="loopback")


def test_a_disabled_target_is_sent_nothing(private_ok, admin, users, change_set, receiver, inline):
    target = webhook(private_ok, admin, receiver.url + "/hook")
    targets.set_enabled(target, admin, False)

    ask_approval(inline, change_set, users)

    assert Delivery.objects.count() == 0 and receiver.requests == []


def test_a_target_that_wants_other_events_is_sent_nothing(
    private_ok, admin, users, change_set, receiver, inline
):
    webhook(private_ok, admin, receiver.url + "/hook", events=["applied", "apply_failed"])

    ask_approval(inline, change_set, users)

    assert Delivery.objects.count() == 0


def test_a_payload_past_the_body_limit_is_sent_without_its_data(private_ok, admin, receiver, inline):
    target = webhook(private_ok, admin, receiver.url + "/hook")
    big = Delivery.objects.create(
        workspace=private_ok,
        target=target,
        target_name=target.name,
        event="apply_failed",
        payload={"event": "apply_failed", "text": "it failed", "url": "u", "data": {"error": "x" * 100_000}},
        queued_at=timezone.now(),
    )

    inline(delivery.deliver, big.pk)

    [request] = receiver.requests
    assert len(request[2]) <= delivery.MAX_BODY and verified(request, SECRET)
    assert json.loads(request[2]) == {
        "event": "apply_failed",
        "text": "it failed",
        "url": "u",
        "data": None,
        "truncated": True,
        "delivery": big.pk,
    }


def test_a_delivery_whose_worker_died_is_sent_again_by_the_reaper(
    private_ok, admin, receiver, inline, settings
):
    target = webhook(private_ok, admin, receiver.url + "/hook")
    long_ago = timezone.now() - timezone.timedelta(
        seconds=settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS + 60
    )
    stuck = Delivery.objects.create(
        workspace=private_ok,
        target=target,
        target_name=target.name,
        event="applied",
        payload={"event": "applied", "text": "applied", "url": "u"},
        status="running",
        attempts=1,
        worker="gone-host:4242:dead",
        started_at=long_ago,
        queued_at=long_ago,
    )

    summary = inline(delivery.reap)

    assert summary == {"requeued": [stuck.pk], "failed": []}
    stuck.refresh_from_db()
    assert (stuck.status, stuck.attempts) == ("succeeded", 2)
    assert [r[1]["X-Portal-Delivery"] for r in receiver.requests] == [str(stuck.pk)]


def test_a_delivery_is_sent_once_however_many_messages_arrive(
    private_ok, admin, users, change_set, receiver, inline
):
    webhook(private_ok, admin, receiver.url + "/hook")
    sent = ask_approval(inline, change_set, users)

    inline(delivery.deliver, sent.pk)  # a duplicate message: the row is no longer queued

    assert len(receiver.requests) == 1
