"""The background-job mechanisms that applies and deployment runs share (workers/jobs.py),
on real rows: claiming, reaping a dead worker's work, re-sending lost messages, waiting."""

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from portal.errors import PortalError
from workers import jobs
from workers.models import Action, ActionStatus, ApplyRun, RunStatus

from .rows import action
from .threads import in_threads


@pytest.fixture
def run(workspace):
    return ApplyRun.objects.create(workspace=workspace, kind="refresh", status=RunStatus.RUNNING)


@pytest.mark.django_db(transaction=True)
def test_only_one_of_two_workers_claims_a_queued_row(run):
    queued = action(run, "refresh:logs")

    won = in_threads(2, lambda i: jobs.claim(Action, queued.pk, f"host-{i}:1", started_at=timezone.now()))

    assert sorted(won) == [False, True]
    queued.refresh_from_db()
    assert queued.status == ActionStatus.RUNNING and queued.attempts == 1
    assert queued.worker == f"host-{won.index(True)}:1"


def test_a_row_that_is_not_queued_is_not_claimed(run):
    done = action(run, "refresh:logs", status=ActionStatus.SUCCEEDED)

    assert jobs.claim(Action, done.pk, "host:1") is False
    done.refresh_from_db()
    assert done.status == ActionStatus.SUCCEEDED and done.attempts == 0 and done.worker == ""


def test_a_dead_workers_row_is_requeued_and_a_live_workers_row_is_left_alone(run, settings):
    now = timezone.now()
    long_ago = now - timedelta(seconds=settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS + 1)
    jobs.beat("alive:1")
    orphan = action(run, "a", status=ActionStatus.RUNNING, worker="dead:1", attempts=1, started_at=long_ago)
    busy = action(run, "b", status=ActionStatus.RUNNING, worker="alive:1", attempts=1, started_at=long_ago)

    requeued, failed = jobs.reap_dead(Action, since="started_at", max_attempts=3, now=now)

    assert [r.pk for r in requeued] == [orphan.pk] and failed == []
    orphan.refresh_from_db()
    assert orphan.status == ActionStatus.QUEUED and orphan.queued_at == now
    assert orphan.error == "requeued: worker dead:1 stopped answering"
    busy.refresh_from_db()
    assert busy.status == ActionStatus.RUNNING


def test_a_worker_restarted_in_place_does_not_pass_for_the_one_that_died(run, settings):
    """A container restarted in place runs its new worker as pid 1 on the same hostname:
    only the boot nonce tells it from the dead one, whose work must still be reaped."""
    now = timezone.now()
    long_ago = now - timedelta(seconds=settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS + 1)
    orphan = action(
        run, "a", status=ActionStatus.RUNNING, worker="api-7f9c:1:0d1e2a3b", attempts=1, started_at=long_ago
    )
    jobs.beat("api-7f9c:1:5c6d7e8f")

    requeued, _ = jobs.reap_dead(Action, since="started_at", max_attempts=3, now=now)

    assert [r.pk for r in requeued] == [orphan.pk]


def test_each_process_start_has_its_own_worker_name():
    script = "import django; django.setup(); from workers import jobs; print(jobs.worker_name())"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    names = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
        .stdout.strip()
        .split(":")
        for _ in range(2)
    ]
    assert names[0][0] == names[1][0] == socket.gethostname()
    assert names[0][2] != names[1][2]  # the boot nonce, drawn again at every start


def test_a_row_whose_worker_died_too_often_fails_with_the_reason(run, settings):
    now = timezone.now()
    long_ago = now - timedelta(seconds=settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS + 1)
    orphan = action(run, "a", status=ActionStatus.RUNNING, worker="dead:7", attempts=3, started_at=long_ago)

    requeued, failed = jobs.reap_dead(Action, since="started_at", max_attempts=3, now=now)

    assert requeued == [] and [r.pk for r in failed] == [orphan.pk]
    orphan.refresh_from_db()
    assert orphan.status == ActionStatus.FAILED and orphan.finished_at == now
    assert orphan.error == "its worker died 3 times while running it (dead:7 last)"


def test_a_row_claimed_just_now_is_not_reaped_even_if_its_worker_is_unknown(run):
    action(run, "a", status=ActionStatus.RUNNING, worker="new:1", attempts=1, started_at=timezone.now())

    assert jobs.reap_dead(Action, since="started_at", max_attempts=3, now=timezone.now()) == ([], [])


