"""A small ECS setup made straight in moto (no engine apply), for stage-level tests: a
cluster, task definitions, services with known counts, and pipelines on literal ids."""

from types import SimpleNamespace

import boto3
from moto.core import DEFAULT_ACCOUNT_ID

from portal.tests.factories import head

REGION = "us-east-1"


def ecs_backend():
    from moto.ecs.models import ecs_backends

    return ecs_backends[DEFAULT_ACCOUNT_ID][REGION]


def make_ecs(monkeypatch, running=True):
    """Cluster `mini`, task definitions mini-api / mini-web / mini-migrate / mini-smoke,
    services mini-api (2 tasks) and mini-web (scaled to 4). With running=False, moto
    reports 0 running tasks and rollouts that never complete."""
    ec2 = boto3.client("ec2", region_name=REGION)
    ecs = boto3.client("ecs", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="mini", Description="mini tasks", VpcId=vpc)["GroupId"]
    cluster = ecs.create_cluster(clusterName="mini")["cluster"]["clusterArn"]

    def register(family, container):
        return ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[
                {
                    "name": container,
                    "image": f"example/{container}:latest",
                    "cpu": 256,
                    "memory": 512,
                    "essential": True,
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]

    network = {
        "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [sg], "assignPublicIp": "ENABLED"}
    }

    def service(name, task_definition, count):
        # moto reads the running count from its environment when the service is created.
        monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", str(count if running else 0))
        arn = ecs.create_service(
            cluster="mini",
            serviceName=name,
            taskDefinition=task_definition,
            desiredCount=count,
            launchType="FARGATE",
            networkConfiguration=network,
        )["service"]["serviceArn"]
        return arn

    api_td, web_td = register("mini-api", "api"), register("mini-web", "web")
    out = SimpleNamespace(
        ecs=ecs,
        cluster=cluster,
        subnet=subnet,
        sg=sg,
        api_td=api_td,
        web_td=web_td,
        migrate_td=register("mini-migrate", "migrate"),
        smoke_td=register("mini-smoke", "smoke"),
        api=service("mini-api", api_td, 2),
        web=service("mini-web", web_td, 4),
        register=register,
        network={
            "AwsvpcConfiguration": {"Subnets": [subnet], "SecurityGroups": [sg], "AssignPublicIp": "ENABLED"}
        },
    )
    return out


def run_task_stage(mini, name, task_definition, **extra):
    return {
        "Name": name,
        "Kind": "run_task",
        "Parameters": {
            "Cluster": mini.cluster,
            "TaskDefinition": task_definition,
            "LaunchType": "FARGATE",
            "NetworkConfiguration": mini.network,
            **extra,
        },
    }


def deploy_stage(mini, services, name="DeployServices"):
    return {
        "Name": name,
        "Kind": "deploy_services",
        "Parameters": {"Cluster": mini.cluster, "Services": [{"Service": s} for s in services]},
    }


def wait_stage(mini, services, timeout=None, name="WaitForHealthy"):
    stage = {
        "Name": name,
        "Kind": "wait_healthy",
        "Parameters": {"Cluster": mini.cluster, "Services": services},
    }
    if timeout:
        stage["Timeout"] = timeout
    return stage


def seed_like(mini):
    """The seed's four stages on the mini setup."""
    return [
        run_task_stage(mini, "RunMigrations", mini.migrate_td),
        deploy_stage(mini, [mini.api, mini.web]),
        wait_stage(mini, [mini.api, mini.web], timeout=2),
        run_task_stage(mini, "RunSmokeTests", mini.smoke_td),
    ]


def add_pipeline(workspace, user, name, stages, **top):
    """Put a Portal::Pipeline component in HEAD (a merged change set)."""
    head(
        workspace,
        user,
        {name: ("Portal::Pipeline", {"Description": f"{name} (test)", "Stages": stages, **top})},
    )
    return name


def fail_task(family, exit_code, reason):
    """An after-call hook on RunTask: the task of `family` will stop with `exit_code`."""

    def hook(parsed):
        for task in parsed.get("tasks") or []:
            if f"/{family}:" not in task["taskDefinitionArn"]:
                continue
            for tasks in ecs_backend().tasks.values():
                found = tasks.get(task["taskArn"])
                if found is not None:
                    found.containers[0].exitCode = exit_code
                    found.stopped_reason = reason

    return hook


def set_rollout(service_arn, state, reason):
    name = service_arn.rsplit("/", 1)[-1]
    for key, service in ecs_backend().services.items():
        if key.endswith(f":{name}"):
            service.deployments[0]["rolloutState"] = state
            service.deployments[0]["rolloutStateReason"] = reason


def describe(mini, service):
    return mini.ecs.describe_services(cluster="mini", services=[service])["services"][0]
