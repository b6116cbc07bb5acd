"""Celery tasks: thin wrappers around workers/apply.py, workers/refresh.py and the reaper."""

from celery import shared_task
from django.conf import settings

from portal.models import Workspace

from . import apply, reaper, refresh


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def execute_action(action_id):
    # No SoftTimeLimitExceeded handler: apply.execute ends the action failed on any
    # exception, the soft limit's included. Long AWS waits do not run into the limits
    # (nor need them, in the threads pool that enforces none): they go back to the queue
    # with a countdown and a deadline kept on the action.
    apply.execute(action_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=300, time_limit=330)
def start_next_run(workspace_id):
    apply.start_next(workspace_id)


@shared_task(soft_time_limit=120, time_limit=150)
def reap():
    """Applies that a dead worker left behind (deployments.tasks.reap does deployment runs)."""
    return reaper.reap()


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def refresh_workspace(workspace_id, user_id=None):
    return refresh.refresh_workspace(workspace_id, user_id)


@shared_task(soft_time_limit=60, time_limit=90)
def refresh_all():
    for ws_id in Workspace.objects.values_list("pk", flat=True):
        refresh_workspace.delay(ws_id)
