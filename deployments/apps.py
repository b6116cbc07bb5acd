from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"
    verbose_name = "Deployments and build logs"

    def ready(self):
        from portal import registry

        from . import hooks  # noqa: F401  (registers the apply listener)
        from .pipelines import component_from_spec

        registry.register_spec_sugar("pipelines", component_from_spec)
