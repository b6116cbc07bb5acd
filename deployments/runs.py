"""Deployment runs: asking for one, the per-pipeline queue, the dispatcher that moves a
run from stage to stage, running one stage (its AWS side is workers/pipeline_steps.py),
approval gates, rollback, the reaper, and reading runs for people and scripts.

Rows are written before anything is enqueued, and every step is a conditional update
(`filter(status=OLD).update(status=NEW)`), so a duplicate message, two dispatchers or a
worker killed half way cannot run a stage twice or leave a run stuck: a stage whose
worker stopped beating is put back in the queue (it resumes from its saved progress) or,
after PORTAL_STAGE_MAX_ATTEMPTS, failed with the reason in words (`reap`). Claiming,
heartbeats and reaping are those of every background job (workers/jobs.py).

Stage code runs in autocommit, never inside `transaction.atomic`: each log line is its
own short transaction and the run page sees it at once, and no transaction stays open
while a stage waits on AWS.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from portal import audit
from portal.access import require_role, workspaces_for
from portal.errors import ConflictError, PermissionDenied, ValidationError
from portal.models import Role, Workspace
from portal.secrets import mask, mask_text, secret_values
from workers import jobs, pipeline_steps
from workers.aws import AwsTarget, Clients

from . import buildlogs, pipelines
from .models import (
    IN_FLIGHT,
    LogLine,
    PipelineRun,
    RollbackStatus,
    RunStatus,
    StageRun,
    StageStatus,
)

log = logging.getLogger(__name__)

GATE = "approval_gate"


# --- Log lines -----------------------------------------------------------------------------------


def write_log(run_id, message, level="info", stage_id=None, known=()):
    """One line of a run's log (masked). Outside a transaction it commits at once."""
    return LogLine.objects.create(
        run_id=run_id,
        stage_id=stage_id,
        at=timezone.now(),
        level=level,
        message=mask_text(message, known)[:4000],
    )


# --- Enqueueing ----------------------------------------------------------------------------------


def _enqueue_advance(run_id):
    jobs.enqueue("deployments.tasks.advance_run", run_id)


def _enqueue_stage(stage):
    # The stage bounds itself by its deadline; the Celery limits are the backstop.
    jobs.enqueue(
        "deployments.tasks.run_stage",
        stage.pk,
        soft_time_limit=stage.timeout_s + 60,
        time_limit=stage.timeout_s + 120,
    )


def _enqueue_rollback(run_id):
    jobs.enqueue("deployments.tasks.roll_back", run_id)


# --- Asking for a run ----------------------------------------------------------------------------


def request_run(workspace, pipeline_name, user, trigger="manual", apply_run=None):
    """Queue a run of the pipeline as HEAD resolves it now; returns the PipelineRun."""
    require_role(user, workspace, Role.EDITOR)
    pipeline = pipelines.get_pipeline(workspace, pipeline_name)
    pipelines.check_runnable(pipeline)
    with transaction.atomic():
        run = PipelineRun.objects.create(
            workspace=workspace,
            pipeline=pipeline.name,
            pipeline_id=pipeline.component_id,
            description=pipeline.description,
            definition=pipeline.domain,
            source=pipeline.properties,
            head_version=Workspace.objects.values_list("head_version", flat=True).get(pk=workspace.pk),
            trigger=trigger,
            apply_run=apply_run,
            requested_by=user,
        )
        StageRun.objects.bulk_create(
            [
                StageRun(
                    run=run,
                    position=s.position,
                    name=s.name,
                    kind=s.kind,
                    parameters=s.parameters,
                    timeout_s=s.timeout,
                )
                for s in pipeline.stages
            ]
        )
        audit.record(
            "deployment.requested",
            actor=user,
            workspace=workspace,
            target=f"deployment #{run.pk} {pipeline.name}",
            after={
                "pipeline": pipeline.name,
                "trigger": trigger,
                "stages": [s.name for s in pipeline.stages],
            },
        )
        why = f" after apply #{apply_run.pk}" if apply_run is not None else ""
        write_log(run.pk, f"{user} asked for a run of {pipeline.name}{why}")
        _enqueue_advance(run.pk)
    return run


# --- Moving a run along --------------------------------------------------------------------------


