"""ECS providers against moto (in process).

Inputs are valid for real AWS as well as for moto: Fargate containers carry their own
cpu/memory and awsvpc configurations name their security groups (moto crashes otherwise).
"""

import copy

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

import workers.providers.ecs  # noqa: F401  (importing registers the providers)
from workers.providers.base import PORTAL_TAG, ProviderError, ResourceMissing, provider_for
from workers.tests.recording import record, record_operations

TOKEN = "cmp-0001"


@pytest.fixture
def aws(mocked_clients, monkeypatch):
    # moto starts no tasks; this makes the services it creates report theirs as running
    # and their rollout COMPLETED (read when a service is created).
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "4")
    return mocked_clients


def record_order(client):
    ops = []

    def hook(model, **kwargs):
        ops.append(model.name)

    client.meta.events.register("before-parameter-build.ecs.*", hook)
    return ops


def fail_with(client, operation, code, message):
    """Make the next `operation` calls fail the way AWS answers, before reaching moto."""

    def hook(**kwargs):
        body = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return AWSResponse("https://ecs.us-east-1.amazonaws.com/", 400, {}, None), body

    client.meta.events.register(f"before-call.ecs.{operation}", hook)


def container(name="api", **extra):
    spec = {
        "Name": name,
        "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/tonys-chips-api:latest",
        "Essential": True,
        "Cpu": 256,
        "Memory": 512,
        "PortMappings": [{"ContainerPort": 3000, "Protocol": "tcp"}],
        "Environment": [{"Name": "API_URL", "Value": "http://api.tonys-chips.local:3000"}],
        "Command": ["npm", "start"],
        "HealthCheck": {
            "Command": ["CMD-SHELL", "node -e \"require('http').get('http://localhost:3000/health')\""],
            "Interval": 30,
            "Retries": 3,
            "StartPeriod": 60,
            "Timeout": 5,
        },
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": "/ecs/tonys-chips",
                "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "api",
            },
        },
        "DockerLabels": {"com.example.Team": "chips"},
    }
    spec.update(extra)
    return spec


def task_props(**extra):
    props = {
        "Family": "sandbox-tonys-chips-api",
        "Cpu": "256",
        "Memory": "512",
        "NetworkMode": "awsvpc",
        "RequiresCompatibilities": ["FARGATE"],
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "TaskRoleArn": "arn:aws:iam::123456789012:role/tonys-chips-api-task",
        "ContainerDefinitions": [container()],
        "Tags": [{"Key": "app", "Value": "tonys-chips"}],
    }
    props.update(extra)
    return props


# --- clusters ------------------------------------------------------------------------------


def test_cluster_lifecycle(aws):
    p = provider_for("AWS::ECS::Cluster", aws)
    props = {
        "ClusterName": "tonys-chips-sandbox",
        "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
        "Tags": [{"Key": "env", "Value": "sandbox"}],
    }
    created = p.create(props, TOKEN)
    assert created.physical_id == "tonys-chips-sandbox"
    assert created.resource_value["Arn"].endswith(":cluster/tonys-chips-sandbox")
    assert created.resource_value["ClusterName"] == "tonys-chips-sandbox"

    read = p.read(created.physical_id, props)
    assert read.resource_value["ClusterSettings"] == [{"Name": "containerInsights", "Value": "enabled"}]
    assert read.resource_value["Tags"] == [{"Key": "env", "Value": "sandbox"}]  # no portal tag shown
    raw = aws("ecs").describe_clusters(clusters=["tonys-chips-sandbox"], include=["TAGS"])["clusters"][0]
    assert {"key": PORTAL_TAG, "value": TOKEN} in raw["tags"]

    new = {
        **props,
        "ClusterSettings": [{"Name": "containerInsights", "Value": "disabled"}],
        "Tags": [{"Key": "team", "Value": "chips"}],
    }
    updated = p.update(created.physical_id, props, new)
    assert updated.resource_value["ClusterSettings"] == [{"Name": "containerInsights", "Value": "disabled"}]
    assert p.read(created.physical_id, new).resource_value["Tags"] == [{"Key": "team", "Value": "chips"}]

    p.delete(created.physical_id, new)
    with pytest.raises(ResourceMissing):
        p.read(created.physical_id, new)
    p.delete(created.physical_id, new)  # already gone is a success


def test_cluster_create_is_idempotent_per_token(aws):
    p = provider_for("AWS::ECS::Cluster", aws)
    props = {"ClusterName": "tonys-chips-sandbox"}
    first = p.create(props, TOKEN)
    second = p.create(props, TOKEN)
    assert first.physical_id == second.physical_id
    assert len(aws("ecs").list_clusters()["clusterArns"]) == 1
    with pytest.raises(ProviderError) as err:
        p.create(props, "another-component")
    assert err.value.code == "AlreadyExists"


