"""The AWS side of each pipeline stage kind (deployments/runs.py calls in here).

Each step gets a context (`ctx`) and the stage's resolved parameters:

- `ctx.clients(service)`: boto3 clients for the workspace (workers.aws.Clients);
- `ctx.result`: a dict kept across attempts; `ctx.save()` stores it, so a stage that a
  dead worker left behind resumes where it was (a started task is waited for, not
  started again; a service already redeployed is not redeployed again);
- `ctx.log(message, level)`: one line of the run's log, visible at once;
- `ctx.beat()`: the stage's heartbeat, called on every poll;
- `ctx.remaining()`: seconds left before the stage's deadline;
- `ctx.token`: a string unique to the stage (idempotency token, startedBy);
- `ctx.attempt`: 1 for the first try, more when a dead worker's stage is resumed;
- `ctx.started_deployments()`: {service ARN: deployment id} that the run's earlier
  deploy_services stages started (wait_healthy follows those, not whichever is PRIMARY);
- `ctx.allow_private_http`: the workspace lets http_check call private addresses.

A step returns a JSON-able outcome with a one-line "summary", or raises StageFailed with
the reason in words. AWS errors become StageFailed with AWS's code and message.

No step ever sends `desiredCount`: a deployment keeps each service's own count (the
seed's Phase 3 lesson: a hardcoded DesiredCount scaled services to 2 on every deploy).
"""

import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from . import outbound_http
from .providers import common
from .providers.base import ProviderError, aws_message

RUN_TASK_KEYS = (
    "Cluster",
    "TaskDefinition",
    "LaunchType",
    "PlatformVersion",
    "Group",
    "NetworkConfiguration",
    "Overrides",
)


class StageFailed(Exception):
    def __init__(self, message, **detail):
        super().__init__(message)
        self.message = message
        self.detail = detail


def run_stage(kind, ctx, params):
    """Run one stage of `kind`; returns its outcome or raises StageFailed."""
    step = STEPS.get(kind)
    if step is None:
        raise StageFailed(f"unknown stage kind {kind!r}")
    try:
        return step(ctx, params)
    except ClientError as exc:
        raise StageFailed(f"AWS refused: {aws_message(exc)}") from exc
    except ProviderError as exc:
        raise StageFailed(exc.message) from exc
    except BotoCoreError as exc:
        raise StageFailed(f"AWS could not be reached: {exc}") from exc


def poll_seconds(params=None):
    value = (params or {}).get("PollSeconds")
    return float(value) if isinstance(value, int | float) else settings.PORTAL_AWS_POLL_SECONDS


def _pause(ctx, params=None):
    time.sleep(max(0.0, min(poll_seconds(params), ctx.remaining())))


def short_id(arn):
    return str(arn or "").rsplit("/", 1)[-1]


def family_of(task_definition):
    """'arn:aws:ecs:...:task-definition/web:7' or 'web:7' -> 'web'."""
    return short_id(task_definition).split(":", 1)[0]


# --- run_task ------------------------------------------------------------------------------------


def run_task(ctx, p):
    ecs = ctx.clients("ecs")
    cluster = p["Cluster"]
    arn = ctx.result.get("task_arn")
    if not arn:
        # A resumed stage may have started its task before its worker died: find it by token.
        arn = _started_earlier(ecs, cluster, ctx.token) if ctx.attempt > 1 else None
        if arn:
            ctx.log(f"found task {short_id(arn)} started by an earlier attempt; waiting for it")
        else:
            arn = _start_task(ecs, ctx, p)
        ctx.result["task_arn"] = arn
        ctx.save()
    task = _wait_until_stopped(ecs, ctx, cluster, arn, p)
    containers = [
        {"name": c.get("name"), "exit_code": c.get("exitCode"), "reason": c.get("reason") or ""}
        for c in task.get("containers", [])
    ]
    stopped_reason = task.get("stoppedReason") or ""
    ctx.result.update(
        {
            "exit_codes": {c["name"]: c["exit_code"] for c in containers},
            "containers": containers,
            "stopped_reason": stopped_reason,
            "stop_code": task.get("stopCode") or "",
        }
    )
    ctx.save()
    expected = p.get("ExpectedExitCode", 0)
    if task.get("stopCode") == "TaskFailedToStart" or not containers:
        raise StageFailed(f"task {short_id(arn)} did not start: {stopped_reason or 'no reason given'}")
    checked = _checked_containers(ecs, task, p.get("Container"))
    ctx.result["checked"] = checked
    ctx.save()
    for c in containers:
        if c["name"] not in checked and c["exit_code"] != expected:
            ctx.log(f"container {c['name']} exited with code {c['exit_code']} (not essential: not checked)")
    bad = [c for c in containers if c["name"] in checked and c["exit_code"] != expected]
    if bad:
        described = ", ".join(
            f"container {c['name']} exited with code {c['exit_code'] if c['exit_code'] is not None else 'none'}"
            + (f" ({c['reason']})" if c["reason"] else "")
            for c in bad
        )
        raise StageFailed(
            f"task {short_id(arn)} failed: {described}, expected {expected}"
            + (f"; ECS says: {stopped_reason}" if stopped_reason else "")
        )
    codes = ", ".join(f"{c['name']}={c['exit_code']}" for c in containers if c["name"] in checked)
    ctx.log(
        f"task {short_id(arn)} stopped with exit code {expected} ({codes}){'; ' + stopped_reason if stopped_reason else ''}"
    )
    return {
        "summary": f"task {short_id(arn)} exited with code {expected}",
        "task_arn": arn,
        "exit_codes": ctx.result["exit_codes"],
        "stopped_reason": stopped_reason,
    }


