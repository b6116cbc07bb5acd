"""Exporting a pipeline as a Step Functions state machine (ASL) equivalent to what it runs.

Every exported definition goes through the asl-validator package (package.json; `./dev
test` installs it) and through the checks of what it must mean: the exit code is checked,
the PRIMARY deployment is picked by status, no Parallel has a TimeoutSeconds, state names
are unique across the machine, and the rollback reads only what a deploy wrote."""

import json
import re
import subprocess
from pathlib import Path

import boto3
import pytest
from django.conf import settings

from deployments import asl, pipelines

from . import mini as m
from .conftest import PIPELINE

VALIDATOR = Path(settings.BASE_DIR) / "node_modules" / ".bin" / "asl-validator"
UPDATE = "arn:aws:states:::aws-sdk:ecs:updateService"


def assert_valid_asl(definition, tmp_path):
    """The asl-validator CLI accepts the definition (schema, paths, transitions, names)."""
    if not VALIDATOR.exists():
        pytest.fail(f"{VALIDATOR} is missing: run ./dev test, which installs the ASL validator (npm ci)")
    path = tmp_path / "definition.asl.json"
    path.write_text(json.dumps(definition, indent=2))
    done = subprocess.run(
        [str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def scopes(definition, where="top"):
    """(where, StartAt, states) of the machine and of every Parallel branch in it."""
    yield where, definition.get("StartAt"), definition["States"]
    for name, state in definition["States"].items():
        for i, branch in enumerate(state.get("Branches", [])):
            yield from scopes(branch, f"{where}/{name}[{i}]")


def all_states(definition):
    return {name: state for _, _, states in scopes(definition) for name, state in states.items()}


def transitions(state):
    nexts = [state.get("Next"), state.get("Default")]
    nexts += [c["Next"] for c in state.get("Choices", [])]
    nexts += [c["Next"] for c in state.get("Catch", [])]
    return [n for n in nexts if n]


def check_machine(definition, tmp_path):
    """Valid ASL, and the portal's meaning where Step Functions would differ by default."""
    assert_valid_asl(definition, tmp_path)
    names = [name for _, _, states in scopes(definition) for name in states]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    for where, start, states in scopes(definition):
        reached = {start}.union(*(transitions(s) for s in states.values()))
        assert set(states) == reached, f"{where}: unreachable {set(states) - reached}"
    states = all_states(definition)
    text = json.dumps(definition)
    assert not re.search(r'"DesiredCount"\s*:', text)  # read in the health check only
    assert "Deployments[0]" not in text and ".sync" not in text
    for name, state in states.items():
        if state["Type"] == "Parallel":
            assert "TimeoutSeconds" not in state, name
        if state.get("Resource") == "arn:aws:states:::http:invoke":
            assert state["Parameters"]["ApiEndpoint"].startswith("https://"), name
    for name, state in states.items():
        if state.get("Resource") == "arn:aws:states:::ecs:runTask":
            check = states[f"{name} check"]["Choices"][0]["And"]
            assert {
                "Variable": f"$.Pipeline.Stages.{name}.ExitCodes.Containers",
                "NumericGreaterThan": 0,
            } in check
            described = states[f"{name} describe"]["ResultSelector"]["Expected.$"]
            assert described.startswith("$.Tasks[*].Containers[?(@.ExitCode == ")
    check_rollback(definition)


def check_rollback(definition):
    """Each restore reads the revision a deploy stage recorded, behind a Choice on that
    stage's outcome for the service, which is set to "not deployed" before any deploy."""
    states = definition["States"]
    if "RollBack" not in states:
        return
    initialised = [
        s["Result"]
        for s in states.values()
        if s["Type"] == "Pass" and s.get("ResultPath") == "$.Pipeline.Deployed"
    ]
    assert len(initialised) == 1
    for branch in states["RollBack"]["Branches"]:
        decide = branch["States"][branch["StartAt"]]
        assert decide["Type"] == "Choice" and branch["States"][decide["Default"]]["Type"] == "Pass"
        for rule in decide["Choices"]:
            key, i = re.fullmatch(
                r"\$\.Pipeline\.Deployed\.(\w+)\[(\d+)\]\.Deployed", rule["Variable"]
            ).groups()
            assert rule["BooleanEquals"] is True and initialised[0][key][int(i)] == {"Deployed": False}
            restore = branch["States"][rule["Next"]]
            assert restore["Parameters"]["TaskDefinition.$"] == f"$.Pipeline.Previous.{key}.S{i}[0]"
    assert states["RolledBack"] == {
        "Type": "Fail",
        "ErrorPath": "$.Pipeline.Failure.Error",
        "CausePath": "$.Pipeline.Failure.Cause",
    }


def updates_in(state):
    return [s for s in all_states({"States": {"x": state}}).values() if s.get("Resource") == UPDATE]


def test_it_exports_the_seed_pipeline_as_the_seeds_state_machine(tonys_chips, tmp_path):
    from portal.models import Component

    definition = asl.export(pipelines.get_pipeline(tonys_chips, PIPELINE), asl.families_for(tonys_chips))

    check_machine(definition, tmp_path)
    assert "<pending" not in json.dumps(definition)
    states = definition["States"]
    assert definition["StartAt"] == "RunMigrations"
    migrations = states["RunMigrations"]
    assert migrations["Resource"] == "arn:aws:states:::ecs:runTask"
    migrations_arn = Component.objects.get(name="sandbox-tonys-chips-migrations-task").resource_id
    assert migrations["Parameters"]["TaskDefinition"] == migrations_arn
    assert (
        migrations["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "ENABLED"
    )
    # The exit code is the portal's check: every container exited with ExpectedExitCode (0).
    assert states["RunMigrations describe"]["ResultSelector"]["Expected.$"] == (
        "$.Tasks[*].Containers[?(@.ExitCode == 0)]"
    )
    assert states["RunMigrations check"]["Choices"][0]["Next"] == "DeployServices"
    assert states["RunMigrations check"]["Default"] == "RunMigrations failed"
    assert states["RunMigrations failed"]["Type"] == "Fail"  # nothing deployed yet: no rollback
    assert states["RunMigrations stopped"]["Choices"][2]["Next"] == "RunMigrations stop task"
    # Before the deploy: every service "not deployed"; then the revisions in use are recorded.
    assert states["DeployServices"]["Result"] == {
        "DeployServices": [{"Deployed": False}, {"Deployed": False}]
    }
    record = states["DeployServices record"]
    assert record["Resource"] == "arn:aws:states:::aws-sdk:ecs:describeServices"
    api = Component.objects.get(name="sandbox-tonys-chips-api-service").resource_id
    assert record["ResultSelector"]["S0.$"] == f"$.Services[?(@.ServiceArn == '{api}')].TaskDefinition"
    deploy = states["DeployServices deploy"]
    assert deploy["Type"] == "Parallel" and deploy["ResultPath"] == "$.Pipeline.Deployed.DeployServices"
    assert [b["StartAt"] for b in deploy["Branches"]] == [
        "DeployServices update sandbox-tonys-chips-api-service",
        "DeployServices update sandbox-tonys-chips-web-service",
    ]
    updates = updates_in(deploy)
    api_task = Component.objects.get(name="sandbox-tonys-chips-api-task").resource_id
    assert {"Cluster", "Service", "TaskDefinition", "ForceNewDeployment"} == set(updates[0]["Parameters"])
    assert (
        updates[0]["Parameters"]["Service"] == api and updates[0]["Parameters"]["TaskDefinition"] == api_task
    )
    assert all(u["Parameters"]["ForceNewDeployment"] is True and u["TimeoutSeconds"] == 300 for u in updates)
    assert (
        updates[0]["ResultSelector"]["Deployment.$"] == "$.Service.Deployments[?(@.Status == 'PRIMARY')].Id"
    )
    assert states["DeployServices check"]["Choices"][0]["Next"] == "WaitForHealthy"
    # The health wait: the PRIMARY deployment, by status, and the one the deploy started.
    assert states["WaitForHealthy"]["Next"] == "WaitForHealthy describe"
    selector = states["WaitForHealthy describe"]["ResultSelector"]["S0"]
    assert (
        selector["Primary.$"]
        == f"$.Services[?(@.ServiceArn == '{api}')].Deployments[?(@.Status == 'PRIMARY')]"
    )
    check = states["WaitForHealthy check"]
    assert [c["Next"] for c in check["Choices"]] == [
        "WaitForHealthy not found",
        "WaitForHealthy rollout failed",
        "WaitForHealthy not ours",
        "RunSmokeTests",
        "WaitForHealthy timed out",
    ]
    assert check["Choices"][2]["Or"][0] == {
        "Not": {
            "Variable": "$.Pipeline.Stages.WaitForHealthy.Health.S0.Primary[0].Id",
            "StringEqualsPath": "$.Pipeline.Deployed.DeployServices[0].Deployment[0]",
        }
    }
    assert check["Choices"][4]["NumericGreaterThanEquals"] == 60
    assert states["WaitForHealthy wait"] == {"Type": "Wait", "Seconds": 15, "Next": "WaitForHealthy count"}
    smoke = states["RunSmokeTests"]["Parameters"]["Overrides"]["ContainerOverrides"][0]
    assert smoke["Command"] == ["npm", "run", "test:smoke"]  # the task's own command before change set 01
    assert states["RunSmokeTests check"]["Choices"][0]["Next"] == "Deployed"
    assert states["Deployed"] == {"Type": "Succeed"}
    # RollbackOnFailure: after the deploy, failures go to a RollBack that restores the recorded revisions.
    assert states["RunSmokeTests"]["Catch"][0]["Next"] == "RollBack"
    assert states["RunSmokeTests failed"]["Next"] == "RollBack"
    assert "Catch" not in states["RunMigrations"]
    assert [r["Parameters"]["TaskDefinition.$"] for r in updates_in(states["RollBack"])] == [
        "$.Pipeline.Previous.DeployServices.S0[0]",
        "$.Pipeline.Previous.DeployServices.S1[0]",
    ]
    machine = boto3.client("stepfunctions", region_name="us-east-1").create_state_machine(
        name="exported", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )
    assert machine["stateMachineArn"]


@pytest.fixture
def ecs(aws, monkeypatch):
    return m.make_ecs(monkeypatch)


def test_it_exports_every_kind(workspace, bob, ecs, tmp_path):
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

    check_machine(definition, tmp_path)
    states = definition["States"]
    gate = states["Promote"]
    assert gate["Resource"] == "arn:aws:states:::sns:publish.waitForTaskToken"
    assert gate["Parameters"]["Message"]["TaskToken.$"] == "$$.Task.Token" and gate["TimeoutSeconds"] == 86400
    assert "Catch" not in gate  # before the deploy
    [update] = updates_in(states["DeployServices deploy"])
    assert update["Parameters"]["TaskDefinition"] == "mini-api"  # family: latest revision
    healthy = states["WaitForHealthy check"]["Choices"][3]
    assert healthy["Next"] == "Health" and healthy["And"] == [
        {
            "Or": [
                {
                    "Not": {
                        "Variable": "$.Pipeline.Stages.WaitForHealthy.Health.S0.Primary[0].RolloutState",
                        "IsPresent": True,
                    }
                },
                {
                    "Variable": "$.Pipeline.Stages.WaitForHealthy.Health.S0.Primary[0].RolloutState",
                    "StringEquals": "COMPLETED",
                },
            ]
        },
        {
            "Variable": "$.Pipeline.Stages.WaitForHealthy.Health.S0.Service[0].RunningCount",
            "NumericEqualsPath": "$.Pipeline.Stages.WaitForHealthy.Health.S0.Service[0].DesiredCount",
        },
        {
            "Variable": "$.Pipeline.Stages.WaitForHealthy.Health.S0.Primary[0].RunningCount",
            "NumericEqualsPath": "$.Pipeline.Stages.WaitForHealthy.Health.S0.Primary[0].DesiredCount",
        },
        {"Not": {"Variable": "$.Pipeline.Stages.WaitForHealthy.Health.S0.Active[0]", "IsPresent": True}},
    ]
    assert states["WaitForHealthy check"]["Choices"][4]["NumericGreaterThanEquals"] == 20
    # http:// becomes https:// (the HTTP task's only scheme), and the Comment says so.
    assert states["Health get"]["Parameters"]["ApiEndpoint"] == "https://web.example.com/health"
    assert (
        "the portal GETs http://web.example.com/health; the HTTP task calls only HTTPS"
        in definition["Comment"]
    )
    assert "SendTaskSuccess" in definition["Comment"]
    assert [c["ErrorEquals"] for c in states["Health get"]["Catch"]] == [["States.ALL"]]
    assert states["Health check"]["Choices"][0] == {
        "Variable": "$.Pipeline.Stages.Health.Answer.StatusCode",
        "NumericEquals": 200,
        "Next": "Deployed",
    }
    assert states["Health retry"]["Choices"][0]["Next"] == "Health failed"
    assert states["Health failed"]["Next"] == "RollBack"


def test_two_deploy_stages_of_one_service_have_their_own_states_and_one_restore(
    workspace, bob, ecs, tmp_path
):
    m.add_pipeline(
        workspace,
        bob,
        "canary",
        [
            m.deploy_stage(ecs, [ecs.api], name="Canary"),
            m.wait_stage(ecs, [ecs.api], name="CanaryHealthy"),
            m.deploy_stage(ecs, [ecs.api, ecs.web], name="Everyone"),
            m.wait_stage(ecs, [ecs.api, ecs.web], name="EveryoneHealthy"),
        ],
        RollbackOnFailure=True,
    )
    definition = asl.export(pipelines.get_pipeline(workspace, "canary"))

    check_machine(definition, tmp_path)
    states = all_states(definition)
    assert {"Canary update mini-api", "Everyone update mini-api", "Everyone update mini-web"} <= set(states)
    # Without a known family, the family of the revision the stage recorded (its latest revision).
    assert states["Canary update mini-api"]["Parameters"]["TaskDefinition.$"] == (
        "States.ArrayGetItem(States.StringSplit(States.ArrayGetItem("
        "States.StringSplit($.Pipeline.Previous.Canary.S0[0], '/'), 1), ':'), 0)"
    )
    # Each wait checks the deployment its own deploy stage started.
    assert definition["States"]["CanaryHealthy check"]["Choices"][2]["Not"]["StringEqualsPath"] == (
        "$.Pipeline.Deployed.Canary[0].Deployment[0]"
    )
    assert definition["States"]["EveryoneHealthy check"]["Choices"][2]["Or"][0]["Not"][
        "StringEqualsPath"
    ] == ("$.Pipeline.Deployed.Everyone[0].Deployment[0]")
    # The rollback: one branch per service; the last deploy that deployed it wins (as the portal).
    rollback = definition["States"]["RollBack"]["Branches"]
    assert [b["StartAt"] for b in rollback] == ["Restore mini-api?", "Restore mini-web?"]
    assert [c["Variable"] for c in rollback[0]["States"]["Restore mini-api?"]["Choices"]] == [
        "$.Pipeline.Deployed.Everyone[0].Deployed",
        "$.Pipeline.Deployed.Canary[0].Deployed",
    ]
    # A failure in the first deploy stage already rolls back (what it got deployed).
    assert definition["States"]["Canary refused"]["Next"] == "RollBack"
    assert definition["States"]["Canary"]["Result"] == {
        "Canary": [{"Deployed": False}],
        "Everyone": [{"Deployed": False}, {"Deployed": False}],
    }


def test_a_task_may_be_expected_to_exit_with_another_code(workspace, bob, ecs, tmp_path):
    m.add_pipeline(
        workspace,
        bob,
        "exit-3",
        [m.run_task_stage(ecs, "Check", ecs.smoke_td, ExpectedExitCode=3)],
    )
    definition = asl.export(pipelines.get_pipeline(workspace, "exit-3"))

    check_machine(definition, tmp_path)
    states = definition["States"]
    assert (
        states["Check describe"]["ResultSelector"]["Expected.$"]
        == "$.Tasks[*].Containers[?(@.ExitCode == 3)]"
    )
    assert states["Check check"]["Choices"][0]["And"][1] == {
        "Variable": "$.Pipeline.Stages.Check.ExitCodes.Expected",
        "NumericEqualsPath": "$.Pipeline.Stages.Check.ExitCodes.Containers",
    }
    assert states["Check check"]["Default"] == "Check failed" and states["Check failed"]["Type"] == "Fail"
    assert "RollBack" not in states


def test_an_expected_status_outside_2xx_is_caught_by_its_error_name(workspace, bob, ecs, tmp_path):
    m.add_pipeline(
        workspace,
        bob,
        "locked",
        [
            m.deploy_stage(ecs, [ecs.web]),
            {
                "Name": "Locked",
                "Kind": "http_check",
                "Parameters": {"Url": "https://admin.example.com/", "ExpectedStatus": 401},
            },
        ],
    )
    definition = asl.export(pipelines.get_pipeline(workspace, "locked"))

    check_machine(definition, tmp_path)
    states = definition["States"]
    assert states["Locked get"]["Parameters"]["ApiEndpoint"] == "https://admin.example.com/"
    assert [(c["ErrorEquals"], c["Next"]) for c in states["Locked get"]["Catch"]] == [
        (["States.Http.StatusCode.401"], "Deployed"),
        (["States.ALL"], "Locked retry"),
    ]
    assert "HTTPS" not in definition["Comment"]  # an https:// URL is called as written
    assert "RollBack" not in states and states["Locked failed"]["Type"] == "Fail"


def test_a_pending_value_is_shown_as_pending(workspace, bob, tmp_path):
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

    check_machine(definition, tmp_path)
    assert (
        definition["States"]["Deploy record"]["Parameters"]["Cluster"]
        == "<pending: cluster/resource_value/Arn>"
    )
