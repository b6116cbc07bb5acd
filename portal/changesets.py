"""Change sets: creating them, editing their components, diff, rebase, conflict
resolution and the atomic merge into HEAD.

Every mutation locks the change set row, checks the user's role and the change set's
state, validates, and only then writes; an invalid edit changes nothing. Every state
change writes an AuditEvent.
"""

from copy import deepcopy
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from . import audit, bulk, graph, inputs, jsondiff, lifecycle, pointers, registry
from .access import require_role
from .errors import ConflictError, NotFound, ValidationError
from .models import (
    ChangeSet,
    ChangeSetEntry,
    ChangeSetStatus,
    Component,
    EntryOp,
    Role,
    Subscription,
    Workspace,
)
from .plan import dangling_subscriptions
from .schemas import get_schema, write_only_for
from .secrets import literal_secret_warnings, mask_changes, masked_conflict
from .spec import ComponentSpec

# --- Creating and abandoning ---------------------------------------------------------------


def create_change_set(workspace, user, name, problem="", solution=""):
    require_role(user, workspace, Role.EDITOR)
    name = (name or "").strip()
    if not name:
        raise ValidationError("A change set needs a name.")
    inputs.check_text_name(name, "A change set name")
    with transaction.atomic():
        ws = Workspace.objects.select_for_update().get(pk=workspace.pk)
        change_set = ChangeSet.objects.create(
            workspace=ws,
            name=name,
            author=user,
            base_version=ws.head_version,
            forked_from_version=ws.head_version,
            problem=problem,
            solution=solution,
        )
        audit.record(
            "changeset.created",
            actor=user,
            change_set=change_set,
            target=f"change set #{change_set.pk} {name}",
            after={"name": name, "base_version": ws.head_version, "problem": problem, "solution": solution},
        )
    return change_set


def _lock(change_set, user, role=Role.EDITOR, editable=True):
    """Re-read the change set under a row lock and check who may do what to it."""
    locked = ChangeSet.objects.select_for_update().select_related("workspace").get(pk=change_set.pk)
    require_role(user, locked.workspace, role)
    if editable and locked.merged_version is not None:
        raise ConflictError(
            f"Change set #{locked.pk} is merged (HEAD version {locked.merged_version}); it can no longer be edited."
        )
    if editable and not locked.is_editable:
        raise ConflictError(f"Change set #{locked.pk} is {locked.status}; it can no longer be edited.")
    return locked


def update_description(change_set, user, *, name=None, problem=None, solution=None):
    with transaction.atomic():
        cs = _lock(change_set, user)
        before = {"name": cs.name, "problem": cs.problem, "solution": cs.solution}
        if name is not None:
            if not name.strip():
                raise ValidationError("A change set needs a name.")
            inputs.check_text_name(name, "A change set name")
            cs.name = name.strip()
        if problem is not None:
            cs.problem = problem
        if solution is not None:
            cs.solution = solution
        cs.save(update_fields=["name", "problem", "solution", "updated_at"])
        after = {"name": cs.name, "problem": cs.problem, "solution": cs.solution}
        audit.record(
            "changeset.described",
            actor=user,
            change_set=cs,
            target=f"change set #{cs.pk}",
            before=before,
            after=after,
        )
    return cs


def abandon(change_set, user):
    with transaction.atomic():
        cs = _lock(change_set, user)
        if user != cs.author:
            require_role(user, cs.workspace, Role.APPROVER)
        lifecycle.move(cs, "abandon", user)
        Subscription.objects.filter(change_set=cs).delete()
    return cs


# --- Editing components --------------------------------------------------------------------


def _head(workspace, name):
    return Component.objects.filter(workspace=workspace, name=name).first()


def _entry_for(cs, name):
    """The overlay row for `name`, made from HEAD if the change set has none yet."""
    entry = cs.entries.filter(name=name).first()
    if entry is not None:
        return entry, False
    head = _head(cs.workspace, name)
    if head is None:
        return None, False
    return _entry_from_head(cs, head), True


