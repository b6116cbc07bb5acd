"""The core data model: workspaces, HEAD components, change sets and their overlay rows,
the subscription index, and the append-only audit log.

Rules live in plain modules (portal/graph.py, portal/changesets.py, ...); the models
only hold data and the few invariants a database can enforce.
"""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer"
    EDITOR = "editor"
    APPROVER = "approver"
    ADMIN = "admin"


ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.APPROVER: 2, Role.ADMIN: 3}


MAX_APPLY_CONCURRENCY = 512


class Workspace(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    region = models.CharField(max_length=32, default="us-east-1")
    approvals_required = models.PositiveSmallIntegerField(default=1)
    role_arn = models.CharField(
        max_length=300, blank=True, help_text="IAM role the workers assume for this workspace."
    )
    allow_private_http_checks = models.BooleanField(
        default=False,
        help_text="Pipeline HTTP checks may GET loopback and private addresses (an internal load "
        "balancer's). Metadata and link-local addresses are refused all the same.",
    )
    apply_concurrency = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_APPLY_CONCURRENCY)],
        help_text="Most actions of an apply in flight at once against this workspace's account "
        "(fewer while AWS throttles). Empty: the portal's PORTAL_APPLY_CONCURRENCY.",
    )
    # Bumped by every merge into HEAD; a change set's base_version is the HEAD it forked from.
    head_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="unique_membership")]

    def __str__(self):
        return f"{self.user} @ {self.workspace} ({self.role})"

    def has_role(self, role):
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


class ResourceStatus(models.TextChoices):
    NONE = "none"
    OK = "ok"
    PENDING = "pending"
    FAILED = "failed"
    DRIFTED = "drifted"


class Component(models.Model):
    """A HEAD component: one AWS resource (or portal type) of a workspace.

    `properties` is the desired JSON as the user wrote it ($source subscriptions kept);
    `domain` is the same with every subscription resolved (cached, rebuilt by
    portal.graph); `pending` lists the JSON pointers whose source has no value yet.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="components")
    name = models.CharField(max_length=255)
    schema = models.CharField(max_length=255, help_text="CloudFormation type name or Portal::* type")
    properties = models.JSONField(default=dict, blank=True)
    domain = models.JSONField(default=dict, blank=True)
    pending = models.JSONField(default=list, blank=True)
    resource_id = models.CharField(max_length=1024, blank=True, help_text="Physical id in AWS")
    # The resolved properties last sent to AWS: the "old" side of the next update.
    applied = models.JSONField(null=True, blank=True)
    resource_value = models.JSONField(null=True, blank=True)
    resource_status = models.CharField(
        max_length=16, choices=ResourceStatus.choices, default=ResourceStatus.NONE
    )
    drift = models.JSONField(default=list, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    # HEAD version at which this component's desired properties last changed.
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="unique_component_name")]
        indexes = [models.Index(fields=["workspace", "schema"])]

    def __str__(self):
        return self.name


class Subscription(models.Model):
    """Index of $source edges found in component properties (rebuilt from the JSON).

    consumer_name/producer_name are names because $source refers to components by name;
    the index lets an edit find its dependents without loading the workspace.
    `change_set` is null for HEAD edges.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    change_set = models.ForeignKey(
        "ChangeSet", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    consumer_name = models.CharField(max_length=255)
    target_path = models.CharField(max_length=1024, help_text="Pointer inside the consumer's properties")
    producer_name = models.CharField(max_length=255)
    source_path = models.CharField(
        max_length=1024, help_text="Pointer rooted at /domain, /resource_value or /si"
    )

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "change_set", "producer_name"]),
            models.Index(fields=["workspace", "change_set", "consumer_name"]),
        ]

    def __str__(self):
        return f"{self.consumer_name}{self.target_path} <- {self.producer_name}{self.source_path}"


