"""The deployment pages, each from three seats: alice (approver), bob (editor), mallory
(outsider: a 404, never a hint that the workspace exists)."""

import json

import pytest
from django.urls import reverse

from deployments import runs
from deployments.models import PipelineRun, RunStatus, StageStatus
from portal.models import AuditEvent, Component

from . import mini as m

GATE = [{"Name": "Promote", "Kind": "approval_gate", "Parameters": {"Message": "Ship the new menu?"}}]


@pytest.fixture
def gated(workspace, bob):
    return m.add_pipeline(workspace, bob, "release", GATE)


@pytest.fixture
def waiting_run(workspace, bob, gated, run_pipeline):
    run = run_pipeline(workspace, gated, bob)
    assert run.stages.get().status == StageStatus.WAITING
    return run


def get(client, user, name, *args, **params):
    client.force_login(user)
    return client.get(reverse(f"deployments:{name}", args=args), params)


def post(client, user, name, *args, **data):
    client.force_login(user)
    return client.post(reverse(f"deployments:{name}", args=args), data)


@pytest.mark.parametrize("seat", ["approver", "editor"])
def test_it_lists_the_pipelines_and_runs_for_members(client, users, workspace, waiting_run, seat):
    response = get(client, users[seat], "index", workspace.slug)
    assert response.status_code == 200
    body = response.content.decode()
    assert "release" in body and "Promote" in body and f"#{waiting_run.pk} release" in body
    assert ("Run release" in body) is True  # approvers and editors may run it


def test_it_hides_deployments_from_outsiders(client, users, workspace, waiting_run):
    mallory = users["outsider"]
    stage = waiting_run.stages.get()
    for name, args in [
        ("index", [workspace.slug]),
        ("pipeline", [workspace.slug, "release"]),
        ("pipeline-export", [workspace.slug, "release"]),
        ("run", [workspace.slug, waiting_run.pk]),
        ("run-live", [workspace.slug, waiting_run.pk]),
    ]:
        assert get(client, mallory, name, *args).status_code == 404, name
    assert post(client, mallory, "pipeline-run", workspace.slug, "release").status_code == 404
    assert post(client, mallory, "stage-approve", workspace.slug, waiting_run.pk, stage.pk).status_code == 404
    assert post(client, mallory, "stage-reject", workspace.slug, waiting_run.pk, stage.pk).status_code == 404
    assert PipelineRun.objects.count() == 1


def test_the_pipeline_page_shows_its_stages_as_written(client, users, workspace, gated):
    for seat in ("approver", "editor"):
        response = get(client, users[seat], "pipeline", workspace.slug, "release")
        assert response.status_code == 200
        assert "Ship the new menu?" in response.content.decode()
    assert get(client, users["approver"], "pipeline", workspace.slug, "nope").status_code == 404


@pytest.mark.parametrize("seat", ["approver", "editor"])
def test_members_who_edit_can_run_a_pipeline(client, users, workspace, gated, seat):
    response = post(client, users[seat], "pipeline-run", workspace.slug, "release", confirm="1")
    run = PipelineRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "deployments:run", args=[workspace.slug, run.pk]
    )
    assert run.requested_by == users[seat] and run.status == RunStatus.QUEUED


def test_a_run_without_confirmation_asks_for_it_with_the_stages(client, users, workspace, gated):
    page = get(client, users["editor"], "pipeline", workspace.slug, "release").content.decode()
    assert 'data-confirm="run-dialog"' in page and '<dialog id="run-dialog"' in page

    response = post(client, users["editor"], "pipeline-run", workspace.slug, "release")
    body = response.content.decode()
    assert response.status_code == 200 and not PipelineRun.objects.exists()
    stages = body.split('class="run-stages"')[1].split("</ol>")[0]
    assert "<strong>Promote</strong>" in stages and "Approval gate" in stages
    assert '<input type="hidden" name="confirm" value="1">' in body


def test_it_exports_the_pipeline_as_step_functions(client, users, workspace, gated):
    for seat in ("approver", "editor"):
        response = get(client, users[seat], "pipeline-export", workspace.slug, "release")
        assert response.status_code == 200
        assert response["Content-Disposition"] == 'attachment; filename="release.asl.json"'
        definition = json.loads(response.content)
        assert definition["StartAt"] == "Promote"
        assert definition["States"]["Promote"]["Resource"] == "arn:aws:states:::sns:publish.waitForTaskToken"


def test_the_run_page_polls_while_running_and_stops_when_finished(
    client, users, workspace, waiting_run, inline
):
    for seat in ("approver", "editor"):
        response = get(client, users[seat], "run", workspace.slug, waiting_run.pk)
        body = response.content.decode()
        assert response.status_code == 200
        assert (
            'hx-trigger="every 2s' in body
            and reverse("deployments:run-live", args=[workspace.slug, waiting_run.pk]) in body
        )
        assert "Ship the new menu?" in body
        assert ("Approve</button>" in body) is (seat == "approver")
    inline(runs.decide_gate, waiting_run.stages.get(), users["approver"], True)
    live = get(client, users["editor"], "run-live", workspace.slug, waiting_run.pk).content.decode()
    assert 'data-status="succeeded"' in live and "hx-trigger" not in live
    assert "Promote: approved by alice" in live
    assert "Deployment #" in live and "Build log" in live  # the deployment's build log is linked


def test_only_approvers_decide_an_approval_gate(
    client, users, workspace, waiting_run, django_capture_on_commit_callbacks, eager_celery
):
    stage = waiting_run.stages.get()
    assert (
        post(client, users["editor"], "stage-approve", workspace.slug, waiting_run.pk, stage.pk).status_code
        == 403
    )
    stage.refresh_from_db()
    assert stage.status == StageStatus.WAITING
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client,
            users["approver"],
            "stage-reject",
            workspace.slug,
            waiting_run.pk,
            stage.pk,
            comment="menu not ready",
        )
    assert response.status_code == 302
    waiting_run.refresh_from_db()
    assert (
        waiting_run.status == RunStatus.FAILED
        and waiting_run.error == "Promote: rejected by alice: menu not ready"
    )
    assert AuditEvent.objects.filter(verb="deployment.gate_rejected", actor=users["approver"]).exists()


def test_a_refused_decision_comes_back_as_a_message(client, users, workspace, waiting_run):
    stage = waiting_run.stages.get()
    response = post(client, users["approver"], "stage-reject", workspace.slug, waiting_run.pk, stage.pk)
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Say why you stop the deployment" in page


def test_the_home_page_lists_failed_deployments_until_the_pipeline_runs_again(
    client, users, workspace, gated
):
    client.force_login(users["approver"])
    assert f'hx-get="{reverse("deployments:failed")}"' in client.get("/").content.decode()
    pipeline_id = Component.objects.get(workspace=workspace, name=gated).id
    common = {"workspace": workspace, "pipeline": gated, "pipeline_id": pipeline_id}
    failed = PipelineRun.objects.create(**common, status=RunStatus.FAILED, error="Promote: rejected")
    panel = get(client, users["editor"], "failed").content.decode()
    assert f"#{failed.pk} release" in panel and "Promote: rejected" in panel
    assert "No failed deployments." in get(client, users["outsider"], "failed").content.decode()
    PipelineRun.objects.create(**common, status=RunStatus.QUEUED)
    assert "No failed deployments." in get(client, users["editor"], "failed").content.decode()