def _checked_containers(ecs, task, named):
    """The containers whose exit code decides the stage: the one the stage names, or the
    task definition's essential ones (a sidecar that ECS stops with 137 does not count)."""
    definitions = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"][
        "containerDefinitions"
    ]
    names = [d["name"] for d in definitions]
    if named:
        if named not in names:
            raise StageFailed(
                f"task definition {short_id(task['taskDefinitionArn'])} has no container {named} "
                f"(it has {', '.join(names)})"
            )
        return [named]
    return [d["name"] for d in definitions if d.get("essential", True)]


def _started_earlier(ecs, cluster, token):
    """A task an earlier attempt of this stage started (read before create, after a crash)."""
    for status in ("RUNNING", "STOPPED"):
        arns = ecs.list_tasks(cluster=cluster, startedBy=token[:36], desiredStatus=status).get("taskArns", [])
        if arns:
            return arns[0]
    return None


def _start_task(ecs, ctx, p):
    body = {k: p[k] for k in RUN_TASK_KEYS if p.get(k) not in (None, "", {}, [])}
    request = common.to_api(body, common.input_shape(ecs, "RunTask"))
    request.update(count=1, startedBy=ctx.token[:36], clientToken=ctx.token[:64])
    out = ecs.run_task(**request)
    failures = out.get("failures") or []
    tasks = out.get("tasks") or []
    if failures or not tasks:
        reasons = (
            "; ".join(f"{f.get('reason')} ({short_id(f.get('arn'))})" for f in failures) or "no task returned"
        )
        raise StageFailed(f"ECS could not start a task from {short_id(p['TaskDefinition'])}: {reasons}")
    arn = tasks[0]["taskArn"]
    ctx.log(f"started task {short_id(arn)} from {short_id(p['TaskDefinition'])}")
    return arn


def _wait_until_stopped(ecs, ctx, cluster, arn, p):
    last = None
    while True:
        ctx.beat()
        out = ecs.describe_tasks(cluster=cluster, tasks=[arn])
        tasks = out.get("tasks") or []
        if not tasks:
            reason = "; ".join(f.get("reason", "") for f in out.get("failures") or []) or "not found"
            raise StageFailed(f"task {short_id(arn)} cannot be found any more: {reason}")
        task = tasks[0]
        status = task.get("lastStatus")
        if status != last:
            ctx.log(f"task {short_id(arn)} is {status}")
            last = status
        if status == "STOPPED":
            return task
        if ctx.remaining() <= 0:
            reason = f"the portal's deployment stage timed out after {ctx.timeout} s"
            try:
                ecs.stop_task(cluster=cluster, task=arn, reason=reason[:255])
                stopped = "; the portal stopped it"
            except ClientError as exc:
                stopped = f"; stopping it failed: {aws_message(exc)}"
            raise StageFailed(
                f"timed out after {ctx.timeout} s waiting for task {short_id(arn)} to stop (it was {status}){stopped}"
            )
        _pause(ctx, p)


# --- deploy_services -----------------------------------------------------------------------------


