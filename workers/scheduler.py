"""Which actions of an apply run when: the dispatch rounds that start what is unblocked
and block what cannot run, the window of actions in flight (AIMD on AWS throttling), the
hand-over of a finished action's thread to the one it unblocked, and the run's end.

Every step is a conditional update under the run's lock, or a conditional claim whose
reads follow the writes they depend on, so that duplicate messages, two dispatchers or
a worker that died half way cannot start an action twice or leave a wrong state.
"""

import logging
import threading
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal import audit, graph, lifecycle, statements
from portal.models import ChangeSetStatus, Workspace

from . import hooks, jobs
from .models import DONE, Action, ActionStatus, ApplyRun, RunStatus

log = logging.getLogger(__name__)


def enqueue_action(action_id, countdown=None, here=False):
    """Have a worker execute the action once the transaction commits (`countdown` seconds
    later; `here`: on a local thread of this worker process if one is free)."""
    if countdown is None:
        jobs.enqueue("workers.tasks.execute_action", action_id, here=here)
    else:
        jobs.enqueue("workers.tasks.execute_action", action_id, countdown=countdown)


def enqueue_start(workspace_id):
    """Have a worker start the workspace's next queued run once the transaction commits."""
    jobs.enqueue("workers.tasks.start_next_run", workspace_id)


def dispatch(run_id, throttled=None):
    """Queue the actions whose dependencies succeeded, block those whose dependencies
    failed, and finish the run when nothing is left to do. `throttled` says whether AWS
    throttled the action that just ended: the run's window of actions in flight halves,
    or grows by one."""
    _, queued = _dispatch(run_id, [throttled])
    _send(queued)


def _send(queued):
    for pk in queued:  # longest chain first: the first start on this process's free threads
        enqueue_action(pk, here=True)


def _dispatch(run_id, outcomes, claimers=()):
    """dispatch() for the actions that ended with `outcomes` (throttled or not, one each),
    without the messages. The first ready actions are claimed in the same transaction, one
    for each of `claimers` (worker names, of threads that go on with one); returns those
    rows, and the ids of the actions queued, to send once the transaction commits."""
    claimed, queued = [], []
    with transaction.atomic():
        found = statements.select(ApplyRun, "{id} = %s", [run_id], lock=True)
        if not found or found[0].status != RunStatus.RUNNING:
            return claimed, queued  # ended, or gone with its workspace while a message was out
        run = found[0]
        graph_of_run = action_graph(run)
        shape = _shape_of(run, graph_of_run)
        # Only the rows not succeeded yet are read and looked at: those that did stay so (a
        # retry moves only a failed action), and late in a run they are most of it.
        unfinished = statements.values(
            Action,
            ("id", "status", "queued_at"),
            "{run_id} = %s AND {status} <> %s",
            [run.pk, ActionStatus.SUCCEEDED],
        )
        status = {graph_of_run[pk][0]: st for pk, st, _ in unfinished}  # the rest of the run succeeded

        def status_of(key):  # None: not an action of this run (its waiter stays waiting)
            return status.get(key, ActionStatus.SUCCEEDED) if key in shape.keys else None

        waiting = [
            (pk, graph_of_run[pk][0], graph_of_run[pk][1])
            for pk, st, _ in unfinished
            if st == ActionStatus.WAITING
        ]
        failed = (ActionStatus.FAILED, ActionStatus.BLOCKED, ActionStatus.CANCELLED)
        changed = True
        while changed:
            changed = False
            for pk, key, waits_for in waiting:
                if status[key] != ActionStatus.WAITING:
                    continue
                bad = [k for k in waits_for if status_of(k) in failed]
                if bad:
                    status[key] = ActionStatus.BLOCKED
                    statements.update(
                        Action,
                        "{id} = %s AND {status} = %s",
                        [pk, ActionStatus.WAITING],
                        status=ActionStatus.BLOCKED,
                        error=f"not run: {', '.join(bad)} did not succeed",
                    )
                    changed = True
        in_flight = sum(1 for st in status.values() if st in (ActionStatus.QUEUED, ActionStatus.RUNNING))
        ready = [
            pk
            for pk, key, waits_for in waiting
            if status[key] == ActionStatus.WAITING
            and all(status_of(k) == ActionStatus.SUCCEEDED for k in waits_for)
        ]
        window = _adapt_window(run, len(ready) + in_flight + 1, outcomes)
        ready.sort(key=lambda pk: -shape.chains.get(pk, 0))
        ready = ready[: max(0, window - in_flight)]
        now = timezone.now()
        if ready:
            for pk, worker in zip(ready, claimers, strict=False):
                row = jobs.claim_row(
                    Action, pk, worker, ActionStatus.WAITING, extra=RUN_NOW, started_at=now, queued_at=now
                )
                if row is not None:
                    claimed.append(row)
            queued = ready[len(claimers) :]
            if queued:
                statements.update(
                    Action,
                    "{id} IN " + statements.placeholders(len(queued)) + " AND {status} = %s",
                    [*queued, ActionStatus.WAITING],
                    status=ActionStatus.QUEUED,
                    queued_at=now,
                )
            status.update({graph_of_run[pk][0]: ActionStatus.QUEUED for pk in ready})
        claimed += _take_queued(unfinished, shape, claimers[len(ready) :], now)
        if all(st in DONE for st in status.values()):
            finish_run(run, list(run.actions.only(*_FINISH_FIELDS)))
    return claimed, queued


