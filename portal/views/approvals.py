"""The approval workflow: request approval, approve, reject."""

from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_POST

from portal import approvals
from portal.models import Role

from .changesets import detail_url
from .common import get_change_set, perform


@require_POST
@login_required
def request_approval(request, slug, change_set_id):
    cs = get_change_set(request, slug, change_set_id, Role.EDITOR)
    return perform(
        request,
        detail_url(cs, "approvals"),
        approvals.request_approval,
        cs,
        request.user,
        success="Approval requested.",
    )


@require_POST
@login_required
def approve(request, slug, change_set_id):
    cs = get_change_set(request, slug, change_set_id, Role.APPROVER)
    comment = request.POST.get("comment", "")
    return perform(
        request,
        detail_url(cs, "approvals"),
        approvals.approve,
        cs,
        request.user,
        comment,
        request.POST.get("checksum") or None,
        success="Approved.",
    )


@require_POST
@login_required
def reject(request, slug, change_set_id):
    cs = get_change_set(request, slug, change_set_id, Role.APPROVER)
    comment = request.POST.get("comment", "")
    return perform(
        request,
        detail_url(cs, "approvals"),
        approvals.reject,
        cs,
        request.user,
        comment,
        request.POST.get("checksum") or None,
        success="Rejected; the author can revise the change set.",
    )
