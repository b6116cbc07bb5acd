"""Applying a change set: the run and its action rows, the per-workspace queue, and the
execution of one action (workers/scheduler.py decides which actions run when).

Rows are written before anything is enqueued; every step is a conditional update so
that duplicate messages, two dispatchers or a worker that died half way cannot run an
action twice or leave a wrong state. Celery tasks (workers/tasks.py) only call in here.
"""

import logging
import time
from copy import deepcopy
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from portal import approvals, audit, bulk, changesets, graph, lifecycle, pointers, statements
from portal.access import require_role
from portal.errors import ConflictError, PortalError, ValidationError
from portal.models import ChangeSet, ChangeSetStatus, Component, ResourceStatus, Role, Workspace
from portal.plan import HOLDS_DATA, TASK_DEFINITION, plan_actions
from portal.schemas import write_only_for
from portal.secrets import mask, mask_text

from . import jobs, scheduler
from .aws import AwsTarget, Clients, take_throttled_count
from .models import DONE, Action, ActionStatus, ApplyRun, RunStatus
from .providers.base import ProviderError, ResourceMissing, StillWaiting, provider_for
from .providers.common import resumable_waits

log = logging.getLogger(__name__)


# --- Asking for an apply -------------------------------------------------------------------


def apply_blockers(change_set, plan=None):
    """Why this change set cannot be applied now, in words ([] when it can)."""
    blockers = []
    if change_set.merged_version is not None:
        return [f"change set #{change_set.pk} is already merged into HEAD ({change_set.status})"]
    if change_set.status not in lifecycle.TRANSITIONS["start_apply"].sources:
        return [f"change set #{change_set.pk} is {change_set.status}"]
    plan = plan or plan_actions(change_set)
    blockers.extend(f"{e['component']}: {e['message']}" for e in plan.errors)
    blockers.extend(approvals.approval_blockers(change_set, plan))
    if not plan.actions and not change_set.entries.exists():
        blockers.append("the change set changes nothing")
    return blockers


def request_apply(change_set, user):
    """Queue the change set for apply; returns the ApplyRun (queued behind any running one)."""
    with transaction.atomic():
        cs = ChangeSet.objects.select_for_update().select_related("workspace").get(pk=change_set.pk)
        require_role(user, cs.workspace, Role.EDITOR)
        if changesets.is_behind(cs):
            changesets.rebase(cs, user)
            cs.refresh_from_db()
        plan = plan_actions(cs)
        blockers = apply_blockers(cs, plan)
        if blockers:
            raise ConflictError(f"Change set #{cs.pk} cannot be applied: " + "; ".join(blockers) + ".")
        run = ApplyRun.objects.create(
            workspace=cs.workspace, change_set=cs, requested_by=user, plan_checksum=plan.checksum
        )
        _create_actions(run, plan)
        before = cs.status
        lifecycle.move(cs, "start_apply", user, record=False)  # the richer event follows
        audit.record(
            "changeset.apply_requested",
            actor=user,
            change_set=cs,
            target=f"apply #{run.pk}",
            before={"status": before},
            after={"status": cs.status, "run": run.pk, "actions": len(plan.actions)},
        )
        scheduler.enqueue_start(cs.workspace_id)
    return run


def _create_actions(run, plan):
    Action.objects.bulk_create(
        [
            Action(
                run=run,
                key=a.key,
                kind=a.kind,
                component_name=a.component,
                component_id=a.component_id,
                schema=a.schema,
                reason=a.reason,
                waits_for=a.waits_for,
                follow_up=a.follow_up,
                local=a.local,
                replacement=a.replacement,
                held=a.held,
            )
            for a in plan.actions
        ]
    )


# --- The per-workspace queue ---------------------------------------------------------------


