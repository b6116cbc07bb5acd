"""Small builders for tests: HEAD components through the real merge path."""

from portal import changesets
from portal.models import Component

# In the shop's database password; pages and logs must never show it.
SECRET = "hunter2-very-secret"


def head(workspace, user, components):
    """Put `components` ({name: (schema, properties)}) into HEAD via a merged change set."""
    cs = changesets.create_change_set(workspace, user, "seed HEAD")
    for name, (schema, props) in components.items():
        changesets.upsert_component(cs, user, name, schema, props)
    changesets.merge(cs, user)
    return {c.name: c for c in Component.objects.filter(workspace=workspace)}


def src(component, path):
    return {"$source": {"component": component, "path": path}}


def observe(component, physical_id, value):
    """What a worker does after AWS answered: record the observed resource."""
    from portal import graph

    component.resource_id = physical_id
    component.resource_value = value
    component.resource_status = "ok"
    component.save()
    return graph.propagate(component.workspace, {component.name}, roots=("resource_value",))
