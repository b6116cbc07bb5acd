"""The topology graph and its DOT text: structure, labels, clusters, diff styles.

Components are created directly and the subscription index is rebuilt with
portal.graph.reindex, as HEAD would have it after a merge.
"""

import json
import re
import shutil

import pytest

from portal.graph import reindex
from portal.models import ChangeSet, ChangeSetEntry, Component
from topology import dot
from topology.build import (
    ADDED,
    DELETED,
    HIDE,
    MODIFIED,
    REPLACED,
    SERVICES,
    SHOW,
    UNCHANGED,
    build_graph,
    kind_of,
    readable_path,
)

STACK_TEMPLATE = {
    "Resources": {
        "PrivateDnsNamespace": {
            "Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
            "Properties": {"Name": "tonys-chips.local", "Vpc": "vpc-0bc7327e9bc2204c2"},
        },
        "ServiceDiscoveryService": {
            "Type": "AWS::ServiceDiscovery::Service",
            "Properties": {
                "Name": "api",
                "DnsConfig": {
                    "DnsRecords": [{"Type": "A", "TTL": 60}],
                    "NamespaceId": {"Fn::GetAtt": ["PrivateDnsNamespace", "Id"]},
                },
                "HealthCheckCustomConfig": {"FailureThreshold": 1},
            },
        },
    },
    "Outputs": {"ServiceDiscoveryArn": {"Value": {"Fn::GetAtt": ["ServiceDiscoveryService", "Arn"]}}},
}


def src(component, path):
    return {"$source": {"component": component, "path": path}}


def task(container, env):
    return {"Family": container, "ContainerDefinitions": [{"Name": container, "Environment": env}]}


def service(task_name, subnets=("subnet-a",), sgs=("api-sg-v2",), **extra):
    return {
        "Cluster": src("cluster", "/resource_value/Arn"),
        "TaskDefinition": src(task_name, "/resource_value/TaskDefinitionArn"),
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {
                "Subnets": [src(s, "/resource_value/SubnetId") for s in subnets],
                "SecurityGroups": [src(g, "/resource_value/GroupId") for g in sgs],
            }
        },
        **extra,
    }


