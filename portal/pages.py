"""What the pages show: the queries and the masking behind each page, kept out of the
views so that the views stay short and the query count stays flat.

Every value that reaches a template passes through `portal.secrets` (`mask` for a whole
document, `mask_at` for a value found at a path of one, `masked_change` for a diff row),
with the component type's write-only paths.
"""

from types import SimpleNamespace

from django.db.models import Count, F, Q

from . import approvals, changesets, graph, jsondiff, lifecycle, paths, pointers
from .access import role_of
from .changesets import ComponentDiff
from .errors import ValidationError
from .models import (
    EDITABLE_STATUSES,
    AuditEvent,
    ChangeSet,
    ChangeSetEntry,
    ChangeSetStatus,
    Component,
    EntryOp,
    Membership,
    Role,
    Subscription,
)
from .plan import plan_actions
from .schemas import get_schema, write_only_for
from .secrets import mask, mask_at, mask_event_data, masked_changes, masked_conflict

OPEN_STATUSES = [
    ChangeSetStatus.OPEN,
    ChangeSetStatus.NEEDS_APPROVAL,
    ChangeSetStatus.APPROVED,
    ChangeSetStatus.REJECTED,
    ChangeSetStatus.APPLYING,
    ChangeSetStatus.FAILED,
]
HISTORY_LIMIT = 50


# --- Workspace home ---------------------------------------------------------------------------


def components(workspace):
    """HEAD components for the tables, without their (large) JSON documents."""
    return (
        Component.objects.filter(workspace=workspace)
        .only("id", "name", "schema", "resource_status", "resource_id", "drift", "pending", "updated_at")
        .order_by("name")
    )


def component_types(workspace):
    return list(
        Component.objects.filter(workspace=workspace)
        .order_by("schema")
        .values_list("schema", flat=True)
        .distinct()
    )


def _open(rows):
    """Open change sets; one merged without an apply (a spec import) keeps `open` but is done."""
    return rows.filter(status__in=OPEN_STATUSES).filter(
        Q(merged_version__isnull=True) | Q(status__in=[ChangeSetStatus.APPLYING, ChangeSetStatus.FAILED])
    )


def open_change_sets(workspace):
    return list(
        _open(ChangeSet.objects.filter(workspace=workspace))
        .select_related("author")
        .annotate(entry_count=Count("entries"))
        .order_by("-updated_at")
    )


def waiting_for(user):
    """The change sets waiting for `user`, across their workspaces: those they may approve
    (they are an approver there, never edited it, as approvals.is_editor says, and have not
    decided on this revision yet), and their own that were rejected or have conflicts to
    resolve. Failed applies and deployments are the apps' panels."""
    approver_in = [m.workspace_id for m in Membership.objects.filter(user=user) if m.has_role(Role.APPROVER)]
    to_approve = (
        ChangeSet.objects.filter(workspace_id__in=approver_in, status=ChangeSetStatus.NEEDS_APPROVAL)
        .exclude(author=user)
        .exclude(editors=user)
        .exclude(approvals__user=user, approvals__revision=F("revision"))
        .select_related("workspace", "author")
        .order_by("updated_at")
    )
    mine = (
        ChangeSet.objects.filter(author=user, workspace__memberships__user=user, merged_version__isnull=True)
        .exclude(status__in=[ChangeSetStatus.ABANDONED, ChangeSetStatus.MERGED, ChangeSetStatus.APPLIED])
        .annotate(conflict_count=Count("entries", filter=~Q(entries__conflicts=[])))
        .filter(Q(status=ChangeSetStatus.REJECTED) | Q(conflict_count__gt=0))
        .select_related("workspace")
        .order_by("-updated_at")
    )
    return {"to_approve": list(to_approve), "mine": list(mine)}


# --- Change sets ------------------------------------------------------------------------------


def change_sets(workspace, status=""):
    rows = ChangeSet.objects.filter(workspace=workspace).select_related("author")
    if status == "active":
        rows = _open(rows)
    elif status:
        rows = rows.filter(status=status)
    return rows.annotate(entry_count=Count("entries")).order_by("-created_at", "-id")


