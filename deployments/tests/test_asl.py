"""Exporting a pipeline as a Step Functions state machine (ASL) equivalent to what it runs."""

import json
import re

import boto3
import pytest

from deployments import asl, pipelines

from . import mini as m
from .conftest import PIPELINE


def check_machine(definition, where="top"):
    """Every transition of the definition (and of each Parallel branch) lands on a state of
    the same scope; every state is reachable; the machine can end."""
    states = definition["States"]
    assert definition["StartAt"] in states, where
    targets = {definition["StartAt"]}
    ends = 0
    for name, state in states.items():
        assert len(name) <= 80, name
        nexts = [state.get("Next"), state.get("Default")]
        nexts += [c["Next"] for c in state.get("Choices", [])]
        nexts += [c["Next"] for c in state.get("Catch", [])]
        for target in filter(None, nexts):
            assert target in states, f"{where}: {name} -> {target}"
            targets.add(target)
        if state.get("End") or state["Type"] in ("Succeed", "Fail"):
            ends += 1
        for i, branch in enumerate(state.get("Branches", [])):
            check_machine(branch, f"{where}/{name}[{i}]")
    assert set(states) == targets, f"{where}: unreachable {set(states) - targets}"
    assert ends, where


def states_of_type(definition, resource):
    found = []
    for state in definition["States"].values():
        if state.get("Resource") == resource:
            found.append(state)
        for branch in state.get("Branches", []):
            found.extend(states_of_type(branch, resource))
    return found


