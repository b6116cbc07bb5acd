"""The Notifications panel of a workspace's settings page: targets (add, edit, enable or
disable, delete, test-send) and recent deliveries. Workspace admins only. Each POST
answers with the panel again (htmx swaps it in place; without htmx it is a page)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_POST

from portal.errors import PortalError
from portal.models import Role
from portal.views.common import get_or_404, get_workspace

from . import targets
from .forms import TargetEditForm, TargetForm
from .models import Delivery, Target

RECENT_DELIVERIES = 50


@login_required
def panel(request, slug):
    return _panel(request, get_workspace(request, slug, Role.ADMIN))


@login_required
def deliveries(request, slug):
    workspace = get_workspace(request, slug, Role.ADMIN)
    return render(request, "notifications/_deliveries.html", _deliveries(workspace))


@require_POST
@login_required
def target_create(request, slug):
    workspace = get_workspace(request, slug, Role.ADMIN)
    form = TargetForm(request.POST)
    if not form.is_valid():
        return _panel(request, workspace, form=form, status=400)
    data = form.cleaned_data
    try:
        target, secret = targets.create_target(
            workspace,
            request.user,
            data["name"],
            data["kind"],
            data["destination"],
            data["events"],
            data["secret"],
        )
    except PortalError as exc:
        form.add_error(None, exc.message)
        return _panel(request, workspace, form=form, status=exc.status)
    return _panel(request, workspace, notice=f"Target {target.name} added.", revealed=(target, secret))


@require_POST
@login_required
def target_update(request, slug, target_id):
    workspace, target = _target(request, slug, target_id)
    form = TargetEditForm(request.POST, prefix=f"t{target.pk}")
    if form.is_valid():
        data = form.cleaned_data
        try:
            target, secret = targets.update_target(
                target,
                request.user,
                data["name"],
                data["destination"],
                data["events"],
                data["secret"],
                data["rotate_secret"],
            )
        except PortalError as exc:
            form.add_error(None, exc.message)
        else:
            return _panel(
                request, workspace, notice=f"Target {target.name} saved.", revealed=(target, secret)
            )
    return _panel(request, workspace, editing=(target.pk, form), status=400)


@require_POST
@login_required
def target_enable(request, slug, target_id, enabled):
    workspace, target = _target(request, slug, target_id)
    targets.set_enabled(target, request.user, enabled)
    word = "enabled" if enabled else "disabled: it is sent nothing until enabled again"
    return _panel(request, workspace, notice=f"Target {target.name} {word}.")


@require_POST
@login_required
def target_delete(request, slug, target_id):
    workspace, target = _target(request, slug, target_id)
    targets.delete_target(target, request.user)
    return _panel(request, workspace, notice=f"Target {target.name} deleted; its deliveries stay listed.")


@require_POST
@login_required
def target_test(request, slug, target_id):
    workspace, target = _target(request, slug, target_id)
    targets.send_test(target, request.user)
    return _panel(request, workspace, notice=f"A test notification to {target.name} is queued.")


def _target(request, slug, target_id):
    workspace = get_workspace(request, slug, Role.ADMIN)
    return workspace, get_or_404(
        Target.objects.select_related("workspace"), workspace=workspace, pk=target_id
    )


def _panel(request, workspace, form=None, editing=None, notice="", revealed=None, status=200):
    rows = []
    for target in Target.objects.filter(workspace=workspace):
        if editing and editing[0] == target.pk:
            edit_form, open_ = editing[1], True
        else:
            initial = {"name": target.name, "events": target.events}
            edit_form, open_ = TargetEditForm(prefix=f"t{target.pk}", initial=initial), False
        rows.append({"target": target, "form": edit_form, "open": open_})
    context = {
        "workspace": workspace,
        "rows": rows,
        "form": form or TargetForm(),
        "notice": notice,
        "revealed": revealed if revealed and revealed[1] else None,
        **_deliveries(workspace),
    }
    template = "notifications/_panel.html" if request.htmx else "notifications/page.html"
    return render(request, template, context, status=status)


def _deliveries(workspace):
    recent = list(Delivery.objects.filter(workspace=workspace)[:RECENT_DELIVERIES])
    return {
        "workspace": workspace,
        "deliveries": recent,
        "pending": any(not d.is_finished for d in recent),
    }
