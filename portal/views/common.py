"""What every view does: look objects up through the user's membership (a 404 for
anyone outside the workspace: portal.middleware answers the domain's NotFound and
PermissionDenied), and turn an engine refusal into a message."""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render

from portal.access import change_set_for, workspace_for
from portal.errors import PortalError
from portal.models import Role


def get_workspace(request, slug, role=Role.VIEWER):
    return workspace_for(request.user, slug, role)


def get_change_set(request, slug, change_set_id, role=Role.VIEWER):
    change_set = change_set_for(request.user, change_set_id, role)
    if change_set.workspace.slug != slug:
        raise Http404(f"No change set {change_set_id} in {slug}.")
    return change_set


def get_or_404(queryset, **lookup):
    found = queryset.filter(**lookup).first()
    if found is None:
        raise Http404("Not found.")
    return found


def engine_error(request, exc, back):
    """An engine refusal as a message: a 4xx fragment for htmx, else a message and back."""
    if request.htmx:
        response = render(request, "portal/_flash.html", {"error": exc.message}, status=exc.status)
        response["HX-Retarget"] = "#flash"
        response["HX-Reswap"] = "innerHTML"
        return response
    messages.error(request, exc.message)
    return redirect(back)


def perform(request, back, action, *args, success="", then=None, **kwargs):
    """Run one engine function for a POST: a message and a redirect to `back` either way.

    `success` is the message, or a function of the engine's result that returns it;
    `then`, a function of the result, names the page to go to instead of `back`."""
    try:
        result = action(*args, **kwargs)
    except PortalError as exc:
        return engine_error(request, exc, back)
    if success:
        messages.success(request, success(result) if callable(success) else success)
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Refresh": "true"})
    return redirect(then(result) if then else back)
