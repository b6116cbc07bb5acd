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
from .secrets import mask_changes

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
                d["changes"] = mask_changes(d["changes"], write_only_for(a.schema), a.before, a.after)
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
            domain_moved = head is not None and new_view is not None and _domain_changed(head, new_view)
            if not changes and not e.replace and not domain_moved:
                continue
            paths = _replacement_paths(e.schema, old_props, e.properties)
            if e.replace:
                a = Action(
                    "replace", name, str(e.component_id), e.schema, "marked for replacement", local=local
                )
            elif paths and not local:
                a = Action("replace", name, str(e.component_id), e.schema, "", local=local)
                a.reason = "createOnly " + ", ".join(paths) + " changed: AWS cannot change it in place"
                a.replace_paths = paths
            else:
                a = Action("update", name, str(e.component_id), e.schema, "properties changed", local=local)
            a.changes, a.before, a.after = changes, old_props, e.properties
        actions[name] = a

    # 2. Components whose resolved values move because a producer changed.
    _ripple(view, entries, heads, actions)

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
            own = [
                s
                for s in graph.find_sources(entries[a.component].properties if a.component in entries else {})
            ]
            a.follow_up = any(s.component == a.component and s.root == "resource_value" for s in own)
        if a.kind == "replace":
            a.downtime = _downtime(a.schema, a.component)
        resolved = view.view(a.component) if a.kind != "delete" else None
        a.resolved = resolved.domain if resolved is not None else None
    ordered = _order(actions)
    return Plan(ordered, errors, warnings)


def _domain_changed(head, new_view):
    return jsondiff.changes(head.domain or {}, new_view.domain) != [] and not new_view.pending


def _ripple(view, entries, heads, actions):
    """Add updates (or replaces) for HEAD components fed by something this change set moves."""
    moved = {}  # producer -> roots that move
    for name, a in actions.items():
        if a.kind in ("update", "replace", "create"):
            roots = {"domain"}
            if a.kind == "replace":
                roots.add("resource_value")
            moved[name] = roots
    frontier = dict(moved)
    while frontier:
        nxt = {}
        edges = view.consumers_of(frontier, roots=("domain", "resource_value"))
        view.head_components(
            sorted({consumer for pairs in edges.values() for consumer, _ in pairs})
        )  # one query
        for producer, pairs in edges.items():
            for consumer, source in pairs:
                if consumer in entries or consumer == producer or source.root not in frontier[producer]:
                    continue
                if source.root == "domain" and not _domain_value_moved(view, heads, producer, source):
                    continue
                head = view.head_components([consumer])[consumer]
                if head is None:
                    continue
                target = source.target
                reason = f"{target} follows {producer}{source.path}"
                paths = [
                    p
                    for p in _replacement_paths(head.schema, {}, _stub(target))
                    if p == target or target.startswith(p + "/")
                ]
                kind = "replace" if paths else "update"
                existing = actions.get(consumer)
                if existing is None:
                    a = Action(
                        kind,
                        consumer,
                        str(head.id),
                        head.schema,
                        reason,
                        replace_paths=paths,
                        local=head.schema.startswith(PORTAL_TYPE_PREFIX),
                    )
                    actions[consumer] = a
                    nxt[consumer] = {"domain"} | ({"resource_value"} if kind == "replace" else set())
                else:
                    existing.reason += f"; {reason}"
                    if kind == "replace" and existing.kind == "update":
                        existing.kind, existing.replace_paths = "replace", paths
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


def _domain_value_moved(view, heads, producer, source):
    new = view.view(producer)
    head = heads.get(producer) or view.head_components([producer])[producer]
    if new is None or head is None:
        return True
    return graph.value_at(new, source) != graph.value_at(graph.View.of_component(head), source)


def dangling_subscriptions(view):
    """Subscriptions to components this change set deletes."""
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
