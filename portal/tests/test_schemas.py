import copy
import time

import pytest
from jsonschema import Draft7Validator
from jsonschema.validators import validator_for

from portal import schemas
from portal.errors import ValidationError
from portal.schemas import (
    get_schema,
    replacement_paths,
    search_types,
    type_names,
    validate_properties,
    write_only_for,
)


def sub(component, path):
    return {"$source": {"component": component, "path": path}}


def paths(errors):
    return [e["path"] for e in errors]


def error_at(errors, path):
    found = [e["message"] for e in errors if e["path"] == path]
    assert found, f"no error at {path}: {errors}"
    return found[0]


SECURITY_GROUP = {
    "GroupDescription": "api service",
    "VpcId": "vpc-0bc7327e9bc2204c2",
    "SecurityGroupIngress": [
        {"IpProtocol": "tcp", "FromPort": 3000, "ToPort": 3000, "CidrIp": "10.0.0.0/16"},
    ],
    "Tags": [{"Key": "app", "Value": "tonys-chips"}],
}

ECS_SERVICE = {
    "ServiceName": "sandbox-tonys-chips-api",
    "Cluster": "tonys-chips-sandbox",
    "DesiredCount": 2,
    "LaunchType": "FARGATE",
    "TaskDefinition": "sandbox-tonys-chips-api",
    "DeploymentConfiguration": {"MaximumPercent": 200, "MinimumHealthyPercent": 50},
}


# --------------------------------------------------------------------------- type list


def test_it_lists_the_region_types_sorted_with_the_portal_types():
    names = type_names()
    assert names == sorted(names)
    assert len(names) > 1500
    assert {"AWS::ECS::Service", "AWS::CloudFormation::Stack", "Portal::StringTemplate"} <= set(names)
    assert "Portal::StringTemplate" in type_names("eu-west-1")


def test_it_rejects_an_unknown_region():
    with pytest.raises(ValidationError, match="Unknown region 'mars-north-1'"):
        type_names("mars-north-1")


def test_it_finds_ecs_service_first():
    assert search_types("ecs service")[0] == "AWS::ECS::Service"
    assert search_types("ECS Service")[0] == "AWS::ECS::Service"
    assert search_types("AWS::ECS::Service")[0] == "AWS::ECS::Service"


def test_it_finds_types_by_words_inside_names():
    assert search_types("security group")[0] == "AWS::EC2::SecurityGroup"
    assert search_types("string template") == ["Portal::StringTemplate"]
    assert "AWS::CloudFormation::Stack" in search_types("stack", limit=5)
    assert len(search_types("aws", limit=7)) == 7
    assert search_types("no such thing anywhere") == []


def test_it_suggests_a_close_type_for_an_unknown_one():
    with pytest.raises(ValidationError) as caught:
        get_schema("AWS::ECS::Servce")
    assert (
        caught.value.message == "Unknown component type 'AWS::ECS::Servce'. Did you mean AWS::ECS::Service?"
    )
    with pytest.raises(ValidationError, match=r"Did you mean AWS::ECS::Service\?"):
        validate_properties("aws::ecs::service", {})
    with pytest.raises(ValidationError) as caught:
        get_schema("Nothing::Like::ThisAtAll")
    assert caught.value.message == "Unknown component type 'Nothing::Like::ThisAtAll'."


# --------------------------------------------------------------------------- metadata


def test_it_exposes_registry_metadata_as_pointers_relative_to_the_properties():
    service = get_schema("AWS::ECS::Service")
    assert service.type_name == "AWS::ECS::Service"
    assert {"/ServiceName", "/Cluster"} <= set(service.create_only)
    assert "/DesiredCount" not in service.create_only
    assert "/ServiceArn" in service.read_only
    assert "ServiceRegistries" in service.property_names
    assert service.primary_identifier == ["/ServiceArn", "/Cluster"]
    assert service.description
    assert get_schema("AWS::ECS::Service") is service  # cached

    group = get_schema("AWS::EC2::SecurityGroup")
    assert group.required == ["GroupDescription"]
    assert set(group.read_only) == {"/GroupId", "/Id"}


def test_it_returns_write_only_for_with_stars_for_list_items():
    assert write_only_for("AWS::EC2::SecurityGroup") == ["/SecurityGroupIngress/*/SourceSecurityGroupName"]
    assert "/MasterUserPassword" in write_only_for("AWS::RDS::DBInstance")


# --------------------------------------------------------------------------- validation


