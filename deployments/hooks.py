"""What the deployments app does when an apply run ends (workers.hooks.on_run_finished):
start the pipelines that ask to run after an apply, and write the apply's build log.

The listener runs inside the apply's own transaction; each part runs in a savepoint so
that a failure here never undoes the apply's bookkeeping (it is logged and audited).
"""

import logging

from django.db import transaction

from portal import audit
from portal.errors import PortalError
from workers.hooks import on_run_finished

from . import buildlogs, pipelines, runs

log = logging.getLogger(__name__)


@on_run_finished
def after_apply(run):
    if run.kind != "apply":
        return
    if run.status == "succeeded" and run.requested_by is not None:
        _start_deployments(run)
    try:
        with transaction.atomic():
            buildlogs.for_apply(run)
    except Exception:
        log.exception("build log of apply #%s failed", run.pk)


def _start_deployments(run):
    """Run the pipelines that ask to run after an apply (before its build log is written,
    which links them)."""
    for pipeline in pipelines.pipelines_triggered_on_apply(run.workspace):
        try:
            with transaction.atomic():
                runs.request_run(
                    run.workspace, pipeline.name, run.requested_by, trigger="apply", apply_run=run
                )
        except PortalError as exc:
            audit.record(
                "deployment.not_triggered",
                actor=run.requested_by,
                workspace=run.workspace,
                target=f"{pipeline.name} after apply #{run.pk}",
                after={"error": exc.message},
            )