def tonys_chips(with_discovery=True):
    """The seed's shop, after (or, with_discovery=False, before) the Cloud Map migration."""
    vpc_id = src("vpc", "/resource_value/VpcId")
    comps = {
        "vpc": ("AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"}),
        "subnet-a": ("AWS::EC2::Subnet", {"VpcId": vpc_id, "CidrBlock": "10.0.1.0/24"}),
        "subnet-b": ("AWS::EC2::Subnet", {"VpcId": vpc_id, "CidrBlock": "10.0.2.0/24"}),
        "alb-sg": ("AWS::EC2::SecurityGroup", {"VpcId": vpc_id, "GroupDescription": "alb"}),
        "api-sg-v2": (
            "AWS::EC2::SecurityGroup",
            {
                "VpcId": vpc_id,
                "GroupDescription": "api",
                "SecurityGroupIngress": [
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 3000,
                        "ToPort": 3000,
                        "SourceSecurityGroupId": src("api-sg-v2", "/resource_value/GroupId"),
                    }
                ],
            },
        ),
        "alb": (
            "AWS::ElasticLoadBalancingV2::LoadBalancer",
            {
                "Subnets": [
                    src("subnet-a", "/resource_value/SubnetId"),
                    src("subnet-b", "/resource_value/SubnetId"),
                ],
                "SecurityGroups": [src("alb-sg", "/resource_value/GroupId")],
            },
        ),
        "web-tg": (
            "AWS::ElasticLoadBalancingV2::TargetGroup",
            {"VpcId": vpc_id, "Port": 3001, "Protocol": "HTTP"},
        ),
        "listener": (
            "AWS::ElasticLoadBalancingV2::Listener",
            {
                "LoadBalancerArn": src("alb", "/resource_value/LoadBalancerArn"),
                "Port": 80,
                "Protocol": "HTTP",
                "DefaultActions": [
                    {"Type": "forward", "TargetGroupArn": src("web-tg", "/resource_value/TargetGroupArn")}
                ],
            },
        ),
        "cluster": ("AWS::ECS::Cluster", {"ClusterName": "tonys-chips-sandbox"}),
        "db": (
            "AWS::RDS::DBInstance",
            {"Engine": "postgres", "VPCSecurityGroups": [src("api-sg-v2", "/resource_value/GroupId")]},
        ),
        "api-task": (
            "AWS::ECS::TaskDefinition",
            task(
                "api",
                [
                    {"Name": "DATABASE_HOST", "Value": src("db", "/resource_value/Endpoint/Address")},
                    {"Name": "SESSION_SECRET", "Value": "s3cr3t"},
                ],
            ),
        ),
        "web-task": (
            "AWS::ECS::TaskDefinition",
            task(
                "web",
                [
                    {
                        "Name": "API_URL",
                        "Value": "http://api.tonys-chips.local:3000"
                        if with_discovery
                        else "http://internal-alb:3000",
                    },
                ],
            ),
        ),
        "smoke-test-task": (
            "AWS::ECS::TaskDefinition",
            task(
                "e2e",
                [
                    {"Name": "API_URL", "Value": "http://api.tonys-chips.local:3000"},
                    {"Name": "WEB_URL", "Value": src("alb", "/resource_value/DNSName")},
                ],
            ),
        ),
        "web-service": (
            "AWS::ECS::Service",
            service(
                "web-task",
                sgs=("alb-sg",),
                LoadBalancers=[
                    {
                        "ContainerName": "web",
                        "ContainerPort": 3001,
                        "TargetGroupArn": src("web-tg", "/resource_value/TargetGroupArn"),
                    }
                ],
            ),
        ),
        "definition": ("Portal::StringTemplate", {"Template": "{}", "Variables": {}}),
        "pipeline": (
            "AWS::StepFunctions::StateMachine",
            {"DefinitionString": src("definition", "/domain/Rendered/Value")},
        ),
    }
    if with_discovery:
        comps["stack"] = ("AWS::CloudFormation::Stack", {"TemplateBody": json.dumps(STACK_TEMPLATE)})
        comps["api-service"] = (
            "AWS::ECS::Service",
            service(
                "api-task",
                ServiceRegistries=[{"RegistryArn": src("stack", "/resource_value/Outputs/3/OutputValue")}],
                LoadBalancers=[],
            ),
        )
    else:
        comps["api-tg"] = ("AWS::ElasticLoadBalancingV2::TargetGroup", {"VpcId": vpc_id, "Port": 3000})
        comps["api-listener-rule"] = (
            "AWS::ElasticLoadBalancingV2::ListenerRule",
            {
                "ListenerArn": src("listener", "/resource_value/ListenerArn"),
                "Priority": 10,
                "Conditions": [{"Field": "path-pattern", "Values": ["/api/*"]}],
                "Actions": [
                    {"Type": "forward", "TargetGroupArn": src("api-tg", "/resource_value/TargetGroupArn")}
                ],
            },
        )
        comps["api-service"] = (
            "AWS::ECS::Service",
            service(
                "api-task",
                LoadBalancers=[
                    {
                        "ContainerName": "api",
                        "ContainerPort": 3000,
                        "TargetGroupArn": src("api-tg", "/resource_value/TargetGroupArn"),
                    }
                ],
            ),
        )
    return comps


def make_head(workspace, comps, statuses=None):
    statuses = statuses or {}
    made = {}
    for name, (schema, props) in comps.items():
        status, drift = statuses.get(name, ("ok", []))
        made[name] = Component.objects.create(
            workspace=workspace,
            name=name,
            schema=schema,
            properties=props,
            domain=props,
            resource_status=status,
            drift=drift,
        )
    reindex(workspace, {name: props for name, (_schema, props) in comps.items()})
    return made


def change_set(workspace, user, entries, name="migrate-to-service-discovery"):
    cs = ChangeSet.objects.create(
        workspace=workspace, name=name, author=user, base_version=workspace.head_version
    )
    heads = {c.name: c for c in Component.objects.filter(workspace=workspace)}
    for name, (op, schema, props, replace) in entries.items():
        kwargs = {"component_id": heads[name].id} if name in heads else {}
        ChangeSetEntry.objects.create(
            change_set=cs, op=op, name=name, schema=schema, properties=props, replace=replace, **kwargs
        )
    return cs