def start_next(workspace_id):
    """Start the oldest queued run of the workspace unless one is running (the apply lock)."""
    with transaction.atomic():
        ws = Workspace.objects.select_for_update().get(pk=workspace_id)
        if ApplyRun.objects.filter(workspace=ws, status=RunStatus.RUNNING).exists():
            return None
        run = ApplyRun.objects.filter(workspace=ws, status=RunStatus.QUEUED).order_by("id").first()
        if run is None:
            return None
        try:
            _merge_for_run(run)
        except PortalError as exc:
            _fail_run_before_start(run, exc.message)
            scheduler.enqueue_start(ws.pk)
            return run
        run.status, run.started_at = RunStatus.RUNNING, timezone.now()
        run.concurrency = ws.apply_concurrency or settings.PORTAL_APPLY_CONCURRENCY
        run.save(update_fields=["status", "started_at", "concurrency"])
        audit.record(
            "apply.started", actor=run.requested_by, change_set=run.change_set, target=f"apply #{run.pk}"
        )
    scheduler.dispatch(run.pk)
    return run


def _merge_for_run(run):
    """Check the plan is still the one asked for, snapshot what AWS has, merge into HEAD."""
    cs = run.change_set
    if run.kind != "apply" or cs is None:
        return
    if changesets.is_behind(cs):
        # HEAD moved since the apply was asked for (an apply queued ahead of it merged): the
        # plan is made again, and must be the one that was approved. Otherwise it stands
        # as frozen at the request, and is not made a second time.
        changesets.rebase(cs, run.requested_by)
        cs.refresh_from_db()
        if plan_actions(cs).checksum != run.plan_checksum:
            raise ConflictError(
                "HEAD moved and the plan changed since the apply was requested; review the new plan and apply again"
            )
    actions = run.actions.values_list("pk", "component_id")
    heads = {
        c[0]: c[1:]
        for c in Component.objects.filter(
            workspace=run.workspace, id__in=[component_id for _, component_id in actions]
        ).values_list("id", "resource_id", "applied", "domain")
    }
    snapshot = []
    for pk, component_id in actions:
        if component_id in heads:
            resource_id, applied, domain = heads[component_id]
            old = applied if applied is not None else domain
            snapshot.append(Action(pk=pk, physical_id=resource_id, old_properties=old))
    bulk.update(Action, snapshot, ["physical_id", "old_properties"])
    adopt = {e.component_id: e.adopt_id for e in cs.entries.exclude(adopt_id="")}
    changesets.merge(cs, run.requested_by)
    for component_id, physical_id in adopt.items():
        Component.objects.filter(pk=component_id).update(resource_id=physical_id)


def _fail_run_before_start(run, message):
    run.status, run.error, run.finished_at = RunStatus.FAILED, message, timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    run.actions.filter(status=ActionStatus.WAITING).update(
        status=ActionStatus.CANCELLED, error="the apply did not start"
    )
    if run.change_set:
        lifecycle.move_where(run.change_set_id, "finish_apply", ChangeSetStatus.FAILED)
    audit.record(
        "apply.failed",
        actor=run.requested_by,
        change_set=run.change_set,
        target=f"apply #{run.pk}",
        after={"error": message},
    )


def cancel_run(run, user):
    """Cancel a queued run (it never touched HEAD or AWS)."""
    with transaction.atomic():
        run = ApplyRun.objects.select_for_update().get(pk=run.pk)
        require_role(user, run.workspace, Role.EDITOR)
        if run.status != RunStatus.QUEUED:
            raise ConflictError(f"Apply #{run.pk} is {run.status}; only a queued apply can be cancelled.")
        run.status, run.finished_at = RunStatus.CANCELLED, timezone.now()
        run.save(update_fields=["status", "finished_at"])
        run.actions.update(status=ActionStatus.CANCELLED)
        if run.change_set:
            back = ChangeSetStatus.APPROVED if run.workspace.approvals_required else ChangeSetStatus.OPEN
            lifecycle.move_where(run.change_set_id, "cancel_apply", back, actor=user)
        audit.record(
            "apply.cancelled",
            actor=user,
            change_set=run.change_set,
            workspace=run.workspace,
            target=f"apply #{run.pk}",
        )
    return run


def _names_waited_for(action):
    """The components of the actions `action` waits for in its run."""
    graph_of_run = scheduler.action_graph(action.run)
    waited = set(graph_of_run[action.pk][1])
    return sorted({name for key, _, name in graph_of_run.values() if key in waited})


# HEAD's subscription index cannot move during an apply but by a merge, which bumps the
# workspace's HEAD version: the edges the run's propagations follow are read once per
# process and HEAD version, the run's own producers' in one query.
_EDGES = {}


