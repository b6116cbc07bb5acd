import os

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


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
