"""Every apply leaves a build log: written once the run's end has committed, and by the
reaper when that never happened (the worker died in between, or writing it failed)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments import runs
from deployments.models import BuildLog
from portal import approvals, changesets
from workers.models import ApplyRun, RunStatus


@pytest.fixture
def applied(workspace, bob, alice, applier):
    cs = changesets.create_change_set(workspace, bob, "audit logs")
    changesets.upsert_component(
        cs, bob, "audit", "AWS::Logs::LogGroup", {"LogGroupName": "/portal/audit", "RetentionInDays": 7}
    )
    approvals.request_approval(cs, bob)
    approvals.approve(cs, alice, "fine")
    run = applier(cs, alice)
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def ended_ago(run, seconds):
    ApplyRun.objects.filter(pk=run.pk).update(finished_at=timezone.now() - timedelta(seconds=seconds))


def test_an_apply_writes_its_build_log_once_its_end_is_committed(applied):
    log = BuildLog.objects.get(apply_runs=applied)
    assert log.key == f"apply:{applied.pk}" and log.status == "completed"
    assert [r.name for r in log.component_rows.all()] == ["audit"]


def test_the_reaper_writes_the_build_log_an_apply_ended_without(applied):
    written = BuildLog.objects.get(apply_runs=applied)
    told = (written.title, written.data["phases"][0]["components"]["created"][0]["name"])
    written.delete()  # as if the worker died between the run's end and its log

    assert runs.reap()["build_logs"] == []  # the writer may still be at it: left alone
    ended_ago(applied, 600)
    assert runs.reap()["build_logs"] == [applied.pk]

    log = BuildLog.objects.get(apply_runs=applied)
    assert (log.title, log.data["phases"][0]["components"]["created"][0]["name"]) == told
    assert runs.reap()["build_logs"] == []  # once


def test_the_reaper_leaves_old_applies_and_those_that_never_started(applied, workspace, bob):
    BuildLog.objects.filter(apply_runs=applied).delete()
    ended_ago(applied, 2 * 3600)  # given up on: each try is logged, not repeated for ever
    never_started = ApplyRun.objects.create(
        workspace=workspace, requested_by=bob, status=RunStatus.FAILED, error="HEAD moved"
    )
    ended_ago(never_started, 600)

    assert runs.reap()["build_logs"] == []
    assert not BuildLog.objects.filter(kind="apply").exists()