def test_it_accepts_valid_properties():
    assert validate_properties("AWS::EC2::SecurityGroup", SECURITY_GROUP) == []
    assert validate_properties("AWS::ECS::Service", ECS_SERVICE) == []


def test_it_reports_a_missing_required_property_at_its_path():
    props = {k: v for k, v in SECURITY_GROUP.items() if k != "GroupDescription"}
    errors = validate_properties("AWS::EC2::SecurityGroup", props)
    assert paths(errors) == ["/GroupDescription"]
    assert "GroupDescription" in errors[0]["message"] and "required" in errors[0]["message"]


def test_it_reports_a_missing_nested_required_property_under_its_parent():
    props = copy.deepcopy(SECURITY_GROUP)
    del props["SecurityGroupIngress"][0]["IpProtocol"]
    errors = validate_properties("AWS::EC2::SecurityGroup", props)
    assert paths(errors) == ["/SecurityGroupIngress/0/IpProtocol"]


def test_it_reports_a_wrong_type_at_the_path_of_the_value():
    props = copy.deepcopy(SECURITY_GROUP)
    props["SecurityGroupIngress"][0]["FromPort"] = "3000"
    errors = validate_properties("AWS::EC2::SecurityGroup", props)
    assert paths(errors) == ["/SecurityGroupIngress/0/FromPort"]
    assert errors[0]["message"] == 'must be an integer, not a string (got "3000")'


def test_it_suggests_a_close_name_for_an_unknown_property():
    props = dict(SECURITY_GROUP, GroupDescripton="typo")
    errors = validate_properties("AWS::EC2::SecurityGroup", props)
    assert paths(errors) == ["/GroupDescripton"]
    assert errors[0]["message"] == "unknown property GroupDescripton; did you mean GroupDescription?"

    nested = copy.deepcopy(SECURITY_GROUP)
    nested["SecurityGroupIngress"][0]["Fromport"] = 1
    message = error_at(
        validate_properties("AWS::EC2::SecurityGroup", nested), "/SecurityGroupIngress/0/Fromport"
    )
    assert "did you mean FromPort?" in message


def test_it_reports_a_read_only_property_set_by_the_user():
    props = dict(SECURITY_GROUP, GroupId="sg-123")
    errors = validate_properties("AWS::EC2::SecurityGroup", props)
    assert errors == [
        {
            "path": "/GroupId",
            "message": "GroupId is read-only: AWS sets it; subscribe to /resource_value/GroupId instead",
        }
    ]
    # Even as a subscription, and with no type error on top.
    assert paths(validate_properties("AWS::EC2::SecurityGroup", dict(SECURITY_GROUP, GroupId=5))) == [
        "/GroupId"
    ]


def test_it_reports_enum_and_range_errors_in_plain_words():
    errors = validate_properties("AWS::ECS::Service", dict(ECS_SERVICE, LaunchType="fargate"))
    message = error_at(errors, "/LaunchType")
    assert message.startswith("must be one of ") and 'did you mean "FARGATE"?' in message

    props = copy.deepcopy(SECURITY_GROUP)
    props["SecurityGroupIngress"][0]["ToPort"] = -7
    assert error_at(
        validate_properties("AWS::EC2::SecurityGroup", props), "/SecurityGroupIngress/0/ToPort"
    ) == ("must be at least -1 (got -7)")

    errors = validate_properties("AWS::EC2::SecurityGroup", dict(SECURITY_GROUP, GroupDescription="x" * 300))
    assert error_at(errors, "/GroupDescription").startswith("is too long: at most 255 characters")


def test_it_reports_cloudformation_specific_keywords():
    props = copy.deepcopy(SECURITY_GROUP)
    props["SecurityGroupIngress"][0]["CidrIpv6"] = "::/0"  # requiredXor: only one source
    errors = validate_properties("AWS::EC2::SecurityGroup", props)
    assert paths(errors) == ["/SecurityGroupIngress/0/CidrIp", "/SecurityGroupIngress/0/CidrIpv6"]

    props = {"GroupDescription": "x", "SecurityGroupEgress": [{"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"}]}
    errors = validate_properties("AWS::EC2::SecurityGroup", props)
    assert errors == [{"path": "/VpcId", "message": "VpcId is required when SecurityGroupEgress is set"}]