def _targets(services):
    out = []
    for item in services:
        if isinstance(item, str):
            out.append((item, None))
        else:
            out.append((item["Service"], item.get("TaskDefinition") or None))
    return out


def describe_services(ecs, cluster, services):
    """{requested name or ARN: service description}; StageFailed for a missing one."""
    found, missing = {}, []
    for i in range(0, len(services), 10):  # DescribeServices takes 10 at a time
        chunk = services[i : i + 10]
        out = ecs.describe_services(cluster=cluster, services=chunk)
        by_arn = {s["serviceArn"]: s for s in out.get("services", [])}
        by_name = {s["serviceName"]: s for s in out.get("services", [])}
        for name in chunk:
            svc = by_arn.get(name) or by_name.get(short_id(name))
            if svc is None or svc.get("status") != "ACTIVE":
                missing.append(short_id(name))
            else:
                found[name] = svc
    if missing:
        raise StageFailed(
            f"service(s) not found or not active in cluster {short_id(cluster)}: {', '.join(missing)}"
        )
    return found


def deploy_services(ctx, p):
    ecs = ctx.clients("ecs")
    cluster = p["Cluster"]
    targets = _targets(p["Services"])
    names = [s for s, _ in targets]
    if "previous" not in ctx.result:
        current = describe_services(ecs, cluster, names)
        ctx.result["previous"] = {
            s: {
                "name": current[s]["serviceName"],
                "arn": current[s]["serviceArn"],
                "task_definition": current[s]["taskDefinition"],
                "desired_count": current[s].get("desiredCount"),
            }
            for s in names
        }
        ctx.result["cluster"] = cluster
        ctx.save()
        for s in names:
            prev = ctx.result["previous"][s]
            ctx.log(
                f"{prev['name']}: runs {short_id(prev['task_definition'])} with {prev['desired_count']} task(s) "
                "(recorded for rollback)"
            )
    previous = ctx.result["previous"]
    done = ctx.result.setdefault("services", {})
    if done and ctx.attempt > 1:
        _keep_deployments_ecs_lists(ecs, ctx, cluster, done)
    plan = []
    for service, explicit in targets:
        if done.get(service, {}).get("deployment"):
            continue
        target = explicit or _latest_revision(ecs, previous[service]["task_definition"])
        plan.append((service, target))

    def update(item):
        service, target = item
        try:
            # forceNewDeployment and the task definition only: never desiredCount.
            svc = ecs.update_service(
                cluster=cluster, service=service, taskDefinition=target, forceNewDeployment=True
            )["service"]
        except ClientError as exc:
            return service, target, None, aws_message(exc)
        return service, target, svc, None

    errors = []
    if plan:
        with ThreadPoolExecutor(max_workers=min(len(plan), 16), thread_name_prefix="deploy") as pool:
            # Each deployment is saved as soon as ECS answers, so a crash after it does not
            # force it again on resume.
            for future in as_completed([pool.submit(update, item) for item in plan]):
                service, target, svc, error = future.result()
                name = previous[service]["name"]
                if error:
                    errors.append(f"{name}: {error}")
                    ctx.log(f"{name}: deployment refused: {error}", "error")
                    continue
                primary = _primary(svc)
                done[service] = {
                    "name": name,
                    "task_definition": target,
                    "deployment": primary.get("id") or "requested",
                    "desired_count": svc.get("desiredCount"),
                }
                ctx.save()
                ctx.log(
                    f"{name}: new deployment {primary.get('id', '')} of {short_id(target)}, "
                    f"desired count kept at {svc.get('desiredCount')}"
                )
    if errors:
        raise StageFailed("deployment failed for " + "; ".join(errors))
    summary = ", ".join(f"{d['name']} → {short_id(d['task_definition'])}" for d in done.values())
    return {"summary": f"new deployments: {summary}", "services": done, "previous": previous}


def _keep_deployments_ecs_lists(ecs, ctx, cluster, done):
    """On a resumed attempt: a deployment an earlier attempt started and ECS still lists is
    not started again; one ECS no longer lists (replaced since) is forgotten and redone."""
    described = describe_services(ecs, cluster, list(done))
    for service, record in list(done.items()):
        listed = {d.get("id") for d in described[service].get("deployments") or []}
        if record["deployment"] in listed:
            ctx.log(f"{record['name']}: deployment {record['deployment']} was started by an earlier attempt")
        else:
            ctx.log(
                f"{record['name']}: ECS no longer lists deployment {record['deployment']} "
                "that an earlier attempt started; deploying again",
                "warning",
            )
            del done[service]
    ctx.save()


