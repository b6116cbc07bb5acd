"""The topology of a workspace as plain data: components as nodes, subscriptions (or, in
the services view, traffic and name flows) as edges, VPC / ECS cluster / load balancer
boxes as clusters, and in a change set the diff against HEAD.

No view code here: views, the bench and tests call `build_graph()` and hand the result to
`topology.dot.to_dot()`.

Queries: HEAD components (1), the HEAD subscription index (1), in the services view the
properties of the few types it reads (1), and for a change set its entries (1) and the
HEAD properties of the components it edits (1): five at most, whatever the size.
"""

import json
import re
from collections import defaultdict, deque
from dataclasses import dataclass, field

import yaml

from portal import pointers
from portal.graph import GraphView, find_sources, source_error
from portal.models import Component, EntryOp, Subscription
from portal.schemas import replacement_paths
from portal.secrets import is_secret_name

INFRASTRUCTURE = "infrastructure"
SERVICES = "services"
VIEWS = (INFRASTRUCTURE, SERVICES)

UNCHANGED = "unchanged"
ADDED = "added"
MODIFIED = "modified"
REPLACED = "replaced"
DELETED = "deleted"

STATUSES = ("ok", "pending", "failed", "drifted", "none")

# What a change set's topology does with the components it neither changes nor neighbours.
FADE = "fade"
HIDE = "hide"
SHOW = "show"
OTHERS = (FADE, HIDE, SHOW)

# --- Kinds ---------------------------------------------------------------------------------
# A type name maps to its kind by an exact entry, else by the longest "...::" prefix entry.
KINDS = {
    "AWS::ECS::": "compute",
    "AWS::Lambda::": "compute",
    "AWS::EC2::Instance": "compute",
    "AWS::EC2::LaunchTemplate": "compute",
    "AWS::AutoScaling::": "compute",
    "AWS::Batch::": "compute",
    "AWS::EKS::": "compute",
    "AWS::ElasticLoadBalancingV2::": "load_balancer",
    "AWS::ElasticLoadBalancing::": "load_balancer",
    "AWS::EC2::": "networking",
    "AWS::Route53::": "networking",
    "AWS::RDS::": "data",
    "AWS::DynamoDB::": "data",
    "AWS::ElastiCache::": "data",
    "AWS::S3::": "data",
    "AWS::ServiceDiscovery::": "discovery",
    "AWS::StepFunctions::": "pipeline",
    "AWS::CodePipeline::": "pipeline",
    "AWS::CodeBuild::": "pipeline",
    "Portal::StringTemplate": "template",
    "AWS::CloudFormation::Stack": "template",
}
KIND_LABELS = {
    "compute": "Compute",
    "load_balancer": "Load balancers",
    "networking": "Networking",
    "data": "Data",
    "discovery": "Discovery",
    "pipeline": "Pipelines",
    "template": "Templates",
    "other": "Other",
}
MISSING = "missing"  # a subscription names a component that does not exist
_PREFIXES = sorted((k for k in KINDS if k.endswith("::")), key=len, reverse=True)


def kind_of(schema):
    if schema in KINDS:
        return KINDS[schema]
    for prefix in _PREFIXES:
        if schema.startswith(prefix):
            return KINDS[prefix]
    return "other"


def normalize_kind(word):
    """'load-balancers' / 'Pipelines' / 'load_balancer' -> a KIND_LABELS key, else None."""
    w = word.strip().lower().replace("-", "_").replace(" ", "_")
    for candidate in (w, w.removesuffix("s")):
        if candidate in KIND_LABELS:
            return candidate
    return None


