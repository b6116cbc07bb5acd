"""A pipeline as an AWS Step Functions state machine definition (Amazon States Language)
that does what the portal's run does, stage for stage:

- run_task        -> Task `arn:aws:states:::ecs:runTask.sync`, then a Choice on the exit code;
- deploy_services -> a describeServices that records the revisions in use (for the
                     rollback), then a Parallel with one `aws-sdk:ecs:updateService` branch
                     per service: TaskDefinition + ForceNewDeployment, never DesiredCount;
- wait_healthy    -> a describeServices / Choice / Wait poll loop with an attempt counter
                     (rollout FAILED fails; COMPLETED with running = desired goes on);
- http_check      -> Task `arn:aws:states:::http:invoke` (GET) and a Choice on the status;
- approval_gate   -> Task `arn:aws:states:::sns:publish.waitForTaskToken`.

With RollbackOnFailure, every failure after the first deploy goes to a RollBack Parallel
that puts each service back on the revision recorded before the deploy.

Values are the pipeline's resolved parameters (physical ids). What Step Functions needs
and the portal does not know is left as a `${Name}` placeholder, to be filled with the
state machine's DefinitionSubstitutions (CloudFormation): `${HttpConnectionArn}` (an
EventBridge connection for http:invoke), `${ApprovalTopicArn}` (an SNS topic whose
subscriber sends the task token back). A value still pending is written
`<pending: component/path>`.
"""

import math
import re

from portal.graph import SOURCE_KEY

RUN_TASK = "arn:aws:states:::ecs:runTask.sync"
UPDATE_SERVICE = "arn:aws:states:::aws-sdk:ecs:updateService"
DESCRIBE_SERVICES = "arn:aws:states:::aws-sdk:ecs:describeServices"
HTTP_INVOKE = "arn:aws:states:::http:invoke"
WAIT_FOR_APPROVAL = "arn:aws:states:::sns:publish.waitForTaskToken"
RUN_TASK_KEYS = (
    "Cluster",
    "TaskDefinition",
    "LaunchType",
    "PlatformVersion",
    "Group",
    "NetworkConfiguration",
    "Overrides",
)
DEFAULT_POLL = 15
SUCCEED = "Deployed"


