"""Deployment and build log pages. Each view looks its objects up through the user's
membership (anyone outside the workspace gets a 404) and calls one domain function."""

import json

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal import inputs
from portal.access import role_of, workspace_for, workspaces_for
from portal.models import ChangeSet, ChangeSetStatus, Role
from portal.views.common import get_change_set, perform

from . import asl, buildlogs, markdown, pipelines, runs
from .filters import BuildLogFilter
from .models import PipelineRun, StageRun

LOG_LINES_SHOWN = 500


def _workspace(request, slug, role=Role.VIEWER):
    return workspace_for(request.user, slug, role)


def _run(workspace, run_id):
    run = (
        PipelineRun.objects.select_related("workspace", "requested_by")
        .filter(workspace=workspace, pk=run_id)
        .first()
    )
    if run is None:
        raise Http404(f"No deployment #{run_id} in {workspace.slug}.")
    return run


def _pipeline(workspace, name):
    return pipelines.get_pipeline(workspace, name)


# --- Deployments ---------------------------------------------------------------------------------


@login_required
def deployments_home(request, slug):
    workspace = _workspace(request, slug)
    found = [(p, pipelines.problems(p)) for p in pipelines.pipelines(workspace)]
    recent = PipelineRun.objects.filter(workspace=workspace).select_related("requested_by")[:30]
    context = {
        "workspace": workspace,
        "role": role_of(request.user, workspace),
        "pipelines": found,
        "runs": recent,
    }
    return render(request, "deployments/index.html", context)


@login_required
def pipeline_detail(request, slug, name):
    workspace = _workspace(request, slug)
    pipeline = _pipeline(workspace, name)
    stages = [
        {"stage": s, "parameters": runs.masked_parameters(s.source.get("Parameters"))}
        for s in pipeline.stages
    ]
    context = {
        "workspace": workspace,
        "role": role_of(request.user, workspace),
        "pipeline": pipeline,
        "stages": stages,
        "problems": pipelines.problems(pipeline),
        "runs": PipelineRun.objects.filter(workspace=workspace, pipeline_id=pipeline.component_id)[:20],
    }
    return render(request, "deployments/pipeline.html", context)


@require_POST
@login_required
def pipeline_run(request, slug, name):
    """Run, once the user confirmed the stages (the page's dialog posts confirm=1; a post
    without it gets the confirmation as a page of its own)."""
    workspace = _workspace(request, slug, Role.EDITOR)
    back = reverse("deployments:pipeline", args=[slug, name])
    if request.POST.get("confirm") != "1":
        context = {"workspace": workspace, "pipeline": _pipeline(workspace, name), "back": back}
        return render(request, "deployments/confirm_run.html", context)
    return perform(
        request,
        back,
        runs.request_run,
        workspace,
        name,
        request.user,
        then=lambda run: reverse("deployments:run", args=[slug, run.pk]),
    )