# Types the graph reads more than the name and type of.
VPC = "AWS::EC2::VPC"
SUBNET = "AWS::EC2::Subnet"
SECURITY_GROUP = "AWS::EC2::SecurityGroup"
ECS_CLUSTER = "AWS::ECS::Cluster"
ECS_SERVICE = "AWS::ECS::Service"
TASK_DEFINITION = "AWS::ECS::TaskDefinition"
LOAD_BALANCER = "AWS::ElasticLoadBalancingV2::LoadBalancer"
LISTENER = "AWS::ElasticLoadBalancingV2::Listener"
LISTENER_RULE = "AWS::ElasticLoadBalancingV2::ListenerRule"
TARGET_GROUP = "AWS::ElasticLoadBalancingV2::TargetGroup"
STACK = "AWS::CloudFormation::Stack"
SD_SERVICE = "AWS::ServiceDiscovery::Service"
SD_NAMESPACES = (
    "AWS::ServiceDiscovery::PrivateDnsNamespace",
    "AWS::ServiceDiscovery::PublicDnsNamespace",
    "AWS::ServiceDiscovery::HttpNamespace",
)
DATABASES = (
    "AWS::RDS::DBInstance",
    "AWS::RDS::DBCluster",
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::GlobalTable",
    "AWS::ElastiCache::CacheCluster",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::ElastiCache::ServerlessCache",
)
# The services view reads these types' properties (one query, only in that view).
SERVICES_VIEW_READS = (
    ECS_SERVICE,
    TASK_DEFINITION,
    LISTENER,
    LISTENER_RULE,
    STACK,
    SD_SERVICE,
    *SD_NAMESPACES,
)


# --- The graph -----------------------------------------------------------------------------


@dataclass
class TopologyNode:
    name: str
    schema: str
    kind: str
    status: str = "none"  # ok | pending | failed | drifted | none
    diff: str = UNCHANGED  # unchanged | added | modified | replaced | deleted
    cluster: str | None = None  # TopologyCluster.id
    detail: list = field(default_factory=list)  # extra label lines (DNS names, ports)
    drift: int = 0  # number of drifted properties
    faded: bool = False  # neither changed by the change set nor next to what it changes


@dataclass
class TopologyEdge:
    """Drawn from `producer` to `consumer`.

    Infrastructure view: a subscription, the value flows from producer to consumer and
    `label` is the consumer's property it feeds. Services view: the way traffic or a name
    flows (ALB -> listener -> target group -> service, caller -> discovery name -> service).
    """

    producer: str
    consumer: str
    label: str
    diff: str = UNCHANGED  # unchanged | added | deleted
    kind: str = "subscription"  # subscription | traffic | name | registration | uses
    faded: bool = False

    @property
    def key(self):
        return (self.producer, self.consumer, self.kind, self.label)


@dataclass
class TopologyCluster:
    id: str  # "vpc:NAME", "ecs:NAME", "lb:NAME"
    kind: str  # vpc | ecs | lb
    label: str
    component: str  # the component the box stands for
    parent: str | None = None
    diff: str = UNCHANGED
    faded: bool = False


@dataclass
class TopologyGraph:
    workspace: str
    view: str = INFRASTRUCTURE
    change_set: int | None = None
    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)
    clusters: list = field(default_factory=list)
    types: list = field(default_factory=list)
    focus: str | None = None
    hops: int = 1
    others: str = SHOW
    message: str = ""

    @property
    def has_diff(self):
        return any(n.diff != UNCHANGED for n in self.nodes) or any(e.diff != UNCHANGED for e in self.edges)

    def node(self, name):
        return next((n for n in self.nodes if n.name == name), None)

    def cluster(self, cluster_id):
        return next((c for c in self.clusters if c.id == cluster_id), None)


# --- Reading the workspace -----------------------------------------------------------------


@dataclass
class _Comp:
    name: str
    schema: str
    status: str
    drift: int
    properties: dict | None = None
    domain: dict | None = None

    @property
    def doc(self):
        """Resolved values where known (HEAD), else the desired properties."""
        return self.domain or self.properties or {}


@dataclass(frozen=True)
class _Sub:
    consumer: str
    target: str
    producer: str
    path: str


def _status(resource_status, drift):
    if resource_status in ("ok", "none") and drift:
        return "drifted"
    return resource_status if resource_status in STATUSES else "none"


def _load_head(workspace, view):
    comps = {}
    rows = Component.objects.filter(workspace=workspace).values_list(
        "name", "schema", "resource_status", "drift"
    )
    for name, schema, status, drift in rows:
        n = len(drift) if isinstance(drift, list | dict) else int(bool(drift))
        comps[name] = _Comp(name, schema, _status(status, n), n)
    if view == SERVICES:
        for name, props, domain in Component.objects.filter(
            workspace=workspace, schema__in=SERVICES_VIEW_READS
        ).values_list("name", "properties", "domain"):
            comps[name].properties, comps[name].domain = props or {}, domain or {}
    subs = [
        _Sub(*row)
        for row in Subscription.objects.filter(workspace=workspace, change_set=None).values_list(
            "consumer_name", "target_path", "producer_name", "source_path"
        )
    ]
    return comps, subs


