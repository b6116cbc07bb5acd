"""How the providers meet what real AWS answers and moto does not model (or models
differently): repeated Cloud Map creates, deletes refused while something drains, roles not
yet assumable, lost responses, failed ECS rollouts and stuck CloudFormation rollbacks.

Where moto is not faithful the client is driven by botocore's Stubber, with answers shaped
like the AWS API reference's (error codes and messages as AWS sends them)."""

import boto3
import pytest
from botocore.stub import Stubber

from portal.schemas import replacement_paths
from workers.aws import botocore_config
from workers.providers.base import PORTAL_TAG, ProviderError, provider_for
from workers.providers.cloudformation import StackProvider
from workers.providers.common import request_token
from workers.tests.recording import lose_first_response, record

REGION = "us-east-1"
TOKEN = "cmp-0042"
NAMESPACE_ARN = "arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-abcdefghijklmnop"


@pytest.fixture(autouse=True)
def no_waiting(settings):
    settings.PORTAL_AWS_POLL_SECONDS = 0.0


def stubbed(service):
    client = boto3.client(service, region_name=REGION, config=botocore_config())
    return client, Stubber(client)


# --- Cloud Map: a namespace create repeated after a crash ---------------------------------


def namespace_reads(stub):
    stub.add_response(
        "get_namespace",
        {
            "Namespace": {
                "Id": "ns-abcdefghijklmnop",
                "Arn": NAMESPACE_ARN,
                "Name": "tonys-chips.local",
                "Type": "DNS_PRIVATE",
                "Properties": {"DnsProperties": {"HostedZoneId": "Z0123456789ABCDEFGHIJ"}},
            }
        },
        {"Id": "ns-abcdefghijklmnop"},
    )
    stub.add_response("list_tags_for_resource", {"Tags": [{"Key": PORTAL_TAG, "Value": TOKEN}]})


def namespace_create(sd):
    p = provider_for("AWS::ServiceDiscovery::PrivateDnsNamespace", lambda service: sd)
    return p.create({"Name": "tonys-chips.local", "Vpc": "vpc-0123456789abcdef0"}, TOKEN)


def test_a_repeated_namespace_create_waits_for_the_first_operation_still_in_flight():
    sd, stub = stubbed("servicediscovery")
    with stub:
        stub.add_response("list_namespaces", {"Namespaces": []})  # not visible yet
        stub.add_client_error(
            "create_private_dns_namespace",
            service_error_code="DuplicateRequest",
            service_message="The operation is already in progress.",
            modeled_fields={"DuplicateOperationId": "op-first-attempt"},
        )
        stub.add_response(
            "get_operation",
            {"Operation": {"Id": "op-first-attempt", "Status": "PENDING"}},
            {"OperationId": "op-first-attempt"},
        )
        stub.add_response(
            "get_operation",
            {
                "Operation": {
                    "Id": "op-first-attempt",
                    "Status": "SUCCESS",
                    "Targets": {"NAMESPACE": "ns-abcdefghijklmnop"},
                }
            },
        )
        namespace_reads(stub)
        created = namespace_create(sd)
        stub.assert_no_pending_responses()
    assert created.physical_id == "ns-abcdefghijklmnop"


def test_a_repeated_namespace_create_adopts_the_namespace_the_first_attempt_made():
    sd, stub = stubbed("servicediscovery")
    with stub:
        stub.add_response("list_namespaces", {"Namespaces": []})
        stub.add_client_error(
            "create_private_dns_namespace",
            service_error_code="NamespaceAlreadyExists",
            service_message="Namespace already exists with id ns-abcdefghijklmnop",
            modeled_fields={"CreatorRequestId": request_token(TOKEN), "NamespaceId": "ns-abcdefghijklmnop"},
        )
        namespace_reads(stub)
        created = namespace_create(sd)
        stub.assert_no_pending_responses()
    assert created.physical_id == "ns-abcdefghijklmnop"