@login_required
def pipeline_export(request, slug, name):
    workspace = _workspace(request, slug)
    pipeline = _pipeline(workspace, name)
    definition = asl.export(pipeline, asl.families_for(workspace))
    response = HttpResponse(json.dumps(definition, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{name}.asl.json"'
    return response


def _live_context(request, workspace, run):
    lines = list(run.log_lines.order_by("-id")[:LOG_LINES_SHOWN])[::-1]
    return {
        "workspace": workspace,
        "role": role_of(request.user, workspace),
        "run": run,
        "stages": list(run.stages.select_related("decided_by")),
        "lines": lines,
        "hidden_lines": max(0, run.log_lines.count() - len(lines)) if len(lines) == LOG_LINES_SHOWN else 0,
        "build_logs": buildlogs.for_pipeline_run(run) if run.is_finished else [],
    }


@login_required
def run_detail(request, slug, run_id):
    workspace = _workspace(request, slug)
    run = _run(workspace, run_id)
    return render(request, "deployments/run.html", _live_context(request, workspace, run))


@login_required
def run_live(request, slug, run_id):
    """The live partial of a run, polled by htmx every 2 s until the run is finished."""
    workspace = _workspace(request, slug)
    run = _run(workspace, run_id)
    return render(request, "deployments/_run_live.html", _live_context(request, workspace, run))


def _decide(request, slug, run_id, stage_id, approve):
    workspace = _workspace(request, slug, Role.APPROVER)
    run = _run(workspace, run_id)
    stage = StageRun.objects.filter(run=run, pk=stage_id).first()
    if stage is None:
        raise Http404("No such stage.")
    back = reverse("deployments:run", args=[slug, run.pk])
    comment = request.POST.get("comment", "")
    verb = "approved" if approve else "rejected"
    return perform(
        request,
        back,
        runs.decide_gate,
        stage,
        request.user,
        approve,
        comment,
        success=f"{stage.name} {verb}.",
    )


@require_POST
@login_required
def stage_approve(request, slug, run_id, stage_id):
    return _decide(request, slug, run_id, stage_id, True)


@require_POST
@login_required
def stage_reject(request, slug, run_id, stage_id):
    return _decide(request, slug, run_id, stage_id, False)


# --- Build logs ----------------------------------------------------------------------------------


def _page(request, queryset):
    return Paginator(queryset, 30).get_page(request.GET.get("page"))


@login_required
def buildlog_history(request):
    """Build logs across the user's workspaces."""
    filters = BuildLogFilter(request.GET, buildlogs.visible_to(request.user), workspaces_for(request.user))
    return render(
        request, "deployments/buildlogs.html", {"logs": _page(request, filters.qs), "filters": filters}
    )


@login_required
def buildlog_list(request, slug):
    workspace = _workspace(request, slug)
    filters = BuildLogFilter(request.GET, buildlogs.visible_to(request.user).filter(workspace=workspace))
    role = role_of(request.user, workspace)
    change_sets = []
    if role.is_editor:
        change_sets = (
            ChangeSet.objects.filter(workspace=workspace)
            .exclude(status__in=[ChangeSetStatus.ABANDONED])
            .select_related("author")
            .order_by("-merged_version", "-id")[:100]
        )
    context = {
        "workspace": workspace,
        "role": role,
        "logs": _page(request, filters.qs),
        "filters": filters,
        "change_sets": change_sets,
    }
    return render(request, "deployments/buildlogs.html", context)


@require_POST
@login_required
def buildlog_create(request, slug):
    workspace = _workspace(request, slug, Role.EDITOR)
    back = reverse("deployments:buildlogs-workspace", args=[slug])
    try:
        ids = [inputs.parse_id(x) for x in request.POST.getlist("change_sets")]
    except ValueError:
        ids = []
    title = request.POST.get("title", "")
    return perform(
        request,
        back,
        buildlogs.create_group,
        workspace,
        ids,
        request.user,
        title,
        then=lambda log: reverse("deployments:buildlog", args=[slug, log.pk]),
    )


def _build_log(request, slug, log_id):
    workspace = _workspace(request, slug)
    return workspace, buildlogs.build_log_for(request.user, log_id, slug)


@login_required
def buildlog_detail(request, slug, log_id):
    workspace, log = _build_log(request, slug, log_id)
    context = {
        "workspace": workspace,
        "role": role_of(request.user, workspace),
        "log": log,
        "data": log.data or {},
        "change_sets": markdown.told_change_sets(log.data or {}),
        "head_version": markdown.shipped_head_version(log.data or {}),
        "ops": [(op, op.capitalize()) for op in buildlogs.OPS],
    }
    return render(request, "deployments/buildlog.html", context)


@login_required
def buildlog_markdown(request, slug, log_id):
    _, log = _build_log(request, slug, log_id)
    response = HttpResponse(markdown.render(log), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{markdown.filename(log)}"'
    return response


@require_POST
@login_required
def buildlog_notes(request, slug, log_id):
    _workspace(request, slug, Role.EDITOR)
    _, log = _build_log(request, slug, log_id)
    back = reverse("deployments:buildlog", args=[slug, log.pk])
    fields = {k: request.POST.get(k) for k in buildlogs.NOTE_FIELDS if k in request.POST}
    return perform(request, back, buildlogs.update_notes, log, request.user, success="Saved.", **fields)


# --- Panels of the portal's pages (loaded with htmx) ---------------------------------------------


@login_required
def recent_deployments(request, slug):
    workspace = _workspace(request, slug)
    context = {"workspace": workspace, "deployments": runs.recent_runs(workspace)}
    return render(request, "deployments/_recent.html", context)


@login_required
def failed_deployments(request):
    """The home page's panel: deployments that failed and were not run again since."""
    return render(request, "deployments/_failed.html", {"runs": runs.failed_runs(request.user)})


@login_required
def changeset_buildlogs(request, slug, change_set_id):
    change_set = get_change_set(request, slug, change_set_id)
    context = {"build_logs": buildlogs.for_change_set(change_set)[:20]}
    return render(request, "deployments/_buildlog_links.html", context)


@login_required
def component_buildlogs(request, slug, name):
    workspace = _workspace(request, slug)
    context = {"build_logs": buildlogs.for_component_name(workspace.pk, name)[:20]}
    return render(request, "deployments/_buildlog_links.html", context)