def _latest_revision(ecs, task_definition):
    family = family_of(task_definition)
    return ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["taskDefinitionArn"]


def _primary(svc):
    deployments = svc.get("deployments") or []
    return next(
        (d for d in deployments if d.get("status") == "PRIMARY"), deployments[0] if deployments else {}
    )


def rollback_services(ctx, cluster, previous):
    """Put services back on the task definitions they ran before ({service: task definition})
    and wait until each restored deployment is healthy (the same test as wait_healthy).
    Returns {service: {"task_definition", "deployment", "state", "detail", "error"}}."""
    ecs = ctx.clients("ecs")

    def restore(item):
        service, task_definition = item
        try:
            svc = ecs.update_service(
                cluster=cluster, service=service, taskDefinition=task_definition, forceNewDeployment=True
            )["service"]
        except ClientError as exc:
            return service, task_definition, None, aws_message(exc)
        except BotoCoreError as exc:
            return service, task_definition, None, str(exc)
        return service, task_definition, svc, None

    items = sorted(previous.items())
    with ThreadPoolExecutor(max_workers=max(1, min(len(items), 16)), thread_name_prefix="rollback") as pool:
        results = list(pool.map(restore, items))
    out, restored = {}, {}
    for service, task_definition, svc, error in results:
        out[service] = {"task_definition": task_definition, "deployment": None, "error": error}
        if error:
            ctx.log(
                f"rollback of {short_id(service)} to {short_id(task_definition)} failed: {error}", "error"
            )
            continue
        out[service]["deployment"] = restored[service] = _primary(svc).get("id")
        ctx.log(f"rolled {short_id(service)} back to {short_id(task_definition)}")
    if restored:
        report = watch_health(ctx, cluster, list(restored), restored, every_outcome=True)
        for service in restored:
            name = short_id(service)
            health = report.get(name, {})
            out[service].update(state=health.get("state"), detail=health.get("detail"))
            if health.get("state") == "healthy":
                ctx.log(f"{name} is healthy again on {short_id(out[service]['task_definition'])}")
            else:
                why = (
                    health.get("detail")
                    if health.get("state") == "failed"
                    else (f"not healthy after {ctx.timeout} s ({health.get('detail')})")
                )
                out[service]["error"] = why
                ctx.log(f"rollback of {name}: {why}", "error")
    return out


# --- wait_healthy --------------------------------------------------------------------------------


def _latest_event(svc):
    events = svc.get("events") or []  # newest first
    return events[0].get("message", "") if events else ""


def service_health(svc, ours=None):
    """('healthy' | 'waiting' | 'failed', words) for one described service. `ours` is the
    id of the deployment the run started: when ECS's circuit breaker rolls back, the
    previous revision becomes PRIMARY and completes, which is a failure of ours."""
    primary = _primary(svc)
    deployment = primary
    if ours:
        deployment = next((d for d in svc.get("deployments") or [] if d.get("id") == ours), None)
        reason = (deployment or {}).get("rolloutStateReason") or _latest_event(svc) or "no reason given"
        if deployment is None:
            return "failed", (
                f"deployment {ours} is gone; ECS runs {primary.get('id', '?')} of "
                f"{short_id(primary.get('taskDefinition'))} instead: {reason}"
            )
        if deployment.get("rolloutState") == "FAILED":
            return "failed", f"rollout failed: {reason}"
        if deployment is not primary:
            return "failed", (
                f"deployment {ours} is no longer PRIMARY (ECS rolled back to {primary.get('id', '?')} of "
                f"{short_id(primary.get('taskDefinition'))}): {reason}"
            )
    rollout = deployment.get("rolloutState")
    running, desired = svc.get("runningCount", 0), svc.get("desiredCount", 0)
    p_running, p_desired = deployment.get("runningCount", 0), deployment.get("desiredCount", 0)
    failed = deployment.get("failedTasks", 0)
    others = [d for d in svc.get("deployments") or [] if d is not deployment and d.get("runningCount", 0) > 0]
    words = (
        f"deployment {deployment.get('id', '?')} {(rollout or 'no rollout state').lower()}: "
        f"{running}/{desired} running"
        + (f", {failed} failed task(s)" if failed else "")
        + (f", {len(others)} older deployment(s) still draining" if others else "")
    )
    if rollout == "FAILED":
        return (
            "failed",
            f"rollout failed: {deployment.get('rolloutStateReason') or _latest_event(svc) or words}",
        )
    done = rollout in (None, "COMPLETED") and running == desired and p_running == p_desired and not others
    return ("healthy" if done else "waiting"), words