def advance(run_id):
    """Start the run if its pipeline is free, queue its next stage, roll back or finish it.
    Safe to call any number of times, from anywhere."""
    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().select_related("workspace").get(pk=run_id)
        if run.status == RunStatus.QUEUED and not _start(run):
            return run
        if run.status != RunStatus.RUNNING:
            return run
        stages = list(run.stages.order_by("position"))
        failed = next((s for s in stages if s.status in (StageStatus.FAILED, StageStatus.CANCELLED)), None)
        if failed is not None:
            if _rollback_plan(run, stages) and run.definition.get("RollbackOnFailure") is True:
                if run.rollback_status == RollbackStatus.NONE:
                    run.rollback_status = RollbackStatus.QUEUED
                    run.heartbeat_at = timezone.now()
                    run.save(update_fields=["rollback_status", "heartbeat_at"])
                    write_log(run.pk, "rolling the services back to the revisions they ran before", "warning")
                    _enqueue_rollback(run.pk)
                    return run
                if run.rollback_status in (RollbackStatus.QUEUED, RollbackStatus.RUNNING):
                    return run
            _finish(run, stages, RunStatus.FAILED, f"{failed.name}: {failed.error or failed.status}")
            return run
        current = next((s for s in stages if s.status != StageStatus.SUCCEEDED), None)
        if current is None:
            _finish(run, stages, RunStatus.SUCCEEDED)
        elif current.status == StageStatus.PENDING:
            if StageRun.objects.filter(pk=current.pk, status=StageStatus.PENDING).update(
                status=StageStatus.QUEUED, queued_at=timezone.now()
            ):
                current.status = StageStatus.QUEUED
                _enqueue_stage(current)
    return run


def _start(run):
    """QUEUED -> RUNNING unless another run of the same pipeline is going (one at a time)."""
    Workspace.objects.select_for_update().get(pk=run.workspace_id)  # serialise starts
    same = PipelineRun.objects.filter(workspace_id=run.workspace_id, pipeline_id=run.pipeline_id).exclude(
        pk=run.pk
    )
    busy = (
        same.filter(status=RunStatus.RUNNING).first()
        or same.filter(status=RunStatus.QUEUED, pk__lt=run.pk).first()
    )
    if busy is not None:
        if not run.log_lines.filter(message__startswith="waiting for deployment").exists():
            write_log(run.pk, f"waiting for deployment #{busy.pk} of {run.pipeline} to finish")
        return False
    run.status, run.started_at = RunStatus.RUNNING, timezone.now()
    run.save(update_fields=["status", "started_at"])
    audit.record(
        "deployment.started",
        actor=run.requested_by,
        workspace=run.workspace,
        target=f"deployment #{run.pk} {run.pipeline}",
    )
    write_log(run.pk, f"deployment #{run.pk} of {run.pipeline} started")
    return True


def _finish(run, stages, status, error=""):
    now = timezone.now()
    run.stages.filter(status__in=[StageStatus.PENDING, StageStatus.QUEUED]).update(
        status=StageStatus.SKIPPED, finished_at=now
    )
    run.status, run.finished_at, run.error = status, now, mask_text(error, _known(run))[:4000]
    run.save(update_fields=["status", "finished_at", "error"])
    ok = status == RunStatus.SUCCEEDED
    audit.record(
        "deployment.succeeded" if ok else "deployment.failed",
        actor=run.requested_by,
        workspace=run.workspace,
        target=f"deployment #{run.pk} {run.pipeline}",
        after={
            "stages": {s.name: s.status for s in run.stages.all()},
            "error": run.error or None,
            "rollback": run.rollback_status or None,
        },
    )
    if ok:
        write_log(run.pk, f"deployment #{run.pk} succeeded")
    else:
        write_log(run.pk, f"deployment #{run.pk} failed: {run.error}", "error")
    try:
        with transaction.atomic():
            buildlogs.for_deployment(run)
    except Exception:  # the build log must not undo the run's bookkeeping
        log.exception("build log of deployment #%s failed", run.pk)
    following = (
        PipelineRun.objects.filter(
            workspace_id=run.workspace_id, pipeline_id=run.pipeline_id, status=RunStatus.QUEUED
        )
        .order_by("id")
        .first()
    )
    if following is not None:
        _enqueue_advance(following.pk)