def test_it_sorts_errors_by_path_with_numeric_indexes():
    ingress = [{"IpProtocol": "tcp", "CidrIp": "10.0.0.0/8", "FromPort": i} for i in range(12)]
    ingress[2]["FromPort"] = ingress[10]["FromPort"] = "x"
    props = dict(SECURITY_GROUP, SecurityGroupIngress=ingress, Zzz=1, Aaa=1)
    assert paths(validate_properties("AWS::EC2::SecurityGroup", props)) == [
        "/Aaa",
        "/SecurityGroupIngress/2/FromPort",
        "/SecurityGroupIngress/10/FromPort",
        "/Zzz",
    ]


def test_it_does_not_echo_secret_values_in_messages():
    props = {"DBInstanceClass": "db.t3.micro", "Engine": "postgres", "MasterUserPassword": 12345678}
    message = error_at(validate_properties("AWS::RDS::DBInstance", props), "/MasterUserPassword")
    assert message.startswith("must be a string") and "12345678" not in message

    container = {"Name": "api", "Image": "api:1", "Environment": [{"Name": "DB_PASSWORD", "Value": 987654}]}
    props = {"ContainerDefinitions": [container]}
    errors = validate_properties("AWS::ECS::TaskDefinition", props)
    message = error_at(errors, "/ContainerDefinitions/0/Environment/0/Value")
    assert message.startswith("must be a string") and "987654" not in message


def test_it_rejects_properties_that_are_not_an_object():
    assert validate_properties("AWS::ECS::Service", ["x"]) == [
        {"path": "", "message": "properties must be an object, not a list"}
    ]


# --------------------------------------------------------------------------- subscriptions


def test_it_accepts_subscriptions_in_place_of_typed_values():
    props = copy.deepcopy(SECURITY_GROUP)
    props["VpcId"] = sub("vpc", "/resource_value/VpcId")
    props["SecurityGroupIngress"][0]["FromPort"] = sub("api", "/domain/Port")
    props["SecurityGroupIngress"].append(sub("rules", "/domain/Rule"))  # a whole list item
    props["Tags"] = sub("tags", "/domain/Tags")  # a whole list
    assert validate_properties("AWS::EC2::SecurityGroup", props) == []

    service = dict(
        ECS_SERVICE,
        ServiceRegistries=[
            {"RegistryArn": sub("sd-stack", "/resource_value/Outputs/ServiceDiscoveryArn/OutputValue")}
        ],
        NetworkConfiguration=sub("network", "/domain/NetworkConfiguration"),
    )
    assert validate_properties("AWS::ECS::Service", service) == []


def test_it_counts_a_subscription_as_present_for_required():
    props = dict(SECURITY_GROUP, GroupDescription=sub("desc", "/domain/Rendered/Value"))
    assert validate_properties("AWS::EC2::SecurityGroup", props) == []


def test_it_rejects_a_malformed_subscription():
    props = dict(SECURITY_GROUP, VpcId={"$source": {"component": "vpc"}})
    errors = validate_properties("AWS::EC2::SecurityGroup", props)
    assert paths(errors) == ["/VpcId"] and "subscription" in errors[0]["message"]

    props = dict(SECURITY_GROUP, VpcId={"$source": {"component": "vpc", "path": "/x"}, "extra": 1})
    assert "remove extra" in error_at(validate_properties("AWS::EC2::SecurityGroup", props), "/VpcId")


# --------------------------------------------------------------------------- replacement


def test_it_lists_replacement_paths_for_create_only_changes():
    new = dict(ECS_SERVICE, ServiceName="api-v2", Cluster="other", DesiredCount=4)
    assert replacement_paths("AWS::ECS::Service", ECS_SERVICE, new) == ["/Cluster", "/ServiceName"]
    assert replacement_paths("AWS::ECS::Service", ECS_SERVICE, dict(ECS_SERVICE, DesiredCount=4)) == []
    assert replacement_paths("AWS::ECS::Service", ECS_SERVICE, copy.deepcopy(ECS_SERVICE)) == []


def test_it_counts_adding_or_removing_a_create_only_property_as_a_replacement():
    without = {k: v for k, v in ECS_SERVICE.items() if k != "ServiceName"}
    assert replacement_paths("AWS::ECS::Service", without, ECS_SERVICE) == ["/ServiceName"]
    assert replacement_paths("AWS::ECS::Service", ECS_SERVICE, without) == ["/ServiceName"]
    assert replacement_paths("AWS::ECS::Service", {}, {}) == []


