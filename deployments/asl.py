"""A pipeline as an AWS Step Functions state machine definition (Amazon States Language)
that does what the portal's run does, stage for stage. Each stage's first state is named
after the stage; the states it needs besides are named "<stage> <what>".

- run_task        -> `ecs:runTask` (request-response), then a describeTasks / Wait poll loop
                     until the task is STOPPED; every container must have exited with
                     ExpectedExitCode (counted with a JSONPath filter, not `.sync`, which
                     fails the state on any non-zero exit); at the timeout the task is
                     stopped, as the portal does;
- deploy_services -> a describeServices that records the revisions in use (for the
                     rollback), then a Parallel with one `aws-sdk:ecs:updateService` branch
                     per service (TaskDefinition + ForceNewDeployment, never DesiredCount).
                     Each branch keeps its outcome and the id of the PRIMARY deployment it
                     started; a refused service fails the stage after the others went on;
- wait_healthy    -> a describeServices / Choice / Wait poll loop: per service the PRIMARY
                     deployment (selected by status with a JSONPath filter) must be the one
                     the pipeline started, rollout COMPLETED, running = desired, and no
                     ACTIVE deployment left; a FAILED rollout or a PRIMARY that is not ours
                     (ECS rolled back) fails at once;
- http_check      -> `http:invoke` GET in a poll loop until it answers ExpectedStatus
                     (a non-2xx status is an error of the HTTP task, caught by its name);
- approval_gate   -> `sns:publish.waitForTaskToken`.

State data lives under `$.Pipeline`: `Stages.<stage>` (what a stage read), `Previous.<stage>`
(revisions recorded before a deploy), `Deployed.<stage>` (one outcome per service,
initialised to "not deployed" before the first deploy), `Failure` (why a stage failed).

With RollbackOnFailure, every failure after the first deploy starts goes to the RollBack
Parallel: each service a deploy stage got deployed goes back on the revision that stage
recorded (a later deploy stage's record wins, as in the portal); a service no stage
deployed is left alone. The machine then fails with the stage's error and cause.

Values are the pipeline's resolved parameters (physical ids). What Step Functions needs
and the portal does not know is left as a `${Name}` placeholder, to be filled with the
state machine's DefinitionSubstitutions (CloudFormation): `${HttpConnectionArn}` (an
EventBridge connection for http:invoke), `${ApprovalTopicArn}` (an SNS topic whose
subscriber sends the task token back). A value still pending is written
`<pending: component/path>`. Where the machine cannot mean what the portal does, the
definition's Comment says so.
"""

import math
import re

from portal.graph import SOURCE_KEY
from portal.models import Component

RUN_TASK = "arn:aws:states:::ecs:runTask"
DESCRIBE_TASKS = "arn:aws:states:::aws-sdk:ecs:describeTasks"
STOP_TASK = "arn:aws:states:::aws-sdk:ecs:stopTask"
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
HTTP_REQUEST_SECONDS = 10  # each GET, as the portal's
SUCCEED = "Deployed"
ROLLBACK = "RollBack"
ROLLED_BACK = "RolledBack"
DATA = "$.Pipeline"
FAILURE = f"{DATA}.Failure"
MAX_NAME = 80  # Step Functions' limit on a state name


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


def _poll(params):
    value = params.get("PollSeconds")
    return max(1, math.ceil(value)) if isinstance(value, int | float) and value > 0 else DEFAULT_POLL


def _service_filter(service):
    """A JSONPath filter that picks `service` (an ARN or a name) out of DescribeServices."""
    field = "ServiceArn" if str(service).startswith("arn:") else "ServiceName"
    return f"[?(@.{field} == '{str(service).replace(chr(39), '')}')]"


def _family(previous):
    """The task definition family of a recorded revision ARN (…:task-definition/web:7 -> web)."""
    split = f"States.ArrayGetItem(States.StringSplit({previous}, '/'), 1)"
    return f"States.ArrayGetItem(States.StringSplit({split}, ':'), 0)"


def _any(rules):
    return rules[0] if len(rules) == 1 else {"Or": rules}


def _all(rules):
    return rules[0] if len(rules) == 1 else {"And": rules}