def _overlay(workspace, change_set, head, head_subs):
    """The change set's state (HEAD overlaid with its entries) and each entry's diff state."""
    entries = GraphView(workspace, change_set).entries
    edited = [name for name, e in entries.items() if e.op == EntryOp.EDIT]
    head_props = dict(
        Component.objects.filter(workspace=workspace, name__in=edited).values_list("name", "properties")
    )
    comps = dict(head)
    subs = [s for s in head_subs if s.consumer not in entries]
    diff = {}
    for name, e in entries.items():
        if e.op == EntryOp.DELETE:
            comps.pop(name, None)
            diff[name] = DELETED
            continue
        before = head.get(name) if e.op == EntryOp.EDIT else None
        if before is None:
            comps[name] = _Comp(name, e.schema, "none", 0, e.properties or {})
            diff[name] = ADDED
        else:
            old = head_props.get(name) or {}
            if e.replace or _forces_replacement(e.schema, old, e.properties or {}):
                diff[name] = REPLACED
            elif old != (e.properties or {}) or before.schema != e.schema:
                diff[name] = MODIFIED
            else:
                diff[name] = UNCHANGED
            comps[name] = _Comp(name, e.schema, before.status, before.drift, e.properties or {})
        subs.extend(
            _Sub(name, s.target, s.component, s.path)
            for s in find_sources(e.properties or {})
            if source_error(s) is None
        )
    return comps, subs, diff


def _forces_replacement(schema, old, new):
    """Does the edit change a createOnly property (e.g. a task definition's containers)?"""
    if old == new:
        return False
    try:
        return bool(replacement_paths(schema, old, new))
    except Exception:  # no schema for this type, or the schema module is unavailable
        return False


# --- Labels --------------------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def readable_path(pointer):
    """'/ServiceRegistries/0/RegistryArn' -> 'ServiceRegistries[0].RegistryArn'."""
    try:
        parts = pointers.split(pointer)
    except ValueError:
        return str(pointer)
    out = ""
    for part in parts:
        if part.isdigit():
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += ("." if out else "") + part
        else:
            out += f"[{json.dumps(part)}]"
    return out or "(all properties)"


def _at(doc, parts):
    node = doc
    for part in parts:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _env_name(doc, target):
    """The Name of an ECS-style {"Name", "Value"} pair the target points into, else None."""
    try:
        parts = pointers.split(target)
    except ValueError:
        return None
    if len(parts) >= 2 and parts[-1] in ("Value", "ValueFrom"):
        item = _at(doc, parts[:-1])
        if isinstance(item, dict) and isinstance(item.get("Name"), str):
            return item["Name"]
    return None


# --- Infrastructure view -------------------------------------------------------------------


@dataclass
class _View:
    nodes: dict  # name -> TopologyNode
    edges: dict  # key -> TopologyEdge
    clusters: dict  # id -> TopologyCluster
    folded: dict = field(default_factory=dict)  # node -> components drawn as part of it


def _node(c, kind=None):
    return TopologyNode(c.name, c.schema, kind or kind_of(c.schema), c.status, drift=c.drift)


def _infrastructure(comps, subs):
    nodes = {name: _node(c) for name, c in comps.items()}
    edges = {}
    for s in subs:
        if s.producer not in nodes:
            nodes[s.producer] = TopologyNode(s.producer, "", MISSING)
        if s.consumer not in nodes:
            continue
        e = TopologyEdge(s.producer, s.consumer, readable_path(s.target))
        edges[e.key] = e
    clusters = {}
    vpc_of = _vpc_membership(comps, subs)
    ecs_of = _ecs_membership(comps, subs)
    for name, vpc in vpc_of.items():
        cid = f"vpc:{vpc}"
        clusters.setdefault(cid, TopologyCluster(cid, "vpc", f"VPC {vpc}", vpc))
        nodes[name].cluster = cid
    for service, ecs in ecs_of.items():
        cid = f"ecs:{ecs}"
        if cid not in clusters:
            clusters[cid] = TopologyCluster(cid, "ecs", f"ECS cluster {ecs}", ecs)
            nodes[ecs].cluster = cid
        nodes[service].cluster = cid
    for cid, cluster in clusters.items():
        if cluster.kind == "ecs":
            members = [s for s, e in ecs_of.items() if f"ecs:{e}" == cid]
            vpcs = {vpc_of.get(s) for s in members}
            if len(vpcs) == 1 and None not in vpcs:
                cluster.parent = f"vpc:{vpcs.pop()}"
    return _View(nodes, edges, clusters)


