"""Apply a change set of 200 components (a DAG of depth 6) against a moto server that
adds 100 ms to every AWS call, with a real Celery worker process.

Lower bound = depth x calls per action x latency (the critical path, if every action of
a level ran at once). Printed: our wall time / bound, and the same ratio for Terraform's
default of 10 concurrent operations, computed by list-scheduling the same DAG.

Workers exactly as README recommends: `celery -A portal worker` with no flags (the Celery
config gives it threads and their number; only a node name each and
`--include=bench._worker_stats`, which measures and changes nothing), two replicas
(BENCH_WORKER_PROCESSES changes that; BENCH_RESOURCE=ecs-cluster makes the DAG of ECS
clusters instead of log groups), PORTAL_APPLY_CONCURRENCY and the heartbeat at their
defaults. Also printed, for the DAG apply (start-up and the probe left out): the worker
processes' CPU per action, the part of it spent inside botocore calls and the rest (the
portal's own cost, with Celery's), database queries per action, and how soon an action
starts once what it waits for ends (waiter_*_start_ms: median and p90, for an action
that was its producer's only waiter, and for one unblocked beside others). And the floor: the
same DAG with the providers called straight from threads, no engine at all
(providers_alone_ratio): what the local AWS and boto3 allow on this machine that day.

Last line: {"components": 200, "resource": "AWS::Logs::LogGroup", "depth": 6, "latency_ms": 100, "wall_s": ..., "bound_s": ..., "ratio": ..., "terraform10_ratio": ..., "providers_alone_ratio": ..., "worker_cpu_ms_per_action": ..., "worker_cpu_outside_boto3_ms_per_action": ..., "queries_per_action": ...}
"""

import heapq
import json
import os
import random
import signal
import statistics
import tempfile
import threading
import time

for key, value in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(key, value)
# What the DAG is made of: log groups (3 calls each: create, retention, read back), or
# with BENCH_RESOURCE=ecs-cluster the ECS clusters of the measurement (2 calls
# each: is the name free, create). moto's ECS spends some 13 ms of CPU per call, on the
# cores the workers run on: log groups keep the figure about the portal's own cost.
RESOURCE = os.environ.get("BENCH_RESOURCE", "log-group")
TYPES = {"log-group": "AWS::Logs::LogGroup", "ecs-cluster": "AWS::ECS::Cluster"}
assert RESOURCE in TYPES, f"BENCH_RESOURCE is one of {', '.join(TYPES)}, not {RESOURCE!r}"

from _setup import Timer, setup_django  # noqa: E402

setup_django()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.utils import timezone  # noqa: E402

from portal import changesets, localstate  # noqa: E402
from portal.models import Membership, Workspace  # noqa: E402
from workers import apply  # noqa: E402
from workers.aws import AwsTarget, Clients  # noqa: E402
from workers.localaws import LocalAwsProcess  # noqa: E402
from workers.models import ApplyRun  # noqa: E402
from workers.providers.base import provider_for  # noqa: E402
from workers.tests.processes import WorkerProcess  # noqa: E402

N, DEPTH, LATENCY_MS = 200, 6, 100