def test_a_queued_row_whose_message_was_lost_is_sent_again(run, settings):
    now = timezone.now()
    lost = action(
        run, "a", queued_at=now - timedelta(seconds=settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS * 4)
    )
    action(run, "b", queued_at=now)

    assert [r.pk for r in jobs.resend_lost(Action, now)] == [lost.pk]
    lost.refresh_from_db()
    assert lost.queued_at == now


def test_a_row_queued_without_a_time_is_taken_for_lost(run):
    orphan = action(run, "a", queued_at=None)
    now = timezone.now()

    assert [r.pk for r in jobs.resend_lost(Action, now)] == [orphan.pk]
    orphan.refresh_from_db()
    assert orphan.queued_at == now


@pytest.mark.django_db(transaction=True)
def test_the_reaper_moves_on_every_state_a_lost_message_leaves(run, settings):
    """Queued with its message lost, running on a dead worker, waiting with nothing left
    to wait for: after the grace period each is sent (again) to the broker."""
    from portal.celery import app
    from workers import reaper

    settings.PORTAL_LOST_MESSAGE_GRACE_SECONDS = 5
    now = timezone.now()
    long_ago = now - timedelta(seconds=settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS + 10)
    action(run, "done", status=ActionStatus.SUCCEEDED)
    action(run, "lost", queued_at=now - timedelta(seconds=6))
    late = action(run, "late", queued_at=now - timedelta(seconds=2))
    action(run, "orphan", status=ActionStatus.RUNNING, worker="gone:1:ab", attempts=1, started_at=long_ago)
    action(run, "ready", status=ActionStatus.WAITING, waits_for=["done"])
    app.control.purge()

    reaper.reap(now)

    with app.connection_for_write() as conn:
        assert conn.default_channel._size("celery") == 3  # lost, orphan, ready; late is only late
    app.control.purge()
    states = dict(Action.objects.filter(run=run).values_list("key", "status"))
    assert states["ready"] == states["orphan"] == states["lost"] == ActionStatus.QUEUED
    late.refresh_from_db()
    assert late.queued_at == now - timedelta(seconds=2)


def test_a_message_goes_out_only_when_the_transaction_commits(
    workspace, eager_celery, django_capture_on_commit_callbacks
):
    queued = ApplyRun.objects.create(workspace=workspace, kind="refresh")

    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue("workers.tasks.start_next_run", workspace.pk)
        queued.refresh_from_db()
        assert queued.status == RunStatus.QUEUED

    queued.refresh_from_db()
    assert queued.status == RunStatus.SUCCEEDED  # started, and finished: it has nothing to do


@pytest.mark.django_db(transaction=True)
def test_wait_returns_the_run_once_another_process_finishes_it(run):
    def finish_soon():
        time.sleep(0.3)
        ApplyRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
        connection.close()

    seen = []
    finisher = threading.Thread(target=finish_soon)
    finisher.start()
    finished = jobs.wait(
        ApplyRun, run.pk, "Apply", timeout=30, poll=0.05, report=lambda r: seen.append(r.status)
    )
    finisher.join()

    assert finished.status == RunStatus.SUCCEEDED and finished.is_finished
    assert seen[0] == RunStatus.RUNNING and seen[-1] == RunStatus.SUCCEEDED


def test_wait_gives_up_after_its_timeout_and_says_the_run_goes_on(run):
    with pytest.raises(PortalError) as raised:
        jobs.wait(ApplyRun, run.pk, "Apply", timeout=0.2, poll=0.05)

    assert raised.value.message == f"Apply #{run.pk} is still running after 0 s; it goes on in the workers."