def edges(graph):
    return {(e.producer, e.consumer, e.label): e for e in graph.edges}


def node_line(dot_text, name):
    """The DOT statement that declares node `name` (with its attributes)."""
    for line in dot_text.splitlines():
        if line.strip().startswith(dot.escape(name) + " ["):
            return line
    raise AssertionError(f"no node {name!r} in DOT")


def cluster_block(dot_text, cluster_id):
    """The lines of one cluster subgraph (children included)."""
    lines = dot_text.splitlines()
    start = next(
        i
        for i, line in enumerate(lines)
        if line.strip() == f"subgraph {dot.escape('cluster_' + cluster_id)} {{"
    )
    depth, out = 0, []
    for line in lines[start:]:
        depth += line.count("{") - line.count("}")
        out.append(line)
        if depth == 0:
            break
    return "\n".join(out)


def url(name):
    return f"/workspaces/tonys-chips/components/{name}/"


# --- Kinds and labels ---------------------------------------------------------------------


def test_kinds_come_from_one_table_of_types_and_prefixes():
    assert kind_of("AWS::ECS::Service") == "compute"
    assert kind_of("AWS::Lambda::Function") == "compute"
    assert kind_of("AWS::EC2::Instance") == "compute"  # exact entry beats the AWS::EC2:: prefix
    assert kind_of("AWS::EC2::SecurityGroup") == "networking"
    assert kind_of("AWS::ElasticLoadBalancingV2::TargetGroup") == "load_balancer"
    assert kind_of("AWS::RDS::DBInstance") == "data"
    assert kind_of("AWS::ServiceDiscovery::Service") == "discovery"
    assert kind_of("AWS::StepFunctions::StateMachine") == "pipeline"
    assert kind_of("Portal::StringTemplate") == "template"
    assert kind_of("AWS::CloudFormation::Stack") == "template"
    assert kind_of("AWS::IAM::Role") == "other"


def test_long_names_and_paths_wrap_after_their_separators():
    assert dot.wrap("web-service") == ["web-service"]
    assert dot.wrap("sandbox-tonys-chips-api-service") == ["sandbox-tonys-", "chips-api-service"]
    assert dot.wrap("AWS::EC2::SubnetRouteTableAssociation") == ["AWS::EC2::", "SubnetRouteTableAssociation"]
    assert dot.wrap("NetworkConfiguration.AwsvpcConfiguration.Subnets[0]") == [
        "NetworkConfiguration.",
        "AwsvpcConfiguration.",
        "Subnets[0]",
    ]
    assert dot.wrap("API_URL: api.tonys-chips.local:3000") == ["API_URL:", "api.tonys-chips.", "local:3000"]
    assert dot.wrap("x" * 40) == ["x" * 40]  # nowhere to break


def test_target_paths_read_as_property_paths():
    assert readable_path("/ServiceRegistries/0/RegistryArn") == "ServiceRegistries[0].RegistryArn"
    assert readable_path("/Tags/a~1b") == 'Tags["a/b"]'
    assert readable_path("") == "(all properties)"


# --- Infrastructure view ------------------------------------------------------------------


