import pytest
from moto import mock_aws

from workers.aws import AwsTarget, Clients


@pytest.fixture
def eager_celery():
    """Run Celery tasks inline, in this process (the same task code, no broker)."""
    from portal.celery import app

    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = False


@pytest.fixture
def aws():
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def applier(eager_celery, aws, django_capture_on_commit_callbacks):
    """apply(change_set, user) runs the whole apply inline and returns the finished run."""
    from workers import apply

    def run(change_set, user):
        with django_capture_on_commit_callbacks(execute=True):
            result = apply.request_apply(change_set, user)
        result.refresh_from_db()
        return result

    return run


@pytest.fixture
def mocked_clients(settings):
    """Provider clients against in-process moto, with waits that do not wait."""
    settings.PORTAL_AWS_POLL_SECONDS = 0.01
    with mock_aws():
        yield Clients(AwsTarget(region="us-east-1"))