def test_it_compares_subscriptions_as_values():
    old = dict(ECS_SERVICE, Cluster=sub("cluster", "/resource_value/Arn"))
    assert replacement_paths("AWS::ECS::Service", old, copy.deepcopy(old)) == []
    assert replacement_paths("AWS::ECS::Service", old, ECS_SERVICE) == ["/Cluster"]


def test_it_gives_concrete_list_indexes_for_nested_create_only_properties():
    def replicator(*types):
        return {"ReplicationInfoList": [{"TargetCompressionType": t, "TopicReplication": {}} for t in types]}

    kind = "AWS::MSK::Replicator"
    assert "/ReplicationInfoList/*/TargetCompressionType" in get_schema(kind).create_only
    old = replicator("NONE", "GZIP")
    assert replacement_paths(kind, old, replicator("NONE", "LZ4")) == [
        "/ReplicationInfoList/1/TargetCompressionType"
    ]
    assert replacement_paths(kind, old, replicator("NONE", "GZIP", "ZSTD")) == [
        "/ReplicationInfoList/2/TargetCompressionType"
    ]
    assert replacement_paths(kind, old, replicator("NONE", "GZIP")) == []


def test_it_ignores_reordering_of_an_unordered_create_only_list():
    old = {"RequiresCompatibilities": ["EC2", "FARGATE"]}
    kind = "AWS::ECS::TaskDefinition"
    assert replacement_paths(kind, old, {"RequiresCompatibilities": ["FARGATE", "EC2"]}) == []
    assert replacement_paths(kind, old, {"RequiresCompatibilities": ["FARGATE"]}) == [
        "/RequiresCompatibilities"
    ]


# --------------------------------------------------------------------------- robustness and speed


def test_it_loads_every_registry_type_and_validates_an_empty_document():
    every = set()
    for region in schemas.regions():
        every.update(type_names(region))
    assert len(every) > 1800
    for name in sorted(every):
        schema = get_schema(name)
        errors = validate_properties(name, {})
        assert all(e["path"] == "" or e["path"].startswith("/") for e in errors), name
        assert all(e["message"] and "could not be fully applied" not in e["message"] for e in errors), name
        assert all(p.startswith("/") and not p.startswith("/properties/") for p in schema.create_only), name


def test_it_ignores_patterns_python_cannot_compile():
    assert schemas._compile("(unclosed") is None
    assert list(schemas.PortalValidator({"pattern": "(unclosed"}).iter_errors("x")) == []
    assert (
        list(
            schemas.PortalValidator({"patternProperties": {"(": {"type": "integer"}}}).iter_errors({"a": "x"})
        )
        == []
    )
    # The SQS tag pattern uses \\p{L}, which Python's re rejects; the regex module takes it.
    props = {"QueueName": "orders", "Tags": [{"Key": "team-é", "Value": "chips"}]}
    assert validate_properties("AWS::SQS::Queue", props) == []
    props["Tags"][0]["Key"] = "team#1"
    assert paths(validate_properties("AWS::SQS::Queue", props)) == ["/Tags/0/Key"]


def test_it_does_not_replace_jsonschemas_own_draft7_validator():
    assert validator_for({"$schema": "http://json-schema.org/draft-07/schema#"}) is Draft7Validator


def test_it_validates_500_common_components_quickly():
    components = [
        ("AWS::ECS::Service", ECS_SERVICE),
        ("AWS::EC2::SecurityGroup", SECURITY_GROUP),
        ("AWS::Logs::LogGroup", {"LogGroupName": "/ecs/api", "RetentionInDays": 14}),
        ("Portal::StringTemplate", {"Template": "{{ A }}", "Variables": {"A": sub("x", "/domain/A")}}),
        ("AWS::CloudFormation::Stack", {"StackName": "sd", "TemplateBody": {"Resources": {"X": {}}}}),
    ] * 100
    for kind, props in components[:5]:
        assert validate_properties(kind, props) == []
    started = time.perf_counter()
    for kind, props in components:
        validate_properties(kind, props)
    assert time.perf_counter() - started < 2.0  # measured ~0.03s; generous for slow CI


# --------------------------------------------------------------------------- portal types


def test_it_reports_an_unknown_placeholder_at_template():
    props = {
        "Template": '{"Cluster": "{{ Cluster }}", "Api": "{{ApiService}}"}',
        "Variables": {"ApiService": "api", "WebService": "web"},
    }
    assert validate_properties("Portal::StringTemplate", props) == [
        {
            "path": "/Template",
            "message": "unknown placeholder {{ Cluster }}; Variables has: ApiService, WebService",
        }
    ]
    props["Variables"]["Cluster"] = sub("cluster", "/domain/ClusterName")
    assert validate_properties("Portal::StringTemplate", props) == []