def test_cluster_create_answers_from_the_create_response_without_reading_again(aws):
    calls = record_operations(aws("ecs"))
    props = {"ClusterName": "tonys-chips-sandbox", "Tags": [{"Key": "env", "Value": "sandbox"}]}
    created = provider_for("AWS::ECS::Cluster", aws).create(props, TOKEN)
    assert calls == ["DescribeClusters", "CreateCluster"]  # the read is the check that the name is free
    assert (
        created.resource_value
        == provider_for("AWS::ECS::Cluster", aws).read("tonys-chips-sandbox").resource_value
    )
    assert created.resource_value["Tags"] == [{"Key": "env", "Value": "sandbox"}]


def test_cluster_name_change_is_a_replacement(aws):
    p = provider_for("AWS::ECS::Cluster", aws)
    created = p.create({"ClusterName": "a"}, TOKEN)
    with pytest.raises(ProviderError) as err:
        p.update(created.physical_id, {"ClusterName": "a"}, {"ClusterName": "b"})
    assert err.value.immutable_property == "ClusterName"


# --- task definitions ------------------------------------------------------------------------


def test_task_definition_converts_nested_keys_both_ways(aws):
    p = provider_for("AWS::ECS::TaskDefinition", aws)
    register_calls = record(aws("ecs"), "RegisterTaskDefinition")
    created = p.create(task_props(), TOKEN)

    sent = register_calls[0]
    c = sent["containerDefinitions"][0]
    assert sent["family"] == "sandbox-tonys-chips-api"
    assert sent["cpu"] == "256" and sent["requiresCompatibilities"] == ["FARGATE"]
    assert c["healthCheck"] == {
        "command": ["CMD-SHELL", "node -e \"require('http').get('http://localhost:3000/health')\""],
        "interval": 30,
        "retries": 3,
        "startPeriod": 60,
        "timeout": 5,
    }
    assert c["environment"] == [{"name": "API_URL", "value": "http://api.tonys-chips.local:3000"}]
    assert c["portMappings"] == [{"containerPort": 3000, "protocol": "tcp"}]
    assert c["command"] == ["npm", "start"]
    # Map keys are user data: kept as written.
    assert c["logConfiguration"]["options"]["awslogs-stream-prefix"] == "api"
    assert c["dockerLabels"] == {"com.example.Team": "chips"}

    value = created.resource_value
    assert created.physical_id.endswith(":task-definition/sandbox-tonys-chips-api:1")
    assert value["TaskDefinitionArn"] == created.physical_id
    assert value["Family"] == "sandbox-tonys-chips-api"
    assert value["Revision"] == 1
    cd = value["ContainerDefinitions"][0]
    assert cd["HealthCheck"]["StartPeriod"] == 60
    assert cd["Environment"] == [{"Name": "API_URL", "Value": "http://api.tonys-chips.local:3000"}]
    assert cd["LogConfiguration"]["Options"]["awslogs-group"] == "/ecs/tonys-chips"
    assert value["Tags"] == [{"Key": "app", "Value": "tonys-chips"}]


def test_task_definition_lifecycle_update_registers_new_revision(aws):
    p = provider_for("AWS::ECS::TaskDefinition", aws)
    ecs = aws("ecs")
    old = task_props()
    created = p.create(old, TOKEN)
    assert p.read(created.physical_id, old).resource_value["Revision"] == 1

    new = task_props(
        ContainerDefinitions=[
            container(Environment=[{"Name": "API_URL", "Value": "http://api.tonys-chips.local:3000/v2"}])
        ]
    )
    order = record_order(ecs)
    updated = p.update(created.physical_id, old, new)
    assert updated.physical_id != created.physical_id
    assert updated.physical_id.endswith(":2")
    assert updated.resource_value["Revision"] == 2
    # The old revision stays ACTIVE, in the same family: a rollback can go back to it.
    assert "DeregisterTaskDefinition" not in order
    previous = ecs.describe_task_definition(taskDefinition=created.physical_id)["taskDefinition"]
    assert previous["status"] == "ACTIVE" and previous["family"] == updated.resource_value["Family"]

    read = p.read(updated.physical_id, new)
    env = read.resource_value["ContainerDefinitions"][0]["Environment"]
    assert env == [{"Name": "API_URL", "Value": "http://api.tonys-chips.local:3000/v2"}]

    # The same update retried after a crash adopts revision 2 instead of registering a third.
    again = p.update(created.physical_id, old, new)
    assert again.physical_id == updated.physical_id
    assert ecs.list_task_definitions(familyPrefix="sandbox-tonys-chips-api")["taskDefinitionArns"] == [
        created.physical_id,
        updated.physical_id,
    ]
    with pytest.raises(ClientError):
        ecs.describe_task_definition(taskDefinition="sandbox-tonys-chips-api:3")

    p.delete(updated.physical_id, new)
    with pytest.raises(ResourceMissing):
        p.read(updated.physical_id, new)
    p.delete(updated.physical_id, new)


