from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self):
        from portal import registry

        # tasks: registered here, as workers.jobs sends them by name.
        from . import tasks  # noqa: F401
        from .delivery import on_audit_events

        registry.register_audit_listener(on_audit_events)
