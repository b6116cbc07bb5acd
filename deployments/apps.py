from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"
    verbose_name = "Deployments and build logs"

    def ready(self):
        from portal import registry

        # hooks: the apply listener; tasks: registered here, as workers.jobs sends them by name.
        from . import hooks, tasks  # noqa: F401
        from .pipelines import component_from_spec, deployed_services

        registry.register_spec_sugar("pipelines", component_from_spec)
        registry.register_deployed_services(deployed_services)
