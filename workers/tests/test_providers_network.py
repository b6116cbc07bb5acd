"""EC2 and ELBv2 providers against moto (in-process): round trips, crash-safe creates,
security group rule diffs (the seed's self-referencing rule) and delete ordering."""

import json

import boto3
import pytest

from workers.providers.base import PORTAL_TAG, ProviderError, ResourceMissing, provider_for
from workers.providers.ec2 import SecurityGroupProvider, SubnetProvider, VpcProvider
from workers.providers.elbv2 import (
    ListenerProvider,
    ListenerRuleProvider,
    LoadBalancerProvider,
    TargetGroupProvider,
)

REGION = "us-east-1"


@pytest.fixture
def clients(mocked_clients):
    return mocked_clients


@pytest.fixture
def ec2(clients):
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def elb(clients):
    return boto3.client("elbv2", region_name=REGION)


@pytest.fixture
def network(clients, ec2):
    """A VPC with two subnets in two zones and a security group, made directly with boto3."""
    vpc_id = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    sg = ec2.create_security_group(GroupName="alb", Description="alb", VpcId=vpc_id)["GroupId"]
    sg2 = ec2.create_security_group(GroupName="alb2", Description="alb2", VpcId=vpc_id)["GroupId"]
    return {"vpc": vpc_id, "subnets": subnets, "sg": sg, "sg2": sg2}


def assert_json(value):
    """resource_value is stored in a JSONField: it must survive json.dumps untouched."""
    assert json.loads(json.dumps(value)) == value


def tagged(ec2, describe, key, token):
    filters = [{"Name": f"tag:{PORTAL_TAG}", "Values": [token]}]
    return getattr(ec2, describe)(Filters=filters)[key]


# --- VPC --------------------------------------------------------------------------------


def test_it_round_trips_a_vpc(clients, ec2):
    p = provider_for("AWS::EC2::VPC", clients)
    props = {
        "CidrBlock": "10.0.0.0/16",
        "EnableDnsHostnames": True,
        "Tags": [{"Key": "Name", "Value": "shop"}],
    }

    created = p.create(props, "vpc-token")
    vpc_id = created.physical_id
    assert vpc_id.startswith("vpc-")
    value = p.read(vpc_id).resource_value
    assert_json(value)
    assert value["VpcId"] == vpc_id
    assert value["CidrBlock"] == "10.0.0.0/16"
    assert value["EnableDnsHostnames"] is True and value["EnableDnsSupport"] is True
    assert value["DefaultSecurityGroup"].startswith("sg-")
    assert value["DefaultNetworkAcl"].startswith("acl-")
    assert value["CidrBlockAssociations"]
    assert value["Tags"] == [{"Key": "Name", "Value": "shop"}]  # the portal's own tag is not shown

    new = {**props, "EnableDnsHostnames": False, "Tags": [{"Key": "team", "Value": "chips"}]}
    updated = p.update(vpc_id, props, new)
    assert updated.resource_value["EnableDnsHostnames"] is False
    assert p.read(vpc_id).resource_value["Tags"] == [{"Key": "team", "Value": "chips"}]
    # The component tag survives tag updates, so a later create still finds the VPC.
    assert [v["VpcId"] for v in tagged(ec2, "describe_vpcs", "Vpcs", "vpc-token")] == [vpc_id]

    p.delete(vpc_id, new)
    with pytest.raises(ResourceMissing):
        p.read(vpc_id)
    p.delete(vpc_id, new)  # already gone is a success


def test_it_creates_a_vpc_once_per_token(clients, ec2):
    p = VpcProvider(clients)
    first = p.create({"CidrBlock": "10.0.0.0/16"}, "same-token")
    second = p.create({"CidrBlock": "10.0.0.0/16"}, "same-token")
    assert first.physical_id == second.physical_id
    assert len(tagged(ec2, "describe_vpcs", "Vpcs", "same-token")) == 1


def test_it_refuses_to_change_a_vpc_cidr_in_place(clients):
    p = VpcProvider(clients)
    vpc_id = p.create({"CidrBlock": "10.0.0.0/16"}, "t").physical_id
    with pytest.raises(ProviderError) as err:
        p.update(vpc_id, {"CidrBlock": "10.0.0.0/16"}, {"CidrBlock": "10.9.0.0/16"})
    assert err.value.immutable_property == "CidrBlock"


