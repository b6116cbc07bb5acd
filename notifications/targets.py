"""A workspace's notification targets: the rules for adding, changing, disabling,
deleting and test-sending them (workspace admins only, every change audited), and how a
target is shown (its secrets masked).

A webhook's signing secret is typed by the admin or drawn by the portal; either way it is
shown once, when it is set, and never again (pages, admin, audit and logs show it masked).
A URL may hold a token (a Slack incoming webhook's path is its credential): only its
scheme, host and first path segment are ever shown.
"""

import ipaddress
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from portal import audit
from portal.access import require_role
from portal.errors import ValidationError
from portal.models import Role, Workspace
from workers import outbound_http

from .delivery import queue_test
from .events import EVENTS
from .models import Target, TargetKind, masked_url

MAX_NAME = 100
MAX_URL = 2000
MAX_ADDRESS = 254
MIN_SECRET, MAX_SECRET = 16, 128


def create_target(workspace, user, name, kind, destination, events, secret=""):
    """Add a target; returns (target, the secret to show once, or None)."""
    with transaction.atomic():
        ws = Workspace.objects.select_for_update().get(pk=workspace.pk)
        require_role(user, ws, Role.ADMIN)
        if kind not in TargetKind.values:
            raise ValidationError(f"Unknown kind {kind!r}: choose one of {', '.join(TargetKind.values)}.")
        limit = settings.PORTAL_NOTIFY_MAX_TARGETS
        if Target.objects.filter(workspace=ws).count() >= limit:
            raise ValidationError(f"A workspace has at most {limit} notification targets; delete one first.")
        target = Target(workspace=ws, kind=kind, created_by=user, name=_name(name), events=_events(events))
        _set_destination(target, destination)
        shown = None
        if kind == TargetKind.WEBHOOK:
            target.secret = shown = _secret(secret) if secret else secrets.token_hex(32)
        _save(target)
        audit.record(
            "notification_target.created",
            actor=user,
            workspace=ws,
            target=target.name,
            after=described(target),
        )
    return target, shown


def update_target(target, user, name, destination, events, secret="", rotate_secret=False):
    """Change a target; a blank destination or secret keeps the stored one. Returns
    (target, the new secret to show once, or None)."""
    with transaction.atomic():
        target = _lock(target, user)
        before = described(target)
        target.name, target.events = _name(name), _events(events)
        if (destination or "").strip():
            _set_destination(target, destination)
        shown = None
        if target.kind == TargetKind.WEBHOOK and (secret or rotate_secret):
            target.secret = shown = _secret(secret) if secret else secrets.token_hex(32)
        _save(target)
        after = described(target)
        if shown:
            after["signing"] = "changed"  # the secret itself is never written down
        audit.record(
            "notification_target.updated",
            actor=user,
            workspace=target.workspace,
            target=target.name,
            before=before,
            after=after,
        )
    return target, shown


def set_enabled(target, user, enabled):
    with transaction.atomic():
        target = _lock(target, user)
        if target.enabled != enabled:
            target.enabled = enabled
            target.save(update_fields=["enabled", "updated_at"])
            audit.record(
                "notification_target.enabled" if enabled else "notification_target.disabled",
                actor=user,
                workspace=target.workspace,
                target=target.name,
            )
    return target


def delete_target(target, user):
    with transaction.atomic():
        target = _lock(target, user)
        before = described(target)
        target.delete()
        audit.record(
            "notification_target.deleted",
            actor=user,
            workspace=target.workspace,
            target=before["name"],
            before=before,
        )


def send_test(target, user):
    """Queue a test notification to the target (disabled or not): the delivery row."""
    with transaction.atomic():
        target = _lock(target, user)
        delivery = queue_test(target, user)
        audit.record("notification_target.tested", actor=user, workspace=target.workspace, target=target.name)
    return delivery


def described(target):
    """A target as audit events and pages show it: no secret, the URL masked."""
    return {
        "name": target.name,
        "kind": target.kind,
        "destination": target.shown_destination,
        "events": list(target.events),
        "enabled": target.enabled,
    }


# --- Checking what an admin typed ------------------------------------------------------------


def _lock(target, user):
    target = Target.objects.select_for_update().select_related("workspace").get(pk=target.pk)
    require_role(user, target.workspace, Role.ADMIN)
    return target


def _save(target):
    try:
        with transaction.atomic():
            target.save()
    except IntegrityError:
        raise ValidationError(
            f"This workspace already has a notification target named {target.name!r}."
        ) from None


def _name(name):
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the target a name (e.g. ops-slack).")
    if len(name) > MAX_NAME:
        raise ValidationError(f"A target's name has at most {MAX_NAME} characters.")
    if not name.isprintable():
        raise ValidationError("A target's name holds printable characters only.")
    return name


def _events(events):
    events = list(dict.fromkeys(events or ()))
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ValidationError(
            f"Unknown event {unknown[0]!r}: choose from {', '.join(EVENTS)}.",
        )
    if not events:
        raise ValidationError("Choose at least one event to notify.")
    return events


def _secret(secret):
    if not MIN_SECRET <= len(secret) <= MAX_SECRET or not secret.isprintable() or " " in secret:
        raise ValidationError(
            f"A signing secret has {MIN_SECRET} to {MAX_SECRET} characters without spaces "
            "(leave it blank and the portal draws one)."
        )
    return secret


def _set_destination(target, destination):
    destination = (destination or "").strip()
    if target.kind == TargetKind.EMAIL:
        if len(destination) > MAX_ADDRESS:
            raise ValidationError(f"An email address has at most {MAX_ADDRESS} characters.")
        try:
            validate_email(destination)
        except DjangoValidationError:
            raise ValidationError(f"{destination!r} is not an email address.") from None
        target.address, target.url = destination, ""
    else:
        target.url, target.address = _url(destination, target.workspace), ""


def _url(url, workspace):
    if not url:
        raise ValidationError("Give the URL to post to (http:// or https://).")
    if len(url) > MAX_URL:
        raise ValidationError(f"A URL has at most {MAX_URL} characters.")
    if not url.isprintable() or " " in url:
        raise ValidationError("A URL holds no spaces or control characters.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError("Only http:// and https:// URLs can be notified.")
    if not parts.hostname:
        raise ValidationError(f"{masked_url(url)} names no host.")
    if "@" in parts.netloc:
        raise ValidationError("Put no user name or password in the URL; a webhook is signed with its secret.")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port when asked for it
    except ValueError:
        raise ValidationError(f"{masked_url(url)} has a port that is not a number from 0 to 65535.") from None
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        literal = None
    if literal is not None:  # a host name is checked at each send, where it resolves
        why = outbound_http.refusal(literal, workspace.allow_private_http_checks)
        if why:
            raise ValidationError(f"Notifications cannot go to {why}.")
    return url
