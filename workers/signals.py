"""Every Celery process that runs tasks writes a heartbeat (see workers/reaper.py)."""

from celery.signals import worker_process_init, worker_ready

_started = set()


def _start():
    import os

    from .apply import worker_name
    from .reaper import start_heartbeat_thread

    if os.getpid() not in _started:
        _started.add(os.getpid())
        start_heartbeat_thread(worker_name())


@worker_process_init.connect
def _child_ready(**_):
    _start()


@worker_ready.connect
def _main_ready(sender=None, **_):
    _start()
