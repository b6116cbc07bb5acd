"""Action rows for the tests of claiming and scheduling."""

import uuid

from workers.models import Action, ActionStatus


def action(run, key, **fields):
    """An action of `run` keyed and named `key`, queued unless `fields` say otherwise."""
    fields.setdefault("status", ActionStatus.QUEUED)
    return Action.objects.create(
        run=run,
        key=key,
        kind="refresh",
        component_name=key,
        component_id=uuid.uuid4(),
        schema="AWS::Logs::LogGroup",
        **fields,
    )
