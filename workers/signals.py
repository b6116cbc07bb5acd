"""Every Celery process that runs tasks writes a heartbeat (see workers/jobs.py) and keeps
its database connections between tasks; one that runs them in threads has local threads
for the actions it unblocks (jobs.enable_local_threads)."""

import os

from celery.signals import task_prerun, worker_process_init, worker_ready
from django.conf import settings
from django.db import close_old_connections, connections

from .jobs import enable_local_threads, start_heartbeat_thread, worker_name

_started = set()


def _start(threads=None, pooled=True, local_threads=False):
    if os.getpid() not in _started:
        _started.add(os.getpid())
        threads = threads or settings.CELERY_WORKER_CONCURRENCY
        local = settings.PORTAL_WORKER_LOCAL_THREADS if local_threads else 0
        _keep_database_connections(threads, local, pooled=pooled)
        enable_local_threads(local)
        start_heartbeat_thread(worker_name())


def _keep_database_connections(threads, local_threads=0, pooled=True):
    """In this worker process only (the web server keeps its own setting): Celery closes a
    task's database connection when the task starts and ends, so on Postgres a pool (Django's,
    psycopg_pool) keeps them open for the next task of any thread, checked as it is taken.
    Without it every task opened a connection, a new server process each time. The pool
    keeps one open for each Celery thread even when idle: it opens the ones it lacks one at
    a time, which made the 60th action of a burst wait half a second for its connection.
    Elsewhere (a prefork worker's processes, SQLite) a thread keeps its own connection for
    a minute."""
    for alias in connections:
        db = connections.settings[alias]
        db["CONN_HEALTH_CHECKS"] = True
        db["CONN_MAX_AGE"] = 60
        if pooled and db["ENGINE"].endswith("postgresql") and settings.PORTAL_WORKER_DB_POOL:
            db["CONN_MAX_AGE"] = 0  # the pool keeps them; Django refuses both at once
            db["OPTIONS"] = {
                **db.get("OPTIONS", {}),
                # a connection for each thread, the heartbeat's and the consumer's
                "pool": {"min_size": threads, "max_size": threads + local_threads + 2, "timeout": 30},
            }


@worker_process_init.connect
def _child_ready(**_):
    # A prefork child runs one task at a time on one connection, which Celery leaves open
    # between tasks (CELERY_DB_REUSE_MAX): no pool (Celery would close it at every task),
    # and the connection is checked before each task as a web request's is, replaced when
    # it broke or is a minute old.
    _start(threads=1, pooled=False)
    task_prerun.connect(close_old_connections, weak=False)


@worker_ready.connect
def _main_ready(sender=None, **_):
    # In the threads pool the tasks run in this process: as many connections as threads
    # (--concurrency on the command line included). Under prefork they run in the children,
    # which make their own pool: a pool made here would pass to the children forked later
    # with its open connections.
    controller = getattr(sender, "controller", None)
    pool_cls = getattr(controller, "pool_cls", None)
    prefork = "prefork" in getattr(pool_cls, "__module__", str(pool_cls))
    # Local threads too, for the actions its rounds unblock (none under prefork: a child
    # runs one task at a time, the main process none).
    _start(getattr(controller, "concurrency", None), pooled=not prefork, local_threads=not prefork)
