"""Applies run by real Celery worker processes over the real broker (Redis in CI),
against a moto server, with workers killed by SIGKILL."""

import time

import boto3
import pytest
import requests

from portal import approvals, changesets
from portal.celery import app as celery_app
from portal.tests.factories import src
from workers import apply, reaper
from workers.localaws import LocalAws
from workers.models import ActionStatus, ApplyRun, RunStatus

from .processes import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def local_aws(monkeypatch, settings):
    aws = LocalAws().start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint)
    settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS = 3
    celery_app.control.purge()
    yield aws
    requests.post(f"{aws.endpoint}/moto-api/reset", timeout=10)
    aws.stop()


@pytest.fixture
def workers(local_aws):
    started = []

    def start(**kwargs):
        w = WorkerProcess(local_aws.endpoint, **kwargs).wait_ready()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def wait_until(predicate, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def finished(run, timeout=90, worker=None, reap=False):
    """Wait for the run to end; with reap=True, run the reaper every second as beat would."""

    def done():
        if reap:
            reaper.reap()
        return ApplyRun.objects.get(pk=run.pk).is_finished

    try:
        wait_until(done, timeout, f"apply #{run.pk} to finish")
    except AssertionError:
        detail = [(a.key, a.status, a.error) for a in run.actions.all()]
        raise AssertionError(
            f"apply #{run.pk} did not finish: {detail}\n{worker.output() if worker else ''}"
        ) from None
    return ApplyRun.objects.get(pk=run.pk)


def log_groups_change_set(workspace, bob, alice, n, prefix):
    cs = changesets.create_change_set(workspace, bob, f"{n} log groups")
    changesets.upsert_component(cs, bob, "vpc", "AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"})
    changesets.upsert_component(
        cs,
        bob,
        "sg",
        "AWS::EC2::SecurityGroup",
        {"GroupDescription": "api", "VpcId": src("vpc", "/resource_value/VpcId")},
    )
    for i in range(n):
        changesets.upsert_component(
            cs, bob, f"logs-{i}", "AWS::Logs::LogGroup", {"LogGroupName": f"{prefix}/{i}"}
        )
    approvals.request_approval(cs, bob)
    approvals.approve(cs, alice)
    return cs


def count_log_groups(endpoint, prefix):
    logs = boto3.client("logs", region_name="us-east-1", endpoint_url=endpoint)
    return len(logs.describe_log_groups(logGroupNamePrefix=prefix)["logGroups"])


def tagged_vpcs(endpoint):
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=endpoint)
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag-key", "Values": ["portal:component-id"]}])["Vpcs"]
    return len(vpcs)


def test_it_applies_through_a_real_worker_and_broker(workspace, users, local_aws, workers):
    worker = workers()
    cs = log_groups_change_set(workspace, users["editor"], users["approver"], 6, "/it/real")
    run = finished(apply.request_apply(cs, users["approver"]), worker=worker)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert count_log_groups(local_aws.endpoint, "/it/real") == 6
    assert {a.worker.split(":")[0] for a in run.actions.all()} != {""}


def test_it_resumes_after_a_worker_is_killed_without_creating_anything_twice(
    workspace, users, local_aws, workers
):
    local_aws.faults.latency_s = 0.3  # every AWS call takes a while, so the kill lands mid-apply
    first = workers(concurrency=4)
    cs = log_groups_change_set(workspace, users["editor"], users["approver"], 12, "/it/kill")
    run = apply.request_apply(cs, users["approver"])
    wait_until(
        lambda: (
            run.actions.filter(status=ActionStatus.SUCCEEDED).exists()
            and run.actions.filter(status=ActionStatus.RUNNING).exists()
        ),
        60,
        "actions in flight",
    )
    first.kill()
    stuck = list(run.actions.filter(status=ActionStatus.RUNNING).values_list("key", flat=True))
    assert stuck, "the kill should leave actions running"

    second = workers(concurrency=4)
    time.sleep(3.5)  # the dead worker's heartbeat goes stale
    summary = reaper.reap()
    assert set(summary["requeued"]) == set(stuck)
    run = finished(run, timeout=120, worker=second, reap=True)
    assert run.status == RunStatus.SUCCEEDED, [(a.key, a.error) for a in run.actions.all()]
    assert count_log_groups(local_aws.endpoint, "/it/kill") == 12
    assert tagged_vpcs(local_aws.endpoint) == 1