def _key(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _fill(resolved, written):
    """The resolved value, with a readable stand-in where a subscription is still pending."""
    if resolved is None and isinstance(written, dict) and set(written) == {SOURCE_KEY}:
        spec = written[SOURCE_KEY] or {}
        return f"<pending: {spec.get('component')}{spec.get('path')}>"
    if isinstance(resolved, dict):
        written = written if isinstance(written, dict) else {}
        return {k: _fill(v, written.get(k)) for k, v in resolved.items()}
    if isinstance(resolved, list):
        written = written if isinstance(written, list) else []
        return [_fill(v, written[i] if i < len(written) else None) for i, v in enumerate(resolved)]
    return resolved


def _source_name(written, fallback):
    if isinstance(written, dict) and set(written) == {SOURCE_KEY}:
        return (written[SOURCE_KEY] or {}).get("component") or fallback
    return fallback


def _short(value):
    return str(value or "").rsplit("/", 1)[-1]


class _Builder:
    def __init__(self, pipeline, families):
        self.pipeline = pipeline
        self.families = families or {}  # service ARN or name -> task definition family
        self.states = {}
        self.rollback_from = None  # state name of the recorded revisions, once a deploy happened
        self.deploys = []  # [(record path, cluster, services)]

    def failure(self, name, error, cause):
        """Where a failure goes: the RollBack (after a deploy, if asked for) or a Fail state."""
        fail = f"{name}Failed"
        self.states[fail] = {"Type": "Fail", "Error": error, "Cause": cause}
        if self.rollback_from and self.pipeline.rollback_on_failure:
            self.states[fail] = {
                "Type": "Pass",
                "Result": {"Error": error, "Cause": cause},
                "ResultPath": "$.Failure",
                "Next": "RollBack",
            }
        return fail

    def catch(self, name):
        if self.rollback_from and self.pipeline.rollback_on_failure:
            return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.Failure", "Next": "RollBack"}]
        return None

    def task(self, name, state):
        catch = self.catch(name)
        if catch:
            state["Catch"] = catch
        self.states[name] = state

    # --- kinds ---

    def run_task(self, stage, params, written, following):
        key = _key(stage.name)
        parameters = {k: params[k] for k in RUN_TASK_KEYS if params.get(k) not in (None, "", {}, [])}
        self.task(
            stage.name,
            {
                "Type": "Task",
                "Resource": RUN_TASK,
                "Parameters": parameters,
                "TimeoutSeconds": stage.timeout,
                "ResultPath": f"$.{key}",
                "Next": f"Check{stage.name}",
            },
        )
        expected = params.get("ExpectedExitCode", 0)
        self.states[f"Check{stage.name}"] = {
            "Type": "Choice",
            "Choices": [
                {"Variable": f"$.{key}.Containers[0].ExitCode", "NumericEquals": expected, "Next": following}
            ],
            "Default": self.failure(
                stage.name, f"{stage.name}Failed", f"The task exited with a code other than {expected}"
            ),
        }

    def deploy_services(self, stage, params, written, following):
        key = _key(stage.name)
        cluster = params["Cluster"]
        services, written_services = params.get("Services") or [], written.get("Services") or []
        record = f"Record{stage.name}"
        names = [s if isinstance(s, str) else s.get("Service") for s in services]
        self.task(
            record,
            {
                "Type": "Task",
                "Resource": DESCRIBE_SERVICES,
                "Parameters": {"Cluster": cluster, "Services": names},
                "ResultSelector": {"Services.$": "$.Services"},
                "ResultPath": f"$.Previous{key}",
                "Next": stage.name,
            },
        )
        branches = []
        for i, item in enumerate(services):
            item = {"Service": item} if isinstance(item, str) else item
            w = (
                written_services[i]
                if i < len(written_services) and isinstance(written_services[i], dict)
                else {}
            )
            label = _source_name(w.get("Service"), _short(item["Service"]))
            parameters = {"Cluster": cluster, "Service": item["Service"]}
            task_definition = item.get("TaskDefinition") or self.families.get(item["Service"])
            if task_definition:
                parameters["TaskDefinition"] = task_definition
            # Never DesiredCount: each service keeps its own count.
            parameters["ForceNewDeployment"] = True
            state = f"Update {label}"[:80]
            branches.append(
                {
                    "StartAt": state,
                    "States": {
                        state: {
                            "Type": "Task",
                            "Resource": UPDATE_SERVICE,
                            "Parameters": parameters,
                            "End": True,
                        }
                    },
                }
            )
        # From here on the services may have moved: failures roll back (when asked for).
        if self.rollback_from is None:
            self.rollback_from = record
        self.deploys.append((f"$.Previous{key}", cluster, names))
        self.task(
            stage.name,
            {
                "Type": "Parallel",
                "Branches": branches,
                "ResultPath": None,
                "TimeoutSeconds": stage.timeout,
                "Next": following,
            },
        )

    def wait_healthy(self, stage, params, written, following):
        key = _key(stage.name)
        poll = params.get("PollSeconds") or DEFAULT_POLL
        attempts = max(1, math.ceil(stage.timeout / poll))
        services = params.get("Services") or []
        health = f"$.{key}Health.Services"
        counter = f"$.{key}Poll"
        self.states[stage.name] = {
            "Type": "Pass",
            "Result": {"Attempts": 0},
            "ResultPath": counter,
            "Next": f"{stage.name}Describe",
        }
        self.task(
            f"{stage.name}Describe",
            {
                "Type": "Task",
                "Resource": DESCRIBE_SERVICES,
                "Parameters": {"Cluster": params["Cluster"], "Services": services},
                "ResultSelector": {"Services.$": "$.Services"},
                "ResultPath": f"$.{key}Health",
                "Next": f"{stage.name}Check",
            },
        )
        failed = [
            {"Variable": f"{health}[{i}].Deployments[0].RolloutState", "StringEquals": "FAILED"}
            for i in range(len(services))
        ]
        healthy = []
        for i in range(len(services)):
            healthy += [
                {"Variable": f"{health}[{i}].Deployments[0].RolloutState", "StringEquals": "COMPLETED"},
                {
                    "Variable": f"{health}[{i}].RunningCount",
                    "NumericEqualsPath": f"{health}[{i}].DesiredCount",
                },
                {"Not": {"Variable": f"{health}[{i}].Deployments[1]", "IsPresent": True}},
            ]
        self.states[f"{stage.name}Check"] = {
            "Type": "Choice",
            "Choices": [
                {
                    **_any(failed),
                    "Next": self.failure(stage.name, "RolloutFailed", "A service's rollout failed"),
                },
                {**_all(healthy), "Next": following},
                {
                    "Variable": f"{counter}.Attempts",
                    "NumericGreaterThanEquals": attempts,
                    "Next": self._timed_out(stage),
                },
            ],
            "Default": f"{stage.name}Wait",
        }
        self.states[f"{stage.name}Wait"] = {"Type": "Wait", "Seconds": poll, "Next": f"{stage.name}Count"}
        self.states[f"{stage.name}Count"] = {
            "Type": "Pass",
            "Parameters": {"Attempts.$": f"States.MathAdd({counter}.Attempts, 1)"},
            "ResultPath": counter,
            "Next": f"{stage.name}Describe",
        }

    def _timed_out(self, stage):
        name = f"{stage.name}TimedOut"
        cause = f"The services were not healthy after {stage.timeout} s"
        if self.rollback_from and self.pipeline.rollback_on_failure:
            self.states[name] = {
                "Type": "Pass",
                "Result": {"Error": "TimedOut", "Cause": cause},
                "ResultPath": "$.Failure",
                "Next": "RollBack",
            }
        else:
            self.states[name] = {"Type": "Fail", "Error": "TimedOut", "Cause": cause}
        return name

    def http_check(self, stage, params, written, following):
        key = _key(stage.name)
        url = str(params["Url"]).strip()
        if "://" not in url:
            url = "http://" + url
        if params.get("Path"):
            url = url.rstrip("/") + "/" + str(params["Path"]).lstrip("/")
        expected = params.get("ExpectedStatus", 200)
        self.task(
            stage.name,
            {
                "Type": "Task",
                "Resource": HTTP_INVOKE,
                "Parameters": {
                    "ApiEndpoint": url,
                    "Method": "GET",
                    "Authentication": {"ConnectionArn": "${HttpConnectionArn}"},
                },
                "TimeoutSeconds": stage.timeout,
                "ResultPath": f"$.{key}",
                "Next": f"Check{stage.name}",
            },
        )
        self.states[f"Check{stage.name}"] = {
            "Type": "Choice",
            "Choices": [{"Variable": f"$.{key}.StatusCode", "NumericEquals": expected, "Next": following}],
            "Default": self.failure(
                stage.name, f"{stage.name}Failed", f"GET {url} did not answer {expected}"
            ),
        }

    def approval_gate(self, stage, params, written, following):
        self.task(
            stage.name,
            {
                "Type": "Task",
                "Resource": WAIT_FOR_APPROVAL,
                "Parameters": {
                    "TopicArn": "${ApprovalTopicArn}",
                    "Message": {
                        "Pipeline": self.pipeline.name,
                        "Stage": stage.name,
                        "Message": params.get("Message") or "go ahead?",
                        "TaskToken.$": "$$.Task.Token",
                    },
                },
                "TimeoutSeconds": stage.timeout,
                "ResultPath": None,
                "Next": following,
            },
        )

    def rollback(self):
        branches = []
        for path, cluster, names in self.deploys:
            for i, service in enumerate(names):
                state = f"Restore {_short(service)}"[:80]
                if any(state in b["States"] for b in branches):
                    continue
                branches.append(
                    {
                        "StartAt": state,
                        "States": {
                            state: {
                                "Type": "Task",
                                "Resource": UPDATE_SERVICE,
                                "Parameters": {
                                    "Cluster": cluster,
                                    "Service": service,
                                    "TaskDefinition.$": f"{path}.Services[{i}].TaskDefinition",
                                    "ForceNewDeployment": True,
                                },
                                "End": True,
                            }
                        },
                    }
                )
        self.states["RollBack"] = {
            "Type": "Parallel",
            "Branches": branches,
            "ResultPath": None,
            "Next": "RolledBack",
        }
        self.states["RolledBack"] = {
            "Type": "Fail",
            "Error": "DeploymentFailed",
            "Cause": "A stage failed; the services were put back on the revisions they ran before",
        }


def _any(rules):
    return rules[0] if len(rules) == 1 else {"Or": rules}


def _all(rules):
    return rules[0] if len(rules) == 1 else {"And": rules}


def export(pipeline, families=None):
    """The ASL definition (a dict) of a pipelines.Pipeline. `families` maps a service (ARN
    or name) to its task definition family, for deploy stages that name no TaskDefinition
    (ECS deploys the family's latest ACTIVE revision, as the portal does)."""
    builder = _Builder(pipeline, families)
    stages = pipeline.stages
    raw = pipeline.properties.get("Stages") or []
    for i, stage in enumerate(stages):
        following = SUCCEED
        if i + 1 < len(stages):
            nxt = stages[i + 1]
            following = f"Record{nxt.name}" if nxt.kind == "deploy_services" else nxt.name
        written = (raw[i].get("Parameters") if i < len(raw) and isinstance(raw[i], dict) else None) or {}
        params = _fill(stage.parameters, written)
        getattr(builder, stage.kind)(stage, params, written, following)
    builder.states[SUCCEED] = {"Type": "Succeed"}
    if builder.deploys and pipeline.rollback_on_failure:
        builder.rollback()
    first = stages[0]
    start = f"Record{first.name}" if first.kind == "deploy_services" else first.name
    comment = f"{pipeline.name}: {pipeline.description}".strip().rstrip(":")
    return {
        "Comment": f"{comment} (exported from the change-set portal; kinds: {', '.join(sorted({s.kind for s in stages}))})",
        "StartAt": start,
        "States": builder.states,
    }


def families_for(workspace):
    """{service ARN and name: task definition family} from HEAD's observed ECS services."""
    from portal.models import Component

    out = {}
    for c in Component.objects.filter(workspace=workspace, schema="AWS::ECS::Service").exclude(
        resource_id=""
    ):
        value = c.resource_value or {}
        family = _short(value.get("TaskDefinition")).split(":", 1)[0]
        if family:
            for key in (value.get("ServiceArn"), value.get("ServiceName"), c.resource_id):
                if key:
                    out[key] = family
    return out
