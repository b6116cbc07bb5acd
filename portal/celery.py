import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers", "deployments"])

app.conf.beat_schedule = {
    "reap-stuck-work": {"task": "workers.tasks.reap", "schedule": 30.0},
    "refresh-workspaces": {
        "task": "workers.tasks.refresh_all",
        "schedule": float(os.environ.get("PORTAL_REFRESH_EVERY_SECONDS", "900")),
    },
}