def test_infrastructure_nodes_edges_and_clusters(workspace):
    make_head(
        workspace,
        tonys_chips(),
        statuses={"db": ("ok", [{"path": "/AllocatedStorage"}]), "web-service": ("failed", [])},
    )
    graph = build_graph(workspace)

    by_name = {n.name: n for n in graph.nodes}
    assert by_name["web-service"].kind == "compute" and by_name["alb"].kind == "load_balancer"
    assert by_name["db"].kind == "data" and by_name["db"].status == "drifted"
    assert by_name["web-service"].status == "failed" and by_name["vpc"].status == "ok"

    e = edges(graph)
    assert ("stack", "api-service", "ServiceRegistries[0].RegistryArn") in e
    assert ("web-tg", "web-service", "LoadBalancers[0].TargetGroupArn") in e
    assert ("api-sg-v2", "api-sg-v2", "SecurityGroupIngress[0].SourceSecurityGroupId") in e

    # VPC box: the VPC, what subscribes to its VpcId, and through subnets/SGs what uses them.
    for name in ("vpc", "subnet-a", "subnet-b", "alb-sg", "api-sg-v2", "alb", "web-tg", "db"):
        assert by_name[name].cluster == "vpc:vpc", name
    # ECS box (inside the VPC box, as all its services are): the cluster and its services.
    for name in ("cluster", "api-service", "web-service"):
        assert by_name[name].cluster == "ecs:cluster", name
    assert graph.cluster("ecs:cluster").parent == "vpc:vpc"
    # Not transitive through other components: the listener only uses the ALB.
    for name in ("listener", "api-task", "stack", "pipeline", "definition"):
        assert by_name[name].cluster is None, name

    text = dot.to_dot(graph, url)
    vpc_box = cluster_block(text, "vpc:vpc")
    ecs_box = cluster_block(text, "ecs:cluster")
    assert ecs_box in vpc_box
    assert '"api-service";' in ecs_box and '"subnet-a";' in vpc_box and '"listener";' not in vpc_box
    assert 'label="VPC vpc"' in vpc_box and 'label="ECS cluster cluster"' in ecs_box
    assert '"stack" -> "api-service" [label="ServiceRegistries[0].\\nRegistryArn"' in text  # wrapped
    web = node_line(text, "web-service")
    assert 'URL="/workspaces/tonys-chips/components/web-service/"' in web
    assert 'label="web-service\\nAWS::ECS::Service\\n[failed]"' in web
    assert "status: failed" in web and 'shape="box"' in web
    assert 'shape="cylinder"' in node_line(text, "db") and "drift: 1 property" in node_line(text, "db")
    assert 'shape="box"' in node_line(text, "alb") and "diagonals" in node_line(text, "alb")
    assert "Legend" not in text  # no diff, no legend


def test_edges_between_the_same_components_share_one_dot_edge(workspace):
    make_head(
        workspace,
        {
            "role": ("AWS::IAM::Role", {}),
            "fn": (
                "AWS::Lambda::Function",
                {
                    "Role": src("role", "/resource_value/Arn"),
                    "Environment": {"Variables": {"ROLE": src("role", "/resource_value/RoleId")}},
                },
            ),
        },
    )
    graph = build_graph(workspace)
    assert len(graph.edges) == 2
    text = dot.to_dot(graph, url)
    assert text.count('"role" -> "fn"') == 1
    assert 'label="Environment.\\nVariables.ROLE\\nRole"' in text


def test_a_dangling_subscription_draws_a_missing_node(workspace):
    make_head(workspace, {"svc": ("AWS::ECS::Service", {"Cluster": src("gone", "/resource_value/Arn")})})
    graph = build_graph(workspace)
    assert graph.node("gone").kind == "missing"
    line = node_line(dot.to_dot(graph, url), "gone")
    assert "no such component" in line and "URL=" not in line


def test_names_are_quoted_and_escaped(workspace):
    odd = 'we"ird\\name <b>&'
    make_head(
        workspace,
        {
            odd: ("AWS::SQS::Queue", {}),
            "consumer": ("AWS::Lambda::Function", {"Queue": src(odd, "/resource_value/Arn")}),
        },
    )
    graph = build_graph(workspace)
    text = dot.to_dot(graph, url)
    assert '"we\\"ird\\\\name <b>&" -> "consumer"' in text
    # Graphviz 2.43 writes URL attributes into the SVG unescaped: links are percent-encoded.
    assert 'URL="/workspaces/tonys-chips/components/we%22ird%5Cname%20%3Cb%3E%26/"' in node_line(text, odd)
    if shutil.which("dot"):
        from topology.render import render
        from topology.views import component_url

        svg = render(dot.to_dot(graph, lambda n: component_url("tonys-chips", n)), "svg").decode()
        assert "<b>" not in svg and "we&quot;ird\\name &lt;b&gt;&amp;" in svg
        assert 'xlink:href="/workspaces/tonys-chips/components/we%22ird%5Cname%20%3Cb%3E%26/"' in svg