def test_actions_in_flight_halve_when_aws_throttles_and_grow_back_by_one(run, settings):
    from workers import scheduler

    settings.PORTAL_APPLY_CONCURRENCY = 8
    for i in range(12):
        action(run, f"a{i}", status=ActionStatus.WAITING)

    def in_flight():
        return run.actions.filter(status__in=[ActionStatus.QUEUED, ActionStatus.RUNNING]).count()

    def one_ends(throttled):
        done = run.actions.filter(status=ActionStatus.QUEUED).first()
        Action.objects.filter(pk=done.pk).update(status=ActionStatus.SUCCEEDED)
        scheduler.dispatch(run.pk, throttled=throttled)

    scheduler.dispatch(run.pk)
    assert in_flight() == 8  # as many as are ready, up to the ceiling
    one_ends(throttled=True)
    assert in_flight() == 7 and ApplyRun.objects.get(pk=run.pk).window == 4  # none sent until below 4
    for _ in range(3):
        one_ends(throttled=False)
    assert in_flight() == 7 and ApplyRun.objects.get(pk=run.pk).window == 7  # +1 per action
    one_ends(throttled=False)
    assert in_flight() == 7  # back at the ceiling (no window): the last one goes out
    assert ApplyRun.objects.get(pk=run.pk).window == 0
    assert not run.actions.filter(status=ActionStatus.WAITING).exists()


def test_ready_actions_start_longest_chain_first(run, settings):
    """When the window holds fewer than are ready, the action heading the longest chain
    goes first: the run ends when its longest chain does."""
    from workers import scheduler

    settings.PORTAL_APPLY_CONCURRENCY = 2
    for i in range(3):
        action(run, f"leaf{i}", status=ActionStatus.WAITING)
    action(run, "root", status=ActionStatus.WAITING)
    action(run, "middle", status=ActionStatus.WAITING, waits_for=["root"])
    action(run, "end", status=ActionStatus.WAITING, waits_for=["middle"])
    action(run, "short", status=ActionStatus.WAITING)
    action(run, "after-short", status=ActionStatus.WAITING, waits_for=["short"])

    scheduler.dispatch(run.pk)

    queued = set(run.actions.filter(status=ActionStatus.QUEUED).values_list("key", flat=True))
    assert queued == {"root", "short"}  # chains of 3 and 2 before the leaves (lower ids)


@pytest.mark.django_db(transaction=True)
def test_the_action_a_thread_goes_on_with_is_claimed_as_it_is_unblocked(run, settings):
    """No message for it, and never a moment queued without one: the round that unblocks
    it claims it for the thread whose action ended. If that worker dies, the reaper
    queues it again like any action its worker left running."""
    from portal.celery import app
    from workers import reaper, scheduler

    action(run, "parent", status=ActionStatus.SUCCEEDED)
    child = action(run, "child", status=ActionStatus.WAITING, waits_for=["parent"])
    action(run, "grandchild", status=ActionStatus.WAITING, waits_for=["child"])
    action(run, "sibling", status=ActionStatus.WAITING, waits_for=["parent"])
    app.control.purge()

    claimed = scheduler.dispatch_ended(run.pk, False, True, "gone:1:ab")

    assert claimed.pk == child.pk  # the longer chain
    assert (claimed.status, claimed.worker, claimed.attempts) == (ActionStatus.RUNNING, "gone:1:ab", 1)
    states = dict(run.actions.values_list("key", "status"))
    assert states["sibling"] == ActionStatus.QUEUED and states["grandchild"] == ActionStatus.WAITING
    with app.connection_for_write() as conn:
        assert conn.default_channel._size("celery") == 1  # the sibling's message only
    app.control.purge()

    long_ago = timezone.now() - timedelta(seconds=settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS + 10)
    Action.objects.filter(pk=child.pk).update(started_at=long_ago)
    assert reaper.reap()["requeued"] == ["child"]
    child.refresh_from_db()
    assert child.status == ActionStatus.QUEUED
    app.control.purge()


@pytest.mark.django_db(transaction=True)
def test_a_thread_with_nothing_unblocked_takes_a_queued_action_whose_message_is_on_its_way(run):
    """Its action unblocked nothing: the thread goes on with an action queued already (the
    longer chain first), and the message that arrives after finds it taken. An action
    queued to check AWS again later is left to its own message."""
    from portal.celery import app
    from workers import apply, scheduler

    now = timezone.now()
    action(run, "leaf", status=ActionStatus.SUCCEEDED)
    short = action(run, "short", queued_at=now - timedelta(seconds=1))
    long = action(run, "long", queued_at=now - timedelta(seconds=1))
    action(run, "after-long", status=ActionStatus.WAITING, waits_for=["long"])
    later = action(run, "checks-again-later", queued_at=now + timedelta(seconds=60))
    app.control.purge()

    claimed = scheduler.dispatch_ended(run.pk, False, True, "here:1:ab")
    again = scheduler.dispatch_ended(run.pk, False, True, "here:1:ab")
    third = scheduler.dispatch_ended(run.pk, False, True, "here:1:ab")

    assert (claimed.pk, claimed.status, claimed.worker) == (long.pk, ActionStatus.RUNNING, "here:1:ab")
    assert again.pk == short.pk
    assert third is None  # what is left is due later
    assert Action.objects.get(pk=later.pk).status == ActionStatus.QUEUED
    apply.execute(long.pk, worker="late:1:ab")  # its message, arriving after
    assert Action.objects.get(pk=long.pk).worker == "here:1:ab"  # taken once only
    app.control.purge()


