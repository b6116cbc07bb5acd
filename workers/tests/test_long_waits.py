"""A long AWS wait (here an ECS deployment) does not hold a worker: the action goes back
to the queue with a countdown and its deadline on the row, so it survives a worker killed
in the middle of it."""

import time

import boto3
import pytest
from moto.ecs.models import ecs_backends

from portal import approvals, changesets
from workers import apply
from workers.models import ActionStatus, ApplyRun, RunStatus

from .test_worker_integration import finished, local_aws, wait_until, workers  # noqa: F401

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CLUSTER, SERVICE = "waits", "api"


def ecs_service_change_set(workspace, bob, alice, endpoint):
    ecs = boto3.client("ecs", region_name="us-east-1", endpoint_url=endpoint)
    ecs.create_cluster(clusterName=CLUSTER)
    td = ecs.register_task_definition(
        family="api", containerDefinitions=[{"name": "api", "image": "nginx", "memory": 128}]
    )["taskDefinition"]["taskDefinitionArn"]
    cs = changesets.create_change_set(workspace, bob, "an ECS service")
    changesets.upsert_component(
        cs,
        bob,
        "api",
        "AWS::ECS::Service",
        {"Cluster": CLUSTER, "ServiceName": SERVICE, "TaskDefinition": td, "DesiredCount": 1},
    )
    approvals.request_approval(cs, bob)
    approvals.approve(cs, alice)
    return cs, ecs


def finish_the_deployment():
    """What ECS does once the service's tasks run (moto leaves the rollout in progress)."""
    service = ecs_backends["123456789012"]["us-east-1"].services[f"{CLUSTER}:{SERVICE}"]
    service.deployments[0]["rolloutState"] = "COMPLETED"


def test_a_long_wait_survives_a_worker_restart(workspace, users, local_aws, workers):  # noqa: F811
    fast = {"PORTAL_ACTION_WAIT_HOLD_SECONDS": "0.5"}
    first = workers(concurrency=2, extra_env=fast)
    cs, ecs = ecs_service_change_set(workspace, users["editor"], users["approver"], local_aws.endpoint)
    run = apply.request_apply(cs, users["approver"])
    action = run.actions.get()

    waiting = wait_until(
        lambda: run.actions.filter(pk=action.pk, waiting_for__contains="steady state").first(),
        30,
        "the action to go back to the queue while ECS deploys",
    )
    assert waiting.deadline is not None and waiting.attempts <= 1
    first.kill()
    time.sleep(1)
    assert ApplyRun.objects.get(pk=run.pk).status == RunStatus.RUNNING

    second = workers(concurrency=2, extra_env=fast)
    finish_the_deployment()
    run = finished(run, timeout=60, worker=second, reap=True)

    assert run.status == RunStatus.SUCCEEDED, run.error
    done = run.actions.get()
    assert done.status == ActionStatus.SUCCEEDED and done.waiting_for == "" and done.deadline is None
    assert len(ecs.list_services(cluster=CLUSTER)["serviceArns"]) == 1