def test_dot_text_is_stable(workspace):
    comps = tonys_chips()
    make_head(workspace, dict(reversed(list(comps.items()))))
    first = dot.to_dot(build_graph(workspace), url)
    Component.objects.filter(workspace=workspace, name="vpc").update(resource_status="ok")
    assert dot.to_dot(build_graph(workspace), url) == first
    Component.objects.filter(workspace=workspace, name="vpc").update(resource_status="pending")
    assert dot.to_dot(build_graph(workspace), url) != first


# --- Services view ------------------------------------------------------------------------


def test_services_view_shows_traffic_and_discovery_names(workspace):
    make_head(workspace, tonys_chips())
    graph = build_graph(workspace, view=SERVICES)
    names = {n.name for n in graph.nodes}
    assert names == {
        "alb",
        "listener",
        "web-tg",
        "web-service",
        "api-service",
        "stack",
        "db",
        "smoke-test-task",
    }  # task definitions run by a service fold into it; networking and templates are left out
    assert graph.node("stack").kind == "discovery"
    assert graph.node("stack").detail == ["api.tonys-chips.local"]

    e = edges(graph)
    # web -> api.tonys-chips.local:3000 -> api
    assert e[("web-service", "stack", "API_URL: api.tonys-chips.local:3000")].kind == "name"
    assert e[("stack", "api-service", "ServiceRegistries[0].RegistryArn")].kind == "registration"
    # ALB -> listener -> target group -> web
    assert e[("alb", "listener", "HTTP:80")].kind == "traffic"
    assert e[("listener", "web-tg", "forward")].kind == "traffic"
    assert e[("web-tg", "web-service", "web:3001")].kind == "traffic"
    # what services use, named by the environment variable
    assert ("api-service", "db", "DATABASE_HOST") in e
    assert ("smoke-test-task", "alb", "WEB_URL") in e
    assert ("smoke-test-task", "stack", "API_URL: api.tonys-chips.local:3000") in e

    assert graph.node("web-service").cluster == "ecs:cluster"
    assert {graph.node(n).cluster for n in ("alb", "listener", "web-tg")} == {"lb:alb"}

    text = dot.to_dot(graph, url)
    assert '"web-service" -> "stack" [label="API_URL:\\napi.tonys-chips.\\nlocal:3000"' in text
    assert '"web-tg" -> "web-service" [label="web:3001"' in text
    assert 'label="stack\\nAWS::CloudFormation::\\nStack\\napi.tonys-chips.local\\n[ok]"' in text
    assert "SESSION_SECRET" not in text and "s3cr3t" not in text


def test_services_view_reads_yaml_templates_and_native_cloud_map(workspace):
    yaml_template = (
        "Resources:\n  Ns:\n    Type: AWS::ServiceDiscovery::PrivateDnsNamespace\n"
        "    Properties: {Name: shop.local, Vpc: vpc-1}\n  Svc:\n    Type: AWS::ServiceDiscovery::Service\n"
        "    Properties:\n      Name: orders\n      DnsConfig:\n        NamespaceId: !GetAtt Ns.Id\n"
    )
    make_head(
        workspace,
        {
            "stack": ("AWS::CloudFormation::Stack", {"TemplateBody": yaml_template}),
            "ns": ("AWS::ServiceDiscovery::PrivateDnsNamespace", {"Name": "internal.local"}),
            "sd": (
                "AWS::ServiceDiscovery::Service",
                {"Name": "cart", "DnsConfig": {"NamespaceId": src("ns", "/resource_value/Id")}},
            ),
            "client": (
                "AWS::ECS::TaskDefinition",
                task(
                    "c",
                    [
                        {"Name": "ORDERS", "Value": "orders.shop.local:8080"},
                        {"Name": "CART", "Value": "https://cart.internal.local/v1"},
                        {"Name": "NOT_IT", "Value": "xcart.internal.local.example"},
                    ],
                ),
            ),
        },
    )
    graph = build_graph(workspace, view=SERVICES)
    assert graph.node("sd").detail == ["cart.internal.local"]
    e = edges(graph)
    assert ("client", "stack", "ORDERS: orders.shop.local:8080") in e
    assert ("client", "sd", "CART: cart.internal.local") in e
    assert [k for k in e if k[0] == "client"] == sorted(
        [("client", "sd", "CART: cart.internal.local"), ("client", "stack", "ORDERS: orders.shop.local:8080")]
    )


