from django.apps import AppConfig
from django.urls import register_converter


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Change-set portal"

    def ready(self):
        from . import logins  # noqa: F401  (connects the sign-in audit receivers)
        from .inputs import IdConverter

        # `<id:...>` in every app's urls.py: ids the database can hold, anything else a 404.
        register_converter(IdConverter, "id")