def _head_edges(run):
    """A graph.HeadEdges for the run's propagations in this process (run.workspace as read
    when the action started)."""
    key = (run.pk, run.created_at, run.workspace.head_version)
    edges = _EDGES.get(key)
    if edges is None:
        if len(_EDGES) > 64:
            _EDGES.clear()
        names = run.actions.values_list("component_name", flat=True)
        edges = _EDGES[key] = graph.HeadEdges(run.workspace).preload(names)
    return edges


# --- Executing one action ------------------------------------------------------------------


def execute(action_id, worker=None):
    """Claim and run one action; safe to call twice for the same id. When it succeeds and
    unblocks others, this thread goes on with one of them, claimed as it was unblocked
    (no broker round trip: a worker that dies with it leaves it running under its boot
    id, and the reaper queues it again), as long as the task is younger than the hold on
    AWS waits, so that no task runs for long."""
    started = time.monotonic()
    action = jobs.claim_row(Action, action_id, worker, extra=scheduler.RUN_NOW, started_at=timezone.now())
    while action is not None:
        young = time.monotonic() - started < settings.PORTAL_ACTION_WAIT_HOLD_SECONDS
        action = _execute_one(action, worker, goes_on=young)


def _execute_one(action, worker, goes_on):
    """Run the claimed action; returns the next one claimed for this thread, or None."""
    action.run = _run_of(action)
    deadline = action.deadline.timestamp() if action.deadline else None
    take_throttled_count()
    succeeded = 0
    try:
        performer = Performer(action)
        with resumable_waits(settings.PORTAL_ACTION_WAIT_HOLD_SECONDS, action.waiting_for, deadline):
            performer.perform()
    except StillWaiting as wait:
        _check_again_later(action, performer, wait)
        return None
    except ProviderError as exc:
        _fail(action, exc.message, exc.immutable_property or "")
    except ResourceMissing as exc:
        _fail(action, f"the resource is gone from AWS: {exc}")
    except PortalError as exc:
        _fail(action, exc.message)
    except Exception as exc:  # an action must end failed, never stuck running
        log.exception("action %s failed", action.key)
        _fail(action, f"{type(exc).__name__}: {exc}")
    else:
        succeeded = statements.update(
            Action,
            "{id} = %s AND {status} = %s",
            [action.pk, ActionStatus.RUNNING],
            status=ActionStatus.SUCCEEDED,
            finished_at=timezone.now(),
            result=performer.result,
            request=performer.request,
            waiting_for="",
            deadline=None,
        )
    throttled = take_throttled_count() > 0
    if goes_on and succeeded and not throttled:
        sole = scheduler.take_sole_waiter(action, worker)
        if sole is not None:
            return sole
    return scheduler.dispatch_ended(action.run_id, throttled, goes_on, worker)


# {run id: the run with its workspace}, read once per process: the run's actions use its
# workspace's target (region, role) as the run found it at its first action here; only
# the HEAD version, which says whether the subscription edges moved, is read at each claim.
_RUNS = {}


def _run_of(action):
    run = _RUNS.get(action.run_id)
    created_at = action.run_created_at
    if isinstance(created_at, str):  # SQLite answers a subquery's timestamp as text, in UTC
        created_at = datetime.fromisoformat(created_at).replace(tzinfo=UTC)
    if run is None or run.created_at != created_at:
        if len(_RUNS) > 64:
            _RUNS.clear()
        run = _RUNS[action.run_id] = ApplyRun.objects.select_related("workspace").get(pk=action.run_id)
    run.workspace.head_version = action.head_version_now
    return run


def _check_again_later(action, performer, wait):
    """Back to the queue with a message due in `wait.delay` seconds: the wait goes on in
    the database (what, deadline), not in a worker thread, and survives any worker. The
    lap is not an attempt; `queued_at` is when the message is due, so the reaper resends
    it only if it is that late."""
    due = timezone.now() + timedelta(seconds=wait.delay)
    with transaction.atomic():
        if Action.objects.filter(pk=action.pk, status=ActionStatus.RUNNING).update(
            status=ActionStatus.QUEUED,
            attempts=F("attempts") - 1,
            queued_at=due,
            waiting_for=wait.what[:300],
            deadline=datetime.fromtimestamp(wait.deadline, UTC),
            result=performer.result,
        ):
            scheduler.enqueue_action(action.pk, countdown=wait.delay)