def _entry_from_head(cs, head):
    return ChangeSetEntry(
        change_set=cs,
        component_id=head.id,
        op=EntryOp.EDIT,
        name=head.name,
        schema=head.schema,
        properties=deepcopy(head.properties),
        base_name=head.name,
        base_properties=deepcopy(head.properties),
        base_version=head.version,
    )


def _validate(cs, entries_after, name, schema, properties):
    """Validate `name` as the change set will be once `entries_after` are saved."""
    view = graph.GraphView(cs.workspace, cs, entries=entries_after)
    graph.raise_if_errors(name, graph.validation_errors(view, name, schema, properties))


def _check_properties_shape(name, properties):
    if not isinstance(properties, dict):
        raise ValidationError(f"{name}: properties must be a JSON object, not {type(properties).__name__}.")
    inputs.check_json_value(properties, f"{name}: the properties")


def _check_limits(name, properties):
    try:
        inputs.check_document(properties)
    except ValidationError as exc:
        raise ValidationError(f"{name}: {exc.message}; nothing was saved", errors=exc.errors) from None


ENTRY_FIELDS = [
    "op",
    "schema",
    "properties",
    "replace",
    "component_id",
    "base_name",
    "base_properties",
    "base_version",
    "conflicts",
    "adopt_id",
    "updated_at",
]


def _save_entry(cs, entry, user, verb, before):
    _save_entries(cs, [(entry, verb, before)], user)
    return entry


def _save_entries(cs, items, user):
    """Save [(entry, audit verb, before)] in bulk: rows, their index, one revision, audits."""
    entries = [e for e, _, _ in items]
    now = timezone.now()
    for e in entries:
        e.updated_at = now
    new, existing = [e for e in entries if e.pk is None], [e for e in entries if e.pk is not None]
    ChangeSetEntry.objects.bulk_create(new, batch_size=1000)
    bulk.update(ChangeSetEntry, existing, ENTRY_FIELDS)
    graph.reindex(
        cs.workspace,
        {e.name: None if e.op == EntryOp.DELETE else e.properties for e in entries},
        change_set=cs,
    )
    lifecycle.revise(cs, user)
    events = []
    for entry, verb, before in items:
        write_only = write_only_for(entry.schema)
        events.append(
            audit.event_for(
                verb,
                actor=user,
                change_set=cs,
                target=entry.name,
                before=before,
                after=None
                if entry.op == EntryOp.DELETE
                else {"schema": entry.schema, "properties": entry.properties, "replace": entry.replace},
                write_only=[f"/properties{p}" for p in write_only],
            )
        )
    audit.record_all(events)