def test_task_definition_create_is_idempotent_per_token(aws):
    p = provider_for("AWS::ECS::TaskDefinition", aws)
    first = p.create(task_props(), TOKEN)
    second = p.create(task_props(), TOKEN)
    assert first.physical_id == second.physical_id
    arns = aws("ecs").list_task_definitions(familyPrefix="sandbox-tonys-chips-api")["taskDefinitionArns"]
    assert arns == [first.physical_id]
    # A different definition for the same component is a new revision (a replacement).
    third = p.create(task_props(Memory="1024"), TOKEN)
    assert third.physical_id.endswith(":2")


def test_task_definition_tags_only_update_keeps_revision(aws):
    p = provider_for("AWS::ECS::TaskDefinition", aws)
    old = task_props()
    created = p.create(old, TOKEN)
    new = task_props(Tags=[{"Key": "app", "Value": "tonys-chips"}, {"Key": "owner", "Value": "platform"}])
    updated = p.update(created.physical_id, old, new)
    assert updated.physical_id == created.physical_id
    assert {"Key": "owner", "Value": "platform"} in updated.resource_value["Tags"]


# --- services ------------------------------------------------------------------------------------


@pytest.fixture
def stack(aws):
    """A cluster, two task definition revisions, a VPC with a subnet and security group,
    a target group and a Cloud Map service: what the seed's API service stands on."""
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="api-sg-v2", Description="api", VpcId=vpc)["GroupId"]
    tg = aws("elbv2").create_target_group(
        Name="sandbox-tonys-chips-api-tg", Protocol="HTTP", Port=3000, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    sd = aws("servicediscovery")
    op = sd.create_private_dns_namespace(Name="tonys-chips.local", Vpc=vpc)["OperationId"]
    ns = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    registry = sd.create_service(
        Name="api",
        DnsConfig={"NamespaceId": ns, "DnsRecords": [{"Type": "A", "TTL": 60}]},
        HealthCheckCustomConfig={"FailureThreshold": 1},
    )["Service"]["Arn"]
    provider_for("AWS::ECS::Cluster", aws).create({"ClusterName": "tonys-chips-sandbox"}, "cluster")
    tds = provider_for("AWS::ECS::TaskDefinition", aws)
    td1 = tds.create(task_props(), "task").physical_id
    td2 = tds.create(task_props(Memory="1024"), "task").physical_id
    return {"subnet": subnet, "sg": sg, "tg": tg, "registry": registry, "td1": td1, "td2": td2}


def service_props(stack, **extra):
    props = {
        "Cluster": "tonys-chips-sandbox",
        "ServiceName": "sandbox-tonys-chips-api",
        "TaskDefinition": stack["td1"],
        "DesiredCount": 2,
        "LaunchType": "FARGATE",
        "PlatformVersion": "LATEST",
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {
                "Subnets": [stack["subnet"]],
                "SecurityGroups": [stack["sg"]],
                "AssignPublicIp": "DISABLED",
            }
        },
        "LoadBalancers": [{"TargetGroupArn": stack["tg"], "ContainerName": "api", "ContainerPort": 3000}],
        "ServiceRegistries": [{"RegistryArn": stack["registry"]}],
        "DeploymentConfiguration": {
            "MaximumPercent": 200,
            "MinimumHealthyPercent": 50,
            "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
        },
        "HealthCheckGracePeriodSeconds": 60,
        "EnableExecuteCommand": True,
        "Tags": [{"Key": "app", "Value": "tonys-chips"}],
    }
    props.update(extra)
    return props