def _known(run):
    return secret_values(run.definition)


# --- Running one stage ---------------------------------------------------------------------------


class StageContext:
    """What a step in workers/pipeline_steps.py may use (see its docstring)."""

    def __init__(self, stage, clients=None):
        self.stage = stage
        self.run_id = stage.run_id
        self.result = dict(stage.result or {})
        self.token = f"portal-stage-{stage.pk}-{stage.run_id}"
        self.attempt = stage.attempts
        self.timeout = stage.timeout_s
        self.deadline = stage.deadline
        self.known = secret_values(stage.parameters)
        self.allow_private_http = stage.run.workspace.allow_private_http_checks
        self._clients = clients
        self._last_beat = 0.0

    def clients(self, service):
        if self._clients is None:
            self._clients = Clients(AwsTarget.for_workspace(self.stage.run.workspace))
        return self._clients(service)

    def started_deployments(self):
        """{service ARN: id of the deployment this run's earlier deploy stages started there}
        (a later deploy stage's wins)."""
        started = {}
        earlier = self.stage.run.stages.filter(kind="deploy_services", position__lt=self.stage.position)
        for result in earlier.order_by("position").values_list("result", flat=True):
            previous = (result or {}).get("previous") or {}
            for service, record in ((result or {}).get("services") or {}).items():
                arn = (previous.get(service) or {}).get("arn") or service
                if record.get("deployment") not in (None, "requested"):  # "requested": ECS named none
                    started[arn] = record["deployment"]
        return started

    def log(self, message, level="info"):
        write_log(self.run_id, message, level, stage_id=self.stage.pk, known=self.known)

    def save(self):
        StageRun.objects.filter(pk=self.stage.pk).update(result=self.result, heartbeat_at=timezone.now())

    def beat(self):
        if time.monotonic() - self._last_beat >= settings.PORTAL_STAGE_BEAT_SECONDS:
            self._last_beat = time.monotonic()
            StageRun.objects.filter(pk=self.stage.pk).update(heartbeat_at=timezone.now())

    def remaining(self):
        return max(0.0, (self.deadline - timezone.now()).total_seconds())


def execute_stage(stage_id, worker=None):
    """Claim and run one stage; safe to call twice for the same id. Returns the stage."""
    now = timezone.now()
    if not jobs.claim(StageRun, stage_id, worker, heartbeat_at=now):
        return None
    stage = StageRun.objects.select_related("run__workspace").get(pk=stage_id)
    fields = []
    if stage.started_at is None:
        stage.started_at = now
        fields.append("started_at")
    if stage.deadline is None:
        stage.deadline = now + timedelta(seconds=stage.timeout_s)
        fields.append("deadline")
    if fields:
        stage.save(update_fields=fields)
    if stage.run.status != RunStatus.RUNNING:
        _end_stage(stage, StageStatus.CANCELLED, error=f"the run is {stage.run.status}")
        return stage
    attempt = f" (attempt {stage.attempts})" if stage.attempts > 1 else ""
    if stage.kind == GATE:
        message = (stage.parameters or {}).get("Message") or "go ahead?"
        StageRun.objects.filter(pk=stage.pk, status=StageStatus.RUNNING).update(status=StageStatus.WAITING)
        write_log(stage.run_id, f"{stage.name}: waiting for an approver: {message}", stage_id=stage.pk)
        return stage
    ctx = StageContext(stage)
    write_log(stage.run_id, f"{stage.name} ({stage.kind}) started{attempt}", stage_id=stage.pk)
    try:
        outcome = pipeline_steps.run_stage(stage.kind, ctx, stage.parameters)
    except pipeline_steps.StageFailed as exc:
        _end_stage(stage, StageStatus.FAILED, result=ctx.result, error=mask_text(exc.message, ctx.known))
    except Exception as exc:  # a stage must end failed, never stuck running
        if type(exc).__name__ == "SoftTimeLimitExceeded":
            message = f"the worker's time limit ran out after {stage.timeout_s + 60} s"
        else:
            log.exception("stage %s of deployment #%s failed", stage.name, stage.run_id)
            message = f"{type(exc).__name__}: {exc}"
        _end_stage(stage, StageStatus.FAILED, result=ctx.result, error=mask_text(message, ctx.known))
    else:
        ctx.result["outcome"] = outcome
        _end_stage(stage, StageStatus.SUCCEEDED, result=ctx.result)
    advance(stage.run_id)
    return StageRun.objects.get(pk=stage_id)


