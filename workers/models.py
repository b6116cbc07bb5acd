"""Apply runs and their actions: the rows a worker claims, written before anything is
enqueued, so the page shows the whole plan at once and a killed worker leaves a trail."""

from django.conf import settings
from django.db import models

from portal.models import ChangeSet, Workspace


class RunStatus(models.TextChoices):
    """The statuses of every background run, apply or deployment (see workers/jobs.py)."""

    QUEUED = "queued"  # waiting for its turn: the workspace's apply lock, the pipeline's last run
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}


class ApplyRun(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="apply_runs")
    change_set = models.ForeignKey(
        ChangeSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="apply_runs"
    )
    kind = models.CharField(max_length=16, default="apply", help_text="apply or refresh")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    plan_checksum = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Actions in flight at most (additive increase, multiplicative decrease on throttling).
    window = models.PositiveIntegerField(default=0)
    # The ceiling of the window, the workspace's as the run started (0: the portal's default).
    concurrency = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "status", "created_at"]),
            # the reaper's look for applies that ended without their build log
            models.Index(fields=["finished_at"], name="workers_applyrun_finished_at"),
        ]

    def __str__(self):
        return f"apply #{self.pk} ({self.status})"

    @property
    def is_finished(self):
        return self.status in FINISHED

    def runs_ahead(self):
        """How many runs of the workspace go before this queued one; None when not queued."""
        if self.status != RunStatus.QUEUED:
            return None
        return ApplyRun.objects.filter(
            models.Q(status=RunStatus.QUEUED, id__lt=self.id) | models.Q(status=RunStatus.RUNNING),
            workspace_id=self.workspace_id,
        ).count()


class ActionStatus(models.TextChoices):
    WAITING = "waiting"  # for the actions it depends on
    QUEUED = "queued"  # handed to Celery
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    BLOCKED = "blocked"  # something it waits for failed
    CANCELLED = "cancelled"


DONE = {ActionStatus.SUCCEEDED, ActionStatus.FAILED, ActionStatus.BLOCKED, ActionStatus.CANCELLED}


class Action(models.Model):
    run = models.ForeignKey(ApplyRun, on_delete=models.CASCADE, related_name="actions")
    key = models.CharField(max_length=300)
    kind = models.CharField(
        max_length=16, help_text="create, update, replace, revision, delete, cleanup, import, refresh"
    )
    replacement = models.CharField(
        max_length=16, blank=True, help_text="A replace: create-first or delete-first"
    )
    held = models.JSONField(
        default=dict, blank=True, help_text="Pointers the apply leaves at their applied value, and why"
    )
    component_name = models.CharField(max_length=255)
    component_id = models.UUIDField()
    schema = models.CharField(max_length=255)
    reason = models.TextField(blank=True)
    waits_for = models.JSONField(default=list, blank=True)
    follow_up = models.BooleanField(default=False)
    local = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=ActionStatus.choices, default=ActionStatus.WAITING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Snapshot of the resource taken when the run starts (HEAD may drop the component).
    physical_id = models.CharField(max_length=1024, blank=True)
    old_properties = models.JSONField(null=True, blank=True)
    request = models.JSONField(null=True, blank=True, help_text="What was sent to AWS (masked)")
    result = models.JSONField(
        null=True, blank=True, help_text="Progress and outcome, e.g. both halves of a replace"
    )
    error = models.TextField(blank=True)
    immutable_property = models.CharField(max_length=255, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A long AWS wait is checked from a fresh message every few seconds, not in one task:
    # what the action waits for, and when the portal gives up on it.
    waiting_for = models.CharField(max_length=300, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="unique_action_key")]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["component_id"])]

    def __str__(self):
        return f"{self.kind} {self.component_name} ({self.status})"

    @property
    def duration_s(self):
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class WorkerHeartbeat(models.Model):
    """Each worker process writes its heartbeat; the portal reads it, the reaper trusts it."""

    name = models.CharField(max_length=255, unique=True, help_text="hostname:pid:boot nonce")
    last_seen = models.DateTimeField()
    started_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.name} @ {self.last_seen:%H:%M:%S}"
