"""Background jobs, the one way applies (workers/apply.py) and deployment runs
(deployments/runs.py) run their work.

A job row (an apply's action, a deployment's stage) is written before anything is sent;
its message goes out when the transaction commits (`enqueue`). A worker takes the row with
a conditional update (`claim`), so a duplicate message or two workers cannot run it twice.
Each worker process writes a heartbeat under its name (`worker_name`), and the reaper
(`reap_dead`, `resend_lost`) puts back in the queue what a worker that stopped beating left
running, or fails it after too many attempts. `wait` follows a run until it finishes.

A job row has `status`, `attempts`, `worker`, `error`, `queued_at` and `finished_at`; its
statuses (ActionStatus, StageStatus) name the states claim and reap move it between with
the values of the one run vocabulary, `workers.models.RunStatus`.
"""

import functools
import logging
import os
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone

from portal import statements
from portal.celery import app
from portal.errors import PortalError

from .models import RunStatus, WorkerHeartbeat

log = logging.getLogger(__name__)


# Drawn once per process start: a container restarted in place runs its worker again as
# pid 1 on the same hostname, and must not pass for the process that died.
BOOT_NONCE = secrets.token_hex(4)


def worker_name():
    """hostname:pid:boot nonce, written on the rows a worker claims and in its heartbeat."""
    return f"{socket.gethostname()}:{os.getpid()}:{BOOT_NONCE}"


def enqueue(task, *args, here=False, **options):
    """Send the Celery task named `task` when the transaction commits (rows first, then
    messages). By name, so that the code a task calls need not import the task module.
    `here`: run it instead on one of this worker process's local threads, if one is free."""
    if here and not options:  # a thread is taken at the commit: a rollback takes none
        transaction.on_commit(lambda: _local_threads.run(task, args))
    else:
        transaction.on_commit(lambda: app.signature(task).apply_async(args, **options))


class _LocalThreads:
    """Threads of a worker process for the tasks its own jobs start (the actions a dispatch
    round unblocks), with no broker between: under load Celery's hub takes tens of
    milliseconds to deliver a message to a thread. A task given to them is committed as
    queued like any other, so if the process dies before running it the reaper sends it
    again as it does a lost message (`resend_lost`); claims stay conditional."""

    def __init__(self):
        self.size, self.busy, self.executor, self.lock = 0, 0, None, threading.Lock()

    def enable(self, size):
        with self.lock:
            self.size = size
            if size and self.executor is None:
                self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="portal-local")

    def reserve(self):
        with self.lock:
            if self.busy >= self.size:
                return False
            self.busy += 1
            return True

    def run(self, task, args):
        """On a free thread, or through the broker when none is."""
        if not self.reserve():
            app.signature(task).apply_async(args)
            return
        try:
            self.executor.submit(self._call, task, args)
        except RuntimeError:  # the process is shutting down: the broker takes it
            self._release()
            app.signature(task).apply_async(args)

    def _call(self, task, args):
        close_old_connections()  # as Celery does around a task: the pool keeps them
        try:
            app.tasks[task](*args)
        except Exception:  # its row stays queued or running under this worker: the reaper has it
            log.exception("task %s%s failed on a local thread", task, args)
        finally:
            close_old_connections()
            self._release()

    def _release(self):
        with self.lock:
            self.busy -= 1


_local_threads = _LocalThreads()


def enable_local_threads(size):
    """Let `enqueue(..., here=True)` run tasks on up to `size` threads of this process: a
    worker process that runs its tasks in threads. Elsewhere (the web server, a prefork
    worker) every task is sent."""
    _local_threads.enable(size)


def claim(model, pk, worker=None, **fields):
    """queued -> running for one row, counting the attempt; true for one claimer only."""
    return claim_row(model, pk, worker, **fields) is not None


def claim_row(model, pk, worker=None, source=RunStatus.QUEUED, extra=None, condition=None, **fields):
    """claim(), answering with the claimed row as it now is (None for every other claimer):
    one statement, UPDATE ... RETURNING, where an update and a read took two round trips.
    `source`: the status it is claimed from. `extra`: {attribute: SQL expression} read
    along, on the row (a related value). `condition`: SQL that must hold as well."""
    meta = model._meta
    values = {"status": RunStatus.RUNNING, "worker": worker or worker_name(), "error": "", **fields}
    params = [meta.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()]
    extra = tuple((extra or {}).items())
    sql = _claim_sql(model, tuple(values), extra, condition)
    rows = statements.instances(model, sql, [*params, pk, source], extra=[name for name, _ in extra])
    return rows[0] if rows else None


