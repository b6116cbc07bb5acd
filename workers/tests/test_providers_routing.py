"""Routing (internet gateway, attachment, route table, route, association) and DB subnet group
providers against moto (in process): round trips and crash-safe creates."""

import json

import pytest
from moto import mock_aws
from moto.rds.models import RDSBackend

from workers.aws import AwsTarget, Clients
from workers.providers import ec2_routing, rds_subnets  # noqa: F401  (importing registers them)
from workers.providers.base import PORTAL_TAG, ProviderError, ResourceMissing, provider_for
from workers.tests.recording import record

REGION = "us-east-1"
TOKEN = "cmp-0042"


@pytest.fixture
def aws(settings):
    settings.PORTAL_AWS_POLL_SECONDS = 0.01
    with mock_aws():
        yield Clients(AwsTarget(region=REGION))


@pytest.fixture
def ec2(aws):
    return aws("ec2")


@pytest.fixture
def network(ec2):
    """A VPC with two subnets in two zones, made directly with boto3."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"][
            "SubnetId"
        ]
        for i, z in ((1, "a"), (2, "b"), (3, "c"))
    ]
    return {"vpc": vpc, "subnets": subnets}


def assert_json(value):
    """resource_value is stored in a JSONField: it must survive json.dumps untouched."""
    assert json.loads(json.dumps(value)) == value


def tagged(ec2, describe, key, token=TOKEN):
    return getattr(ec2, describe)(Filters=[{"Name": f"tag:{PORTAL_TAG}", "Values": [token]}])[key]


def igw_attachments(ec2, igw_id):
    return ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"][0]["Attachments"]


# --- Internet gateway -------------------------------------------------------------------


def test_internet_gateway_round_trip(aws, ec2):
    p = provider_for("AWS::EC2::InternetGateway", aws)
    props = {"Tags": [{"Key": "Name", "Value": "sandbox-tonys-chips-igw"}]}
    created = p.create(props, TOKEN)
    igw_id = created.physical_id
    assert igw_id.startswith("igw-")
    value = p.read(igw_id, props).resource_value
    assert value == {
        "InternetGatewayId": igw_id,
        "Tags": [{"Key": "Name", "Value": "sandbox-tonys-chips-igw"}],
    }
    assert_json(value)
    assert [
        g["InternetGatewayId"] for g in tagged(ec2, "describe_internet_gateways", "InternetGateways")
    ] == [igw_id]

    new = {"Tags": [{"Key": "team", "Value": "chips"}]}
    updated = p.update(igw_id, props, new)
    assert updated.physical_id == igw_id
    assert updated.resource_value["Tags"] == [{"Key": "team", "Value": "chips"}]
    # The portal's own tag survives a tag update.
    assert tagged(ec2, "describe_internet_gateways", "InternetGateways")

    p.delete(igw_id, new)
    with pytest.raises(ResourceMissing):
        p.read(igw_id, new)
    p.delete(igw_id, new)  # already gone is a success


def test_internet_gateway_create_is_idempotent_per_token(aws, ec2):
    p = provider_for("AWS::EC2::InternetGateway", aws)
    calls = record(ec2, "CreateInternetGateway")
    first = p.create({}, TOKEN)
    second = p.create({}, TOKEN)
    assert first.physical_id == second.physical_id
    assert len(calls) == 1
    assert len(tagged(ec2, "describe_internet_gateways", "InternetGateways")) == 1


# --- VPC gateway attachment -------------------------------------------------------------


def test_gateway_attachment_round_trip(aws, ec2, network):
    p = provider_for("AWS::EC2::VPCGatewayAttachment", aws)
    vpc = network["vpc"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    igw2 = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    props = {"VpcId": vpc, "InternetGatewayId": igw}

    created = p.create(props, TOKEN)
    assert created.physical_id == f"IGW|{vpc}"
    assert created.resource_value == {"AttachmentType": "IGW", "VpcId": vpc, "InternetGatewayId": igw}
    assert [a["VpcId"] for a in igw_attachments(ec2, igw)] == [vpc]
    # Read from the physical id alone (import, refresh without properties).
    assert p.read(created.physical_id).resource_value["InternetGatewayId"] == igw

    # Another gateway: detach the old one, attach the new one; the physical id stays.
    new = {"VpcId": vpc, "InternetGatewayId": igw2}
    updated = p.update(created.physical_id, props, new)
    assert updated.physical_id == created.physical_id
    assert updated.resource_value["InternetGatewayId"] == igw2
    assert igw_attachments(ec2, igw) == []
    assert [a["VpcId"] for a in igw_attachments(ec2, igw2)] == [vpc]

    with pytest.raises(ProviderError) as err:
        p.update(created.physical_id, new, {**new, "VpcId": "vpc-0123456789abcdef0"})
    assert err.value.immutable_property == "VpcId"

    p.delete(created.physical_id, new)
    assert igw_attachments(ec2, igw2) == []
    with pytest.raises(ResourceMissing):
        p.read(created.physical_id, new)
    p.delete(created.physical_id, new)  # already detached is a success
    p.delete(created.physical_id, {})


def test_gateway_attachment_create_is_idempotent(aws, ec2, network):
    p = provider_for("AWS::EC2::VPCGatewayAttachment", aws)
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    props = {"VpcId": network["vpc"], "InternetGatewayId": igw}
    calls = record(ec2, "AttachInternetGateway")
    first = p.create(props, TOKEN)
    second = p.create(props, TOKEN)
    assert first.physical_id == second.physical_id
    assert len(calls) == 1
    assert len(igw_attachments(ec2, igw)) == 1


def test_gateway_attachment_vpn_gateway_and_kind_change(aws, ec2, network):
    p = provider_for("AWS::EC2::VPCGatewayAttachment", aws)
    vpc = network["vpc"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    props = {"VpcId": vpc, "InternetGatewayId": igw}
    created = p.create(props, TOKEN)

    new = {"VpcId": vpc, "VpnGatewayId": vgw}
    updated = p.update(created.physical_id, props, new)
    assert updated.physical_id == f"VPN|{vpc}"
    assert updated.resource_value == {"AttachmentType": "VPN", "VpcId": vpc, "VpnGatewayId": vgw}
    assert igw_attachments(ec2, igw) == []

    p.delete(updated.physical_id, new)
    with pytest.raises(ResourceMissing):
        p.read(updated.physical_id, new)

    with pytest.raises(ProviderError) as err:
        p.create({"VpcId": vpc, "InternetGatewayId": igw, "VpnGatewayId": vgw}, TOKEN)
    assert err.value.code == "InvalidProperty"


# --- Route table ------------------------------------------------------------------------


def test_route_table_round_trip(aws, ec2, network):
    p = provider_for("AWS::EC2::RouteTable", aws)
    props = {"VpcId": network["vpc"], "Tags": [{"Key": "Name", "Value": "sandbox-tonys-chips-public"}]}
    created = p.create(props, TOKEN)
    rtb = created.physical_id
    assert rtb.startswith("rtb-")
    value = p.read(rtb, props).resource_value
    assert value == {
        "RouteTableId": rtb,
        "VpcId": network["vpc"],
        "Tags": [{"Key": "Name", "Value": "sandbox-tonys-chips-public"}],
    }
    assert_json(value)

    new = {**props, "Tags": [{"Key": "Name", "Value": "public"}, {"Key": "team", "Value": "chips"}]}
    assert p.update(rtb, props, new).resource_value["Tags"] == new["Tags"]
    with pytest.raises(ProviderError) as err:
        p.update(rtb, new, {**new, "VpcId": "vpc-0123456789abcdef0"})
    assert err.value.immutable_property == "VpcId"

    p.delete(rtb, new)
    with pytest.raises(ResourceMissing):
        p.read(rtb, new)
    p.delete(rtb, new)


def test_route_table_create_is_idempotent_per_token(aws, ec2, network):
    p = provider_for("AWS::EC2::RouteTable", aws)
    calls = record(ec2, "CreateRouteTable")
    props = {"VpcId": network["vpc"]}
    first = p.create(props, TOKEN)
    second = p.create(props, TOKEN)
    assert first.physical_id == second.physical_id
    assert len(calls) == 1
    assert len(tagged(ec2, "describe_route_tables", "RouteTables")) == 1


# --- Route ------------------------------------------------------------------------------


@pytest.fixture
def gateways(ec2, network):
    """An internet gateway and a VPN gateway, both attached to the VPC, and a route table."""
    vpc = network["vpc"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    ec2.attach_vpn_gateway(VpnGatewayId=vgw, VpcId=vpc)
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    return {"igw": igw, "vgw": vgw, "rtb": rtb}


def routes(ec2, rtb):
    return [
        r
        for r in ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
        if r.get("Origin") != "CreateRouteTable"
    ]


def test_route_round_trip(aws, ec2, gateways):
    p = provider_for("AWS::EC2::Route", aws)
    rtb, igw, vgw = gateways["rtb"], gateways["igw"], gateways["vgw"]
    props = {"RouteTableId": rtb, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw}
    created = p.create(props, TOKEN)
    assert created.physical_id == f"{rtb}|0.0.0.0/0"
    value = p.read(created.physical_id, props).resource_value
    assert value == {
        "RouteTableId": rtb,
        "CidrBlock": "0.0.0.0/0",
        "DestinationCidrBlock": "0.0.0.0/0",
        "GatewayId": igw,
    }
    assert_json(value)

    replace_calls = record(ec2, "ReplaceRoute")
    assert p.update(created.physical_id, props, props).resource_value["GatewayId"] == igw
    assert replace_calls == []  # nothing changed, nothing sent
    new = {**props, "GatewayId": vgw}
    updated = p.update(created.physical_id, props, new)
    assert replace_calls == [{"RouteTableId": rtb, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": vgw}]
    assert updated.physical_id == created.physical_id
    assert updated.resource_value["GatewayId"] == vgw
    assert [r["GatewayId"] for r in routes(ec2, rtb)] == [vgw]

    with pytest.raises(ProviderError) as err:
        p.update(created.physical_id, new, {**new, "DestinationCidrBlock": "10.9.0.0/16"})
    assert err.value.immutable_property == "DestinationCidrBlock"

    p.delete(created.physical_id, new)
    assert routes(ec2, rtb) == []
    with pytest.raises(ResourceMissing):
        p.read(created.physical_id, new)
    p.delete(created.physical_id, new)


def test_route_destination_in_canonical_form(aws, ec2, gateways):
    p = provider_for("AWS::EC2::Route", aws)
    props = {
        "RouteTableId": gateways["rtb"],
        "DestinationCidrBlock": "172.16.9.9/16",
        "GatewayId": gateways["vgw"],
    }
    created = p.create(props, TOKEN)
    assert created.physical_id == f"{gateways['rtb']}|172.16.0.0/16"
    assert created.resource_value["CidrBlock"] == "172.16.0.0/16"
    p.delete(created.physical_id, props)
    with pytest.raises(ResourceMissing):
        p.read(created.physical_id)


def test_route_create_is_idempotent(aws, ec2, gateways):
    p = provider_for("AWS::EC2::Route", aws)
    props = {
        "RouteTableId": gateways["rtb"],
        "DestinationCidrBlock": "0.0.0.0/0",
        "GatewayId": gateways["igw"],
    }
    calls = record(ec2, "CreateRoute")
    first = p.create(props, TOKEN)
    second = p.create(props, TOKEN)
    assert first.physical_id == second.physical_id
    assert len(calls) == 1
    assert len(routes(ec2, gateways["rtb"])) == 1

    # A different route for the same destination is not adopted: AWS refuses the create.
    with pytest.raises(ProviderError) as err:
        p.create({**props, "GatewayId": gateways["vgw"]}, "another-component")
    assert err.value.code == "RouteAlreadyExists"


def test_route_needs_exactly_one_destination(aws, gateways):
    p = provider_for("AWS::EC2::Route", aws)
    with pytest.raises(ProviderError) as err:
        p.create({"RouteTableId": gateways["rtb"], "GatewayId": gateways["igw"]}, TOKEN)
    assert err.value.code == "InvalidProperty"


def test_route_to_an_instance_reports_one_target():
    # AWS reads a route to an instance back with the instance's network interface as well
    # (moto does not): read reports the target the properties name, else the instance.
    route = {"DestinationCidrBlock": "0.0.0.0/0", "InstanceId": "i-1", "NetworkInterfaceId": "eni-1"}
    assert ec2_routing._reported_targets(route, None) == {"InstanceId": "i-1"}
    assert ec2_routing._reported_targets(route, {"NetworkInterfaceId": "eni-1"}) == {
        "NetworkInterfaceId": "eni-1"
    }
    assert ec2_routing._same_target(route, {"NetworkInterfaceId": "eni-1"})
    assert ec2_routing._same_target(route, {"InstanceId": "i-1"})
    assert not ec2_routing._same_target(route, {"InstanceId": "i-2"})
    assert ec2_routing._reported_targets({"GatewayId": "vpce-1"}, None) == {"VpcEndpointId": "vpce-1"}


# --- Subnet route table association -----------------------------------------------------


def associations(ec2, subnet):
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])
    return [a for t in tables["RouteTables"] for a in t["Associations"] if a.get("SubnetId") == subnet]


def test_subnet_route_table_association_round_trip(aws, ec2, network):
    p = provider_for("AWS::EC2::SubnetRouteTableAssociation", aws)
    rtb = ec2.create_route_table(VpcId=network["vpc"])["RouteTable"]["RouteTableId"]
    subnet = network["subnets"][0]
    props = {"SubnetId": subnet, "RouteTableId": rtb}
    created = p.create(props, TOKEN)
    assert created.physical_id.startswith("rtbassoc-")
    value = p.read(created.physical_id, props).resource_value
    assert value == {"Id": created.physical_id, "SubnetId": subnet, "RouteTableId": rtb}
    assert_json(value)

    # Both properties are create-only: an unchanged update only reads, a change is a replacement.
    assert p.update(created.physical_id, props, props).resource_value == value
    other = ec2.create_route_table(VpcId=network["vpc"])["RouteTable"]["RouteTableId"]
    with pytest.raises(ProviderError) as err:
        p.update(created.physical_id, props, {**props, "RouteTableId": other})
    assert err.value.immutable_property == "RouteTableId"

    p.delete(created.physical_id, props)
    assert associations(ec2, subnet) == []
    with pytest.raises(ResourceMissing):
        p.read(created.physical_id, props)
    p.delete(created.physical_id, props)


def test_subnet_route_table_association_create_is_idempotent(aws, ec2, network):
    p = provider_for("AWS::EC2::SubnetRouteTableAssociation", aws)
    rtb = ec2.create_route_table(VpcId=network["vpc"])["RouteTable"]["RouteTableId"]
    props = {"SubnetId": network["subnets"][1], "RouteTableId": rtb}
    calls = record(ec2, "AssociateRouteTable")
    first = p.create(props, TOKEN)
    second = p.create(props, TOKEN)
    assert first.physical_id == second.physical_id
    assert len(calls) == 1
    assert len(associations(ec2, network["subnets"][1])) == 1


# --- DB subnet group --------------------------------------------------------------------


@pytest.fixture
def faithful_modify(monkeypatch):
    """moto 5.2.5's ModifyDBSubnetGroup drops the group from its store (it pops it and never
    puts it back), so the group reads as gone afterwards. AWS keeps it: store it again."""
    original = RDSBackend.modify_db_subnet_group

    def modify(self, subnet_name, description, subnets):
        group = self.subnet_groups.get(subnet_name)
        result = original(self, subnet_name, description, subnets)
        if group is not None:
            self.subnet_groups[group.name] = result
        return result

    monkeypatch.setattr(RDSBackend, "modify_db_subnet_group", modify)


def group_props(network, **extra):
    props = {
        "DBSubnetGroupName": "Sandbox-Tonys-Chips-DB",
        "DBSubnetGroupDescription": "Tonys Chips Postgres subnets",
        "SubnetIds": network["subnets"][:2],
        "Tags": [{"Key": "app", "Value": "tonys-chips"}],
    }
    props.update(extra)
    return props


def test_db_subnet_group_round_trip(aws, network, faithful_modify):
    p = provider_for("AWS::RDS::DBSubnetGroup", aws)
    rds = aws("rds")
    props = group_props(network)
    created = p.create(props, TOKEN)
    assert created.physical_id == "sandbox-tonys-chips-db"
    value = p.read(created.physical_id, props).resource_value
    assert value["DBSubnetGroupName"] == "sandbox-tonys-chips-db"
    assert value["DBSubnetGroupDescription"] == "Tonys Chips Postgres subnets"
    assert value["SubnetIds"] == network["subnets"][:2]
    assert value["DBSubnetGroupArn"].endswith(":subgrp:sandbox-tonys-chips-db")
    assert value["VpcId"] == network["vpc"]
    assert value["Tags"] == [{"Key": "app", "Value": "tonys-chips"}]
    assert_json(value)
    assert {"Key": PORTAL_TAG, "Value": TOKEN} in rds.list_tags_for_resource(
        ResourceName=value["DBSubnetGroupArn"]
    )["TagList"]

    # Same subnets in another order: no call, and reported in the order the properties give.
    modify_calls = record(rds, "ModifyDBSubnetGroup")
    reordered = group_props(network, SubnetIds=list(reversed(network["subnets"][:2])))
    assert (
        p.update(created.physical_id, props, reordered).resource_value["SubnetIds"] == reordered["SubnetIds"]
    )
    assert modify_calls == []

    new = group_props(
        network,
        DBSubnetGroupName="sandbox-tonys-chips-db",  # a change of case only is no change
        DBSubnetGroupDescription="Postgres subnets",
        SubnetIds=[network["subnets"][0], network["subnets"][2]],
        Tags=[{"Key": "team", "Value": "chips"}],
    )
    updated = p.update(created.physical_id, props, new)
    assert modify_calls == [
        {
            "DBSubnetGroupName": "sandbox-tonys-chips-db",
            "DBSubnetGroupDescription": "Postgres subnets",
            "SubnetIds": [network["subnets"][0], network["subnets"][2]],
        }
    ]
    assert updated.physical_id == created.physical_id
    v = p.read(created.physical_id, new).resource_value
    assert v["DBSubnetGroupDescription"] == "Postgres subnets"
    assert v["SubnetIds"] == new["SubnetIds"]
    assert v["Tags"] == [{"Key": "team", "Value": "chips"}]
    assert {"Key": PORTAL_TAG, "Value": TOKEN} in rds.list_tags_for_resource(
        ResourceName=v["DBSubnetGroupArn"]
    )["TagList"]

    with pytest.raises(ProviderError) as err:
        p.update(created.physical_id, new, group_props(network, DBSubnetGroupName="renamed"))
    assert err.value.immutable_property == "DBSubnetGroupName"

    p.delete(created.physical_id, new)
    with pytest.raises(ResourceMissing):
        p.read(created.physical_id, new)
    p.delete(created.physical_id, new)


def test_db_subnet_group_create_is_idempotent_per_token(aws, network):
    p = provider_for("AWS::RDS::DBSubnetGroup", aws)
    rds = aws("rds")
    calls = record(rds, "CreateDBSubnetGroup")
    first = p.create(group_props(network), TOKEN)
    second = p.create(group_props(network), TOKEN)
    assert first.physical_id == second.physical_id
    assert len(calls) == 1
    assert len(rds.describe_db_subnet_groups()["DBSubnetGroups"]) == 1
    with pytest.raises(ProviderError) as err:
        p.create(group_props(network), "another-component")
    assert err.value.code == "AlreadyExists"


def test_db_subnet_group_without_a_name_gets_one_from_the_token(aws, network):
    p = provider_for("AWS::RDS::DBSubnetGroup", aws)
    props = group_props(network, DBSubnetGroupName=None)
    first = p.create(props, "Cmp_0042")
    assert first.physical_id == "portal-cmp-0042"
    assert p.create(props, "Cmp_0042").physical_id == first.physical_id
    assert len(aws("rds").describe_db_subnet_groups()["DBSubnetGroups"]) == 1


# --- The Tony's Chips public network, wired as the example workspace wires it -------------


def test_tonys_chips_public_network(aws, ec2, network):
    def make(type_name, props, token):
        return provider_for(type_name, aws).create(props, token)

    vpc, (subnet_a, subnet_b, _) = network["vpc"], network["subnets"]
    igw = make("AWS::EC2::InternetGateway", {"Tags": [{"Key": "Name", "Value": "igw"}]}, "igw")
    attachment = make(
        "AWS::EC2::VPCGatewayAttachment",
        {"VpcId": vpc, "InternetGatewayId": igw.resource_value["InternetGatewayId"]},
        "attachment",
    )
    table = make("AWS::EC2::RouteTable", {"VpcId": vpc}, "rtb")
    route = make(
        "AWS::EC2::Route",
        {
            "RouteTableId": table.resource_value["RouteTableId"],
            "DestinationCidrBlock": "0.0.0.0/0",
            "GatewayId": attachment.resource_value["InternetGatewayId"],
        },
        "route",
    )
    assocs = [
        make(
            "AWS::EC2::SubnetRouteTableAssociation",
            {"SubnetId": s, "RouteTableId": table.resource_value["RouteTableId"]},
            f"assoc-{s}",
        )
        for s in (subnet_a, subnet_b)
    ]
    group = make(
        "AWS::RDS::DBSubnetGroup",
        {
            "DBSubnetGroupName": "sandbox-tonys-chips-db",
            "DBSubnetGroupDescription": "Tonys Chips Postgres subnets",
            "SubnetIds": [subnet_a, subnet_b],
        },
        "group",
    )
    assert group.resource_value["DBSubnetGroupName"] == "sandbox-tonys-chips-db"

    # Deleted in reverse dependency order, as an apply does.
    for type_name, observed in [
        ("AWS::RDS::DBSubnetGroup", group),
        *[("AWS::EC2::SubnetRouteTableAssociation", a) for a in assocs],
        ("AWS::EC2::Route", route),
        ("AWS::EC2::RouteTable", table),
        ("AWS::EC2::VPCGatewayAttachment", attachment),
        ("AWS::EC2::InternetGateway", igw),
    ]:
        p = provider_for(type_name, aws)
        p.delete(observed.physical_id, {})
        with pytest.raises(ResourceMissing):
            p.read(observed.physical_id)