def test_it_queues_a_second_apply_behind_the_first(workspace, users, local_aws, workers):
    local_aws.faults.latency_s = 0.2
    worker = workers()
    bob, alice = users["editor"], users["approver"]
    first_cs = log_groups_change_set(workspace, bob, alice, 4, "/it/first")
    second_cs = changesets.create_change_set(workspace, bob, "second")
    changesets.upsert_component(
        second_cs, bob, "more-logs", "AWS::Logs::LogGroup", {"LogGroupName": "/it/second"}
    )
    approvals.request_approval(second_cs, bob)
    approvals.approve(second_cs, alice)

    first = apply.request_apply(first_cs, alice)
    wait_until(
        lambda: ApplyRun.objects.get(pk=first.pk).status == RunStatus.RUNNING, 30, "first apply to start"
    )
    second = apply.request_apply(second_cs, alice)
    second.refresh_from_db()
    assert second.status == RunStatus.QUEUED and second.runs_ahead() == 1
    first, second = finished(first, worker=worker), finished(second, worker=worker)
    assert first.status == second.status == RunStatus.SUCCEEDED
    assert second.started_at >= first.finished_at


def test_it_retries_throttled_calls_with_botocores_backoff(workspace, users, local_aws, workers):
    worker = workers()
    local_aws.throttle("Logs_20140328.CreateLogGroup", 2)
    cs = log_groups_change_set(workspace, users["editor"], users["approver"], 1, "/it/throttle")
    run = finished(apply.request_apply(cs, users["approver"]), worker=worker)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert local_aws.faults.throttled == 2
    assert (
        run.actions.get(key="create:logs-0").attempts == 1
    )  # retried inside botocore, not by re-running the action
    assert run.window >= 1  # the throttled action set a window on the apply's actions in flight


def _sessions_opened():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_worker_keeps_its_database_connections_between_tasks(workspace, users, local_aws, workers, pool):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the worker's connection pool is Postgres's (psycopg_pool)")
    # Two threads and no local ones: 30 tasks on at most 2 + 2 connections.
    worker = workers(concurrency=2, pool=pool, extra_env={"PORTAL_WORKER_LOCAL_THREADS": "0"})
    cs = log_groups_change_set(workspace, users["editor"], users["approver"], 30, "/it/pool")
    before = _sessions_opened()
    run = finished(apply.request_apply(cs, users["approver"]), worker=worker)
    assert run.status == RunStatus.SUCCEEDED, run.error
    _end_other_sessions()  # the worker's: their statistics reach pg_stat_database as they end
    # 32 actions, each its own task: without the pool (threads) or with Celery's closing
    # of a prefork child's connections at every task, each opened one or two.
    assert _sessions_opened() - before <= 6

    # The connections the server ended (a failover, a restart) are replaced, not used broken.
    cs = log_groups_change_set(workspace, users["editor"], users["approver"], 3, "/it/pool-again")
    run = finished(apply.request_apply(cs, users["approver"]), worker=worker)
    assert run.status == RunStatus.SUCCEEDED, run.error


def _end_other_sessions():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def _sessions_now():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_a_worker_opens_a_connection_for_each_of_its_threads_before_a_burst(workspace, local_aws, workers):
    """The pool opens what it lacks one at a time: a burst of actions on a cold pool waited
    in line for connections. A threads-pool worker keeps one open per Celery thread."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the worker's connection pool is Postgres's (psycopg_pool)")
    before = _sessions_now()
    workers(concurrency=6)
    deadline = time.monotonic() + 20
    while _sessions_now() - before < 6:
        assert time.monotonic() < deadline, f"{_sessions_now() - before} connections opened by an idle worker"
        time.sleep(0.1)
