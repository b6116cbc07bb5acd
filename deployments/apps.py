from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"
    verbose_name = "Deployments and build logs"

    def ready(self):
        # hooks: the apply listener; tasks: registered here, as workers.jobs sends them by name.
        from . import hooks, tasks  # noqa: F401
