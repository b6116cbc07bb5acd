"""Start the portal with the Tony's Chips demo workspace on laptop defaults.

SQLite, the laptop broker (a Redis of the checkout's own, portal.localbroker), real Celery worker and beat processes, and an
embedded local AWS (moto server on loopback) unless AWS_ENDPOINT_URL or real
credentials are configured. The embedded AWS forgets everything when it stops, so the
demo database is rebuilt at each start (and says so) rather than leaving a HEAD that
points at resources nobody remembers.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from deployments.demo import DEMO_USERS, load_demo
from portal import localstate


class Command(BaseCommand):
    help = (
        "Start the portal with the demo workspace (SQLite, laptop Redis broker, Celery workers, local AWS)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--aws-port", type=int, default=int(os.environ.get("LOCAL_AWS_PORT", 5055)))
        parser.add_argument("--concurrency", type=int, default=8, help="Celery worker threads")
        parser.add_argument("--load-only", action="store_true", help="load the demo and exit (no servers)")
        parser.add_argument("--no-apply", action="store_true", help="do not apply the demo workspace to AWS")

    def handle(self, *args, **opts):
        self.children = []
        # SIGTERM (a process manager, `kill`) stops the demo as Ctrl-C does: through the
        # `finally` below, so the worker and beat do not outlive it.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        localstate.prepare()
        if not os.environ.get("SECRET_KEY"):
            # The web server, workers and beat read var/secret_key; on a first run this
            # process read its settings before the file existed.
            settings.SECRET_KEY = localstate.persistent_secret_key()
        embedded_aws = not os.environ.get("AWS_ENDPOINT_URL") and not os.environ.get("AWS_PROFILE")
        env = dict(os.environ)
        if embedded_aws:
            endpoint = self.start_local_aws(opts["aws_port"])
            env.update(
                AWS_ENDPOINT_URL=endpoint,
                AWS_ACCESS_KEY_ID="demo",
                AWS_SECRET_ACCESS_KEY="demo",
                AWS_DEFAULT_REGION="us-east-1",
            )
            os.environ.update(
                {
                    k: env[k]
                    for k in (
                        "AWS_ENDPOINT_URL",
                        "AWS_ACCESS_KEY_ID",
                        "AWS_SECRET_ACCESS_KEY",
                        "AWS_DEFAULT_REGION",
                    )
                }
            )
            self.reset_database()
        call_command("migrate", verbosity=0)
        try:
            if not opts["load_only"]:
                self.start_workers(env, opts["concurrency"])
            summary = load_demo(apply=not opts["no_apply"] and not opts["load_only"], log=self.stdout.write)
            self.stdout.write(self.style.SUCCESS(summary))
            if opts["load_only"]:
                return
            call_command("collectstatic", interactive=False, verbosity=0)
            self.stdout.write(
                f"\nPortal: http://127.0.0.1:{opts['port']}/  — sign in as "
                + ", ".join(f"{u} / {p} ({role})" for u, p, role in DEMO_USERS)
                + "\nCLI: .venv/bin/python manage.py workspace show tonys-chips\nStop with Ctrl-C.\n"
            )
            # The demo is a single-user server on loopback by design (the image runs
            # gunicorn), so Django's "development server" warning is nothing to act on.
            os.environ["DJANGO_RUNSERVER_HIDE_WARNING"] = "true"
            call_command("runserver", f"127.0.0.1:{opts['port']}", use_reloader=False)
        finally:
            self.stop_children()

    def reset_database(self):
        db = settings.DATABASES["default"]
        if not db["ENGINE"].endswith("sqlite3"):
            return
        path = Path(db["NAME"])
        if path.exists():
            self.stdout.write(
                self.style.WARNING(
                    "The embedded local AWS starts empty each time, so the demo database is reset to match it."
                )
            )
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        # The queue's messages name rows of the database just deleted.
        from portal.celery import app

        app.control.purge()

    def start_local_aws(self, port):
        # Simulator settings, not product behaviour: AWS managed policies exist on AWS, and
        # ECS services there run their tasks (moto's services report this many running, and
        # a rollout completes once that reaches the desired count: the seed scales to 4).
        os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        os.environ.setdefault("MOTO_ECS_SERVICE_RUNNING", "4")
        from workers.localaws import LocalAws  # after the settings above: moto reads them at import

        try:
            server = LocalAws().start(port)
        except OSError as exc:
            raise CommandError(
                f"Cannot start the local AWS on 127.0.0.1:{port}: {exc}. Use --aws-port."
            ) from None
        self.stdout.write(f"Local AWS (moto server) on {server.endpoint}")
        return server.endpoint

    def start_workers(self, env, concurrency):
        # On a laptop or a throwaway VM the demo often runs as root; Celery's advice to
        # drop privileges with --uid is for production workers, not this local toy.
        env = {**env, "PYTHONWARNINGS": "ignore:You're running the worker with superuser privileges"}
        celery = [sys.executable, "-m", "celery", "-A", "portal"]
        logs = settings.VAR_DIR / "logs"
        logs.mkdir(exist_ok=True)
        for name, argv in (
            (
                "worker",
                [
                    *celery,
                    "worker",
                    "--pool",
                    "threads",
                    "--concurrency",
                    str(concurrency),
                    "--loglevel",
                    "INFO",
                ],
            ),
            (
                "beat",
                [
                    *celery,
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    str(settings.VAR_DIR / "celerybeat-schedule"),
                ],
            ),
        ):
            out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
            self.children.append(subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT))
            self.stdout.write(f"Celery {name} started (log: {logs / (name + '.log')})")
        time.sleep(1)

    def stop_children(self):
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
