"""Build logs: what happened, in words and data, like shared/seed/service-discovery-build-log.md.

A build log is written for every apply (`for_apply`, from the apply's end hook), for
every deployment (`for_deployment`, when the run ends) and for a group of change sets a
user picks (`create_group`). It freezes a snapshot (`BuildLog.data`) of:

- the change sets: name, author, problem and solution text;
- one phase per change set: the components created / updated / replaced / deleted with
  their property diffs (as written, subscriptions kept; secrets masked with the schema's
  write-only paths and by name), the apply runs and every action's outcome;
- the deployments: each stage's status, timing and outcome, rollbacks;
- the problems met ("challenges"): a failed action, and what resolved it (a later
  successful action on the same component, in a later change set or a retry); a failed
  deployment stage, and the later run where it passed.

The team adds free text (overview, lessons learned, next steps) on the page; every edit
is audited. `markdown.render` turns a build log into the seed's Markdown.

Query helpers for links from other pages: `for_component`, `for_change_set`,
`for_pipeline_run`, `for_apply_run` (querysets; templates/deployments/_buildlog_links.html
renders one).
"""

import logging
import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from portal import audit, inputs
from portal.access import require_role, workspaces_for
from portal.errors import NotFound, ValidationError
from portal.graph import find_sources
from portal.models import ChangeSet, EntryOp, Role
from portal.plan import action_label
from portal.schemas import write_only_for
from portal.secrets import mask, mask_text, masked_changes, secret_values
from workers import jobs
from workers.models import Action, ApplyRun

from .models import BuildLog, BuildLogComponent, BuildLogKind, BuildLogStatus, PipelineRun, RunStatus

log = logging.getLogger(__name__)

OPS = ("created", "updated", "replaced", "deleted")
KIND_TO_OP = {
    "create": "created",
    "import": "created",
    "update": "updated",
    "replace": "replaced",
    "revision": "updated",
    "delete": "deleted",
    "cleanup": "replaced",
}
SUCCEEDED_WORDS = {
    "revision": "new revision registered in AWS",
    "cleanup": "old resource deleted in AWS (cleanup)",
}


# --- Phases (one per change set) -----------------------------------------------------------------


def _change_set_info(cs):
    return {
        "id": cs.pk,
        "name": cs.name,
        "author": cs.author.username if cs.author_id else None,
        "status": cs.status,
        "problem": cs.problem or "",
        "solution": cs.solution or "",
        "merged_version": cs.merged_version,
    }


def _physical_id(action):
    result = action.result or {}
    for key in ("create", "update", "import", "delete"):
        found = (result.get(key) or {}).get("physical_id")
        if found:
            return found
    return action.physical_id or ""


def _outcome(action, known):
    if action is None:
        return {"status": "not applied", "words": "not applied yet"}
    error = mask_text(action.error, known)
    words = {
        "succeeded": SUCCEEDED_WORDS.get(action.kind)
        or f"{KIND_TO_OP.get(action.kind, action.kind + 'd')} in AWS",
        "failed": f"failed: {error}",
        "blocked": error if error.startswith("not run") else f"not run: {error}",
        "cancelled": "cancelled",
    }.get(action.status, action.status)
    if action.local and action.status == "succeeded":
        words = "computed by the portal"
    return {"status": action.status, "words": words, "physical_id": _physical_id(action)}


def _action_row(action, known):
    return {
        "run": action.run_id,
        "key": action.key,
        "kind": action.kind,
        "label": action_label(action.kind, action.schema),
        "component": action.component_name,
        "schema": action.schema,
        "status": action.status,
        "attempts": action.attempts,
        "reason": action.reason,
        "error": mask_text(action.error, known),
        "duration_s": action.duration_s,
        "finished_at": action.finished_at.isoformat() if action.finished_at else None,
    }