def _fail(action, message, immutable_property=""):
    if immutable_property:
        message += (
            f" — AWS cannot change {immutable_property} of this {action.schema} in place; "
            "replace the component (the portal can open a change set that does it)."
        )
    Action.objects.filter(pk=action.pk, status=ActionStatus.RUNNING).update(
        status=ActionStatus.FAILED,
        finished_at=timezone.now(),
        error=mask_text(message)[:4000],
        immutable_property=immutable_property,
        waiting_for="",
        deadline=None,
    )
    Component.objects.filter(pk=action.component_id).update(resource_status=ResourceStatus.FAILED)


def strip_pending(properties, pending):
    """Drop values not known yet before a create: the whole list item that holds one (a
    security-group rule without its source is a different rule), else the key."""
    props = deepcopy(properties)
    cuts = set()
    for pointer in pending:
        parts = pointers.split(pointer)
        cut = parts
        for depth in range(len(parts) - 1, 0, -1):
            try:
                parent = pointers.resolve(props, pointers.join(parts[:depth]))
            except pointers.Missing:
                break
            if isinstance(parent, list):
                cut = parts[: depth + 1]
                break
        cuts.add(tuple(cut))
    order = sorted(cuts, key=lambda c: [(1, int(p)) if p.isdigit() else (0, p) for p in c], reverse=True)
    for cut in order:
        try:
            pointers.delete_value(props, list(cut))
        except (IndexError, KeyError, ValueError, TypeError):
            pass
    return props


