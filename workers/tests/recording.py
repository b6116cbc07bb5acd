"""Recording what the providers send to AWS, as the caller passed it to boto3."""

import copy


def record(client, operation):
    """The parameters of every `operation` call made through `client`."""
    calls = []

    def hook(params, **kwargs):
        calls.append(copy.deepcopy(params))

    client.meta.events.register(
        f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}.{operation}", hook
    )
    return calls


def lose_first_response(client, operation):
    """Make botocore retry the first `operation` call after AWS has carried it out, as when
    the response is lost on the way back: the retry meets the first attempt's resource."""
    lost = []

    def hook(attempts, **kwargs):
        if attempts == 1 and not lost:
            lost.append(True)
            return 0  # retry at once
        return None

    client.meta.events.register_first(
        f"needs-retry.{client.meta.service_model.service_id.hyphenize()}.{operation}", hook
    )


def record_operations(client):
    """The name of every operation sent through `client`, in order."""
    names = []

    def hook(model, **kwargs):
        names.append(model.name)

    client.meta.events.register("before-call", hook)
    return names