def _cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_and_total():
    """Busy and total CPU time of the whole machine so far (every process: ours, the local
    AWS, Postgres, Redis, and whatever else shares the cores), in clock ticks."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


STATS_DIR = tempfile.mkdtemp(prefix="bench-worker-stats-")


def _worker_totals(workers):
    """CPU seconds, botocore CPU seconds, AWS calls and queries of the worker processes so far."""
    totals = {"cpu_s": 0.0, "botocore_cpu_s": 0.0, "botocore_wall_s": 0.0, "aws_calls": 0, "queries": 0}
    for w in workers:
        path = os.path.join(STATS_DIR, f"{w.proc.pid}.json")
        if os.path.exists(path):
            os.remove(path)
        totals["cpu_s"] += _cpu_seconds(w.proc.pid)
        os.kill(w.proc.pid, signal.SIGUSR2)  # bench/_worker_stats.py writes its counts
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            assert time.monotonic() < deadline, f"worker {w.proc.pid} wrote no counts"
            time.sleep(0.01)
        with open(path) as f:
            for key, value in json.load(f).items():
                totals[key] += value
    return totals


random.seed(7)
localstate.prepare()  # the laptop broker when no REDIS_URL is set

aws = LocalAwsProcess(latency_ms=LATENCY_MS)  # its own process: its CPU is not ours
os.environ["AWS_ENDPOINT_URL"] = aws.endpoint
user, _ = get_user_model().objects.get_or_create(username="bench")
ws = Workspace.objects.create(slug="apply-bench", name="apply bench", approvals_required=0)
Membership.objects.create(workspace=ws, user=user, role="admin")


def component(name, parent=None):
    if RESOURCE == "ecs-cluster":
        props = {"ClusterName": f"bench-{name}"}
    else:
        props = {"LogGroupName": f"/bench/{name}", "RetentionInDays": 7}
    if parent:
        props["Tags"] = [
            {"Key": "parent", "Value": {"$source": {"component": parent, "path": "/resource_value/Arn"}}}
        ]
    return props


def providers_alone(parents, prefix):
    """The same DAG with the providers called straight from threads of this process, each
    as soon as its parent is done: no database, broker or scheduler, unlimited concurrency.
    What the local AWS and boto3 allow on this machine, the floor under any engine's time."""
    clients = Clients(AwsTarget())
    done = {name: threading.Event() for name in parents}
    arns, errors = {}, []

    def create(name):
        parent = parents[name]
        props = component(f"{prefix}-{name}")
        if parent:
            done[parent].wait()
            props["Tags"] = [{"Key": "parent", "Value": arns.get(parent, "")}]
        try:
            observed = provider_for(TYPES[RESOURCE], clients).create(props, f"{prefix}-{name}")
            arns[name] = observed.resource_value["Arn"]
        except Exception as exc:  # noqa: BLE001 (reported below, after every thread is done)
            errors.append(f"{name}: {exc!r}")
        finally:
            done[name].set()

    threads = [threading.Thread(target=create, args=(name,)) for name in parents]
    with Timer() as alone:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    return alone.ms / 1000


# Calls per action: create independent components and count the AWS calls they make.
# More than one worker takes at once (it reserves a message per thread), so that every
# worker process runs some: each has made its AWS client and loaded its providers before
# the DAG, as a worker that has been up a while has (costs of a process start, not of an
# action).
PROBES = 2 * settings.CELERY_WORKER_CONCURRENCY
probe = changesets.create_change_set(ws, user, "probe")
for i in range(PROBES):
    changesets.upsert_component(probe, user, f"probe-{i}", TYPES[RESOURCE], component(f"probe-{i}"))
