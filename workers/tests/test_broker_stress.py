"""The broker under load: processes that enqueue while a prefork and a threads worker
consume, a few thousand messages, none lost. Without REDIS_URL this is the laptop broker."""

import os
import subprocess
import sys
import time

import pytest
from django.db import connection

from portal.celery import app

from .processes import ROOT, WorkerProcess, database_url

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PRODUCERS, PER_PRODUCER = 3, 1000
PRODUCE = """
import sys, django
django.setup()
from portal.celery import app
start, count = int(sys.argv[1]), int(sys.argv[2])
for n in range(start, start + count):
    app.send_task("workers.tests.stress_tasks.deliver", (n,))
"""


@pytest.fixture
def deliveries():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE broker_stress_delivery (n integer NOT NULL)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE broker_stress_delivery")


def delivered():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT n), count(*) FROM broker_stress_delivery")
        return cursor.fetchone()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="several processes write at once: Postgres")
def test_no_message_is_lost_with_many_producers_and_consumers(deliveries):
    app.control.purge()
    include = ["workers.tests.stress_tasks"]
    workers = [
        WorkerProcess("http://127.0.0.1:9", concurrency=4, pool="prefork", include=include),
        WorkerProcess("http://127.0.0.1:9", concurrency=8, include=include),
    ]
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_BROKER_KEY_PREFIX": workers[0].env["PORTAL_BROKER_KEY_PREFIX"],
    }
    try:
        for w in workers:
            w.wait_ready()
        producers = [
            subprocess.Popen(
                [sys.executable, "-c", PRODUCE, str(i * PER_PRODUCER), str(PER_PRODUCER)], cwd=ROOT, env=env
            )
            for i in range(PRODUCERS)
        ]
        assert [p.wait(timeout=120) for p in producers] == [0] * PRODUCERS
        total = PRODUCERS * PER_PRODUCER
        deadline = time.monotonic() + 120
        while delivered()[0] < total and time.monotonic() < deadline:
            time.sleep(0.5)
        for w in workers:
            assert w.proc.poll() is None, f"a worker died:\n{w.output()}"
    finally:
        for w in workers:
            w.stop()
    distinct, _ = delivered()
    assert distinct == total
    for w in workers:
        assert "Unrecoverable error" not in w.output()
