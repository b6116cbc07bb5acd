from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self):
        from portal import registry

        # signals: heartbeats; tasks: registered here, as jobs.enqueue sends them by name.
        from . import signals, tasks  # noqa: F401
        from .providers.base import has_provider

        registry.register_types(has_provider)
