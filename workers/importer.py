"""Import: adopt an existing AWS resource into a change set as a component whose
properties come from what AWS reports. Applying the change set binds the component to
the resource (it reads it; it never creates a second one)."""

from django.db import transaction

from portal import changesets
from portal.errors import NotFound, ValidationError
from portal.schemas import get_schema

from .aws import AwsTarget, Clients
from .providers.base import ProviderError, ResourceMissing, has_provider, provider_for


def desired_from_observed(type_name, observed):
    """Keep the properties a user may write (not read-only, known to the schema)."""
    schema = get_schema(type_name)
    read_only = {p.split("/")[1] for p in schema.read_only if p.count("/") == 1}
    return {
        k: v
        for k, v in observed.items()
        if k in schema.property_names and k not in read_only and v not in (None, [], {})
    }


def import_resource(change_set, user, type_name, physical_id, name=None):
    get_schema(type_name)
    if not has_provider(type_name):
        raise ValidationError(f"No provider for {type_name}: the portal cannot read it from AWS yet.")
    provider = provider_for(type_name, Clients(AwsTarget.for_workspace(change_set.workspace)))
    try:
        observed = provider.read(physical_id)
    except ResourceMissing:
        raise NotFound(f"No {type_name} {physical_id!r} in AWS ({change_set.workspace.region}).") from None
    except ProviderError as exc:
        raise ValidationError(f"AWS refused to describe {type_name} {physical_id!r}: {exc.message}") from None
    properties = desired_from_observed(type_name, observed.resource_value)
    name = name or physical_id.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    with transaction.atomic():
        entry = changesets.upsert_component(change_set, user, name, type_name, properties)
        entry.adopt_id = observed.physical_id
        entry.save(update_fields=["adopt_id"])
    return entry
