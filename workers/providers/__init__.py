"""Resource providers, one module per AWS service. Importing a module registers its classes."""

import importlib

MODULES = [
    "ec2",
    "ec2_routing",
    "ecs",
    "elbv2",
    "servicediscovery",
    "cloudformation",
    "stepfunctions",
    "iam",
    "logs",
    "rds",
    "rds_subnets",
    "ecr",
]
_loaded = False


def load_all():
    global _loaded
    if not _loaded:
        for name in MODULES:
            importlib.import_module(f"{__name__}.{name}")
        _loaded = True
