"""The change set's lifecycle: which status may follow which, who may make each move, and
the audit event each move writes.

Every status write of a change set goes through `move` (the caller holds the row lock)
or `move_where` (a conditional update, for workers that race each other), so the rules
live here once; the pages ask `allowed` which buttons to show.

    open ──request_approval──▶ needs_approval ──approve──▶ approved ──start_apply──▶ applying
      ▲                          │        ▲                  │                      │   │
      └──────────revise──────────┴─reject─┼──────────────────┘               finish─┘   └─finish
    rejected ◀───────────────────reject───┘                                  applied     failed
    (revise reopens it)                                                                   │
    any editable status ──abandon──▶ abandoned;  ──merge──▶ merged (HEAD without apply)   retry
"""

from dataclasses import dataclass

from django.utils import timezone

from . import audit
from .access import membership
from .errors import ConflictError, PermissionDenied
from .models import EDITABLE_STATUSES, ChangeSet, ChangeSetStatus, Role

S = ChangeSetStatus
EDITABLE = frozenset(EDITABLE_STATUSES)


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset
    targets: frozenset
    role: str | None  # the least role that may make it; None: only the workers do
    verb: str
    refusal: str  # why it cannot happen from another status, completed with the status

    def default_target(self, status):
        if len(self.targets) == 1:
            return next(iter(self.targets))
        return REVISE_TARGETS.get(status, status)


def _t(name, sources, targets, role, verb, refusal):
    return Transition(name, frozenset(sources), frozenset(targets), role, verb, refusal)


# An edit withdraws a pending decision: approved content changed needs approving again,
# and a rejected change set is open again once it has been revised.
REVISE_TARGETS = {S.APPROVED: S.NEEDS_APPROVAL, S.REJECTED: S.OPEN}

TRANSITIONS = {
    t.name: t
    for t in (
        _t(
            "revise",
            EDITABLE,
            {S.OPEN, S.NEEDS_APPROVAL},
            Role.EDITOR,
            "changeset.revised",
            "it can no longer be edited",
        ),
        _t(
            "request_approval",
            {S.OPEN},
            {S.NEEDS_APPROVAL},
            Role.EDITOR,
            "changeset.approval_requested",
            "approval can be requested for an open change set (a rejected one needs a revision first)",
        ),
        _t(
            "approve",
            {S.NEEDS_APPROVAL, S.APPROVED},
            {S.NEEDS_APPROVAL, S.APPROVED},
            Role.APPROVER,
            "changeset.approved",
            "only a change set awaiting approval can be decided",
        ),
        _t(
            "reject",
            {S.NEEDS_APPROVAL, S.APPROVED},
            {S.REJECTED},
            Role.APPROVER,
            "changeset.rejected",
            "only a change set awaiting approval can be decided",
        ),
        _t(
            "abandon",
            EDITABLE,
            {S.ABANDONED},
            Role.EDITOR,
            "changeset.abandoned",
            "it can no longer be abandoned",
        ),
        _t(
            "start_apply",
            # FAILED: an apply that failed before it merged (HEAD moved under it) may start again.
            {S.OPEN, S.NEEDS_APPROVAL, S.APPROVED, S.FAILED},
            {S.APPLYING},
            Role.EDITOR,
            "changeset.apply_requested",
            "it cannot be applied",
        ),
        _t(
            "cancel_apply",
            {S.APPLYING},
            {S.OPEN, S.NEEDS_APPROVAL, S.APPROVED},
            Role.EDITOR,
            "changeset.apply_cancelled",
            "only a change set waiting for its apply can be cancelled",
        ),
        _t(
            "finish_apply",
            {S.APPLYING},
            {S.APPLIED, S.FAILED},
            None,
            "changeset.apply_finished",
            "it is not being applied",
        ),
        _t(
            "retry_apply",
            {S.FAILED},
            {S.APPLYING},
            Role.APPROVER,
            "changeset.apply_retried",
            "only a failed apply can be retried",
        ),
        _t(
            "merge",
            EDITABLE - {S.REJECTED},
            {S.MERGED},
            Role.EDITOR,
            "changeset.merged",
            "it cannot be merged",
        ),
    )
}


def check(change_set, name, actor):
    """Raise unless `actor` (None: the workers) may make move `name` from the current status."""
    t = TRANSITIONS[name]
    if change_set.status not in t.sources:
        raise ConflictError(f"Change set #{change_set.pk} is {change_set.status}; {t.refusal}.")
    if actor is not None and t.role is not None:
        member = membership(actor, change_set.workspace)
        if member is None or not member.has_role(t.role):
            raise PermissionDenied(f"{actor} may not {name.replace('_', ' ')} here; this needs {t.role}.")
    return t


def move(change_set, name, actor=None, *, to=None, data=None, record=True):
    """Make move `name` on a change set the caller holds locked, save it, and audit it.

    `record=False` when the caller writes a richer event of its own for the same move."""
    t = check(change_set, name, actor)
    target = to or t.default_target(change_set.status)
    if target not in t.targets:
        raise ValueError(f"{name} cannot lead to {target}")
    before = change_set.status
    change_set.status = target
    change_set.save(update_fields=["status", "updated_at"])
    if record and (before != target or name != "revise"):
        _audit(t, change_set, actor, before, target, data)
    return change_set


def move_where(change_set_id, name, to, *, actor=None, data=None):
    """The same move as a conditional update: it happens only if the change set is still in
    one of the move's source statuses. Returns True when this call made it."""
    t = TRANSITIONS[name]
    if to not in t.targets:
        raise ValueError(f"{name} cannot lead to {to}")
    cs = ChangeSet.objects.select_related("workspace").filter(pk=change_set_id).first()
    if cs is None:
        return False
    changed = ChangeSet.objects.filter(pk=change_set_id, status__in=t.sources).update(
        status=to, updated_at=timezone.now()
    )
    if changed:
        _audit(t, cs, actor, cs.status, to, data)
    return bool(changed)


def _audit(t, change_set, actor, before, after, data):
    audit.record(
        t.verb,
        actor=actor,
        change_set=change_set,
        target=f"change set #{change_set.pk} {change_set.name}",
        before={"status": before},
        after={"status": after, **(data or {})},
    )


def revise(change_set, user):
    """An edit of a locked change set: bump the revision, withdraw pending decisions, and
    remember the editor (who may then not approve it)."""
    t = check(change_set, "revise", user)
    change_set.revision += 1
    before = change_set.status
    change_set.status = t.default_target(before)
    change_set.save(update_fields=["revision", "status", "updated_at"])
    change_set.editors.add(user)
    if before != change_set.status:
        _audit(t, change_set, user, before, change_set.status, {"revision": change_set.revision})
    return change_set


def allowed(change_set, user):
    """The moves `user` may make on the change set now (for the page's buttons)."""
    member = membership(user, change_set.workspace)
    return {
        name
        for name, t in TRANSITIONS.items()
        if t.role is not None
        and change_set.status in t.sources
        and member is not None
        and member.has_role(t.role)
    }
