"""Cloud Map, CloudFormation, IAM and Logs providers against moto (in-process): round trips,
crash-safe creates, stack outputs in resource_value and stack failures."""

import json

import boto3
import pytest
from botocore.stub import Stubber

from workers.aws import botocore_config
from workers.providers.base import PORTAL_TAG, ProviderError, ResourceMissing, provider_for
from workers.providers.cloudformation import StackProvider
from workers.providers.iam import RoleProvider
from workers.providers.logs import LogGroupProvider
from workers.providers.servicediscovery import PrivateDnsNamespaceProvider, ServiceProvider
from workers.tests.recording import record_operations

REGION = "us-east-1"


@pytest.fixture
def clients(mocked_clients):
    return mocked_clients


@pytest.fixture
def boto(clients):
    """Plain boto3 clients on the same moto state, to look behind the providers' backs."""
    return lambda service: boto3.client(service, region_name=REGION)


def new_vpc(boto):
    return boto("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]


def assert_json(value):
    assert json.loads(json.dumps(value)) == value


# --- Cloud Map: private DNS namespace ----------------------------------------------------


def test_it_round_trips_a_private_dns_namespace(clients, boto):
    p = provider_for("AWS::ServiceDiscovery::PrivateDnsNamespace", clients)
    props = {
        "Name": "tonys-chips.local",
        "Vpc": new_vpc(boto),
        "Description": "service discovery",
        "Tags": [{"Key": "app", "Value": "tonys-chips"}],
    }
    namespace_id = p.create(props, "ns-token").physical_id
    assert namespace_id.startswith("ns-")
    value = p.read(namespace_id, props).resource_value
    assert_json(value)
    assert value["Id"] == namespace_id
    assert value["Arn"].endswith(f":namespace/{namespace_id}")
    assert value["HostedZoneId"] and "/" not in value["HostedZoneId"]
    assert value["Name"] == "tonys-chips.local"
    assert value["Vpc"] == props["Vpc"]
    assert value["Tags"] == [{"Key": "app", "Value": "tonys-chips"}]

    new = {**props, "Description": "Cloud Map for the shop", "Tags": [{"Key": "team", "Value": "chips"}]}
    p.update(namespace_id, props, new)
    value = p.read(namespace_id, new).resource_value
    assert value["Description"] == "Cloud Map for the shop"
    assert value["Tags"] == [{"Key": "team", "Value": "chips"}]

    with pytest.raises(ProviderError) as err:
        p.update(namespace_id, new, {**new, "Name": "other.local"})
    assert err.value.immutable_property == "Name"

    p.delete(namespace_id, new)
    with pytest.raises(ResourceMissing):
        p.read(namespace_id)
    p.delete(namespace_id, new)


def test_it_creates_a_namespace_once_per_token(clients, boto):
    # moto ignores CreatorRequestId (a repeat raises ConflictingDomainExists): the provider
    # must find the first attempt's namespace by name and tag before calling create again.
    p = PrivateDnsNamespaceProvider(clients)
    props = {"Name": "tonys-chips.local", "Vpc": new_vpc(boto)}
    a = p.create(props, "ns-once")
    b = p.create(props, "ns-once")
    assert a.physical_id == b.physical_id
    assert len(boto("servicediscovery").list_namespaces()["Namespaces"]) == 1


@pytest.fixture
def namespace(clients, boto):
    props = {"Name": "tonys-chips.local", "Vpc": new_vpc(boto)}
    return PrivateDnsNamespaceProvider(clients).create(props, "namespace").physical_id


# --- Cloud Map: service -----------------------------------------------------------------


def api_service(namespace_id):
    # The seed's service, as its CloudFormation template wrote it.
    return {
        "Name": "api",
        "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 60}], "NamespaceId": namespace_id},
        "HealthCheckCustomConfig": {"FailureThreshold": 1},
    }


def test_it_round_trips_a_service(clients, boto, namespace):
    p = provider_for("AWS::ServiceDiscovery::Service", clients)
    props = api_service(namespace)
    service_id = p.create(props, "svc-token").physical_id
    assert service_id.startswith("srv-")
    value = p.read(service_id).resource_value
    assert_json(value)
    assert value["Id"] == service_id
    assert value["Arn"].endswith(f":service/{service_id}")
    assert value["Name"] == "api"
    assert value["NamespaceId"] == namespace
    assert value["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 60}]

    new = {
        **props,
        "Description": "api",
        "DnsConfig": {**props["DnsConfig"], "DnsRecords": [{"Type": "A", "TTL": 30}]},
    }
    p.update(service_id, props, new)
    value = p.read(service_id).resource_value
    assert value["Description"] == "api"
    assert value["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 30}]

    with pytest.raises(ProviderError) as err:
        p.update(service_id, new, {**new, "HealthCheckCustomConfig": {"FailureThreshold": 2}})
    assert err.value.immutable_property == "HealthCheckCustomConfig"
    weighted = {**new, "DnsConfig": {**new["DnsConfig"], "RoutingPolicy": "WEIGHTED"}}
    with pytest.raises(ProviderError) as err:
        p.update(service_id, new, weighted)
    assert err.value.immutable_property == "DnsConfig"

    p.delete(service_id, new)
    with pytest.raises(ResourceMissing):
        p.read(service_id)
    p.delete(service_id, new)


def test_it_creates_a_service_once_per_token(clients, boto, namespace):
    p = ServiceProvider(clients)
    a = p.create(api_service(namespace), "svc-once")
    b = p.create(api_service(namespace), "svc-once")
    assert a.physical_id == b.physical_id
    assert len(boto("servicediscovery").list_services()["Services"]) == 1
    with pytest.raises(ProviderError) as err:
        p.create(api_service(namespace), "another-component")
    assert err.value.code == "ServiceAlreadyExists"


# --- CloudFormation stack ---------------------------------------------------------------

TEMPLATE = {
    "Parameters": {"Env": {"Type": "String"}, "Retention": {"Type": "Number", "Default": 7}},
    "Resources": {
        # Fn::Join rather than Fn::Sub: moto does not re-resolve Fn::Sub on a stack update.
        "Topic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": {"Fn::Join": ["-", ["tonys-chips", {"Ref": "Env"}]]}},
        },
        "Logs": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": "/ecs/tonys-chips", "RetentionInDays": {"Ref": "Retention"}},
        },
    },
    "Outputs": {
        "TopicArn": {"Value": {"Ref": "Topic"}},
        "LogGroupName": {"Value": {"Ref": "Logs"}, "Description": "where the tasks log"},
    },
}


