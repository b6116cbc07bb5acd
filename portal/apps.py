from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Change-set portal"

    def ready(self):
        from . import logins  # noqa: F401  (connects the sign-in audit receivers)
