"""HEAD components: the list and a component's page."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from portal import inputs, pages
from portal.access import role_of
from portal.filters import ComponentFilter

from .common import get_change_set, get_workspace

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
    context = {
        "workspace": workspace,
        "cs": change_set,
        "c": page,
        "role": role_of(request.user, workspace),
    }
    return render(request, "portal/component.html", context)
