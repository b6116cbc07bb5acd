"""Crash safety: a worker killed in the middle of a stage leaves a run that resumes (without
starting its task twice) or fails clearly; lost messages are sent again; approval gates
that nobody decides expire. `deployments.runs.reap` is what the beat-scheduled reaper calls."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments import runs
from deployments.models import PipelineRun, RunStatus, StageRun, StageStatus

from . import mini as m


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing in the stage gets to handle it."""


@pytest.fixture
def ecs(aws, monkeypatch):
    return m.make_ecs(monkeypatch)


@pytest.fixture
def queued_stage(workspace, bob, ecs):
    """A run of a one-stage pipeline whose stage is queued (its message not delivered)."""
    m.add_pipeline(workspace, bob, "migrate", [m.run_task_stage(ecs, "RunMigrations", ecs.migrate_td)])
    run = runs.request_run(workspace, "migrate", bob)  # on-commit work is not run here
    runs.advance(run.pk)
    stage = run.stages.get()
    assert stage.status == StageStatus.QUEUED
    return stage


def stale(stage, seconds=3600):
    StageRun.objects.filter(pk=stage.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_a_stage_whose_worker_died_resumes_without_starting_its_task_again(queued_stage, aws_calls, inline):
    describes = []

    def killed_on_second_describe(body):
        describes.append(body)
        if len(describes) == 2:
            raise WorkerKilled()
        return False

    aws_calls.fail("ecs", "DescribeTasks", "-", "-", when=killed_on_second_describe)
    with pytest.raises(WorkerKilled):
        runs.execute_stage(queued_stage.pk, worker="lost-host:4242")
    queued_stage.refresh_from_db()
    assert queued_stage.status == StageStatus.RUNNING and queued_stage.result["task_arn"]
    assert runs.reap()["requeued"] == []  # its heartbeat is fresh: not dead yet

    stale(queued_stage)
    summary = inline(runs.reap)

    assert summary["requeued"] == [f"#{queued_stage.run_id} RunMigrations"]
    queued_stage.refresh_from_db()
    run = PipelineRun.objects.get(pk=queued_stage.run_id)
    assert run.status == RunStatus.SUCCEEDED
    assert queued_stage.attempts == 2 and queued_stage.worker != "lost-host:4242"
    assert len(aws_calls.of("ecs", "RunTask")) == 1
    messages = list(run.log_lines.values_list("message", flat=True))
    assert "RunMigrations: worker lost-host:4242 stopped answering; resuming on another worker" in messages
    assert "RunMigrations (run_task) started (attempt 2)" in messages


def test_a_task_started_just_before_the_crash_is_found_by_its_token(
    queued_stage, aws_calls, inline, monkeypatch
):
    """The worker died after RunTask answered, before the task's ARN was saved."""

    def crash_before_saving(ctx):
        raise WorkerKilled()

    with monkeypatch.context() as patch:
        patch.setattr(runs.StageContext, "save", crash_before_saving)
        with pytest.raises(WorkerKilled):
            runs.execute_stage(queued_stage.pk, worker="lost-host:1")
    queued_stage.refresh_from_db()
    assert "task_arn" not in queued_stage.result

    stale(queued_stage)
    inline(runs.reap)

    assert PipelineRun.objects.get(pk=queued_stage.run_id).status == RunStatus.SUCCEEDED
    assert len(aws_calls.of("ecs", "RunTask")) == 1
    assert aws_calls.of("ecs", "ListTasks")[0]["startedBy"].startswith("portal-stage-")


def test_a_stage_whose_worker_keeps_dying_fails_clearly(queued_stage, inline):
    StageRun.objects.filter(pk=queued_stage.pk).update(
        status=StageStatus.RUNNING, attempts=3, worker="lost-host:9"
    )
    stale(queued_stage)

    summary = inline(runs.reap)

    assert summary["failed"] == [f"#{queued_stage.run_id} RunMigrations"]
    run = PipelineRun.objects.get(pk=queued_stage.run_id)
    assert run.status == RunStatus.FAILED
    assert run.error == "RunMigrations: its worker died 3 times while running it (lost-host:9 last)"


def test_a_lost_message_is_sent_again(queued_stage, inline):
    StageRun.objects.filter(pk=queued_stage.pk).update(queued_at=timezone.now() - timedelta(hours=1))

    inline(runs.reap)

    assert PipelineRun.objects.get(pk=queued_stage.run_id).status == RunStatus.SUCCEEDED


def test_an_approval_gate_nobody_decides_expires(workspace, bob, run_pipeline, inline):
    m.add_pipeline(workspace, bob, "gated", [{"Name": "Promote", "Kind": "approval_gate", "Timeout": 60}])
    run = run_pipeline(workspace, "gated", bob)
    gate = run.stages.get()
    assert gate.status == StageStatus.WAITING
    assert runs.reap()["expired"] == []

    StageRun.objects.filter(pk=gate.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    summary = inline(runs.reap)

    assert summary["expired"] == [f"#{run.pk} Promote"]
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error == "Promote: no approver decided within 60 s"


def test_a_run_whose_next_step_was_lost_is_moved_on(workspace, bob, ecs, inline):
    m.add_pipeline(workspace, bob, "migrate", [m.run_task_stage(ecs, "RunMigrations", ecs.migrate_td)])
    run = runs.request_run(workspace, "migrate", bob)  # its advance message never ran
    assert run.status == RunStatus.QUEUED

    inline(runs.reap)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED


def test_a_deploy_whose_worker_died_between_services_does_not_deploy_the_first_again(
    workspace, bob, ecs, aws_calls, inline
):
    import time

    m.add_pipeline(workspace, bob, "deploy", [m.deploy_stage(ecs, [ecs.api, ecs.web])])
    run = runs.request_run(workspace, "deploy", bob)
    runs.advance(run.pk)
    stage = run.stages.get()
    killed = []

    def killed_while_deploying_web(body):
        if body.get("service") == ecs.web and not killed:
            killed.append(body)
            time.sleep(1)  # the api's deployment is answered (and recorded) meanwhile
            raise WorkerKilled()
        return False

    aws_calls.fail("ecs", "UpdateService", "-", "-", when=killed_while_deploying_web)
    with pytest.raises(WorkerKilled):
        runs.execute_stage(stage.pk, worker="lost-host:7")
    stage.refresh_from_db()
    api_deployment = stage.result["services"][ecs.api]["deployment"]
    assert list(stage.result["services"]) == [ecs.api]

    stale(stage)
    inline(runs.reap)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert [b["service"] for b in aws_calls.of("ecs", "UpdateService")].count(ecs.api) == 1
    stage.refresh_from_db()
    assert stage.result["services"][ecs.api]["deployment"] == api_deployment
    assert run.log_lines.filter(
        message=f"mini-api: deployment {api_deployment} was started by an earlier attempt"
    ).exists()
