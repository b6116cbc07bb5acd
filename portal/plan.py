"""The action plan of a change set: which AWS actions will run, why, and in what order.

create / update / replace / revision / delete / cleanup, each with its property diff and
the actions it waits for: a producer's create or update before its subscribers'; a
subscriber's delete (or the update that drops its subscription) before its producer's delete.

A replacement runs as CloudFormation runs it: the new resource is created, its consumers
move to it (their updates wait for the replace), and the old one is deleted by a
`cleanup` action that waits for every other action. Only a resource whose properties fix
the name the new one must reuse (FIXED_NAMES) is deleted first, with downtime. A task
definition never is replaced: a change registers a `revision` in the same family, and the
cleanup prunes the family's old revisions.
"""

import hashlib
import json
from dataclasses import dataclass, field

from . import graph, jsondiff, pointers, registry
from .models import EntryOp
from .schemas import replacement_paths, write_only_for
from .secrets import mask_at, mask_changes

PORTAL_TYPE_PREFIX = "Portal::"
TASK_DEFINITION = "AWS::ECS::TaskDefinition"
ECS_SERVICE = "AWS::ECS::Service"

# The property that names a resource uniquely in its scope: when the component sets it, a
# replacement must free the name first (delete, then create). Unset, AWS or the portal
# generates a fresh name and the replacement creates first.
FIXED_NAMES = {
    "AWS::CloudFormation::Stack": "StackName",
    "AWS::EC2::SecurityGroup": "GroupName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::ECS::Cluster": "ClusterName",
    "AWS::ECS::Service": "ServiceName",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "Name",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::RDS::DBCluster": "DBClusterIdentifier",
    "AWS::RDS::DBInstance": "DBInstanceIdentifier",
    "AWS::RDS::DBSubnetGroup": "DBSubnetGroupName",
    "AWS::ServiceDiscovery::PrivateDnsNamespace": "Name",
    "AWS::ServiceDiscovery::Service": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
}
# Types whose delete loses data: a final snapshot is taken first unless the component's
# DeletionPolicy (a delete) or UpdateReplacePolicy (a replacement) is "Delete".
HOLDS_DATA = {"AWS::RDS::DBInstance", "AWS::RDS::DBCluster"}


def action_label(kind, schema):
    """How the plan page and the build log name an action kind."""
    if kind == "cleanup":
        return "cleanup: old revisions" if schema == TASK_DEFINITION else "cleanup: delete replaced"
    return "new revision" if kind == "revision" else kind


@dataclass
class Action:
    kind: str  # create | update | replace | revision | delete | cleanup | import
    component: str
    component_id: str
    schema: str
    reason: str = ""
    replace_paths: list = field(default_factory=list)
    changes: list = field(default_factory=list)
    waits_for: list = field(default_factory=list)
    follow_up: bool = False  # subscribes to its own /resource_value: an update follows the create
    local: bool = False  # a portal type: computed by the portal, no AWS call
    downtime: str = ""
    replacement: str = ""  # a replace: "create-first" or "delete-first"
    alternative: str = ""  # a delete-first replace: how to avoid its downtime
    snapshot: str = ""  # a data-holding delete or replace: what becomes of the data
    held: dict = field(default_factory=dict)  # pointer -> why the apply leaves it as it is
    before: dict = field(default=None, repr=False)  # whole documents, to mask values in context
    after: dict = field(default=None, repr=False)
    resolved: dict = field(
        default=None, repr=False
    )  # the desired values it will send, subscriptions resolved
    secret_paths: list = field(default_factory=list, repr=False)  # write-only or derived from a secret

    @property
    def key(self):
        return f"{self.kind}:{self.component}"

    @property
    def label(self):
        return action_label(self.kind, self.schema)

    def as_dict(self):
        return {
            "key": self.key,
            "kind": self.kind,
            "label": self.label,
            "component": self.component,
            "component_id": self.component_id,
            "schema": self.schema,
            "reason": self.reason,
            "replace_paths": self.replace_paths,
            "changes": [c.as_dict() for c in self.changes],
            "waits_for": self.waits_for,
            "follow_up": self.follow_up,
            "local": self.local,
            "downtime": self.downtime,
            "replacement": self.replacement,
            "alternative": self.alternative,
            "snapshot": self.snapshot,
            "held": self.held,
        }


