import os

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def pytest_configure(config):
    from django.conf import settings
    from django.test import override_settings

    from portal import localstate

    localstate.prepare()  # the SQLite test database, the laptop broker, worker logs
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        # The queues' prefix follows the database's name as configured, which pytest-xdist's
        # processes share (each has a test database of its own): the worker processes one
        # starts would take the other's messages.
        from portal.celery import app

        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        options["global_keyprefix"] = f"{options['global_keyprefix'].rstrip(':')}.{worker}:"
        _use_broker(app, settings.CELERY_BROKER_URL, options)
    # Tests do not run collectstatic, so the hashed-name (manifest) storage would have
    # nothing to read: pages name static files plainly and WhiteNoise finds them where
    # they are, as in development. For the whole session, the live server included.
    override_settings(
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        WHITENOISE_USE_FINDERS=True,
        WHITENOISE_AUTOREFRESH=True,
    ).enable()


@pytest.fixture(autouse=True)
def _fresh_aws_clients():
    """boto3 clients are shared per process; a test's event hooks must not reach the next."""
    from workers.aws import clear_client_cache

    clear_client_cache()
    yield
    clear_client_cache()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def users(db, django_user_model):
    """The three seats every view is tested from: approver, editor, outsider."""
    make = django_user_model.objects.create_user
    return {
        "approver": make("alice", password="pw-alice-123"),
        "editor": make("bob", password="pw-bob-123"),
        "outsider": make("mallory", password="pw-mallory-123"),
    }


@pytest.fixture
def workspace(users):
    from portal.models import Membership, Role, Workspace

    ws = Workspace.objects.create(name="Tony's Chips sandbox", slug="tonys-chips", approvals_required=1)
    Membership.objects.create(workspace=ws, user=users["approver"], role=Role.APPROVER)
    Membership.objects.create(workspace=ws, user=users["editor"], role=Role.EDITOR)
    other = Workspace.objects.create(name="Other", slug="other")
    Membership.objects.create(workspace=other, user=users["outsider"], role=Role.ADMIN)
    return ws


@pytest.fixture
def eager_celery():
    """Run Celery tasks inline, in this process (the same task code, no broker)."""
    from portal.celery import app

    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = False


@pytest.fixture
def aws():
    """In-process moto for every boto3 client the test makes."""
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


def _use_broker(app, url, options):
    app.conf.broker_url = url
    app.conf.broker_transport_options = options
    # Forget the pools made for the broker configured before; kombu keys its (shared)
    # pools by URL and transport options, so they are not closed, only not used here.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def private_broker():
    """The Celery app on queues of this test's own (a key prefix of its own on the
    configured Redis), for tests that run a worker thread."""
    import uuid

    from django.conf import settings

    from portal.celery import app

    options = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "global_keyprefix": f"test-{uuid.uuid4().hex[:8]}:",
    }
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    _use_broker(app, settings.CELERY_BROKER_URL, options)
    app.control.purge()
    yield app
    _use_broker(app, *saved)
