"""Sending notifications: a delivery row per target and event, written before its
message goes out, then one Celery task per delivery (workers.jobs: `enqueue` by name,
`claim`, reaped like every job).

A failure to send is the delivery's own: an unreachable target, a 5xx, 408 or 429 is
tried again after 1, 2, 4, ... times PORTAL_NOTIFY_RETRY_SECONDS, up to
PORTAL_NOTIFY_MAX_ATTEMPTS attempts; a refused address or any other answer fails it at
once. Every attempt's answer code and error is kept on the row (masked).

A webhook is POSTed JSON (at most MAX_BODY bytes) with headers

    X-Portal-Event: applied
    X-Portal-Delivery: 42                     (the same on each retry: deduplicate on it)
    X-Portal-Signature: t=1700000000,v1=<hex HMAC-SHA256 of "{t}.{body}" with the secret>

A Slack-compatible webhook gets {"text": ...}; an email goes through Django's email backend.
Webhooks go through workers.outbound_http (no metadata or link-local address ever; private
ones only if the workspace allows private HTTP checks).
"""

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from portal.secrets import mask_text
from workers import jobs, outbound_http
from workers.models import RunStatus

from . import events
from .models import Delivery, Target, TargetKind

log = logging.getLogger(__name__)

TASK = "notifications.tasks.deliver"
MAX_BODY = 64 * 1024
USER_AGENT = "changeset-portal-notifications"
RETRY_CODES = {408, 425, 429}


class Retry(Exception):
    """Sending failed in a way that may pass: try again later."""


class Fail(Exception):
    """Sending failed for good."""


def on_audit_events(saved):
    """The audit listener (NotificationsConfig registers it): queue what the events make."""
    notified = [(event, key) for event in saved if (key := events.notification_for(event))]
    if notified:
        queue_deliveries(notified)


def queue_deliveries(notified):
    """[(audit event, notification event)] -> a delivery for each enabled target wanting it."""
    targets = {}
    rows = []
    for event, key in notified:
        if event.workspace_id not in targets:
            targets[event.workspace_id] = list(
                Target.objects.filter(workspace_id=event.workspace_id, enabled=True)
            )
        wanted = [t for t in targets[event.workspace_id] if key in t.events]
        if wanted:
            body = events.payload(event, key)
            rows += [_row(t, key, body, audit_event=event) for t in wanted]
    if rows:
        with transaction.atomic():
            Delivery.objects.bulk_create(rows)
            for row in rows:
                enqueue(row.pk)
    return rows


def queue_test(target, user):
    row = _row(target, events.TEST, events.test_payload(target, user))
    row.save()
    enqueue(row.pk)
    return row


def _row(target, key, body, audit_event=None):
    return Delivery(
        workspace_id=target.workspace_id,
        target=target,
        target_name=target.name,
        event=key,
        audit_event=audit_event,
        payload=body,
        queued_at=timezone.now(),
    )


def enqueue(delivery_id, countdown=None):
    jobs.enqueue(TASK, delivery_id, **({"countdown": countdown} if countdown else {}))


# --- Sending one -------------------------------------------------------------------------------


def deliver(delivery_id):
    """Send one delivery (the Celery task's body): claim it, send it, record the outcome."""
    if not jobs.claim(Delivery, delivery_id, started_at=timezone.now()):
        return None  # another worker has it, or it is finished
    delivery = Delivery.objects.select_related("target", "workspace").get(pk=delivery_id)
    target = delivery.target
    try:
        if target is None:
            raise Fail("the target was deleted before it was sent")
        if not target.enabled and delivery.event != events.TEST:
            raise Fail("the target was disabled before it was sent")
        code = send(target, delivery)
    except Retry as exc:
        return _again_or_fail(delivery, target, exc)
    except Fail as exc:
        return _finish(delivery, RunStatus.FAILED, _error(exc, target), code=getattr(exc, "code", None))
    except Exception as exc:  # anything else (an email backend's own error): tried again, logged
        log.exception("delivery #%s failed", delivery.pk)
        return _again_or_fail(delivery, target, exc)
    return _finish(delivery, RunStatus.SUCCEEDED, "", code=code)