# --- Subnet -----------------------------------------------------------------------------


def test_it_round_trips_a_subnet(clients, ec2, network):
    p = provider_for("AWS::EC2::Subnet", clients)
    props = {"VpcId": network["vpc"], "CidrBlock": "10.1.9.0/24", "AvailabilityZone": f"{REGION}c"}

    subnet_id = p.create(props, "subnet-token").physical_id
    value = p.read(subnet_id).resource_value
    assert_json(value)
    assert value["SubnetId"] == subnet_id
    assert value["VpcId"] == network["vpc"]
    assert value["MapPublicIpOnLaunch"] is False
    assert value["NetworkAclAssociationId"]

    new = {**props, "MapPublicIpOnLaunch": True, "Tags": [{"Key": "tier", "Value": "public"}]}
    p.update(subnet_id, props, new)
    value = p.read(subnet_id).resource_value
    assert value["MapPublicIpOnLaunch"] is True
    assert value["Tags"] == [{"Key": "tier", "Value": "public"}]

    with pytest.raises(ProviderError) as err:
        p.update(subnet_id, new, {**new, "CidrBlock": "10.1.10.0/24"})
    assert err.value.immutable_property == "CidrBlock"

    p.delete(subnet_id, new)
    with pytest.raises(ResourceMissing):
        p.read(subnet_id)
    p.delete(subnet_id, new)


def test_it_creates_a_subnet_once_per_token(clients, ec2, network):
    p = SubnetProvider(clients)
    props = {"VpcId": network["vpc"], "CidrBlock": "10.1.9.0/24", "MapPublicIpOnLaunch": True}
    a = p.create(props, "subnet-once")
    b = p.create(props, "subnet-once")
    assert a.physical_id == b.physical_id
    assert len(tagged(ec2, "describe_subnets", "Subnets", "subnet-once")) == 1


# --- Security group ---------------------------------------------------------------------

ALL_EGRESS = {"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"}


def rule_ids(ec2, group_id):
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    return {
        (
            r["IsEgress"],
            r.get("CidrIpv4") or (r.get("ReferencedGroupInfo") or {}).get("GroupId"),
            r["FromPort"],
        ): r["SecurityGroupRuleId"]
        for r in rules["SecurityGroupRules"]
    }


def test_it_round_trips_a_security_group_with_its_self_referencing_rule(clients, ec2, network):
    p = provider_for("AWS::EC2::SecurityGroup", clients)
    http = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0", "Description": "web"}
    self_rule = {
        "IpProtocol": "tcp",
        "FromPort": 3000,
        "ToPort": 3000,
        "SourceSecurityGroupId": None,  # its own id: a subscription still pending at create
        "Description": "Allow internal service-to-service communication on port 3000",
    }
    props = {
        "GroupDescription": "api",
        "GroupName": "sandbox-tonys-chips-api-sg-v2",
        "VpcId": network["vpc"],
        "SecurityGroupIngress": [http, self_rule],
    }

    group_id = p.create(props, "sg-token").physical_id
    value = p.read(group_id).resource_value
    assert_json(value)
    assert value["GroupId"] == value["Id"] == group_id
    assert value["VpcId"] == network["vpc"]
    assert value["SecurityGroupIngress"] == [http]  # the pending self rule waits for its id
    assert value["SecurityGroupEgress"] == [ALL_EGRESS]  # no egress named: AWS's default stays
    http_rule = rule_ids(ec2, group_id)[(False, "0.0.0.0/0", 80)]

    # The follow-up update carries the group's own id: only the self rule is authorized.
    with_self = {**props, "SecurityGroupIngress": [http, {**self_rule, "SourceSecurityGroupId": group_id}]}
    p.update(group_id, props, with_self)
    ingress = p.read(group_id).resource_value["SecurityGroupIngress"]
    assert {**self_rule, "SourceSecurityGroupId": group_id} in ingress and http in ingress
    assert len(ingress) == 2
    ids = rule_ids(ec2, group_id)
    assert ids[(False, "0.0.0.0/0", 80)] == http_rule  # untouched, not revoked and re-added
    assert (False, group_id, 3000) in ids

    # Naming egress rules replaces the default allow-all rule.
    egress = {
        "IpProtocol": "tcp",
        "FromPort": 5432,
        "ToPort": 5432,
        "DestinationSecurityGroupId": network["sg"],
    }
    with_egress = {**with_self, "SecurityGroupEgress": [egress]}
    p.update(group_id, with_self, with_egress)
    assert p.read(group_id).resource_value["SecurityGroupEgress"] == [egress]

    # Dropping the self rule and the egress rules: revoke those, restore the default egress.
    p.update(group_id, with_egress, props | {"SecurityGroupIngress": [http]})
    value = p.read(group_id).resource_value
    assert value["SecurityGroupIngress"] == [http]
    assert value["SecurityGroupEgress"] == [ALL_EGRESS]
    assert rule_ids(ec2, group_id)[(False, "0.0.0.0/0", 80)] == http_rule

    # Put the self rule back and delete the group with it in place.
    p.update(group_id, props, with_self)
    p.delete(group_id, with_self)
    with pytest.raises(ResourceMissing):
        p.read(group_id)
    p.delete(group_id, with_self)