# --- Change sets --------------------------------------------------------------------------


def test_change_set_shows_the_diff_with_a_legend(workspace, users):
    make_head(workspace, tonys_chips(with_discovery=False))
    after = tonys_chips(with_discovery=True)
    cs = change_set(
        workspace,
        users["editor"],
        {
            "stack": ("add", *after["stack"], False),
            "api-service": ("edit", *after["api-service"], True),
            "web-task": ("edit", *after["web-task"], False),
            "web-service": (
                "edit",
                after["web-service"][0],
                {**after["web-service"][1], "DesiredCount": 2},
                False,
            ),
            "alb": ("edit", *tonys_chips(with_discovery=False)["alb"], False),  # touched, not changed
            "api-listener-rule": ("delete", "AWS::ElasticLoadBalancingV2::ListenerRule", {}, False),
            "api-tg": ("delete", "AWS::ElasticLoadBalancingV2::TargetGroup", {}, False),
        },
    )
    graph = build_graph(workspace, change_set=cs)
    state = {n.name: n.diff for n in graph.nodes}
    assert state["stack"] == ADDED
    assert state["api-service"] == REPLACED
    assert state["web-service"] == MODIFIED
    assert state["web-task"] == REPLACED  # createOnly ContainerDefinitions: a new revision
    assert state["alb"] == UNCHANGED
    assert state["api-listener-rule"] == DELETED and state["api-tg"] == DELETED  # still drawn
    assert state["vpc"] == UNCHANGED
    assert graph.node("api-tg").cluster == "vpc:vpc"  # a deleted node keeps its HEAD box

    e = edges(graph)
    assert e[("stack", "api-service", "ServiceRegistries[0].RegistryArn")].diff == ADDED
    assert e[("api-tg", "api-service", "LoadBalancers[0].TargetGroupArn")].diff == DELETED
    assert e[("listener", "api-listener-rule", "ListenerArn")].diff == DELETED
    assert e[("cluster", "api-service", "Cluster")].diff == UNCHANGED
    assert e[("web-tg", "web-service", "LoadBalancers[0].TargetGroupArn")].diff == UNCHANGED

    text = dot.to_dot(graph, lambda n: f"/workspaces/tonys-chips/components/{n}/?changeset={cs.pk}")
    assert 'label="+ stack\\n' in node_line(text, "stack")
    assert 'fillcolor="#d9f2e3"' in node_line(text, "stack")
    replaced = node_line(text, "api-service")
    assert 'label="-/+ api-service\\n' in replaced and 'peripheries="2"' in replaced
    assert 'label="~ web-service\\n' in node_line(text, "web-service")
    deleted = node_line(text, "api-tg")
    assert 'label="- api-tg\\n' in deleted and "dashed" in deleted and 'fontcolor="#b3261e"' in deleted
    assert "change: deleted" in deleted
    assert re.search(
        r'"stack" -> "api-service" \[label="\+ ServiceRegistries\[0\]\.\\nRegistryArn", color="#1d7a46"', text
    )
    assert re.search(
        r'"api-tg" -> "api-service" \[label="- LoadBalancers\[0\]\.\\nTargetGroupArn", color="#b3261e", fontcolor="#b3261e", style="dashed"',
        text,
    )
    legend = cluster_block(text, "__legend__")
    assert all(
        word in legend
        for word in ("+ added", "~ modified", "-/+ replaced", "- deleted", "added edge", "deleted edge")
    )
    assert "?changeset=" in node_line(text, "stack")

    services = build_graph(workspace, change_set=cs, view=SERVICES)
    e = edges(services)
    assert e[("web-service", "stack", "API_URL: api.tonys-chips.local:3000")].diff == ADDED
    assert e[("api-tg", "api-service", "api:3000")].diff == DELETED
    assert e[("listener", "api-listener-rule", "/api/*")].diff == DELETED
    assert e[("alb", "listener", "HTTP:80")].diff == UNCHANGED
    assert services.node("web-task") is None  # folded into web-service in this view


