"""The portal's pages, split by concern. Views are short: they look objects up through
the user's membership (portal.views.common), call one engine function, and render."""

from .workspaces import home

__all__ = ["home"]