def _phase(cs, apply_runs, known):
    """A change set's phase. `apply_runs`: the runs to tell about (oldest first)."""
    entries = list(cs.entries.all())
    # What AWS was sent and the old properties are on the action's own page, not here.
    actions = list(
        Action.objects.filter(run__in=apply_runs).defer("request", "old_properties").order_by("run_id", "id")
    )
    by_component = {}
    for a in actions:
        by_component.setdefault(str(a.component_id), []).append(a)
    components = {op: [] for op in OPS}
    for e in entries:
        wo = write_only_for(e.schema)
        known.extend(secret_values(e.properties or {}, wo) + secret_values(e.base_properties or {}, wo))
        acts = by_component.pop(str(e.component_id), [])
        last = acts[-1] if acts else None
        item = {"name": e.name, "schema": e.schema, "reason": last.reason if last else ""}
        if e.op == EntryOp.ADD:
            op = "created"
            item["properties"] = mask(e.properties or {}, wo)
        elif e.op == EntryOp.DELETE:
            op = "deleted"
            item["properties"] = mask(e.base_properties or {}, wo)
        else:
            replaced = e.replace or any(a.kind == "replace" for a in acts)
            op = "replaced" if replaced else "updated"
            base, new = e.base_properties or {}, e.properties or {}
            item["changes"] = masked_changes(base, new, wo)
            if replaced and not item["reason"]:
                item["reason"] = "marked for replacement"
        item["op"] = op
        item["outcome"] = _outcome(last, known)
        components[op].append(item)
    # Components the change set did not edit but whose resolved values moved with it.
    for acts in by_component.values():
        last = acts[-1]
        op = KIND_TO_OP.get(last.kind, "updated")
        components[op].append(
            {
                "name": last.component_name,
                "schema": last.schema,
                "op": op,
                "reason": last.reason,
                "changes": [],
                "follows": True,
                "outcome": _outcome(last, known),
            }
        )
    for items in components.values():
        items.sort(key=lambda i: (i.get("follows", False), i["name"]))
    info = _change_set_info(cs)
    info["problem"], info["solution"] = (
        mask_text(info["problem"], known),
        mask_text(info["solution"], known),
    )
    return {
        "change_set": info,
        "applies": [
            {
                "run": r.pk,
                "status": r.status,
                "requested_by": r.requested_by.username if r.requested_by_id else None,
                "started_at": r.started_at.isoformat() if r.started_at else None,
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                "error": mask_text(r.error, known),
            }
            for r in apply_runs
        ],
        "components": components,
        "actions": [_action_row(a, known) for a in actions],
    }


# --- Deployments ---------------------------------------------------------------------------------


def shipped_change_sets(run):
    """The change sets a deployment shipped: those merged into HEAD after the HEAD version
    of the pipeline's last successful run, up to the version this run resolved."""
    if run.head_version is None:
        return []
    previous = (
        PipelineRun.objects.filter(
            workspace_id=run.workspace_id,
            pipeline_id=run.pipeline_id,
            status=RunStatus.SUCCEEDED,
            head_version__isnull=False,
            pk__lt=run.pk,
        )
        .order_by("-pk")
        .values_list("head_version", flat=True)
        .first()
    )
    return list(
        ChangeSet.objects.filter(
            workspace_id=run.workspace_id,
            merged_version__gt=previous or 0,
            merged_version__lte=run.head_version,
        ).order_by("merged_version", "pk")
    )


def _shipped_info(cs):
    return {"id": cs.pk, "name": cs.name, "merged_version": cs.merged_version}


def _deployment(run, known):
    known.extend(secret_values(run.definition))
    stages = []
    for s in run.stages.all():
        outcome = (s.result or {}).get("outcome") or {}
        stages.append(
            {
                "name": s.name,
                "kind": s.kind,
                "status": s.status,
                "attempts": s.attempts,
                "duration_s": s.duration_s,
                "started_at": s.started_at.isoformat() if s.started_at else None,
                "finished_at": s.finished_at.isoformat() if s.finished_at else None,
                "summary": mask_text(outcome.get("summary", ""), known),
                "error": mask_text(s.error, known),
                "decided_by": s.decided_by.username if s.decided_by_id else None,
                "exit_codes": (s.result or {}).get("exit_codes"),
                "stopped_reason": mask_text((s.result or {}).get("stopped_reason", ""), known),
            }
        )
    return {
        "run": run.pk,
        "pipeline": run.pipeline,
        "description": run.description,
        "status": run.status,
        "trigger": run.trigger,
        "apply_run": run.apply_run_id,
        "requested_by": run.requested_by.username if run.requested_by_id else None,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_s": run.duration_s,
        "head_version": run.head_version,
        "change_sets": [_shipped_info(cs) for cs in shipped_change_sets(run)],
        "error": mask_text(run.error, known),
        "rollback": (
            {
                "status": run.rollback_status,
                "services": {
                    k: v.get("task_definition")
                    for k, v in ((run.rollback or {}).get("services") or {}).items()
                },
                "error": mask_text((run.rollback or {}).get("error", ""), known),
            }
            if run.rollback_status
            else None
        ),
        "stages": stages,
    }