def _merged_diff(entries):
    """The diff of a merged change set against the HEAD it was merged onto (its entries'
    base snapshots): after the merge, HEAD holds the change set's own properties."""
    out = []
    for e in entries:
        if e.op == EntryOp.ADD:
            op, old, new = "added", {}, e.properties
        elif e.op == EntryOp.DELETE:
            op, old, new = "deleted", e.base_properties or {}, {}
        else:
            op, old, new = ("replaced" if e.replace else "modified"), e.base_properties or {}, e.properties
        changes = jsondiff.changes(old, new)
        if changes or e.replace or e.op != EntryOp.EDIT:
            out.append(
                ComponentDiff(
                    e.name, e.schema, op, str(e.component_id), e.replace, changes, e.conflicts, old, new
                )
            )
    return out


def diff_rows(cs, entries, heads):
    """Per component and per path (list items by key), masked in the documents each side
    came from."""
    diffs = _merged_diff(entries.values()) if cs.merged_version is not None else changesets.diff(cs)
    out = []
    for d in diffs:
        entry = entries.get(d.name)
        head = heads.get(entry.component_id) if entry else None
        base = (entry.base_properties if entry else None) or {}
        new_doc = {} if d.op == "deleted" else (entry.properties if entry else {})
        wo = write_only_for(d.schema)
        out.append(
            {
                "name": d.name,
                "schema": d.schema,
                "op": d.op,
                "replace": d.replace,
                "changes": masked_changes(d.before, d.after, wo) if d.changes else [],
                "conflicts": [
                    masked_conflict(c, wo, head.properties if head else None, new_doc, base)
                    for c in d.conflicts
                ],
                "entry_op": entry.op if entry else None,
            }
        )
    return out


def plan_rows(plan, entries, heads_by_name):
    rows = []
    for a in plan.actions:
        entry, head = entries.get(a.component), heads_by_name.get(a.component)
        old_doc = head.properties if head else {}
        new_doc = entry.properties if entry and entry.op != EntryOp.DELETE else {}
        rows.append(
            {
                "key": a.key,
                "kind": a.kind,
                "label": a.label,
                "component": a.component,
                "schema": a.schema,
                "reason": a.reason,
                "replace_paths": [_key_path(p, old_doc, new_doc) for p in a.replace_paths],
                "downtime": a.downtime,
                "replacement": a.replacement,
                "alternative": a.alternative,
                "snapshot": a.snapshot,
                "held": {_key_path(p, old_doc, new_doc): why for p, why in a.held.items()},
                "waits_for": a.waits_for,
                "local": a.local,
                "changes": masked_changes(a.before, a.after, a.secret_paths) if a.changes else [],
            }
        )
    return rows


def _key_path(pointer, *documents):
    try:
        return pointers.key_path(pointer, *documents)
    except ValueError:  # a schema pattern with "*", not a pointer into the documents
        return pointer


def status_badge(cs, approval_blockers):
    """(css class, words) of the change set's status as its page shows it: an approval that
    went stale since the lifecycle moved to approved reads as what it is, needing approval."""
    if cs.status == ChangeSetStatus.APPROVED and approval_blockers:
        return ChangeSetStatus.NEEDS_APPROVAL, "approved — stale"
    return cs.status, cs.get_status_display().lower()


