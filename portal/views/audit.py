"""Audit log pages: per workspace and per change set, filterable and paginated."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from portal import pages
from portal.filters import AuditFilter

from .common import get_change_set, get_workspace

PER_PAGE = 50


def _audit_page(request, workspace, change_set=None):
    filters = AuditFilter(
        request.GET or None,
        pages.audit_events(workspace, change_set),
        pages.audit_verbs(workspace),
        pages.audit_actors(workspace),
    )
    page = Paginator(filters.qs, PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = pages.masked_events(list(page.object_list), workspace)
    context = {"workspace": workspace, "cs": change_set, "filters": filters, "events": page}
    return render(request, "portal/audit.html", context)


@login_required
def workspace_audit(request, slug):
    return _audit_page(request, get_workspace(request, slug))


@login_required
def changeset_audit(request, slug, change_set_id):
    cs = get_change_set(request, slug, change_set_id)
    return _audit_page(request, cs.workspace, cs)
