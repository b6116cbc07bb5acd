import boto3
import pytest

from portal import approvals, changesets
from portal.errors import ConflictError
from portal.models import AuditEvent, ChangeSetStatus, Component
from portal.tests.factories import src
from workers.models import ActionStatus, RunStatus


@pytest.fixture
def bob(users):
    return users["editor"]


@pytest.fixture
def alice(users):
    return users["approver"]


def approved(cs, bob, alice):
    approvals.request_approval(cs, bob)
    approvals.approve(cs, alice, "looks right")
    return cs


def test_it_applies_in_dependency_order_and_propagates_observed_values(workspace, bob, alice, applier):
    cs = changesets.create_change_set(workspace, bob, "network")
    changesets.upsert_component(cs, bob, "vpc", "AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"})
    changesets.upsert_component(
        cs,
        bob,
        "sg",
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": "api",
            "VpcId": src("vpc", "/resource_value/VpcId"),
            "SecurityGroupIngress": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 3000,
                    "ToPort": 3000,
                    "SourceSecurityGroupId": src("sg", "/resource_value/GroupId"),
                }
            ],
        },
    )
    run = applier(approved(cs, bob, alice), alice)

    assert run.status == RunStatus.SUCCEEDED, [(a.key, a.error) for a in run.actions.all()]
    vpc, sg = Component.objects.get(name="vpc"), Component.objects.get(name="sg")
    assert sg.domain["VpcId"] == vpc.resource_value["VpcId"] == vpc.resource_id
    group = boto3.client("ec2", "us-east-1").describe_security_groups(GroupIds=[sg.resource_id])[
        "SecurityGroups"
    ][0]
    assert group["VpcId"] == vpc.resource_id
    assert [p["GroupId"] for r in group["IpPermissions"] for p in r["UserIdGroupPairs"]] == [sg.resource_id]
    [first, second] = run.actions.order_by("started_at")
    assert (first.key, second.key) == ("create:vpc", "create:sg")
    assert second.result["follow_up_update"] is True
    cs.refresh_from_db()
    assert cs.status == ChangeSetStatus.APPLIED
    assert AuditEvent.objects.filter(change_set=cs, verb="apply.succeeded").exists()


def test_it_refuses_an_apply_without_approval(workspace, bob, applier):
    cs = changesets.create_change_set(workspace, bob, "unapproved")
    changesets.upsert_component(cs, bob, "vpc", "AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"})
    with pytest.raises(ConflictError, match="needs 1 more approval"):
        applier(cs, bob)


def test_it_fails_an_action_with_awss_message_and_blocks_only_its_dependents(workspace, bob, alice, applier):
    cs = changesets.create_change_set(workspace, bob, "bad cidr")
    changesets.upsert_component(cs, bob, "vpc", "AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"})
    changesets.upsert_component(
        cs,
        bob,
        "subnet",
        "AWS::EC2::Subnet",
        {"VpcId": src("vpc", "/resource_value/VpcId"), "CidrBlock": "192.168.0.0/24"},
    )  # outside the VPC
    changesets.upsert_component(
        cs,
        bob,
        "sg",
        "AWS::EC2::SecurityGroup",
        {"GroupDescription": "x", "VpcId": src("subnet", "/resource_value/VpcId")},
    )
    changesets.upsert_component(cs, bob, "logs", "AWS::Logs::LogGroup", {"LogGroupName": "/tonys/api"})
    run = applier(approved(cs, bob, alice), alice)
    status = {a.key: a for a in run.actions.all()}
    assert run.status == RunStatus.FAILED
    assert status["create:vpc"].status == status["create:logs"].status == ActionStatus.SUCCEEDED
    assert status["create:subnet"].status == ActionStatus.FAILED
    assert "InvalidSubnet.Range" in status["create:subnet"].error
    assert status["create:sg"].status == ActionStatus.BLOCKED
    assert "create:subnet did not succeed" in status["create:sg"].error


def test_a_queued_apply_whose_plan_heads_move_changed_does_not_start(
    workspace, bob, alice, applier, django_capture_on_commit_callbacks
):
    from workers import apply
    from workers.models import ApplyRun

    first = changesets.create_change_set(workspace, bob, "logs")
    changesets.upsert_component(first, bob, "api-logs", "AWS::Logs::LogGroup", {"RetentionInDays": 7})
    applier(approved(first, bob, alice), alice)
    reader = changesets.create_change_set(workspace, bob, "reader")
    changesets.upsert_component(
        reader,
        bob,
        "web-logs",
        "AWS::Logs::LogGroup",
        {"RetentionInDays": src("api-logs", "/domain/RetentionInDays")},
    )
    running = ApplyRun.objects.create(workspace=workspace, status=RunStatus.RUNNING)  # holds the apply lock
    queued = applier(approved(reader, bob, alice), alice)
    assert queued.status == RunStatus.QUEUED
    longer = changesets.create_change_set(workspace, bob, "longer")
    changesets.set_property(longer, bob, "api-logs", "/RetentionInDays", 30)
    changesets.merge(approved(longer, bob, alice), alice)  # HEAD moves under the queued apply

    ApplyRun.objects.filter(pk=running.pk).update(status=RunStatus.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=True):
        apply.start_next(workspace.pk)
    queued.refresh_from_db()
    assert queued.status == RunStatus.FAILED
    assert "HEAD moved and the plan changed since the apply was requested" in queued.error
    assert not Component.objects.filter(name="web-logs").exists()  # nothing merged, nothing created


def test_a_recorded_request_hides_a_value_derived_from_a_producers_secret(workspace, bob, alice, applier):
    from portal.secrets import MASK

    cs = changesets.create_change_set(workspace, bob, "dsn")
    changesets.upsert_component(
        cs,
        bob,
        "dsn",
        "Portal::StringTemplate",
        {"Template": "postgres://app:{{ Password }}@db/shop", "Variables": {"Password": "hunter2-hunter2"}},
    )
    changesets.upsert_component(
        cs,
        bob,
        "api-logs",
        "AWS::Logs::LogGroup",
        {"LogGroupName": "/api", "Tags": [{"Key": "dsn", "Value": src("dsn", "/domain/Rendered/Value")}]},
    )
    run = applier(approved(cs, bob, alice), alice)

    assert run.status == RunStatus.SUCCEEDED, [(a.key, a.error) for a in run.actions.all()]
    sent = run.actions.get(key="create:api-logs").request["create"]
    assert sent["Tags"] == [{"Key": "dsn", "Value": MASK}]  # the whole value, not only the URL's password
    assert sent["LogGroupName"] == "/api"
