"""Where a workspace's notifications go (targets) and each attempt to send one there
(deliveries, the job rows of workers.jobs: written before their message is sent)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.db import models

from portal.models import AuditEvent, Workspace
from portal.secrets import MASK, mask_found_secrets
from workers.models import FINISHED, RunStatus

from .events import EVENTS


class TargetKind(models.TextChoices):
    EMAIL = "email"
    WEBHOOK = "webhook"  # JSON, signed with the target's secret
    SLACK = "slack"  # a Slack-compatible incoming webhook: {"text": ...}


class Target(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="notification_targets")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=TargetKind.choices)
    # A webhook's or Slack's URL (Slack's holds its token: shown masked), or an email address.
    url = models.CharField(max_length=2000, blank=True)
    address = models.EmailField(max_length=254, blank=True)
    secret = models.CharField(
        max_length=128, blank=True, help_text="HMAC-SHA256 key of a webhook's signature"
    )
    events = models.JSONField(
        default=list, help_text="the notification events it wants (notifications.events)"
    )
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="unique_target_name")]

    def __str__(self):
        return f"{self.name} ({self.kind})"

    @property
    def event_labels(self):
        return [EVENTS.get(e, e) for e in self.events]

    @property
    def shown_destination(self):
        return self.address if self.kind == TargetKind.EMAIL else masked_url(self.url)

    def secret_values(self):
        """The raw values that must never reach a page or a log: the secret, the URL."""
        parts = urlsplit(self.url)
        return [v for v in (self.url, self.secret, parts.path, parts.query) if v and len(v) >= 4]


def masked_url(url):
    """scheme://host[:port]/first-segment/•••••• : enough to recognise, nothing to reuse
    (a Slack incoming webhook's path is its credential)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    if segments:
        shown += f"/{mask_found_secrets(segments[0])}" + (f"/{MASK}" if len(segments) > 1 else "")
    if parts.query:
        shown += f"?{MASK}"
    return shown


class Delivery(models.Model):
    """One notification to one target, with every attempt's outcome. Kept when its target
    is deleted (with the target's name), so the history stays readable."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="notification_deliveries")
    target = models.ForeignKey(
        Target, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    target_name = models.CharField(max_length=100)
    event = models.CharField(max_length=32)
    audit_event = models.ForeignKey(
        AuditEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField(help_text="what is sent: text, link and the event's (masked) data")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="when its message is due")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["workspace", "-created_at"]),
            models.Index(fields=["status", "queued_at"]),
        ]

    def __str__(self):
        return f"{self.event} to {self.target_name} ({self.status})"

    @property
    def is_finished(self):
        return self.status in FINISHED

    @property
    def event_label(self):
        return EVENTS.get(self.event, "Test")
