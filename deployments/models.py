"""Deployment runs, their stages and log lines, and build logs.

A pipeline itself is not a model: it is a HEAD component of type `Portal::Pipeline`
(see deployments/pipelines.py). A run freezes the pipeline as it resolved when the run
was asked for, so what ran stays readable after the pipeline changes.

Rows are written before anything is enqueued; workers claim them with conditional
updates (see deployments/runs.py).
"""

from django.conf import settings
from django.db import models

from portal.models import ChangeSet, Workspace
from workers.models import FINISHED, RunStatus


class StageStatus(models.TextChoices):
    PENDING = "pending"  # an earlier stage has not finished
    QUEUED = "queued"  # handed to Celery
    RUNNING = "running"
    WAITING = "waiting"  # an approval gate waiting for an approver
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # not run: an earlier stage failed
    CANCELLED = "cancelled"


IN_FLIGHT = {StageStatus.QUEUED, StageStatus.RUNNING, StageStatus.WAITING}


class RollbackStatus(models.TextChoices):
    NONE = ""
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class PipelineRun(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="pipeline_runs")
    pipeline = models.CharField(
        max_length=255, help_text="The pipeline component's name when the run was asked for"
    )
    pipeline_id = models.UUIDField(
        null=True, blank=True, help_text="The pipeline component (follows renames)"
    )
    description = models.TextField(blank=True)
    definition = models.JSONField(
        default=dict, help_text="The pipeline's properties, resolved, frozen at request"
    )
    source = models.JSONField(default=dict, help_text="The pipeline's properties as written ($source kept)")
    head_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The workspace's HEAD version the run resolved its pipeline at"
    )
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger = models.CharField(max_length=16, default="manual", help_text="manual or apply")
    apply_run = models.ForeignKey(
        "workers.ApplyRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="pipeline_runs"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    rollback_status = models.CharField(max_length=16, choices=RollbackStatus.choices, blank=True, default="")
    rollback = models.JSONField(null=True, blank=True, help_text="What the rollback restored, per service")
    # Who is rolling back, for the reaper (stages carry their own).
    worker = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "pipeline_id", "status"]),
            models.Index(fields=["status"]),
        ]

    def __str__(self):
        return f"deployment #{self.pk} {self.pipeline} ({self.status})"

    @property
    def is_finished(self):
        return self.status in FINISHED

    @property
    def duration_s(self):
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class StageRun(models.Model):
    run = models.ForeignKey(PipelineRun, on_delete=models.CASCADE, related_name="stages")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=32)
    parameters = models.JSONField(default=dict, help_text="Resolved parameters (physical ids)")
    timeout_s = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=StageStatus.choices, default=StageStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="Progress and outcome (resumable)")
    error = models.TextField(blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True, help_text="Set at the first start; kept on resume")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="unique_stage_position")]
        indexes = [models.Index(fields=["status"])]

    def __str__(self):
        return f"{self.name} ({self.kind}, {self.status})"

    @property
    def duration_s(self):
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class LogLine(models.Model):
    """One line of a run's log, written in its own short transaction as it happens."""

    run = models.ForeignKey(PipelineRun, on_delete=models.CASCADE, related_name="log_lines")
    stage = models.ForeignKey(
        StageRun, null=True, blank=True, on_delete=models.CASCADE, related_name="log_lines"
    )
    at = models.DateTimeField()
    level = models.CharField(max_length=8, default="info")
    message = models.TextField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "id"])]

    def __str__(self):
        return f"{self.at:%H:%M:%S} {self.level} {self.message[:60]}"


class BuildLogKind(models.TextChoices):
    APPLY = "apply"
    DEPLOYMENT = "deployment"
    GROUP = "group"


class BuildLogStatus(models.TextChoices):
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"  # some change sets of the group are not applied


class BuildLog(models.Model):
    """What happened, in words and data: a frozen snapshot (`data`) of the change sets,
    their applies and the deployments, plus the text the team adds (lessons, next steps)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="build_logs")
    key = models.CharField(
        max_length=64, unique=True, help_text="apply:<id>, deployment:<id> or group:<uuid>"
    )
    kind = models.CharField(max_length=16, choices=BuildLogKind.choices)
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=BuildLogStatus.choices)
    date = models.DateTimeField(help_text="When what it tells happened (the last run's end)")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    change_sets = models.ManyToManyField(ChangeSet, blank=True, related_name="build_logs")
    apply_runs = models.ManyToManyField("workers.ApplyRun", blank=True, related_name="build_logs")
    pipeline_runs = models.ManyToManyField(PipelineRun, blank=True, related_name="build_logs")
    overview = models.TextField(blank=True)
    lessons = models.TextField(blank=True)
    next_steps = models.TextField(blank=True)
    data = models.JSONField(default=dict)
    # Everything a search should find, lower-cased: icontains works on SQLite and Postgres.
    search_text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "-id"]
        indexes = [
            models.Index(fields=["workspace", "-date"]),
            models.Index(fields=["workspace", "status"]),
            models.Index(fields=["kind"]),
        ]

    def __str__(self):
        return f"build log #{self.pk} {self.title}"


class BuildLogComponent(models.Model):
    """Index of the components a build log tells about (for the component filter and links)."""

    build_log = models.ForeignKey(BuildLog, on_delete=models.CASCADE, related_name="component_rows")
    name = models.CharField(max_length=255)
    op = models.CharField(max_length=16, help_text="created, updated, replaced or deleted")

    class Meta:
        indexes = [models.Index(fields=["name"])]
        constraints = [
            models.UniqueConstraint(fields=["build_log", "name", "op"], name="unique_buildlog_component")
        ]

    def __str__(self):
        return f"{self.op} {self.name}"