class Performer:
    """Carries one action out against AWS and records what AWS answered."""

    def __init__(self, action):
        self.action = action
        self.run = action.run
        self.workspace = action.run.workspace
        self.result = dict(action.result or {})
        self.request = None
        self._producers = None

    @property
    def provider(self):
        return provider_for(self.action.schema, Clients(AwsTarget.for_workspace(self.workspace)))

    def component(self):
        """The action's HEAD row (None when HEAD dropped it). The first read brings the
        components of the actions it waited for along: the producers it reads, whose
        values say which of its paths derive from a secret (_write_only)."""
        where, params = "{id} = %s", [self.action.component_id]
        names = _names_waited_for(self.action) if self._producers is None else []
        if names:
            where += " OR ({workspace_id} = %s AND {name} IN " + statements.placeholders(len(names)) + ")"
            params += [self.workspace.pk, *names]
        rows = statements.select(Component, where, params)
        if self._producers is None:
            self._producers = [r for r in rows if r.pk != self.action.component_id]
        return next((r for r in rows if r.pk == self.action.component_id), None)

    def perform(self):
        kind = self.action.kind
        if self.action.local:
            return self._local()
        getattr(self, f"_{kind}")()

    def _save_progress(self):
        Action.objects.filter(pk=self.action.pk).update(result=self.result)

    def _local(self):
        c = self.component()
        if c is not None:
            c.resource_status = ResourceStatus.NONE if c.pending else ResourceStatus.OK
            c.save(update_fields=["resource_status"])
        self.result["computed"] = True

    def _desired(self, c):
        unresolved = [p for p in c.pending if not self._self_reference(c, p)]
        if unresolved:
            raise ValidationError(
                f"{c.name} still waits for values at {', '.join(unresolved)}: their producers have no value yet"
            )
        return strip_pending(c.domain, c.pending)

    @staticmethod
    def _self_reference(c, pointer):
        return any(s.target == pointer and s.component == c.name for s in graph.find_sources(c.properties))

    def _record(self, c, observed, sent):
        c.resource_id = observed.physical_id
        c.resource_value = observed.resource_value
        c.resource_status = ResourceStatus.OK
        c.applied = sent
        c.drift = []
        c.refreshed_at = timezone.now()
        bulk.update(
            Component,
            [c],
            ["resource_id", "resource_value", "resource_status", "applied", "drift", "refreshed_at"],
        )
        graph.propagate(self.workspace, {c.name}, roots=("resource_value",), head_edges=_head_edges(self.run))

    def _write_only(self, c):
        """The paths its recorded request masks: write-only, or derived from a secret."""
        return write_only_for(self.action.schema) + graph.derived_secret_paths(
            graph.GraphView(self.workspace).remember(c, *(self._producers or ())), c.name
        )

    def _create(self, token=None):
        c = self.component()
        if c is None:
            raise ValidationError(f"{self.action.component_name} is no longer in HEAD")
        desired = self._desired(c)
        self.request = mask({"create": desired}, [f"/create{p}" for p in self._write_only(c)])
        observed = self.provider.create(desired, token or str(c.id))
        self.result["create"] = {"physical_id": observed.physical_id}
        self._record(c, observed, desired)
        if self.action.follow_up:
            self._follow_up()

    def _follow_up(self):
        c = self.component()
        if c.pending or c.domain == c.applied:
            return
        observed = self.provider.update(c.resource_id, c.applied, c.domain)
        self.result["follow_up_update"] = True
        self._record(c, observed, c.domain)

    def _import(self):
        """Bind the component to the resource it adopts: read it, never create it."""
        c = self.component()
        observed = self.provider.read(c.resource_id, c.domain)
        self.result["import"] = {"physical_id": observed.physical_id}
        self._record(c, observed, self._desired(c))

    def _update(self):
        c = self.component()
        if c is None:
            raise ValidationError(f"{self.action.component_name} is no longer in HEAD")
        if not c.resource_id:
            return self._create()
        old = c.applied if c.applied is not None else (self.action.old_properties or {})
        desired = self._held_back(self._desired(c), old)
        self.request = mask({"update": desired}, [f"/update{p}" for p in self._write_only(c)])
        observed = self.provider.update(c.resource_id, old, desired)
        self.result["update"] = {"physical_id": observed.physical_id}
        self._record(c, observed, desired)
        if self.action.follow_up:
            self._follow_up()

    def _held_back(self, desired, old):
        """Leave the held pointers (a service's TaskDefinition that a pipeline's deploy stage
        moves) at the value last applied."""
        desired = deepcopy(desired)
        for pointer in self.action.held or {}:
            try:
                pointers.set_value(desired, pointers.split(pointer), pointers.resolve(old, pointer))
            except pointers.Missing:
                pass
        return desired

    _revision = _update  # the provider registers a new revision in the same family

    def _delete(self):
        physical_id = self.action.physical_id
        if physical_id:
            self.provider.delete(physical_id, self.action.old_properties or {})
        self.result["delete"] = {"physical_id": physical_id or None, "done": True}

    def _delete_replaced(self, physical_id):
        """Delete the resource a replacement supersedes; its UpdateReplacePolicy, not its
        DeletionPolicy, says whether a data-holding one is snapshotted first."""
        old = self.action.old_properties or {}
        if self.action.schema in HOLDS_DATA:
            old = {**old, "DeletionPolicy": old.get("UpdateReplacePolicy") or "Snapshot"}
        self.provider.delete(physical_id, old)

    def _replace(self):
        """Create the new resource (its consumers' updates wait for this action; a cleanup
        deletes the old one at the end), or, when the new one must reuse the old one's name,
        delete first. Each half is recorded so a retry skips what is done."""
        if self.action.replacement == "create-first":
            return self._create_replacement(self.component())
        c = self.component()
        old_id = self.action.physical_id or (c.resource_id if c else "")
        if not self.result.get("delete", {}).get("done"):
            if old_id:
                self._delete_replaced(old_id)
            self.result["delete"] = {"physical_id": old_id or None, "done": True}
            self._save_progress()
            if c is not None:
                Component.objects.filter(pk=c.pk).update(
                    resource_id="", resource_value=None, resource_status=ResourceStatus.PENDING
                )
        self._create_replacement(self.component())

    def _create_replacement(self, c):
        if c is None:
            raise ValidationError(f"{self.action.component_name} is no longer in HEAD")
        desired = self._desired(c)
        self.request = mask({"create": desired}, [f"/create{p}" for p in self._write_only(c)])
        observed = self.provider.create(desired, f"{c.id}-r{self.run.pk}")
        self.result["create"] = {"physical_id": observed.physical_id}
        self._save_progress()
        self._record(c, observed, desired)
        if self.action.follow_up:
            self._follow_up()

    def _cleanup(self):
        """The apply's last step: delete the resource a create-first replacement superseded,
        or deregister a task-definition family's revisions beyond the newest N."""
        if self.action.schema == TASK_DEFINITION:
            c = self.component()
            in_use = {
                (s.resource_value or {}).get("TaskDefinition")
                for s in Component.objects.filter(workspace=self.workspace, schema="AWS::ECS::Service")
            }
            pruned = self.provider.prune(c.resource_id, settings.PORTAL_TASK_DEFINITION_KEEP, in_use)
            self.result["deregistered"] = pruned
            return
        physical_id = self.action.physical_id
        if physical_id:
            self._delete_replaced(physical_id)
        self.result["delete"] = {"physical_id": physical_id or None, "done": True}