def test_a_namespace_someone_else_created_under_that_name_is_not_adopted():
    sd, stub = stubbed("servicediscovery")
    with stub:
        stub.add_response("list_namespaces", {"Namespaces": []})
        stub.add_client_error(
            "create_private_dns_namespace",
            service_error_code="NamespaceAlreadyExists",
            service_message="Namespace already exists with id ns-abcdefghijklmnop",
            modeled_fields={"CreatorRequestId": "someone-else", "NamespaceId": "ns-abcdefghijklmnop"},
        )
        with pytest.raises(ProviderError) as err:
            namespace_create(sd)
    assert err.value.code == "NamespaceAlreadyExists"


# --- deletes refused while something drains ----------------------------------------------

TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/0123456789abcdef"
IN_USE = "Target group 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/0123456789abcdef' is currently in use by a listener or a rule"


def test_a_target_group_delete_is_retried_while_elb_still_uses_it():
    elb, stub = stubbed("elbv2")
    with stub:
        for _ in range(2):
            stub.add_client_error(
                "delete_target_group", service_error_code="ResourceInUse", service_message=IN_USE
            )
        stub.add_response("delete_target_group", {}, {"TargetGroupArn": TG_ARN})
        provider_for("AWS::ElasticLoadBalancingV2::TargetGroup", lambda service: elb).delete(TG_ARN, {})
        stub.assert_no_pending_responses()


def test_a_delete_still_refused_after_the_bound_fails_with_aws_reason(settings):
    settings.PORTAL_AWS_IN_USE_TIMEOUT = 0.0
    elb, stub = stubbed("elbv2")
    with stub:
        stub.add_client_error(
            "delete_target_group", service_error_code="ResourceInUse", service_message=IN_USE
        )
        with pytest.raises(ProviderError) as err:
            provider_for("AWS::ElasticLoadBalancingV2::TargetGroup", lambda service: elb).delete(TG_ARN, {})
    assert err.value.code == "ResourceInUse"
    assert "currently in use by a listener" in err.value.message


def test_a_cloud_map_service_delete_is_retried_while_instances_deregister():
    sd, stub = stubbed("servicediscovery")
    with stub:
        stub.add_client_error(
            "delete_service",
            service_error_code="ResourceInUse",
            service_message="Service contains registered instances; delete the instances before deleting the service",
        )
        stub.add_response("delete_service", {}, {"Id": "srv-abcdefghijklmnop"})
        provider_for("AWS::ServiceDiscovery::Service", lambda service: sd).delete("srv-abcdefghijklmnop", {})
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    "code, message",
    [
        ("ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active."),
        ("ClusterContainsTasksException", "The Cluster cannot be deleted while Tasks are active."),
        (
            "ClusterContainsContainerInstancesException",
            "The Cluster cannot be deleted while Container Instances are active or draining.",
        ),
    ],
)
def test_an_ecs_cluster_delete_is_retried_while_its_services_and_tasks_drain(code, message):
    ecs, stub = stubbed("ecs")
    with stub:
        stub.add_client_error("delete_cluster", service_error_code=code, service_message=message)
        stub.add_response("delete_cluster", {"cluster": {"clusterName": "sandbox", "status": "INACTIVE"}})
        stub.add_response(
            "describe_clusters", {"clusters": [{"clusterName": "sandbox", "status": "INACTIVE"}]}
        )
        provider_for("AWS::ECS::Cluster", lambda service: ecs).delete("sandbox", {})
        stub.assert_no_pending_responses()


def test_a_security_group_delete_is_retried_while_network_interfaces_hold_it():
    ec2, stub = stubbed("ec2")
    with stub:
        stub.add_client_error(
            "delete_security_group",
            service_error_code="DependencyViolation",
            service_message="resource sg-0123456789abcdef0 has a dependent object",
        )
        stub.add_response("delete_security_group", {}, {"GroupId": "sg-0123456789abcdef0"})
        provider_for("AWS::EC2::SecurityGroup", lambda service: ec2).delete("sg-0123456789abcdef0", {})
        stub.assert_no_pending_responses()


# --- IAM eventual consistency: a role not assumable yet ------------------------------------

STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:deploy"
ROLE_ARN = "arn:aws:iam::123456789012:role/deploy"


