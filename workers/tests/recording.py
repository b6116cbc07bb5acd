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
