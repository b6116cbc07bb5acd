import pytest
from moto import mock_aws

from workers.aws import AwsTarget, Clients


@pytest.fixture
def mocked_clients(settings):
    """Provider clients against in-process moto, with waits that do not wait."""
    settings.PORTAL_AWS_POLL_SECONDS = 0.01
    with mock_aws():
        yield Clients(AwsTarget(region="us-east-1"))
