"""Stages against ECS answers moto cannot give (LOCAL-AWS.md): a circuit-breaker rollback,
a failed rollout beside a completed PRIMARY, and a task whose non-essential sidecar was
stopped with 137. The workspace's ECS client is driven by botocore's Stubber with answers
shaped like the ECS API reference's (DescribeServices, UpdateService, RunTask,
DescribeTasks, DescribeTaskDefinition)."""

from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from deployments.models import RunStatus
from workers.aws import AwsTarget, cached_client, clear_client_cache

from . import mini as m

ACCOUNT = "123456789012"
CLUSTER = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/shop"
API = f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/shop/api"
API_V1 = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/api:1"
API_V2 = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/api:2"
MIGRATE = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/migrate:3"
TASK = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/shop/0a1b2c3d4e5f67890a1b2c3d4e5f6789"
AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def ecs(aws, workspace):
    """The ECS client the workspace's stages use, answered by a Stubber."""
    clear_client_cache()
    client = cached_client(AwsTarget.for_workspace(workspace), "ecs")
    with Stubber(client) as stub:
        yield stub
    clear_client_cache()


def deployment(id, status, task_definition, rollout, running=2, desired=2, failed=0, reason=None):
    out = {
        "id": id,
        "status": status,
        "taskDefinition": task_definition,
        "desiredCount": desired,
        "pendingCount": 0,
        "runningCount": running,
        "failedTasks": failed,
        "createdAt": AT,
        "updatedAt": AT,
        "launchType": "FARGATE",
        "rolloutState": rollout,
    }
    if reason:
        out["rolloutStateReason"] = reason
    return out


def api(deployments, running=2, events=()):
    return {
        "serviceArn": API,
        "serviceName": "api",
        "clusterArn": CLUSTER,
        "status": "ACTIVE",
        "desiredCount": 2,
        "runningCount": running,
        "pendingCount": 0,
        "launchType": "FARGATE",
        "taskDefinition": deployments[0]["taskDefinition"],
        "deployments": deployments,
        "events": [{"id": f"e{i}", "createdAt": AT, "message": message} for i, message in enumerate(events)],
    }


def described(*deployments, **kwargs):
    return {"services": [api(list(deployments), **kwargs)], "failures": []}


def deploy_then_wait(workspace, bob):
    m.add_pipeline(
        workspace,
        bob,
        "deploy",
        [
            {
                "Name": "DeployServices",
                "Kind": "deploy_services",
                "Parameters": {"Cluster": CLUSTER, "Services": [{"Service": API, "TaskDefinition": API_V2}]},
            },
            {
                "Name": "WaitForHealthy",
                "Kind": "wait_healthy",
                "Parameters": {"Cluster": CLUSTER, "Services": [API]},
            },
        ],
    )


def deploys_api(ecs):
    """DeployServices: the revision in use is read, then ecs-svc/2 of api:2 is started."""
    ecs.add_response("describe_services", described(deployment("ecs-svc/1", "PRIMARY", API_V1, "COMPLETED")))
    ecs.add_response(
        "update_service",
        {
            "service": api(
                [
                    deployment("ecs-svc/2", "PRIMARY", API_V2, "IN_PROGRESS", running=0),
                    deployment("ecs-svc/1", "ACTIVE", API_V1, "COMPLETED"),
                ]
            )
        },
        {"cluster": CLUSTER, "service": API, "taskDefinition": API_V2, "forceNewDeployment": True},
    )


def test_a_circuit_breaker_rollback_fails_the_wait_though_the_old_revision_is_healthy(
    workspace, bob, ecs, run_pipeline
):
    deploy_then_wait(workspace, bob)
    deploys_api(ecs)
    ecs.add_response(
        "describe_services",
        described(
            deployment("ecs-svc/2", "PRIMARY", API_V2, "IN_PROGRESS", running=0, failed=2),
            deployment("ecs-svc/1", "ACTIVE", API_V1, "COMPLETED"),
        ),
    )
    # The breaker tripped: ECS rolled back to api:1 in a new deployment, which completed.
    rolled_back = "(service api) rolling back to deployment ecs-svc/3."
    ecs.add_response(
        "describe_services",
        described(
            deployment("ecs-svc/3", "PRIMARY", API_V1, "COMPLETED"),
            events=[
                rolled_back,
                "(service api) deployment ecs-svc/2 deployment failed: tasks failed to start.",
            ],
        ),
    )

    run = run_pipeline(workspace, "deploy", bob)

    ecs.assert_no_pending_responses()
    assert run.status == RunStatus.FAILED
    wait = run.stages.get(name="WaitForHealthy")
    assert (
        wait.error == f"api: deployment ecs-svc/2 is gone; ECS runs ecs-svc/3 of api:1 instead: {rolled_back}"
    )
    assert wait.result["services"]["api"]["state"] == "failed"
    assert run.stages.get(name="DeployServices").result["services"][API]["deployment"] == "ecs-svc/2"