def test_it_checks_the_string_template_shape():
    errors = validate_properties(
        "Portal::StringTemplate", {"Variables": {"bad-name": 1}, "Rendered": {"Value": "x"}}
    )
    assert paths(errors) == ["/Rendered", "/Template", "/Variables"]
    assert "the portal computes it; subscribe to /domain/Rendered instead" in errors[0]["message"]
    assert "required" in errors[1]["message"]
    assert '"bad-name"' in errors[2]["message"]
    # A template that is itself a subscription is checked once it resolves.
    assert validate_properties("Portal::StringTemplate", {"Template": sub("t", "/domain/Text")}) == []


def test_it_accepts_a_stack_with_a_template_body():
    props = {
        "StackName": "sandbox-tonys-chips-service-discovery",
        "TemplateBody": {
            "Resources": {
                "PrivateDnsNamespace": {
                    "Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
                    "Properties": {"Name": "tonys-chips.local", "Vpc": "vpc-0bc7327e9bc2204c2"},
                }
            },
            "Outputs": {"ServiceDiscoveryArn": {"Value": {"Fn::GetAtt": ["ServiceDiscoveryService", "Arn"]}}},
        },
        "Parameters": {"VpcId": sub("vpc", "/resource_value/VpcId"), "Env": "sandbox"},
        "Capabilities": ["CAPABILITY_IAM"],
        "TimeoutInMinutes": 10,
        "Tags": [{"Key": "app", "Value": "tonys-chips"}],
    }
    assert validate_properties("AWS::CloudFormation::Stack", props) == []
    assert validate_properties("AWS::CloudFormation::Stack", {"TemplateURL": "https://s3/x.json"}) == []


def test_it_requires_exactly_one_of_template_body_and_template_url():
    assert validate_properties("AWS::CloudFormation::Stack", {"StackName": "s"}) == [
        {"path": "", "message": "set exactly one of TemplateBody, TemplateURL; none is set"}
    ]
    both = {"TemplateBody": {"Resources": {"X": {}}}, "TemplateURL": "https://s3/x.json"}
    assert paths(validate_properties("AWS::CloudFormation::Stack", both)) == ["/TemplateBody", "/TemplateURL"]
    errors = validate_properties("AWS::CloudFormation::Stack", {"TemplateBody": "Resources: {}"})
    assert error_at(errors, "/TemplateBody").startswith("must be an object, not a string")


def test_it_treats_stack_outputs_status_and_id_as_read_only():
    stack = get_schema("AWS::CloudFormation::Stack")
    assert {"/StackId", "/StackStatus", "/Outputs"} <= set(stack.read_only)
    assert "/StackName" in stack.create_only
    assert "TemplateURL" not in stack.required
    props = {
        "TemplateURL": "https://s3/x.json",
        "Outputs": [{"OutputKey": "ServiceDiscoveryArn", "OutputValue": "arn:aws:servicediscovery:..."}],
    }
    assert validate_properties("AWS::CloudFormation::Stack", props) == [
        {
            "path": "/Outputs",
            "message": "Outputs is read-only: AWS sets it; subscribe to /resource_value/Outputs instead",
        }
    ]
    output = stack.subschema("/Outputs/0")
    assert output["required"] == ["OutputKey", "OutputValue"]


def test_it_builds_the_stack_schema_on_top_of_the_registry_one():
    stack = get_schema("AWS::CloudFormation::Stack")
    for upstream in ("TemplateURL", "TimeoutInMinutes", "Tags", "NotificationARNs", "StackId"):
        assert upstream in stack.property_names
    errors = validate_properties("AWS::CloudFormation::Stack", {"TemplateURL": "u", "TimeoutInMinutes": 0})
    assert paths(errors) == ["/TimeoutInMinutes"]
    errors = validate_properties("AWS::CloudFormation::Stack", {"TemplateURL": "u", "Parameters": {"Env": 1}})
    assert paths(errors) == ["/Parameters/Env"]
    old = {"StackName": "a", "TemplateURL": "u"}
    assert replacement_paths("AWS::CloudFormation::Stack", old, dict(old, StackName="b")) == ["/StackName"]
    assert replacement_paths("AWS::CloudFormation::Stack", old, dict(old, TemplateURL="v")) == []