def test_service_lifecycle(aws, stack):
    p = provider_for("AWS::ECS::Service", aws)
    ecs = aws("ecs")
    create_calls = record(ecs, "CreateService")
    props = service_props(stack)
    created = p.create(props, TOKEN)

    sent = create_calls[0]
    assert sent["desiredCount"] == 2
    assert sent["deploymentConfiguration"] == {
        "maximumPercent": 200,
        "minimumHealthyPercent": 50,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    }
    assert sent["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
    assert sent["serviceRegistries"] == [{"registryArn": stack["registry"]}]
    assert sent["clientToken"]
    assert {"key": PORTAL_TAG, "value": TOKEN} in sent["tags"]

    assert created.physical_id.endswith(":service/tonys-chips-sandbox/sandbox-tonys-chips-api")
    value = p.read(created.physical_id, props).resource_value
    assert value["ServiceArn"] == created.physical_id
    assert value["Name"] == value["ServiceName"] == "sandbox-tonys-chips-api"
    assert value["Cluster"] == "tonys-chips-sandbox"
    assert value["DesiredCount"] == 2
    assert value["TaskDefinition"] == stack["td1"]
    assert value["ServiceRegistries"] == [{"RegistryArn": stack["registry"]}]
    assert value["LoadBalancers"] == [
        {"TargetGroupArn": stack["tg"], "ContainerName": "api", "ContainerPort": 3000}
    ]
    assert value["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] == [stack["subnet"]]
    assert value["Deployments"][0]["Status"] == "PRIMARY"
    assert value["Deployments"][0]["TaskDefinition"] == stack["td1"]
    assert "RunningCount" in value
    assert value["Tags"] == [{"Key": "app", "Value": "tonys-chips"}]

    new = service_props(stack, TaskDefinition=stack["td2"], Tags=[{"Key": "app", "Value": "chips"}])
    updated = p.update(created.physical_id, props, new)
    assert updated.physical_id == created.physical_id
    read = p.read(created.physical_id, new).resource_value
    assert read["TaskDefinition"] == stack["td2"]
    assert read["Tags"] == [{"Key": "app", "Value": "chips"}]

    p.delete(created.physical_id, new)
    with pytest.raises(ResourceMissing):
        p.read(created.physical_id, new)
    p.delete(created.physical_id, new)  # already gone


def test_service_update_never_sends_unchanged_desired_count(aws, stack):
    p = provider_for("AWS::ECS::Service", aws)
    ecs = aws("ecs")
    props = service_props(stack)
    created = p.create(props, TOKEN)
    # Someone (autoscaling, an operator at 2 a.m.) scales the service to 4 outside the portal.
    ecs.update_service(cluster="tonys-chips-sandbox", service=created.physical_id, desiredCount=4)

    update_calls = record(ecs, "UpdateService")
    p.update(created.physical_id, props, service_props(stack, TaskDefinition=stack["td2"]))

    assert len(update_calls) == 1
    assert "desiredCount" not in update_calls[0]
    assert set(update_calls[0]) == {"cluster", "service", "taskDefinition"}
    assert update_calls[0]["taskDefinition"] == stack["td2"]
    svc = ecs.describe_services(cluster="tonys-chips-sandbox", services=[created.physical_id])["services"][0]
    assert svc["desiredCount"] == 4
    assert svc["taskDefinition"] == stack["td2"]
    assert p.read(created.physical_id, props).resource_value["DesiredCount"] == 4


def test_service_update_sends_desired_count_when_it_changed(aws, stack):
    p = provider_for("AWS::ECS::Service", aws)
    props = service_props(stack)
    created = p.create(props, TOKEN)
    update_calls = record(aws("ecs"), "UpdateService")
    updated = p.update(created.physical_id, props, service_props(stack, DesiredCount=3))
    assert update_calls == [
        {"cluster": "tonys-chips-sandbox", "service": created.physical_id, "desiredCount": 3}
    ]
    assert updated.resource_value["DesiredCount"] == 3


def test_service_update_sends_only_what_changed(aws, stack):
    p = provider_for("AWS::ECS::Service", aws)
    props = service_props(stack)
    created = p.create(props, TOKEN)
    update_calls = record(aws("ecs"), "UpdateService")

    # Nothing changed: no call at all.
    p.update(created.physical_id, props, copy.deepcopy(props))
    assert update_calls == []

    new = service_props(
        stack,
        LoadBalancers=[],
        DeploymentConfiguration={"MaximumPercent": 200, "MinimumHealthyPercent": 100},
        HealthCheckGracePeriodSeconds=90,
    )
    updated = p.update(created.physical_id, props, new)
    sent = update_calls[0]
    assert sent["loadBalancers"] == []
    assert sent["deploymentConfiguration"] == {"maximumPercent": 200, "minimumHealthyPercent": 100}
    assert sent["healthCheckGracePeriodSeconds"] == 90
    assert not {"desiredCount", "taskDefinition", "networkConfiguration", "serviceRegistries"} & set(sent)
    assert updated.resource_value["LoadBalancers"] == []
    assert updated.resource_value["ServiceRegistries"] == [{"RegistryArn": stack["registry"]}]


def test_service_force_new_deployment_keeps_desired_count(aws, stack):
    p = provider_for("AWS::ECS::Service", aws)
    props = service_props(
        stack, ForceNewDeployment={"EnableForceNewDeployment": True, "ForceNewDeploymentNonce": "1"}
    )
    created = p.create(props, TOKEN)
    update_calls = record(aws("ecs"), "UpdateService")
    new = {**props, "ForceNewDeployment": {"EnableForceNewDeployment": True, "ForceNewDeploymentNonce": "2"}}
    p.update(created.physical_id, props, new)
    assert update_calls == [
        {"cluster": "tonys-chips-sandbox", "service": created.physical_id, "forceNewDeployment": True}
    ]


@pytest.mark.parametrize(
    "key,value", [("ServiceName", "renamed"), ("Cluster", "other"), ("LaunchType", "EC2")]
)
def test_service_immutable_properties_ask_for_replacement(aws, stack, key, value):
    p = provider_for("AWS::ECS::Service", aws)
    props = service_props(stack)
    created = p.create(props, TOKEN)
    update_calls = record(aws("ecs"), "UpdateService")
    with pytest.raises(ProviderError) as err:
        p.update(created.physical_id, props, {**props, key: value})
    assert err.value.immutable_property == key
    assert update_calls == []


def test_service_cluster_arn_or_name_is_the_same_cluster(aws, stack):
    p = provider_for("AWS::ECS::Service", aws)
    props = service_props(stack)
    created = p.create(props, TOKEN)
    arn = aws("ecs").describe_clusters(clusters=["tonys-chips-sandbox"])["clusters"][0]["clusterArn"]
    p.update(created.physical_id, props, {**props, "Cluster": arn})  # no replacement asked


@pytest.mark.parametrize(
    "message,expected",
    [
        (
            "Unable to update service registries on services with a CODE_DEPLOY deployment controller. "
            "Use AWS CodeDeploy to trigger a new deployment.",
            "ServiceRegistries",
        ),
        ("ServiceRegistries cannot be updated for an existing service.", "ServiceRegistries"),
        (
            "Unable to update load balancers on services with a CODE_DEPLOY deployment controller.",
            "LoadBalancers",
        ),
        ("The target group does not have an associated load balancer.", None),
    ],
)
def test_service_update_refused_by_aws_names_the_immutable_property(aws, stack, message, expected):
    p = provider_for("AWS::ECS::Service", aws)
    props = service_props(stack, ServiceRegistries=[], LoadBalancers=[])
    created = p.create(props, TOKEN)
    fail_with(aws("ecs"), "UpdateService", "InvalidParameterException", message)
    new = service_props(stack)  # add ServiceRegistries and LoadBalancers to the live service
    with pytest.raises(ProviderError) as err:
        p.update(created.physical_id, props, new)
    assert err.value.code == "InvalidParameterException"
    assert err.value.immutable_property == expected
    assert message in err.value.message


def test_service_create_is_idempotent_per_token(aws, stack):
    p = provider_for("AWS::ECS::Service", aws)
    ecs = aws("ecs")
    create_calls = record(ecs, "CreateService")
    props = service_props(stack)
    first = p.create(props, TOKEN)
    second = p.create(props, TOKEN)  # the worker died after CreateService; the retry adopts
    assert first.physical_id == second.physical_id
    assert len(create_calls) == 1
    assert ecs.list_services(cluster="tonys-chips-sandbox")["serviceArns"] == [first.physical_id]
    with pytest.raises(ProviderError) as err:
        p.create(props, "some-other-component")
    assert err.value.code == "AlreadyExists"


def test_service_delete_scales_to_zero_then_force_deletes(aws, stack):
    p = provider_for("AWS::ECS::Service", aws)
    ecs = aws("ecs")
    props = service_props(stack)
    created = p.create(props, TOKEN)
    update_calls = record(ecs, "UpdateService")
    delete_calls = record(ecs, "DeleteService")
    order = record_order(ecs)
    p.delete(created.physical_id, props)
    assert update_calls == [
        {"cluster": "tonys-chips-sandbox", "service": created.physical_id, "desiredCount": 0}
    ]
    assert delete_calls == [{"cluster": "tonys-chips-sandbox", "service": created.physical_id, "force": True}]
    assert order.index("UpdateService") < order.index("DeleteService")
    with pytest.raises(ResourceMissing):
        p.read(created.physical_id, props)
    # After the delete (a replacement), the same component can create the service again.
    again = p.create(props, TOKEN)
    assert p.read(again.physical_id, props).resource_value["Status"] == "ACTIVE"