def _take_queued(unfinished, shape, workers, now):
    """Threads that go on with nothing unblocked for them take actions queued already and
    not started yet (their message on its way, which under load takes tens of milliseconds,
    or no thread free for them), longest chain first; not one that waits on AWS (queued
    due later). The claim is conditional: the message that arrives later finds it taken."""
    if not workers:
        return []
    due = [pk for pk, st, at in unfinished if st == ActionStatus.QUEUED and at is not None and at <= now]
    due.sort(key=lambda pk: -shape.chains.get(pk, 0))
    taken = []
    for pk in due:
        if len(taken) == len(workers):
            break
        row = jobs.claim_row(Action, pk, workers[len(taken)], extra=RUN_NOW, started_at=now)
        if row is not None:
            taken.append(row)
    return taken


class _Ended:
    """An action that ended in this thread, waiting for its run's next dispatch round."""

    def __init__(self, throttled, goes_on, worker):
        self.throttled, self.goes_on, self.worker = throttled, goes_on, worker
        self.done = threading.Event()
        self.leads = False
        self.claimed = None
        self.error = None


# Actions of a run that end together in this process are dispatched in rounds: one
# thread leads a round, one transaction under the run's lock for all the actions that
# ended since the last one began, instead of each queueing behind the others on the lock.
# {run id: the actions waiting for the next round}, present while a round is under way.
_ROUNDS = {}
_ROUNDS_LOCK = threading.Lock()


def dispatch_ended(run_id, throttled, goes_on, worker):
    """dispatch() after an action ended in this thread (its outcome committed already);
    when `goes_on`, returns an action claimed for this thread to execute next, or None."""
    me = _Ended(throttled, goes_on, worker)
    with _ROUNDS_LOCK:
        me.leads = run_id not in _ROUNDS
        _ROUNDS.setdefault(run_id, []).append(me)
    if not me.leads:
        me.done.wait()  # set when a round took it, or when the next round is its to lead
    if not me.leads:
        if me.error is not None:
            raise me.error
        return me.claimed
    return _lead_round(run_id, me)