def test_it_exports_the_seed_pipeline_as_the_seeds_state_machine(tonys_chips):
    from portal.models import Component

    definition = asl.export(pipelines.get_pipeline(tonys_chips, PIPELINE), asl.families_for(tonys_chips))

    check_machine(definition)
    text = json.dumps(definition)
    assert (
        not re.search(r'"DesiredCount"\s*:', text) and "<pending" not in text
    )  # read in the health check only
    states = definition["States"]
    assert definition["StartAt"] == "RunMigrations"
    assert states["RunMigrations"]["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    migrations_arn = Component.objects.get(name="sandbox-tonys-chips-migrations-task").resource_id
    assert states["RunMigrations"]["Parameters"]["TaskDefinition"] == migrations_arn
    assert (
        states["RunMigrations"]["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"]
        == "ENABLED"
    )
    assert states["CheckRunMigrations"]["Choices"] == [
        {
            "Variable": "$.RunMigrations.Containers[0].ExitCode",
            "NumericEquals": 0,
            "Next": "RecordDeployServices",
        }
    ]
    assert states["RecordDeployServices"]["Resource"] == "arn:aws:states:::aws-sdk:ecs:describeServices"
    deploy = states["DeployServices"]
    assert deploy["Type"] == "Parallel" and deploy["Next"] == "WaitForHealthy"
    assert [b["StartAt"] for b in deploy["Branches"]] == [
        "Update sandbox-tonys-chips-api-service",
        "Update sandbox-tonys-chips-web-service",
    ]
    updates = states_of_type(definition, "arn:aws:states:::aws-sdk:ecs:updateService")
    api = Component.objects.get(name="sandbox-tonys-chips-api-service").resource_id
    api_task = Component.objects.get(name="sandbox-tonys-chips-api-task").resource_id
    assert {"Cluster", "Service", "TaskDefinition", "ForceNewDeployment"} == set(updates[0]["Parameters"])
    assert (
        updates[0]["Parameters"]["Service"] == api and updates[0]["Parameters"]["TaskDefinition"] == api_task
    )
    assert all(u["Parameters"]["ForceNewDeployment"] is True for u in updates)
    # The health wait is a poll loop, not the seed's blind 60 s.
    assert states["WaitForHealthy"]["Next"] == "WaitForHealthyDescribe"
    assert states["WaitForHealthyWait"] == {"Type": "Wait", "Seconds": 15, "Next": "WaitForHealthyCount"}
    check = states["WaitForHealthyCheck"]["Choices"]
    assert check[0]["Next"] == "WaitForHealthyFailed" and check[1]["Next"] == "RunSmokeTests"
    assert check[2] == {
        "Variable": "$.WaitForHealthyPoll.Attempts",
        "NumericGreaterThanEquals": 60,
        "Next": "WaitForHealthyTimedOut",
    }
    smoke = states["RunSmokeTests"]["Parameters"]["Overrides"]["ContainerOverrides"][0]
    assert smoke["Command"] == ["npm", "run", "test:smoke"]  # the task's own command before change set 01
    assert states["CheckRunSmokeTests"]["Choices"][0]["Next"] == "Deployed"
    assert states["Deployed"] == {"Type": "Succeed"}
    # RollbackOnFailure: after the deploy, failures go to a RollBack that restores the recorded revisions.
    assert states["RunSmokeTests"]["Catch"][0]["Next"] == "RollBack"
    assert "Catch" not in states["RunMigrations"]
    restore = states_of_type(
        {"States": {"RollBack": states["RollBack"]}}, "arn:aws:states:::aws-sdk:ecs:updateService"
    )
    assert [r["Parameters"]["TaskDefinition.$"] for r in restore] == [
        "$.PreviousDeployServices.Services[0].TaskDefinition",
        "$.PreviousDeployServices.Services[1].TaskDefinition",
    ]
    machine = boto3.client("stepfunctions", region_name="us-east-1").create_state_machine(
        name="exported", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )
    assert machine["stateMachineArn"]


@pytest.fixture
def ecs(aws, monkeypatch):
    return m.make_ecs(monkeypatch)


def test_it_exports_every_kind(workspace, bob, ecs):
    m.add_pipeline(
        workspace,
        bob,
        "all-kinds",
        [
            {"Name": "Promote", "Kind": "approval_gate", "Parameters": {"Message": "Ship it?"}},
            m.deploy_stage(ecs, [ecs.api]),
            m.wait_stage(ecs, [ecs.api], timeout=300),
            {
                "Name": "Health",
                "Kind": "http_check",
                "Parameters": {"Url": "web.example.com", "Path": "/health"},
            },
        ],
        RollbackOnFailure=True,
    )
    definition = asl.export(pipelines.get_pipeline(workspace, "all-kinds"), {ecs.api: "mini-api"})

    check_machine(definition)
    states = definition["States"]
    gate = states["Promote"]
    assert gate["Resource"] == "arn:aws:states:::sns:publish.waitForTaskToken"
    assert gate["Parameters"]["Message"]["TaskToken.$"] == "$$.Task.Token" and gate["TimeoutSeconds"] == 86400
    [update] = states["DeployServices"]["Branches"]
    assert (
        update["States"][update["StartAt"]]["Parameters"]["TaskDefinition"] == "mini-api"
    )  # family: latest revision
    assert states["WaitForHealthyCheck"]["Choices"][1] == {
        "And": [
            {
                "Variable": "$.WaitForHealthyHealth.Services[0].Deployments[0].RolloutState",
                "StringEquals": "COMPLETED",
            },
            {
                "Variable": "$.WaitForHealthyHealth.Services[0].RunningCount",
                "NumericEqualsPath": "$.WaitForHealthyHealth.Services[0].DesiredCount",
            },
            {"Not": {"Variable": "$.WaitForHealthyHealth.Services[0].Deployments[1]", "IsPresent": True}},
        ],
        "Next": "Health",
    }
    assert states["WaitForHealthyCheck"]["Choices"][2]["NumericGreaterThanEquals"] == 20
    assert states["Health"]["Parameters"]["ApiEndpoint"] == "http://web.example.com/health"
    assert states["HealthFailed"]["Next"] == "RollBack"
    assert not re.search(r'"DesiredCount"\s*:', json.dumps(definition))


def test_a_pending_value_is_shown_as_pending(workspace, bob):
    from portal import changesets

    cs = changesets.create_change_set(workspace, bob, "pipeline first")
    changesets.upsert_component(cs, bob, "cluster", "AWS::ECS::Cluster", {"ClusterName": "c"})
    cluster = {"$source": {"component": "cluster", "path": "/resource_value/Arn"}}
    stages = [
        {
            "Name": "Deploy",
            "Kind": "deploy_services",
            "Parameters": {"Cluster": cluster, "Services": [{"Service": "s"}]},
        }
    ]
    changesets.upsert_component(cs, bob, "early", "Portal::Pipeline", {"Stages": stages})
    changesets.merge(cs, bob)

    definition = asl.export(pipelines.get_pipeline(workspace, "early"))

    assert (
        definition["States"]["RecordDeploy"]["Parameters"]["Cluster"]
        == "<pending: cluster/resource_value/Arn>"
    )
