"""Errors the domain raises with a message meant for the user who caused them.

Each class carries the answer it gets: `status` for a page (see portal.middleware and
portal.views.common.perform) and `exit_code` for a management command (portal.cli)."""


class PortalError(Exception):
    """A user-facing error: the message says what was wrong and nothing was saved."""

    status = 400
    exit_code = 2

    def __init__(self, message, *, errors=None):
        super().__init__(message)
        self.message = message
        # Optional detail: a list of {"path": JSON pointer, "message": str}.
        self.errors = list(errors or [])

    def as_dict(self):
        return {"error": self.message, "errors": self.errors}


class NotFound(PortalError):
    status = 404
    exit_code = 3


class PermissionDenied(PortalError):
    status = 403
    exit_code = 4


class ValidationError(PortalError):
    pass


class ConflictError(PortalError):
    """The object is in a state that does not allow this (e.g. editing an applied change set)."""

    status = 409
    exit_code = 5
