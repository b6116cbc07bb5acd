"""The seed's story end to end against moto: the Tony's Chips workspace applied, then
the seven change sets proposed, approved and applied in order, through the engine."""

import json
from pathlib import Path

import boto3
import pytest
from django.conf import settings

from portal import approvals, changesets
from portal.models import Component
from portal.spec import load_spec
from workers.models import RunStatus

EXAMPLE = Path(settings.BASE_DIR) / "examples" / "tonys-chips"


@pytest.fixture(autouse=True)
def managed_policies(monkeypatch):
    """AWS managed policies (AmazonECSTaskExecutionRolePolicy) exist on AWS; moto loads
    them only when asked, and it is slow, so only these tests ask."""
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")


@pytest.fixture(autouse=True)
def services_running(monkeypatch):
    """moto starts no tasks: it reports a service's tasks running and its rollout COMPLETED
    from this variable (read when the service is created); the seed's services run 2 to 4."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "4")


def propose(workspace, bob, alice, filename):
    spec = load_spec(EXAMPLE / filename)
    info = spec.change_set or {}
    cs = changesets.create_change_set(
        workspace, bob, info.get("name", filename), info.get("problem", ""), info.get("solution", "")
    )
    changesets.apply_spec(cs, bob, spec)
    approvals.request_approval(cs, bob)
    approvals.approve(cs, alice, "ok")
    return cs


def applied(applier, cs, user):
    run = applier(cs, user)
    errors = [(a.key, a.error) for a in run.actions.all() if a.error]
    assert run.status == RunStatus.SUCCEEDED, errors
    return run


def head(name):
    return Component.objects.get(name=name)


@pytest.fixture
def tonys_chips(workspace, users, applier):
    bob, alice = users["editor"], users["approver"]
    cs = changesets.create_change_set(workspace, bob, "bootstrap")
    changesets.apply_spec(cs, bob, load_spec(EXAMPLE / "workspace.yaml"))
    approvals.request_approval(cs, bob)
    approvals.approve(cs, alice)
    return applied(applier, cs, alice)


def test_it_applies_the_whole_tonys_chips_workspace(tonys_chips):
    ecs = boto3.client("ecs", region_name="us-east-1")
    api = head("sandbox-tonys-chips-api-service")
    [service] = ecs.describe_services(cluster="tonys-chips-sandbox", services=[api.resource_id])["services"]
    assert service["desiredCount"] == 2
    assert service["loadBalancers"][0]["targetGroupArn"] == head("sandbox-tonys-chips-api-tg").resource_id
    definition = json.loads(head("sandbox-step-functions-definition").domain["Rendered"]["Value"])
    machine = head("sandbox-tonys-chips-deploy-state-machine")
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    assert (
        json.loads(sfn.describe_state_machine(stateMachineArn=machine.resource_id)["definition"])
        == definition
    )


def test_it_walks_the_seeds_service_discovery_migration(tonys_chips, workspace, users, applier):
    bob, alice = users["editor"], users["approver"]
    ecs = boto3.client("ecs", region_name="us-east-1")
    elbv2 = boto3.client("elbv2", region_name="us-east-1")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    old_tg = head("sandbox-tonys-chips-api-tg").resource_id
    old_service_arn = head("sandbox-tonys-chips-api-service").resource_id

    applied(applier, propose(workspace, bob, alice, "01-update-smoke-test-to-use-e2e.yaml"), alice)

    run = applied(applier, propose(workspace, bob, alice, "02-migrate-to-service-discovery.yaml"), alice)
    order = [a.key for a in run.actions.order_by("finished_at")]
    assert order.index("delete:sandbox-tonys-chips-api-listener-rule") < order.index(
        "delete:sandbox-tonys-chips-api-tg"
    )
    assert order.index("update:sandbox-tonys-chips-api-service") < order.index(
        "delete:sandbox-tonys-chips-api-tg"
    )
    assert not elbv2.describe_target_groups()["TargetGroups"] or old_tg not in [
        tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]
    ]
    sg = head("sandbox-tonys-chips-api-sg-v2")
    [group] = ec2.describe_security_groups(GroupIds=[sg.resource_id])["SecurityGroups"]
    self_rules = [
        p
        for p in group["IpPermissions"]
        if any(g["GroupId"] == sg.resource_id for g in p["UserIdGroupPairs"])
    ]
    assert self_rules and self_rules[0]["FromPort"] == 3000

    run = applied(
        applier, propose(workspace, bob, alice, "03-recreate-api-service-with-service-discovery.yaml"), alice
    )
    replace = run.actions.get(key="replace:sandbox-tonys-chips-api-service")
    assert replace.kind == "replace" and replace.result["delete"]["done"] and replace.result["create"]
    api = head("sandbox-tonys-chips-api-service")
    assert replace.result["delete"]["physical_id"] == old_service_arn
    registry_arn = head("sandbox-tonys-chips-api-service-discovery").resource_value["Arn"]
    [service] = ecs.describe_services(cluster="tonys-chips-sandbox", services=[api.resource_id])["services"]
    assert service["status"] == "ACTIVE"
    assert service["serviceRegistries"][0]["registryArn"] == registry_arn
    assert service["loadBalancers"] == []

    for filename in [
        "04-fix-smoke-test-urls.yaml",
        "05-scale-up-api-and-update-web-service.yaml",
        "06-fix-health-checks-use-nodejs.yaml",
        "07-fix-step-functions-graceful-deployment.yaml",
    ]:
        applied(applier, propose(workspace, bob, alice, filename), alice)

    smoke = head("sandbox-tonys-chips-smoke-test-task").domain["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in smoke["Environment"]}
    assert env["WEB_URL"].endswith(head("sandbox-tonys-chips-alb").resource_value["DNSName"])
    machine = head("sandbox-tonys-chips-deploy-state-machine")
    definition = boto3.client("stepfunctions", region_name="us-east-1").describe_state_machine(
        stateMachineArn=machine.resource_id
    )["definition"]
    assert "DesiredCount" not in definition