def outputs(value):
    return {o["OutputKey"]: o["OutputValue"] for o in value["Outputs"]}


def test_it_round_trips_a_stack_with_its_outputs(clients, boto):
    p = provider_for("AWS::CloudFormation::Stack", clients)
    props = {
        "StackName": "sandbox-tonys-chips-service-discovery-stack",
        "TemplateBody": TEMPLATE,
        "Parameters": {"Env": "sandbox", "Retention": 14},
        "Tags": [{"Key": "app", "Value": "tonys-chips"}],
        "TimeoutInMinutes": 10,
    }
    created = p.create(props, "stack-token")
    stack_id = created.physical_id
    assert stack_id.startswith("arn:aws:cloudformation:")
    value = p.read(stack_id).resource_value
    assert_json(value)
    assert value["StackId"] == stack_id
    assert value["StackName"] == "sandbox-tonys-chips-service-discovery-stack"
    assert value["StackStatus"] == "CREATE_COMPLETE"
    assert value["Parameters"] == {"Env": "sandbox", "Retention": "14"}
    assert outputs(value) == {
        "TopicArn": f"arn:aws:sns:{REGION}:123456789012:tonys-chips-sandbox",
        "LogGroupName": "/ecs/tonys-chips",
    }
    assert {
        "OutputKey": "LogGroupName",
        "OutputValue": "/ecs/tonys-chips",
        "Description": "where the tasks log",
    } in value["Outputs"]
    assert value["Tags"] == [{"Key": "app", "Value": "tonys-chips"}]
    assert value["TemplateBody"] == TEMPLATE
    assert boto("logs").describe_log_groups(logGroupNamePrefix="/ecs/tonys-chips")["logGroups"]

    new = {**props, "Parameters": {"Env": "prod", "Retention": 14}}
    updated = p.update(stack_id, props, new)
    assert updated.physical_id == stack_id
    value = p.read(stack_id).resource_value
    assert value["StackStatus"] == "UPDATE_COMPLETE"
    assert outputs(value)["TopicArn"].endswith(":tonys-chips-prod")
    # The component tag survived UpdateStack, which replaces the whole tag set.
    stack = boto("cloudformation").describe_stacks(StackName=stack_id)["Stacks"][0]
    assert {"Key": PORTAL_TAG, "Value": "stack-token"} in stack["Tags"]

    # Without a template the update keeps the stack's own (UsePreviousTemplate).
    no_template = {k: v for k, v in new.items() if k != "TemplateBody"}
    no_template["Parameters"] = {"Env": "qa", "Retention": 14}
    assert outputs(p.update(stack_id, new, no_template).resource_value)["TopicArn"].endswith(
        ":tonys-chips-qa"
    )
    new = {**new, "Parameters": no_template["Parameters"]}

    # Nothing changed: CloudFormation says "No updates are to be performed" — a success.
    again = p.update(stack_id, new, new)
    assert again.resource_value["StackStatus"] == "UPDATE_COMPLETE"

    with pytest.raises(ProviderError) as err:
        p.update(stack_id, new, {**new, "StackName": "renamed"})
    assert err.value.immutable_property == "StackName"

    p.delete(stack_id, new)
    with pytest.raises(ResourceMissing):
        p.read(stack_id)
    p.delete(stack_id, new)


