from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self):
        # signals: heartbeats; tasks: registered here, as jobs.enqueue sends them by name.
        from . import signals, tasks  # noqa: F401