def test_it_updates_a_rule_description_in_place(clients, ec2, network):
    p = SecurityGroupProvider(clients)
    rule = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "10.0.0.0/8", "Description": "old"}
    props = {"GroupDescription": "d", "VpcId": network["vpc"], "SecurityGroupIngress": [rule]}
    group_id = p.create(props, "describe-me").physical_id
    before = rule_ids(ec2, group_id)[(False, "10.0.0.0/8", 443)]
    new = {**props, "SecurityGroupIngress": [{**rule, "Description": "new"}]}
    value = p.update(group_id, props, new).resource_value
    assert value["SecurityGroupIngress"] == [{**rule, "Description": "new"}]
    assert rule_ids(ec2, group_id)[(False, "10.0.0.0/8", 443)] == before


def test_it_keeps_the_ipv6_default_egress_rule_when_no_egress_is_named(clients, ec2, network):
    # In a VPC with an IPv6 block AWS gives a new group a second default egress rule, ::/0.
    p = SecurityGroupProvider(clients)
    props = {"GroupDescription": "d", "VpcId": network["vpc"]}
    group_id = p.create(props, "ipv6").physical_id
    ipv6_all = {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}
    ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[ipv6_all])
    egress = p.update(group_id, props, props).resource_value["SecurityGroupEgress"]
    assert {"IpProtocol": "-1", "CidrIpv6": "::/0"} in egress and ALL_EGRESS in egress
    # Naming egress rules replaces both defaults, as in CloudFormation.
    named = {
        **props,
        "SecurityGroupEgress": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}],
    }
    assert (
        p.update(group_id, props, named).resource_value["SecurityGroupEgress"] == named["SecurityGroupEgress"]
    )


def test_it_accepts_protocol_numbers_and_all_protocol_rules(clients, network):
    p = SecurityGroupProvider(clients)
    props = {
        "GroupDescription": "d",
        "VpcId": network["vpc"],
        "SecurityGroupIngress": [
            {"IpProtocol": "6", "FromPort": "8080", "ToPort": "8080", "CidrIp": "10.0.0.0/8"}
        ],
        "SecurityGroupEgress": [{"IpProtocol": "-1", "FromPort": -1, "ToPort": -1, "CidrIp": "10.0.0.0/8"}],
    }
    group_id = p.create(props, "numbers").physical_id
    # Reapplying the same properties is a no-op: "6" is tcp, ports of "-1" mean nothing.
    value = p.update(group_id, props, props).resource_value
    assert value["SecurityGroupIngress"] == [
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "CidrIp": "10.0.0.0/8"}
    ]
    assert value["SecurityGroupEgress"] == [{"IpProtocol": "-1", "CidrIp": "10.0.0.0/8"}]


def test_it_creates_a_security_group_once_per_token(clients, ec2, network):
    p = SecurityGroupProvider(clients)
    props = {"GroupDescription": "d", "VpcId": network["vpc"]}
    a = p.create(props, "sg-once")
    b = p.create(props, "sg-once")
    assert a.physical_id == b.physical_id
    assert len(tagged(ec2, "describe_security_groups", "SecurityGroups", "sg-once")) == 1
    assert a.resource_value["GroupName"] == b.resource_value["GroupName"]  # derived from the token