def upsert_component(
    change_set, user, name, schema=None, properties=None, replace=None, validate=True, create_only=False
):
    """Add a component, or replace its properties whole. `replace` marks it for replacement.

    validate=False leaves the checks to the caller (apply_spec validates the whole
    change set once every component of the spec is in, so order does not matter)."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("A component needs a name.")
    inputs.check_component_name(name)
    with transaction.atomic():
        cs = _lock(change_set, user)
        entry, _ = _entry_for(cs, name)
        entry, verb, before = _upserted(cs, entry, name, schema, properties, replace, create_only)
        if validate:
            others = [e for e in cs.entries.all() if e.name != name]
            _validate(cs, [*others, entry], name, entry.schema, entry.properties)
        _save_entry(cs, entry, user, verb, before)
    return entry


def _upserted(cs, entry, name, schema, properties, replace, create_only):
    """`entry` (the change set's row for `name`, None for a new name) as the upsert makes
    it, unsaved: (entry, audit verb, before)."""
    before = None
    if create_only and entry is not None and entry.op != EntryOp.DELETE:
        raise ValidationError(f"A component named {name!r} already exists; choose another name or edit it.")
    if entry is None:
        if not schema:
            raise ValidationError(f"{name}: a new component needs a schema (its CloudFormation type).")
        if properties is None:
            properties = {}
        entry = ChangeSetEntry(
            change_set=cs, op=EntryOp.ADD, name=name, base_version=cs.workspace.head_version
        )
        verb = "component.added"
    else:
        before = {"schema": entry.schema, "properties": entry.properties, "replace": entry.replace}
        if entry.op == EntryOp.DELETE:
            entry.op = EntryOp.EDIT  # un-delete, then edit
        if schema and schema != entry.schema:
            if entry.op == EntryOp.EDIT:
                raise ValidationError(
                    f"{name}: the type of an existing component cannot change ({entry.schema} → {schema}); "
                    "delete it and add a new component."
                )
        verb = "component.edited"
    if schema:
        get_schema(schema)
        entry.schema = schema
    if properties is not None:
        _check_properties_shape(name, properties)
        _check_limits(name, properties)
        entry.properties = properties
    if replace is not None:
        if replace and entry.op == EntryOp.ADD:
            raise ValidationError(f"{name}: a new component has nothing to replace.")
        entry.replace = bool(replace)
    return entry, verb, before


def set_property(change_set, user, name, path, value):
    """Edit one property by JSON pointer (relative to properties)."""
    with transaction.atomic():
        cs = _lock(change_set, user)
        entry, _ = _entry_for(cs, name)
        if entry is None or entry.op == EntryOp.DELETE:
            raise NotFound(f"No component named {name!r} in change set #{cs.pk}.")
        try:
            parts = pointers.split(path)
        except ValueError as exc:
            raise ValidationError(f"{name}: {exc}") from None
        if not parts:
            raise ValidationError(f"{name}: give a property path such as /DesiredCount.")
        before = {"schema": entry.schema, "properties": deepcopy(entry.properties), "replace": entry.replace}
        props = deepcopy(entry.properties)
        try:
            pointers.set_value(props, parts, value)
        except (IndexError, KeyError, ValueError, TypeError):
            raise ValidationError(f"{name}{path}: there is no such place to set a value.") from None
        _check_properties_shape(name, props)
        _check_limits(name, props)
        entry.properties = props
        others = [e for e in cs.entries.all() if e.name != name]
        _validate(cs, [*others, entry], name, entry.schema, props)
        _save_entry(cs, entry, user, "component.edited", before)
    return entry


def remove_property(change_set, user, name, path):
    with transaction.atomic():
        cs = _lock(change_set, user)
        entry, _ = _entry_for(cs, name)
        if entry is None or entry.op == EntryOp.DELETE:
            raise NotFound(f"No component named {name!r} in change set #{cs.pk}.")
        try:
            parts = pointers.split(path)
        except ValueError as exc:
            raise ValidationError(f"{name}: {exc}") from None
        if jsondiff.absent_in(entry.properties, path) or not parts:
            raise ValidationError(f"{name}{path}: no such property.")
        before = {"schema": entry.schema, "properties": deepcopy(entry.properties), "replace": entry.replace}
        props = deepcopy(entry.properties)
        try:
            pointers.delete_value(props, parts)
        except (IndexError, KeyError, ValueError, TypeError):
            raise ValidationError(
                f"{name}{path}: remove a list item by its index (such as /Tags/0), not by its key."
            ) from None
        entry.properties = props
        others = [e for e in cs.entries.all() if e.name != name]
        _validate(cs, [*others, entry], name, entry.schema, props)
        _save_entry(cs, entry, user, "component.edited", before)
    return entry


def delete_component(change_set, user, name, check_dependents=True):
    with transaction.atomic():
        cs = _lock(change_set, user)
        entry, _ = _entry_for(cs, name)
        if entry is None or entry.op == EntryOp.DELETE:
            raise NotFound(f"No component named {name!r} in change set #{cs.pk}.")
        before = {"schema": entry.schema, "properties": entry.properties, "replace": entry.replace}
        if entry.op == EntryOp.ADD:
            if check_dependents:
                others = [e for e in cs.entries.all() if e.name != name]
                _raise_if_subscribed(graph.GraphView(cs.workspace, cs, entries=others), name)
            entry.delete()
            Subscription.objects.filter(change_set=cs, consumer_name=name).delete()
            lifecycle.revise(cs, user)
            audit.record("component.add_reverted", actor=user, change_set=cs, target=name, before=before)
            return None
        entry.op, entry.replace = EntryOp.DELETE, False
        entry.properties = deepcopy(entry.base_properties or {})
        _save_entry(cs, entry, user, "component.deleted", before)
        if check_dependents:
            _raise_if_dangling(cs, only=name)
    return entry


def _raise_if_dangling(cs, only=None, view=None):
    problems = dangling_subscriptions(view or graph.GraphView(cs.workspace, cs))
    problems = [p for p in problems if only is None or p["component"] == only]
    if problems:
        errors = [{"path": p["component"], "message": p["message"]} for p in problems]
        raise ValidationError(
            f"Cannot delete {problems[0]['component']}: {problems[0]['message']}.", errors=errors
        )


def _raise_if_subscribed(view, name):
    """Refuse to take away `name` while other components of `view` still read it."""
    readers = [
        f"{consumer}{source.target}"
        for consumer, source in view.consumers_of([name]).get(name, [])
        if consumer != name and view.exists(consumer)
    ]
    if readers:
        raise ValidationError(
            f"Cannot revert {name}: {', '.join(readers)} still subscribes to it; remove those subscriptions first.",
            errors=[{"path": r, "message": f"subscribes to {name}"} for r in readers],
        )


def revert_component(change_set, user, name):
    """Drop the change set's row for `name`: the component is as in HEAD again."""
    with transaction.atomic():
        cs = _lock(change_set, user)
        entry = cs.entries.filter(name=name).first()
        if entry is None:
            raise NotFound(f"Change set #{cs.pk} does not change {name!r}.")
        remaining = [e for e in cs.entries.all() if e.name != name]
        view = graph.GraphView(cs.workspace, cs, entries=remaining)
        if entry.op != EntryOp.ADD:
            graph.raise_if_errors(name, graph.check_subscriptions(view, name, entry.base_properties or {}))
        else:
            _raise_if_subscribed(view, name)
        before = {"op": entry.op, "properties": entry.properties}
        entry.delete()
        Subscription.objects.filter(change_set=cs, consumer_name=name).delete()
        lifecycle.revise(cs, user)
        audit.record("component.reverted", actor=user, change_set=cs, target=name, before=before)


def spec_components(spec):
    """The spec's components, with its sugar (`pipelines:`) turned into the portal types it stands for."""
    items = list(spec.components)
    names = {i.name for i in items}
    for key, to_component in registry.spec_sugar.items():
        for entry in getattr(spec, key):
            c = to_component(entry)
            if c["name"] in names:
                raise ValidationError(f"{c['name']} is listed both as a component and as a pipeline.")
            names.add(c["name"])
            items.append(ComponentSpec(name=c["name"], schema=c["schema"], properties=c["properties"]))
    return items


def apply_spec(change_set, user, spec, validate=True):
    """Upsert every component of a portal.spec.Spec into the change set, all or nothing.

    validate=False leaves the subscription and schema checks of the result to a merge
    that follows in the same transaction (`workspace import`): it checks them all."""
    errors = []
    components = spec_components(spec)
    with transaction.atomic():
        _lock(change_set, user)  # the editor and state checks, even for an empty spec
        if spec.change_set:
            update_description(
                change_set,
                user,
                problem=spec.change_set.get("problem"),
                solution=spec.change_set.get("solution"),
            )
        upserts = [item for item in components if not item.delete]
        for item in components:
            try:
                if item.delete:
                    delete_component(change_set, user, item.name, check_dependents=False)
            except ValidationError as exc:
                errors.extend(
                    {"path": f"{item.name}{e['path']}", "message": e["message"]} for e in exc.errors
                )
                if not exc.errors:
                    errors.append({"path": item.name, "message": exc.message})
            except NotFound as exc:
                errors.append({"path": item.name, "message": exc.message})
        cs = _lock(change_set, user)
        entries = {e.name: e for e in cs.entries.all()}
        heads = Component.objects.filter(workspace=cs.workspace, name__in=[i.name for i in upserts])
        for head in heads:
            entries.setdefault(head.name, _entry_from_head(cs, head))
        saved = []
        for item in upserts:
            try:
                if not (item.name or "").strip():
                    raise ValidationError("A component needs a name.")
                saved.append(
                    _upserted(
                        cs,
                        entries.get(item.name),
                        item.name,
                        item.schema,
                        item.properties,
                        item.replace or None,
                        False,
                    )
                )
            except ValidationError as exc:
                errors.extend(
                    {"path": f"{item.name}{e['path']}", "message": e["message"]} for e in exc.errors
                )
                if not exc.errors:
                    errors.append({"path": item.name, "message": exc.message})
        if saved and not errors:
            _save_entries(cs, saved, user)
        if validate and not errors:
            cs = ChangeSet.objects.get(pk=change_set.pk)
            view = graph.GraphView(cs.workspace, cs)
            for item in components:
                entry = view.entries.get(item.name)
                if not item.delete and entry is not None:
                    for e in graph.validation_errors(view, item.name, entry.schema, entry.properties):
                        errors.append({"path": f"{item.name}{e['path']}", "message": e["message"]})
            if not errors:
                try:
                    _raise_if_dangling(cs, view=view)
                except ValidationError as exc:
                    errors.extend(exc.errors)
        if errors:
            transaction.set_rollback(True)
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationError(
            f"The spec was not applied: {first['path']}: {first['message']}{more}", errors=errors
        )
    return ChangeSet.objects.get(pk=change_set.pk)


def spec_warnings(spec):
    """Warnings, not errors, about a spec: each secret it writes as a literal."""
    return [
        warning
        for item in spec_components(spec)
        if not item.delete
        for warning in literal_secret_warnings(
            item.name, item.properties or {}, write_only_for(item.schema) if item.schema else []
        )
    ]


# --- Diff -----------------------------------------------------------------------------------


@dataclass
class ComponentDiff:
    name: str
    schema: str
    op: str  # added | modified | deleted | replaced
    component_id: str
    replace: bool = False
    changes: list = field(default_factory=list)  # jsondiff.Change
    conflicts: list = field(default_factory=list)
    before: dict = field(default=None, repr=False)  # whole documents, to mask values in context
    after: dict = field(default=None, repr=False)

    def as_dict(self, masked=True):
        changes = [c.as_dict() for c in self.changes]
        conflicts = self.conflicts
        if masked:
            write_only = write_only_for(self.schema)
            changes = mask_changes(changes, write_only, self.before, self.after)
            conflicts = [masked_conflict(c, write_only) for c in conflicts]
        return {
            "name": self.name,
            "schema": self.schema,
            "op": self.op,
            "component_id": self.component_id,
            "replace": self.replace,
            "changes": changes,
            "conflicts": conflicts,
        }


def diff(change_set):
    """Per component and per JSON path, how the change set differs from HEAD (or, once
    merged, from the HEAD it was merged into).

    Subscriptions appear as subscriptions ({"$source": ...}), not as resolved values.
    """
    entries = list(change_set.entries.all())
    merged = change_set.merged_version is not None
    heads = (
        {}
        if merged
        else {
            c.id: c
            for c in Component.objects.filter(
                workspace=change_set.workspace, id__in=[e.component_id for e in entries]
            )
        }
    )
    out = []
    for e in entries:
        head = heads.get(e.component_id)
        old = {} if e.op == EntryOp.ADD else (head.properties if head else (e.base_properties or {}))
        new = {} if e.op == EntryOp.DELETE else e.properties
        changes = jsondiff.changes(old, new)
        if e.op == EntryOp.EDIT and not changes and not e.replace and not e.conflicts:
            continue
        op = {EntryOp.ADD: "added", EntryOp.DELETE: "deleted"}.get(
            e.op, "replaced" if e.replace else "modified"
        )
        out.append(
            ComponentDiff(
                e.name, e.schema, op, str(e.component_id), e.replace, changes, e.conflicts, old, new
            )
        )
    return out


# --- Rebase and conflicts -------------------------------------------------------------------


def is_behind(change_set):
    return change_set.base_version != change_set.workspace.head_version


def rebase(change_set, user=None):
    """Bring the change set onto the current HEAD.

    Paths changed only in HEAD are merged into the change set; paths changed on both
    sides become conflicts on the entry. Returns every open conflict of the change set.
    """
    with transaction.atomic():
        cs = ChangeSet.objects.select_for_update().select_related("workspace").get(pk=change_set.pk)
        ws = cs.workspace
        if user is not None:
            require_role(user, ws, Role.EDITOR)
        if cs.base_version == ws.head_version:
            return open_conflicts(cs)
        entries = list(cs.entries.all())
        heads = {
            c.id: c for c in Component.objects.filter(workspace=ws, id__in=[e.component_id for e in entries])
        }
        by_name = {
            c.name: c
            for c in Component.objects.filter(
                workspace=ws, name__in=[e.name for e in entries if e.op == EntryOp.ADD]
            )
        }
        for e in entries:
            _rebase_entry(e, heads.get(e.component_id), by_name.get(e.name), ws)
        old_base = cs.base_version
        cs.base_version = ws.head_version
        cs.save(update_fields=["base_version", "updated_at"])
        graph.reindex(
            ws, {e.name: e.properties for e in entries if e.pk and e.op != EntryOp.DELETE}, change_set=cs
        )
        conflicts = open_conflicts(cs)
        audit.record(
            "changeset.rebased",
            actor=user,
            change_set=cs,
            target=f"change set #{cs.pk}",
            before={"base_version": old_base},
            after={"base_version": cs.base_version, "conflicts": len(conflicts)},
        )
    return conflicts


def _rebase_entry(e, head, same_name, ws):
    if e.op == EntryOp.ADD:
        if same_name is not None:
            e.conflicts = [
                {
                    "path": "/",
                    "kind": "name_taken",
                    "base": None,
                    "head": same_name.properties,
                    "mine": e.properties,
                    "head_absent": False,
                    "mine_absent": False,
                }
            ]
            e.save(update_fields=["conflicts", "updated_at"])
        return
    base = e.base_properties or {}
    if head is None:
        if e.op == EntryOp.DELETE:
            e.delete()  # deleted on both sides
            return
        e.conflicts = [
            {
                "path": "/",
                "kind": "deleted_in_head",
                "base": base,
                "head": None,
                "mine": e.properties,
                "head_absent": True,
                "mine_absent": False,
            }
        ]
        e.save(update_fields=["conflicts", "updated_at"])
        return
    if head.properties == base:
        e.base_version = head.version
        e.save(update_fields=["base_version", "updated_at"])
        return
    if e.op == EntryOp.DELETE:
        e.conflicts = [
            {
                "path": "/",
                "kind": "changed_in_head",
                "base": base,
                "head": head.properties,
                "mine": None,
                "head_absent": False,
                "mine_absent": True,
            }
        ]
        e.save(update_fields=["conflicts", "updated_at"])
        return
    merged, conflicts = jsondiff.three_way(base, head.properties, e.properties)
    e.properties = merged
    found = {c["path"] for c in conflicts}
    for kept in e.conflicts:  # unresolved from an earlier rebase: still open, against HEAD now
        if kept["path"] not in found:
            now = jsondiff.value_at(head.properties, kept["path"])
            conflicts.append(
                {
                    **kept,
                    "head": None if now is jsondiff.ABSENT else now,
                    "head_absent": now is jsondiff.ABSENT,
                }
            )
    e.conflicts = conflicts
    e.base_properties = deepcopy(head.properties)
    e.base_version = head.version
    e.save()


def open_conflicts(cs):
    return [{"component": e.name, **c} for e in cs.entries.all() for c in e.conflicts]


def resolve_conflict(change_set, user, name, path, take):
    """Resolve one conflict by taking HEAD's value ("head") or keeping the change set's ("mine")."""
    if take not in ("head", "mine"):
        raise ValidationError("Resolve a conflict with take='head' or take='mine'.")
    with transaction.atomic():
        cs = _lock(change_set, user)
        entry = cs.entries.filter(name=name).first()
        conflict = next((c for c in (entry.conflicts if entry else []) if c["path"] == path), None)
        if conflict is None:
            raise NotFound(f"No conflict at {name}{path} in change set #{cs.pk}.")
        head = Component.objects.filter(workspace=cs.workspace, id=entry.component_id).first()
        kind = conflict.get("kind")
        before = {"conflict": conflict}
        if kind == "name_taken":
            if take == "head":
                return _drop_entry(cs, entry, user, before)
            _edit_instead(entry, _head(cs.workspace, name))
        elif kind == "deleted_in_head":
            if take == "head":
                return _drop_entry(cs, entry, user, before)
            taken = _head(cs.workspace, name)
            if taken is not None:  # HEAD deleted it and added another under the same name
                _edit_instead(entry, taken)
            else:
                entry.op, entry.base_properties = EntryOp.ADD, None  # recreate it
        elif kind == "changed_in_head":
            if take == "head":
                return _drop_entry(cs, entry, user, before)
            entry.base_properties = deepcopy(head.properties)
        elif take == "head":
            props = deepcopy(entry.properties)
            change = jsondiff.Change(
                path, "deleted" if conflict["head_absent"] else "modified", None, conflict["head"]
            )
            entry.properties = jsondiff.apply_changes(props, [change])
        entry.conflicts = [c for c in entry.conflicts if c["path"] != path]
        others = [e for e in cs.entries.all() if e.name != name]
        if entry.op != EntryOp.DELETE:
            _validate(cs, [*others, entry], name, entry.schema, entry.properties)
        _save_entry(cs, entry, user, "conflict.resolved", before)
    return entry


def _edit_instead(entry, taken):
    """Keep mine on a name HEAD now holds: the entry becomes an edit of HEAD's component."""
    if taken.schema != entry.schema:
        raise ValidationError(
            f"{entry.name}: HEAD's {entry.name} is a {taken.schema}, yours a {entry.schema}; "
            "keeping yours would change its type. Take HEAD's, or add yours under another name."
        )
    entry.op, entry.component_id = EntryOp.EDIT, taken.id
    entry.base_properties, entry.base_version, entry.base_name = (
        deepcopy(taken.properties),
        taken.version,
        taken.name,
    )


def _drop_entry(cs, entry, user, before):
    entry.delete()
    Subscription.objects.filter(change_set=cs, consumer_name=entry.name).delete()
    lifecycle.revise(cs, user)
    audit.record(
        "conflict.resolved",
        actor=user,
        change_set=cs,
        target=entry.name,
        before=before,
        after={"take": "head"},
    )
    return None


# --- Merge ----------------------------------------------------------------------------------


def merge_problems(view):
    """What would make HEAD wrong if this change set were merged as `view` sees it: cycles,
    subscriptions to what will not exist, resolved values their schema refuses, names
    taken. [{"path", "message"}], [] when the merge may go ahead."""
    problems = []
    taken = {
        c.name
        for c in view.head_components([n for n, e in view.entries.items() if e.op != EntryOp.DELETE]).values()
        if c is not None
    }
    for name, e in view.entries.items():
        if e.op == EntryOp.DELETE:
            continue
        head = view.head_components([name])[name]
        if e.op == EntryOp.ADD and name in taken:
            problems.append({"path": name, "message": f"HEAD already has a component named {name!r}"})
        elif e.op == EntryOp.EDIT and (head is None or head.id != e.component_id):
            problems.append(
                {"path": name, "message": f"HEAD no longer has this {name!r}; rebase and resolve"}
            )
        for error in graph.validation_errors(view, name, e.schema, e.properties):
            problems.append({"path": f"{name}{error['path']}", "message": error["message"]})
    for name in sorted(view.reached()):
        head, new = view.head_components([name])[name], view.view(name)
        if head is None or new is None:
            continue
        if (new.domain, new.pending) == (head.domain, head.pending) and not new.pending:
            continue
        sources = view.sources_for(name, head.properties)
        known = graph.known_values(view, head.properties, new.pending, sources)
        for error in graph.resolved_schema_errors(
            head.schema, head.properties, new.domain, new.pending, known, sources
        ):
            problems.append({"path": f"{name}{error['path']}", "message": error["message"]})
    problems.extend({"path": p["component"], "message": p["message"]} for p in dangling_subscriptions(view))
    return problems


def _write_head(ws, view, version):
    """Write the change set's resolution into HEAD in bulk: its rows, and every HEAD
    component whose resolved value the rows move."""
    entries = list(view.entries.values())
    now = timezone.now()
    Component.objects.filter(
        workspace=ws, pk__in=[e.component_id for e in entries if e.op == EntryOp.DELETE]
    ).delete()
    added, dirty = [], []
    for e in entries:
        resolved = view.view(e.name)
        if e.op == EntryOp.ADD:
            added.append(
                Component(
                    id=e.component_id,
                    workspace=ws,
                    name=e.name,
                    schema=e.schema,
                    properties=e.properties,
                    domain=resolved.domain,
                    pending=resolved.pending,
                    version=version,
                )
            )
        elif e.op == EntryOp.EDIT:
            head = view.head_components([e.name])[e.name]
            head.properties, head.version = e.properties, version
            head.domain, head.pending, head.updated_at = resolved.domain, resolved.pending, now
            dirty.append(head)
    for name in view.reached():
        head, resolved = view.head_components([name])[name], view.view(name)
        if (
            head is not None
            and resolved is not None
            and (resolved.domain, resolved.pending)
            != (
                head.domain,
                head.pending,
            )
        ):
            head.domain, head.pending, head.updated_at = resolved.domain, resolved.pending, now
            dirty.append(head)
    Component.objects.bulk_create(added, batch_size=1000)
    bulk.update(Component, dirty, ["properties", "domain", "pending", "version", "updated_at"])
    graph.reindex(ws, {e.name: None if e.op == EntryOp.DELETE else e.properties for e in entries}, graph=view)
    if len(entries) >= BULK_MERGE:
        bulk.analyze(Component, Subscription)


# A merge of this many rows (an import) changes the tables enough to mislead the query
# planner (an edit's propagation then took 2 ms a hop instead of 0.1 ms): it refreshes the
# planner's statistics, as Postgres recommends after a bulk load (some 50 ms).
BULK_MERGE = 1000


def merge(change_set, user):
    """Make the change set HEAD, whole or not at all. Returns the new HEAD version.

    Rebases first if HEAD moved; refuses while conflicts remain.
    """
    with transaction.atomic():
        ws = Workspace.objects.select_for_update().get(pk=change_set.workspace_id)
        cs = ChangeSet.objects.select_for_update().select_related("workspace").get(pk=change_set.pk)
        require_role(user, ws, Role.EDITOR)
        if cs.merged_version is not None:
            raise ConflictError(f"Change set #{cs.pk} is already merged (HEAD version {cs.merged_version}).")
        # An apply merges the change set it is applying; anything else closes it as merged.
        direct = cs.status != ChangeSetStatus.APPLYING
        if direct:
            lifecycle.check(cs, "merge", user)
        if cs.base_version != ws.head_version:
            rebase(cs, user)
            cs.refresh_from_db()
        view = graph.GraphView(ws, cs)
        conflicts = [{"component": e.name, **c} for e in view.entries.values() for c in e.conflicts]
        if conflicts:
            paths = ", ".join(f"{c['component']}{c['path']}" for c in conflicts[:5])
            raise ConflictError(f"Change set #{cs.pk} has {len(conflicts)} unresolved conflict(s): {paths}.")
        problems = merge_problems(view)
        if problems:
            first = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ValidationError(
                f"Change set #{cs.pk} cannot be merged: {first['path']}: {first['message']}{more}",
                errors=problems,
            )
        version = ws.head_version + 1
        entries = list(view.entries.values())
        _write_head(ws, view, version)
        Subscription.objects.filter(change_set=cs).delete()
        ws.head_version = version
        ws.save(update_fields=["head_version"])
        cs.merged_version = version
        cs.base_version = version
        cs.save(update_fields=["merged_version", "base_version", "updated_at"])
        if direct:
            lifecycle.move(cs, "merge", user, record=False)
        audit.record(
            "changeset.merged",
            actor=user,
            change_set=cs,
            target=f"change set #{cs.pk} {cs.name}",
            after={
                "head_version": version,
                "components": [f"{e.op} {e.name}" for e in entries],
                "at": timezone.now().isoformat(),
            },
        )
    return version
