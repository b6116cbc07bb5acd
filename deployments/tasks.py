"""Celery tasks: thin wrappers around deployments/runs.py (autodiscovered by portal.celery).

A stage task gets per-call limits from the stage's timeout (runs._enqueue_stage); the
stage bounds itself by its deadline, the limits are the backstop.
"""

from celery import shared_task

from . import runs


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=1860, time_limit=1920)
def run_stage(stage_id):
    runs.execute_stage(stage_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90)
def advance_run(run_id):
    runs.advance(run_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=600, time_limit=660)
def roll_back(run_id):
    runs.execute_rollback(run_id)


@shared_task(soft_time_limit=120, time_limit=150)
def reap():
    return runs.reap()
