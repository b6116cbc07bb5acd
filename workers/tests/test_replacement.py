"""Replacements as CloudFormation runs them (create, move the consumers, delete the old one
last) and task-definition revisions that stay ACTIVE for a rollback."""

import boto3
import pytest
from botocore.stub import Stubber

from portal import approvals, changesets
from portal.models import Component
from portal.tests.factories import src
from workers.aws import botocore_config
from workers.models import RunStatus
from workers.providers.base import provider_for

REGION = "us-east-1"
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/api:{}"


@pytest.fixture
def bob(users):
    return users["editor"]


@pytest.fixture
def alice(users):
    return users["approver"]


def apply(applier, cs, bob, alice):
    approvals.request_approval(cs, bob)
    approvals.approve(cs, alice, "ok")
    run = applier(cs, alice)
    assert run.status == RunStatus.SUCCEEDED, [(a.key, a.error) for a in run.actions.all()]
    return run


def test_it_replaces_a_target_group_a_listener_uses_before_deleting_the_old_one(
    workspace, bob, alice, applier
):
    cs = changesets.create_change_set(workspace, bob, "alb")
    changesets.upsert_component(cs, bob, "vpc", "AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"})
    for i, az in enumerate(["us-east-1a", "us-east-1b"]):
        changesets.upsert_component(
            cs,
            bob,
            f"subnet-{i}",
            "AWS::EC2::Subnet",
            {
                "VpcId": src("vpc", "/resource_value/VpcId"),
                "CidrBlock": f"10.0.{i}.0/24",
                "AvailabilityZone": az,
            },
        )
    changesets.upsert_component(
        cs,
        bob,
        "alb",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "Type": "application",
            "Scheme": "internal",
            "Subnets": [src(f"subnet-{i}", "/resource_value/SubnetId") for i in range(2)],
        },
    )
    changesets.upsert_component(
        cs,
        bob,
        "tg",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"Port": 80, "Protocol": "HTTP", "TargetType": "ip", "VpcId": src("vpc", "/resource_value/VpcId")},
    )
    changesets.upsert_component(
        cs,
        bob,
        "listener",
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "LoadBalancerArn": src("alb", "/resource_value/LoadBalancerArn"),
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [
                {"Type": "forward", "TargetGroupArn": src("tg", "/resource_value/TargetGroupArn")}
            ],
        },
    )
    apply(applier, cs, bob, alice)
    old_tg = Component.objects.get(name="tg").resource_id

    cs = changesets.create_change_set(workspace, bob, "tg on 8080")
    changesets.set_property(cs, bob, "tg", "/Port", 8080)
    run = apply(applier, cs, bob, alice)

    # Deleting first would have met ResourceInUse: the listener forwarded to the old group.
    assert [a.key for a in run.actions.order_by("finished_at")] == [
        "replace:tg",
        "update:listener",
        "cleanup:tg",
    ]
    new_tg = Component.objects.get(name="tg").resource_id
    elbv2 = boto3.client("elbv2", region_name=REGION)
    arns = [t["TargetGroupArn"] for t in elbv2.describe_target_groups()["TargetGroups"]]
    assert new_tg != old_tg and arns == [new_tg]
    [listener] = elbv2.describe_listeners(ListenerArns=[Component.objects.get(name="listener").resource_id])[
        "Listeners"
    ]
    assert listener["DefaultActions"][0]["TargetGroupArn"] == new_tg


def test_it_keeps_the_newest_revisions_and_those_a_service_runs(settings):
    """AWS refuses UpdateService to an INACTIVE revision (moto accepts it), so a rollback
    target must stay ACTIVE: the prune spares the newest N and the ones services run."""
    ecs = boto3.client("ecs", region_name=REGION, config=botocore_config())
    stub = Stubber(ecs)
    stub.add_response(
        "list_task_definitions",
        {"taskDefinitionArns": [ARN.format(n) for n in range(7, 0, -1)]},
        {"familyPrefix": "api", "status": "ACTIVE", "sort": "DESC"},
    )
    stub.add_response(
        "deregister_task_definition",
        {"taskDefinition": {"taskDefinitionArn": ARN.format(1), "status": "INACTIVE"}},
        {"taskDefinition": ARN.format(1)},
    )
    provider = provider_for("AWS::ECS::TaskDefinition", lambda service: ecs)
    with stub:
        gone = provider.prune(ARN.format(7), 5, in_use={ARN.format(2)})
    stub.assert_no_pending_responses()
    assert gone == [ARN.format(1)]


def test_it_registers_revisions_in_one_family_and_prunes_after_the_apply(
    workspace, bob, alice, applier, settings
):
    settings.PORTAL_TASK_DEFINITION_KEEP = 2
    container = {"Name": "api", "Image": "api:1", "Cpu": 256, "Memory": 512}
    cs = changesets.create_change_set(workspace, bob, "task")
    changesets.upsert_component(
        cs, bob, "api-task", "AWS::ECS::TaskDefinition", {"ContainerDefinitions": [container]}
    )
    apply(applier, cs, bob, alice)
    first = Component.objects.get(name="api-task").resource_id
    for image in ("api:2", "api:3"):
        cs = changesets.create_change_set(workspace, bob, image)
        changesets.set_property(cs, bob, "api-task", "/ContainerDefinitions/0/Image", image)
        run = apply(applier, cs, bob, alice)
        assert [a.kind for a in run.actions.all()] == ["revision", "cleanup"]
    ecs = boto3.client("ecs", region_name=REGION)
    latest = Component.objects.get(name="api-task").resource_value
    assert latest["Revision"] == 3 and latest["Family"] == first.rsplit("/", 1)[1].split(":")[0]
    assert ecs.describe_task_definition(taskDefinition=first)["taskDefinition"]["status"] == "INACTIVE"
    active = ecs.list_task_definitions(familyPrefix=latest["Family"], status="ACTIVE")["taskDefinitionArns"]
    assert len(active) == 2
