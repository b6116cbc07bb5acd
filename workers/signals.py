"""Every Celery process that runs tasks writes a heartbeat (see workers/jobs.py)."""

import os

from celery.signals import worker_process_init, worker_ready

from .jobs import start_heartbeat_thread, worker_name

_started = set()


def _start():
    if os.getpid() not in _started:
        _started.add(os.getpid())
        start_heartbeat_thread(worker_name())


@worker_process_init.connect
def _child_ready(**_):
    _start()


@worker_ready.connect
def _main_ready(sender=None, **_):
    _start()
