"""Domain errors a view lets through, answered once for every app's views."""

from django.core.exceptions import PermissionDenied as Forbidden
from django.http import Http404

from .errors import PortalError


class DomainErrorMiddleware:
    """A NotFound raised while looking something up is Django's 404 page and a
    PermissionDenied its 403 page, with the error's message. The refusals of actions are
    answered where the view knows where to send the user back (views.common.perform)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, PortalError):
            if exception.status == 404:
                raise Http404(exception.message) from None
            if exception.status == 403:
                raise Forbidden(exception.message) from None
        return None
