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
    return {a.component: a.kind for a in plan.actions if a.kind != "cleanup"}


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
    action, cleanup = plan_actions(cs).actions
    assert action.kind == "replace" and action.replace_paths == ["/GroupDescription"]
    assert "GroupDescription" in action.reason
    # No GroupName: AWS names the new group, so it is created before the old one goes.
    assert action.replacement == "create-first" and not action.downtime
    assert cleanup.key == "cleanup:sg" and cleanup.waits_for == ["replace:sg"]


def test_it_deletes_first_only_when_the_new_resource_must_reuse_the_name(workspace, bob):
    head(workspace, bob, {"sg": (SG, {"GroupName": "api", "GroupDescription": "old"})})
    cs = changesets.create_change_set(workspace, bob, "rename")
    changesets.set_property(cs, bob, "sg", "/GroupDescription", "new")
    [action] = plan_actions(cs).actions
    assert action.replacement == "delete-first" and action.downtime
    assert "leave GroupName unset" in action.alternative


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


# --- Changes that travel through HEAD components the change set does not touch ------------


def _chain(workspace, bob):
    """p -> c -> d through Tags: c copies p's tags, d copies c's first tag value."""
    return head(
        workspace,
        bob,
        {
            "p": (SG, {"GroupDescription": "p", "Tags": [{"Key": "team", "Value": "chips"}]}),
            "c": (SG, {"GroupDescription": "c", "Tags": src("p", "/domain/Tags")}),
            "d": (
                SG,
                {
                    "GroupDescription": "d",
                    "Tags": [{"Key": "from-c", "Value": src("c", "/domain/Tags/0/Value")}],
                },
            ),
        },
    )


def test_it_plans_and_merges_a_change_that_travels_through_an_untouched_component(workspace, bob):
    from portal.models import Component

    _chain(workspace, bob)
    cs = changesets.create_change_set(workspace, bob, "retag p")
    changesets.set_property(cs, bob, "p", "/Tags/0/Value", "crisps")
    plan = plan_actions(cs)
    assert kinds(plan) == {"p": "update", "c": "update", "d": "update"}
    assert waits(plan)["update:d"] == ["update:c"]
    assert (
        "/Tags/0/Value follows c/domain/Tags/0/Value"
        in next(a for a in plan.actions if a.component == "d").reason
    )
    changesets.merge(cs, bob)
    assert Component.objects.get(name="d").domain["Tags"] == [{"Key": "from-c", "Value": "crisps"}]


def test_it_accepts_a_subscription_to_a_value_an_untouched_component_will_have(workspace, bob):
    _chain(workspace, bob)
    cs = changesets.create_change_set(workspace, bob, "second tag")
    changesets.set_property(cs, bob, "p", "/Tags/1", {"Key": "env", "Value": "prod"})
    changesets.upsert_component(
        cs,
        bob,
        "e",
        SG,
        {"GroupDescription": "e", "Tags": [{"Key": "env", "Value": src("c", "/domain/Tags/1/Value")}]},
    )
    assert kinds(plan_actions(cs)) == {"p": "update", "c": "update", "e": "create"}


def test_it_replaces_an_edited_consumer_whose_create_only_input_moves(workspace, bob):
    head(
        workspace,
        bob,
        {
            "p": (SG, {"GroupDescription": "old"}),
            "c": (SG, {"GroupDescription": src("p", "/domain/GroupDescription")}),
        },
    )
    cs = changesets.create_change_set(workspace, bob, "rename p, tag c")
    changesets.set_property(cs, bob, "p", "/GroupDescription", "new")
    changesets.set_property(cs, bob, "c", "/Tags", [{"Key": "team", "Value": "chips"}])
    plan = plan_actions(cs)
    assert kinds(plan) == {"p": "replace", "c": "replace"}
    assert next(a for a in plan.actions if a.component == "c").replace_paths == ["/GroupDescription"]


@pytest.mark.parametrize("tags_first", [True, False])
def test_it_ripples_a_replacement_whatever_order_the_properties_are_written_in(workspace, bob, tags_first):
    tags = {"Tags": [{"Key": "a", "Value": src("a", "/domain/Tags/0/Value")}]}
    description = {"GroupDescription": src("b", "/domain/GroupDescription")}
    x = {**tags, **description} if tags_first else {**description, **tags}
    rule = {
        "IpProtocol": "tcp",
        "FromPort": 80,
        "ToPort": 80,
        "SourceSecurityGroupId": src("x", "/resource_value/GroupId"),
    }
    head(
        workspace,
        bob,
        {
            "a": (SG, {"GroupDescription": "a", "Tags": [{"Key": "k", "Value": "1"}]}),
            "b": (SG, {"GroupDescription": "b"}),
            "x": (SG, x),
            "y": (SG, {"GroupDescription": "y", "SecurityGroupIngress": [rule]}),
        },
    )
    cs = changesets.create_change_set(workspace, bob, "retag a, rename b")
    changesets.set_property(cs, bob, "a", "/Tags/0/Value", "2")
    changesets.set_property(cs, bob, "b", "/GroupDescription", "b2")
    plan = plan_actions(cs)
    assert kinds(plan) == {"a": "update", "b": "replace", "x": "replace", "y": "update"}
    assert waits(plan)["update:y"] == ["replace:x"]


