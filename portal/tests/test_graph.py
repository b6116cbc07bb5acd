import pytest

from portal import changesets, graph, pointers
from portal.errors import ValidationError
from portal.models import Component

from .factories import head, observe, src

VPC = "AWS::EC2::VPC"
SUBNET = "AWS::EC2::Subnet"
SG = "AWS::EC2::SecurityGroup"


def test_it_selects_list_items_by_key():
    doc = {
        "Outputs": [
            {"OutputKey": "A", "OutputValue": "1"},
            {"OutputKey": "ServiceDiscoveryArn", "OutputValue": "arn:x"},
        ]
    }
    assert pointers.resolve(doc, "/Outputs/ServiceDiscoveryArn/OutputValue") == "arn:x"
    assert pointers.resolve(doc, "/Outputs/1/OutputValue") == "arn:x"
    with pytest.raises(pointers.Missing):
        pointers.resolve(doc, "/Outputs/Nope/OutputValue")


def test_it_finds_sources_anywhere_in_properties():
    props = {
        "ServiceRegistries": [{"RegistryArn": src("stack", "/resource_value/Outputs/3/OutputValue")}],
        "X": 1,
    }
    (s,) = graph.find_sources(props)
    assert (s.target, s.component, s.path, s.root) == (
        "/ServiceRegistries/0/RegistryArn",
        "stack",
        "/resource_value/Outputs/3/OutputValue",
        "resource_value",
    )


def test_it_keeps_a_value_pending_until_the_producer_exists(workspace, users):
    bob = users["editor"]
    comps = head(
        workspace,
        bob,
        {
            "vpc": (VPC, {"CidrBlock": "10.0.0.0/16"}),
            "subnet": (SUBNET, {"VpcId": src("vpc", "/resource_value/VpcId"), "CidrBlock": "10.0.1.0/24"}),
        },
    )
    subnet = comps["subnet"]
    assert subnet.pending == ["/VpcId"]
    assert subnet.domain["VpcId"] is None

    changed = observe(comps["vpc"], "vpc-123", {"VpcId": "vpc-123", "CidrBlock": "10.0.0.0/16"})
    subnet.refresh_from_db()
    assert changed == {"subnet"}
    assert subnet.domain["VpcId"] == "vpc-123" and subnet.pending == []


def test_it_resolves_stack_outputs_by_key(workspace, users):
    bob = users["editor"]
    comps = head(
        workspace,
        bob,
        {
            "stack": (
                "AWS::CloudFormation::Stack",
                {"TemplateBody": {"Resources": {"Logs": {"Type": "AWS::Logs::LogGroup"}}}},
            ),
            "svc": (
                "AWS::ECS::Service",
                {
                    "ServiceRegistries": [
                        {
                            "RegistryArn": src(
                                "stack", "/resource_value/Outputs/ServiceDiscoveryArn/OutputValue"
                            )
                        }
                    ]
                },
            ),
        },
    )
    observe(
        comps["stack"],
        "arn:stack",
        {
            "Outputs": [
                {"OutputKey": "Other", "OutputValue": "o"},
                {
                    "OutputKey": "ServiceDiscoveryArn",
                    "OutputValue": "arn:aws:servicediscovery:us-east-1:1:service/srv-1",
                },
            ]
        },
    )
    svc = Component.objects.get(name="svc")
    assert svc.domain["ServiceRegistries"][0]["RegistryArn"].endswith("srv-1")


def test_it_rejects_unknown_components_and_malformed_paths_at_the_edit(workspace, users):
    bob = users["editor"]
    cs = changesets.create_change_set(workspace, bob, "bad refs")
    with pytest.raises(ValidationError, match="no component named 'nope'"):
        changesets.upsert_component(
            cs, bob, "subnet", SUBNET, {"VpcId": src("nope", "/resource_value/VpcId")}
        )
    changesets.upsert_component(cs, bob, "vpc", VPC, {"CidrBlock": "10.0.0.0/16"})
    with pytest.raises(ValidationError, match="must start with /domain, /resource_value or /si"):
        changesets.upsert_component(cs, bob, "subnet", SUBNET, {"VpcId": src("vpc", "/VpcId")})
    with pytest.raises(ValidationError, match="not a JSON pointer"):
        changesets.upsert_component(cs, bob, "subnet", SUBNET, {"VpcId": src("vpc", "resource_value/VpcId")})
    assert [e.name for e in cs.entries.all()] == ["vpc"]


def test_it_rejects_a_cycle_with_the_chain_in_the_message(workspace, users):
    bob = users["editor"]
    cs = changesets.create_change_set(workspace, bob, "cycle")
    changesets.upsert_component(cs, bob, "a", SG, {"GroupDescription": "a"})
    changesets.upsert_component(cs, bob, "b", SG, {"GroupDescription": src("a", "/domain/GroupDescription")})
    changesets.upsert_component(cs, bob, "c", SG, {"GroupDescription": src("b", "/domain/GroupDescription")})
    with pytest.raises(ValidationError, match="cycle: a -> c -> b -> a"):
        changesets.upsert_component(
            cs, bob, "a", SG, {"GroupDescription": src("c", "/domain/GroupDescription")}
        )
    assert cs.entries.get(name="a").properties == {"GroupDescription": "a"}


