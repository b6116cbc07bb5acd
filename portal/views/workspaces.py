"""The site home, a workspace's home page and its settings page."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from portal import pages
from portal.access import role_of, workspaces_for
from portal.filters import ComponentFilter
from portal.models import Role

from .common import get_workspace

HOME_COMPONENTS = 50


@login_required
def home(request):
    context = {"workspaces": workspaces_for(request.user), **pages.waiting_for(request.user)}
    return render(request, "portal/home.html", context)


@login_required
def workspace_home(request, slug):
    workspace = get_workspace(request, slug)
    filters = ComponentFilter(
        request.GET or None, pages.components(workspace), pages.component_types(workspace)
    )
    components = Paginator(filters.qs, HOME_COMPONENTS).get_page(1)
    context = {
        "workspace": workspace,
        "filters": filters,
        "components": components,
        "change_sets": pages.open_change_sets(workspace),
        "role": role_of(request.user, workspace),
    }
    if request.htmx and request.htmx.target == "components":
        return render(request, "portal/_components_table.html", context)
    return render(request, "portal/workspace.html", context)


@login_required
def workspace_settings(request, slug):
    """The workspace's settings, for its admins; the apps above add their panels
    (notifications: targets and deliveries)."""
    workspace = get_workspace(request, slug, Role.ADMIN)
    context = {
        "workspace": workspace,
        "members": workspace.memberships.select_related("user").order_by("user__username"),
        "role": role_of(request.user, workspace),
        "default_apply_concurrency": settings.PORTAL_APPLY_CONCURRENCY,
    }
    return render(request, "portal/settings.html", context)
