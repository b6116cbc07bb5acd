"""What the apply panels show: the queries behind the change-set page's apply card, the
workspace's action queue, a component's actions, the no-worker banner and the home page's
failed applies."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from portal.access import role_of, workspaces_for
from portal.plan import plan_actions

from .apply import apply_blockers
from .jobs import last_heartbeat
from .models import Action, ApplyRun, RunStatus

QUEUE_STATUSES = ["queued", "running", "failed"]
HISTORY_LIMIT = 50


def heartbeat_state():
    stale_after = settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS
    last = last_heartbeat()
    stale = last is None or last < timezone.now() - timedelta(seconds=stale_after)
    return {"last": last, "stale": stale, "stale_seconds": stale_after}


def action_queue(workspace):
    """Queued, running and failed actions of the workspace, and runs waiting for the lock."""
    actions = list(
        Action.objects.filter(run__workspace=workspace, status__in=QUEUE_STATUSES)
        .select_related("run__change_set")
        .order_by("-id")[:HISTORY_LIMIT]
    )
    runs = list(
        ApplyRun.objects.filter(workspace=workspace, status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        .select_related("change_set", "requested_by")
        .order_by("id")
    )
    running = sum(r.status == RunStatus.RUNNING for r in runs)
    waiting = [r for r in runs if r.status == RunStatus.QUEUED]
    for position, run in enumerate(waiting):
        run.ahead = running + position  # what ApplyRun.runs_ahead() counts, without a query per run
    return {
        "actions": actions,
        "runs": runs,
        "busy": bool(runs) or any(a.status != "failed" for a in actions),
    }


def run_progress(run):
    """An apply run as its progress partial shows it."""
    actions = list(run.actions.all())
    done = sum(a.status in ("succeeded", "failed", "blocked", "cancelled") for a in actions)
    return {
        "run": run,
        "actions": actions,
        "ahead": run.runs_ahead(),
        "done": done,
        "total": len(actions),
        "percent": int(100 * done / len(actions)) if actions else 100,
        "failed": [a for a in actions if a.status == "failed"],
    }


def destructive_actions(plan):
    """What an apply of `plan` deletes, replaces or interrupts, for its confirmation."""
    rows = []
    for a in plan.actions:
        if a.kind == "delete":
            rows.append({"kind": "delete", "component": a.component, "schema": a.schema, "why": a.reason})
        elif a.kind == "replace":
            why = a.reason or ", ".join(a.replace_paths)
            rows.append(
                {
                    "kind": "replace",
                    "component": a.component,
                    "schema": a.schema,
                    "why": why,
                    "downtime": a.downtime,
                }
            )
    return rows


def apply_confirmation(cs):
    """The confirmation an apply asks for: how many actions, which of them destroy, and
    what blocks it (then there is nothing to confirm)."""
    plan = plan_actions(cs)
    return {
        "cs": cs,
        "workspace": cs.workspace,
        "plan_size": len(plan.actions),
        "destructive": destructive_actions(plan),
        "apply_blockers": apply_blockers(cs, plan),
    }


def apply_panel(cs, user):
    """The change-set page's Apply card: the button, or why not, and the latest run's progress."""
    run = cs.apply_runs.select_related("requested_by").order_by("-id").first()
    merged = cs.merged_version is not None
    plan = None if merged else plan_actions(cs)
    role = role_of(user, cs.workspace)
    blockers = apply_blockers(cs, plan) if not merged else []
    return {
        "cs": cs,
        "workspace": cs.workspace,
        "role": role,
        "plan_size": len(plan.actions) if plan else 0,
        "destructive": destructive_actions(plan) if plan else [],
        "apply_blockers": blockers,
        "run": run,
        "progress": run_progress(run) if run else None,
        "can_apply": role.is_editor and not merged and not blockers and (run is None or run.is_finished),
        "heartbeat": heartbeat_state() if run and not run.is_finished else None,
    }


def component_actions(workspace, component_id):
    return list(
        Action.objects.filter(run__workspace=workspace, component_id=component_id)
        .select_related("run__change_set")
        .order_by("-id")[:HISTORY_LIMIT]
    )


def failed_applies(user, limit=HISTORY_LIMIT):
    """Applies in the user's workspaces that failed and were not run again since."""
    later = ApplyRun.objects.filter(change_set=OuterRef("change_set"), kind="apply", pk__gt=OuterRef("pk"))
    return list(
        ApplyRun.objects.filter(workspace__in=workspaces_for(user), kind="apply", status=RunStatus.FAILED)
        .exclude(Exists(later))
        .select_related("workspace", "change_set", "requested_by")
        .order_by("-id")[:limit]
    )