class _Scope:
    """The states of the machine or of one Parallel branch. Names are unique across the
    whole machine (Step Functions requires it), so all scopes share `taken`."""

    def __init__(self, taken):
        self.taken = taken
        self.states = {}

    def add(self, name, state):
        name = name[:MAX_NAME]
        if name in self.taken:
            raise ValueError(f"state name {name!r} is used twice")
        self.taken.add(name)
        self.states[name] = state
        return name

    def unique(self, name):
        """`name`, or `name (2)`, `name (3)`... when a state has it already."""
        candidate, n = name[:MAX_NAME], 1
        while candidate in self.taken:
            n += 1
            suffix = f" ({n})"
            candidate = name[: MAX_NAME - len(suffix)] + suffix
        return candidate


class _Builder:
    def __init__(self, pipeline, families):
        self.pipeline = pipeline
        self.families = families or {}  # service ARN or name -> task definition family
        self.taken = set()
        self.top = _Scope(self.taken)
        self.deploying = False  # a deploy stage has started: failures roll back (if asked for)
        self.deploys = []  # [(stage key, cluster, [service])], in pipeline order
        self.started = {}  # (cluster, service) -> path of the deployment id the pipeline started
        self.differences = []  # where the machine means something else than a portal run

    @property
    def rolls_back(self):
        return self.deploying and self.pipeline.rollback_on_failure

    def failure(self, name, error, cause):
        """A state that fails the stage: into the RollBack (after a deploy started, if asked
        for) with the error and cause, or a Fail state."""
        if self.rolls_back:
            return self.top.add(
                name,
                {
                    "Type": "Pass",
                    "Result": {"Error": error, "Cause": cause},
                    "ResultPath": FAILURE,
                    "Next": ROLLBACK,
                },
            )
        return self.top.add(name, {"Type": "Fail", "Error": error, "Cause": cause})

    def task(self, name, state):
        if self.rolls_back:
            state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": FAILURE, "Next": ROLLBACK}]
        return self.top.add(name, state)

    def counter(self, stage):
        return f"{DATA}.Stages.{_key(stage.name)}.Poll"

    def count_and_wait(self, stage, poll, then):
        """`<stage> wait` (poll seconds) -> `<stage> count` (attempts + 1) -> `then`."""
        counter = self.counter(stage)
        self.top.add(f"{stage.name} wait", {"Type": "Wait", "Seconds": poll, "Next": f"{stage.name} count"})
        self.top.add(
            f"{stage.name} count",
            {
                "Type": "Pass",
                "Parameters": {"Attempts.$": f"States.MathAdd({counter}.Attempts, 1)"},
                "ResultPath": counter,
                "Next": then,
            },
        )
        return f"{stage.name} wait"

    # --- kinds ---

    def run_task(self, stage, params, written, following):
        name, base = stage.name, f"{DATA}.Stages.{_key(stage.name)}"
        poll = DEFAULT_POLL
        attempts = max(1, math.ceil(stage.timeout / poll))
        expected = params.get("ExpectedExitCode", 0)
        parameters = {k: params[k] for k in RUN_TASK_KEYS if params.get(k) not in (None, "", {}, [])}
        self.task(
            name,
            {
                "Type": "Task",
                "Resource": RUN_TASK,
                "Parameters": parameters,
                "ResultSelector": {"Tasks.$": "$.Tasks", "Failures.$": "$.Failures", "Poll": {"Attempts": 0}},
                "ResultPath": base,
                "Next": f"{name} started",
            },
        )
        task_arn = f"{base}.Tasks[0].TaskArn"
        self.top.add(
            f"{name} started",
            {
                "Type": "Choice",
                "Choices": [{"Variable": task_arn, "IsPresent": True, "Next": f"{name} wait"}],
                "Default": self.failure(
                    f"{name} not started",
                    "TaskNotStarted",
                    f"ECS could not start a task from {_short(params.get('TaskDefinition'))} "
                    f"(the RunTask Failures are in {base}.Failures)",
                ),
            },
        )
        self.count_and_wait(stage, poll, f"{name} describe")
        described = f"{base}.Described"
        self.task(
            f"{name} describe",
            {
                "Type": "Task",
                "Resource": DESCRIBE_TASKS,
                "Parameters": {"Cluster": params["Cluster"], "Tasks.$": f"States.Array({task_arn})"},
                "ResultSelector": {
                    "Tasks.$": "$.Tasks",
                    "Expected.$": f"$.Tasks[*].Containers[?(@.ExitCode == {expected})]",
                },
                "ResultPath": described,
                "Next": f"{name} stopped",
            },
        )
        self.top.add(
            f"{name} stopped",
            {
                "Type": "Choice",
                "Choices": [
                    {
                        "Not": {"Variable": f"{described}.Tasks[0]", "IsPresent": True},
                        "Next": self.failure(
                            f"{name} lost", "TaskNotFound", "The task cannot be found any more"
                        ),
                    },
                    {
                        "Variable": f"{described}.Tasks[0].LastStatus",
                        "StringEquals": "STOPPED",
                        "Next": f"{name} exit codes",
                    },
                    {
                        "Variable": f"{self.counter(stage)}.Attempts",
                        "NumericGreaterThanEquals": attempts,
                        "Next": f"{name} stop task",
                    },
                ],
                "Default": f"{name} wait",
            },
        )
        self.top.add(
            f"{name} exit codes",
            {
                "Type": "Pass",
                "Parameters": {
                    "Containers.$": f"States.ArrayLength({described}.Tasks[0].Containers)",
                    "Expected.$": f"States.ArrayLength({described}.Expected)",
                },
                "ResultPath": f"{base}.ExitCodes",
                "Next": f"{name} check",
            },
        )
        codes = f"{base}.ExitCodes"
        self.top.add(
            f"{name} check",
            {
                "Type": "Choice",
                "Choices": [
                    {
                        "And": [
                            {"Variable": f"{codes}.Containers", "NumericGreaterThan": 0},
                            {"Variable": f"{codes}.Expected", "NumericEqualsPath": f"{codes}.Containers"},
                        ],
                        "Next": following,
                    }
                ],
                "Default": self.failure(
                    f"{name} failed",
                    f"{name}Failed",
                    f"A container of the task exited with a code other than {expected} "
                    f"(exit codes and StoppedReason in {described}.Tasks[0])",
                ),
            },
        )
        self.differences.append(
            f"{name}: the portal requires ExpectedExitCode of the essential containers only (or of the "
            "stage's Container), the machine of every container"
        )
        reason = f"the stage timed out after {stage.timeout} s"
        self.top.add(
            f"{name} stop task",
            {
                "Type": "Task",
                "Resource": STOP_TASK,
                "Parameters": {"Cluster": params["Cluster"], "Task.$": task_arn, "Reason": reason},
                "ResultPath": None,
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "ResultPath": f"{base}.StopError",
                        "Next": f"{name} timed out",
                    }
                ],
                "Next": f"{name} timed out",
            },
        )
        self.failure(
            f"{name} timed out", "TimedOut", f"The task did not stop within {stage.timeout} s; it was stopped"
        )

    def deploy_services(self, stage, params, written, following):
        name, key = stage.name, _key(stage.name)
        cluster = params["Cluster"]
        services, written_services = params.get("Services") or [], written.get("Services") or []
        items = [{"Service": s} if isinstance(s, str) else s for s in services]
        names = [item["Service"] for item in items]
        previous = f"{DATA}.Previous.{key}"
        record = name
        if not self.deploying:
            # Before anything is deployed: every deploy stage's services "not deployed", so the
            # rollback reads a known value whichever stage failed.
            record = f"{name} record"
            self.top.add(
                name,
                {
                    "Type": "Pass",
                    "Comment": "What the rollback reads, set before the first deploy",
                    "Result": self.not_deployed(),
                    "ResultPath": f"{DATA}.Deployed",
                    "Next": record,
                },
            )
        self.task(
            record,
            {
                "Type": "Task",
                "Resource": DESCRIBE_SERVICES,
                "Parameters": {"Cluster": cluster, "Services": names},
                "ResultSelector": {
                    f"S{i}.$": f"$.Services{_service_filter(s)}.TaskDefinition" for i, s in enumerate(names)
                },
                "ResultPath": previous,
                "Next": f"{name} found",
            },
        )
        self.top.add(
            f"{name} found",
            {
                "Type": "Choice",
                "Choices": [
                    {
                        **_all(
                            [
                                {"Variable": f"{previous}.S{i}[0]", "IsPresent": True}
                                for i in range(len(names))
                            ]
                        ),
                        "Next": f"{name} deploy",
                    }
                ],
                "Default": self.failure(
                    f"{name} not found",
                    "ServiceNotFound",
                    f"A service is not in cluster {_short(cluster)}: {', '.join(_short(s) for s in names)}",
                ),
            },
        )
        self.deploying = True
        branches = []
        for i, item in enumerate(items):
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
            else:  # the latest ACTIVE revision of the family the service runs, as the portal
                parameters["TaskDefinition.$"] = _family(f"{previous}.S{i}[0]")
            # Never DesiredCount: each service keeps its own count.
            parameters["ForceNewDeployment"] = True
            branch = _Scope(self.taken)
            update = branch.unique(f"{name} update {label}")
            refused = branch.unique(f"{name} refused {label}")
            branch.add(
                update,
                {
                    "Type": "Task",
                    "Resource": UPDATE_SERVICE,
                    "Parameters": parameters,
                    "TimeoutSeconds": stage.timeout,
                    "ResultSelector": {
                        "Service": label,
                        "Deployed": True,
                        "Deployment.$": "$.Service.Deployments[?(@.Status == 'PRIMARY')].Id",
                    },
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": refused}],
                    "End": True,
                },
            )
            branch.add(
                refused,
                {
                    "Type": "Pass",
                    "Parameters": {
                        "Service": label,
                        "Deployed": False,
                        "Error.$": "$.Error",
                        "Cause.$": "$.Cause",
                    },
                    "End": True,
                },
            )
            branches.append({"StartAt": update, "States": branch.states})
            self.started[(cluster, item["Service"])] = f"{DATA}.Deployed.{key}[{i}].Deployment[0]"
        self.deploys.append((key, cluster, names))
        deployed = f"{DATA}.Deployed.{key}"
        self.task(
            f"{name} deploy",
            {"Type": "Parallel", "Branches": branches, "ResultPath": deployed, "Next": f"{name} check"},
        )
        self.top.add(
            f"{name} check",
            {
                "Type": "Choice",
                "Choices": [
                    {
                        **_all(
                            [
                                {"Variable": f"{deployed}[{i}].Deployed", "BooleanEquals": True}
                                for i in range(len(names))
                            ]
                        ),
                        "Next": following,
                    }
                ],
                "Default": self.failure(
                    f"{name} refused",
                    "DeploymentRefused",
                    f"ECS refused a service's deployment (each service's outcome is in {deployed})",
                ),
            },
        )

    def not_deployed(self):
        return {
            _key(s.name): [{"Deployed": False} for _ in s.parameters.get("Services") or []]
            for s in self.pipeline.stages
            if s.kind == "deploy_services"
        }

    def wait_healthy(self, stage, params, written, following):
        name, base = stage.name, f"{DATA}.Stages.{_key(stage.name)}"
        poll = _poll(params)
        attempts = max(1, math.ceil(stage.timeout / poll))
        cluster, services = params["Cluster"], params.get("Services") or []
        self.top.add(
            name,
            {
                "Type": "Pass",
                "Result": {"Attempts": 0},
                "ResultPath": self.counter(stage),
                "Next": f"{name} describe",
            },
        )
        selector = {}
        for i, service in enumerate(services):
            picked = f"$.Services{_service_filter(service)}"
            selector[f"S{i}"] = {
                "Service.$": picked,
                "Primary.$": f"{picked}.Deployments[?(@.Status == 'PRIMARY')]",
                "Active.$": f"{picked}.Deployments[?(@.Status == 'ACTIVE')]",
            }
        health = f"{base}.Health"
        self.task(
            f"{name} describe",
            {
                "Type": "Task",
                "Resource": DESCRIBE_SERVICES,
                "Parameters": {"Cluster": cluster, "Services": services},
                "ResultSelector": selector,
                "ResultPath": health,
                "Next": f"{name} check",
            },
        )
        missing, failed, not_ours, healthy = [], [], [], []
        for i, service in enumerate(services):
            svc, primary = f"{health}.S{i}.Service[0]", f"{health}.S{i}.Primary[0]"
            rollout = f"{primary}.RolloutState"
            missing.append({"Not": {"Variable": svc, "IsPresent": True}})
            failed.append(
                {
                    "And": [
                        {"Variable": rollout, "IsPresent": True},
                        {"Variable": rollout, "StringEquals": "FAILED"},
                    ]
                }
            )
            ours = self.started.get((cluster, service))
            if ours:
                not_ours.append({"Not": {"Variable": f"{primary}.Id", "StringEqualsPath": ours}})
            healthy += [
                {
                    "Or": [
                        {"Not": {"Variable": rollout, "IsPresent": True}},
                        {"Variable": rollout, "StringEquals": "COMPLETED"},
                    ]
                },
                {"Variable": f"{svc}.RunningCount", "NumericEqualsPath": f"{svc}.DesiredCount"},
                {"Variable": f"{primary}.RunningCount", "NumericEqualsPath": f"{primary}.DesiredCount"},
                {"Not": {"Variable": f"{health}.S{i}.Active[0]", "IsPresent": True}},
            ]
        choices = [
            {
                **_any(missing),
                "Next": self.failure(
                    f"{name} not found", "ServiceNotFound", f"A service is not in cluster {_short(cluster)}"
                ),
            },
            {
                **_any(failed),
                "Next": self.failure(f"{name} rollout failed", "RolloutFailed", "A service's rollout failed"),
            },
        ]
        if not_ours:
            choices.append(
                {
                    **_any(not_ours),
                    "Next": self.failure(
                        f"{name} not ours",
                        "RolledBackByECS",
                        "A service's PRIMARY deployment is not the one the pipeline started (ECS rolled it back)",
                    ),
                }
            )
        choices += [
            {**_all(healthy), "Next": following},
            {
                "Variable": f"{self.counter(stage)}.Attempts",
                "NumericGreaterThanEquals": attempts,
                "Next": self.failure(
                    f"{name} timed out", "TimedOut", f"The services were not healthy after {stage.timeout} s"
                ),
            },
        ]
        self.top.add(
            f"{name} check",
            {
                "Type": "Choice",
                "Choices": choices,
                "Default": self.count_and_wait(stage, poll, f"{name} describe"),
            },
        )
        self.differences.append(
            f"{name}: an older deployment still ACTIVE with no task running keeps the wait going"
            " (the portal counts only older deployments that still run tasks)"
        )

    def http_check(self, stage, params, written, following):
        name, base = stage.name, f"{DATA}.Stages.{_key(stage.name)}"
        url = str(params["Url"]).strip()
        if "://" not in url:
            url = "http://" + url
        if params.get("Path"):
            url = url.rstrip("/") + "/" + str(params["Path"]).lstrip("/")
        scheme, rest = url.split("://", 1)
        if scheme.lower() != "https":
            self.differences.append(
                f"{name}: the portal GETs {url}; the HTTP task calls only HTTPS, so the machine GETs "
                f"https://{rest}, which the host must serve with a publicly trusted certificate"
            )
            url = f"https://{rest}"
        self.differences.append(
            f"{name}: the GET comes from Step Functions through ${{HttpConnectionArn}}, not from a worker in the VPC"
        )
        expected = params.get("ExpectedStatus", 200)
        poll = DEFAULT_POLL
        attempts = max(1, math.ceil(stage.timeout / poll))
        self.top.add(
            name,
            {
                "Type": "Pass",
                "Result": {"Attempts": 0},
                "ResultPath": self.counter(stage),
                "Next": f"{name} get",
            },
        )
        answer = f"{base}.Answer"
        catch = []
        if not 200 <= expected < 300:
            # The HTTP task fails on a status outside 2xx, with the status in the error's name.
            catch.append(
                {
                    "ErrorEquals": [f"States.Http.StatusCode.{expected}"],
                    "ResultPath": answer,
                    "Next": following,
                }
            )
        catch.append({"ErrorEquals": ["States.ALL"], "ResultPath": answer, "Next": f"{name} retry"})
        self.top.add(
            f"{name} get",
            {
                "Type": "Task",
                "Resource": HTTP_INVOKE,
                "Parameters": {
                    "ApiEndpoint": url,
                    "Method": "GET",
                    "Authentication": {"ConnectionArn": "${HttpConnectionArn}"},
                },
                "TimeoutSeconds": min(HTTP_REQUEST_SECONDS, stage.timeout),
                "ResultSelector": {"StatusCode.$": "$.StatusCode"},
                "ResultPath": answer,
                "Catch": catch,
                "Next": f"{name} check",
            },
        )
        self.top.add(
            f"{name} check",
            {
                "Type": "Choice",
                "Choices": [
                    {"Variable": f"{answer}.StatusCode", "NumericEquals": expected, "Next": following}
                ],
                "Default": f"{name} retry",
            },
        )
        self.top.add(
            f"{name} retry",
            {
                "Type": "Choice",
                "Choices": [
                    {
                        "Variable": f"{self.counter(stage)}.Attempts",
                        "NumericGreaterThanEquals": attempts,
                        "Next": self.failure(
                            f"{name} failed",
                            f"{name}Failed",
                            f"GET {url} did not answer {expected} within {stage.timeout} s (last answer in {answer})",
                        ),
                    }
                ],
                "Default": self.count_and_wait(stage, poll, f"{name} get"),
            },
        )

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
        self.differences.append(
            f"{stage.name}: the go-ahead is the SNS subscriber sending the task token back"
            " (SendTaskSuccess; SendTaskFailure rejects), not an approver on the run page"
        )

    def rollback(self):
        """One branch per service any deploy stage names: restore the revision the last
        deploy stage that deployed it recorded; leave alone a service none deployed."""
        self.differences.append(
            f"{ROLLBACK}: the portal waits until each restored service is healthy again; the machine"
            " only starts the restoring deployments"
        )
        by_service = {}
        for key, cluster, names in self.deploys:
            for i, service in enumerate(names):
                by_service.setdefault((cluster, service), []).append((key, i))
        branches = []
        for (cluster, service), recorded in by_service.items():
            label = _short(service)
            branch = _Scope(self.taken)
            decide = branch.unique(f"Restore {label}?")
            keep = branch.unique(f"Keep {label}")
            refused = branch.unique(f"Restore {label} refused")
            choices = []
            for key, i in reversed(recorded):
                restore = branch.unique(f"Restore {label} ({key})")
                branch.add(
                    restore,
                    {
                        "Type": "Task",
                        "Resource": UPDATE_SERVICE,
                        "Parameters": {
                            "Cluster": cluster,
                            "Service": service,
                            "TaskDefinition.$": f"{DATA}.Previous.{key}.S{i}[0]",
                            "ForceNewDeployment": True,
                        },
                        "ResultSelector": {
                            "Service": label,
                            "RolledBack": True,
                            "TaskDefinition.$": "$.Service.TaskDefinition",
                        },
                        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": refused}],
                        "End": True,
                    },
                )
                choices.append(
                    {
                        "Variable": f"{DATA}.Deployed.{key}[{i}].Deployed",
                        "BooleanEquals": True,
                        "Next": restore,
                    }
                )
            branch.add(decide, {"Type": "Choice", "Choices": choices, "Default": keep})
            branch.add(
                keep,
                {
                    "Type": "Pass",
                    "Result": {"Service": label, "RolledBack": False, "Reason": "not deployed by this run"},
                    "End": True,
                },
            )
            branch.add(
                refused,
                {
                    "Type": "Pass",
                    "Parameters": {
                        "Service": label,
                        "RolledBack": False,
                        "Error.$": "$.Error",
                        "Cause.$": "$.Cause",
                    },
                    "End": True,
                },
            )
            branches.append({"StartAt": decide, "States": branch.states})
        self.top.add(
            ROLLBACK,
            {"Type": "Parallel", "Branches": branches, "ResultPath": f"{DATA}.RollBack", "Next": ROLLED_BACK},
        )
        # The stage's own error and cause; each service's rollback outcome is in $.Pipeline.RollBack.
        self.top.add(
            ROLLED_BACK,
            {"Type": "Fail", "ErrorPath": f"{FAILURE}.Error", "CausePath": f"{FAILURE}.Cause"},
        )