def test_it_creates_a_stack_once_per_token_with_a_name_from_the_token(clients, boto):
    p = StackProvider(clients)
    props = {"TemplateBody": TEMPLATE, "Parameters": {"Env": "dev"}}
    a = p.create(props, "3f2b8c1e-0d4a-4b59-9a57-1c2d3e4f5a6b")
    b = p.create(props, "3f2b8c1e-0d4a-4b59-9a57-1c2d3e4f5a6b")
    assert a.physical_id == b.physical_id
    assert a.resource_value["StackName"].startswith("portal-3f2b8c1e")
    live = [
        s
        for s in boto("cloudformation").list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert len(live) == 1


def test_it_will_not_adopt_a_stack_it_did_not_create(clients, boto):
    boto("cloudformation").create_stack(
        StackName="theirs",
        TemplateBody=json.dumps(TEMPLATE),
        Parameters=[{"ParameterKey": "Env", "ParameterValue": "x"}],
    )
    with pytest.raises(ProviderError) as err:
        StackProvider(clients).create(
            {"StackName": "theirs", "TemplateBody": TEMPLATE, "Parameters": {"Env": "x"}}, "t"
        )
    assert err.value.code == "AlreadyExistsException"


def test_it_reports_a_rejected_template_as_a_provider_error(clients):
    bad = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::GetAtt": ["Nope", "Arn"]}}}
        }
    }
    with pytest.raises(ProviderError) as err:
        StackProvider(clients).create({"TemplateBody": bad}, "bad-template")
    assert err.value.code == "ValidationError"


STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/shop/0b1c2d3e"


def stack(status, reason=None):
    body = {
        "StackId": STACK_ID,
        "StackName": "shop",
        "StackStatus": status,
        "CreationTime": "2025-10-21T10:00:00Z",
    }
    if reason:
        body["StackStatusReason"] = reason
    return {"Stacks": [body]}


