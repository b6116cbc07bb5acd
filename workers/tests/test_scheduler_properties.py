"""Random DAGs of actions run by several threads at once, as workers run them, checked
against what a run must come to whatever the order: every action succeeds exactly once,
none starts before all it waits for ended, and the run ends succeeded. Each thread goes
on with what its action unblocked (a dispatch round, or the sole waiter's claim without
one); the others wait in the queue, where the "workers" of the test take them.

CI runs a fixed seed; HYPOTHESIS_PROFILE=local (test_engine_stateful.py's profiles) more.
"""

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workers import apply, scheduler
from workers.models import Action, ActionStatus, ApplyRun, RunStatus

from .rows import action
from .threads import in_threads


@st.composite
def dags(draw):
    """{key: [keys it waits for]}: each action waits for some of those before it."""
    n = draw(st.integers(min_value=1, max_value=9))
    keys = [f"a{i}" for i in range(n)]
    return {
        key: sorted(draw(st.sets(st.sampled_from(keys[:i]), max_size=3))) if i else []
        for i, key in enumerate(keys)
    }


def _run_of(workspace, dag):
    run = ApplyRun.objects.create(workspace=workspace, kind="refresh", status=RunStatus.RUNNING)
    for key, waits_for in dag.items():
        # local: nothing to call, the test is the order, not AWS
        action(run, key, status=ActionStatus.WAITING, waits_for=waits_for, local=True)
    return run


def _work_until_done(run, threads):
    """`threads` threads take queued actions and execute them, as workers take messages.
    Returns the most actions seen in flight (queued or running) at once."""
    lock, in_flight = threading.Lock(), [0]

    def take():
        with lock:
            flying = dict(
                Action.objects.filter(
                    run=run, status__in=[ActionStatus.QUEUED, ActionStatus.RUNNING]
                ).values_list("pk", "status")
            )
            in_flight[0] = max(in_flight[0], len(flying))
            queued = [pk for pk, status in flying.items() if status == ActionStatus.QUEUED]
        return min(queued) if queued else None

    def worker(i):
        for _ in range(200):
            if ApplyRun.objects.get(pk=run.pk).is_finished:
                return
            pk = take()
            if pk is not None:
                apply.execute(pk, worker=f"test:{i}:x")

    in_threads(threads, worker)
    return in_flight[0]


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(dag=dags(), threads=st.integers(min_value=1, max_value=4), window=st.sampled_from([0, 1, 2]))
def test_every_action_runs_once_after_all_it_waits_for(workspace, dag, threads, window):
    from portal.celery import app

    run = _run_of(workspace, dag)
    ApplyRun.objects.filter(pk=run.pk).update(window=window, concurrency=3)

    scheduler.dispatch(run.pk)
    most_in_flight = _work_until_done(run, threads)

    actions = {a.key: a for a in Action.objects.filter(run=run)}
    assert {k: a.status for k, a in actions.items()} == dict.fromkeys(dag, ActionStatus.SUCCEEDED)
    assert {k: a.attempts for k, a in actions.items()} == dict.fromkeys(dag, 1)
    for key, waits_for in dag.items():
        for producer in waits_for:
            assert actions[producer].finished_at <= actions[key].started_at, (producer, key)
    assert ApplyRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    # Never more at once than the run's ceiling (3), however many threads there are.
    assert most_in_flight <= 3
    edges = sorted(
        [(a.started_at, 1) for a in actions.values()] + [(a.finished_at, -1) for a in actions.values()]
    )
    running = [0]
    for _, step in edges:  # an end sorts before a start at the same instant
        running.append(running[-1] + step)
    assert max(running) <= 3
    app.control.purge()