@pytest.mark.django_db(transaction=True)
def test_a_chain_runs_link_after_link_in_one_thread_without_a_message(run):
    """Each link is the only one waiting for the one before: the thread goes on with it
    as soon as that one succeeded. The last link's end finishes the run."""
    from portal.celery import app
    from workers import apply

    first = action(run, "first", local=True)
    action(run, "second", status=ActionStatus.WAITING, waits_for=["first"], local=True)
    action(run, "third", status=ActionStatus.WAITING, waits_for=["second"], local=True)
    app.control.purge()

    apply.execute(first.pk, worker="here:1:ab")

    links = {a.key: a for a in run.actions.all()}
    assert {a.status for a in links.values()} == {ActionStatus.SUCCEEDED}
    assert {a.worker for a in links.values()} == {"here:1:ab"}
    assert links["first"].finished_at <= links["second"].started_at <= links["second"].finished_at
    assert links["second"].finished_at <= links["third"].started_at
    assert ApplyRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    with app.connection_for_write() as conn:
        assert conn.default_channel._size("celery") == 1  # the run's end: start the next one
    app.control.purge()


@pytest.fixture
def local_threads():
    """This test process as a threads-pool worker: `size` local threads for what it unblocks."""
    yield jobs.enable_local_threads
    jobs.enable_local_threads(0)


def _fan_out(run):
    """`first`, and three actions that wait for it only."""
    first = action(run, "first", local=True)
    for key in ("a", "b", "c"):
        action(run, key, status=ActionStatus.WAITING, waits_for=["first"], local=True)
    return first


def _messages():
    from portal.celery import app

    with app.connection_for_write() as conn:
        return conn.default_channel._size("celery")


@pytest.mark.django_db(transaction=True)
def test_what_a_round_unblocks_starts_on_the_workers_local_threads_without_a_message(run, local_threads):
    """The thread that ended `first` goes on with one waiter; the other two are given to two
    local threads of the process, not to the broker. (These actions call nothing: the first
    thread may end its own and take them before the local threads have started.) The
    run's end sends one message (start the workspace's next run)."""
    from portal.celery import app
    from workers import apply

    local_threads(2)
    first = _fan_out(run)
    app.control.purge()

    apply.execute(first.pk, worker="here:1:ab")

    deadline = time.monotonic() + 30
    while ApplyRun.objects.get(pk=run.pk).status == RunStatus.RUNNING:
        assert time.monotonic() < deadline, list(run.actions.values_list("key", "status"))
        time.sleep(0.05)
    done = {a.key: a for a in run.actions.all()}
    assert {a.status for a in done.values()} == {ActionStatus.SUCCEEDED}
    assert done["first"].worker == "here:1:ab"
    assert {done[k].worker for k in "abc"} <= {jobs.worker_name(), "here:1:ab"}  # this process
    assert {a.attempts for a in done.values()} == {1}
    assert all(done[k].started_at >= done["first"].finished_at for k in "abc")
    assert ApplyRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    assert _messages() == 1
    app.control.purge()


@pytest.mark.django_db(transaction=True)
def test_what_no_local_thread_is_free_for_goes_through_the_broker(run, local_threads):
    """One local thread, two actions to start besides the one the thread goes on with: the
    second is sent; no worker takes messages here, so the first thread whose action then
    unblocks nothing takes it, and its message finds it taken."""
    from portal.celery import app
    from workers import apply

    local_threads(1)
    first = _fan_out(run)
    app.control.purge()

    apply.execute(first.pk, worker="here:1:ab")

    deadline = time.monotonic() + 30
    while ApplyRun.objects.get(pk=run.pk).status == RunStatus.RUNNING:
        assert time.monotonic() < deadline, list(run.actions.values_list("key", "status"))
        time.sleep(0.05)
    assert _messages() == 2  # its own, sent all the same, and the run's end's (the next start)
    done = {a.key: a for a in run.actions.all()}
    assert {a.status for a in done.values()} == {ActionStatus.SUCCEEDED}
    assert {a.attempts for a in done.values()} == {1}
    assert ApplyRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    app.control.purge()