def event(logical, resource_type, status, reason=None, physical=None):
    body = {
        "StackId": STACK_ID,
        "EventId": f"{logical}-{status}",
        "StackName": "shop",
        "LogicalResourceId": logical,
        "PhysicalResourceId": physical or "",
        "ResourceType": resource_type,
        "Timestamp": "2025-10-21T10:00:00Z",
        "ResourceStatus": status,
    }
    if reason:
        body["ResourceStatusReason"] = reason
    return body


def test_it_turns_a_rolled_back_stack_into_a_provider_error_with_the_events_reason():
    """moto never fails a stack, so this drives the provider with AWS-shaped responses."""
    cf = boto3.client("cloudformation", region_name=REGION, config=botocore_config())
    missing = {"Code": "ValidationError", "Message": "Stack with id shop does not exist"}
    with Stubber(cf) as stub:
        stub.add_client_error(
            "describe_stacks", service_error_code="ValidationError", service_message=missing["Message"]
        )
        stub.add_response("create_stack", {"StackId": STACK_ID})
        stub.add_response("describe_stacks", stack("CREATE_IN_PROGRESS"))
        stub.add_response("describe_stacks", stack("ROLLBACK_COMPLETE", "Rollback requested by user."))
        stub.add_response(
            "describe_stack_events",
            {
                "StackEvents": [
                    event("shop", "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", physical=STACK_ID),
                    event("Topic", "AWS::SNS::Topic", "DELETE_COMPLETE"),
                    event("Topic", "AWS::SNS::Topic", "CREATE_FAILED", "Resource creation cancelled"),
                    event(
                        "Service", "AWS::ECS::Service", "CREATE_FAILED", "Invalid request provided: subnets"
                    ),
                    event(
                        "shop", "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", "User Initiated", STACK_ID
                    ),
                    event("Old", "AWS::SNS::Topic", "CREATE_FAILED", "an earlier operation's failure"),
                ]
            },
        )
        p = StackProvider(lambda service: cf)
        with pytest.raises(ProviderError) as err:
            p.create({"StackName": "shop", "TemplateBody": TEMPLATE}, "t")
        stub.assert_no_pending_responses()
    assert err.value.code == "ROLLBACK_COMPLETE"
    assert "Service (AWS::ECS::Service) CREATE_FAILED: Invalid request provided: subnets" in err.value.message
    assert "cancelled" not in err.value.message
    assert "earlier operation" not in err.value.message


def test_it_turns_a_rolled_back_update_into_a_provider_error():
    cf = boto3.client("cloudformation", region_name=REGION, config=botocore_config())
    with Stubber(cf) as stub:
        stub.add_response("describe_stacks", stack("CREATE_COMPLETE"))
        stub.add_response("update_stack", {"StackId": STACK_ID})
        stub.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"))
        stub.add_response(
            "describe_stack_events",
            {
                "StackEvents": [
                    event(
                        "Logs", "AWS::Logs::LogGroup", "UPDATE_FAILED", "Retention 13 is not a valid value"
                    ),
                    event(
                        "shop", "AWS::CloudFormation::Stack", "UPDATE_IN_PROGRESS", "User Initiated", STACK_ID
                    ),
                ]
            },
        )
        with pytest.raises(ProviderError) as err:
            StackProvider(lambda service: cf).update(STACK_ID, {}, {"TemplateBody": TEMPLATE})
    assert err.value.code == "UPDATE_ROLLBACK_COMPLETE"
    assert "Retention 13 is not a valid value" in err.value.message


# --- IAM role ---------------------------------------------------------------------------

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def policy(action):
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}


def managed_policy(boto, name):
    return boto("iam").create_policy(PolicyName=name, PolicyDocument=json.dumps(policy("s3:GetObject")))[
        "Policy"
    ]["Arn"]


