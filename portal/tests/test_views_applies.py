"""The apply block: blockers in words, the Apply button, live progress by htmx polling,
queue position and cancel, retry/cancel of failed actions, the replacement offer."""

import pytest

from portal import approvals, changesets
from portal.models import ChangeSet, ChangeSetStatus
from workers.models import Action, ActionStatus, ApplyRun, RunStatus

from .test_views_changesets import BASE, url


@pytest.fixture
def approved(change_set, users):
    approvals.request_approval(change_set, users["editor"])
    approvals.approve(change_set, users["approver"], "ok")
    return change_set


@pytest.fixture
def failed_run(approved, users):
    """A run whose update of api-sg AWS refused for an immutable property."""
    run = ApplyRun.objects.create(
        workspace=approved.workspace,
        change_set=approved,
        requested_by=users["editor"],
        status=RunStatus.FAILED,
    )
    ChangeSet.objects.filter(pk=approved.pk).update(status=ChangeSetStatus.FAILED, merged_version=2)
    sg = approved.entries.get(name="api-sg")
    action = Action.objects.create(
        run=run,
        key="update:api-sg",
        kind="update",
        component_name="api-sg",
        component_id=sg.component_id,
        schema=sg.schema,
        status=ActionStatus.FAILED,
        error="AWS said no",
        immutable_property="VpcId",
        attempts=1,
    )
    return run, action


def test_it_lists_the_blockers_in_words_instead_of_the_button(seat, change_set):
    page = seat("editor").get(url(change_set, "apply-panel/"))
    assert page.context["apply_blockers"] == ["it needs 1 more approval(s) of 1"]
    text = page.content.decode()
    assert "It needs 1 more approval(s) of 1" in text and "/apply/" not in text


@pytest.mark.parametrize("who", ["approver", "editor"])
def test_it_offers_apply_when_nothing_blocks(seat, approved, who):
    page = seat(who).get(url(approved, "apply-panel/"))
    assert page.context["apply_blockers"] == [] and page.context["can_apply"]
    assert f'action="{url(approved, "apply/")}"' in page.content.decode()