def test_it_refuses_an_integer_subscribed_into_a_string(workspace, bob):
    from portal.errors import ValidationError

    head(workspace, bob, {"api": (SVC, {"ServiceName": "api", "DesiredCount": 2})})
    cs = changesets.create_change_set(workspace, bob, "bad type")
    with pytest.raises(ValidationError, match=r"GroupDescription.*\(the value of api/domain/DesiredCount\)"):
        changesets.upsert_component(
            cs, bob, "sg", SG, {"GroupDescription": src("api", "/domain/DesiredCount")}
        )


def test_it_refuses_to_merge_a_change_whose_resolved_value_a_consumer_schema_refuses(workspace, bob):
    from portal.errors import ValidationError
    from portal.models import Component

    head(
        workspace,
        bob,
        {
            "api": (SVC, {"ServiceName": "api", "DesiredCount": 3}),
            "logs": ("AWS::Logs::LogGroup", {"RetentionInDays": src("api", "/domain/DesiredCount")}),
        },
    )
    cs = changesets.create_change_set(workspace, bob, "scale to 2")
    changesets.set_property(cs, bob, "api", "/DesiredCount", 2)
    with pytest.raises(ValidationError, match="logs/RetentionInDays"):
        changesets.merge(cs, bob)
    assert Component.objects.get(name="api").properties["DesiredCount"] == 3
    assert Component.objects.get(name="logs").domain["RetentionInDays"] == 3


def test_it_refuses_to_revert_an_added_producer_that_others_read(workspace, bob):
    from portal.errors import ValidationError

    cs = changesets.create_change_set(workspace, bob, "pair")
    changesets.upsert_component(cs, bob, "p", SG, {"GroupDescription": "p"})
    changesets.upsert_component(cs, bob, "c", SG, {"GroupDescription": src("p", "/domain/GroupDescription")})
    with pytest.raises(ValidationError, match="c/GroupDescription still subscribes to it"):
        changesets.revert_component(cs, bob, "p")
    with pytest.raises(ValidationError, match="c/GroupDescription still subscribes to it"):
        changesets.delete_component(cs, bob, "p")
    assert sorted(e.name for e in cs.entries.all()) == ["c", "p"]
    assert plan_actions(cs).ok


def test_its_plan_refuses_a_subscription_to_a_component_that_no_longer_exists(workspace, bob):
    head(workspace, bob, {"p": (SG, {"GroupDescription": "p"})})
    cs = changesets.create_change_set(workspace, bob, "reads p")
    changesets.upsert_component(cs, bob, "c", SG, {"GroupDescription": src("p", "/domain/GroupDescription")})
    drop = changesets.create_change_set(workspace, bob, "drop p")
    changesets.delete_component(drop, bob, "p")
    changesets.merge(drop, bob)
    changesets.rebase(cs, bob)
    plan = plan_actions(cs)
    assert {
        "component": "c",
        "message": "c/GroupDescription subscribes to p, which does not exist",
    } in plan.errors


TD = "AWS::ECS::TaskDefinition"
CONTAINER = {"Name": "api", "Image": "api:1", "Cpu": 256, "Memory": 512}


def test_it_plans_a_task_definition_change_as_a_new_revision_that_a_pipeline_deploys(workspace, bob):
    head(
        workspace,
        bob,
        {
            "api-task": (TD, {"Family": "api", "ContainerDefinitions": [CONTAINER]}),
            "api": (
                SVC,
                {
                    "ServiceName": "api",
                    "TaskDefinition": src("api-task", "/resource_value/TaskDefinitionArn"),
                },
            ),
            "deploy": (
                "Portal::Pipeline",
                {
                    "Stages": [
                        {
                            "Name": "DeployServices",
                            "Kind": "deploy_services",
                            "Parameters": {
                                "Cluster": "c",
                                "Services": [{"Service": src("api", "/resource_value/ServiceArn")}],
                            },
                        }
                    ]
                },
            ),
        },
    )
    cs = changesets.create_change_set(workspace, bob, "image 2")
    changesets.set_property(cs, bob, "api-task", "/ContainerDefinitions/0/Image", "api:2")
    plan = plan_actions(cs)
    assert [(a.key, a.label) for a in plan.actions] == [
        ("revision:api-task", "new revision"),
        ("update:api", "update"),
        ("cleanup:api-task", "cleanup: old revisions"),
    ]
    revision, service, cleanup = plan.actions
    assert not revision.downtime and not revision.replacement
    assert service.held == {
        "/TaskDefinition": "moves to the new revision at pipeline deploy's DeployServices stage"
    }
    assert cleanup.waits_for == ["revision:api-task", "update:api"]


def test_it_deletes_a_producer_after_the_old_consumer_a_create_first_replace_leaves(workspace, bob):
    head(
        workspace,
        bob,
        {
            "tg": (TG, {"Port": 80, "Protocol": "HTTP", "VpcId": "vpc-1"}),
            "svc": (
                SVC,
                {
                    "LaunchType": "EC2",
                    "LoadBalancers": [{"TargetGroupArn": src("tg", "/resource_value/TargetGroupArn")}],
                },
            ),
        },
    )
    cs = changesets.create_change_set(workspace, bob, "drop tg")
    changesets.upsert_component(cs, bob, "svc", SVC, {"LaunchType": "FARGATE", "LoadBalancers": []})
    changesets.delete_component(cs, bob, "tg")
    order = [a.key for a in plan_actions(cs).actions]
    # The old service still uses the target group until its cleanup deletes it.
    assert order == ["replace:svc", "cleanup:svc", "delete:tg"]