def change_set_page(cs, user):
    """Everything the change-set page shows, in a number of queries that depends on the
    change set's size, not on the workspace's."""
    ws = cs.workspace
    entries = {e.name: e for e in cs.entries.all()}
    heads = {
        c.id: c
        for c in Component.objects.filter(workspace=ws, id__in=[e.component_id for e in entries.values()])
    }
    merged = cs.merged_version is not None
    plan = None if merged else plan_actions(cs)
    # A merged change set's approvals are checked against the plan its apply ran.
    run = cs.apply_runs.order_by("-id").first() if merged else None
    frozen = SimpleNamespace(checksum=run.plan_checksum) if run else None
    approvals_list = approvals.approvals_state(cs, plan or frozen)
    role = role_of(user, ws)
    can_edit = role.is_editor and cs.is_editable
    moves = lifecycle.allowed(cs, user)
    approval_blockers = [] if merged else approvals.approval_blockers(cs, plan)
    return {
        "cs": cs,
        "status_badge": status_badge(cs, approval_blockers),
        "workspace": ws,
        "role": role,
        "names": component_names(cs) if can_edit else [],
        "entries": entries,
        "diff": diff_rows(cs, entries, heads),
        "plan": plan,
        "plan_rows": plan_rows(plan, entries, {h.name: h for h in heads.values()}) if plan else [],
        "approvals": approvals_list,
        "approval_blockers": approval_blockers,
        "behind": not merged and changesets.is_behind(cs),
        "conflict_count": sum(len(e.conflicts) for e in entries.values()),
        "events": list(
            AuditEvent.objects.filter(change_set=cs)
            .select_related("actor")
            .order_by("-created_at", "-id")[:25]
        ),
        "can_edit": can_edit,
        "can_request": "request_approval" in moves and bool(entries),
        "can_decide": "approve" in moves and not approvals.is_editor(cs, user),
        "checksum": approvals.checksum(cs, plan) if plan else "",
        "is_author": user.pk == cs.author_id,
    }


# --- Components -------------------------------------------------------------------------------


def component_in_change_set(cs, name):
    """(schema, properties, op) of `name` as the change set has it, or None."""
    entry = cs.entries.filter(name=name).first()
    if entry is not None:
        return (
            None
            if entry.op == EntryOp.DELETE
            else SimpleNamespace(schema=entry.schema, properties=entry.properties, op=entry.op)
        )
    head = (
        Component.objects.filter(workspace_id=cs.workspace_id, name=name).only("schema", "properties").first()
    )
    return None if head is None else SimpleNamespace(schema=head.schema, properties=head.properties, op=None)


def component_names(cs):
    """Names of the components the change set sees (HEAD with its additions and deletes)."""
    names = set(Component.objects.filter(workspace_id=cs.workspace_id).values_list("name", flat=True))
    for name, op in cs.entries.values_list("name", "op"):
        if op == EntryOp.DELETE:
            names.discard(name)
        else:
            names.add(name)
    return sorted(names)


def source_paths(cs, name):
    """[(path, preview)] a subscription to `name` can read, deep and list items by key:
    what AWS reported (/resource_value, its schema's attributes not observed yet marked so),
    its desired properties resolved (/domain) and /si; masked as its page masks them."""
    graph_view = graph.GraphView(cs.workspace, cs)
    view = graph_view.view(name)
    if view is None:
        return []
    try:
        ts = get_schema(view.schema)
        attributes = sorted(
            set(ts.property_names) | {p.split("/")[1] for p in ts.read_only if p.count("/") == 1}
        )
    except ValidationError:  # an unknown type still offers what it holds
        attributes = []
    hidden = write_only_for(view.schema) + graph.derived_secret_paths(graph_view, name)
    observed = mask(view.resource_value or {}, hidden)
    found = paths.options(observed, "/resource_value", [f"/resource_value/{a}" for a in attributes])
    found += paths.options(mask(view.domain or {}, hidden), "/domain")
    found += [(f"/si/{key}", paths.preview(value)) for key, value in view.si.items() if key != "schema"]
    return list(dict(found).items())[: paths.MAX_PATHS]


def change_sets_to_edit_in(workspace, name, limit=50):
    """The change sets an editor can open `name` in from its page: open to edits, not
    deleting it; the latest first."""
    deleting = ChangeSetEntry.objects.filter(name=name, op=EntryOp.DELETE).values("change_set_id")
    return list(
        ChangeSet.objects.filter(
            workspace=workspace, status__in=EDITABLE_STATUSES, merged_version__isnull=True
        )
        .exclude(pk__in=deleting)
        .order_by("-updated_at", "-id")[:limit]
    )