def _lead_round(run_id, me):
    with _ROUNDS_LOCK:
        batch, _ROUNDS[run_id] = _ROUNDS[run_id], []
    queued = []
    try:
        going_on = [e for e in batch if e.goes_on]
        claimed, queued = _dispatch(run_id, [e.throttled for e in batch], [e.worker for e in going_on])
        for e, row in zip(going_on, claimed, strict=False):
            e.claimed = row
    except Exception as exc:
        for e in batch:
            e.error = exc
        raise
    finally:
        with _ROUNDS_LOCK:
            waiting = _ROUNDS[run_id]
            if waiting:
                waiting[0].leads = True
            else:
                del _ROUNDS[run_id]
        for e in batch + waiting[:1]:
            if e is not me:
                e.done.set()
    # Committed, and the next round under way: the messages need not hold it up. One that
    # cannot be sent (the broker is away) leaves its action queued, for the reaper to send
    # again; the action claimed for this thread goes on all the same.
    try:
        _send(queued)
    except Exception:
        log.warning(
            "could not send the actions %s of apply #%s; the reaper will", queued, run_id, exc_info=True
        )
    return me.claimed


# An apply's actions and what each waits for never change once the run is made: read
# once per process, not at every dispatch (a dispatch per finished action). Keyed by the
# run's creation time too: a database that was reset (the demo's, SQLite's) reuses ids.
_GRAPHS = {}


def action_graph(run):
    """{action pk: (key, waits_for, component name)} of the run."""
    cache_key = (run.pk, run.created_at)
    graph_of_run = _GRAPHS.get(cache_key)
    if graph_of_run is None:
        if len(_GRAPHS) > 64:
            _GRAPHS.clear()
        graph_of_run = {
            pk: (key, waits_for, name)
            for pk, key, waits_for, name in run.actions.values_list(
                "pk", "key", "waits_for", "component_name"
            )
        }
        _GRAPHS[cache_key] = graph_of_run
    return graph_of_run


class _Shape(NamedTuple):
    chains: dict  # {action pk: the number of actions on the longest chain from it to the run's end}
    waiters: dict  # {action pk: the pks of the actions that wait for it}
    keys: frozenset  # the keys of the run's actions


_SHAPES = {}  # {(run pk, created_at): the _Shape of the run}, like _GRAPHS


def _shape_of(run, graph_of_run):
    cache_key = (run.pk, run.created_at)
    shape = _SHAPES.get(cache_key)
    if shape is None:
        if len(_SHAPES) > 64:
            _SHAPES.clear()
        shape = _SHAPES[cache_key] = _shape(graph_of_run)
    return shape


def _shape(graph_of_run):
    """Ready actions start longest chain first (their messages go out first, and the thread
    that unblocked them goes on with that one): the run ends when its longest chain does."""
    pk_of = {key: pk for pk, (key, _, _) in graph_of_run.items()}
    waited_for = {
        pk: {pk_of[k] for k in waits_for if k in pk_of} for pk, (_, waits_for, _) in graph_of_run.items()
    }
    waiters = {pk: [] for pk in graph_of_run}
    for pk, producers in waited_for.items():
        for producer in producers:
            waiters[producer].append(pk)
    length = {}
    for pk in reversed(graph.topological(graph_of_run, waited_for)):
        length[pk] = 1 + max((length[w] for w in waiters[pk]), default=0)
    return _Shape(length, waiters, frozenset(pk_of))