def _vpc_membership(comps, subs):
    """{name: VPC name}: the VPC itself, what subscribes to its VpcId, and (transitively
    through subnets and security groups only) what subscribes to those."""
    vpcs = {n for n, c in comps.items() if c.schema == VPC}
    if not vpcs:
        return {}
    network = {n for n, c in comps.items() if c.schema in (SUBNET, SECURITY_GROUP)}
    member = defaultdict(set)
    consumers = defaultdict(set)
    for v in vpcs:
        member[v].add(v)
    for s in subs:
        if s.consumer not in comps or s.consumer == s.producer:
            continue
        consumers[s.producer].add(s.consumer)
        if s.producer in vpcs and s.path.rsplit("/", 1)[-1] == "VpcId":
            member[s.consumer].add(s.producer)
    queue = deque(sorted(n for n in network if member[n]))
    while queue:
        n = queue.popleft()
        for c in sorted(consumers[n]):
            if c in vpcs or member[n] <= member[c]:
                continue
            member[c] |= member[n]
            if c in network:
                queue.append(c)
    return {n: next(iter(v)) for n, v in member.items() if len(v) == 1}


def _ecs_membership(comps, subs):
    """{ECS service: ECS cluster} for services whose Cluster subscribes to a cluster."""
    out = {}
    for s in subs:
        consumer, producer = comps.get(s.consumer), comps.get(s.producer)
        if (
            consumer is not None
            and producer is not None
            and consumer.schema == ECS_SERVICE
            and producer.schema == ECS_CLUSTER
            and s.target == "/Cluster"
        ):
            out[s.consumer] = s.producer
    return out


# --- Services view -------------------------------------------------------------------------