def wait_healthy(ctx, p):
    report = watch_health(ctx, p["Cluster"], list(p["Services"]), ctx.started_deployments(), p)
    failed = [n for n, r in report.items() if r["state"] == "failed"]
    if failed:
        raise StageFailed(f"{failed[0]}: {report[failed[0]]['detail']}")
    waiting = [n for n, r in report.items() if r["state"] != "healthy"]
    if waiting:
        raise StageFailed(
            f"timed out after {ctx.timeout} s waiting for "
            + "; ".join(f"{n} ({report[n]['detail']})" for n in waiting)
        )
    return {
        "summary": "; ".join(f"{n}: {r['running']}/{r['desired']} running" for n, r in report.items()),
        "services": report,
    }


def watch_health(ctx, cluster, services, started, p=None, every_outcome=False):
    """Poll the services' health ({service name: state, detail, running, desired,
    deployment}, kept in ctx.result["services"]) until each is healthy, one failed (with
    every_outcome: each is healthy or failed) or the deadline passed. `started` maps a
    service (as named, or its ARN) to the deployment the run started there."""
    ecs = ctx.clients("ecs")
    last = {}
    while True:
        ctx.beat()
        described = describe_services(ecs, cluster, services)
        report = {}
        for service in services:
            svc = described[service]
            ours = started.get(service) or started.get(svc["serviceArn"])
            state, words = service_health(svc, ours)
            name = svc["serviceName"]
            if last.get(name, {}).get("state") == "failed":
                state, words = "failed", last[name]["detail"]  # a failed rollout stays failed
            report[name] = {
                "state": state,
                "detail": words,
                "running": svc.get("runningCount"),
                "desired": svc.get("desiredCount"),
                "deployment": ours or _primary(svc).get("id"),
            }
            if last.get(name, {}).get("detail") != words:
                ctx.log(f"{name}: {words}", "error" if state == "failed" else "info")
        if report != ctx.result.get("services"):
            ctx.result["services"] = report
            ctx.save()
        last = report
        states = {r["state"] for r in report.values()}
        if states <= {"healthy", "failed"} or ("failed" in states and not every_outcome):
            return report
        if ctx.remaining() <= 0:
            return report
        _pause(ctx, p)


# --- http_check ----------------------------------------------------------------------------------


def check_url(p):
    url = str(p["Url"]).strip()
    if "://" not in url:
        url = "http://" + url
    path = p.get("Path") or ""
    if path:
        url = url.rstrip("/") + "/" + path.lstrip("/")
    if url.split("://", 1)[0].lower() not in ("http", "https"):
        raise StageFailed(f"{url}: an HTTP check only GETs http:// or https:// URLs")
    return url


def http_check(ctx, p):
    url = check_url(p)
    expected = p.get("ExpectedStatus", 200)
    attempt, last = 0, None
    while True:
        ctx.beat()
        attempt += 1
        timeout = max(1.0, min(10.0, ctx.remaining() or 10.0))
        try:
            status, answered = outbound_http.get(url, timeout, ctx.allow_private_http)
            detail = f"{status}" + (f" (from {answered})" if answered != url else "")
        except outbound_http.Refused as exc:
            ctx.result.update({"url": url, "refused": str(exc)})
            ctx.save()
            raise StageFailed(f"GET {url} refused: {exc}") from exc
        except outbound_http.Unreachable as exc:
            status, detail = None, f"no answer ({exc})"
        last = detail
        ctx.log(f"GET {url}: {detail}")
        if status == expected:
            ctx.result.update({"url": url, "status": status, "attempts": attempt})
            ctx.save()
            return {"summary": f"GET {url} answered {status}", "url": url, "status": status}
        if ctx.remaining() <= 0:
            ctx.result.update({"url": url, "status": status, "attempts": attempt})
            ctx.save()
            raise StageFailed(
                f"GET {url} answered {last} (expected {expected}) after {attempt} attempt(s) in {ctx.timeout} s"
            )
        _pause(ctx, p)


STEPS = {
    "run_task": run_task,
    "deploy_services": deploy_services,
    "wait_healthy": wait_healthy,
    "http_check": http_check,
}
