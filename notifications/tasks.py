"""Celery tasks: thin wrappers around notifications/delivery.py."""

from celery import shared_task

from . import delivery


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90)
def deliver(delivery_id):
    delivery.deliver(delivery_id)


@shared_task(soft_time_limit=120, time_limit=150)
def reap():
    return delivery.reap()