def test_it_finishes_a_security_group_a_crashed_create_left_without_rules(clients, ec2, network):
    # The first attempt created the tagged group and died before authorizing its rules.
    group_id = ec2.create_security_group(
        GroupName="half-done",
        Description="d",
        VpcId=network["vpc"],
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": PORTAL_TAG, "Value": "crash"}]}
        ],
    )["GroupId"]
    rule = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "10.0.0.0/8"}
    props = {
        "GroupDescription": "d",
        "GroupName": "half-done",
        "VpcId": network["vpc"],
        "SecurityGroupIngress": [rule],
    }
    observed = SecurityGroupProvider(clients).create(props, "crash")
    assert observed.physical_id == group_id
    assert observed.resource_value["SecurityGroupIngress"] == [rule]


def test_it_reports_aws_errors_as_provider_errors(clients, network):
    bad_rule = {
        "IpProtocol": "tcp",
        "FromPort": 1,
        "ToPort": 1,
        "SourceSecurityGroupId": "sg-0123456789abcdef0",
    }
    props = {"GroupDescription": "d", "VpcId": network["vpc"], "SecurityGroupIngress": [bad_rule]}
    with pytest.raises(ProviderError) as err:
        SecurityGroupProvider(clients).create(props, "bad-peer")
    assert err.value.code == "InvalidGroup.NotFound"
    assert err.value.message.startswith("InvalidGroup.NotFound: ")


def test_it_refuses_to_rename_a_security_group(clients, network):
    p = SecurityGroupProvider(clients)
    props = {"GroupDescription": "d", "GroupName": "a", "VpcId": network["vpc"]}
    group_id = p.create(props, "rename").physical_id
    with pytest.raises(ProviderError) as err:
        p.update(group_id, props, {**props, "GroupName": "b"})
    assert err.value.immutable_property == "GroupName"


# --- Load balancer ----------------------------------------------------------------------


def test_it_round_trips_a_load_balancer(clients, elb, network):
    p = provider_for("AWS::ElasticLoadBalancingV2::LoadBalancer", clients)
    props = {
        "Name": "sandbox-tonys-chips-alb",
        "Subnets": network["subnets"],
        "SecurityGroups": [network["sg"]],
        "Scheme": "internet-facing",
        "Type": "application",
        "Tags": [{"Key": "app", "Value": "tonys-chips"}],
    }
    arn = p.create(props, "alb-token").physical_id
    value = p.read(arn).resource_value
    assert_json(value)
    assert value["LoadBalancerArn"] == arn
    assert value["LoadBalancerName"] == "sandbox-tonys-chips-alb"
    assert value["DNSName"]
    assert value["CanonicalHostedZoneID"]
    assert value["LoadBalancerFullName"].startswith("app/sandbox-tonys-chips-alb/")
    assert value["SecurityGroups"] == [network["sg"]]
    assert sorted(value["Subnets"]) == sorted(network["subnets"])
    assert value["Tags"] == [{"Key": "app", "Value": "tonys-chips"}]

    new = {
        **props,
        "SecurityGroups": [network["sg2"]],
        "LoadBalancerAttributes": [{"Key": "idle_timeout.timeout_seconds", "Value": 120}],
        "Tags": [{"Key": "app", "Value": "chips"}],
    }
    p.update(arn, props, new)
    value = p.read(arn).resource_value
    assert value["SecurityGroups"] == [network["sg2"]]
    assert {"Key": "idle_timeout.timeout_seconds", "Value": "120"} in value["LoadBalancerAttributes"]
    assert value["Tags"] == [{"Key": "app", "Value": "chips"}]

    with pytest.raises(ProviderError) as err:
        p.update(arn, new, {**new, "Scheme": "internal"})
    assert err.value.immutable_property == "Scheme"

    p.delete(arn, new)
    with pytest.raises(ResourceMissing):
        p.read(arn)
    p.delete(arn, new)


def test_it_creates_a_load_balancer_once_per_token(clients, elb, network):
    p = LoadBalancerProvider(clients)
    props = {"Subnets": network["subnets"]}  # no Name: derived from the token
    a = p.create(props, "alb-once")
    b = p.create(props, "alb-once")
    assert a.physical_id == b.physical_id
    assert len(elb.describe_load_balancers()["LoadBalancers"]) == 1
    assert len(a.resource_value["LoadBalancerName"]) <= 32