def _end_stage(stage, status, result=None, error=""):
    fields = {"status": status, "finished_at": timezone.now(), "error": error[:4000]}
    if result is not None:
        fields["result"] = result
    done = StageRun.objects.filter(pk=stage.pk, status=StageStatus.RUNNING).update(**fields)
    if done:
        if status == StageStatus.SUCCEEDED:
            summary = ((result or {}).get("outcome") or {}).get("summary", "")
            write_log(
                stage.run_id, f"{stage.name} succeeded{': ' + summary if summary else ''}", stage_id=stage.pk
            )
        else:
            write_log(stage.run_id, f"{stage.name} {status}: {error}", "error", stage_id=stage.pk)
    return done


# --- Approval gates ------------------------------------------------------------------------------


def decide_gate(stage, user, approve, comment=""):
    """An approver's go-ahead (or refusal) for a waiting approval gate."""
    with transaction.atomic():
        stage = StageRun.objects.select_for_update().select_related("run__workspace").get(pk=stage.pk)
        run = stage.run
        require_role(user, run.workspace, Role.APPROVER)
        if stage.kind != GATE:
            raise ConflictError(f"{stage.name} is a {stage.kind} stage, not an approval gate.")
        if stage.status != StageStatus.WAITING:
            raise ConflictError(
                f"{stage.name} of deployment #{run.pk} is {stage.status}, not waiting for an approver."
            )
        if approve and user.pk == run.requested_by_id:
            raise PermissionDenied(
                f"You started deployment #{run.pk}, so another approver lets it past {stage.name}."
            )
        comment = (comment or "").strip()
        if not approve and not comment:
            raise ValidationError("Say why you stop the deployment (a comment is required to reject).")
        now = timezone.now()
        StageRun.objects.filter(pk=stage.pk, status=StageStatus.WAITING).update(
            status=StageStatus.SUCCEEDED if approve else StageStatus.FAILED,
            decided_by=user,
            decided_at=now,
            decision_comment=comment,
            finished_at=now,
            error="" if approve else f"rejected by {user}: {comment}",
        )
        audit.record(
            "deployment.gate_approved" if approve else "deployment.gate_rejected",
            actor=user,
            workspace=run.workspace,
            target=f"deployment #{run.pk} {stage.name}",
            after={"comment": comment},
        )
        verb = "approved" if approve else "rejected"
        write_log(
            run.pk, f"{stage.name}: {verb} by {user}{': ' + comment if comment else ''}", stage_id=stage.pk
        )
        _enqueue_advance(run.pk)
    return StageRun.objects.get(pk=stage.pk)


def waiting_gate(run):
    return run.stages.filter(kind=GATE, status=StageStatus.WAITING).first()


# --- Rollback ------------------------------------------------------------------------------------


def _rollback_plan(run, stages=None):
    """{cluster: {service: task definition it ran before}} for the services this run redeployed."""
    plan = {}
    for stage in stages if stages is not None else run.stages.all():
        if stage.kind != "deploy_services":
            continue
        result = stage.result or {}
        previous, deployed = result.get("previous") or {}, result.get("services") or {}
        cluster = result.get("cluster") or (stage.parameters or {}).get("Cluster")
        for service in deployed:
            if service in previous and previous[service].get("task_definition"):
                plan.setdefault(cluster, {})[service] = previous[service]["task_definition"]
    return plan


class RunContext(StageContext):
    """A stage-less context for the rollback (logs to the run, beats on the run row)."""

    def __init__(self, run):
        self.stage = None
        self.run = run
        self.run_id = run.pk
        self.result = {}
        self.token = f"portal-rollback-{run.pk}"
        self.attempt = 1
        self.timeout = 300
        self.deadline = timezone.now() + timedelta(seconds=300)
        self.known = secret_values(run.definition)
        self._clients = None
        self._last_beat = 0.0

    def clients(self, service):
        if self._clients is None:
            self._clients = Clients(AwsTarget.for_workspace(self.run.workspace))
        return self._clients(service)

    def log(self, message, level="info"):
        write_log(self.run_id, message, level, known=self.known)

    def save(self):
        PipelineRun.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())

    beat = save