def component_page(workspace, name, cs=None):
    """A HEAD component (or the change set's version of it) with its history."""
    head = Component.objects.filter(workspace=workspace, name=name).first()
    entry = cs.entries.filter(name=name).first() if cs else None
    if head is None and entry is None:
        return None
    schema = entry.schema if entry else head.schema
    wo = write_only_for(schema) + graph.derived_secret_paths(graph.GraphView(workspace, cs), name)
    applied = head.applied if head else None
    properties = entry.properties if entry else head.properties
    drift = [
        {
            "path": d.get("path", "/"),
            "desired": mask_at(d.get("desired"), d.get("path", ""), wo, applied),
            "observed": mask_at(d.get("observed"), d.get("path", ""), wo, head.resource_value),
        }
        for d in (head.drift if head else [])
    ]
    return {
        "name": name,
        "schema": schema,
        "head": head,
        "entry": entry,
        "properties": mask(properties, wo),
        "domain": mask(head.domain, wo) if head and not entry else None,
        "resource_value": mask(head.resource_value, wo) if head and head.resource_value is not None else None,
        "sources": [
            {"target": pointers.key_path(s.target, properties), "component": s.component, "path": s.path}
            for s in graph.find_sources(properties or {})
        ],
        "subscribers": _subscribers(workspace, name),
        "pending": [pointers.key_path(p, head.domain) for p in head.pending] if head and head.pending else [],
        "drift": [{**d, "path": _key_path(d["path"], applied)} if d["path"] != "/" else d for d in drift],
        "events": list(
            AuditEvent.objects.filter(workspace=workspace, target=name)
            .select_related("actor", "change_set")
            .order_by("-created_at", "-id")[:HISTORY_LIMIT]
        ),
        "component_id": head.id if head else entry.component_id,
    }


def _subscribers(workspace, name):
    """HEAD's subscriptions to `name`, each consumer's property by key."""
    rows = list(
        Subscription.objects.filter(workspace=workspace, change_set=None, producer_name=name)
        .order_by("consumer_name", "target_path")
        .values("consumer_name", "target_path", "source_path")[:HISTORY_LIMIT]
    )
    documents = dict(
        Component.objects.filter(
            workspace=workspace, name__in={r["consumer_name"] for r in rows}
        ).values_list("name", "properties")
    )
    for row in rows:
        row["target_path"] = _key_path(row["target_path"], documents.get(row["consumer_name"]) or {})
    return rows


# --- Audit ------------------------------------------------------------------------------------


def audit_events(workspace, change_set=None):
    rows = AuditEvent.objects.filter(workspace=workspace).select_related("actor", "change_set")
    if change_set is not None:
        rows = rows.filter(change_set=change_set)
    return rows.order_by("-created_at", "-id")


def audit_verbs(workspace):
    return list(
        AuditEvent.objects.filter(workspace=workspace)
        .order_by("verb")
        .values_list("verb", flat=True)
        .distinct()
    )


def audit_actors(workspace):
    return sorted(
        set(workspace.memberships.values_list("user__username", flat=True))
        | set(
            AuditEvent.objects.filter(workspace=workspace, actor__isnull=False)
            .values_list("actor__username", flat=True)
            .distinct()
        )
    )


def masked_events(events, workspace):
    """Audit data masked again with the write-only paths of each event's component type
    (conflict values are recorded at their path, where a whole-document mask misses them)."""
    targets = {e.target for e in events}
    schemas = dict(
        Component.objects.filter(workspace=workspace, name__in=targets).values_list("name", "schema")
    )
    out = []
    for e in events:
        data = [d for d in (e.before, e.after) if isinstance(d, dict)]
        schema = next((d["schema"] for d in data if isinstance(d.get("schema"), str)), schemas.get(e.target))
        wo = write_only_for(schema) if schema else []
        e.masked_before, e.masked_after = mask_event_data(e.before, wo), mask_event_data(e.after, wo)
        out.append(e)
    return out