def test_it_round_trips_a_role(clients, boto):
    p = provider_for("AWS::IAM::Role", clients)
    readonly = managed_policy(boto, "readonly")
    props = {
        "RoleName": "sandbox-tonys-chips-task-role",
        "Path": "/ecs/",
        "Description": "task role",
        "AssumeRolePolicyDocument": TRUST,
        "Policies": [{"PolicyName": "rds-connect", "PolicyDocument": policy("rds-db:connect")}],
        "ManagedPolicyArns": [readonly],
        "Tags": [{"Key": "app", "Value": "tonys-chips"}],
    }
    name = p.create(props, "role-token").physical_id
    assert name == "sandbox-tonys-chips-task-role"
    value = p.read(name).resource_value
    assert_json(value)
    assert value["Arn"] == "arn:aws:iam::123456789012:role/ecs/sandbox-tonys-chips-task-role"
    assert value["RoleId"]
    assert value["RoleName"] == name
    assert value["AssumeRolePolicyDocument"] == TRUST
    assert value["Policies"] == props["Policies"]
    assert value["ManagedPolicyArns"] == [readonly]
    assert value["Tags"] == [{"Key": "app", "Value": "tonys-chips"}]

    logs_policy = managed_policy(boto, "logs")
    trust2 = {
        **TRUST,
        "Statement": [{**TRUST["Statement"][0], "Principal": {"Service": "ecs.amazonaws.com"}}],
    }
    new = {
        **props,
        "Description": "task role v2",
        "AssumeRolePolicyDocument": trust2,
        "Policies": [{"PolicyName": "sqs", "PolicyDocument": json.dumps(policy("sqs:SendMessage"))}],
        "ManagedPolicyArns": [logs_policy],
        "MaxSessionDuration": 7200,
        "Tags": [],
    }
    p.update(name, props, new)
    value = p.read(name).resource_value
    assert value["Description"] == "task role v2"
    assert value["AssumeRolePolicyDocument"] == trust2
    assert value["Policies"] == [{"PolicyName": "sqs", "PolicyDocument": policy("sqs:SendMessage")}]
    assert value["ManagedPolicyArns"] == [logs_policy]
    assert value["MaxSessionDuration"] == 7200
    assert value["Tags"] == []

    with pytest.raises(ProviderError) as err:
        p.update(name, new, {**new, "Path": "/other/"})
    assert err.value.immutable_property == "Path"

    p.delete(name, new)  # detaches and deletes its policies first, as IAM requires
    with pytest.raises(ResourceMissing):
        p.read(name)
    p.delete(name, new)


def test_it_creates_a_role_once_per_token_and_finishes_its_policies(clients, boto):
    # A first attempt created the tagged role and died before putting its inline policy.
    derived = RoleProvider(clients).create({"AssumeRolePolicyDocument": TRUST}, "role-once")
    name = derived.physical_id
    assert name.startswith("portal-role-once")
    props = {
        "AssumeRolePolicyDocument": TRUST,
        "Policies": [{"PolicyName": "p", "PolicyDocument": policy("s3:*")}],
    }
    again = RoleProvider(clients).create(props, "role-once")
    assert again.physical_id == name
    assert again.resource_value["Policies"] == [{"PolicyName": "p", "PolicyDocument": policy("s3:*")}]
    assert len(boto("iam").list_roles()["Roles"]) == 1


def test_it_will_not_adopt_a_role_it_did_not_create(clients, boto):
    boto("iam").create_role(RoleName="theirs", AssumeRolePolicyDocument=json.dumps(TRUST))
    with pytest.raises(ProviderError) as err:
        RoleProvider(clients).create({"RoleName": "theirs", "AssumeRolePolicyDocument": TRUST}, "mine")
    assert err.value.code == "EntityAlreadyExists"


# --- Logs -------------------------------------------------------------------------------