def send(target, delivery):
    """Send the delivery's payload to the target; the HTTP answer code (None for email)."""
    payload = delivery.payload
    if target.kind == TargetKind.EMAIL:
        return _send_email(target, payload)
    if target.kind == TargetKind.SLACK:
        body = json.dumps({"text": f"{payload['text']} {payload['url']}"})
        headers = {"Content-Type": "application/json"}
    else:
        body = webhook_body(delivery)
        headers = {
            "Content-Type": "application/json",
            "X-Portal-Event": delivery.event,
            "X-Portal-Delivery": str(delivery.pk),
            "X-Portal-Signature": signature(target.secret, body),
        }
    return _post(target, delivery, body.encode(), headers)


def webhook_body(delivery):
    """The payload as JSON with the delivery's id; its data left out past MAX_BODY bytes."""
    body = json.dumps({**delivery.payload, "delivery": delivery.pk}, ensure_ascii=False, default=str)
    if len(body.encode()) > MAX_BODY:
        body = json.dumps(
            {**delivery.payload, "delivery": delivery.pk, "data": None, "truncated": True},
            ensure_ascii=False,
            default=str,
        )
    return body


def signature(secret, body, timestamp=None):
    """X-Portal-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "{t}.{body}">. The time in
    the signed text lets a receiver refuse a replayed message."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _send_email(target, payload):
    subject = f"[{payload['workspace']}] {payload['title']}"
    message = EmailMessage(
        subject=subject, body=f"{payload['text']}\n\n{payload['url']}\n", to=[target.address]
    )
    try:
        message.send()
    except OSError as exc:  # smtplib's errors included: the server may come back
        raise Retry(f"the mail server refused or did not answer: {exc}") from exc
    return None


def _post(target, delivery, body, headers):
    try:
        code, answer = outbound_http.post(
            target.url,
            body,
            headers,
            timeout=settings.PORTAL_NOTIFY_TIMEOUT_SECONDS,
            allow_private=delivery.workspace.allow_private_http_checks,
            user_agent=USER_AGENT,
            read_limit=300,
        )
    except outbound_http.Refused as exc:
        raise Fail(f"refused: {exc}") from exc
    except outbound_http.Unreachable as exc:
        raise Retry(f"no answer: {exc}") from exc
    if 200 <= code < 300:
        return code
    text = answer.decode("utf-8", "replace").strip()
    error = (Retry if code >= 500 or code in RETRY_CODES else Fail)(
        f"answered {code}" + (f": {' '.join(text.split())[:200]}" if text else "")
    )
    error.code = code
    raise error


def _error(exc, target):
    return mask_text(str(exc), target.secret_values() if target else ())[:2000]


def _again_or_fail(delivery, target, exc):
    code, error = getattr(exc, "code", None), _error(exc, target)
    if delivery.attempts >= settings.PORTAL_NOTIFY_MAX_ATTEMPTS:
        return _finish(delivery, RunStatus.FAILED, f"{error} (after {delivery.attempts} attempts)", code=code)
    delay = min(settings.PORTAL_NOTIFY_RETRY_SECONDS * 2 ** (delivery.attempts - 1), 900)
    with transaction.atomic():
        if Delivery.objects.filter(pk=delivery.pk, status=RunStatus.RUNNING).update(
            status=RunStatus.QUEUED,
            queued_at=timezone.now() + timedelta(seconds=delay),
            response_code=code,
            error=f"{error}; trying again in {delay:g} s",
        ):
            enqueue(delivery.pk, countdown=delay)
    log.info(
        "delivery #%s to %s: attempt %s failed, retrying",
        delivery.pk,
        delivery.target_name,
        delivery.attempts,
    )
    return delivery


def _finish(delivery, status, error, code=None):
    Delivery.objects.filter(pk=delivery.pk, status=RunStatus.RUNNING).update(
        status=status, error=error, response_code=code, finished_at=timezone.now()
    )
    if status == RunStatus.FAILED:
        log.warning(
            "delivery #%s of %s to %s failed: %s", delivery.pk, delivery.event, delivery.target_name, error
        )
    return delivery


# --- Reaping --------------------------------------------------------------------------------------


def reap(now=None):
    """Deliveries a dead worker left running (sent again: a receiver deduplicates on
    X-Portal-Delivery) and queued ones whose message was lost. Beat runs it every 30 s."""
    now = now or timezone.now()
    requeued, failed = jobs.reap_dead(
        Delivery, since="started_at", max_attempts=settings.PORTAL_NOTIFY_MAX_ATTEMPTS, now=now
    )
    for delivery in requeued + jobs.resend_lost(Delivery, now):
        enqueue(delivery.pk)
    return {"requeued": [d.pk for d in requeued], "failed": [d.pk for d in failed]}