def _adapt_window(run, width, outcomes):
    """AIMD on the actions in flight. Until AWS throttles, as many as can run (`width`, up
    to the ceiling: the workspace's apply_concurrency as the run started, else
    PORTAL_APPLY_CONCURRENCY); a throttled action halves the window, each action after it
    that was not throttled grows it by one, until it is back at the ceiling. `outcomes`:
    throttled or not (None: no action ended) for each action that ended. `run.window` is
    0 while no window applies."""
    ceiling = run.concurrency or settings.PORTAL_APPLY_CONCURRENCY
    window = run.window
    for throttled in outcomes:
        if throttled:
            window = max(1, (window or min(ceiling, width)) // 2)
        elif throttled is False and window:
            window = 0 if window + 1 >= ceiling else window + 1
    if window != run.window:
        ApplyRun.objects.filter(pk=run.pk).update(window=window)
        run.window = window
    return window or ceiling


# What finish_run reads of the actions, not their JSON; with the run, which the related
# manager sets on each row (deferred, it cost a query per action).
_FINISH_FIELDS = ("run", "key", "status", "error")


def finish_run(run, actions):
    ok = all(a.status == ActionStatus.SUCCEEDED for a in actions)
    run.status = RunStatus.SUCCEEDED if ok else RunStatus.FAILED
    run.finished_at = timezone.now()
    failed = [a for a in actions if a.status == ActionStatus.FAILED]
    run.error = "" if ok else "; ".join(f"{a.key}: {a.error}" for a in failed)[:4000]
    run.save(update_fields=["status", "finished_at", "error"])
    if run.change_set_id:
        done = ChangeSetStatus.APPLIED if ok else ChangeSetStatus.FAILED
        lifecycle.move_where(run.change_set_id, "finish_apply", done)
    audit.record(
        "apply.succeeded" if ok else "apply.failed",
        actor=run.requested_by,
        change_set=run.change_set,
        workspace=run.workspace,
        target=f"apply #{run.pk}",
        after={
            "succeeded": sum(a.status == ActionStatus.SUCCEEDED for a in actions),
            "failed": len(failed),
            "error": run.error or None,
        },
    )
    hooks.run_finished(run)
    enqueue_start(run.workspace_id)


# What the claim reads along of the action's run, to tell whether this process's copy of
# the run (and its workspace) is the same run and HEAD has not moved.
RUN_NOW = {  # table names from the models' metadata
    "run_created_at": f"SELECT r.created_at FROM {ApplyRun._meta.db_table} r WHERE r.id = run_id",  # noqa: S608
    "head_version_now": f"SELECT w.head_version FROM {Workspace._meta.db_table} w "  # noqa: S608
    f"JOIN {ApplyRun._meta.db_table} r ON r.workspace_id = w.id WHERE r.id = run_id",
}
# What a claim without a round requires of the run: still running, and no window.
_RUN_UNTHROTTLED = (  # identifiers double-quoted, as standard SQL (and Postgres, SQLite) quote them
    f"(SELECT r.status FROM {ApplyRun._meta.db_table} r WHERE r.id = run_id) = '{RunStatus.RUNNING}' "  # noqa: S608
    f'AND (SELECT r."{ApplyRun._meta.get_field("window").column}" FROM {ApplyRun._meta.db_table} r '  # noqa: S608
    "WHERE r.id = run_id) = 0"
)


def take_sole_waiter(action, worker):
    """When `action`, which just succeeded, is waited for by one action only, and that one
    waits for nothing else undone: that one, claimed for this thread without a dispatch
    round (None otherwise, and the round decides). A round would have nothing else to do:
    nothing else became ready, the run cannot have ended (the waiter has not run), and
    the window stays (this thread's slot passes to the waiter; a window that AWS
    throttling narrowed, which grows at each end, is left to the rounds). Of two producers
    of one waiter that end together, at least one sees the other succeeded, as each reads
    after its own success committed; the claim is conditional, so only one takes it."""
    graph_of_run = action_graph(action.run)
    shape = _shape_of(action.run, graph_of_run)
    waiters = shape.waiters.get(action.pk, ())
    if len(waiters) != 1:
        return None
    others = [k for k in graph_of_run[waiters[0]][1] if k != action.key]
    if any(k not in shape.keys for k in others):
        return None  # it waits for what this run does not do: a round leaves it waiting
    if others and statements.values(
        Action,
        ("id",),
        "{run_id} = %s AND {key} IN " + statements.placeholders(len(others)) + " AND {status} <> %s",
        [action.run_id, *others, ActionStatus.SUCCEEDED],
    ):
        return None
    now = timezone.now()
    return jobs.claim_row(
        Action,
        waiters[0],
        worker,
        ActionStatus.WAITING,
        extra=RUN_NOW,
        condition=_RUN_UNTHROTTLED,
        started_at=now,
        queued_at=now,
    )
