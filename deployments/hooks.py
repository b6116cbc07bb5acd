"""What the deployments app does when an apply run ends (workers.hooks.on_run_finished):
start the pipelines that ask to run after an apply, and write the apply's build log.

The listener runs inside the apply's own transaction; the pipelines start in a savepoint
of it, so that a failure never undoes the apply's bookkeeping (it is logged and audited).
The build log is written once that transaction has committed: the run's end (its change
set applied, the workspace's apply lock released, the next run started) does not wait on
the history, and a log that failed, or that a dying worker never wrote, is written by the
reaper (buildlogs.write_missing_apply_logs).
"""

from django.db import transaction

from portal import audit
from portal.errors import PortalError
from workers.hooks import on_run_finished

from . import buildlogs, pipelines, runs


@on_run_finished
def after_apply(run):
    if run.kind != "apply":
        return
    if run.status == "succeeded" and run.requested_by is not None:
        _start_deployments(run)
    transaction.on_commit(lambda: buildlogs.write_apply_log(run))


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