@functools.lru_cache(maxsize=64)
def _claim_sql(model, names, extra, condition):
    meta = model._meta
    quote = connection.ops.quote_name
    assignments = [f"{quote(meta.get_field(name).column)} = %s" for name in names]
    attempts = quote(meta.get_field("attempts").column)
    columns = [quote(f.column) for f in meta.concrete_fields]
    columns += [f"({expression}) AS {quote(name)}" for name, expression in extra]
    assignments.append(f"{attempts} = {attempts} + 1")
    where = f"{quote(meta.pk.column)} = %s AND {quote(meta.get_field('status').column)} = %s"
    if condition:
        where += f" AND ({condition})"
    # Identifiers from the model's metadata, every value a parameter.
    return f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} WHERE {where} RETURNING {', '.join(columns)}"  # noqa: S608, E501


# --- Heartbeats ------------------------------------------------------------------------------------


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
            time.sleep(settings.PORTAL_HEARTBEAT_SECONDS)

    thread = threading.Thread(target=loop, name="portal-heartbeat", daemon=True)
    thread.start()
    return thread


def dead_before(now):
    """A worker whose last heartbeat is older than this is taken for dead."""
    return now - timedelta(seconds=settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS)


def lost_before(now):
    """A message due before this had the grace period to arrive: the broker lost it."""
    grace = settings.PORTAL_LOST_MESSAGE_GRACE_SECONDS or settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS * 3
    return now - timedelta(seconds=grace)


def live_workers(now=None):
    stale = dead_before(now or timezone.now())
    return set(WorkerHeartbeat.objects.filter(last_seen__gte=stale).values_list("name", flat=True))


def last_heartbeat():
    return WorkerHeartbeat.objects.order_by("-last_seen").values_list("last_seen", flat=True).first()


# --- Reaping -----------------------------------------------------------------------------------------


def reap_dead(model, since, max_attempts, now):
    """Rows left running by a worker that stopped beating, with `since` (the field that
    says when the worker last showed life on the row) older than the stale limit: put back
    in the queue, or failed once they used `max_attempts`. Returns (requeued, failed), the
    rows with their new `error`; the caller sends them on."""
    requeued, failed = [], []
    running = model.objects.filter(status=RunStatus.RUNNING)
    for row in running.filter(**{f"{since}__lt": dead_before(now)}).exclude(worker__in=live_workers(now)):
        if row.attempts >= max_attempts:
            row.error = f"its worker died {row.attempts} times while running it ({row.worker} last)"
            if running.filter(pk=row.pk).update(status=RunStatus.FAILED, finished_at=now, error=row.error):
                failed.append(row)
        else:
            row.error = f"requeued: worker {row.worker} stopped answering"
            if running.filter(pk=row.pk).update(status=RunStatus.QUEUED, queued_at=now, error=row.error):
                requeued.append(row)
    return requeued, failed


def resend_lost(model, now):
    """Queued rows whose message was lost (the broker restarted, a worker died holding it
    unacked, a countdown message went with its worker): their `queued_at` (when the
    message was due) is renewed and they are returned to be sent again; claiming is
    conditional, so a message that was only late does no harm. A row queued without a
    `queued_at` counts as lost. The other states need no message to move on: a running
    row's worker is watched by `reap_dead`, and waiting rows are started by their run's
    dispatch, which the reaper repeats."""
    queued = model.objects.filter(status=RunStatus.QUEUED)
    return [
        row
        for row in queued.filter(Q(queued_at__lt=lost_before(now)) | Q(queued_at__isnull=True))
        if queued.filter(pk=row.pk)
        .filter(Q(queued_at=row.queued_at) | Q(queued_at__isnull=True))
        .update(queued_at=now)
    ]


# --- Waiting -----------------------------------------------------------------------------------------


def wait(model, pk, what, timeout, poll, report=None):
    """Read the run every `poll` seconds until it is finished and return it; `report(run)`
    is called on each read. Raises after `timeout` seconds (the run goes on)."""
    deadline = time.monotonic() + timeout
    while True:
        run = model.objects.get(pk=pk)
        if report:
            report(run)
        if run.is_finished:
            return run
        if time.monotonic() > deadline:
            raise PortalError(
                f"{what} #{run.pk} is still {run.status} after {timeout:.0f} s; it goes on in the workers."
            )
        time.sleep(poll)
