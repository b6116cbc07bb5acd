"""Pipelines: what they are, how they are written, and reading them from HEAD.

A pipeline is a component of the portal type `Portal::Pipeline`
(schema: portal/schemas/portal-pipeline.json). It lives in the workspace model like any
other component, so it is written in spec files, edited through change sets, diffed,
planned (a portal type is local: no AWS action), approved and merged like the rest, and
its parameters are ordinary subscriptions that follow renames and resolve to physical ids:

    - name: sandbox-tonys-chips-deploy-pipeline
      schema: Portal::Pipeline
      properties:
        Description: migrations, rolling deploy, wait, smoke tests
        RollbackOnFailure: true
        TriggerOnApply: false
        Stages:
          - Name: DeployServices
            Kind: deploy_services
            Timeout: 300
            Parameters:
              Cluster: {"$source": {"component": "cluster", "path": "/resource_value/Arn"}}
              Services:
                - Service: {"$source": {"component": "api-service", "path": "/resource_value/ServiceArn"}}

A run reads the HEAD component's resolved `domain` when it is asked for and freezes it.

Spec-file sugar (top-level `pipelines:`)
----------------------------------------
A spec file may list pipelines beside its components, in lower case:

    pipelines:
      - name: deploy                      -> component name
        description: ...                  -> Description
        rollback_on_failure: true         -> RollbackOnFailure   (optional)
        trigger_on_apply: false           -> TriggerOnApply      (optional)
        stages:                           -> Stages
          - name: RunMigrations           ->   Name
            kind: run_task                ->   Kind
            timeout: 1800                 ->   Timeout            (optional)
            parameters: {...}             ->   Parameters (kept as written: CloudFormation
                                               casing, subscriptions allowed)

Each entry is the component `{name, schema: "Portal::Pipeline", properties: {...}}` that
`component_from_spec` returns (and `spec_from_component` gives back); loading a spec
upserts those components like the ones under `components:`. A name used in both places
is an error.
"""

from dataclasses import dataclass, field

from portal import schemas
from portal.errors import NotFound, ValidationError
from portal.models import Component

PIPELINE_TYPE = "Portal::Pipeline"

# Stage kinds and their default timeouts (seconds).
KINDS = {
    "run_task": 1800,
    "deploy_services": 300,
    "wait_healthy": 900,
    "http_check": 120,
    "approval_gate": 86400,
}
KIND_LABELS = {
    "run_task": "Run an ECS task",
    "deploy_services": "Deploy services",
    "wait_healthy": "Wait until healthy",
    "http_check": "HTTP check",
    "approval_gate": "Approval gate",
}

# What a stage of each kind does to what runs, for the confirmation a run asks for.
KIND_EFFECTS = {
    "run_task": "runs a one-off task in the cluster (it may change data)",
    "deploy_services": "rolls the services out: their running tasks are replaced by new ones",
    "approval_gate": "waits until an approver lets the run go on",
}


@dataclass
class Stage:
    position: int
    name: str
    kind: str
    parameters: dict  # resolved
    timeout: int
    source: dict = field(default_factory=dict)  # as written

    @property
    def label(self):
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def effect(self):
        return KIND_EFFECTS.get(self.kind, "")


@dataclass
class Pipeline:
    name: str
    component_id: str
    description: str
    stages: list
    rollback_on_failure: bool
    trigger_on_apply: bool
    properties: dict  # as written
    domain: dict  # resolved
    pending: list  # pointers whose source has no value yet

    @classmethod
    def of(cls, component):
        domain, props = component.domain or {}, component.properties or {}
        raw_stages = props.get("Stages") if isinstance(props.get("Stages"), list) else []
        stages = []
        for i, stage in enumerate(domain.get("Stages") or []):
            if not isinstance(stage, dict):
                continue
            kind = stage.get("Kind") or ""
            timeout = stage.get("Timeout")
            stages.append(
                Stage(
                    position=i,
                    name=str(stage.get("Name") or f"Stage{i + 1}"),
                    kind=kind,
                    parameters=stage.get("Parameters") or {},
                    timeout=int(timeout)
                    if isinstance(timeout, int) and timeout > 0
                    else KINDS.get(kind, 600),
                    source=raw_stages[i] if i < len(raw_stages) and isinstance(raw_stages[i], dict) else {},
                )
            )
        return cls(
            name=component.name,
            component_id=str(component.id),
            description=str(domain.get("Description") or ""),
            stages=stages,
            rollback_on_failure=domain.get("RollbackOnFailure") is True,
            trigger_on_apply=domain.get("TriggerOnApply") is True,
            properties=props,
            domain=domain,
            pending=list(component.pending or []),
        )