def test_a_state_machine_create_waits_until_step_functions_can_assume_the_new_role():
    sfn, stub = stubbed("stepfunctions")
    with stub:
        stub.add_response("list_state_machines", {"stateMachines": []})
        stub.add_client_error(
            "create_state_machine",
            service_error_code="AccessDeniedException",
            service_message="Neither the global service principal states.amazonaws.com, nor the regional one "
            "is authorized to assume the provided role.",
        )
        stub.add_response(
            "create_state_machine",
            {"stateMachineArn": STATE_MACHINE_ARN, "creationDate": "2025-01-01T00:00:00Z"},
        )
        stub.add_response(
            "describe_state_machine",
            {
                "stateMachineArn": STATE_MACHINE_ARN,
                "name": "deploy",
                "status": "ACTIVE",
                "definition": '{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}',
                "roleArn": ROLE_ARN,
                "type": "STANDARD",
                "creationDate": "2025-01-01T00:00:00Z",
            },
        )
        stub.add_response("list_tags_for_resource", {"tags": [{"key": PORTAL_TAG, "value": TOKEN}]})
        created = provider_for("AWS::StepFunctions::StateMachine", lambda service: sfn).create(
            {
                "StateMachineName": "deploy",
                "RoleArn": ROLE_ARN,
                "Definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
            },
            TOKEN,
        )
        stub.assert_no_pending_responses()
    assert created.physical_id == STATE_MACHINE_ARN


def test_a_refusal_that_is_not_about_the_role_is_not_retried():
    sfn, stub = stubbed("stepfunctions")
    with stub:
        stub.add_response("list_state_machines", {"stateMachines": []})
        stub.add_client_error(
            "create_state_machine",
            service_error_code="InvalidDefinition",
            service_message="Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET'",
        )
        with pytest.raises(ProviderError) as err:
            provider_for("AWS::StepFunctions::StateMachine", lambda service: sfn).create(
                {"StateMachineName": "deploy", "RoleArn": ROLE_ARN, "Definition": {"StartAt": "A"}}, TOKEN
            )
        stub.assert_no_pending_responses()
    assert err.value.code == "InvalidDefinition"


# --- a create whose response was lost (botocore retried it) -------------------------------

TRUST = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'


def test_a_role_whose_create_response_was_lost_is_adopted_by_its_tag(mocked_clients):
    iam = mocked_clients("iam")
    lose_first_response(iam, "CreateRole")
    calls = record(iam, "CreateRole")
    created = provider_for("AWS::IAM::Role", mocked_clients).create(
        {"RoleName": "api-task", "AssumeRolePolicyDocument": TRUST}, TOKEN
    )
    assert created.physical_id == "api-task"
    assert len(calls) == 1  # one call, sent twice by botocore


def test_a_log_group_whose_create_response_was_lost_is_adopted_by_its_tag(mocked_clients):
    lose_first_response(mocked_clients("logs"), "CreateLogGroup")
    created = provider_for("AWS::Logs::LogGroup", mocked_clients).create({"LogGroupName": "/ecs/api"}, TOKEN)
    assert created.physical_id == "/ecs/api"