# --- Retry, cancel, replacement offer ------------------------------------------------------


def retry_action(action, user):
    """Put a failed (or blocked) action back in the queue; reopens its run."""
    with transaction.atomic():
        run = ApplyRun.objects.select_for_update().get(pk=action.run_id)
        require_role(user, run.workspace, Role.APPROVER)
        action = Action.objects.get(pk=action.pk)
        if action.status not in (ActionStatus.FAILED, ActionStatus.BLOCKED, ActionStatus.CANCELLED):
            raise ConflictError(
                f"{action.key} is {action.status}; only a failed, blocked or cancelled action can be retried."
            )
        if run.status != RunStatus.RUNNING:
            if (
                ApplyRun.objects.filter(workspace=run.workspace, status=RunStatus.RUNNING)
                .exclude(pk=run.pk)
                .exists()
            ):
                raise ConflictError("Another apply is running in this workspace; retry when it has finished.")
            run.status, run.finished_at, run.error = RunStatus.RUNNING, None, ""
            run.save(update_fields=["status", "finished_at", "error"])
            if run.change_set_id:
                lifecycle.move_where(run.change_set_id, "retry_apply", ChangeSetStatus.APPLYING, actor=user)
        run.actions.filter(status__in=[ActionStatus.BLOCKED]).update(status=ActionStatus.WAITING, error="")
        Action.objects.filter(pk=action.pk).update(
            status=ActionStatus.WAITING, error="", immutable_property=""
        )
        audit.record(
            "action.retried",
            actor=user,
            change_set=run.change_set,
            workspace=run.workspace,
            target=action.key,
        )
    scheduler.dispatch(run.pk)


def cancel_action(action, user):
    """Give up on a failed or waiting action; what depends on it is blocked."""
    with transaction.atomic():
        run = ApplyRun.objects.select_for_update().get(pk=action.run_id)
        require_role(user, run.workspace, Role.APPROVER)
        done = Action.objects.filter(
            pk=action.pk,
            status__in=[ActionStatus.FAILED, ActionStatus.WAITING, ActionStatus.BLOCKED, ActionStatus.QUEUED],
        ).update(status=ActionStatus.CANCELLED, finished_at=timezone.now())
        if not done:
            raise ConflictError(f"{action.key} cannot be cancelled now.")
        audit.record(
            "action.cancelled",
            actor=user,
            change_set=run.change_set,
            workspace=run.workspace,
            target=action.key,
        )
    if run.status == RunStatus.RUNNING:
        scheduler.dispatch(run.pk)
    else:
        with transaction.atomic():
            run = ApplyRun.objects.select_for_update().get(pk=run.pk)
            actions = list(run.actions.all())
            if all(a.status in DONE for a in actions):
                scheduler.finish_run(run, actions)


def offer_replacement(action, user):
    """A change set that replaces the component whose in-place update AWS refused."""
    with transaction.atomic():
        ws = action.run.workspace
        name = action.component_name
        problem = f"AWS refused to update {name} in place: {action.error}"
        cs = changesets.create_change_set(
            ws,
            user,
            f"replace-{name}",
            problem=problem,
            solution=f"Delete and recreate {name} with the new configuration.",
        )
        changesets.upsert_component(cs, user, name, replace=True)
    return cs
