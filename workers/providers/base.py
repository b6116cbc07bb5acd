"""The provider interface: one class per CloudFormation resource type.

A provider turns desired properties (CloudFormation property names, subscriptions
already resolved) into AWS calls and reports what AWS holds as `resource_value`, in
CloudFormation property names including read-only attributes.

Crash safety: `create` gets the component's stable id as `token`; a provider must
find a resource it created earlier for that token (client token, tag
`portal:component-id`, or a read by the name the properties fix) and adopt it instead
of creating a second one.
"""

from dataclasses import dataclass, field

from botocore.exceptions import ClientError

PORTAL_TAG = "portal:component-id"


class ResourceMissing(Exception):
    """The resource does not exist (any more) in AWS."""


class ProviderError(Exception):
    """AWS refused the call for good; `message` is AWS's own words."""

    def __init__(self, message, *, code="", immutable_property=None):
        super().__init__(message)
        self.message = message
        self.code = code
        # Set when AWS refused an in-place update because a property cannot change.
        self.immutable_property = immutable_property


class StillWaiting(Exception):  # noqa: N818 (not an error: a turn to come back later)
    """AWS is still working on `what`: check again in `delay` seconds, give up at
    `deadline` (epoch seconds). Raised by a wait that must not hold its task (see
    common.resumable_waits); calling the provider again resumes where it stood."""

    def __init__(self, what, deadline, delay):
        super().__init__(f"still waiting for {what}")
        self.what, self.deadline, self.delay = what, deadline, delay


@dataclass
class Observed:
    physical_id: str
    resource_value: dict = field(default_factory=dict)


class Provider:
    type_name = ""

    def __init__(self, clients):
        self.clients = clients  # workers.aws.Clients

    def create(self, properties: dict, token: str) -> Observed:
        raise NotImplementedError

    def read(self, physical_id: str, properties: dict | None = None) -> Observed:
        """Raise ResourceMissing when the resource is gone."""
        raise NotImplementedError

    def update(self, physical_id: str, old: dict, new: dict) -> Observed:
        raise NotImplementedError

    def delete(self, physical_id: str, properties: dict) -> None:
        """Deleting a resource that is already gone is a success."""
        raise NotImplementedError


_REGISTRY: dict[str, type[Provider]] = {}


def register(cls):
    _REGISTRY[cls.type_name] = cls
    return cls


def provider_for(type_name, clients) -> Provider:
    # The provider modules import this one to register; the package loads them on first use.
    from . import load_all

    load_all()
    if type_name not in _REGISTRY:
        raise ProviderError(
            f"No provider for {type_name}: the portal cannot manage it in AWS yet.", code="Unsupported"
        )
    return _REGISTRY[type_name](clients)


def has_provider(type_name) -> bool:
    from . import load_all

    load_all()
    return type_name in _REGISTRY


def supported_types():
    from . import load_all

    load_all()
    return sorted(_REGISTRY)


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def aws_message(exc: ClientError) -> str:
    err = exc.response.get("Error", {})
    return f"{err.get('Code', 'Error')}: {err.get('Message', str(exc))}"
