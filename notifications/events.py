"""Which audit events are notified, and what the notification says.

The portal writes an audit event for every state change (portal.audit); after each
commit it hands the saved events to notifications.delivery.on_audit_events, which asks
`notification_for` which notification each event makes and queues a delivery for each
enabled target that wants it.
"""

import re

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from portal.models import AuditEvent
from portal.secrets import mask_text

# The events a target can ask for, in the order the settings page offers them.
EVENTS = {
    "approval_requested": "Approval requested",
    "approved": "Approved",
    "rejected": "Rejected",
    "applied": "Applied",
    "apply_failed": "Apply failed",
    "deployment_started": "Deployment started",
    "deployment_succeeded": "Deployment succeeded",
    "deployment_failed": "Deployment failed",
    "drift_found": "Drift found",
}
TEST = "test"  # a test send from the settings page; no target subscribes to it

VERBS = {
    "changeset.approval_requested": "approval_requested",
    "changeset.approved": "approved",
    "changeset.rejected": "rejected",
    "apply.succeeded": "applied",
    "apply.failed": "apply_failed",
    "deployment.started": "deployment_started",
    "deployment.succeeded": "deployment_succeeded",
    "deployment.failed": "deployment_failed",
    "workspace.refreshed": "drift_found",  # when it found drift the refresh before had not
}
MAX_TEXT = 1000
DEPLOYMENT_RUN = re.compile(r"deployment #(\d+)")


def notification_for(event):
    """The notification event an audit event makes, or None."""
    key = VERBS.get(event.verb)
    if key is None or event.workspace_id is None:
        return None
    if key == "drift_found" and not new_drift(event):
        return None
    return key


def new_drift(event):
    """The components a refresh found drifted that the refresh before it had not (the
    beat refreshes every workspace every 15 minutes: drift is told once, not each time)."""
    drifted = (event.after or {}).get("drifted") or []
    if not drifted:
        return []
    previous = (
        AuditEvent.objects.filter(workspace_id=event.workspace_id, verb=event.verb, pk__lt=event.pk)
        .order_by("-pk")
        .values_list("after", flat=True)
        .first()
    )
    known = set((previous or {}).get("drifted") or [])
    return [name for name in drifted if name not in known]


def payload(event, key):
    """What every kind of target is sent, as JSON data; the text says it in one line."""
    workspace = event.workspace
    cs = event.change_set
    data = event.after or {}
    return {
        "event": key,
        "title": EVENTS.get(key, "Test"),
        "text": mask_text(f"[{workspace.slug}] {_sentence(event, key, data)}")[:MAX_TEXT],
        "url": _link(event, key),
        "workspace": workspace.slug,
        "actor": event.actor.username if event.actor_id else None,
        "change_set": {"id": cs.pk, "name": cs.name} if cs is not None else None,
        "subject": event.target,
        "data": data,
        "occurred_at": event.created_at.isoformat(),
    }


def test_payload(target, user):
    return {
        "event": TEST,
        "title": "Test",
        "text": f"[{target.workspace.slug}] A test notification from {user.username} to {target.name}.",
        "url": absolute(reverse("workspace-settings", args=[target.workspace.slug])),
        "workspace": target.workspace.slug,
        "actor": user.username,
        "change_set": None,
        "subject": target.name,
        "data": {},
        "occurred_at": timezone.now().isoformat(),
    }


def _sentence(event, key, data):
    who = event.actor.username if event.actor_id else "The portal"
    cs = f"change set #{event.change_set.pk} {event.change_set.name}" if event.change_set else event.target
    error = _short(data.get("error"))
    if key == "approval_requested":
        return f"{who} asks for approval of {cs}."
    if key == "approved":
        still = "" if data.get("status") == "approved" else " (it needs more approvals)"
        return f"{who} approved {cs}{still}."
    if key == "rejected":
        return f"{who} rejected {cs}: {_short(data.get('comment'))}"
    if key == "applied":
        return f"{event.target.capitalize()} of {cs} succeeded ({data.get('succeeded', 0)} actions)."
    if key == "apply_failed":
        return f"{event.target.capitalize()} of {cs} failed: {error}"
    if key == "deployment_started":
        return f"{event.target.capitalize()} started ({who})."
    if key == "deployment_succeeded":
        return f"{event.target.capitalize()} succeeded."
    if key == "deployment_failed":
        return f"{event.target.capitalize()} failed: {error}"
    if key == "drift_found":
        drifted = data.get("drifted") or []
        return f"A refresh found drift in {len(drifted)} component(s): {', '.join(drifted)[:600]}."
    return f"{event.verb} {event.target}"


def _short(text, limit=300):
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _link(event, key):
    slug = event.workspace.slug
    try:
        if event.change_set_id:
            return absolute(reverse("changeset", args=[slug, event.change_set_id]))
        run = DEPLOYMENT_RUN.match(event.target)
        if key.startswith("deployment_") and run:
            return absolute(reverse("deployments:run", args=[slug, int(run[1])]))
        if key == "drift_found":
            return absolute(reverse("components", args=[slug]) + "?status=drifted")
    except NoReverseMatch:  # an app that serves the page is not installed
        pass
    return absolute(reverse("workspace", args=[slug]))


def absolute(path):
    return settings.PORTAL_BASE_URL.rstrip("/") + path