# --- Challenges: problems met and what resolved them ---------------------------------------------


def _challenges(phases, deployments):
    failures, successes = [], []
    for phase in phases:
        cs = phase["change_set"]
        for a in phase["actions"]:
            row = {**a, "change_set": cs}
            if a["status"] == "failed":
                failures.append(row)
            elif a["status"] == "succeeded":
                successes.append(row)
    out = []
    for f in failures:
        fix = next(
            (
                s
                for s in successes
                if s["component"] == f["component"]
                and (s["run"], s["finished_at"] or "") > (f["run"], f["finished_at"] or "")
            ),
            None,
        )
        resolution = None
        if fix is not None:
            same = fix["change_set"]["id"] == f["change_set"]["id"]
            resolution = {
                "kind": "retry" if same else "change_set",
                "change_set": fix["change_set"],
                "run": fix["run"],
                "action": fix["key"],
            }
        out.append(
            {
                "title": f"{f['component']}: {f['kind']} failed",
                "component": f["component"],
                "error": f["error"],
                "where": f"apply #{f['run']} of change set `{f['change_set']['name']}` ({f['key']})",
                "change_set": f["change_set"],
                "resolution": resolution,
            }
        )
    ordered = sorted(deployments, key=lambda d: d["run"])
    for i, d in enumerate(ordered):
        for s in d["stages"]:
            if s["status"] != "failed":
                continue
            later = next(
                (
                    x
                    for x in ordered[i + 1 :]
                    if x["pipeline"] == d["pipeline"]
                    and any(t["name"] == s["name"] and t["status"] == "succeeded" for t in x["stages"])
                ),
                None,
            )
            resolution = None
            if later is not None:
                between = [
                    p["change_set"]
                    for p in phases
                    if any(
                        a["status"] == "succeeded"
                        and (d["finished_at"] or "")
                        <= (a["finished_at"] or "")
                        <= (later["created_at"] or "")
                        for a in p["applies"]
                    )
                ]
                resolution = {"kind": "deployment", "run": later["run"], "change_sets": between}
            out.append(
                {
                    "title": f"{d['pipeline']} {s['name']} failed",
                    "component": d["pipeline"],
                    "error": s["error"],
                    "where": f"deployment #{d['run']}, stage {s['name']} ({s['kind']})",
                    "resolution": resolution,
                }
            )
    return out


# --- Words ----------------------------------------------------------------------------------------


def _plural(n, word, plural=None):
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _overview(workspace, phases, deployments, challenges):
    parts = []
    if phases:
        names = ", ".join(f"`{p['change_set']['name']}`" for p in phases)
        parts.append(
            f"This build log documents {_plural(len(phases), 'change set')} in the {workspace.name} "
            f"workspace ({workspace.slug}): {names}."
        )
        counts = {op: sum(len(p["components"][op]) for p in phases) for op in OPS}
        applies = [a for p in phases for a in p["applies"]]
        failed = sum(1 for a in applies if a["status"] == "failed")
        parts.append(
            f"{counts['created']} component(s) created, {counts['updated']} updated, "
            f"{counts['replaced']} replaced and {counts['deleted']} deleted, over "
            f"{_plural(len(applies), 'apply run')}" + (f" ({failed} of which failed)" if failed else "") + "."
        )
    if deployments:
        last = max(deployments, key=lambda d: d["run"])
        parts.append(
            f"{_plural(len(deployments), 'deployment run')} of "
            f"{', '.join(sorted({d['pipeline'] for d in deployments}))}; the last, #{last['run']}, {last['status']}"
            + (f" ({last['error']})" if last["error"] else "")
            + "."
        )
    if challenges:
        resolved = sum(1 for c in challenges if c["resolution"])
        parts.append(f"{_plural(len(challenges), 'problem')} met on the way, {resolved} resolved.")
    return " ".join(parts) or "Nothing was applied or deployed yet."


