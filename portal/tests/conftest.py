"""Fixtures of the portal's view tests: the three seats and a small shop with a change set."""

import pytest
from django.test import Client

from portal import changesets
from portal.tests.factories import SECRET, head, observe, src


@pytest.fixture
def seat(users):
    """seat("editor") -> a new client signed in as that user."""

    def sign_in(name):
        client = Client()
        client.force_login(users[name])
        return client

    return sign_in


@pytest.fixture
def shop(workspace, users):
    """HEAD: a VPC AWS has reported, a security group subscribing to it, a database."""
    comps = head(
        workspace,
        users["editor"],
        {
            "vpc": ("AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"}),
            "api-sg": (
                "AWS::EC2::SecurityGroup",
                {"GroupDescription": "api", "VpcId": src("vpc", "/resource_value/VpcId")},
            ),
            "db": (
                "AWS::RDS::DBInstance",
                {
                    "Engine": "postgres",
                    "DBInstanceClass": "db.t3.micro",
                    "MasterUserPassword": "old-" + SECRET,
                },
            ),
        },
    )
    observe(comps["vpc"], "vpc-123", {"VpcId": "vpc-123", "CidrBlock": "10.0.0.0/16"})
    return workspace


@pytest.fixture
def change_set(shop, users):
    """Bob's change set: an ingress rule, a new group subscribing to the VPC, a new password."""
    bob = users["editor"]
    cs = changesets.create_change_set(
        shop, bob, "open-port-3000", problem="The web tier cannot reach the API."
    )
    changesets.set_property(
        cs,
        bob,
        "api-sg",
        "/SecurityGroupIngress",
        [{"IpProtocol": "tcp", "FromPort": 3000, "ToPort": 3000, "CidrIp": "10.0.0.0/16"}],
    )
    changesets.upsert_component(
        cs,
        bob,
        "web-sg",
        "AWS::EC2::SecurityGroup",
        {"GroupDescription": "web", "VpcId": src("vpc", "/resource_value/VpcId")},
    )
    changesets.set_property(cs, bob, "db", "/MasterUserPassword", "new-" + SECRET)
    return cs