def pipeline_components(workspace):
    return Component.objects.filter(workspace=workspace, schema=PIPELINE_TYPE).order_by("name")


def pipelines(workspace):
    return [Pipeline.of(c) for c in pipeline_components(workspace)]


def get_pipeline(workspace, name):
    component = pipeline_components(workspace).filter(name=name).first()
    if component is None:
        names = ", ".join(pipeline_components(workspace).values_list("name", flat=True)) or "none"
        raise NotFound(f"No pipeline {name!r} in {workspace.slug} (pipelines: {names}).")
    return Pipeline.of(component)


def problems(pipeline):
    """Why the pipeline cannot run now, as [{"path", "message"}] ([] when it can)."""
    out = [
        {"path": p, "message": "its source has no value yet (the producer is not created, or not applied)"}
        for p in pipeline.pending
    ]
    out.extend(schemas.validate_properties(PIPELINE_TYPE, pipeline.properties))
    if not out:
        # The resolved values must have the right types too ("Subnets" resolved to a list...).
        out.extend(schemas.validate_properties(PIPELINE_TYPE, pipeline.domain))
    seen = {}
    for stage in pipeline.stages:
        if stage.name in seen:
            out.append(
                {
                    "path": f"/Stages/{stage.position}/Name",
                    "message": f"{stage.name} is also the name of stage {seen[stage.name] + 1}; stage names are unique",
                }
            )
        seen.setdefault(stage.name, stage.position)
    return out


def check_runnable(pipeline):
    found = problems(pipeline)
    if found:
        detail = "; ".join(f"{p['path']}: {p['message']}" for p in found[:5])
        raise ValidationError(f"Pipeline {pipeline.name} cannot run: {detail}.", errors=found)


def deployed_services(workspace):
    """{ECS service component name: "pipeline P's S stage"} for the services a deploy stage
    names through a subscription: such a service moves to a new task-definition revision
    when that stage runs, not at apply (docs: deployments/README.md)."""
    found = {}
    for pipeline in pipelines(workspace):
        for stage in pipeline.stages:
            if stage.kind != "deploy_services":
                continue
            written = (stage.source.get("Parameters") or {}).get("Services") or []
            for item in written if isinstance(written, list) else []:
                value = item.get("Service") if isinstance(item, dict) and "$source" not in item else item
                source = value.get("$source") if isinstance(value, dict) else None
                if isinstance(source, dict) and isinstance(source.get("component"), str):
                    found.setdefault(source["component"], f"pipeline {pipeline.name}'s {stage.name} stage")
    return found


def pipelines_triggered_on_apply(workspace):
    return [p for p in pipelines(workspace) if p.trigger_on_apply]


# --- Spec-file sugar ---------------------------------------------------------------------------

_TOP = {
    "description": "Description",
    "rollback_on_failure": "RollbackOnFailure",
    "trigger_on_apply": "TriggerOnApply",
}
_STAGE = {"name": "Name", "kind": "Kind", "parameters": "Parameters", "timeout": "Timeout"}


def component_from_spec(entry):
    """A spec file's `pipelines:` entry as the component it stands for."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
        raise ValidationError('a pipeline is written {"name": ..., "stages": [...]}')
    unknown = sorted(set(entry) - {"name", "stages", *_TOP})
    if unknown:
        raise ValidationError(f"pipeline {entry['name']}: unknown key(s) {', '.join(unknown)}")
    properties = {_TOP[k]: entry[k] for k in _TOP if k in entry}
    stages = []
    for stage in entry.get("stages") or []:
        if not isinstance(stage, dict):
            raise ValidationError(
                f"pipeline {entry['name']}: a stage is an object with name, kind, parameters"
            )
        bad = sorted(set(stage) - set(_STAGE))
        if bad:
            raise ValidationError(f"pipeline {entry['name']}: unknown stage key(s) {', '.join(bad)}")
        stages.append({_STAGE[k]: stage[k] for k in _STAGE if k in stage})
    properties["Stages"] = stages
    return {"name": entry["name"].strip(), "schema": PIPELINE_TYPE, "properties": properties}


def spec_from_component(name, properties):
    """The inverse of `component_from_spec` (for exporting a workspace as spec sugar)."""
    top = {v: k for k, v in _TOP.items()}
    stage_keys = {v: k for k, v in _STAGE.items()}
    entry = {"name": name}
    entry.update({top[k]: v for k, v in properties.items() if k in top})
    entry["stages"] = [
        {stage_keys[k]: v for k, v in stage.items() if k in stage_keys}
        for stage in properties.get("Stages") or []
    ]
    return entry
