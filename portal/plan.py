"""The action plan of a change set: which AWS actions will run, why, and in what order.

create / update / replace / delete, each with its property diff and the actions it
waits for: a producer's create or update before its subscribers'; a subscriber's delete
(or the update that drops its subscription) before its producer's delete.
"""

import hashlib
import json
from dataclasses import dataclass, field

from . import graph, jsondiff, pointers, registry
from .models import Component, EntryOp
from .schemas import replacement_paths, write_only_for
from .secrets import mask_at, mask_changes

PORTAL_TYPE_PREFIX = "Portal::"


@dataclass
class Action:
    kind: str  # create | update | replace | delete | import
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
    before: dict = field(default=None, repr=False)  # whole documents, to mask values in context
    after: dict = field(default=None, repr=False)
    resolved: dict = field(
        default=None, repr=False
    )  # the desired values it will send, subscriptions resolved
    secret_paths: list = field(default_factory=list, repr=False)  # write-only or derived from a secret

    @property
    def key(self):
        return f"{self.kind}:{self.component}"

    def as_dict(self):
        return {
            "key": self.key,
            "kind": self.kind,
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
    if schema == "AWS::ECS::Service":
        return f"{name}'s tasks stop with the old service; traffic fails until the new service's tasks are healthy"
    return f"{name} does not exist between the delete and the create; whatever uses it fails meanwhile"


def plan_actions(change_set):
    view = graph.GraphView(change_set.workspace, change_set).preload()
    entries = view.entries
    heads = {
        c.name: c
        for c in Component.objects.filter(
            workspace=change_set.workspace, id__in=[e.component_id for e in entries.values()]
        )
    }
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
            if e.replace:
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

    # 4. Order.
    _wire_dependencies(view, entries, actions)
    for a in actions.values():
        if a.kind in ("create", "replace"):
            own = graph.find_sources(view.properties_of(a.component) or {})
            a.follow_up = any(s.component == a.component and s.root == "resource_value" for s in own)
        if a.kind == "replace":
            a.downtime = _downtime(a.schema, a.component)
        resolved = view.view(a.component) if a.kind != "delete" else None
        a.resolved = resolved.domain if resolved is not None else None
        a.secret_paths = write_only_for(a.schema) + graph.derived_secret_paths(view, a.component)
        warnings.extend(_plain_environment_secrets(a))
    ordered = _order(actions)
    return Plan(ordered, errors, warnings)


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
    frontier = {n for n, a in actions.items() if a.kind == "replace"}
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
                    existing.kind, existing.replace_paths = "replace", paths
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
        [n for n in names if actions[n].kind in ("delete", "update", "replace")]
    )
    for name, a in actions.items():
        waits = set()
        if a.kind in ("create", "update", "replace", "import"):
            for s in producers_now.get(name, []):
                p = actions.get(s.component)
                if p is not None and p is not a and graph.is_dependency(s, name) and p.kind != "delete":
                    waits.add(p.key)
        a.waits_for = sorted(waits)
    # A producer's delete waits for every consumer (as HEAD has it) that changes or goes.
    for name, a in actions.items():
        if a.kind not in ("update", "replace", "delete"):
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
