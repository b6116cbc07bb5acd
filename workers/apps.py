from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self):
        from portal import registry

        from . import signals  # noqa: F401
        from .providers.base import has_provider

        registry.register_types(has_provider)