def execute_rollback(run_id, worker=None):
    claimed = PipelineRun.objects.filter(pk=run_id, rollback_status=RollbackStatus.QUEUED).update(
        rollback_status=RollbackStatus.RUNNING,
        worker=worker or jobs.worker_name(),
        heartbeat_at=timezone.now(),
    )
    if not claimed:
        return None
    run = PipelineRun.objects.select_related("workspace").get(pk=run_id)
    ctx = RunContext(run)
    results, error = {}, ""
    try:
        for cluster, previous in _rollback_plan(run).items():
            results.update(pipeline_steps.rollback_services(ctx, cluster, previous))
    except Exception as exc:  # the run must end, rolled back or not
        log.exception("rollback of deployment #%s failed", run_id)
        error = f"{type(exc).__name__}: {exc}"
    failed = [s for s, r in results.items() if r.get("error")]
    status = RollbackStatus.FAILED if (error or failed) else RollbackStatus.DONE
    PipelineRun.objects.filter(pk=run_id, rollback_status=RollbackStatus.RUNNING).update(
        rollback_status=status, rollback={"services": results, "error": mask_text(error, ctx.known)}
    )
    audit.record(
        "deployment.rolled_back" if status == RollbackStatus.DONE else "deployment.rollback_failed",
        actor=run.requested_by,
        workspace=run.workspace,
        target=f"deployment #{run.pk} {run.pipeline}",
        after={"services": {s: r["task_definition"] for s, r in results.items()}, "error": error or None},
    )
    advance(run_id)
    return PipelineRun.objects.get(pk=run_id)


# --- The reaper ----------------------------------------------------------------------------------


def reap(now=None):
    """Requeue or fail stages whose worker died, fail approval gates nobody decided in time,
    re-send lost messages and nudge runs whose next step was lost. Returns a summary.

    Beat runs it every 30 s (deployments.tasks.reap)."""
    now = now or timezone.now()
    requeued_stages, failed_stages = jobs.reap_dead(
        StageRun, since="heartbeat_at", max_attempts=settings.PORTAL_STAGE_MAX_ATTEMPTS, now=now
    )
    for stage in failed_stages:
        write_log(stage.run_id, f"{stage.name} failed: {stage.error}", "error", stage_id=stage.pk)
        _enqueue_advance(stage.run_id)
    for stage in requeued_stages:
        write_log(
            stage.run_id,
            f"{stage.name}: worker {stage.worker} stopped answering; resuming on another worker",
            "warning",
            stage_id=stage.pk,
        )
    for stage in requeued_stages + jobs.resend_lost(StageRun, now):
        _enqueue_stage(stage)
    requeued = [f"#{stage.run_id} {stage.name}" for stage in requeued_stages]
    failed = [f"#{stage.run_id} {stage.name}" for stage in failed_stages]
    expired = []
    for stage in StageRun.objects.filter(status=StageStatus.WAITING, deadline__lt=now):
        with transaction.atomic():
            error = f"no approver decided within {stage.timeout_s} s"
            if StageRun.objects.filter(pk=stage.pk, status=StageStatus.WAITING).update(
                status=StageStatus.FAILED, finished_at=now, error=error
            ):
                expired.append(f"#{stage.run_id} {stage.name}")
                write_log(stage.run_id, f"{stage.name} failed: {error}", "error", stage_id=stage.pk)
                _enqueue_advance(stage.run_id)
    stuck_rollbacks = PipelineRun.objects.filter(
        rollback_status=RollbackStatus.RUNNING, heartbeat_at__lt=jobs.dead_before(now)
    ).exclude(worker__in=jobs.live_workers(now))
    for run in stuck_rollbacks:
        with transaction.atomic():
            if PipelineRun.objects.filter(pk=run.pk, rollback_status=RollbackStatus.RUNNING).update(
                rollback_status=RollbackStatus.QUEUED, heartbeat_at=now
            ):
                requeued.append(f"#{run.pk} rollback")
                _enqueue_rollback(run.pk)
    for run_id in PipelineRun.objects.filter(
        rollback_status=RollbackStatus.QUEUED, heartbeat_at__lt=jobs.lost_before(now)
    ).values_list("pk", flat=True):
        with transaction.atomic():
            PipelineRun.objects.filter(pk=run_id).update(heartbeat_at=now)
            _enqueue_rollback(run_id)
    for run_id in PipelineRun.objects.filter(status__in=[RunStatus.RUNNING, RunStatus.QUEUED]).values_list(
        "pk", flat=True
    ):
        try:
            advance(run_id)
        except Exception:  # one broken run must not stop the reaper
            log.exception("reaper could not advance deployment #%s", run_id)
    logged = buildlogs.write_missing_apply_logs(now)
    if requeued or failed or expired or logged:
        log.warning(
            "deployment reaper requeued %s, failed %s, expired %s, wrote the missing build logs of applies %s",
            requeued,
            failed,
            expired,
            logged,
        )
    return {"requeued": requeued, "failed": failed, "expired": expired, "build_logs": logged}


