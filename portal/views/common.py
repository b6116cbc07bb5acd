"""What every view does: look objects up through the user's membership (a 404 for
anyone outside the workspace), and turn an engine error into a message."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied as Forbidden
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render

from portal.access import change_set_for, workspace_for
from portal.errors import ConflictError, NotFound, PermissionDenied, PortalError, ValidationError
from portal.models import Role

STATUS = {ValidationError: 400, PermissionDenied: 403, NotFound: 404, ConflictError: 409}


def fetch(lookup, *args, **kwargs):
    """Call an access helper; NotFound becomes a 404, PermissionDenied a 403."""
    try:
        return lookup(*args, **kwargs)
    except NotFound as exc:
        raise Http404(exc.message) from None
    except PermissionDenied as exc:
        raise Forbidden(exc.message) from None


def get_workspace(request, slug, role=Role.VIEWER):
    return fetch(workspace_for, request.user, slug, role)


def get_change_set(request, slug, change_set_id, role=Role.VIEWER):
    change_set = fetch(change_set_for, request.user, change_set_id, role)
    if change_set.workspace.slug != slug:
        raise Http404(f"No change set {change_set_id} in {slug}.")
    return change_set


def get_or_404(queryset, **lookup):
    found = queryset.filter(**lookup).first()
    if found is None:
        raise Http404("Not found.")
    return found


def status_of(exc):
    return next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)


def engine_error(request, exc, back):
    """An engine refusal as a message: a 4xx fragment for htmx, else a message and back."""
    if request.htmx:
        response = render(request, "portal/_flash.html", {"error": exc.message}, status=status_of(exc))
        response["HX-Retarget"] = "#flash"
        response["HX-Reswap"] = "innerHTML"
        return response
    messages.error(request, exc.message)
    return redirect(back)


def perform(request, back, action, *args, success="", **kwargs):
    """Run one engine function for a POST: a message and a redirect to `back` either way.

    `success` is the message, or a function of the engine's result that returns it."""
    try:
        result = action(*args, **kwargs)
    except PortalError as exc:
        return engine_error(request, exc, back)
    if success:
        messages.success(request, success(result) if callable(success) else success)
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Refresh": "true"})
    return redirect(back)
