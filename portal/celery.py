import os

from celery import Celery
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers", "deployments", "notifications"])


@app.on_after_configure.connect
def _beat_schedule(sender, **_):
    """Tasks are named, not imported: the project's Celery app imports none of the apps."""
    sender.conf.beat_schedule = {
        "reap-stuck-work": {"task": "workers.tasks.reap", "schedule": 30.0},
        "reap-stuck-deployments": {"task": "deployments.tasks.reap", "schedule": 30.0},
        "reap-stuck-notifications": {"task": "notifications.tasks.reap", "schedule": 30.0},
        "refresh-workspaces": {
            "task": "workers.tasks.refresh_all",
            "schedule": settings.PORTAL_REFRESH_EVERY_SECONDS,
        },
    }
