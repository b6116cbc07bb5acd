"""Pipelines as Portal::Pipeline components: the schema, the spec-file sugar, and reading
them from HEAD (subscriptions resolved, problems in words)."""

import copy

import pytest

from deployments import pipelines
from portal import changesets, schemas
from portal.errors import NotFound, ValidationError
from portal.plan import plan_actions
from portal.spec import load_spec
from portal.tests.factories import head, src

from .conftest import EXAMPLE, PIPELINE


def example_pipeline():
    return copy.deepcopy(load_spec(EXAMPLE / "workspace.yaml").component(PIPELINE).properties)


def test_the_example_pipeline_is_the_seeds_four_steps():
    props = example_pipeline()
    assert schemas.validate_properties("Portal::Pipeline", props) == []
    assert [(s["Name"], s["Kind"]) for s in props["Stages"]] == [
        ("RunMigrations", "run_task"),
        ("DeployServices", "deploy_services"),
        ("WaitForHealthy", "wait_healthy"),
        ("RunSmokeTests", "run_task"),
    ]
    services = props["Stages"][1]["Parameters"]["Services"]
    assert [s["Service"] for s in services] == [
        src("sandbox-tonys-chips-api-service", "/resource_value/ServiceArn"),
        src("sandbox-tonys-chips-web-service", "/resource_value/ServiceArn"),
    ]
    env = props["Stages"][3]["Parameters"]["Overrides"]["ContainerOverrides"][0]["Environment"]
    assert {"Name": "WEB_URL", "Value": src("sandbox-tonys-chips-alb", "/resource_value/DNSName")} in env
    assert props["RollbackOnFailure"] is True and props["TriggerOnApply"] is False


def test_the_schema_says_what_is_wrong_where():
    props = example_pipeline()
    props["Stages"][1]["Parameters"]["Services"][0]["DesiredCount"] = 2
    props["Stages"][0]["Kind"] = "run_tsk"
    props["Stages"][2]["Parameters"].pop("Cluster")
    props["Stages"].append({"Name": "two words", "Kind": "http_check", "Parameters": {"Url": 3}})
    errors = {e["path"]: e["message"] for e in schemas.validate_properties("Portal::Pipeline", props)}
    assert errors["/Stages/1/Parameters/Services/0/DesiredCount"].startswith("unknown property DesiredCount")
    assert 'did you mean "run_task"?' in errors["/Stages/0/Kind"]
    assert errors["/Stages/2/Parameters/Cluster"] == "Cluster is required but missing"
    assert errors["/Stages/4/Name"].startswith("does not match the pattern")
    assert errors["/Stages/4/Parameters/Url"].startswith("must be a string")


def test_spec_file_sugar_maps_to_a_component_and_back():
    entry = {
        "name": "deploy",
        "description": "rolling deploy",
        "rollback_on_failure": True,
        "stages": [
            {
                "name": "Deploy",
                "kind": "deploy_services",
                "timeout": 300,
                "parameters": {"Cluster": "c", "Services": [{"Service": "s"}]},
            }
        ],
    }
    component = pipelines.component_from_spec(entry)
    assert component == {
        "name": "deploy",
        "schema": "Portal::Pipeline",
        "properties": {
            "Description": "rolling deploy",
            "RollbackOnFailure": True,
            "Stages": [
                {
                    "Name": "Deploy",
                    "Kind": "deploy_services",
                    "Parameters": {"Cluster": "c", "Services": [{"Service": "s"}]},
                    "Timeout": 300,
                }
            ],
        },
    }
    assert schemas.validate_properties("Portal::Pipeline", component["properties"]) == []
    assert pipelines.spec_from_component("deploy", component["properties"]) == entry
    with pytest.raises(ValidationError, match="unknown key"):
        pipelines.component_from_spec({"name": "x", "stagez": []})


def test_a_pipeline_is_local_in_the_plan_and_follows_renames_of_what_it_uses(workspace, bob):
    head(workspace, bob, {"cluster": ("AWS::ECS::Cluster", {"ClusterName": "c"})})
    cs = changesets.create_change_set(workspace, bob, "add a pipeline")
    deploy = {"Cluster": src("cluster", "/domain/ClusterName"), "Services": [{"Service": "svc"}]}
    changesets.upsert_component(
        cs,
        bob,
        "deploy",
        "Portal::Pipeline",
        {"Stages": [{"Name": "Deploy", "Kind": "deploy_services", "Parameters": deploy}]},
    )
    [action] = plan_actions(cs).actions
    assert (action.kind, action.local) == ("create", True)
    changesets.merge(cs, bob)

    pipeline = pipelines.get_pipeline(workspace, "deploy")
    assert pipeline.stages[0].parameters == {"Cluster": "c", "Services": [{"Service": "svc"}]}
    assert pipeline.stages[0].timeout == 300
    assert pipelines.problems(pipeline) == []


def test_it_names_the_pipelines_there_are(workspace, bob):
    head(
        workspace, bob, {"p1": ("Portal::Pipeline", {"Stages": [{"Name": "Gate", "Kind": "approval_gate"}]})}
    )
    with pytest.raises(NotFound, match=r"No pipeline 'p2' in tonys-chips \(pipelines: p1\)"):
        pipelines.get_pipeline(workspace, "p2")


def test_stage_names_are_unique(workspace, bob):
    gate = {"Name": "Gate", "Kind": "approval_gate"}
    head(workspace, bob, {"p": ("Portal::Pipeline", {"Stages": [gate, dict(gate)]})})
    [problem] = pipelines.problems(pipelines.get_pipeline(workspace, "p"))
    assert problem == {
        "path": "/Stages/1/Name",
        "message": "Gate is also the name of stage 1; stage names are unique",
    }