def test_it_allows_a_component_to_subscribe_to_its_own_resource_value(workspace, users):
    bob = users["editor"]
    rule = {
        "IpProtocol": "tcp",
        "FromPort": 3000,
        "ToPort": 3000,
        "SourceSecurityGroupId": src("api-sg", "/resource_value/GroupId"),
    }
    comps = head(
        workspace, bob, {"api-sg": (SG, {"GroupDescription": "api", "SecurityGroupIngress": [rule]})}
    )
    assert comps["api-sg"].pending == ["/SecurityGroupIngress/0/SourceSecurityGroupId"]
    observe(comps["api-sg"], "sg-1", {"GroupId": "sg-1"})
    comps["api-sg"].refresh_from_db()
    assert comps["api-sg"].domain["SecurityGroupIngress"][0]["SourceSecurityGroupId"] == "sg-1"


def test_it_rejects_subscribing_to_its_own_domain(workspace, users):
    bob = users["editor"]
    cs = changesets.create_change_set(workspace, bob, "self")
    with pytest.raises(ValidationError, match="own /domain"):
        changesets.upsert_component(
            cs, bob, "a", SG, {"GroupDescription": "x", "GroupName": src("a", "/domain/GroupDescription")}
        )


def test_it_renders_string_templates_from_subscriptions(workspace, users):
    bob = users["editor"]
    comps = head(
        workspace,
        bob,
        {
            "cluster": ("AWS::ECS::Cluster", {"ClusterName": "tonys-chips-sandbox"}),
            "definition": (
                "Portal::StringTemplate",
                {
                    "Template": '{"Cluster": "{{ Cluster }}", "Service": "{{Service}}"}',
                    "Variables": {"Cluster": src("cluster", "/domain/ClusterName"), "Service": "api"},
                },
            ),
        },
    )
    rendered = comps["definition"].domain["Rendered"]["Value"]
    assert rendered == '{"Cluster": "tonys-chips-sandbox", "Service": "api"}'


def test_it_propagates_only_to_what_depends_on_the_edit(workspace, users, django_assert_max_num_queries):
    bob = users["editor"]
    spec = {"root": (SG, {"GroupDescription": "root"}), "other": (SG, {"GroupDescription": "other"})}
    for i in range(5):
        spec[f"chain{i}"] = (
            SG,
            {"GroupDescription": src("root" if i == 0 else f"chain{i - 1}", "/domain/GroupDescription")},
        )
    head(workspace, bob, spec)
    assert Component.objects.get(name="chain4").domain["GroupDescription"] == "root"

    cs = changesets.create_change_set(workspace, bob, "edit root")
    changesets.set_property(cs, bob, "root", "/GroupDescription", "renamed")
    changesets.merge(cs, bob)
    assert Component.objects.get(name="chain4").domain["GroupDescription"] == "renamed"
    other = Component.objects.get(name="other")
    changed = graph.propagate(workspace, {"other"})
    assert changed == set()  # nothing depends on it, nothing moved
    assert other.updated_at == Component.objects.get(name="other").updated_at


def test_an_observed_value_moves_its_readers_without_reading_its_own_producers(
    workspace, users, django_assert_num_queries
):
    """What an apply does after each create: the component's own desired value cannot
    move when only what AWS reported did, so its producers are not read again."""
    bob = users["editor"]
    head(
        workspace,
        bob,
        {
            "vpc-sg": (SG, {"GroupDescription": "vpc"}),
            "api-sg": (SG, {"GroupDescription": src("vpc-sg", "/domain/GroupDescription")}),
            "reader": (SG, {"GroupDescription": src("api-sg", "/resource_value/GroupId")}),
        },
    )
    Component.objects.filter(name="api-sg").update(resource_value={"GroupId": "sg-0a1"})
    # The readers of api-sg, then of reader (none); api-sg and reader locked and read; reader
    # written. vpc-sg, which api-sg reads, is not read.
    with django_assert_num_queries(4):
        changed = graph.propagate(workspace, {"api-sg"}, roots=("resource_value",))
    assert changed == {"reader"}
    assert Component.objects.get(name="reader").domain["GroupDescription"] == "sg-0a1"
    assert Component.objects.get(name="api-sg").domain["GroupDescription"] == "vpc"


