"""Applying: the change-set page's Apply card, the live progress partial, the workspace's
action queue and no-worker banner, a component's actions, and what approvers do with a
failed action. The portal's pages load these panels with htmx."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal.access import role_of
from portal.errors import PortalError
from portal.models import Role
from portal.views.changesets import detail_url
from portal.views.common import engine_error, get_change_set, get_or_404, get_workspace, perform

from . import apply, pages
from .models import Action, ApplyRun


def _back(run):
    if run.change_set_id:
        return detail_url(run.change_set, "apply")
    return reverse("workspace", args=[run.workspace.slug])


@require_POST
@login_required
def apply_change_set(request, slug, change_set_id):
    """Apply, once the user confirmed what it destroys (the page's dialog posts confirm=1;
    a post without it gets the confirmation as a page of its own)."""
    cs = get_change_set(request, slug, change_set_id, Role.EDITOR)
    if request.POST.get("confirm") != "1":
        return render(request, "workers/confirm_apply.html", pages.apply_confirmation(cs))
    return perform(
        request,
        detail_url(cs, "apply"),
        apply.request_apply,
        cs,
        request.user,
        success=lambda run: f"Apply #{run.pk} queued.",
    )


@login_required
def run_progress(request, slug, run_id):
    """The progress partial, polled by htmx until the run is finished."""
    workspace = get_workspace(request, slug)
    run = get_or_404(
        ApplyRun.objects.select_related("change_set", "workspace"), workspace=workspace, pk=run_id
    )
    if run.is_finished and request.GET.get("seen") in ("queued", "running"):
        # It finished since the page was drawn: reload it, the change set's state moved too.
        return HttpResponse(status=204, headers={"HX-Refresh": "true"})
    context = {
        "progress": pages.run_progress(run),
        "workspace": workspace,
        "role": role_of(request.user, workspace),
    }
    return render(request, "workers/_progress.html", context)


@login_required
def action_queue(request, slug):
    workspace = get_workspace(request, slug)
    context = {
        "workspace": workspace,
        "queue": pages.action_queue(workspace),
        "role": role_of(request.user, workspace),
    }
    return render(request, "workers/_queue.html", context)


@login_required
def apply_panel(request, slug, change_set_id):
    cs = get_change_set(request, slug, change_set_id)
    return render(request, "workers/_apply.html", pages.apply_panel(cs, request.user))


@login_required
def failed_applies(request):
    """The home page's panel: applies that failed and wait for someone."""
    return render(request, "workers/_failed_applies.html", {"runs": pages.failed_applies(request.user)})


@login_required
def heartbeat_banner(request, slug):
    get_workspace(request, slug)
    return render(request, "workers/_heartbeat.html", {"heartbeat": pages.heartbeat_state()})


@login_required
def component_actions(request, slug, component_id):
    workspace = get_workspace(request, slug)
    context = {"workspace": workspace, "actions": pages.component_actions(workspace, component_id)}
    return render(request, "workers/_component_actions.html", context)


@require_POST
@login_required
def run_cancel(request, slug, run_id):
    workspace = get_workspace(request, slug, Role.EDITOR)
    run = get_or_404(
        ApplyRun.objects.select_related("change_set", "workspace"), workspace=workspace, pk=run_id
    )
    return perform(
        request, _back(run), apply.cancel_run, run, request.user, success=f"Apply #{run.pk} cancelled."
    )


def _action(request, slug, action_id):
    workspace = get_workspace(request, slug, Role.APPROVER)
    queryset = Action.objects.select_related("run__change_set__workspace", "run__workspace")
    return get_or_404(queryset, run__workspace=workspace, pk=action_id)


@require_POST
@login_required
def action_retry(request, slug, action_id):
    action = _action(request, slug, action_id)
    return perform(
        request,
        _back(action.run),
        apply.retry_action,
        action,
        request.user,
        success=f"{action.key}: retrying.",
    )


@require_POST
@login_required
def action_cancel(request, slug, action_id):
    action = _action(request, slug, action_id)
    return perform(
        request,
        _back(action.run),
        apply.cancel_action,
        action,
        request.user,
        success=f"{action.key}: cancelled.",
    )


@require_POST
@login_required
def action_replace(request, slug, action_id):
    """Open a change set that replaces the component AWS could not update in place."""
    workspace = get_workspace(request, slug, Role.EDITOR)
    action = get_or_404(
        Action.objects.select_related("run__workspace", "run__change_set"),
        run__workspace=workspace,
        pk=action_id,
    )
    try:
        cs = apply.offer_replacement(action, request.user)
    except PortalError as exc:
        return engine_error(request, exc, _back(action.run))
    return redirect(detail_url(cs))