def _load_template(body):
    if isinstance(body, dict):
        return body
    if not isinstance(body, str) or not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except ValueError:
        try:
            doc = yaml.load(body, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError:
            return {}
    return doc if isinstance(doc, dict) else {}


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short forms (!Ref, !GetAtt, ...) as dicts."""


def _cfn_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def _ref_target(value):
    """The logical id a {"Ref": X} / {"Fn::GetAtt": [X, attr]} points at, else None."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    if isinstance(value.get("Ref"), str):
        return value["Ref"]
    att = value.get("Fn::GetAtt")
    if isinstance(att, list) and att and isinstance(att[0], str):
        return att[0]
    if isinstance(att, str):
        return att.split(".", 1)[0]
    return None


def _namespace_ref(props):
    dns = props.get("DnsConfig") if isinstance(props.get("DnsConfig"), dict) else {}
    return dns.get("NamespaceId", props.get("NamespaceId"))


def _stack_names(doc):
    """The Cloud Map names a stack template defines: ['api.tonys-chips.local', ...]."""
    resources = _load_template(doc.get("TemplateBody")).get("Resources")
    if not isinstance(resources, dict):
        return [], []
    namespaces = {
        logical: res.get("Properties", {}).get("Name")
        for logical, res in resources.items()
        if isinstance(res, dict)
        and res.get("Type") in SD_NAMESPACES
        and isinstance(res.get("Properties"), dict)
    }
    namespaces = {k: v for k, v in namespaces.items() if isinstance(v, str)}
    names = []
    for res in resources.values():
        if not isinstance(res, dict) or res.get("Type") != SD_SERVICE:
            continue
        props = res.get("Properties") if isinstance(res.get("Properties"), dict) else {}
        name = props.get("Name")
        ns = namespaces.get(_ref_target(_namespace_ref(props)))
        if ns is None and len(namespaces) == 1:
            ns = next(iter(namespaces.values()))
        if isinstance(name, str):
            names.append(f"{name}.{ns}" if ns else name)
    return sorted(set(names)), sorted(namespaces.values())


def _discovery_names(comps, subs):
    """{provider component: [DNS names]} for Cloud Map services and stacks defining them."""
    out = {}
    namespace_of = {}
    for s in subs:
        producer = comps.get(s.producer)
        if producer is not None and producer.schema in SD_NAMESPACES and "NamespaceId" in s.target:
            namespace_of[s.consumer] = producer.doc.get("Name")
    for name, c in comps.items():
        if c.schema == SD_SERVICE:
            sd_name = c.doc.get("Name")
            ns = namespace_of.get(name)
            if isinstance(sd_name, str):
                out[name] = [f"{sd_name}.{ns}" if isinstance(ns, str) else sd_name]
        elif c.schema in SD_NAMESPACES and isinstance(c.doc.get("Name"), str):
            out[name] = []
        elif c.schema == STACK:
            names, namespaces = _stack_names(c.doc)
            if names or namespaces:
                out[name] = names
    return out


def _strings(doc, path=()):
    if isinstance(doc, str):
        yield path, doc
    elif isinstance(doc, dict):
        if len(doc) == 1 and "$source" in doc:
            return
        for key, value in doc.items():
            yield from _strings(value, (*path, str(key)))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _strings(value, (*path, str(index)))


def _listener_label(doc):
    protocol, port = doc.get("Protocol"), doc.get("Port")
    if protocol or port:
        return f"{protocol or ''}:{port or ''}".strip(":")
    return "listener"


def _rule_label(doc):
    parts = []
    for cond in doc.get("Conditions") or []:
        if not isinstance(cond, dict):
            continue
        values = cond.get("Values")
        for key in ("PathPatternConfig", "HostHeaderConfig"):
            if isinstance(cond.get(key), dict):
                values = cond[key].get("Values")
        if isinstance(values, list):
            parts.extend(str(v) for v in values if isinstance(v, str | int))
    if parts:
        return " ".join(parts)
    priority = doc.get("Priority")
    return f"rule {priority}" if priority is not None else "rule"


def _target_label(doc, target):
    try:
        parts = pointers.split(target)
    except ValueError:
        return readable_path(target)
    item = _at(doc, parts[:-1]) if len(parts) >= 2 else None
    if isinstance(item, dict) and (item.get("ContainerName") or item.get("ContainerPort")):
        return f"{item.get('ContainerName') or ''}:{item.get('ContainerPort') or ''}".strip(":")
    return readable_path(target)


def _services(comps, subs):
    discovery = _discovery_names(comps, subs)
    runners = defaultdict(set)  # task definition -> services running it
    for s in subs:
        consumer, producer = comps.get(s.consumer), comps.get(s.producer)
        if consumer and producer and consumer.schema == ECS_SERVICE and producer.schema == TASK_DEFINITION:
            if s.target == "/TaskDefinition":
                runners[s.producer].add(s.consumer)

    nodes = {}
    for name, c in comps.items():
        kind = kind_of(c.schema)
        if c.schema == ECS_SERVICE or kind == "load_balancer" or c.schema in DATABASES:
            nodes[name] = _node(c)
        elif name in discovery or kind == "discovery":
            nodes[name] = _node(c, "discovery")
            nodes[name].detail = _detail_names(discovery.get(name, []))
        elif c.schema == TASK_DEFINITION and name not in runners:
            nodes[name] = _node(c)  # a task run on its own (migrations, smoke tests)
        if c.schema == LISTENER and name in nodes:
            nodes[name].detail = [_listener_label(c.doc)]
        elif c.schema == LISTENER_RULE and name in nodes:
            nodes[name].detail = [_rule_label(c.doc)]

    def owners(name):
        return sorted(runners[name]) if name in runners else [name]

    edges = {}

    def add(producer, consumer, label, kind):
        if producer != consumer and producer in nodes and consumer in nodes:
            e = TopologyEdge(producer, consumer, label, kind=kind)
            edges[e.key] = e

    for s in subs:
        c, p = comps.get(s.consumer), comps.get(s.producer)
        if c is None or p is None:
            continue
        for consumer in owners(s.consumer):
            for producer in owners(s.producer):
                cs, ps = comps[consumer].schema, comps[producer].schema
                if cs == ECS_SERVICE and ps == TARGET_GROUP:
                    add(producer, consumer, _target_label(c.doc, s.target), "traffic")
                elif cs == LISTENER and ps == LOAD_BALANCER:
                    add(producer, consumer, _listener_label(c.doc), "traffic")
                elif cs == LISTENER_RULE and ps == LISTENER:
                    add(producer, consumer, _rule_label(c.doc), "traffic")
                elif cs in (LISTENER, LISTENER_RULE) and ps == TARGET_GROUP:
                    add(consumer, producer, "forward", "traffic")
                elif cs == ECS_SERVICE and s.target.startswith("/ServiceRegistries"):
                    add(producer, consumer, readable_path(s.target), "registration")
                else:
                    label = _env_name(c.doc, s.target) or readable_path(s.target)
                    add(consumer, producer, label, "uses")

    # Names: a task definition's value naming a Cloud Map name ("http://api.ns.local:3000").
    names = {n: p for p, ns in discovery.items() for n in ns}
    if names:
        pattern = re.compile(
            r"(?<![\w.-])("
            + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
            + r")(:\d+)?(?![\w-])"
        )
        for name, c in comps.items():
            if c.schema != TASK_DEFINITION:
                continue
            doc = c.doc
            for path, text in _strings(doc):
                for m in pattern.finditer(text):
                    env = _env_name(doc, pointers.join([*path]))
                    if env is not None and is_secret_name(env):
                        env = None
                    label = f"{env}: {m.group(0)}" if env else m.group(0)
                    for owner in owners(name):
                        add(owner, names[m.group(1)], label, "name")

    clusters = {}
    for service, ecs in _ecs_membership(comps, subs).items():
        if service in nodes:
            cid = f"ecs:{ecs}"
            clusters.setdefault(cid, TopologyCluster(cid, "ecs", f"ECS cluster {ecs}", ecs))
            nodes[service].cluster = cid
    for name, lb in _lb_membership(comps, subs).items():
        if name in nodes:
            cid = f"lb:{lb}"
            clusters.setdefault(cid, TopologyCluster(cid, "lb", f"Load balancer {lb}", lb))
            nodes[name].cluster = cid
    folded = defaultdict(list)
    for task_definition, services in runners.items():
        for s in services:
            folded[s].append(task_definition)
    return _View(nodes, edges, clusters, dict(folded))


def _detail_names(names):
    return names[:3] + ([f"+{len(names) - 3} more"] if len(names) > 3 else [])


def _lb_membership(comps, subs):
    """{name: load balancer} for a load balancer, its listeners, their rules and the
    target groups only that load balancer forwards to."""
    parent = {}
    to_groups = defaultdict(set)
    for s in subs:
        c, p = comps.get(s.consumer), comps.get(s.producer)
        if c is None or p is None:
            continue
        if c.schema == LISTENER and p.schema == LOAD_BALANCER:
            parent[s.consumer] = s.producer
        elif c.schema == LISTENER_RULE and p.schema == LISTENER:
            parent[s.consumer] = s.producer
        elif c.schema in (LISTENER, LISTENER_RULE) and p.schema == TARGET_GROUP:
            to_groups[s.consumer].add(s.producer)
    out = {n: n for n, c in comps.items() if c.schema == LOAD_BALANCER}

    def root(name, depth=0):
        while name in parent and depth < 3:
            name, depth = parent[name], depth + 1
        return name if name in out else None

    for name in parent:
        lb = root(name)
        if lb:
            out[name] = lb
    group_lbs = defaultdict(set)
    for source, groups in to_groups.items():
        lb = out.get(source)
        for g in groups:
            group_lbs[g].add(lb)
    for g, lbs in group_lbs.items():
        if len(lbs) == 1 and None not in lbs:
            out[g] = lbs.pop()
    return out


# --- Diff, filters, focus ------------------------------------------------------------------


def _derive(view, comps, subs):
    return _services(comps, subs) if view == SERVICES else _infrastructure(comps, subs)


def _merge(head, mine, diff):
    """One view of the change set: its own nodes and edges plus what it deletes."""
    nodes = {}
    for name, node in mine.nodes.items():
        state = diff.get(name, UNCHANGED)
        if state == DELETED:
            continue
        if state == UNCHANGED and any(diff.get(f, UNCHANGED) != UNCHANGED for f in mine.folded.get(name, ())):
            state = MODIFIED  # its task definition changes: the service rolls out a new revision
        node.diff = state
        nodes[name] = node
    for name, node in head.nodes.items():
        if name not in nodes:
            node.diff = DELETED
            nodes[name] = node
    edges = {}
    for key, e in mine.edges.items():
        e.diff = UNCHANGED if key in head.edges else ADDED
        edges[key] = e
    for key, e in head.edges.items():
        if key not in edges:
            e.diff = DELETED
            edges[key] = e
    clusters = {**head.clusters, **mine.clusters}
    for c in clusters.values():
        anchor = nodes.get(c.component)
        c.diff = anchor.diff if anchor is not None else UNCHANGED
    return _View(nodes, edges, clusters)


def _matches(node, specs):
    for spec in specs:
        kind = normalize_kind(spec)
        if kind is not None and node.kind == kind:
            return True
        if node.schema == spec:
            return True
        prefix = spec.removesuffix("*")
        if prefix.endswith("::") and node.schema.startswith(prefix):
            return True
    return False


def _neighbourhood(view, names, hops):
    adjacent = defaultdict(set)
    for e in view.edges.values():
        adjacent[e.producer].add(e.consumer)
        adjacent[e.consumer].add(e.producer)
    seen = set(names)
    frontier = set(names)
    for _ in range(hops):
        frontier = {n for f in frontier for n in adjacent[f]} - seen
        if not frontier:
            break
        seen |= frontier
    return seen


def _keep(view, names):
    nodes = {n: node for n, node in view.nodes.items() if n in names}
    edges = {k: e for k, e in view.edges.items() if e.producer in nodes and e.consumer in nodes}
    used = set()
    for node in nodes.values():
        cid = node.cluster
        while cid is not None and cid not in used and cid in view.clusters:
            used.add(cid)
            cid = view.clusters[cid].parent
    clusters = {cid: c for cid, c in view.clusters.items() if cid in used}
    return _View(nodes, edges, clusters)


def _fade(view, names):
    """Fade every node not in `names`, the edges that touch one, and the boxes left empty."""
    for name, node in view.nodes.items():
        node.faded = name not in names
    for e in view.edges.values():
        e.faded = view.nodes[e.producer].faded or view.nodes[e.consumer].faded
    lit = _keep(view, names).clusters
    for cid, cluster in view.clusters.items():
        cluster.faded = cid not in lit


def _around_changes(view, others):
    """A change set's view with what it neither changes nor neighbours faded or hidden;
    None when it changes nothing (then there is nothing to open on)."""
    changed = {name for name, node in view.nodes.items() if node.diff != UNCHANGED}
    if not changed:
        return None
    around = _neighbourhood(view, changed, 1)
    if others == HIDE:
        return _keep(view, around)
    _fade(view, around)
    return view


def build_graph(workspace, change_set=None, view=INFRASTRUCTURE, types=None, focus=None, hops=1, others=FADE):
    """The topology of `workspace` (HEAD, or `change_set` overlaid with its diff).

    `types`: CloudFormation type names, `AWS::Service::` prefixes (`*` allowed) or kinds
    (compute, load_balancer, networking, data, discovery, pipeline, template, other).
    `focus`/`hops`: only that component and what is within `hops` edges of it.
    `others` (change sets only): what becomes of the components the change set neither
    changes nor neighbours: faded (fade), left out (hide) or drawn as usual (show).
    """
    if others not in OTHERS:
        raise ValueError(f"others must be one of {', '.join(OTHERS)}")
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}")
    types = [t for t in (types or []) if t and t.strip()]
    hops = max(0, int(hops))
    comps, subs = _load_head(workspace, view)
    result = _derive(view, comps, subs)
    if change_set is not None:
        mine_comps, mine_subs, diff = _overlay(workspace, change_set, comps, subs)
        result = _merge(result, _derive(view, mine_comps, mine_subs), diff)

    graph = TopologyGraph(
        workspace=workspace.slug,
        view=view,
        change_set=change_set.pk if change_set is not None else None,
        types=types,
        focus=focus or None,
        hops=hops,
    )
    if focus:
        if focus not in result.nodes:
            graph.message = f"No component named {focus!r} in the {view} view."
            return graph
        result = _keep(result, _neighbourhood(result, {focus}, hops))
    if types:
        result = _keep(result, {n for n, node in result.nodes.items() if n == focus or _matches(node, types)})
    if change_set is not None and others != SHOW:
        around = _around_changes(result, others)
        if around is not None:
            result, graph.others = around, others
    if not result.nodes and not graph.message:
        graph.message = "Nothing to show: no components match." if (types or focus) else "No components yet."

    graph.nodes = sorted(result.nodes.values(), key=lambda n: n.name)
    graph.edges = sorted(result.edges.values(), key=lambda e: e.key)
    graph.clusters = sorted(result.clusters.values(), key=lambda c: c.id)
    return graph