def test_it_refreshes_the_readers_of_a_self_subscribed_resource_value(workspace, users):
    bob = users["editor"]
    rule = {
        "IpProtocol": "tcp",
        "FromPort": 3000,
        "ToPort": 3000,
        "SourceSecurityGroupId": src("api-sg", "/resource_value/GroupId"),
    }
    comps = head(
        workspace,
        bob,
        {
            "api-sg": (SG, {"GroupDescription": "api", "SecurityGroupIngress": [rule]}),
            "copy": (
                SG,
                {
                    "GroupDescription": "copy",
                    "SecurityGroupIngress": src("api-sg", "/domain/SecurityGroupIngress"),
                },
            ),
        },
    )
    assert observe(comps["api-sg"], "sg-1", {"GroupId": "sg-1"}) == {"api-sg", "copy"}
    copy = Component.objects.get(name="copy")
    assert copy.domain["SecurityGroupIngress"][0]["SourceSecurityGroupId"] == "sg-1"
    assert copy.pending == []


def test_it_orders_a_long_chain_with_a_cycle_in_its_tail():
    names = [f"n{i}" for i in range(20000)]
    edges = {names[i]: {names[i - 1]} for i in range(1, len(names))}
    edges[names[10000]] = {names[-1]}  # the second half is a cycle: it lands in the tail
    order = graph.topological(names, edges)
    assert sorted(order) == sorted(names)
    assert order[:10000] == names[:10000]  # bench/graph.py times it: linear in the graph


def test_it_keeps_a_key_selected_read_of_a_pending_value_pending(workspace, users):
    # Found by the stateful test: /Tags/k0/Value was compared with the pending /Tags/0/Value
    # as text, so the value read as a known null and the edit was refused as "not a string".
    bob = users["editor"]
    head(
        workspace,
        bob,
        {
            "a": (SG, {"GroupDescription": "a"}),
            "b": (
                SG,
                {
                    "GroupDescription": "b",
                    "Tags": [{"Key": "k0", "Value": src("a", "/resource_value/GroupId")}],
                },
            ),
        },
    )
    cs = changesets.create_change_set(workspace, bob, "read b's tag by its key")
    reader = {"GroupDescription": "d", "Tags": [{"Key": "k0", "Value": src("b", "/domain/Tags/k0/Value")}]}
    changesets.upsert_component(cs, bob, "d", SG, reader)
    d = graph.GraphView(workspace, cs).view("d")
    assert d.pending == ["/Tags/0/Value"] and d.domain["Tags"][0]["Value"] is None

    changesets.merge(cs, bob)
    observe(Component.objects.get(name="a"), "sg-1", {"GroupId": "sg-1"})
    assert Component.objects.get(name="d").domain["Tags"][0]["Value"] == "sg-1"


def test_it_refuses_a_pending_value_whose_known_shape_the_schema_refuses(workspace, users):
    # Found by the stateful test: a whole Tag (an object, whose Value waits for AWS) read
    # into a Tag's Value was accepted because it was pending; AWS would have refused it.
    bob = users["editor"]
    head(
        workspace,
        bob,
        {
            "a": (SG, {"GroupDescription": "a"}),
            "b": (
                SG,
                {
                    "GroupDescription": "b",
                    "Tags": [{"Key": "k0", "Value": src("a", "/resource_value/GroupId")}],
                },
            ),
            "t": ("Portal::StringTemplate", {"Template": "{{ X }}", "Variables": {"X": "plain"}}),
            "d": (SG, {"GroupDescription": src("t", "/domain/Variables/X")}),
        },
    )
    cs = changesets.create_change_set(workspace, bob, "read a whole tag")
    whole_tag = {"GroupDescription": "c", "Tags": [{"Key": "k0", "Value": src("b", "/domain/Tags/0")}]}
    with pytest.raises(
        ValidationError, match=r"c/Tags/0/Value: must be a string, not an object .*b/domain/Tags/0"
    ):
        changesets.upsert_component(cs, bob, "c", SG, whole_tag)

    # Through a HEAD component the change set does not touch: d reads t's X, which now
    # reads the tag; the merge refuses what d would send.
    changesets.set_property(cs, bob, "t", "/Variables/X", src("b", "/domain/Tags/0"))
    with pytest.raises(ValidationError, match=r"d/GroupDescription: must be a string, not an object"):
        changesets.merge(cs, bob)
    assert Component.objects.get(name="t").properties["Variables"]["X"] == "plain"


def test_it_reads_the_id_of_a_component_the_change_set_adds_whatever_the_order(workspace, users):
    # Found by the stateful test: "a" (resolved before "t", /si is no ordering edge) read the
    # /si/id of the not yet resolved "t" as "", and the merge wrote "" into HEAD.
    bob = users["editor"]
    head(workspace, bob, {"a": (SG, {"GroupDescription": "a"})})
    cs = changesets.create_change_set(workspace, bob, "name a after t")
    changesets.upsert_component(cs, bob, "t", "Portal::StringTemplate", {"Template": "t", "Variables": {}})
    changesets.set_property(cs, bob, "a", "/GroupDescription", src("t", "/si/id"))
    t = cs.entries.get(name="t")
    assert graph.GraphView(workspace, cs).view("a").domain["GroupDescription"] == str(t.component_id)
    changesets.merge(cs, bob)
    assert Component.objects.get(name="a").domain["GroupDescription"] == str(t.component_id)
