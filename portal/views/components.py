"""HEAD components: the list and a component's page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal import changesets, inputs, pages
from portal.access import role_of
from portal.errors import PortalError
from portal.filters import ComponentFilter
from portal.models import Role

from .common import engine_error, get_change_set, get_workspace

PER_PAGE = 100


@login_required
def component_list(request, slug):
    workspace = get_workspace(request, slug)
    filters = ComponentFilter(
        request.GET or None, pages.components(workspace), pages.component_types(workspace)
    )
    context = {
        "workspace": workspace,
        "filters": filters,
        "components": Paginator(filters.qs, PER_PAGE).get_page(request.GET.get("page")),
        "full_list": True,
    }
    if request.htmx and request.htmx.target == "components":
        return render(request, "portal/_components_table.html", context)
    return render(request, "portal/components.html", context)


@login_required
def component_detail(request, slug, name):
    workspace = get_workspace(request, slug)
    change_set = None
    if (request.GET.get("changeset") or "").isdigit():
        try:
            change_set_id = inputs.parse_id(request.GET["changeset"])
        except ValueError:
            raise Http404("No such change set.") from None
        change_set = get_change_set(request, slug, change_set_id)
    page = pages.component_page(workspace, name, change_set)
    if page is None:
        raise Http404(f"No component {name!r} in {slug}.")
    role = role_of(request.user, workspace)
    context = {
        "workspace": workspace,
        "cs": change_set,
        "c": page,
        "role": role,
        "edit_in": pages.change_sets_to_edit_in(workspace, name) if role.is_editor and not change_set else [],
    }
    return render(request, "portal/component.html", context)


@require_POST
@login_required
def component_edit_in(request, slug, name):
    """The component page's "edit in a change set": on to its editor in the open change set
    picked, or in a new one started for it."""
    workspace = get_workspace(request, slug, Role.EDITOR)
    back = reverse("component", args=[slug, name])
    if pages.component_page(workspace, name) is None:
        raise Http404(f"No component {name!r} in {slug}.")
    choice = request.POST.get("change_set", "")
    if choice == "new":
        title = request.POST.get("new_name", "").strip() or f"edit-{name}"[:200]
        try:
            cs = changesets.create_change_set(workspace, request.user, title)
        except PortalError as exc:
            return engine_error(request, exc, back)
        messages.success(request, f"Change set #{cs.pk} {cs.name} opened.")
    else:
        try:
            cs = get_change_set(request, slug, inputs.parse_id(choice), Role.EDITOR)
        except ValueError:
            messages.error(request, "Pick a change set, or start a new one.")
            return redirect(back)
        if not cs.is_editable:
            messages.error(
                request,
                f"Change set #{cs.pk} is {cs.get_status_display().lower()}: it can no longer be edited.",
            )
            return redirect(back)
        if pages.component_in_change_set(cs, name) is None:
            messages.error(request, f"Change set #{cs.pk} deletes {name}: revert that there to edit it.")
            return redirect(back)
    return redirect("component-edit", slug, cs.pk, name)