def test_a_task_definition_change_shows_on_its_service_in_the_services_view(workspace, users):
    make_head(workspace, tonys_chips())
    schema, props = tonys_chips()["web-task"]
    changed = {**props, "Cpu": "512"}
    cs = change_set(workspace, users["editor"], {"web-task": ("edit", schema, changed, False)}, name="cpu")
    services = build_graph(workspace, change_set=cs, view=SERVICES)
    assert services.node("web-service").diff == MODIFIED
    assert services.node("api-service").diff == UNCHANGED
    assert build_graph(workspace, change_set=cs).node("web-service").diff == UNCHANGED


def test_an_unchanged_change_set_has_no_legend(workspace, users):
    make_head(workspace, tonys_chips())
    cs = change_set(workspace, users["editor"], {}, name="empty")
    text = dot.to_dot(build_graph(workspace, change_set=cs), url)
    assert "Legend" not in text


def test_a_change_set_opens_on_its_changes_and_their_neighbours(workspace, users):
    make_head(workspace, tonys_chips())
    schema, props = tonys_chips()["web-service"]
    cs = change_set(
        workspace,
        users["editor"],
        {"web-service": ("edit", schema, {**props, "DesiredCount": 3}, False)},
        name="scale",
    )
    head = build_graph(workspace)
    around = {"web-service"} | {
        e.producer if e.consumer == "web-service" else e.consumer
        for e in head.edges
        if "web-service" in (e.producer, e.consumer)
    }
    assert "db" not in around and "web-tg" in around

    faded = build_graph(workspace, change_set=cs)
    assert {n.name for n in faded.nodes} == {n.name for n in head.nodes}  # nothing left out
    assert {n.name for n in faded.nodes if not n.faded} == around
    assert all(e.faded == (e.producer not in around or e.consumer not in around) for e in faded.edges)
    assert not faded.cluster("ecs:cluster").faded
    text = dot.to_dot(faded, url)
    assert 'class="changed"' in node_line(text, "web-service")
    assert 'class="faded"' in node_line(text, "db") and 'fillcolor="#f7f8fa"' in node_line(text, "db")
    assert "its changes and their neighbours, the rest faded" in text

    hidden = build_graph(workspace, change_set=cs, others=HIDE)
    assert {n.name for n in hidden.nodes} == around and not any(n.faded for n in hidden.nodes)
    assert all(e.producer in around and e.consumer in around for e in hidden.edges)
    everything = build_graph(workspace, change_set=cs, others=SHOW)
    assert len(everything.nodes) == len(head.nodes) and not any(n.faded for n in everything.nodes)

    filtered = build_graph(workspace, change_set=cs, types=["data", "AWS::ECS::Service"])
    assert {n.name for n in filtered.nodes if not n.faded} == {"web-service"}  # neighbours after filtering
    assert {n.name for n in filtered.nodes if n.faded} == {"api-service", "db"}

    empty = change_set(workspace, users["editor"], {}, name="empty")
    assert not any(n.faded for n in build_graph(workspace, change_set=empty).nodes)  # nothing to open on
    with pytest.raises(ValueError):
        build_graph(workspace, change_set=cs, others="blur")


# --- Filters, focus, query budget ---------------------------------------------------------


def test_filter_by_type_and_kind(workspace):
    make_head(workspace, tonys_chips())
    graph = build_graph(workspace, types=["AWS::ECS::Service"])
    assert {n.name for n in graph.nodes} == {"api-service", "web-service"}
    graph = build_graph(workspace, types=["load-balancers", "AWS::ECS::Service"])
    assert {n.name for n in graph.nodes} == {"alb", "listener", "web-tg", "api-service", "web-service"}
    assert ("web-tg", "web-service", "LoadBalancers[0].TargetGroupArn") in edges(graph)
    assert all(e.producer in {"alb", "listener", "web-tg", "api-service", "web-service"} for e in graph.edges)
    graph = build_graph(workspace, types=["AWS::EC2::*"])
    assert {n.name for n in graph.nodes} == {"vpc", "subnet-a", "subnet-b", "alb-sg", "api-sg-v2"}
    assert build_graph(workspace, types=["AWS::Nope::Nothing"]).message.startswith("Nothing to show")


