"""Writing audit events. Every state change in the portal goes through `record`."""

from .models import AuditEvent
from .secrets import mask


def record(verb, **fields):
    event = event_for(verb, **fields)
    event.save()
    return event


def event_for(
    verb, *, actor=None, workspace=None, change_set=None, target="", before=None, after=None, write_only=()
):
    """The unsaved event `record` would write (for writing many in bulk)."""
    if change_set is not None and workspace is None:
        workspace = change_set.workspace
    return AuditEvent(
        verb=verb,
        actor=actor,
        workspace=workspace,
        change_set=change_set,
        target=str(target)[:300],
        before=mask(before, write_only) if before is not None else None,
        after=mask(after, write_only) if after is not None else None,
    )