def test_it_will_not_adopt_a_load_balancer_it_did_not_create(clients, elb, network):
    elb.create_load_balancer(Name="someone-elses", Subnets=network["subnets"])
    with pytest.raises(ProviderError) as err:
        LoadBalancerProvider(clients).create({"Name": "someone-elses", "Subnets": network["subnets"]}, "mine")
    assert err.value.code == "AlreadyExists"


# --- Target group, listener, listener rule ----------------------------------------------


@pytest.fixture
def alb(clients, network):
    return (
        LoadBalancerProvider(clients)
        .create({"Name": "alb", "Subnets": network["subnets"]}, "alb")
        .physical_id
    )


def tg_props(network, **extra):
    return {
        "Name": "sandbox-tonys-chips-api-tg",
        "Port": 3000,
        "Protocol": "HTTP",
        "VpcId": network["vpc"],
        "TargetType": "ip",
        "HealthCheckPath": "/health",
        **extra,
    }


def test_it_round_trips_a_target_group(clients, elb, network):
    p = provider_for("AWS::ElasticLoadBalancingV2::TargetGroup", clients)
    props = tg_props(
        network, TargetGroupAttributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}]
    )
    arn = p.create(props, "tg-token").physical_id
    value = p.read(arn).resource_value
    assert_json(value)
    assert value["TargetGroupArn"] == arn
    assert value["TargetGroupName"] == "sandbox-tonys-chips-api-tg"
    assert value["TargetGroupFullName"].startswith("targetgroup/sandbox-tonys-chips-api-tg/")
    assert value["Port"] == 3000 and value["HealthCheckPath"] == "/health"
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "30"} in value["TargetGroupAttributes"]
    assert value["LoadBalancerArns"] == []

    new = {
        **props,
        "HealthCheckPath": "/ready",
        "Matcher": {"HttpCode": "200-299"},
        "HealthCheckIntervalSeconds": "15",
    }
    p.update(arn, props, new)
    value = p.read(arn).resource_value
    assert value["HealthCheckPath"] == "/ready"
    assert value["Matcher"]["HttpCode"] == "200-299"
    assert value["HealthCheckIntervalSeconds"] == 15

    with pytest.raises(ProviderError) as err:
        p.update(arn, new, {**new, "Port": 3001})
    assert err.value.immutable_property == "Port"

    p.delete(arn, new)
    with pytest.raises(ResourceMissing):
        p.read(arn)
    p.delete(arn, new)


def test_it_creates_a_target_group_once_per_token(clients, elb, network):
    p = TargetGroupProvider(clients)
    a = p.create(tg_props(network), "tg-once")
    b = p.create(tg_props(network), "tg-once")
    assert a.physical_id == b.physical_id
    assert len(elb.describe_target_groups()["TargetGroups"]) == 1


def test_it_round_trips_a_listener(clients, elb, network, alb):
    tg = TargetGroupProvider(clients).create(tg_props(network), "tg").physical_id
    p = provider_for("AWS::ElasticLoadBalancingV2::Listener", clients)
    not_found = {
        "Type": "fixed-response",
        "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"},
    }
    props = {"LoadBalancerArn": alb, "Port": 80, "Protocol": "HTTP", "DefaultActions": [not_found]}
    arn = p.create(props, "listener-token").physical_id
    value = p.read(arn).resource_value
    assert_json(value)
    assert value["ListenerArn"] == arn
    assert value["LoadBalancerArn"] == alb
    assert value["Port"] == 80
    assert value["DefaultActions"][0]["Type"] == "fixed-response"

    new = {**props, "Port": 8080, "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg}]}
    p.update(arn, props, new)
    value = p.read(arn).resource_value
    assert value["Port"] == 8080
    assert value["DefaultActions"][0]["TargetGroupArn"] == tg

    p.delete(arn, new)
    with pytest.raises(ResourceMissing):
        p.read(arn)
    p.delete(arn, new)


def test_it_creates_a_listener_once_per_token(clients, elb, alb):
    p = ListenerProvider(clients)
    props = {
        "LoadBalancerArn": alb,
        "Port": 80,
        "Protocol": "HTTP",
        "DefaultActions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    }
    a = p.create(props, "listener-once")
    b = p.create(props, "listener-once")
    assert a.physical_id == b.physical_id
    assert len(elb.describe_listeners(LoadBalancerArn=alb)["Listeners"]) == 1
    with pytest.raises(ProviderError) as err:
        p.create(props, "another-component")  # port 80 is taken by someone else's listener
    assert err.value.code == "AlreadyExists"


@pytest.fixture
def listener(clients, alb):
    props = {
        "LoadBalancerArn": alb,
        "Port": 80,
        "Protocol": "HTTP",
        "DefaultActions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    }
    return ListenerProvider(clients).create(props, "listener").physical_id


def api_rule(tg, priority=10, path="/api/*"):
    return {
        "ListenerArn": None,
        "Priority": priority,
        "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": [path]}}],
        "Actions": [{"Type": "forward", "TargetGroupArn": tg}],
    }