def _status(kind, phases, deployments, challenges):
    if any(c["resolution"] is None for c in challenges):
        return BuildLogStatus.FAILED
    if deployments and max(deployments, key=lambda d: d["run"])["status"] != RunStatus.SUCCEEDED:
        return BuildLogStatus.FAILED
    for p in phases:
        applies = p["applies"]
        if kind != BuildLogKind.GROUP and applies and applies[-1]["status"] != "succeeded":
            return BuildLogStatus.FAILED
        if p["change_set"]["merged_version"] is None:
            return BuildLogStatus.PARTIAL
    return BuildLogStatus.COMPLETED


def _search_text(log, data):
    words = [log.title, log.overview, log.lessons, log.next_steps, log.status, log.kind, log.workspace.slug]
    for p in data.get("phases", []):
        cs = p["change_set"]
        words += [cs["name"], cs["problem"], cs["solution"], cs["author"] or ""]
        for items in p["components"].values():
            words += [i["name"] for i in items]
        words += [a["error"] for a in p["actions"] if a["error"]]
    for d in data.get("deployments", []):
        words += [d["pipeline"], d["error"], d["requested_by"] or ""]
        words += [f"{s['name']} {s['summary']} {s['error']}" for s in d["stages"]]
    words += [c["error"] for c in data.get("challenges", [])]
    return "\n".join(w for w in words if w).lower()


# --- Writing build logs ----------------------------------------------------------------------------


def _scrub(value, known):
    """Replace every known secret value left in free text (problem, solution, messages)."""
    if isinstance(value, dict):
        return {k: _scrub(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, known) for v in value]
    if isinstance(value, str) and known:
        return mask_text(value, known) if any(k in value for k in known) else value
    return value


def _save(
    key,
    workspace,
    kind,
    title,
    author,
    date,
    phases,
    deployments,
    change_sets,
    apply_runs,
    pipeline_runs,
    known,
    followed_by=(),
):
    known = sorted(set(known), key=len, reverse=True)
    if known:  # most applies know no secret value: nothing to look for in the texts
        phases, deployments = _scrub(phases, known), _scrub(deployments, known)
    challenges = _challenges(phases, deployments)
    data = {"phases": phases, "deployments": deployments, "challenges": challenges}
    if followed_by:
        data["followed_by"] = list(followed_by)
    overview = _overview(workspace, phases, deployments, challenges)
    data["generated_overview"] = overview
    status = _status(kind, phases, deployments, challenges)
    log = BuildLog.objects.filter(key=key).first()
    if log is None:
        log = BuildLog(key=key, workspace=workspace, kind=kind, title=title, author=author, overview=overview)
    elif log.overview == (log.data or {}).get("generated_overview"):
        log.overview = overview  # regenerated unless the team rewrote it
    log.status, log.date, log.data = status, date or timezone.now(), data
    log.search_text = _search_text(log, data)
    log.save()
    log.change_sets.set(change_sets)
    log.apply_runs.set(apply_runs)
    log.pipeline_runs.set(pipeline_runs)
    rows = {(i["name"], op) for p in phases for op in OPS for i in p["components"][op]}
    for d_run in pipeline_runs:
        rows.add((d_run.pipeline, "ran"))
        for name in _deployed_components(d_run):
            rows.add((name, "deployed"))
    log.component_rows.all().delete()
    BuildLogComponent.objects.bulk_create(
        [BuildLogComponent(build_log=log, name=n, op=op) for n, op in sorted(rows)]
    )
    return log


def _deployed_components(run):
    """Names of the service components a run's deploy stages subscribe to."""
    names = set()
    for stage in (run.source or {}).get("Stages") or []:
        if isinstance(stage, dict) and stage.get("Kind") == "deploy_services":
            names.update(s.component for s in find_sources(stage.get("Parameters") or {}) if s.component)
    return names


