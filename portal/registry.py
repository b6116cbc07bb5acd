"""What the apps above the domain plug into it, each from its AppConfig.ready(), so that
the domain never imports them: the component types they can apply, and the spec's sugar
for portal types (a spec's `pipelines:` entries written as Portal::Pipeline components)."""

_type_checks = []
spec_sugar = {}  # Spec attribute -> function of one entry -> {"name", "schema", "properties"}


def register_types(has_type):
    """`has_type(type_name)` says whether an app can apply components of that type."""
    _type_checks.append(has_type)


def register_spec_sugar(key, to_component):
    spec_sugar[key] = to_component


def can_apply(type_name):
    return any(has_type(type_name) for has_type in _type_checks)


_deploy_stage_finders = []


def register_deployed_services(find):
    """`find(workspace)` gives {service component name: "pipeline P's S stage"} for the ECS
    services a pipeline's deploy stage deploys (they move to a new revision there)."""
    _deploy_stage_finders.append(find)


def deployed_services(workspace):
    found = {}
    for find in _deploy_stage_finders:
        found.update(find(workspace))
    return found


_audit_listeners = []


def register_audit_listener(listen):
    """`listen(events)` hears the audit events each commit saved (a list, in the order they
    were written), after the commit: what it does can neither block nor undo the change."""
    _audit_listeners.append(listen)


def audit_listeners():
    return list(_audit_listeners)
