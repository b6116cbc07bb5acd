import pytest

from portal import changesets
from portal.plan import plan_actions

from .factories import head, src

SG = "AWS::EC2::SecurityGroup"
SVC = "AWS::ECS::Service"
TG = "AWS::ElasticLoadBalancingV2::TargetGroup"
RULE = "AWS::ElasticLoadBalancingV2::ListenerRule"


@pytest.fixture
def bob(users):
    return users["editor"]


def kinds(plan):
    return {a.component: a.kind for a in plan.actions}


def waits(plan):
    return {a.key: a.waits_for for a in plan.actions}


def test_it_orders_creates_producer_first(workspace, bob):
    cs = changesets.create_change_set(workspace, bob, "new")
    changesets.upsert_component(cs, bob, "vpc", "AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"})
    changesets.upsert_component(
        cs, bob, "sg", SG, {"GroupDescription": "x", "VpcId": src("vpc", "/resource_value/VpcId")}
    )
    plan = plan_actions(cs)
    assert [a.key for a in plan.actions] == ["create:vpc", "create:sg"]
    assert waits(plan)["create:sg"] == ["create:vpc"]
    assert plan.ok


def test_it_plans_replace_for_a_create_only_change_and_names_the_property(workspace, bob):
    head(workspace, bob, {"sg": (SG, {"GroupDescription": "old"})})
    cs = changesets.create_change_set(workspace, bob, "rename")
    changesets.set_property(cs, bob, "sg", "/GroupDescription", "new")
    [action] = plan_actions(cs).actions
    assert action.kind == "replace" and action.replace_paths == ["/GroupDescription"]
    assert "GroupDescription" in action.reason and action.downtime


def test_it_plans_update_when_nothing_create_only_changed(workspace, bob):
    head(workspace, bob, {"api": (SVC, {"ServiceName": "api", "DesiredCount": 2})})
    cs = changesets.create_change_set(workspace, bob, "scale")
    changesets.set_property(cs, bob, "api", "/DesiredCount", 4)
    [action] = plan_actions(cs).actions
    assert (action.kind, [c.path for c in action.changes]) == ("update", ["/DesiredCount"])


def test_it_replaces_a_component_the_user_marked(workspace, bob):
    head(workspace, bob, {"api": (SVC, {"ServiceName": "api"})})
    cs = changesets.create_change_set(workspace, bob, "recreate")
    changesets.upsert_component(cs, bob, "api", replace=True)
    [action] = plan_actions(cs).actions
    assert action.kind == "replace" and action.reason == "marked for replacement"


def test_it_updates_subscribers_after_their_producer_is_replaced(workspace, bob):
    head(
        workspace,
        bob,
        {
            "sg": (SG, {"GroupDescription": "old"}),
            "api": (
                SVC,
                {
                    "ServiceName": "api",
                    "NetworkConfiguration": {
                        "AwsvpcConfiguration": {
                            "Subnets": ["subnet-1"],
                            "SecurityGroups": [src("sg", "/resource_value/GroupId")],
                        }
                    },
                },
            ),
        },
    )
    cs = changesets.create_change_set(workspace, bob, "replace sg")
    changesets.set_property(cs, bob, "sg", "/GroupDescription", "new")
    plan = plan_actions(cs)
    assert kinds(plan) == {"sg": "replace", "api": "update"}
    assert waits(plan)["update:api"] == ["replace:sg"]
    assert "follows sg/resource_value/GroupId" in plan.actions[1].reason


def test_it_plans_the_seeds_service_discovery_migration_in_order(workspace, bob):
    head(
        workspace,
        bob,
        {
            "api-tg": (TG, {"Port": 3000, "Protocol": "HTTP", "TargetType": "ip"}),
            "api-listener-rule": (
                RULE,
                {
                    "Priority": 10,
                    "ListenerArn": "arn:listener",
                    "Conditions": [{"Field": "path-pattern", "Values": ["/api/*"]}],
                    "Actions": [
                        {"Type": "forward", "TargetGroupArn": src("api-tg", "/resource_value/TargetGroupArn")}
                    ],
                },
            ),
            "api": (
                SVC,
                {
                    "ServiceName": "api",
                    "LoadBalancers": [
                        {
                            "ContainerName": "api",
                            "ContainerPort": 3000,
                            "TargetGroupArn": src("api-tg", "/resource_value/TargetGroupArn"),
                        }
                    ],
                },
            ),
        },
    )
    cs = changesets.create_change_set(workspace, bob, "migrate-to-service-discovery")
    changesets.upsert_component(
        cs,
        bob,
        "ns",
        "AWS::ServiceDiscovery::PrivateDnsNamespace",
        {"Name": "tonys-chips.local", "Vpc": "vpc-1"},
    )
    changesets.upsert_component(
        cs,
        bob,
        "sd-api",
        "AWS::ServiceDiscovery::Service",
        {
            "Name": "api",
            "DnsConfig": {
                "DnsRecords": [{"Type": "A", "TTL": 60}],
                "NamespaceId": src("ns", "/resource_value/Id"),
            },
        },
    )
    changesets.upsert_component(
        cs,
        bob,
        "api",
        SVC,
        {
            "ServiceName": "api",
            "LoadBalancers": [],
            "ServiceRegistries": [{"RegistryArn": src("sd-api", "/resource_value/Arn")}],
        },
        replace=True,
    )
    changesets.delete_component(cs, bob, "api-listener-rule")
    changesets.delete_component(cs, bob, "api-tg")
    plan = plan_actions(cs)
    assert plan.ok, plan.errors
    assert kinds(plan) == {
        "ns": "create",
        "sd-api": "create",
        "api": "replace",
        "api-listener-rule": "delete",
        "api-tg": "delete",
    }
    w = waits(plan)
    assert w["create:sd-api"] == ["create:ns"]
    assert w["replace:api"] == ["create:sd-api"]
    assert w["delete:api-tg"] == ["delete:api-listener-rule", "replace:api"]
    order = [a.key for a in plan.actions]
    assert order.index("replace:api") < order.index("delete:api-tg")


def test_it_marks_a_follow_up_update_for_a_self_subscription(workspace, bob):
    cs = changesets.create_change_set(workspace, bob, "self")
    rule = {
        "IpProtocol": "tcp",
        "FromPort": 3000,
        "ToPort": 3000,
        "SourceSecurityGroupId": src("sg", "/resource_value/GroupId"),
    }
    changesets.upsert_component(cs, bob, "sg", SG, {"GroupDescription": "x", "SecurityGroupIngress": [rule]})
    [action] = plan_actions(cs).actions
    assert action.kind == "create" and action.follow_up and action.waits_for == []


def test_it_refuses_a_type_without_a_provider_at_plan_time(workspace, bob):
    cs = changesets.create_change_set(workspace, bob, "sns")
    changesets.upsert_component(cs, bob, "topic", "AWS::SNS::Topic", {"TopicName": "alerts"})
    plan = plan_actions(cs)
    assert not plan.ok
    assert plan.errors == [
        {
            "component": "topic",
            "message": "no provider for AWS::SNS::Topic: the portal cannot create it in AWS yet",
        }
    ]


def test_its_checksum_moves_with_the_plan(workspace, bob):
    head(workspace, bob, {"api": (SVC, {"ServiceName": "api", "DesiredCount": 2})})
    cs = changesets.create_change_set(workspace, bob, "scale")
    changesets.set_property(cs, bob, "api", "/DesiredCount", 4)
    first = plan_actions(cs).checksum
    assert plan_actions(cs).checksum == first
    changesets.set_property(cs, bob, "api", "/DesiredCount", 5)
    assert plan_actions(cs).checksum != first
