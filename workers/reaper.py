"""Finding work that a dead worker left behind, and worker heartbeats.

An action is stuck when it is `running` but the worker that claimed it has not
written a heartbeat recently (it was killed, or its machine went away). The reaper puts
it back in the queue (the action's provider adopts whatever the dead worker created,
by token or tag) or fails it after too many attempts. It also nudges runs and queues
whose next step was lost with a message.
"""

import logging
import os
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from .models import Action, ActionStatus, ApplyRun, RunStatus, WorkerHeartbeat

log = logging.getLogger(__name__)
HEARTBEAT_EVERY = float(os.environ.get("PORTAL_HEARTBEAT_SECONDS", "10"))


def beat(name):
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"last_seen": timezone.now()})


def start_heartbeat_thread(name):
    def loop():
        while True:
            try:
                close_old_connections()
                beat(name)
            except Exception:  # the database may be briefly away; try again next beat
                log.warning("heartbeat failed", exc_info=True)
            time.sleep(HEARTBEAT_EVERY)

    thread = threading.Thread(target=loop, name="portal-heartbeat", daemon=True)
    thread.start()
    return thread


def live_workers(now=None):
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS)
    return set(WorkerHeartbeat.objects.filter(last_seen__gte=stale).values_list("name", flat=True))


def last_heartbeat():
    return WorkerHeartbeat.objects.order_by("-last_seen").values_list("last_seen", flat=True).first()


def fail_timed_out(action_id):
    limit = settings.CELERY_TASK_SOFT_TIME_LIMIT
    Action.objects.filter(pk=action_id, status=ActionStatus.RUNNING).update(
        status=ActionStatus.FAILED,
        finished_at=timezone.now(),
        error=f"timed out after {limit} s (soft time limit)",
    )
    from .apply import dispatch

    dispatch(Action.objects.get(pk=action_id).run_id)


def reap(now=None):
    """Requeue or fail actions whose worker died; restart stalled runs. Returns a summary."""
    from .apply import MAX_ATTEMPTS, _enqueue_action, _enqueue_start, dispatch

    now = now or timezone.now()
    alive = live_workers(now)
    grace = now - timedelta(seconds=settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS)
    requeued, failed = [], []
    for action in Action.objects.filter(status=ActionStatus.RUNNING, started_at__lt=grace).exclude(
        worker__in=alive
    ):
        with transaction.atomic():
            if action.attempts >= MAX_ATTEMPTS:
                n = Action.objects.filter(pk=action.pk, status=ActionStatus.RUNNING).update(
                    status=ActionStatus.FAILED,
                    finished_at=now,
                    error=f"its worker died {action.attempts} times while running it ({action.worker} last)",
                )
                if n:
                    failed.append(action.key)
            else:
                n = Action.objects.filter(pk=action.pk, status=ActionStatus.RUNNING).update(
                    status=ActionStatus.QUEUED,
                    queued_at=now,
                    error=f"requeued: worker {action.worker} stopped answering",
                )
                if n:
                    requeued.append(action.key)
                    _enqueue_action(action.pk)
    # Queued actions whose message was lost (broker restarted): send again; claiming is conditional.
    lost = now - timedelta(seconds=settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS * 3)
    for action_id in Action.objects.filter(status=ActionStatus.QUEUED, queued_at__lt=lost).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            Action.objects.filter(pk=action_id).update(queued_at=now)
            _enqueue_action(action_id)
    for run_id in ApplyRun.objects.filter(status=RunStatus.RUNNING).values_list("pk", flat=True):
        dispatch(run_id)
    for ws_id in (
        ApplyRun.objects.filter(status=RunStatus.QUEUED).values_list("workspace_id", flat=True).distinct()
    ):
        with transaction.atomic():
            _enqueue_start(ws_id)
    if requeued or failed:
        log.warning("reaper requeued %s, failed %s", requeued, failed)
    return {"requeued": requeued, "failed": failed}


def prune_heartbeats(days=1):
    WorkerHeartbeat.objects.filter(last_seen__lt=timezone.now() - timedelta(days=days)).delete()