def for_apply(run):
    """The build log of one apply run (written when it ends; rewritten if it is retried,
    and when a deployment it started ends, which the log links)."""
    cs = run.change_set
    known = []
    phases = [_phase(cs, [run], known)] if cs is not None else []
    title = f"Apply #{run.pk}: {cs.name}" if cs is not None else f"Apply #{run.pk}"
    followed_by = list(run.pipeline_runs.order_by("pk"))
    return _save(
        f"apply:{run.pk}",
        run.workspace,
        BuildLogKind.APPLY,
        title,
        run.requested_by,
        run.finished_at,
        phases,
        [],
        [cs] if cs is not None else [],
        [run],
        followed_by,
        known,
        followed_by=[{"run": d.pk, "pipeline": d.pipeline, "status": d.status} for d in followed_by],
    )


def write_apply_log(run):
    """for_apply(run) in a transaction of its own; a failure is logged (the reaper tries
    again), never raised to the caller."""
    try:
        with transaction.atomic():
            return for_apply(run)
    except Exception:
        log.exception("build log of apply #%s failed", run.pk)
        return None


# An apply that ended this long ago without its build log is given up on (the reaper
# tries every 30 s until then; each failure is logged).
MISSING_LOG_WINDOW = timedelta(hours=1)


def write_missing_apply_logs(now=None):
    """Write the build logs of applies that ended without one (the worker died between the
    run's end and its log, or writing it failed), once the writer had a grace period.
    Returns the apply run ids whose log was written."""
    now = now or timezone.now()
    ended = ApplyRun.objects.filter(
        kind="apply",
        status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED],
        started_at__isnull=False,  # a run that failed before it started has no story to tell
        finished_at__lt=jobs.lost_before(now),
        finished_at__gte=now - MISSING_LOG_WINDOW,
    )
    missing = ended.exclude(build_logs__kind=BuildLogKind.APPLY).select_related(
        "workspace", "change_set", "requested_by"
    )
    return [run.pk for run in missing if write_apply_log(run) is not None]


def for_deployment(run):
    """The build log of one deployment run (written when it ends); the build log of the
    apply that started it is rewritten too, to tell how its deployment ended."""
    known = []
    apply_run = run.apply_run
    cs = apply_run.change_set if apply_run is not None else None
    phases = [_phase(cs, [apply_run], known)] if cs is not None else []
    shipped = shipped_change_sets(run)
    if apply_run is not None:
        for_apply(apply_run)
    return _save(
        f"deployment:{run.pk}",
        run.workspace,
        BuildLogKind.DEPLOYMENT,
        f"Deployment #{run.pk}: {run.pipeline}",
        run.requested_by,
        run.finished_at,
        phases,
        [_deployment(run, known)],
        list({c.pk: c for c in [*shipped, *([cs] if cs is not None else [])]}.values()),
        [apply_run] if apply_run is not None else [],
        [run],
        known,
    )


def parse_ids(text):
    try:
        ids = [inputs.parse_id(x) for x in str(text).replace(" ", "").split(",") if x]
    except ValueError:
        raise ValidationError(
            f"Change sets are given as ids separated by commas (1,2,3), not {text!r}."
        ) from None
    if not ids:
        raise ValidationError("Pick at least one change set.")
    return ids


