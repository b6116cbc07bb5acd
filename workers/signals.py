"""Every Celery process that runs tasks writes a heartbeat (see workers/jobs.py) and keeps
its threads' database connections between tasks."""

import os

from celery.signals import worker_process_init, worker_ready
from django.conf import settings
from django.db import connections

from .jobs import start_heartbeat_thread, worker_name

_started = set()


def _start():
    if os.getpid() not in _started:
        _started.add(os.getpid())
        _keep_database_connections()
        start_heartbeat_thread(worker_name())


def _keep_database_connections():
    """In this worker process only (the web server keeps its own setting): a connection
    outlives the task that opened it, checked before its next use."""
    for alias in connections:
        connections.settings[alias]["CONN_MAX_AGE"] = settings.PORTAL_WORKER_DB_CONN_MAX_AGE
        connections.settings[alias]["CONN_HEALTH_CHECKS"] = True


@worker_process_init.connect
def _child_ready(**_):
    _start()


@worker_ready.connect
def _main_ready(sender=None, **_):
    _start()