def export(pipeline, families=None):
    """The ASL definition (a dict) of a pipelines.Pipeline. `families` maps a service (ARN
    or name) to its task definition family, for deploy stages that name no TaskDefinition
    (ECS deploys the family's latest ACTIVE revision, as the portal does); without it the
    machine takes the family from the revision it recorded."""
    builder = _Builder(pipeline, families)
    stages = pipeline.stages
    raw = pipeline.properties.get("Stages") or []
    for i, stage in enumerate(stages):
        following = stages[i + 1].name if i + 1 < len(stages) else SUCCEED
        written = (raw[i].get("Parameters") if i < len(raw) and isinstance(raw[i], dict) else None) or {}
        params = _fill(stage.parameters, written)
        getattr(builder, stage.kind)(stage, params, written, following)
    builder.top.add(SUCCEED, {"Type": "Succeed"})
    if builder.deploys and pipeline.rollback_on_failure:
        builder.rollback()
    comment = f"{pipeline.name}: {pipeline.description}".strip().rstrip(":")
    comment += f" (exported from the change-set portal; kinds: {', '.join(sorted({s.kind for s in stages}))})"
    if builder.differences:
        comment += ". Where a run of this machine differs from a portal run: " + "; ".join(
            builder.differences
        )
    return {"Comment": comment, "StartAt": stages[0].name, "States": builder.top.states}


def families_for(workspace):
    """{service ARN and name: task definition family} from HEAD's observed ECS services."""
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
