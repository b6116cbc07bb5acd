"""Topology bench: a 1,000-component workspace, timed from the DB to the SVG.

    python bench/topology.py [--components 1000] [--view infrastructure|services]

Builds the workspace in a throwaway SQLite database under a temp dir (nothing of the
project's own var/ is touched), then prints the time to build the graph and its DOT
text, the first (uncached) SVG render, the cached render, and as the last line one JSON
object. Targets: first view under 3 s, cached render under 50 ms.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def setup_django(tmp):
    os.environ["PORTAL_VAR_DIR"] = str(tmp)
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ.setdefault("SECRET_KEY", "bench-only")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def src(component, path):
    return {"$source": {"component": component, "path": path}}


def workspace_spec(total):
    """{name: (schema, properties)}: VPCs with subnets and security groups, ECS clusters,
    ALBs with listeners, and services each with a task definition, target group and
    listener rule, databases, a Cloud Map stack and pipelines, `total` components in all."""
    comps = {}
    vpcs, clusters, dbs = 4, 4, 8
    for v in range(vpcs):
        vpc_id = src(f"vpc-{v}", "/resource_value/VpcId")
        comps[f"vpc-{v}"] = ("AWS::EC2::VPC", {"CidrBlock": f"10.{v}.0.0/16"})
        for s in range(6):
            comps[f"subnet-{v}-{s}"] = (
                "AWS::EC2::Subnet",
                {"VpcId": vpc_id, "CidrBlock": f"10.{v}.{s}.0/24"},
            )
        for g in range(6):
            comps[f"sg-{v}-{g}"] = (
                "AWS::EC2::SecurityGroup",
                {"VpcId": vpc_id, "GroupDescription": f"sg {g}"},
            )
        comps[f"alb-{v}"] = (
            "AWS::ElasticLoadBalancingV2::LoadBalancer",
            {"Subnets": [src(f"subnet-{v}-{s}", "/resource_value/SubnetId") for s in range(2)]},
        )
        comps[f"listener-{v}"] = (
            "AWS::ElasticLoadBalancingV2::Listener",
            {
                "LoadBalancerArn": src(f"alb-{v}", "/resource_value/LoadBalancerArn"),
                "Port": 443,
                "Protocol": "HTTPS",
            },
        )
    for c in range(clusters):
        comps[f"cluster-{c}"] = ("AWS::ECS::Cluster", {"ClusterName": f"cluster-{c}"})
    for d in range(dbs):
        comps[f"db-{d}"] = (
            "AWS::RDS::DBInstance",
            {"Engine": "postgres", "VPCSecurityGroups": [src(f"sg-{d % vpcs}-0", "/resource_value/GroupId")]},
        )
    template = {
        "Resources": {
            "Ns": {
                "Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
                "Properties": {"Name": "bench.local"},
            },
            **{
                f"Svc{i}": {
                    "Type": "AWS::ServiceDiscovery::Service",
                    "Properties": {
                        "Name": f"svc-{i}",
                        "DnsConfig": {"NamespaceId": {"Fn::GetAtt": ["Ns", "Id"]}},
                    },
                }
                for i in range(20)
            },
        }
    }
    comps["discovery-stack"] = ("AWS::CloudFormation::Stack", {"TemplateBody": json.dumps(template)})
    for p in range(4):
        comps[f"definition-{p}"] = ("Portal::StringTemplate", {"Template": "{}", "Variables": {}})
        comps[f"pipeline-{p}"] = (
            "AWS::StepFunctions::StateMachine",
            {"DefinitionString": src(f"definition-{p}", "/domain/Rendered/Value")},
        )
    i = 0
    while len(comps) + 4 <= total:
        v, c = i % vpcs, i % clusters
        comps[f"task-{i}"] = (
            "AWS::ECS::TaskDefinition",
            {
                "Family": f"svc-{i}",
                "ContainerDefinitions": [
                    {
                        "Name": f"svc-{i}",
                        "Environment": [
                            {
                                "Name": "DATABASE_HOST",
                                "Value": src(f"db-{i % dbs}", "/resource_value/Endpoint/Address"),
                            },
                            {"Name": "UPSTREAM", "Value": f"http://svc-{(i + 1) % 20}.bench.local:8080"},
                            # a cross-link to another service: the crossings make dot work
                            *(
                                [
                                    {
                                        "Name": "PEER_QUEUE",
                                        "Value": src(f"svc-{(i * 7919 + 13) % i}", "/resource_value/Name"),
                                    }
                                ]
                                if i > 1
                                else []
                            ),
                        ],
                    }
                ],
            },
        )
        comps[f"tg-{i}"] = (
            "AWS::ElasticLoadBalancingV2::TargetGroup",
            {"VpcId": src(f"vpc-{v}", "/resource_value/VpcId"), "Port": 8080},
        )
        comps[f"rule-{i}"] = (
            "AWS::ElasticLoadBalancingV2::ListenerRule",
            {
                "ListenerArn": src(f"listener-{v}", "/resource_value/ListenerArn"),
                "Priority": i + 1,
                "Conditions": [{"Field": "path-pattern", "Values": [f"/svc-{i}/*"]}],
                "Actions": [
                    {"Type": "forward", "TargetGroupArn": src(f"tg-{i}", "/resource_value/TargetGroupArn")}
                ],
            },
        )
        comps[f"svc-{i}"] = (
            "AWS::ECS::Service",
            {
                "Cluster": src(f"cluster-{c}", "/resource_value/Arn"),
                "TaskDefinition": src(f"task-{i}", "/resource_value/TaskDefinitionArn"),
                "LoadBalancers": [
                    {
                        "ContainerName": f"svc-{i}",
                        "ContainerPort": 8080,
                        "TargetGroupArn": src(f"tg-{i}", "/resource_value/TargetGroupArn"),
                    }
                ],
                "NetworkConfiguration": {
                    "AwsvpcConfiguration": {
                        "Subnets": [src(f"subnet-{v}-{i % 6}", "/resource_value/SubnetId")],
                        "SecurityGroups": [src(f"sg-{v}-{i % 6}", "/resource_value/GroupId")],
                    }
                },
                **(
                    {
                        "ServiceRegistries": [
                            {
                                "RegistryArn": src(
                                    "discovery-stack", f"/resource_value/Outputs/{i}/OutputValue"
                                )
                            }
                        ]
                    }
                    if i < 20
                    else {}
                ),
            },
        )
        i += 1
    n = 0
    while len(comps) < total:
        comps[f"queue-{n}"] = ("AWS::SQS::Queue", {})
        n += 1
    return comps


def ms(seconds):
    return round(seconds * 1000, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=1000)
    parser.add_argument("--view", default="infrastructure", choices=["infrastructure", "services"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="topology-bench-") as tmp:
        setup_django(Path(tmp))
        from portal.graph import reindex
        from portal.models import Component, Workspace
        from topology import render
        from topology.build import build_graph
        from topology.dot import HUGE_GRAPH, HUGE_GRAPH_ATTRS, LARGE_GRAPH, LARGE_GRAPH_ATTRS, to_dot
        from topology.views import component_url

        workspace = Workspace.objects.create(name="Bench", slug="bench")
        spec = workspace_spec(args.components)
        statuses = ["ok", "ok", "ok", "pending", "failed", "none"]
        Component.objects.bulk_create(
            [
                Component(
                    workspace=workspace,
                    name=name,
                    schema=schema,
                    properties=props,
                    domain=props,
                    resource_status=statuses[i % len(statuses)],
                    drift=[{"path": "/Tags"}] if i % 37 == 0 else [],
                )
                for i, (name, (schema, props)) in enumerate(spec.items())
            ],
            batch_size=500,
        )
        reindex(workspace, {name: props for name, (_schema, props) in spec.items()})

        def dot_text():
            graph = build_graph(workspace, view=args.view)
            return graph, to_dot(graph, lambda name: component_url(workspace.slug, name))

        dot_text()  # warm imports and the DB connection
        started = time.perf_counter()
        graph, text = dot_text()
        dot_s = time.perf_counter() - started

        started = time.perf_counter()
        svg = render.render(text, "svg")
        first_s = time.perf_counter() - started

        cached = []
        for _ in range(20):
            started = time.perf_counter()
            assert render.render(text, "svg") == svg
            cached.append(time.perf_counter() - started)
        cached_s = statistics.median(cached)

        view_cached = []
        for _ in range(5):
            started = time.perf_counter()
            _g, again = dot_text()
            render.render(again, "svg")
            view_cached.append(time.perf_counter() - started)
        view_cached_s = statistics.median(view_cached)

        if len(graph.nodes) > HUGE_GRAPH:
            layout = f"dot, huge-graph attributes {HUGE_GRAPH_ATTRS}"
        elif len(graph.nodes) > LARGE_GRAPH:
            layout = f"dot, large-graph attributes {LARGE_GRAPH_ATTRS}"
        else:
            layout = "dot, default attributes"
        print(
            f"workspace: {len(spec)} components, {len(graph.edges)} edges, {len(graph.clusters)} clusters, {args.view} view"
        )
        print(f"layout: {layout}")
        print(f"build graph + DOT text:        {ms(dot_s):>8} ms ({len(text):,} bytes)")
        print(f"first render (SVG, uncached):  {ms(first_s):>8} ms ({len(svg):,} bytes)")
        print(f"first view (build + render):   {ms(dot_s + first_s):>8} ms   target < 3000 ms")
        print(f"cached render (SVG):           {ms(cached_s):>8} ms   target < 50 ms")
        print(f"cached view (build + cached):  {ms(view_cached_s):>8} ms")
        print(
            json.dumps(
                {
                    "components": len(spec),
                    "edges": len(graph.edges),
                    "view": args.view,
                    "dot_ms": ms(dot_s),
                    "first_render_ms": ms(first_s),
                    "first_view_ms": ms(dot_s + first_s),
                    "cached_ms": ms(cached_s),
                    "cached_view_ms": ms(view_cached_s),
                }
            )
        )


if __name__ == "__main__":
    main()