def test_it_queues_an_apply_and_polls_its_progress(seat, approved, django_capture_on_commit_callbacks):
    client = seat("editor")
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url(approved, "apply/"), {"confirm": "1"}, follow=True)
    run = ApplyRun.objects.get(change_set=approved)
    assert run.status == RunStatus.QUEUED
    assert f"Apply #{run.pk} queued." in response.content.decode()
    text = client.get(url(approved, "apply-panel/")).content.decode()
    assert 'hx-trigger="every 2s" data-poll-hidden="20"' in text
    assert "next in line" in text and "Cancel this apply" in text
    partial = client.get(f"{BASE}/runs/{run.pk}/progress/?seen=queued", HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and b"<html" not in partial.content
    assert set(partial.context["progress"]["actions"]) == set(run.actions.all())


def test_it_refuses_an_apply_from_outsiders_and_says_why_to_members(seat, change_set):
    assert seat("outsider").post(url(change_set, "apply/")).status_code == 404
    response = seat("editor").post(url(change_set, "apply/"), {"confirm": "1"}, follow=True)
    assert "cannot be applied: it needs 1 more approval(s) of 1" in response.content.decode()
    htmx = seat("editor").post(url(change_set, "apply/"), {"confirm": "1"}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 409
    assert not ApplyRun.objects.exists()


def test_it_shows_the_queue_position_and_cancels_a_queued_run(
    seat, approved, users, django_capture_on_commit_callbacks
):
    from workers.apply import request_apply

    other = changesets.create_change_set(approved.workspace, users["editor"], "first in line")
    changesets.upsert_component(
        other, users["editor"], "first-sg", "AWS::EC2::SecurityGroup", {"GroupDescription": "a"}
    )
    approvals.request_approval(other, users["editor"])
    approvals.approve(other, users["approver"], "")
    with django_capture_on_commit_callbacks(execute=False):
        request_apply(other, users["editor"])
        run = request_apply(approved, users["editor"])
    client = seat("editor")
    assert "1 run of this workspace goes first" in client.get(url(approved, "apply-panel/")).content.decode()
    assert seat("outsider").post(f"{BASE}/runs/{run.pk}/cancel/").status_code == 404
    client.post(f"{BASE}/runs/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_it_stops_polling_and_reloads_when_the_run_finished(seat, failed_run):
    run, _ = failed_run
    client = seat("editor")
    reload = client.get(f"{BASE}/runs/{run.pk}/progress/?seen=running", HTTP_HX_REQUEST="true")
    assert reload.status_code == 204 and reload["HX-Refresh"] == "true"
    page = client.get(url(run.change_set, "apply-panel/"))
    assert "hx-trigger" not in page.content.decode().split('id="apply-progress"')[1].split(">")[0]


def test_it_hides_progress_from_outsiders(seat, failed_run):
    run, _ = failed_run
    assert seat("outsider").get(f"{BASE}/runs/{run.pk}/progress/").status_code == 404


def test_it_shows_failed_actions_with_their_error_and_the_way_out(seat, failed_run):
    run, action = failed_run
    approver = seat("approver").get(url(run.change_set, "apply-panel/")).content.decode()
    assert "AWS said no" in approver
    assert (
        f"{BASE}/actions/{action.pk}/retry/" in approver and f"{BASE}/actions/{action.pk}/cancel/" in approver
    )
    assert "Open a change set that replaces api-sg" in approver
    editor = seat("editor").get(url(run.change_set, "apply-panel/")).content.decode()
    assert f"/actions/{action.pk}/retry/" not in editor


def test_it_cancels_a_failed_action_for_approvers_only(seat, failed_run):
    run, action = failed_run
    assert seat("outsider").post(f"{BASE}/actions/{action.pk}/cancel/").status_code == 404
    assert seat("editor").post(f"{BASE}/actions/{action.pk}/cancel/").status_code == 403
    seat("approver").post(f"{BASE}/actions/{action.pk}/cancel/")
    action.refresh_from_db()
    assert action.status == ActionStatus.CANCELLED


def test_it_retries_a_failed_action(seat, failed_run, django_capture_on_commit_callbacks, monkeypatch):
    run, action = failed_run
    monkeypatch.setattr("workers.scheduler.dispatch", lambda run_id: None)
    assert seat("editor").post(f"{BASE}/actions/{action.pk}/retry/").status_code == 403
    response = seat("approver").post(f"{BASE}/actions/{action.pk}/retry/", follow=True)
    assert "update:api-sg: retrying." in response.content.decode()
    action.refresh_from_db()
    run.refresh_from_db()
    assert (action.status, run.status) == (ActionStatus.WAITING, RunStatus.RUNNING)


def test_it_explains_why_a_running_action_cannot_be_retried(seat, failed_run):
    run, action = failed_run
    Action.objects.filter(pk=action.pk).update(status=ActionStatus.RUNNING)
    htmx = seat("approver").post(f"{BASE}/actions/{action.pk}/retry/", HTTP_HX_REQUEST="true")
    assert (
        htmx.status_code == 409
        and b"only a failed, blocked or cancelled action can be retried" in htmx.content
    )


def test_it_opens_a_change_set_that_replaces_the_component(seat, failed_run, users):
    run, action = failed_run
    assert seat("outsider").post(f"{BASE}/actions/{action.pk}/replace/").status_code == 404
    response = seat("editor").post(f"{BASE}/actions/{action.pk}/replace/")
    cs = ChangeSet.objects.get(name="replace-api-sg")
    assert response["Location"] == url(cs)
    assert cs.entries.get(name="api-sg").replace and "AWS said no" in cs.problem


def test_it_applies_to_the_end_and_shows_every_action_succeeded(
    seat, eager_apply, approved, django_capture_on_commit_callbacks
):
    client = seat("editor")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url(approved, "apply/"), {"confirm": "1"})
    run = ApplyRun.objects.get(change_set=approved)
    assert run.status == RunStatus.SUCCEEDED, run.error
    panel = client.get(url(approved, "apply-panel/"))
    statuses = {a.key: a.status for a in panel.context["progress"]["actions"]}
    assert statuses and set(statuses.values()) == {"succeeded"}
    assert 'id="run-status">succeeded' in panel.content.decode()
    assert client.get(url(approved)).context["diff"]  # an applied change set still shows what it changed


@pytest.fixture
def eager_apply(settings, monkeypatch, shop):
    """Celery tasks run inline, on commit, against moto."""
    from moto import mock_aws

    from portal.celery import app
    from portal.models import Component

    app.conf.task_always_eager = True
    # Real AWS ids for the HEAD components the change set updates (before it is approved:
    # the ids feed its resolved plan, and a plan that moves after approval is stale).
    with mock_aws():
        import boto3

        ec2 = boto3.client("ec2", "us-east-1")
        vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        group = ec2.create_security_group(GroupName="api", Description="api", VpcId=vpc_id)["GroupId"]
        vpc = Component.objects.get(name="vpc")
        vpc.resource_id, vpc.resource_value, vpc.applied = (
            vpc_id,
            {"VpcId": vpc_id, "CidrBlock": "10.0.0.0/16"},
            {"CidrBlock": "10.0.0.0/16"},
        )
        vpc.save()
        from portal import graph

        graph.propagate(vpc.workspace, {"vpc"}, roots=("resource_value",))
        sg = Component.objects.get(name="api-sg")
        sg.resource_id, sg.applied = group, {"GroupDescription": "api", "VpcId": vpc_id}
        sg.resource_value = {"GroupId": group, "VpcId": vpc_id, "GroupDescription": "api"}
        sg.save()
        Component.objects.filter(name="db").update(resource_id="")
        yield
    app.conf.task_always_eager = False


def test_an_apply_without_confirmation_asks_for_it_with_what_it_destroys(seat, approved, users):
    bob = users["editor"]
    changesets.delete_component(approved, bob, "db")
    approvals.approve(approved, users["approver"], "ok")
    panel = seat("editor").get(url(approved, "apply-panel/")).content.decode()
    assert 'data-confirm="apply-dialog"' in panel and '<dialog id="apply-dialog"' in panel
    assert '<input type="hidden" name="confirm" value="1">' in panel

    page = seat("editor").post(url(approved, "apply/"))
    body = page.content.decode()
    assert page.status_code == 200 and not ApplyRun.objects.exists()
    summary = body.split('id="apply-summary"')[1].split("</ul>")[0]
    assert "kind-delete" in summary and "<strong>db</strong>" in summary and "api-sg" not in summary
    assert '<input type="hidden" name="confirm" value="1">' in body


def test_the_confirmation_page_says_why_an_apply_is_blocked(seat, change_set):
    body = seat("editor").post(url(change_set, "apply/")).content.decode()
    assert "cannot be applied yet" in body and "It needs 1 more approval(s) of 1" in body
    assert 'name="confirm"' not in body
