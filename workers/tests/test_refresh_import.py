import json

import boto3
import pytest
from django.core.management import CommandError, call_command

from portal import approvals, changesets
from portal.models import Component, ResourceStatus
from workers.models import RunStatus
from workers.refresh import refresh_workspace


@pytest.fixture
def bob(users):
    return users["editor"]


@pytest.fixture
def alice(users):
    return users["approver"]


def apply_new(workspace, bob, alice, applier, components):
    cs = changesets.create_change_set(workspace, bob, "setup")
    for name, (schema, props) in components.items():
        changesets.upsert_component(cs, bob, name, schema, props)
    approvals.request_approval(cs, bob)
    approvals.approve(cs, alice)
    run = applier(cs, alice)
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_it_marks_drift_per_path_when_aws_was_changed_by_hand(workspace, bob, alice, applier):
    apply_new(
        workspace,
        bob,
        alice,
        applier,
        {
            "logs": ("AWS::Logs::LogGroup", {"LogGroupName": "/tonys/api", "RetentionInDays": 7}),
            "vpc": ("AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16", "EnableDnsHostnames": True}),
        },
    )
    boto3.client("logs", region_name="us-east-1").put_retention_policy(
        logGroupName="/tonys/api", retentionInDays=30
    )

    result = refresh_workspace(workspace.pk)

    assert result == {"read": 2, "drifted": ["logs"]}
    logs = Component.objects.get(name="logs")
    assert logs.resource_status == ResourceStatus.DRIFTED
    assert logs.drift == [{"path": "/RetentionInDays", "desired": 7, "observed": 30}]
    assert logs.resource_value["RetentionInDays"] == 30
    assert Component.objects.get(name="vpc").resource_status == ResourceStatus.OK


def test_it_reports_a_resource_deleted_outside_the_portal(workspace, bob, alice, applier):
    apply_new(
        workspace, bob, alice, applier, {"logs": ("AWS::Logs::LogGroup", {"LogGroupName": "/tonys/gone"})}
    )
    boto3.client("logs", region_name="us-east-1").delete_log_group(logGroupName="/tonys/gone")
    assert refresh_workspace(workspace.pk)["drifted"] == ["logs"]
    assert "deleted outside the portal" in Component.objects.get(name="logs").drift[0]["observed"]


def test_workspace_refresh_reads_aws_and_marks_drift_from_the_command_line(
    workspace, bob, alice, applier, capsys
):
    apply_new(
        workspace,
        bob,
        alice,
        applier,
        {"logs": ("AWS::Logs::LogGroup", {"LogGroupName": "/tonys/cli", "RetentionInDays": 7})},
    )
    logs = boto3.client("logs", region_name="us-east-1")
    logs.put_retention_policy(logGroupName="/tonys/cli", retentionInDays=30)

    call_command("workspace", "refresh", "tonys-chips", "--wait")

    assert capsys.readouterr().out == "Refreshed 1 resources of tonys-chips; drifted: logs.\n"
    logs_component = Component.objects.get(name="logs")
    assert logs_component.resource_status == ResourceStatus.DRIFTED
    assert logs_component.drift == [{"path": "/RetentionInDays", "desired": 7, "observed": 30}]
    call_command("workspace", "refresh", "tonys-chips", "--wait", "--json")
    assert json.loads(capsys.readouterr().out) == {"workspace": "tonys-chips", "read": 1, "drifted": ["logs"]}


def test_workspace_refresh_without_wait_leaves_it_to_the_workers(workspace, bob, alice, applier, capsys):
    apply_new(
        workspace, bob, alice, applier, {"logs": ("AWS::Logs::LogGroup", {"LogGroupName": "/tonys/queued"})}
    )
    boto3.client("logs", region_name="us-east-1").delete_log_group(logGroupName="/tonys/queued")

    call_command("workspace", "refresh", "tonys-chips")  # Celery runs tasks inline in these tests

    assert capsys.readouterr().out == "Refresh of tonys-chips queued for the workers.\n"
    assert Component.objects.get(name="logs").resource_status == ResourceStatus.DRIFTED
    with pytest.raises(CommandError, match="No workspace 'nope'") as err:
        call_command("workspace", "refresh", "nope")
    assert err.value.returncode == 3


def test_it_imports_an_existing_resource_and_binds_it_without_creating_another(
    workspace, bob, alice, applier, capsys
):
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName="/legacy/web")
    logs.put_retention_policy(logGroupName="/legacy/web", retentionInDays=14)
    cs = changesets.create_change_set(workspace, bob, "adopt legacy logs")
    call_command(
        "component",
        "import",
        "--workspace",
        "tonys-chips",
        "--change-set",
        str(cs.pk),
        "--type",
        "AWS::Logs::LogGroup",
        "--id",
        "/legacy/web",
        "--name",
        "legacy-web-logs",
        "--user",
        "bob",
    )
    assert "now imports /legacy/web as legacy-web-logs" in capsys.readouterr().out
    entry = cs.entries.get(name="legacy-web-logs")
    assert entry.properties == {"LogGroupName": "/legacy/web", "RetentionInDays": 14}

    approvals.request_approval(cs, bob)
    approvals.approve(cs, alice)
    run = applier(cs, alice)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert [a.kind for a in run.actions.all()] == ["import"]
    component = Component.objects.get(name="legacy-web-logs")
    assert component.resource_id == "/legacy/web" and component.resource_status == ResourceStatus.OK
    assert len(logs.describe_log_groups(logGroupNamePrefix="/legacy/web")["logGroups"]) == 1


def test_it_refuses_to_import_what_aws_does_not_have(workspace, bob, aws):
    cs = changesets.create_change_set(workspace, bob, "adopt")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No AWS::Logs::LogGroup '/nope'"):
        call_command(
            "component",
            "import",
            "--workspace",
            "tonys-chips",
            "--change-set",
            str(cs.pk),
            "--type",
            "AWS::Logs::LogGroup",
            "--id",
            "/nope",
            "--user",
            "bob",
        )
    assert not cs.entries.exists()
