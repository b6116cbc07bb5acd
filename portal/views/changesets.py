"""Change sets: the list, the detail page, and the edits that are not a component's."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal import changesets, pages
from portal.access import role_of
from portal.errors import PortalError
from portal.forms import ChangeSetCreateForm, ChangeSetFilterForm, DecisionForm, DescriptionForm
from portal.models import Role

from .common import engine_error, get_change_set, get_workspace, perform

PER_PAGE = 50


def detail_url(cs, anchor=""):
    return reverse("changeset", args=[cs.workspace.slug, cs.pk]) + (f"#{anchor}" if anchor else "")


@login_required
def changeset_list(request, slug):
    workspace = get_workspace(request, slug)
    filters = ChangeSetFilterForm(request.GET or {"status": "active"})
    status = filters.cleaned_data["status"] if filters.is_valid() else "active"
    context = {
        "workspace": workspace,
        "filters": filters,
        "change_sets": Paginator(pages.change_sets(workspace, status), PER_PAGE).get_page(
            request.GET.get("page")
        ),
        "form": ChangeSetCreateForm(),
        "role": role_of(request.user, workspace),
    }
    return render(request, "portal/changesets.html", context)


@require_POST
@login_required
def changeset_create(request, slug):
    workspace = get_workspace(request, slug, Role.EDITOR)
    form = ChangeSetCreateForm(request.POST)
    back = reverse("changesets", args=[slug])
    if not form.is_valid():
        messages.error(request, "A change set needs a name (at most 200 characters).")
        return redirect(back)
    try:
        cs = changesets.create_change_set(workspace, request.user, **form.cleaned_data)
    except PortalError as exc:
        return engine_error(request, exc, back)
    messages.success(request, f"Change set #{cs.pk} {cs.name} opened.")
    return redirect(detail_url(cs))


@login_required
def changeset_detail(request, slug, change_set_id):
    cs = get_change_set(request, slug, change_set_id)
    context = pages.change_set_page(cs, request.user)
    context["description_form"] = DescriptionForm(
        initial={"name": cs.name, "problem": cs.problem, "solution": cs.solution}
    )
    context["decision_form"] = DecisionForm()
    return render(request, "portal/changeset.html", context)


@require_POST
@login_required
def changeset_describe(request, slug, change_set_id):
    cs = get_change_set(request, slug, change_set_id, Role.EDITOR)
    form = DescriptionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A change set needs a name (at most 200 characters).")
        return redirect(detail_url(cs))
    return perform(
        request,
        detail_url(cs),
        changesets.update_description,
        cs,
        request.user,
        **form.cleaned_data,
        success="Description saved.",
    )


@require_POST
@login_required
def changeset_abandon(request, slug, change_set_id):
    cs = get_change_set(request, slug, change_set_id, Role.EDITOR)
    return perform(
        request, detail_url(cs), changesets.abandon, cs, request.user, success="Change set abandoned."
    )


@require_POST
@login_required
def changeset_rebase(request, slug, change_set_id):
    cs = get_change_set(request, slug, change_set_id, Role.EDITOR)
    if not cs.is_editable:
        messages.error(request, f"Change set #{cs.pk} is {cs.status}; it can no longer be rebased.")
        return redirect(detail_url(cs))
    return perform(
        request,
        detail_url(cs),
        changesets.rebase,
        cs,
        request.user,
        success="Rebased onto the current HEAD.",
    )


@require_POST
@login_required
def conflict_resolve(request, slug, change_set_id):
    cs = get_change_set(request, slug, change_set_id, Role.EDITOR)
    name, path, take = (request.POST.get(k, "") for k in ("component", "path", "take"))
    return perform(
        request,
        detail_url(cs, "conflicts"),
        changesets.resolve_conflict,
        cs,
        request.user,
        name,
        path,
        take,
        success=f"{name}{path}: kept {'HEAD' if take == 'head' else 'the change set'}'s value.",
    )