def create_group(workspace, change_set_ids, user, title=""):
    """A build log for change sets a user picks: their phases in the order they were merged,
    the deployments since the first of their applies, and the problems met on the way."""
    require_role(user, workspace, Role.EDITOR)
    ids = list(dict.fromkeys(change_set_ids))
    if not ids:
        raise ValidationError("Pick at least one change set.")
    found = {
        cs.pk: cs for cs in ChangeSet.objects.filter(workspace=workspace, pk__in=ids).select_related("author")
    }
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"No change set {', '.join(f'#{i}' for i in missing)} in {workspace.slug}.")
    change_sets = sorted(
        found.values(), key=lambda cs: (cs.merged_version is None, cs.merged_version or 0, cs.pk)
    )
    known, phases, all_runs = [], [], []
    for cs in change_sets:
        apply_runs = list(cs.apply_runs.filter(kind="apply").select_related("requested_by").order_by("id"))
        all_runs.extend(apply_runs)
        phases.append(_phase(cs, apply_runs, known))
    runs = []
    if all_runs:
        since = min(r.created_at for r in all_runs)
        runs = list(
            PipelineRun.objects.filter(workspace=workspace, created_at__gte=since)
            .exclude(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
            .select_related("requested_by")
            .order_by("id")
        )
    deployments = [_deployment(r, known) for r in runs]
    if not title:
        names = [cs.name for cs in change_sets]
        title = names[0] if len(names) == 1 else f"{workspace.name}: {names[0]} … {names[-1]}"
    ends = [r.finished_at for r in [*all_runs, *runs] if r.finished_at]
    with transaction.atomic():
        log = _save(
            f"group:{uuid.uuid4().hex}",
            workspace,
            BuildLogKind.GROUP,
            title.strip()[:300],
            user,
            max(ends) if ends else timezone.now(),
            phases,
            deployments,
            change_sets,
            all_runs,
            runs,
            known,
        )
        audit.record(
            "buildlog.created",
            actor=user,
            workspace=workspace,
            target=f"build log #{log.pk} {log.title}",
            after={"change_sets": [cs.pk for cs in change_sets], "deployments": [r.pk for r in runs]},
        )
    return log


NOTE_FIELDS = ("overview", "lessons", "next_steps")


def update_notes(log, user, **fields):
    """The team's text: overview, lessons learned, next steps (editors; audited)."""
    require_role(user, log.workspace, Role.EDITOR)
    changes = {k: (v or "").strip() for k, v in fields.items() if k in NOTE_FIELDS and v is not None}
    with transaction.atomic():
        log = BuildLog.objects.select_for_update().get(pk=log.pk)
        before = {k: getattr(log, k) for k in changes if getattr(log, k) != changes[k]}
        if not before:
            return log
        for key, value in changes.items():
            setattr(log, key, value)
        log.search_text = _search_text(log, log.data or {})
        log.save()
        audit.record(
            "buildlog.edited",
            actor=user,
            workspace=log.workspace,
            target=f"build log #{log.pk} {log.title}",
            before=before,
            after={k: changes[k] for k in before},
        )
    return log


# --- Reading ---------------------------------------------------------------------------------------


def visible_to(user):
    return BuildLog.objects.filter(workspace__in=workspaces_for(user)).select_related("workspace", "author")


def build_log_for(user, log_id, slug=None):
    log = visible_to(user).filter(pk=log_id).first()
    if log is None or (slug is not None and log.workspace.slug != slug):
        raise NotFound(f"No build log {log_id}.")
    return log


def for_component(component):
    """Build logs that tell about a HEAD component (created, changed, deployed, ...)."""
    return for_component_name(component.workspace_id, component.name)


def for_component_name(workspace_id, name):
    """The same by name: also for components a change set deleted."""
    return (
        BuildLog.objects.filter(workspace_id=workspace_id, component_rows__name=name)
        .select_related("workspace")
        .distinct()
    )


def for_change_set(change_set):
    """Build logs of its applies, of deployments they triggered, and groups that include it."""
    return change_set.build_logs.select_related("workspace")


def for_pipeline_run(run):
    return run.build_logs.select_related("workspace")


def for_apply_run(run):
    return run.build_logs.select_related("workspace")


def summary(log):
    return {
        "id": log.pk,
        "workspace": log.workspace.slug,
        "kind": log.kind,
        "title": log.title,
        "status": log.status,
        "date": log.date,
        "author": log.author.username if log.author_id else None,
        "change_sets": [p["change_set"]["name"] for p in (log.data or {}).get("phases", [])],
        "deployments": [d["run"] for d in (log.data or {}).get("deployments", [])],
    }


def as_json(log):
    return {
        **summary(log),
        "overview": log.overview,
        "lessons": log.lessons,
        "next_steps": log.next_steps,
        **{k: v for k, v in (log.data or {}).items() if k != "generated_overview"},
    }
