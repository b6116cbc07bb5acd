"""Errors the domain raises with a message meant for the user who caused them."""


class PortalError(Exception):
    """A user-facing error: the message says what was wrong and nothing was saved."""

    def __init__(self, message, *, errors=None):
        super().__init__(message)
        self.message = message
        # Optional detail: a list of {"path": JSON pointer, "message": str}.
        self.errors = list(errors or [])

    def as_dict(self):
        return {"error": self.message, "errors": self.errors}


class NotFound(PortalError):
    pass


class PermissionDenied(PortalError):
    pass


class ValidationError(PortalError):
    pass


class ConflictError(PortalError):
    """The object is in a state that does not allow this (e.g. editing an applied change set)."""