PROCESSES = int(os.environ.get("BENCH_WORKER_PROCESSES", "2"))
readme_worker = {
    "pool": None,
    "concurrency": None,
    "plain": True,
    "include": ["bench._worker_stats"],
    "extra_env": {
        "BENCH_STATS_DIR": STATS_DIR,
        "PORTAL_HEARTBEAT_SECONDS": str(settings.PORTAL_HEARTBEAT_SECONDS),
        "PORTAL_AWS_POLL_SECONDS": str(settings.PORTAL_AWS_POLL_SECONDS),
    },
}
workers = [WorkerProcess(aws.endpoint, **readme_worker).wait_ready() for _ in range(PROCESSES)]
try:
    # The calls the providers made, as the workers count them: a call botocore retried (a
    # reset connection, a 5xx of the local AWS under load) is one call, not two.
    probe_start = _worker_totals(workers)["aws_calls"]
    run = apply.request_apply(probe, user)
    while not ApplyRun.objects.get(pk=run.pk).is_finished:
        time.sleep(0.05)
    assert ApplyRun.objects.get(pk=run.pk).status == "succeeded", ApplyRun.objects.get(pk=run.pk).error
    probe_calls = _worker_totals(workers)["aws_calls"] - probe_start
    calls_per_action, unequal = divmod(probe_calls, PROBES)
    assert not unequal, f"{probe_calls} calls for {PROBES} components of one type"
    levels = [[f"l{d}-{i}" for i in range(N // DEPTH + (1 if d < N % DEPTH else 0))] for d in range(DEPTH)]
    parents = {}
    cs = changesets.create_change_set(ws, user, "dag")
    for d, level in enumerate(levels):
        for name in level:
            parent = random.choice(levels[d - 1]) if d else None
            parents[name] = parent
            changesets.upsert_component(cs, user, name, TYPES[RESOURCE], component(name, parent))
    before = aws.calls
    before_dag = _worker_totals(workers)  # start-up and the probe excluded
    machine_before = _machine_busy_and_total()
    with Timer() as wall:
        with Timer() as request:  # in this process, as the web server would: the plan, the rows
            run = apply.request_apply(cs, user)
        while not ApplyRun.objects.get(pk=run.pk).is_finished:
            time.sleep(0.02)
    seen_finished = timezone.now()
    machine_after = _machine_busy_and_total()
    run = ApplyRun.objects.get(pk=run.pk)
    assert run.status == "succeeded", run.error
    actions = {a.component_name: a for a in run.actions.all()}
    action_durations = [(a.finished_at - a.started_at).total_seconds() for a in actions.values()]
    # The chain that ended last, link by link: the time its actions ran, and the time each
    # waited from its parent's end (or the request's) to its claim.
    link = max(actions.values(), key=lambda a: a.finished_at)
    chain = []
    while link is not None:
        chain.append(link)
        link = actions.get(parents.get(link.component_name))
    chain.reverse()
    chain_run_s = sum((a.finished_at - a.started_at).total_seconds() for a in chain)
    chain_wait_s = (chain[-1].finished_at - chain[0].started_at).total_seconds() - chain_run_s
    first_wait_s = (chain[0].started_at - run.created_at).total_seconds()
    # From the last action's end to the run's end as a reader sees it (committed: the last
    # round, the run's bookkeeping, its build log), within the 20 ms this loop polls at.
    end_wait_s = (seen_finished - chain[-1].finished_at).total_seconds()
    # Every link of the DAG: the time from an action's end to its waiter's claim, for a
    # waiter that was its producer's only one (the producer's thread goes on with it) and
    # for one unblocked beside others (a dispatch round: one goes on in the producer's
    # thread, the others start on another thread).
    waiters_of = {}
    for name, parent in parents.items():
        waiters_of.setdefault(parent, []).append(name)
    link_starts = {"alone": [], "beside_others": []}
    for name, parent in parents.items():
        if parent is not None:
            delay = (actions[name].started_at - actions[parent].finished_at).total_seconds() * 1000
            link_starts["alone" if len(waiters_of[parent]) == 1 else "beside_others"].append(delay)
    calls = aws.calls - before
    time.sleep(0.3)  # what the run's end sends on (the next run's start) counts too
    after_dag = _worker_totals(workers)
    worker_cpu_s = sum(_cpu_seconds(w.proc.pid) for w in workers)
    moto_cpu_s = sum(_cpu_seconds(pid) for pid in aws.pids)
    # Warmed up first as the workers were (the client, the providers, the connections).
    providers_alone({f"probe-{i}": None for i in range(PROBES)}, "alone-probe")
    alone_s = providers_alone(parents, "alone")
finally:
    for w in workers:
        w.stop()
    aws.stop()

action_s = calls_per_action * LATENCY_MS / 1000
bound = DEPTH * action_s


def makespan(slots):
    """List scheduling of the DAG with `slots` concurrent operations (Terraform's -parallelism)."""
    done_at, ready, running, t = {}, [n for n, p in parents.items() if p is None], [], 0.0
    waiting = {n for n, p in parents.items() if p is not None}
    while ready or running or waiting:
        while ready and len(running) < slots:
            heapq.heappush(running, (t + action_s, ready.pop(0)))
        t, name = heapq.heappop(running)
        done_at[name] = t
        for n in sorted(waiting):
            if parents[n] == name or parents[n] in done_at:
                waiting.discard(n)
                ready.append(n)
    return t


terraform = makespan(10)
dag = {key: after_dag[key] - before_dag[key] for key in after_dag}
retried = calls - dag["aws_calls"]  # what the local AWS served beyond the workers' calls
cpu_ms_per_action = dag["cpu_s"] * 1000 / N
botocore_ms_per_action = dag["botocore_cpu_s"] * 1000 / N
outside_ms_per_action = cpu_ms_per_action - botocore_ms_per_action
queries_per_action = dag["queries"] / N
# An action's time from its claim to its outcome, and the part of it spent in AWS calls.
action_ms = sum(action_durations) * 1000 / N
in_aws_ms = dag["botocore_wall_s"] * 1000 / N
machine_busy = (machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1])
print(
    f"{N} components, depth {DEPTH}, {calls_per_action} AWS calls per action at {LATENCY_MS} ms "
    f"({calls} calls in all, {retried} of them retries): wall {wall.ms / 1000:.2f} s (the request {request.ms / 1000:.2f} s of it), critical-path bound {bound:.2f} s, "
    f"ratio {wall.ms / 1000 / bound:.2f}; Terraform's 10 concurrent operations on the same DAG: "
    f"{terraform:.2f} s, ratio {terraform / bound:.2f}; the providers alone (no engine, unlimited "
    f"concurrency): {alone_s:.2f} s, ratio {alone_s / bound:.2f}; worker CPU {cpu_ms_per_action:.1f} ms per action, "
    f"{botocore_ms_per_action:.1f} ms of it in botocore calls, {outside_ms_per_action:.1f} ms outside; "
    f"{queries_per_action:.1f} database queries per action; an action took {action_ms:.0f} ms on average, "
    f"{in_aws_ms:.0f} ms of it in AWS calls; the machine's cores were "
    f"{machine_busy:.0%} busy during the apply ({os.cpu_count()} cores, everything on them counted)"
)
print(
    json.dumps(
        {
            "components": N,
            "resource": TYPES[RESOURCE],
            "depth": DEPTH,
            "latency_ms": LATENCY_MS,
            "calls_per_action": calls_per_action,
            "aws_call_retries": retried,
            "wall_s": round(wall.ms / 1000, 2),
            "request_s": round(request.ms / 1000, 2),
            "bound_s": round(bound, 2),
            "ratio": round(wall.ms / 1000 / bound, 2),
            "terraform10_s": round(terraform, 2),
            "terraform10_ratio": round(terraform / bound, 2),
            "providers_alone_s": round(alone_s, 2),
            "providers_alone_ratio": round(alone_s / bound, 2),
            "worker": f"{PROCESSES} x celery -A portal worker (pool {settings.CELERY_WORKER_POOL}, "
            f"concurrency {settings.CELERY_WORKER_CONCURRENCY}), PORTAL_APPLY_CONCURRENCY={settings.PORTAL_APPLY_CONCURRENCY}",
            "worker_cpu_s": round(worker_cpu_s, 2),
            "local_aws_cpu_s": round(moto_cpu_s, 2),
            "worker_cpu_ms_per_action": round(cpu_ms_per_action, 1),
            "worker_cpu_in_botocore_ms_per_action": round(botocore_ms_per_action, 1),
            "worker_cpu_outside_boto3_ms_per_action": round(outside_ms_per_action, 1),
            "queries_per_action": round(queries_per_action, 1),
            "action_ms": round(action_ms),
            "action_in_aws_calls_ms": round(in_aws_ms),
            "machine_busy_share": round(machine_busy, 2),
            "last_chain_actions_ms": round(chain_run_s * 1000),
            "last_chain_waits_ms": round(chain_wait_s * 1000),
            "first_claim_after_request_ms": round(first_wait_s * 1000),
            "run_end_after_last_action_ms": round(end_wait_s * 1000),
            **{
                f"waiter_{kind}_start_ms_{name}": round(statistics.quantiles(delays, n=10)[index])
                for kind, delays in link_starts.items()
                for name, index in (("median", 4), ("p90", 8))
            },
        }
    )
)
