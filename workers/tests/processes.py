"""Real Celery worker processes for integration tests, pointed at the test database."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)


def database_url():
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
        return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    return f"sqlite:///{s['NAME']}"


class WorkerProcess:
    def __init__(self, aws_endpoint, concurrency=8, extra_env=None, pool="threads", include=(), plain=False):
        """pool=None and concurrency=None leave them to the Celery config (README's command);
        plain=True also leaves out the flags tests add (no gossip, mingle or event heartbeat,
        INFO logs): README's `celery -A portal worker`, with a node name and the includes."""
        self.name = f"test-{uuid.uuid4().hex[:6]}"
        self.log = Path(settings.VAR_DIR) / f"{self.name}.log"
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url(),
            AWS_ENDPOINT_URL=aws_endpoint,
            PORTAL_HEARTBEAT_SECONDS="0.5",
            PORTAL_WORKER_HEARTBEAT_STALE_SECONDS=str(settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS),
            PORTAL_AWS_POLL_SECONDS="0.1",
            # The test database has its own name: keep to the queues of the test process.
            PORTAL_BROKER_KEY_PREFIX=settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"],
            PYTHONUNBUFFERED="1",
        )
        if pool:
            # Celery takes `--pool prefork` for its own default and keeps the configured
            # pool (threads) instead (celery#6701): the pool is chosen by the setting.
            env["CELERY_WORKER_POOL"] = pool
        env.update(extra_env or {})
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            *(["--pool", pool] if pool else []),
            *(["--concurrency", str(concurrency)] if concurrency else []),
            *(f"--include={module}" for module in include),
            *([] if plain else ["--without-gossip", "--without-mingle", "--without-heartbeat"]),
            *([] if plain else ["--loglevel", "INFO"]),
            "-n",
            f"{self.name}@%h",
        ]
        self.env = env
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=open(self.log, "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.output()}")
            if b"ready." in self.log.read_bytes() or self._beating():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.output()}")

    def _beating(self):
        """Its first heartbeat, written when Celery is ready (what tells a worker that logs
        no "ready." line at the default log level)."""
        from workers.models import WorkerHeartbeat

        return WorkerHeartbeat.objects.filter(
            name__startswith=f"{socket.gethostname()}:{self.proc.pid}:"
        ).exists()

    def kill(self):
        """SIGKILL the worker and everything it started: no chance to clean up."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self):
        return self.log.read_text(errors="replace")[-5000:] if self.log.exists() else ""