class ChangeSetStatus(models.TextChoices):
    OPEN = "open"
    NEEDS_APPROVAL = "needs_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPLYING = "applying"
    APPLIED = "applied"
    FAILED = "failed"
    ABANDONED = "abandoned"
    MERGED = "merged"  # merged into HEAD directly (an import), without an apply


EDITABLE_STATUSES = {
    ChangeSetStatus.OPEN,
    ChangeSetStatus.NEEDS_APPROVAL,
    ChangeSetStatus.APPROVED,
    ChangeSetStatus.REJECTED,
}


class ChangeSet(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="change_sets")
    name = models.CharField(max_length=200)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="change_sets")
    status = models.CharField(max_length=20, choices=ChangeSetStatus.choices, default=ChangeSetStatus.OPEN)
    base_version = models.PositiveIntegerField(help_text="HEAD version this change set is based on")
    # base_version moves with every rebase and merge; this is where the change set started.
    forked_from_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="HEAD version this change set was opened on"
    )
    problem = models.TextField(blank=True)
    solution = models.TextField(blank=True)
    # Bumped by every edit; approvals and plans carry the revision they saw.
    revision = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    merged_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="HEAD version its merge produced"
    )
    # Everyone who changed its content (the author included): none of them may approve it.
    editors = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "status"])]

    def __str__(self):
        return f"#{self.pk} {self.name}"

    @property
    def is_editable(self):
        """A merged change set is closed, whatever its status says (an import merges at once)."""
        return self.merged_version is None and self.status in EDITABLE_STATUSES


class EntryOp(models.TextChoices):
    ADD = "add"
    EDIT = "edit"
    DELETE = "delete"


class ChangeSetEntry(models.Model):
    """One component as a change set adds, edits or deletes it (the overlay on HEAD).

    `base_properties`/`base_name` snapshot HEAD when the entry was made (or last rebased):
    the common ancestor of the three-way merge. `conflicts` lists the paths changed on
    both sides since then, each {path, head, mine, base}, until the author resolves them.
    """

    change_set = models.ForeignKey(ChangeSet, on_delete=models.CASCADE, related_name="entries")
    component_id = models.UUIDField(default=uuid.uuid4)
    op = models.CharField(max_length=8, choices=EntryOp.choices)
    name = models.CharField(max_length=255)
    schema = models.CharField(max_length=255)
    properties = models.JSONField(default=dict, blank=True)
    replace = models.BooleanField(
        default=False, help_text="Delete and recreate the resource even if an in-place update would do"
    )
    base_name = models.CharField(max_length=255, blank=True)
    base_properties = models.JSONField(null=True, blank=True)
    base_version = models.PositiveIntegerField(default=0)
    conflicts = models.JSONField(default=list, blank=True)
    adopt_id = models.CharField(
        max_length=1024, blank=True, help_text="Physical id of an existing AWS resource to import"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "change set entries"
        constraints = [
            models.UniqueConstraint(fields=["change_set", "component_id"], name="unique_entry_component"),
            models.UniqueConstraint(fields=["change_set", "name"], name="unique_entry_name"),
        ]

    def __str__(self):
        return f"{self.op} {self.name}"


class AuditEvent(models.Model):
    """Append-only: who did what, when, to which object, with before/after data (masked)."""

    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    change_set = models.ForeignKey(
        ChangeSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verb = models.CharField(max_length=64, help_text="e.g. changeset.created, component.edited")
    target = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "-created_at"]),
            models.Index(fields=["change_set", "-created_at"]),
            models.Index(fields=["verb"]),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.verb} {self.target}"


class Decision(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"


class Approval(models.Model):
    """An approver's decision on exactly what they saw: `checksum` covers the change
    set's content and its plan; when either moves the approval is stale."""

    change_set = models.ForeignKey(ChangeSet, on_delete=models.CASCADE, related_name="approvals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    checksum = models.CharField(max_length=64, help_text="content.plan, as the approver was shown them")
    revision = models.PositiveIntegerField(default=0, help_text="the change set's revision it decided")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.user} {self.decision}d #{self.change_set_id}"
