"""A task for the broker stress test: it writes the id it was given to the database."""

from celery import shared_task
from django.db import connection


@shared_task(acks_late=True, reject_on_worker_lost=True)
def deliver(n):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO broker_stress_delivery (n) VALUES (%s)", [n])