@pytest.mark.django_db(transaction=True)
def test_an_action_waits_for_its_every_producer(run):
    from portal.celery import app
    from workers import apply

    early = action(run, "early", local=True)
    late = action(run, "late", local=True)
    action(run, "both", status=ActionStatus.WAITING, waits_for=["early", "late"], local=True)

    apply.execute(early.pk)
    assert run.actions.get(key="both").status == ActionStatus.WAITING  # "late" is still queued

    apply.execute(late.pk)
    assert run.actions.get(key="both").status == ActionStatus.SUCCEEDED
    app.control.purge()


@pytest.mark.django_db(transaction=True)
def test_a_dispatch_for_a_run_deleted_with_its_workspace_does_nothing(run):
    from workers import scheduler

    first = action(run, "first", status=ActionStatus.WAITING, local=True)
    gone = run.pk
    run.workspace.delete()
    scheduler.dispatch(gone)  # a message that was out when the workspace went
    assert not Action.objects.filter(pk=first.pk).exists()
    assert not ApplyRun.objects.filter(pk=gone).exists()


@pytest.mark.django_db(transaction=True)
def test_two_producers_that_end_together_start_their_waiter_once(workspace):
    from portal.celery import app
    from workers import apply

    for attempt in range(5):
        run = ApplyRun.objects.create(workspace=workspace, kind="refresh", status=RunStatus.RUNNING)
        producers = [action(run, f"producer{i}", local=True).pk for i in range(2)]
        action(run, "both", status=ActionStatus.WAITING, waits_for=["producer0", "producer1"], local=True)

        in_threads(2, lambda i, producers=producers: apply.execute(producers[i]))

        both = run.actions.get(key="both")
        assert (both.status, both.attempts) == (ActionStatus.SUCCEEDED, 1), attempt
        ended = run.actions.filter(pk__in=producers).values_list("finished_at", flat=True)
        assert both.started_at >= max(ended), attempt
        assert ApplyRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    app.control.purge()


@pytest.mark.django_db(transaction=True)
def test_a_window_that_throttling_narrowed_grows_at_each_end_of_a_chain(run):
    from workers import apply

    ApplyRun.objects.filter(pk=run.pk).update(window=2, concurrency=8)
    first = action(run, "first", local=True)
    action(run, "second", status=ActionStatus.WAITING, waits_for=["first"], local=True)

    apply.execute(first.pk)

    assert ApplyRun.objects.get(pk=run.pk).window == 4  # one more for each of the two ends
    assert set(run.actions.values_list("status", flat=True)) == {ActionStatus.SUCCEEDED}


def test_a_workspaces_apply_concurrency_caps_the_actions_in_flight(workspace, settings):
    from workers import apply

    settings.PORTAL_APPLY_CONCURRENCY = 8
    workspace.apply_concurrency = 2
    workspace.save()
    run = ApplyRun.objects.create(workspace=workspace, kind="refresh", status=RunStatus.QUEUED)
    for i in range(5):
        action(run, f"a{i}", status=ActionStatus.WAITING)

    apply.start_next(workspace.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.concurrency == 2
    assert run.actions.filter(status=ActionStatus.QUEUED).count() == 2


def _queries_to_finish(workspace, n):
    from django.test.utils import CaptureQueriesContext

    from workers import scheduler

    run = ApplyRun.objects.create(workspace=workspace, kind="refresh", status=RunStatus.RUNNING)
    for i in range(n):
        action(run, f"a{i}", status=ActionStatus.SUCCEEDED, local=True, result={"computed": True})
    with CaptureQueriesContext(connection) as queries:
        scheduler.dispatch(run.pk)
    assert ApplyRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    return len(queries)


def test_the_end_of_a_run_costs_the_same_queries_for_5_actions_as_for_60(workspace):
    """The run's end (its bookkeeping, the build log) reads its actions in bulk: no query per action."""
    assert _queries_to_finish(workspace, 60) == _queries_to_finish(workspace, 5)
