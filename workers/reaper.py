"""Finding work that a dead worker left behind in applies (workers/jobs.py does the
finding; deployments/runs.py reaps deployment runs the same way).

An action is stuck when it is `running` but the worker that claimed it has not
written a heartbeat recently (it was killed, or its machine went away). The reaper puts
it back in the queue (the action's provider adopts whatever the dead worker created,
by token or tag) or fails it after too many attempts. It also nudges runs and queues
whose next step was lost with a message.
"""

import logging

from django.conf import settings
from django.utils import timezone

from . import jobs, scheduler
from .models import Action, ApplyRun, RunStatus

log = logging.getLogger(__name__)


def reap(now=None):
    """Requeue or fail actions whose worker died; restart stalled runs. Returns a summary."""
    now = now or timezone.now()
    requeued, failed = jobs.reap_dead(
        Action, since="started_at", max_attempts=settings.PORTAL_ACTION_MAX_ATTEMPTS, now=now
    )
    for action in requeued + jobs.resend_lost(Action, now):
        scheduler.enqueue_action(action.pk)
    for run_id in ApplyRun.objects.filter(status=RunStatus.RUNNING).values_list("pk", flat=True):
        scheduler.dispatch(run_id)
    for ws_id in (
        ApplyRun.objects.filter(status=RunStatus.QUEUED).values_list("workspace_id", flat=True).distinct()
    ):
        scheduler.enqueue_start(ws_id)
    summary = {"requeued": [a.key for a in requeued], "failed": [a.key for a in failed]}
    if requeued or failed:
        log.warning("reaper requeued %s, failed %s", summary["requeued"], summary["failed"])
    return summary