def test_focus_on_a_component_and_its_neighbourhood(workspace):
    make_head(workspace, tonys_chips())
    graph = build_graph(workspace, focus="web-task", hops=1)
    assert {n.name for n in graph.nodes} == {"web-task", "web-service"}
    graph = build_graph(workspace, focus="web-task", hops=2)
    assert {"cluster", "web-tg", "subnet-a", "alb-sg"} <= {n.name for n in graph.nodes}
    assert "db" not in {n.name for n in graph.nodes}
    assert {n.name for n in build_graph(workspace, focus="web-task", hops=0).nodes} == {"web-task"}
    graph = build_graph(workspace, view=SERVICES, focus="web-service", hops=1)
    assert {n.name for n in graph.nodes} == {"web-service", "web-tg", "stack"}
    missing = build_graph(workspace, focus="nope")
    assert missing.nodes == [] and "nope" in missing.message
    assert "nope" in dot.to_dot(missing, url)


def big_workspace(workspace, n=1000):
    comps = {"vpc": ("AWS::EC2::VPC", {}), "cluster": ("AWS::ECS::Cluster", {})}
    for i in range((n - 2) // 2):
        comps[f"task-{i}"] = ("AWS::ECS::TaskDefinition", task(f"c{i}", [{"Name": "X", "Value": f"v{i}"}]))
        comps[f"svc-{i}"] = (
            "AWS::ECS::Service",
            {
                "Cluster": src("cluster", "/resource_value/Arn"),
                "TaskDefinition": src(f"task-{i}", "/resource_value/TaskDefinitionArn"),
            },
        )
    Component.objects.bulk_create(
        Component(workspace=workspace, name=k, schema=s, properties=p, domain=p)
        for k, (s, p) in comps.items()
    )
    reindex(workspace, {k: p for k, (_s, p) in comps.items()})
    return comps


def test_a_thousand_components_take_a_handful_of_queries(workspace, users, django_assert_max_num_queries):
    big_workspace(workspace)
    cs = change_set(
        workspace,
        users["editor"],
        {
            "svc-1": ("edit", "AWS::ECS::Service", {"Cluster": src("cluster", "/resource_value/Arn")}, False),
            "new": ("add", "AWS::ECS::Service", {"Cluster": src("cluster", "/resource_value/Arn")}, False),
            "task-2": ("delete", "AWS::ECS::TaskDefinition", {}, False),
        },
        name="big",
    )
    with django_assert_max_num_queries(2):
        graph = build_graph(workspace)
    assert len(graph.nodes) == 1000 and len(graph.edges) == 998
    with django_assert_max_num_queries(3):
        build_graph(workspace, view=SERVICES)
    with django_assert_max_num_queries(5):
        graph = build_graph(workspace, change_set=cs, view=SERVICES)
    assert graph.node("new").diff == ADDED
    with django_assert_max_num_queries(4):
        graph = build_graph(workspace, change_set=cs)
    assert graph.node("task-2").diff == DELETED and graph.node("svc-1").diff == MODIFIED
    assert len(dot.to_dot(graph, url).splitlines()) > 1000


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs the Graphviz dot binary")
def test_graphviz_accepts_the_dot_text(workspace, users):
    from topology.render import render

    make_head(workspace, tonys_chips(with_discovery=False))
    after = tonys_chips()
    cs = change_set(
        workspace,
        users["editor"],
        {
            "stack": ("add", *after["stack"], False),
            "api-service": ("edit", *after["api-service"], True),
            "api-tg": ("delete", "AWS::ElasticLoadBalancingV2::TargetGroup", {}, False),
        },
    )
    for view in ("infrastructure", "services"):
        svg = render(dot.to_dot(build_graph(workspace, change_set=cs, view=view), url), "svg").decode()
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
        assert 'xlink:href="/workspaces/tonys-chips/components/api-service/"' in svg
        assert "cluster_" in svg
