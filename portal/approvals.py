"""The approval workflow: request, approve, reject, and what an apply still needs.

An approval covers a checksum of the change set's content and plan; any edit, or a
move of HEAD that changes the plan, makes it stale. Transitions are conditional
updates under the change set's row lock.
"""

import hashlib
import json

from django.db import transaction

from . import audit
from .access import require_role
from .errors import ConflictError, PermissionDenied, ValidationError
from .models import Approval, ChangeSet, ChangeSetStatus, Decision, Role


def content_checksum(change_set, plan=None):
    from .plan import plan_actions

    plan = plan or plan_actions(change_set)
    entries = [
        [e.name, e.op, e.schema, e.properties, e.replace, e.adopt_id]
        for e in sorted(change_set.entries.all(), key=lambda e: e.name)
    ]
    body = json.dumps({"entries": entries, "plan": plan.checksum}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def approvals_state(change_set, plan=None):
    """Each decision with a `stale` flag, newest first."""
    current = content_checksum(change_set, plan)
    return [
        {
            "approval": a,
            "user": a.user.username,
            "decision": a.decision,
            "comment": a.comment,
            "created_at": a.created_at,
            "stale": a.checksum != current,
        }
        for a in change_set.approvals.select_related("user")
    ]


def valid_approvers(change_set, plan=None):
    current = content_checksum(change_set, plan)
    return {
        a.user_id
        for a in change_set.approvals.all()
        if a.decision == Decision.APPROVE and a.checksum == current and a.user_id != change_set.author_id
    }


def approval_blockers(change_set, plan=None):
    required = change_set.workspace.approvals_required
    if change_set.status == ChangeSetStatus.REJECTED:
        return ["it was rejected; revise it to reopen it"]
    have = len(valid_approvers(change_set, plan)) if required else 0
    if have < required:
        stale = any(
            s["stale"] and s["decision"] == Decision.APPROVE for s in approvals_state(change_set, plan)
        )
        note = " (earlier approvals are stale: the change set or its plan changed since)" if stale else ""
        return [f"it needs {required - have} more approval(s) of {required}{note}"]
    return []


def _lock(change_set):
    return ChangeSet.objects.select_for_update().select_related("workspace", "author").get(pk=change_set.pk)


def request_approval(change_set, user):
    with transaction.atomic():
        cs = _lock(change_set)
        require_role(user, cs.workspace, Role.EDITOR)
        if cs.status not in (ChangeSetStatus.OPEN, ChangeSetStatus.REJECTED):
            raise ConflictError(
                f"Change set #{cs.pk} is {cs.status}; approval can be requested for an open change set."
            )
        if not cs.entries.exists():
            raise ValidationError(f"Change set #{cs.pk} changes nothing yet.")
        before = cs.status
        cs.status = ChangeSetStatus.NEEDS_APPROVAL
        cs.save(update_fields=["status", "updated_at"])
        audit.record(
            "changeset.approval_requested",
            actor=user,
            change_set=cs,
            target=f"change set #{cs.pk}",
            before={"status": before},
            after={"status": cs.status},
        )
    return cs


def approve(change_set, user, comment=""):
    return _decide(change_set, user, Decision.APPROVE, comment)


def reject(change_set, user, comment):
    if not (comment or "").strip():
        raise ValidationError("Say why when you reject a change set: the author needs to know what to fix.")
    return _decide(change_set, user, Decision.REJECT, comment)


def _decide(change_set, user, decision, comment):
    with transaction.atomic():
        cs = _lock(change_set)
        require_role(user, cs.workspace, Role.APPROVER)
        if user.pk == cs.author_id:
            raise PermissionDenied("You cannot approve or reject your own change set; ask another approver.")
        if cs.status not in (ChangeSetStatus.NEEDS_APPROVAL, ChangeSetStatus.APPROVED):
            raise ConflictError(
                f"Change set #{cs.pk} is {cs.status}; only a change set awaiting approval can be decided."
            )
        from .plan import plan_actions

        plan = plan_actions(cs)
        Approval.objects.create(
            change_set=cs, user=user, decision=decision, comment=comment, checksum=content_checksum(cs, plan)
        )
        before = cs.status
        if decision == Decision.REJECT:
            cs.status = ChangeSetStatus.REJECTED
        elif len(valid_approvers(cs, plan)) >= cs.workspace.approvals_required:
            cs.status = ChangeSetStatus.APPROVED
        cs.save(update_fields=["status", "updated_at"])
        audit.record(
            f"changeset.{'approved' if decision == Decision.APPROVE else 'rejected'}",
            actor=user,
            change_set=cs,
            target=f"change set #{cs.pk}",
            before={"status": before},
            after={"status": cs.status, "comment": comment},
        )
    return cs