def test_it_round_trips_a_log_group(clients, boto):
    p = provider_for("AWS::Logs::LogGroup", clients)
    props = {
        "LogGroupName": "/ecs/sandbox-tonys-chips-api",
        "RetentionInDays": 7,
        "Tags": [{"Key": "app", "Value": "chips"}],
    }
    name = p.create(props, "lg-token").physical_id
    assert name == "/ecs/sandbox-tonys-chips-api"
    value = p.read(name).resource_value
    assert_json(value)
    assert value["Arn"] == f"arn:aws:logs:{REGION}:123456789012:log-group:/ecs/sandbox-tonys-chips-api:*"
    assert value["RetentionInDays"] == 7
    assert value["Tags"] == [{"Key": "app", "Value": "chips"}]

    new = {"LogGroupName": name, "RetentionInDays": 30, "Tags": [{"Key": "team", "Value": "shop"}]}
    p.update(name, props, new)
    value = p.read(name).resource_value
    assert value["RetentionInDays"] == 30
    assert value["Tags"] == [{"Key": "team", "Value": "shop"}]

    unlimited = {"LogGroupName": name}
    assert "RetentionInDays" not in p.update(name, new, unlimited).resource_value

    with pytest.raises(ProviderError) as err:
        p.update(name, unlimited, {"LogGroupName": "/ecs/other"})
    assert err.value.immutable_property == "LogGroupName"

    p.delete(name, unlimited)
    with pytest.raises(ResourceMissing):
        p.read(name)
    p.delete(name, unlimited)


def test_it_creates_a_log_group_once_per_token(clients, boto):
    p = LogGroupProvider(clients)
    a = p.create({"RetentionInDays": 3}, "lg-once")
    b = p.create({"RetentionInDays": 3}, "lg-once")
    assert a.physical_id == b.physical_id == "portal-lg-once"
    assert len(boto("logs").describe_log_groups()["logGroups"]) == 1
    with pytest.raises(ProviderError) as err:
        p.create({"LogGroupName": "portal-lg-once"}, "someone-else")
    assert err.value.code == "ResourceAlreadyExistsException"


def test_a_new_log_group_takes_three_calls_and_is_read_only_once_made(clients):
    calls = record_operations(clients("logs"))
    created = LogGroupProvider(clients).create({"LogGroupName": "/ecs/api", "RetentionInDays": 7}, "lg-calls")
    assert calls == ["CreateLogGroup", "PutRetentionPolicy", "DescribeLogGroups"]
    assert created.resource_value["RetentionInDays"] == 7 and created.resource_value["Arn"].endswith(
        ":/ecs/api:*"
    )


def test_a_log_group_is_read_in_one_call_among_many_its_name_starts(clients, boto):
    for i in range(60):  # more than a page of DescribeLogGroups (50)
        boto("logs").create_log_group(logGroupName=f"/ecs/api-{i:02d}")
    boto("logs").create_log_group(logGroupName="/ecs/api")
    boto("logs").create_log_group(logGroupName="/ecs/ap")
    calls = record_operations(clients("logs"))
    observed = LogGroupProvider(clients).read("/ecs/api")
    assert observed.physical_id == "/ecs/api"
    assert calls == ["DescribeLogGroups", "ListTagsForResource"]
    with pytest.raises(ResourceMissing):
        LogGroupProvider(clients).read("/ecs/api-0")  # only longer names start with it


def test_it_refuses_properties_it_cannot_apply_instead_of_dropping_them(clients, boto):
    with pytest.raises(ProviderError) as err:
        LogGroupProvider(clients).create({"LogGroupName": "/x", "DeletionProtectionEnabled": True}, "t")
    assert err.value.code == "UnsupportedProperty"
    assert "DeletionProtectionEnabled" in err.value.message
    assert boto("logs").describe_log_groups()["logGroups"] == []
    # Read-only attributes (what a read returned) are tolerated.
    assert LogGroupProvider(clients).create({"LogGroupName": "/x", "Arn": "arn:..."}, "t").physical_id == "/x"
