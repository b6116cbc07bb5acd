"""Writing audit events. Every state change in the portal goes through `record` (or
`record_all`, for many at once). Once the transaction commits, the apps that listen
(portal.registry.register_audit_listener: notifications) hear the saved events."""

import logging

from django.db import transaction

from . import registry
from .models import AuditEvent
from .secrets import mask

log = logging.getLogger(__name__)


def record(verb, **fields):
    event = event_for(verb, **fields)
    event.save()
    _announce([event])
    return event


def record_all(events):
    """Save unsaved events (from `event_for`) in bulk."""
    saved = AuditEvent.objects.bulk_create(events, batch_size=1000)
    _announce(saved)
    return saved


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


def _announce(events):
    for listen in registry.audit_listeners():
        transaction.on_commit(lambda listen=listen: _hear(listen, events))


def _hear(listen, events):
    try:
        listen(events)
    except Exception:  # a listener's failure is its own; the change it heard is committed
        log.exception("audit listener %s failed on %d event(s)", listen, len(events))