def test_it_round_trips_a_listener_rule(clients, elb, network, listener):
    tg = TargetGroupProvider(clients).create(tg_props(network), "tg").physical_id
    p = provider_for("AWS::ElasticLoadBalancingV2::ListenerRule", clients)
    props = {**api_rule(tg), "ListenerArn": listener}
    arn = p.create(props, "rule-token").physical_id
    value = p.read(arn).resource_value
    assert_json(value)
    assert value["RuleArn"] == arn
    assert value["ListenerArn"] == listener
    assert value["Priority"] == 10
    assert value["IsDefault"] is False
    assert value["Conditions"][0]["PathPatternConfig"]["Values"] == ["/api/*"]
    assert value["Actions"][0]["TargetGroupArn"] == tg

    new = {**api_rule(tg, priority=20, path="/v2/*"), "ListenerArn": listener}
    p.update(arn, props, new)
    value = p.read(arn).resource_value
    assert value["Priority"] == 20
    assert value["Conditions"][0]["PathPatternConfig"]["Values"] == ["/v2/*"]

    p.delete(arn, new)
    with pytest.raises(ResourceMissing):
        p.read(arn)
    p.delete(arn, new)


def test_it_creates_a_listener_rule_once_per_token(clients, elb, network, listener):
    tg = TargetGroupProvider(clients).create(tg_props(network), "tg").physical_id
    p = ListenerRuleProvider(clients)
    props = {**api_rule(tg), "ListenerArn": listener}
    a = p.create(props, "rule-once")
    b = p.create(props, "rule-once")
    assert a.physical_id == b.physical_id
    rules = elb.describe_rules(ListenerArn=listener)["Rules"]
    assert len([r for r in rules if not r["IsDefault"]]) == 1


def test_it_deletes_the_listener_rule_before_its_target_group(clients, elb, network, listener, settings):
    """The seed's Phase 1: the /api/* rule and the api target group go away. AWS refuses to
    delete a target group a rule still forwards to, so the rule must be deleted first."""
    settings.PORTAL_AWS_IN_USE_TIMEOUT = 0  # the refusal itself, not the retries while it drains
    tgs = TargetGroupProvider(clients)
    rules = ListenerRuleProvider(clients)
    tg_props_ = tg_props(network)
    tg = tgs.create(tg_props_, "api-tg").physical_id
    rule_props = {**api_rule(tg), "ListenerArn": listener}
    rule = rules.create(rule_props, "api-listener-rule").physical_id

    with pytest.raises(ProviderError) as err:
        tgs.delete(tg, tg_props_)
    assert err.value.code == "ResourceInUse"
    assert tgs.read(tg).physical_id == tg  # still there

    rules.delete(rule, rule_props)
    tgs.delete(tg, tg_props_)
    with pytest.raises(ResourceMissing):
        tgs.read(tg)
    with pytest.raises(ResourceMissing):
        rules.read(rule)


def test_it_refuses_properties_it_cannot_apply_instead_of_dropping_them(clients, ec2):
    with pytest.raises(ProviderError) as err:
        VpcProvider(clients).create(
            {"CidrBlock": "10.0.0.0/16", "VpcEncryptionControl": {"Mode": "enforce"}}, "t"
        )
    assert err.value.code == "UnsupportedProperty"
    assert tagged(ec2, "describe_vpcs", "Vpcs", "t") == []
