"""What happens when an apply run ends, besides its own bookkeeping: other apps plug in
here (build logs, pipelines triggered by an apply)."""

import logging

log = logging.getLogger(__name__)
_listeners = []


def on_run_finished(fn):
    _listeners.append(fn)
    return fn


def run_finished(run):
    for fn in _listeners:
        try:
            fn(run)
        except Exception:  # a failing listener must not undo the apply's bookkeeping
            log.exception("run_finished listener %s failed for run %s", fn, run.pk)
