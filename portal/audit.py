"""Writing audit events. Every state change in the portal goes through `record`."""

from .models import AuditEvent
from .secrets import mask


def record(
    verb, *, actor=None, workspace=None, change_set=None, target="", before=None, after=None, write_only=()
):
    if change_set is not None and workspace is None:
        workspace = change_set.workspace
    return AuditEvent.objects.create(
        verb=verb,
        actor=actor,
        workspace=workspace,
        change_set=change_set,
        target=str(target)[:300],
        before=mask(before, write_only) if before is not None else None,
        after=mask(after, write_only) if after is not None else None,
    )