def test_our_failed_rollout_fails_the_wait_while_the_rolled_back_primary_completes(
    workspace, bob, ecs, run_pipeline
):
    deploy_then_wait(workspace, bob)
    deploys_api(ecs)
    reason = "ECS deployment circuit breaker: tasks failed to start."
    ecs.add_response(
        "describe_services",
        described(
            deployment("ecs-svc/3", "PRIMARY", API_V1, "COMPLETED"),
            deployment("ecs-svc/2", "ACTIVE", API_V2, "FAILED", running=0, failed=3, reason=reason),
        ),
    )

    run = run_pipeline(workspace, "deploy", bob)

    assert run.status == RunStatus.FAILED
    assert run.stages.get(name="WaitForHealthy").error == f"api: rollout failed: {reason}"


def test_a_primary_that_is_not_ours_fails_the_wait_with_ecs_reason(workspace, bob, ecs, run_pipeline):
    deploy_then_wait(workspace, bob)
    deploys_api(ecs)
    ecs.add_response(
        "describe_services",
        described(
            deployment("ecs-svc/3", "PRIMARY", API_V1, "COMPLETED"),
            deployment("ecs-svc/2", "ACTIVE", API_V2, "IN_PROGRESS", running=0),
            events=["(service api) rolling back to deployment ecs-svc/3."],
        ),
    )

    run = run_pipeline(workspace, "deploy", bob)

    assert run.status == RunStatus.FAILED
    assert run.stages.get(name="WaitForHealthy").error == (
        "api: deployment ecs-svc/2 is no longer PRIMARY (ECS rolled back to ecs-svc/3 of api:1): "
        "(service api) rolling back to deployment ecs-svc/3."
    )


# --- run_task: essential containers --------------------------------------------------------------


def migrations(workspace, bob, **extra):
    stage = {
        "Name": "RunMigrations",
        "Kind": "run_task",
        "Parameters": {"Cluster": CLUSTER, "TaskDefinition": MIGRATE, "LaunchType": "FARGATE", **extra},
    }
    m.add_pipeline(workspace, bob, "migrate", [stage])


def task_stops(ecs, containers, reason="Essential container in task exited"):
    """RunTask, then DescribeTasks: STOPPED with the containers' exit codes, then the task
    definition (migrate essential, log-router not)."""
    ecs.add_response(
        "run_task",
        {
            "tasks": [{"taskArn": TASK, "taskDefinitionArn": MIGRATE, "lastStatus": "PROVISIONING"}],
            "failures": [],
        },
    )
    ecs.add_response(
        "describe_tasks",
        {
            "tasks": [
                {
                    "taskArn": TASK,
                    "taskDefinitionArn": MIGRATE,
                    "lastStatus": "STOPPED",
                    "stopCode": "EssentialContainerExited",
                    "stoppedReason": reason,
                    "containers": [
                        {"name": name, "exitCode": code, "lastStatus": "STOPPED"} for name, code in containers
                    ],
                }
            ],
            "failures": [],
        },
    )
    ecs.add_response(
        "describe_task_definition",
        {
            "taskDefinition": {
                "taskDefinitionArn": MIGRATE,
                "family": "migrate",
                "revision": 3,
                "containerDefinitions": [
                    {"name": "migrate", "image": "shop/migrate:42", "essential": True},
                    {"name": "log-router", "image": "amazon/aws-for-fluent-bit:stable", "essential": False},
                ],
            }
        },
        {"taskDefinition": MIGRATE},
    )


def test_a_sidecar_stopped_with_137_does_not_fail_the_task(workspace, bob, ecs, run_pipeline):
    migrations(workspace, bob)
    task_stops(ecs, [("migrate", 0), ("log-router", 137)])

    run = run_pipeline(workspace, "migrate", bob)

    assert run.status == RunStatus.SUCCEEDED, run.error
    stage = run.stages.get()
    assert stage.result["exit_codes"] == {"migrate": 0, "log-router": 137}  # kept, not checked
    assert stage.result["checked"] == ["migrate"]
    assert run.log_lines.filter(
        message="container log-router exited with code 137 (not essential: not checked)"
    ).exists()


def test_an_essential_container_that_fails_still_fails_the_task(workspace, bob, ecs, run_pipeline):
    migrations(workspace, bob)
    task_stops(ecs, [("migrate", 1), ("log-router", 137)])

    run = run_pipeline(workspace, "migrate", bob)

    assert run.status == RunStatus.FAILED
    error = run.stages.get().error
    assert "container migrate exited with code 1, expected 0" in error
    assert "log-router" not in error


def test_the_container_a_stage_names_is_the_one_checked(workspace, bob, ecs, run_pipeline):
    migrations(workspace, bob, Container="log-router")
    task_stops(ecs, [("migrate", 2), ("log-router", 0)])

    run = run_pipeline(workspace, "migrate", bob)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.stages.get().result["checked"] == ["log-router"]