# --- Reading runs --------------------------------------------------------------------------------


def masked_parameters(parameters):
    return mask(parameters or {})


def describe_run(run):
    run = PipelineRun.objects.select_related("workspace", "requested_by").get(pk=run.pk)
    return {
        "run": run.pk,
        "workspace": run.workspace.slug,
        "pipeline": run.pipeline,
        "status": run.status,
        "trigger": run.trigger,
        "apply_run": run.apply_run_id,
        "requested_by": run.requested_by.username if run.requested_by else None,
        "error": run.error,
        "rollback": {"status": run.rollback_status, **(run.rollback or {})} if run.rollback_status else None,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "stages": [
            {
                "name": s.name,
                "kind": s.kind,
                "status": s.status,
                "attempts": s.attempts,
                "duration_s": s.duration_s,
                "summary": ((s.result or {}).get("outcome") or {}).get("summary", ""),
                "error": s.error,
                "result": mask({k: v for k, v in (s.result or {}).items() if k != "outcome"}),
            }
            for s in run.stages.all()
        ],
        "log": [
            {"at": line.at, "level": line.level, "stage": line.stage_id, "message": line.message}
            for line in run.log_lines.all()
        ],
    }


def run_text(r):
    lines = [f"Deployment #{r['run']} of {r['pipeline']} in {r['workspace']}: {r['status']}"]
    for s in r["stages"]:
        took = f" in {s['duration_s']:.0f} s" if s["duration_s"] is not None else ""
        line = f"  {s['status']:9} {s['name']} ({s['kind']}){took}"
        if s["error"]:
            line += f" — {s['error']}"
        elif s["summary"]:
            line += f" — {s['summary']}"
        lines.append(line)
    if r["rollback"]:
        lines.append(f"  rollback: {r['rollback']['status']}")
    if r["error"]:
        lines.append(f"error: {r['error']}")
    return "\n".join(lines)


def wait_for_run(run, timeout=3600, poll=0.5, progress=None):
    """Wait for the deployment to finish; `progress(line)` hears each new line of its log."""
    last_line = 0

    def report(run):
        nonlocal last_line
        for line in run.log_lines.filter(pk__gt=last_line).order_by("id"):
            last_line = line.pk
            progress(f"{line.at:%H:%M:%S} {line.message}")

    return jobs.wait(PipelineRun, run.pk, "Deployment", timeout, poll, report if progress else None)


def active_stage(run):
    return run.stages.filter(status__in=list(IN_FLIGHT)).order_by("position").first()


def failed_runs(user, limit=50):
    """For the home page: deployments in the user's workspaces that failed and are still
    their pipeline's latest run."""
    later = PipelineRun.objects.filter(pipeline_id=OuterRef("pipeline_id"), pk__gt=OuterRef("pk"))
    return list(
        PipelineRun.objects.filter(workspace__in=workspaces_for(user), status=RunStatus.FAILED)
        .exclude(Exists(later))
        .select_related("workspace", "requested_by")
        .order_by("-id")[:limit]
    )


def recent_runs(workspace, limit=5):
    """For the workspace home's "Recent deployments" card (portal.pages.recent_deployments)."""
    return PipelineRun.objects.filter(workspace=workspace).select_related("requested_by")[:limit]
