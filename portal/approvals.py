"""The approval workflow: request, approve, reject, and what an apply still needs.

A decision records what its approver was shown: the checksum `CONTENT.PLAN` of the change
set's entries and of its resolved plan, and the change set's revision. An approval counts
while all of these hold:
- it is its approver's latest decision (a later reject supersedes it);
- the content and the plan still have that checksum, and the revision has not moved (an
  edit voids it even if a later edit restores the same content);
- its approver still holds the approver role in the workspace;
- its approver never authored or edited the change set.
"""

import hashlib
import json
import re

from django.db import transaction

from . import lifecycle
from .errors import ConflictError, PermissionDenied, ValidationError
from .models import Approval, ChangeSet, Decision, Membership, Role
from .plan import plan_actions

CHECKSUM_PART = 20
CHECKSUM_RE = re.compile(rf"[0-9a-f]{{{CHECKSUM_PART}}}\.[0-9a-f]{{{CHECKSUM_PART}}}")


def content_checksum(change_set):
    entries = [
        [e.name, e.op, e.schema, e.properties, e.replace, e.adopt_id]
        for e in sorted(change_set.entries.all(), key=lambda e: e.name)
    ]
    body = json.dumps(entries, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:CHECKSUM_PART]


def checksum(change_set, plan=None):
    """What an approver is shown and posts back: `CONTENT.PLAN`."""
    plan = plan or plan_actions(change_set)
    return f"{content_checksum(change_set)}.{plan.checksum[:CHECKSUM_PART]}"


def what_changed(change_set, seen, current):
    """In words, how the checksum `seen` differs from `current` ('' when it does not)."""
    seen_content, _, seen_plan = seen.partition(".")
    content, _, plan = current.partition(".")
    changes = []
    if seen_content != content:
        changes.append(f"its components were edited (now revision {change_set.revision})")
    if seen_plan != plan:
        changes.append(
            f"its plan changed (HEAD is now version {change_set.workspace.head_version}; "
            "the values it will send moved)"
        )
    return " and ".join(changes)


def _approver_ids(change_set):
    members = Membership.objects.filter(workspace_id=change_set.workspace_id)
    return {m.user_id for m in members if m.has_role(Role.APPROVER)}


def _editor_ids(change_set):
    return {change_set.author_id, *change_set.editors.values_list("pk", flat=True)}


def is_editor(change_set, user):
    """Did `user` author or edit the change set (and so may not approve it)?"""
    return user.pk in _editor_ids(change_set)


def approvals_state(change_set, plan=None):
    """Every decision, newest first, with whether it still counts and why not."""
    current = checksum(change_set, plan)
    approvers, editors = _approver_ids(change_set), _editor_ids(change_set)
    seen_users, rows = set(), []
    for a in change_set.approvals.select_related("user"):
        if a.user_id in seen_users:
            why = "superseded by a later decision"
        elif a.checksum != current or a.revision != change_set.revision:
            why = "stale: the change set or its plan changed since"
        elif a.user_id not in approvers:
            why = "its approver no longer holds the approver role here"
        elif a.user_id in editors:
            why = "its approver edited the change set"
        else:
            why = ""
        seen_users.add(a.user_id)
        rows.append(
            {
                "approval": a,
                "user": a.user.username,
                "decision": a.decision,
                "comment": a.comment,
                "created_at": a.created_at,
                "stale": bool(why),
                "why_not": why,
            }
        )
    return rows


def valid_approvers(change_set, plan=None):
    return {
        row["approval"].user_id
        for row in approvals_state(change_set, plan)
        if row["decision"] == Decision.APPROVE and not row["stale"]
    }


def approval_blockers(change_set, plan=None):
    required = change_set.workspace.approvals_required
    if change_set.status == lifecycle.S.REJECTED:
        return ["it was rejected; revise it, then request approval again"]
    if not required:
        return []
    state = approvals_state(change_set, plan)
    have = sum(1 for s in state if s["decision"] == Decision.APPROVE and not s["stale"])
    if have < required:
        stale = any(s["stale"] and s["decision"] == Decision.APPROVE for s in state)
        note = " (earlier approvals are stale or no longer count: see each one for why)" if stale else ""
        return [f"it needs {required - have} more approval(s) of {required}{note}"]
    return []


def _lock(change_set):
    return ChangeSet.objects.select_for_update().select_related("workspace", "author").get(pk=change_set.pk)


def request_approval(change_set, user):
    with transaction.atomic():
        cs = _lock(change_set)
        lifecycle.check(cs, "request_approval", user)
        if not cs.entries.exists():
            raise ValidationError(f"Change set #{cs.pk} changes nothing yet.")
        lifecycle.move(cs, "request_approval", user)
    return cs


def approve(change_set, user, comment="", checksum=None):
    return _decide(change_set, user, Decision.APPROVE, comment, checksum)


def reject(change_set, user, comment, checksum=None):
    if not (comment or "").strip():
        raise ValidationError("Say why when you reject a change set: the author needs to know what to fix.")
    return _decide(change_set, user, Decision.REJECT, comment, checksum)


def _decide(change_set, user, decision, comment, seen):
    if seen is not None and not CHECKSUM_RE.fullmatch(str(seen)):
        raise ValidationError(
            "That is not a change-set checksum: copy it from `changeset show` or reload the page."
        )
    with transaction.atomic():
        cs = _lock(change_set)
        name = "approve" if decision == Decision.APPROVE else "reject"
        lifecycle.check(cs, name, user)
        if user.pk == cs.author_id:
            raise PermissionDenied("You cannot approve or reject your own change set; ask another approver.")
        if is_editor(cs, user):
            raise PermissionDenied(
                "You edited this change set, so it is partly your work: another approver decides."
            )
        plan = plan_actions(cs)
        current = checksum(cs, plan)
        if decision == Decision.APPROVE and seen is not None and seen != current:
            raise ConflictError(
                f"Change set #{cs.pk} changed since you reviewed it: {what_changed(cs, seen, current)}. "
                "Review it again, then approve."
            )
        Approval.objects.create(
            change_set=cs,
            user=user,
            decision=decision,
            comment=comment,
            checksum=seen or current,
            revision=cs.revision,
        )
        if decision == Decision.REJECT:
            target = lifecycle.S.REJECTED
        elif len(valid_approvers(cs, plan)) >= cs.workspace.approvals_required:
            target = lifecycle.S.APPROVED
        else:
            target = lifecycle.S.NEEDS_APPROVAL
        lifecycle.move(cs, name, user, to=target, data={"comment": comment, "checksum": current})
    return cs
