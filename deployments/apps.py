from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"
    verbose_name = "Deployments and build logs"

    def ready(self):
        from . import hooks  # noqa: F401  (registers the apply listener)
