"""Refresh: read every HEAD resource from AWS, store what AWS holds, mark drift per path.

Drift compares what the portal last applied with what AWS reports, for the properties
the user set (AWS adds defaults we never asked for; those are not drift).
"""

from django.contrib.auth import get_user_model
from django.utils import timezone

from portal import audit, graph
from portal.models import Component, ResourceStatus, Workspace

from .aws import AwsTarget, Clients
from .providers.base import ProviderError, ResourceMissing, has_provider, provider_for


def drift_between(desired, observed, path=""):
    """[{path, desired, observed}] where a value the user set differs in AWS."""
    if isinstance(desired, dict) and isinstance(observed, dict):
        out = []
        for key, value in desired.items():
            if key in observed:
                out.extend(drift_between(value, observed[key], f"{path}/{key}"))
            elif value not in (None, [], {}):
                out.append({"path": f"{path}/{key}", "desired": value, "observed": None})
        return out
    if isinstance(desired, list) and isinstance(observed, list):
        if len(desired) != len(observed):
            return [{"path": path or "/", "desired": desired, "observed": observed}]
        out = []
        for i, (d, o) in enumerate(zip(desired, observed, strict=True)):
            out.extend(drift_between(d, o, f"{path}/{i}"))
        return out
    if desired != observed and str(desired) != str(observed):
        return [{"path": path or "/", "desired": desired, "observed": observed}]
    return []


def refresh_component(component, clients):
    if not component.resource_id or not has_provider(component.schema):
        return None
    provider = provider_for(component.schema, clients)
    try:
        observed = provider.read(component.resource_id, component.domain)
    except ResourceMissing:
        component.resource_status = ResourceStatus.DRIFTED
        component.drift = [
            {"path": "/", "desired": "exists", "observed": "missing: deleted outside the portal"}
        ]
        component.refreshed_at = timezone.now()
        component.save(update_fields=["resource_status", "drift", "refreshed_at"])
        return component.drift
    except ProviderError as exc:
        component.drift = [{"path": "/", "desired": None, "observed": f"could not read: {exc.message}"}]
        component.save(update_fields=["drift"])
        return component.drift
    drift = drift_between(component.applied or {}, observed.resource_value)
    component.resource_value = observed.resource_value
    component.drift = drift
    component.resource_status = ResourceStatus.DRIFTED if drift else ResourceStatus.OK
    component.refreshed_at = timezone.now()
    component.save(update_fields=["resource_value", "drift", "resource_status", "refreshed_at"])
    return drift


def refresh_workspace(workspace_id, user_id=None):
    ws = Workspace.objects.get(pk=workspace_id)
    clients = Clients(AwsTarget.for_workspace(ws))
    drifted, read = [], 0
    moved = set()
    for component in Component.objects.filter(workspace=ws).exclude(resource_id=""):
        before = component.resource_value
        drift = refresh_component(component, clients)
        if drift is None:
            continue
        read += 1
        if drift:
            drifted.append(component.name)
        if component.resource_value != before:
            moved.add(component.name)
    if moved:
        graph.propagate(ws, moved, roots=("resource_value",))
    actor = _user(user_id) if user_id else None
    audit.record(
        "workspace.refreshed",
        actor=actor,
        workspace=ws,
        target=ws.slug,
        after={"read": read, "drifted": drifted},
    )
    return {"read": read, "drifted": drifted}


def _user(user_id):
    return get_user_model().objects.filter(pk=user_id).first()