def test_a_route_table_create_carries_a_client_token(mocked_clients):
    ec2 = mocked_clients("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    calls = record(ec2, "CreateRouteTable")
    provider_for("AWS::EC2::RouteTable", mocked_clients).create({"VpcId": vpc}, TOKEN)
    assert calls[0]["ClientToken"]
    other_vpc = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    provider_for("AWS::EC2::RouteTable", mocked_clients).create({"VpcId": other_vpc}, "cmp-other")
    assert calls[1]["ClientToken"] != calls[0]["ClientToken"]


# --- IAM: a managed policy that does not exist ----------------------------------------------


def test_a_missing_managed_policy_is_named_not_reported_as_a_vanished_role(mocked_clients):
    missing = "arn:aws:iam::123456789012:policy/does-not-exist"
    with pytest.raises(ProviderError) as err:
        provider_for("AWS::IAM::Role", mocked_clients).create(
            {"RoleName": "api-task", "AssumeRolePolicyDocument": TRUST, "ManagedPolicyArns": [missing]}, TOKEN
        )
    assert err.value.code == "NoSuchEntity"
    assert f"The managed policy {missing} in ManagedPolicyArns does not exist" in err.value.message


# --- ECS: create and update wait for a steady state ----------------------------------------

SERVICE_ARN = "arn:aws:ecs:us-east-1:123456789012:service/sandbox/api"


def service(rollout, reason, *, deployment="ecs-svc/1111", status="PRIMARY", events=()):
    return {
        "serviceArn": SERVICE_ARN,
        "serviceName": "api",
        "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/sandbox",
        "status": "ACTIVE",
        "desiredCount": 2,
        "runningCount": 0,
        "pendingCount": 0,
        "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/api:7",
        "deployments": [
            {
                "id": deployment,
                "status": status,
                "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/api:7",
                "desiredCount": 2,
                "runningCount": 0,
                "failedTasks": 4,
                "rolloutState": rollout,
                "rolloutStateReason": reason,
            }
        ],
        "events": [
            {"id": str(i), "message": m, "createdAt": "2025-01-01T00:00:00Z"} for i, m in enumerate(events)
        ],
    }


def test_a_service_create_fails_with_ecs_reason_when_the_rollout_fails():
    ecs, stub = stubbed("ecs")
    with stub:
        stub.add_response(
            "describe_services", {"services": [], "failures": [{"arn": "api", "reason": "MISSING"}]}
        )
        stub.add_response(
            "create_service", {"service": service("IN_PROGRESS", "ECS deployment ecs-svc/1111 in progress.")}
        )
        stub.add_response(
            "describe_services",
            {"services": [service("IN_PROGRESS", "ECS deployment ecs-svc/1111 in progress.")]},
        )
        reason = "ECS deployment circuit breaker: tasks failed to start."
        stub.add_response("describe_services", {"services": [service("FAILED", reason)]})
        with pytest.raises(ProviderError) as err:
            provider_for("AWS::ECS::Service", lambda s: ecs).create(
                {"Cluster": "sandbox", "ServiceName": "api", "TaskDefinition": "api:7", "DesiredCount": 2},
                TOKEN,
            )
        stub.assert_no_pending_responses()
    assert err.value.code == "DeploymentFailed"
    assert reason in err.value.message


def test_a_service_update_rolled_back_by_the_circuit_breaker_fails_with_the_service_events():
    ecs, stub = stubbed("ecs")
    old = {"Cluster": "sandbox", "ServiceName": "api", "TaskDefinition": "api:6"}
    with stub:
        stub.add_response(
            "describe_services", {"services": [service("COMPLETED", "done", deployment="ecs-svc/0000")]}
        )
        stub.add_response("update_service", {"service": service("IN_PROGRESS", "in progress")})
        # The rollback made the previous revision's deployment PRIMARY again.
        rolled_back = service(
            "IN_PROGRESS",
            "rolling back",
            deployment="ecs-svc/2222",
            events=("(service api) rolling back to deployment ecs-svc/0000.",),
        )
        stub.add_response("describe_services", {"services": [rolled_back]})
        with pytest.raises(ProviderError) as err:
            provider_for("AWS::ECS::Service", lambda s: ecs).update(
                SERVICE_ARN, old, {**old, "TaskDefinition": "api:7"}
            )
    assert "rolling back to deployment ecs-svc/0000" in err.value.message


def test_a_launch_type_change_is_planned_as_a_replacement():
    old = {"Cluster": "sandbox", "LaunchType": "EC2", "TaskDefinition": "api:7"}
    assert replacement_paths("AWS::ECS::Service", old, {**old, "LaunchType": "FARGATE"}) == ["/LaunchType"]


# --- CloudFormation: stuck rollbacks and failed deletes -------------------------------------

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/shop/11111111-2222-3333-4444-555555555555"


def stack(status, reason=None):
    body = {
        "StackId": STACK_ID,
        "StackName": "shop",
        "StackStatus": status,
        "CreationTime": "2025-01-01T00:00:00Z",
    }
    if reason:
        body["StackStatusReason"] = reason
    return {"Stacks": [body]}


def event(logical, kind, status, reason=None, physical=""):
    body = {
        "StackId": STACK_ID,
        "EventId": f"{logical}-{status}",
        "StackName": "shop",
        "LogicalResourceId": logical,
        "PhysicalResourceId": physical,
        "ResourceType": kind,
        "Timestamp": "2025-01-01T00:00:00Z",
        "ResourceStatus": status,
    }
    if reason:
        body["ResourceStatusReason"] = reason
    return body


UPDATE_EVENTS = {
    "StackEvents": [
        event(
            "Queue", "AWS::SQS::Queue", "UPDATE_FAILED", 'Resource handler returned message: "Access Denied"'
        ),
        event("Logs", "AWS::Logs::LogGroup", "UPDATE_FAILED", "Retention 13 is not a valid value"),
        event("shop", "AWS::CloudFormation::Stack", "UPDATE_IN_PROGRESS", "User Initiated", STACK_ID),
    ]
}


def test_an_update_whose_rollback_failed_is_rolled_back_and_explained():
    cf, stub = stubbed("cloudformation")
    with stub:
        stub.add_response("describe_stacks", stack("UPDATE_COMPLETE"))
        stub.add_response("update_stack", {"StackId": STACK_ID})
        stub.add_response("describe_stacks", stack("UPDATE_ROLLBACK_FAILED"))
        stub.add_response("describe_stack_events", UPDATE_EVENTS)
        stub.add_response("continue_update_rollback", {}, {"StackName": STACK_ID})
        stub.add_response("describe_stacks", stack("UPDATE_ROLLBACK_IN_PROGRESS"))
        stub.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"))
        with pytest.raises(ProviderError) as err:
            StackProvider(lambda s: cf).update(STACK_ID, {}, {"TemplateBody": {"Resources": {}}})
        stub.assert_no_pending_responses()
    assert err.value.code == "UPDATE_ROLLBACK_FAILED"
    assert "Retention 13 is not a valid value" in err.value.message
    assert "ContinueUpdateRollback" in err.value.message


def test_an_update_first_finishes_a_rollback_an_earlier_attempt_left_failed():
    cf, stub = stubbed("cloudformation")
    with stub:
        stub.add_response("describe_stacks", stack("UPDATE_ROLLBACK_FAILED"))
        stub.add_response("continue_update_rollback", {}, {"StackName": STACK_ID})
        stub.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"))
        stub.add_response("update_stack", {"StackId": STACK_ID})
        stub.add_response("describe_stacks", stack("UPDATE_COMPLETE"))
        stub.add_response("describe_stacks", stack("UPDATE_COMPLETE"))
        stub.add_response("get_template", {"TemplateBody": '{"Resources": {}}'})
        updated = StackProvider(lambda s: cf).update(STACK_ID, {}, {"TemplateBody": {"Resources": {}}})
        stub.assert_no_pending_responses()
    assert updated.resource_value["StackStatus"] == "UPDATE_COMPLETE"


def test_a_failed_stack_delete_names_the_resources_and_their_reasons():
    cf, stub = stubbed("cloudformation")
    with stub:
        stub.add_response("describe_stacks", stack("CREATE_COMPLETE"))
        stub.add_response("delete_stack", {}, {"StackName": STACK_ID})
        stub.add_response("describe_stacks", stack("DELETE_FAILED"))
        stub.add_response(
            "describe_stack_events",
            {
                "StackEvents": [
                    event(
                        "Bucket",
                        "AWS::S3::Bucket",
                        "DELETE_FAILED",
                        "The bucket you tried to delete is not empty",
                        "shop-bucket",
                    ),
                    event(
                        "shop", "AWS::CloudFormation::Stack", "DELETE_IN_PROGRESS", "User Initiated", STACK_ID
                    ),
                ]
            },
        )
        with pytest.raises(ProviderError) as err:
            StackProvider(lambda s: cf).delete(STACK_ID, {})
        stub.assert_no_pending_responses()
    assert err.value.code == "DELETE_FAILED"
    assert (
        "Bucket (AWS::S3::Bucket) DELETE_FAILED: The bucket you tried to delete is not empty"
        in err.value.message
    )
    assert "RetainResources" in err.value.message