@dataclass
class Plan:
    actions: list
    errors: list  # blocking problems: {"component", "message"}
    warnings: list

    @property
    def checksum(self):
        # Resolved values are part of what an approver approves: HEAD moving a producer's
        # value changes the plan even when no entry of the change set changed.
        actions = [{**a.as_dict(), "resolved": a.resolved} for a in self.actions]
        body = json.dumps(actions + self.errors, sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()

    @property
    def ok(self):
        return not self.errors

    def as_dict(self, masked=True):
        actions = []
        for a in self.actions:
            d = a.as_dict()
            if masked:
                d["changes"] = mask_changes(d["changes"], a.secret_paths, a.before, a.after)
            actions.append(d)
        return {
            "actions": actions,
            "errors": self.errors,
            "warnings": self.warnings,
            "checksum": self.checksum,
        }


def _replacement_paths(schema, old, new):
    try:
        return replacement_paths(schema, old or {}, new or {})
    except Exception:
        return []


def _has_provider(schema):
    return schema.startswith(PORTAL_TYPE_PREFIX) or registry.can_apply(schema)


def _downtime(schema, name):
    if schema == ECS_SERVICE:
        return f"{name}'s tasks stop with the old service; traffic fails until the new service's tasks are healthy"
    return f"{name} does not exist between the delete and the create; whatever uses it fails meanwhile"


def _plan_replacement(a, old, new):
    """Create first, unless the new resource must reuse the name the old one holds."""
    prop = FIXED_NAMES.get(a.schema)
    fixed = (
        prop is not None
        and (new or {}).get(prop) not in (None, "")
        and (old or {}).get(prop) == new.get(prop)
    )
    if fixed:
        a.replacement, a.downtime = "delete-first", _downtime(a.schema, a.component)
        a.alternative = (
            f"{prop} {new[prop]!r} must be free for the new resource, so the old one is deleted first; "
            f"leave {prop} unset and a generated name lets the new resource be created before the old one goes"
        )
    else:
        a.replacement = "create-first"
    if a.schema in HOLDS_DATA:
        a.snapshot = _snapshot_words(old, "UpdateReplacePolicy", "replaced")


def _snapshot_words(props, policy, verb):
    if str((props or {}).get(policy, "")).lower() == "delete":
        return f"{policy} is Delete: the old data is lost when it is {verb}, with no final snapshot"
    return f"a final snapshot of the old data is taken before it is {verb} ({policy}: Delete skips it)"


def plan_actions(change_set):
    view = graph.GraphView(change_set.workspace, change_set).preload()
    entries = view.entries
    # HEAD's components the rows change (the same id: not one HEAD re-added under the name).
    found = view.head_components(list(entries))
    heads = {n: c for n, c in found.items() if c is not None and c.id == entries[n].component_id}
    actions, errors, warnings = {}, [], []

    for e in entries.values():
        for c in e.conflicts:
            errors.append({"component": e.name, "message": f"unresolved conflict at {c['path']}"})

    # 1. What the change set itself asks for.
    for name, e in entries.items():
        head = heads.get(name)
        local = e.schema.startswith(PORTAL_TYPE_PREFIX)
        if e.op == EntryOp.ADD and e.adopt_id:
            a = Action(
                "import",
                name,
                str(e.component_id),
                e.schema,
                f"adopts the existing {e.adopt_id} (read, not created)",
            )
            a.changes, a.before, a.after = jsondiff.changes({}, e.properties), {}, e.properties
        elif e.op == EntryOp.ADD:
            a = Action("create", name, str(e.component_id), e.schema, "added in this change set", local=local)
            a.changes, a.before, a.after = jsondiff.changes({}, e.properties), {}, e.properties
        elif e.op == EntryOp.DELETE:
            a = Action(
                "delete", name, str(e.component_id), e.schema, "deleted in this change set", local=local
            )
            a.before, a.after = (head.properties if head else {}), {}
            a.changes = jsondiff.changes(a.before, {})
        else:
            old_props = head.properties if head else (e.base_properties or {})
            changes = jsondiff.changes(old_props, e.properties)
            new_view = view.view(name)
            moved = head is not None and new_view is not None and _resolution_moved(head, new_view)
            if not changes and not e.replace and not moved:
                continue
            reason = "properties changed" if changes else _follows(view, name)
            a = _change_action(e.schema, name, str(e.component_id), head, new_view, reason)
            if e.replace and e.schema == TASK_DEFINITION:
                a.kind, a.reason = "revision", "marked for replacement: registers a new revision"
            elif e.replace:
                a.kind, a.reason = "replace", "marked for replacement"
            a.changes, a.before, a.after = changes, old_props, e.properties
        actions[name] = a

    # 2. HEAD components whose resolved values move because something they read moved.
    for name in sorted(view.reached()):
        head, new_view = view.head_components([name])[name], view.view(name)
        if head is None or new_view is None or not _resolution_moved(head, new_view):
            continue
        a = _change_action(head.schema, name, str(head.id), head, new_view, _follows(view, name))
        a.changes = jsondiff.changes(head.domain or {}, new_view.domain)
        a.before, a.after = head.domain or {}, new_view.domain
        actions[name] = a
    _ripple_identity(view, entries, actions)

    # 3. Blocking problems: dangling subscriptions, types without a provider.
    for problem in dangling_subscriptions(view):
        errors.append(problem)
    for a in actions.values():
        if not a.local and not _has_provider(a.schema):
            errors.append(
                {
                    "component": a.component,
                    "message": f"no provider for {a.schema}: the portal cannot {a.kind} it in AWS yet",
                }
            )

    # 4. How each runs, and in what order.
    _wire_dependencies(view, entries, actions)
    deployed = registry.deployed_services(change_set.workspace)
    for a in list(actions.values()):
        resolved = view.view(a.component) if a.kind != "delete" else None
        a.resolved = resolved.domain if resolved is not None else None
        head = heads.get(a.component) or view.head_components([a.component]).get(a.component)
        old = (head.domain if head is not None else None) or {}
        if a.kind in ("create", "replace"):
            own = view.sources_of(a.component)
            a.follow_up = any(s.component == a.component and s.root == "resource_value" for s in own)
        if a.kind == "replace":
            _plan_replacement(a, old, a.resolved or {})
        if a.kind == "delete" and a.schema in HOLDS_DATA and not a.local:
            a.snapshot = _snapshot_words(old, "DeletionPolicy", "deleted")
        if a.schema == ECS_SERVICE and a.component in deployed and a.kind == "update":
            if _task_definition_moves(view, actions, a, old):
                a.held["/TaskDefinition"] = f"moves to the new revision at {deployed[a.component]}"
        a.secret_paths = write_only_for(a.schema) + graph.derived_secret_paths(view, a.component)
        warnings.extend(_plain_environment_secrets(a))
    _add_cleanups(view, actions)
    ordered = _order(actions)
    return Plan(ordered, errors, warnings)


def _task_definition_moves(view, actions, a, old):
    """The service's TaskDefinition changes, or reads a task definition getting a revision."""
    if (a.resolved or {}).get("TaskDefinition") != old.get("TaskDefinition"):
        return True
    sources = view.sources_of(a.component)
    return any(
        s.target == "/TaskDefinition" and getattr(actions.get(s.component), "kind", "") == "revision"
        for s in sources
    )


def _add_cleanups(view, actions):
    """One cleanup per replaced resource (the old one's delete) and per new task-definition
    revision (old revisions pruned), after every other action: consumers have moved by then."""
    replaced = [
        a
        for a in actions.values()
        if (a.kind == "replace" and a.replacement == "create-first") or a.kind == "revision"
    ]
    if not replaced:
        return
    others = sorted(a.key for a in actions.values())
    cleanups = {}
    for a in replaced:
        reason = (
            "the family keeps its newest revisions and those a service runs; older ones are deregistered"
            if a.kind == "revision"
            else "the resource it was replaced by is in use"
        )
        c = Action("cleanup", a.component, a.component_id, a.schema, reason, snapshot=a.snapshot)
        c.before, c.after, c.waits_for = a.before, {}, others
        cleanups[a.component] = c
    # An old consumer goes before the old producer it used, and before a producer this
    # change set deletes (and what waits for that delete).
    head_view = graph.GraphView(view.workspace)
    for name, sources in head_view.producers_of(list(cleanups)).items():
        for s in sources:
            producer = actions.get(s.component)
            if producer is None or s.component == name:
                continue
            if producer.kind == "delete":
                producer.waits_for = sorted({*producer.waits_for, cleanups[name].key})
                later = _waiting_on(actions, producer.key)
                cleanups[name].waits_for = [k for k in cleanups[name].waits_for if k not in later]
            elif s.component in cleanups:
                c = cleanups[s.component]
                c.waits_for = sorted({*c.waits_for, cleanups[name].key})
    for c in cleanups.values():
        actions[c.key] = c


def _waiting_on(actions, key):
    """`key` and every action that waits for it, however indirectly."""
    found, frontier = {key}, [key]
    while frontier:
        k = frontier.pop()
        for a in actions.values():
            if k in a.waits_for and a.key not in found:
                found.add(a.key)
                frontier.append(a.key)
    return found


def _plain_environment_secrets(action):
    """Warnings for secrets an ECS task definition would write into a plain Environment
    entry, where anyone who can describe the task definition reads them."""
    if action.schema != "AWS::ECS::TaskDefinition" or not isinstance(action.resolved, dict):
        return []
    warnings = []
    for i, container in enumerate(action.resolved.get("ContainerDefinitions") or []):
        environment = container.get("Environment") if isinstance(container, dict) else None
        for j, variable in enumerate(environment or []):
            if not isinstance(variable, dict):
                continue
            path = f"/ContainerDefinitions/{i}/Environment/{j}/Value"
            if mask_at(variable.get("Value"), path, action.secret_paths, action.resolved) != variable.get(
                "Value"
            ):
                container_name = container.get("Name") or i
                warnings.append(
                    {
                        "component": action.component,
                        "path": path,
                        "message": (
                            f"container {container_name} gets the secret {variable.get('Name')} as a plain "
                            "environment variable, readable by anyone who can describe the task definition; "
                            'put it in the container\'s Secrets as {"Name": ..., "ValueFrom": ARN} of a '
                            "Secrets Manager secret or SSM SecureString parameter instead"
                        ),
                    }
                )
    return warnings


def _resolution_moved(head, new_view):
    return (head.domain or {}) != new_view.domain or list(head.pending or []) != new_view.pending


def _change_action(schema, name, component_id, head, new_view, reason):
    """An update, or a replace when a createOnly property's resolved value changes."""
    local = schema.startswith(PORTAL_TYPE_PREFIX)
    old = head.domain if head is not None else {}
    paths = [] if local or new_view is None else _replacement_paths(schema, old, new_view.domain)
    if paths and schema == TASK_DEFINITION:
        reason = ", ".join(paths) + " changed: registers a new revision in the same family"
        return Action("revision", name, component_id, schema, reason, replace_paths=paths)
    if paths:
        reason = "createOnly " + ", ".join(paths) + " changed: AWS cannot change it in place"
        return Action("replace", name, component_id, schema, reason, replace_paths=paths, local=local)
    return Action("update", name, component_id, schema, reason, local=local)


def _follows(view, name):
    """'/X follows p/domain/Y' for each subscription of `name` whose value moves."""
    reasons = []
    for source in view.producers_of([name]).get(name, []):
        if source.component == name:
            continue
        head = view.head_components([source.component])[source.component]
        new, old = view.view(source.component), head and graph.View.of_component(head)
        new_value = graph.PENDING if new is None else graph.value_at(new, source)
        old_value = graph.PENDING if old is None else graph.value_at(old, source)
        if new_value != old_value:
            reasons.append(f"{source.target} follows {source.component}{source.path}")
    return "; ".join(reasons) or "resolved values changed"


def _ripple_identity(view, entries, actions):
    """A replaced resource gets a new identity: what reads its /resource_value is updated
    (or replaced, when that value feeds a createOnly property), however far it travels."""
    frontier = {n for n, a in actions.items() if a.kind in ("replace", "revision")}
    while frontier:
        nxt = set()
        edges = view.consumers_of(frontier, roots=("resource_value",))
        view.head_components(sorted({consumer for pairs in edges.values() for consumer, _ in pairs}))
        for producer, pairs in edges.items():
            for consumer, source in pairs:
                entry = entries.get(consumer)
                if consumer == producer or (entry is not None and entry.op != EntryOp.EDIT):
                    continue
                consumer_view = view.view(consumer)
                if consumer_view is None:
                    continue
                reason = f"{source.target} follows {producer}{source.path}"
                paths = [
                    p
                    for p in _replacement_paths(consumer_view.schema, {}, _stub(source.target))
                    if p == source.target or source.target.startswith(p + "/")
                ]
                existing = actions.get(consumer)
                if existing is None:
                    existing = actions[consumer] = Action(
                        "update",
                        consumer,
                        consumer_view.id,
                        consumer_view.schema,
                        reason,
                        local=consumer_view.schema.startswith(PORTAL_TYPE_PREFIX),
                    )
                elif reason not in existing.reason:
                    existing.reason += f"; {reason}"
                if paths and existing.kind == "update" and not existing.local:
                    existing.kind = "revision" if existing.schema == TASK_DEFINITION else "replace"
                    existing.replace_paths = paths
                    nxt.add(consumer)
        frontier = nxt


def _stub(target):
    """A document that has a value at `target` (to ask the schema whether it is createOnly)."""
    parts = pointers.split(target)
    value = "x"
    for part in reversed(parts):
        if part.isdigit():
            value = [None] * int(part) + [value]
        else:
            value = {part: value}
    return value if isinstance(value, dict) else {}


def dangling_subscriptions(view):
    """Subscriptions to components that will not exist: deleted by this change set, or
    gone from HEAD (another merge deleted them, or the change set no longer adds them)."""
    deleted = [n for n, e in view.entries.items() if e.op == EntryOp.DELETE]
    problems = []
    for producer, pairs in view.consumers_of(deleted).items():
        for consumer, source in pairs:
            if consumer == producer:
                continue
            problems.append(
                {
                    "component": producer,
                    "message": f"{consumer}{source.target} still subscribes to {producer}{source.path}; "
                    f"remove that subscription or delete {consumer} too",
                }
            )
    for consumer, sources in view.producers_of(view.entries).items():
        for source in sources:
            if isinstance(source.component, str) and source.component not in deleted:
                if source.component != consumer and not view.exists(source.component):
                    problems.append(
                        {
                            "component": consumer,
                            "message": f"{consumer}{source.target} subscribes to {source.component}, "
                            "which does not exist",
                        }
                    )
    return problems


def _wire_dependencies(view, entries, actions):
    names = list(actions)
    producers_now = view.producers_of(names)  # as the change set will be
    head_view = graph.GraphView(view.workspace)
    producers_before = head_view.producers_of(
        [n for n in names if actions[n].kind in ("delete", "update", "replace", "revision")]
    )
    for name, a in actions.items():
        waits = set()
        if a.kind in ("create", "update", "replace", "revision", "import"):
            for s in producers_now.get(name, []):
                p = actions.get(s.component)
                if p is not None and p is not a and graph.is_dependency(s, name) and p.kind != "delete":
                    waits.add(p.key)
        a.waits_for = sorted(waits)
    # A producer's delete waits for every consumer (as HEAD has it) that changes or goes.
    for name, a in actions.items():
        if a.kind not in ("update", "replace", "revision", "delete"):
            continue
        for s in producers_before.get(name, []):
            p = actions.get(s.component)
            still_subscribed = any(x.component == s.component for x in producers_now.get(name, []))
            drops_it = p is not None and (
                p.kind == "delete" or (p.kind == "replace" and not still_subscribed)
            )
            if drops_it and s.component != name and graph.is_dependency(s, name):
                if a.key not in p.waits_for:
                    p.waits_for = sorted({*p.waits_for, a.key})


def _order(actions):
    by_key = {a.key: a for a in actions.values()}
    edges = {a.key: set(a.waits_for) for a in actions.values()}
    order = graph.topological(list(by_key), edges)
    return [by_key[k] for k in order]
